//! Floating IPs: an address on an external network, held by a `network:floatingip` port,
//! translated to a port's fixed address by the router that connects the port's subnet to
//! that external network. Without such a router the association is refused (404), as in
//! Neutron.

use ferrostack_common::time::now_micros;
use ferrostack_common::AuthContext;
use ferrostack_db::sqlx::AnyConnection;
use serde_json::{json, Value};

use super::body::{self, Attrs};
use super::ports::IpRequest;
use super::{new_id, retry_on_conflict, Failure, NetworkService};
use crate::backend::FloatingIpState;
use crate::error::{NetworkError, Result};
use crate::ipam;
use crate::model::*;
use crate::store;
use crate::views;

const WRITABLE: &[&str] = &[
    "floating_network_id",
    "floating_ip_address",
    "subnet_id",
    "port_id",
    "fixed_ip_address",
    "description",
    "project_id",
    "tenant_id",
    "tags",
    "dns_name",
    "dns_domain",
    "qos_policy_id",
];
const READ_ONLY: &[&str] = &[
    "id",
    "status",
    "router_id",
    "port_details",
    "created_at",
    "updated_at",
    "revision_number",
];

pub fn target(project: &str) -> Value {
    json!({"project_id": project, "tenant_id": project})
}

fn bad_fip(msg: impl std::fmt::Display) -> NetworkError {
    NetworkError::bad("BadRequest", format!("Bad floatingip request: {msg}."))
}

/// Where a floating IP points: port, fixed address, and the router translating.
struct Association {
    port_id: String,
    fixed_ip: String,
    router_id: String,
}

impl NetworkService {
    async fn visible_fip(
        &self,
        c: &mut AnyConnection,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<FloatingIp> {
        match store::get_floating_ip(c, id).await? {
            Some(f) if self.allowed(ctx, "get_floatingip", &target(&f.project_id)) => Ok(f),
            _ => Err(NetworkError::not_found(
                "FloatingIPNotFound",
                format!("Floating IP {id} could not be found"),
            )),
        }
    }

    async fn fip_json(&self, c: &mut AnyConnection, f: &FloatingIp) -> Result<Value> {
        let port = match &f.port_id {
            Some(p) => store::get_port(c, p).await?,
            None => None,
        };
        let forwardings = store::port_forwardings_of_fip(c, &f.id).await?;
        Ok(views::floating_ip(f, port.as_ref(), &forwardings))
    }

    pub async fn list_floating_ips(&self, ctx: &AuthContext) -> Result<Vec<Value>> {
        let mut c = self.conn().await?;
        let scope = self.list_scope(ctx);
        let mut out = Vec::new();
        for f in store::list_floating_ips(&mut c, scope.as_deref()).await? {
            if scope.is_none() || self.allowed(ctx, "get_floatingip", &target(&f.project_id)) {
                out.push(self.fip_json(&mut c, &f).await?);
            }
        }
        Ok(out)
    }

    pub async fn show_floating_ip(&self, ctx: &AuthContext, id: &str) -> Result<Value> {
        let mut c = self.conn().await?;
        let f = self.visible_fip(&mut c, ctx, id).await?;
        self.fip_json(&mut c, &f).await
    }

    /// Checks an association request inside the writing transaction.
    async fn associate(
        &self,
        tx: &mut AnyConnection,
        ctx: &AuthContext,
        fip: &FloatingIp,
        port_id: &str,
        fixed: Option<&str>,
    ) -> Result<Association, Failure> {
        let (port, _) = self.visible_port(tx, ctx, port_id).await?;
        if port.project_id != fip.project_id && !self.is_admin(ctx) {
            return Err(Failure::Api(NetworkError::port_not_found(port_id)));
        }
        if !store::port_forwardings_of_fip(tx, &fip.id)
            .await?
            .is_empty()
        {
            return Err(Failure::Api(NetworkError::conflict(
                "FipInUseByPortForwarding",
                format!(
                    "Floating IP {} has port forwardings: it cannot also be associated with port {port_id}.",
                    fip.id
                ),
            )));
        }
        let fixed = match fixed {
            Some(ip) => {
                let ip = ipam::normalize_ip(ip).ok_or_else(|| {
                    NetworkError::invalid_attr(
                        "fixed_ip_address",
                        format!("'{ip}' is not a valid IP address"),
                    )
                })?;
                port.fixed_ips
                    .iter()
                    .find(|f| f.ip_address == ip)
                    .cloned()
                    .ok_or_else(|| bad_fip(format!("Port {port_id} does not have fixed ip {ip}")))?
            }
            None => {
                let v4: Vec<&FixedIp> = port
                    .fixed_ips
                    .iter()
                    .filter(|f| f.ip_address.contains('.'))
                    .collect();
                match v4.as_slice() {
                    [one] => (*one).clone(),
                    [] => return Err(Failure::Api(bad_fip(format!("Port {port_id} does not have any IPv4 address")))),
                    _ => return Err(Failure::Api(bad_fip(format!("Port {port_id} has multiple fixed IPv4 addresses. Must provide a specific IPv4 address when assigning a floating IP")))),
                }
            }
        };
        for other in store::floating_ips_of_port(tx, port_id).await? {
            if other.id != fip.id
                && other.fixed_ip_address.as_deref() == Some(fixed.ip_address.as_str())
            {
                return Err(Failure::Api(NetworkError::conflict("FloatingIPPortAlreadyAssociated", format!("Cannot associate floating IP {} ({}) with port {port_id} using fixed IP {}, as that fixed IP already has a floating IP on external network {}.", fip.floating_ip_address, fip.id, fixed.ip_address, other.floating_network_id))));
            }
        }
        if store::port_forwardings_of_port(tx, port_id)
            .await?
            .iter()
            .any(|p| p.internal_ip_address == fixed.ip_address)
        {
            return Err(Failure::Api(NetworkError::conflict("PortHasPortForwarding", format!("Cannot associate floating IP {} with port {port_id} using fixed IP {}: port forwardings of another floating IP use that address.", fip.id, fixed.ip_address))));
        }
        if let Some(router_id) = self
            .router_reaching(tx, &fip.floating_network_id, &fixed.subnet_id)
            .await?
        {
            return Ok(Association {
                port_id: port_id.to_string(),
                fixed_ip: fixed.ip_address,
                router_id,
            });
        }
        Err(Failure::Api(NetworkError::not_found("ExternalGatewayForFloatingIPNotFound", format!("External network {} is not reachable from subnet {}.  Therefore, cannot associate Port {port_id} with a Floating IP.", fip.floating_network_id, fixed.subnet_id))))
    }

    /// The router with a gateway on the external network and an interface on the subnet:
    /// the one that translates between a floating IP and a fixed address of that subnet.
    pub(crate) async fn router_reaching(
        &self,
        tx: &mut AnyConnection,
        external_network_id: &str,
        subnet_id: &str,
    ) -> std::result::Result<Option<String>, ferrostack_db::sqlx::Error> {
        for r in store::list_routers(tx, None).await? {
            if r.gateway_network_id.as_deref() != Some(external_network_id) {
                continue;
            }
            let reaches = store::ports_of_device(tx, &r.id).await?.iter().any(|p| {
                p.device_owner == OWNER_ROUTER_INTERFACE
                    && p.fixed_ips.iter().any(|f| f.subnet_id == subnet_id)
            });
            if reaches {
                return Ok(Some(r.id));
            }
        }
        Ok(None)
    }

    pub async fn create_floating_ip(&self, ctx: &AuthContext, request: &Value) -> Result<Value> {
        let attrs = body::resource(request, "floatingip")?;
        body::check(&attrs, WRITABLE, READ_ONLY, true)?;
        let project = body::owner(&attrs, &self.project_of(ctx)?)?;
        self.authorize(ctx, "create_floatingip", &target(&project))?;
        if attrs.contains_key("floating_ip_address") {
            self.authorize(
                ctx,
                "create_floatingip:floating_ip_address",
                &target(&project),
            )?;
        }
        if !matches!(attrs.get("qos_policy_id"), None | Some(Value::Null)) {
            return Err(NetworkError::invalid(
                "qos_policy_id is not supported: QoS is not implemented",
            ));
        }
        let network_id = body::string(&attrs, "floating_network_id", 36)?.ok_or_else(|| {
            NetworkError::bad_request(
                "Failed to parse request. Required attribute 'floating_network_id' not specified",
            )
        })?;
        let network = {
            let mut c = self.conn().await?;
            self.visible_network(&mut c, ctx, &network_id).await?
        };
        if !network.external {
            return Err(bad_fip(format!(
                "Network {network_id} is not a valid external network"
            )));
        }
        let requested = fip_address_request(&attrs)?;
        let port_id = body::nullable_string(&attrs, "port_id", 36)?.flatten();
        let fixed = body::nullable_string(&attrs, "fixed_ip_address", 64)?.flatten();
        let now = now_micros();
        let fip = FloatingIp {
            id: new_id(),
            project_id: project,
            floating_network_id: network_id,
            floating_ip_address: String::new(),
            floating_port_id: String::new(),
            port_id: None,
            fixed_ip_address: None,
            router_id: None,
            description: body::string(&attrs, "description", body::DESCRIPTION_MAX)?
                .unwrap_or_default(),
            tags: body::string_list(&attrs, "tags", body::TAG_MAX)?.unwrap_or_default(),
            revision_number: 1,
            created_at: now,
            updated_at: now,
        };
        let fip = retry_on_conflict(|attempt| {
            let mut fip = fip.clone();
            let network = network.clone();
            let requested = requested.clone();
            let port_id = port_id.clone();
            let fixed = fixed.clone();
            async move {
                let mut tx = self.db.begin_write().await?;
                self.check_quota(&mut tx, &fip.project_id, "floatingip", 1)
                    .await?;
                if let Some(pid) = &port_id {
                    let a = self
                        .associate(&mut tx, ctx, &fip, pid, fixed.as_deref())
                        .await?;
                    fip.port_id = Some(a.port_id);
                    fip.fixed_ip_address = Some(a.fixed_ip);
                    fip.router_id = Some(a.router_id);
                }
                let req: Option<Vec<IpRequest>> = requested.map(|r| vec![r]);
                let port = self
                    .insert_service_port(
                        &mut tx,
                        &network,
                        "",
                        OWNER_FLOATINGIP,
                        &fip.id,
                        req.as_deref(),
                        "N/A",
                        attempt,
                    )
                    .await?;
                let v4 = port
                    .fixed_ips
                    .iter()
                    .find(|f| f.ip_address.contains('.'))
                    .or(port.fixed_ips.first());
                fip.floating_ip_address = v4.map(|f| f.ip_address.clone()).ok_or_else(|| {
                    NetworkError::conflict(
                        "IpAddressGenerationFailure",
                        format!("No more IP addresses available on network {}.", network.id),
                    )
                })?;
                fip.floating_port_id = port.id;
                store::insert_floating_ip(&mut tx, &fip).await?;
                tx.commit().await?;
                Ok(fip)
            }
        })
        .await?;
        self.push_port(&fip.floating_port_id).await;
        self.push_floating_ip(&fip.id).await;
        self.notify_devices(std::slice::from_ref(&fip.port_id))
            .await;
        let mut c = self.conn().await?;
        self.fip_json(&mut c, &fip).await
    }

    pub async fn update_floating_ip(
        &self,
        ctx: &AuthContext,
        id: &str,
        request: &Value,
    ) -> Result<Value> {
        let attrs = body::resource(request, "floatingip")?;
        let ro: Vec<&str> = WRITABLE
            .iter()
            .chain(READ_ONLY)
            .copied()
            .filter(|a| !matches!(*a, "port_id" | "fixed_ip_address" | "description" | "tags"))
            .collect();
        body::check(
            &attrs,
            &["port_id", "fixed_ip_address", "description", "tags"],
            &ro,
            false,
        )?;
        let port_id = body::nullable_string(&attrs, "port_id", 36)?;
        let fixed = body::nullable_string(&attrs, "fixed_ip_address", 64)?.flatten();
        let mut tx = self.db.begin_write().await?;
        let mut f = self.visible_fip(&mut tx, ctx, id).await?;
        self.authorize(ctx, "update_floatingip", &target(&f.project_id))?;
        let before = f.port_id.clone();
        if let Some(v) = body::string(&attrs, "description", body::DESCRIPTION_MAX)? {
            f.description = v;
        }
        if let Some(v) = body::string_list(&attrs, "tags", body::TAG_MAX)? {
            f.tags = v;
        }
        match port_id {
            Some(Some(pid)) => {
                let a = match self
                    .associate(&mut tx, ctx, &f, &pid, fixed.as_deref())
                    .await
                {
                    Ok(a) => a,
                    Err(Failure::Api(e)) => return Err(e),
                    Err(Failure::Db(e)) => return Err(e.into()),
                };
                f.port_id = Some(a.port_id);
                f.fixed_ip_address = Some(a.fixed_ip);
                f.router_id = Some(a.router_id);
            }
            Some(None) => {
                f.port_id = None;
                f.fixed_ip_address = None;
                f.router_id = None;
            }
            None => {}
        }
        f.revision_number += 1;
        f.updated_at = now_micros();
        store::update_floating_ip(&mut tx, &f).await?;
        tx.commit().await?;
        self.push_floating_ip(id).await;
        if before != f.port_id {
            self.notify_devices(&[before, f.port_id.clone()]).await;
        }
        let mut c = self.conn().await?;
        self.fip_json(&mut c, &f).await
    }

    pub async fn delete_floating_ip(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let f = self.visible_fip(&mut tx, ctx, id).await?;
        self.authorize(ctx, "delete_floatingip", &target(&f.project_id))?;
        let gone = self.remove_floating_ip(&mut tx, &f).await?;
        tx.commit().await?;
        if let Some(p) = gone {
            self.push_deleted_port(&p).await;
        }
        self.push_floating_ip(id).await;
        self.notify_devices(&[f.port_id]).await;
        Ok(())
    }

    /// Deletes a floating IP and its port inside a transaction; the port's last state.
    pub(crate) async fn remove_floating_ip(
        &self,
        tx: &mut AnyConnection,
        f: &FloatingIp,
    ) -> Result<Option<crate::backend::PortState>> {
        store::delete_port_forwardings_of_fip(tx, &f.id).await?;
        store::delete_floating_ip(tx, &f.id).await?;
        let state = match store::get_port(tx, &f.floating_port_id).await? {
            Some(p) => Some(self.port_state(tx, p).await?),
            None => None,
        };
        store::delete_port(tx, &f.floating_port_id).await?;
        Ok(state)
    }

    pub(crate) async fn push_floating_ip(&self, id: &str) {
        let state = match self.conn().await {
            Ok(mut c) => match store::get_floating_ip(&mut c, id).await {
                Ok(Some(f)) => store::port_forwardings_of_fip(&mut c, id)
                    .await
                    .map(|pfs| Some((f, pfs)))
                    .map_err(NetworkError::from),
                Ok(None) => Ok(None),
                Err(e) => Err(NetworkError::from(e)),
            },
            Err(e) => Err(e),
        };
        match state {
            Ok(Some((floating_ip, port_forwardings))) => {
                let r = self
                    .backend
                    .sync_floating_ip(&FloatingIpState {
                        floating_ip,
                        port_forwardings,
                    })
                    .await;
                self.logged("sync_floating_ip", id, r);
            }
            Ok(None) => {
                let r = self.backend.delete_floating_ip(id).await;
                self.logged("delete_floating_ip", id, r);
            }
            Err(e) => {
                tracing::warn!(%id, error = %e, "could not read a floating IP for the backend")
            }
        }
    }
}

/// The external address asked for: an address, a subnet, or neither.
fn fip_address_request(attrs: &Attrs) -> Result<Option<IpRequest>> {
    let ip = body::nullable_string(attrs, "floating_ip_address", 64)?.flatten();
    let subnet = body::nullable_string(attrs, "subnet_id", 36)?.flatten();
    if ip.is_none() && subnet.is_none() {
        return Ok(None);
    }
    Ok(Some(IpRequest {
        subnet_id: subnet,
        ip_address: ip,
    }))
}
