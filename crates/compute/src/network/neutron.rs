//! [`Networking`] on this cloud's own Networking service (in the same process): what Nova's
//! Neutron client does, as direct calls. A server's ports carry `device_owner`
//! `compute:nova` and the server's id as `device_id`, so `allocate` running again after a
//! crash finds them instead of making more; the ports the user passed in (named in the boot
//! request) are unbound on delete, the others deleted.

use std::sync::Arc;

use axum::http::StatusCode;
use ferrostack_network::error::NetworkError;
use ferrostack_network::service::internal::{PortCreate, PortView};
use ferrostack_network::service::ports::IpRequest;
use ferrostack_network::NetworkService;

use ferrostack_common::AuthContext;
use serde_json::{json, Value};

use super::{
    BoxFut, MetadataPort, NetError, NetworkRequest, Networking, NewRule, NicRequest, PortGroups,
    SecGroup, SecRule, Vif, VifIp,
};

/// The `device_owner` of the ports Compute makes (Nova's `compute:<availability zone>`).
const OWNER: &str = "compute:nova";

/// The `device_owner` of a network's metadata port.
const METADATA_OWNER: &str = ferrostack_network::model::OWNER_DISTRIBUTED;

pub struct Neutron(pub Arc<NetworkService>);

fn net_error(e: NetworkError) -> NetError {
    match e.status {
        StatusCode::NOT_FOUND => NetError::NotFound(e.message),
        StatusCode::CONFLICT => NetError::Conflict(e.message),
        s if s.is_client_error() => NetError::Bad(e.message),
        _ => NetError::Transient(e.message),
    }
}

/// A group or rule as the Networking service's API shows it, read into Compute's terms.
fn parse<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, NetError> {
    serde_json::from_value(v).map_err(|e| NetError::Transient(format!("unreadable answer: {e}")))
}

fn vif(view: PortView, preserve: bool, tag: Option<String>) -> Vif {
    Vif {
        port_id: view.port.id.clone(),
        network_id: view.port.network_id.clone(),
        network_name: view.network_name,
        mac: view.port.mac_address.clone(),
        mtu: u32::try_from(view.network_mtu).ok().filter(|m| *m > 0),
        fixed_ips: view
            .addresses
            .into_iter()
            .map(|a| VifIp {
                address: a.ip_address,
                version: if a.ip_version == 6 { 6 } else { 4 },
                cidr: a.cidr,
                subnet_id: a.subnet_id,
                gateway: a.gateway_ip,
                dns_nameservers: a.dns_nameservers,
                host_routes: a
                    .host_routes
                    .into_iter()
                    .map(|r| (r.destination, r.nexthop))
                    .collect(),
                dhcp: a.enable_dhcp,
            })
            .collect(),
        floating_ips: view.floating_ips,
        preserve_on_delete: preserve,
        tag,
        status: view.port.status,
        metadata_port: None,
    }
}

/// A port address with its subnet's prefix length (`10.0.0.2/24`).
fn with_prefix(address: &str, cidr: &str) -> String {
    match cidr.split_once('/') {
        Some((_, len)) => format!("{address}/{len}"),
        None if address.contains(':') => format!("{address}/128"),
        None => format!("{address}/32"),
    }
}

/// One NIC as planned: a network to make a port on, or the user's port.
enum Want<'a> {
    Network(&'a NicRequest, String),
    Port(&'a NicRequest, String),
}

impl Neutron {
    /// The network's metadata port (`ovnmeta-<network id>`), if it has one.
    async fn metadata_port(&self, network_id: &str) -> Result<Option<MetadataPort>, NetError> {
        let svc = &self.0;
        let device = format!("ovnmeta-{network_id}");
        let Some(port) = svc
            .ports_of_device(&device)
            .await
            .map_err(net_error)?
            .into_iter()
            .find(|p| p.device_owner == METADATA_OWNER && p.network_id == network_id)
        else {
            return Ok(None);
        };
        let view = svc.port_view(&port.id).await.map_err(net_error)?;
        Ok(Some(MetadataPort {
            id: port.id.clone(),
            mac: port.mac_address.clone(),
            ips: view
                .addresses
                .iter()
                .map(|a| with_prefix(&a.ip_address, &a.cidr))
                .collect(),
        }))
    }

    /// Gives each NIC its network's metadata port (looked up once per network).
    async fn with_metadata_ports(&self, mut vifs: Vec<Vif>) -> Result<Vec<Vif>, NetError> {
        let mut known: std::collections::HashMap<String, Option<MetadataPort>> = Default::default();
        for v in &mut vifs {
            if !known.contains_key(&v.network_id) {
                let port = self.metadata_port(&v.network_id).await?;
                known.insert(v.network_id.clone(), port);
            }
            v.metadata_port = known[&v.network_id].clone();
        }
        Ok(vifs)
    }

    /// The NICs `request` stands for, checked against what the project may use.
    async fn plan<'a>(
        &self,
        project_id: &str,
        request: &'a NetworkRequest,
        auto: &'a NicRequest,
    ) -> Result<Vec<Want<'a>>, NetError> {
        let svc = &self.0;
        match request {
            NetworkRequest::None => Ok(Vec::new()),
            NetworkRequest::Auto => {
                let nets = svc
                    .networks_for_project(project_id, false)
                    .await
                    .map_err(net_error)?;
                match nets.as_slice() {
                    [] => Ok(Vec::new()),
                    [one] => Ok(vec![Want::Network(auto, one.id.clone())]),
                    _ => Err(NetError::Conflict(
                        "Multiple possible networks found, use a Network ID to be more specific."
                            .into(),
                    )),
                }
            }
            NetworkRequest::Nics(list) => {
                let usable = svc
                    .networks_for_project(project_id, true)
                    .await
                    .map_err(net_error)?;
                let mut out = Vec::new();
                for nic in list {
                    if let Some(p) = &nic.port_id {
                        let port = svc.get_port_internal(p).await.map_err(|_| {
                            NetError::NotFound(format!("Port id {p} could not be found."))
                        })?;
                        if port.project_id != project_id {
                            return Err(NetError::NotFound(format!(
                                "Port id {p} could not be found."
                            )));
                        }
                        out.push(Want::Port(nic, port.id));
                    } else if let Some(n) = &nic.network_id {
                        if !usable.iter().any(|u| &u.id == n) {
                            return Err(NetError::NotFound(format!(
                                "Network {n} could not be found."
                            )));
                        }
                        out.push(Want::Network(nic, n.clone()));
                    } else {
                        return Err(NetError::Bad("A NIC needs a network or a port.".into()));
                    }
                }
                Ok(out)
            }
        }
    }
}

impl Networking for Neutron {
    fn check_request<'a>(
        &'a self,
        project_id: &'a str,
        request: &'a NetworkRequest,
        security_groups: &'a [String],
    ) -> BoxFut<'a, Result<usize, NetError>> {
        Box::pin(async move {
            let auto = NicRequest::default();
            let plan = self.plan(project_id, request, &auto).await?;
            if !plan.is_empty() && !security_groups.is_empty() {
                self.0
                    .resolve_groups_internal(project_id, security_groups)
                    .await
                    .map_err(net_error)?;
            }
            for w in &plan {
                if let Want::Port(_, id) = w {
                    let port = self.0.get_port_internal(id).await.map_err(net_error)?;
                    if !port.device_id.is_empty() {
                        return Err(NetError::Conflict(format!("Port {id} is still in use.")));
                    }
                }
            }
            Ok(plan.len())
        })
    }

    fn allocate<'a>(
        &'a self,
        project_id: &'a str,
        server_id: &'a str,
        host: &'a str,
        request: &'a NetworkRequest,
        security_groups: &'a [String],
    ) -> BoxFut<'a, Result<Vec<Vif>, NetError>> {
        Box::pin(async move {
            let svc = &self.0;
            let auto = NicRequest::default();
            let plan = self.plan(project_id, request, &auto).await?;
            let user_ports: Vec<String> = request.user_ports();
            // Ports an earlier run of this step made for the server, oldest first.
            let mut made: Vec<_> = svc
                .ports_of_device(server_id)
                .await
                .map_err(net_error)?
                .into_iter()
                .filter(|p| p.device_owner == OWNER && !user_ports.contains(&p.id))
                .collect();
            made.sort_by_key(|p| p.created_at);
            let groups = (!security_groups.is_empty()).then(|| security_groups.to_vec());
            let mut vifs = Vec::new();
            for w in plan {
                match w {
                    Want::Port(nic, id) => {
                        svc.bind_port(&id, server_id, OWNER, host)
                            .await
                            .map_err(net_error)?;
                        let view = svc.port_view(&id).await.map_err(net_error)?;
                        vifs.push(vif(view, true, nic.tag.clone()));
                    }
                    Want::Network(nic, network_id) => {
                        let again = made
                            .iter()
                            .position(|p| p.network_id == network_id)
                            .map(|i| made.remove(i));
                        let port = match again {
                            Some(p) => {
                                // Rebound when the server moved (unshelved elsewhere).
                                svc.bind_port(&p.id, server_id, OWNER, host)
                                    .await
                                    .map_err(net_error)?
                            }
                            None => svc
                                .create_port_internal(
                                    project_id,
                                    PortCreate {
                                        network_id: network_id.clone(),
                                        fixed_ips: nic
                                            .fixed_ip
                                            .iter()
                                            .map(|ip| IpRequest {
                                                subnet_id: None,
                                                ip_address: Some(ip.clone()),
                                            })
                                            .collect(),
                                        security_groups: groups.clone(),
                                        device_id: server_id.to_string(),
                                        device_owner: OWNER.to_string(),
                                        host: Some(host.to_string()),
                                    },
                                )
                                .await
                                .map_err(net_error)?,
                        };
                        let view = svc.port_view(&port.id).await.map_err(net_error)?;
                        vifs.push(vif(view, false, nic.tag.clone()));
                    }
                }
            }
            self.with_metadata_ports(vifs).await
        })
    }

    fn deallocate<'a>(
        &'a self,
        server_id: &'a str,
        user_ports: &'a [String],
    ) -> BoxFut<'a, Result<(), NetError>> {
        Box::pin(async move {
            let svc = &self.0;
            for p in svc.ports_of_device(server_id).await.map_err(net_error)? {
                if user_ports.contains(&p.id) {
                    svc.unbind_port(&p.id).await.map_err(net_error)?;
                } else {
                    svc.delete_port_internal(&p.id).await.map_err(net_error)?;
                }
            }
            Ok(())
        })
    }

    fn attach_port<'a>(
        &'a self,
        project_id: &'a str,
        server_id: &'a str,
        host: &'a str,
        nic: &'a NicRequest,
        known: &'a [String],
    ) -> BoxFut<'a, Result<Vif, NetError>> {
        Box::pin(async move {
            let svc = &self.0;
            let request = NetworkRequest::Nics(vec![nic.clone()]);
            let auto = NicRequest::default();
            let plan = self.plan(project_id, &request, &auto).await?;
            let vif = match plan.into_iter().next() {
                Some(Want::Port(nic, id)) => {
                    let port = svc.get_port_internal(&id).await.map_err(net_error)?;
                    if !port.device_id.is_empty() && port.device_id != server_id {
                        return Err(NetError::Conflict(format!("Port {id} is still in use.")));
                    }
                    svc.bind_port(&id, server_id, OWNER, host)
                        .await
                        .map_err(net_error)?;
                    let view = svc.port_view(&id).await.map_err(net_error)?;
                    vif(view, true, nic.tag.clone())
                }
                Some(Want::Network(nic, network_id)) => {
                    // One an earlier run of the same attachment made.
                    let again = svc
                        .ports_of_device(server_id)
                        .await
                        .map_err(net_error)?
                        .into_iter()
                        .find(|p| {
                            p.device_owner == OWNER
                                && p.network_id == network_id
                                && !known.contains(&p.id)
                        });
                    let port = match again {
                        Some(p) => p,
                        None => svc
                            .create_port_internal(
                                project_id,
                                PortCreate {
                                    network_id: network_id.clone(),
                                    fixed_ips: nic
                                        .fixed_ip
                                        .iter()
                                        .map(|ip| IpRequest {
                                            subnet_id: None,
                                            ip_address: Some(ip.clone()),
                                        })
                                        .collect(),
                                    security_groups: None,
                                    device_id: server_id.to_string(),
                                    device_owner: OWNER.to_string(),
                                    host: Some(host.to_string()),
                                },
                            )
                            .await
                            .map_err(net_error)?,
                    };
                    let view = svc.port_view(&port.id).await.map_err(net_error)?;
                    vif(view, false, nic.tag.clone())
                }
                None => return Err(NetError::Bad("A NIC needs a network or a port.".into())),
            };
            let mut out = self.with_metadata_ports(vec![vif]).await?;
            Ok(out.remove(0))
        })
    }

    fn detach_port<'a>(
        &'a self,
        server_id: &'a str,
        port_id: &'a str,
        preserve: bool,
    ) -> BoxFut<'a, Result<(), NetError>> {
        Box::pin(async move {
            let svc = &self.0;
            let port = match svc.get_port_internal(port_id).await {
                Ok(p) => p,
                Err(e) if e.status == StatusCode::NOT_FOUND => return Ok(()),
                Err(e) => return Err(net_error(e)),
            };
            if port.device_id != server_id {
                return Ok(());
            }
            if preserve {
                svc.unbind_port(port_id).await.map_err(net_error)?;
            } else {
                svc.delete_port_internal(port_id).await.map_err(net_error)?;
            }
            Ok(())
        })
    }

    fn reports_port_status(&self) -> bool {
        self.0.backend.reports_port_status()
    }
    fn vifs<'a>(&'a self, server_id: &'a str) -> BoxFut<'a, Result<Vec<Vif>, NetError>> {
        Box::pin(async move {
            let svc = &self.0;
            let mut out = Vec::new();
            for p in svc.ports_of_device(server_id).await.map_err(net_error)? {
                let preserve = p.device_owner != OWNER;
                let view = svc.port_view(&p.id).await.map_err(net_error)?;
                out.push(vif(view, preserve, None));
            }
            self.with_metadata_ports(out).await
        })
    }

    fn list_security_groups<'a>(
        &'a self,
        auth: &'a AuthContext,
        all_projects: bool,
    ) -> BoxFut<'a, Result<Vec<SecGroup>, NetError>> {
        Box::pin(async move {
            let list = self.0.list_security_groups(auth).await.map_err(net_error)?;
            let mut out = Vec::new();
            for v in list {
                let g: SecGroup = parse(v)?;
                if all_projects || auth.project_id() == Some(g.project_id.as_str()) {
                    out.push(g);
                }
            }
            Ok(out)
        })
    }

    fn show_security_group<'a>(
        &'a self,
        auth: &'a AuthContext,
        id: &'a str,
    ) -> BoxFut<'a, Result<SecGroup, NetError>> {
        Box::pin(async move {
            parse(
                self.0
                    .show_security_group(auth, id)
                    .await
                    .map_err(net_error)?,
            )
        })
    }

    fn create_security_group<'a>(
        &'a self,
        auth: &'a AuthContext,
        name: &'a str,
        description: &'a str,
    ) -> BoxFut<'a, Result<SecGroup, NetError>> {
        Box::pin(async move {
            let body = json!({"security_group": {"name": name, "description": description}});
            parse(
                self.0
                    .create_security_group(auth, &body)
                    .await
                    .map_err(net_error)?,
            )
        })
    }

    fn update_security_group<'a>(
        &'a self,
        auth: &'a AuthContext,
        id: &'a str,
        name: &'a str,
        description: &'a str,
    ) -> BoxFut<'a, Result<SecGroup, NetError>> {
        Box::pin(async move {
            let body = json!({"security_group": {"name": name, "description": description}});
            parse(
                self.0
                    .update_security_group(auth, id, &body)
                    .await
                    .map_err(net_error)?,
            )
        })
    }

    fn delete_security_group<'a>(
        &'a self,
        auth: &'a AuthContext,
        id: &'a str,
    ) -> BoxFut<'a, Result<(), NetError>> {
        Box::pin(async move {
            self.0
                .delete_security_group(auth, id)
                .await
                .map_err(net_error)
        })
    }

    fn show_security_group_rule<'a>(
        &'a self,
        auth: &'a AuthContext,
        id: &'a str,
    ) -> BoxFut<'a, Result<SecRule, NetError>> {
        Box::pin(async move {
            parse(
                self.0
                    .show_security_group_rule(auth, id)
                    .await
                    .map_err(net_error)?,
            )
        })
    }

    fn create_security_group_rule<'a>(
        &'a self,
        auth: &'a AuthContext,
        rule: &'a NewRule,
    ) -> BoxFut<'a, Result<SecRule, NetError>> {
        Box::pin(async move {
            let mut r = json!({
                "security_group_id": rule.security_group_id,
                "direction": "ingress",
                "ethertype": rule.ethertype,
                "protocol": rule.protocol,
            });
            for (k, v) in [
                ("port_range_min", rule.port_range_min.map(Value::from)),
                ("port_range_max", rule.port_range_max.map(Value::from)),
                (
                    "remote_ip_prefix",
                    rule.remote_ip_prefix.clone().map(Value::from),
                ),
                (
                    "remote_group_id",
                    rule.remote_group_id.clone().map(Value::from),
                ),
            ] {
                if let Some(v) = v {
                    r[k] = v;
                }
            }
            let body = json!({"security_group_rule": r});
            parse(
                self.0
                    .create_security_group_rule(auth, &body)
                    .await
                    .map_err(net_error)?,
            )
        })
    }

    fn delete_security_group_rule<'a>(
        &'a self,
        auth: &'a AuthContext,
        id: &'a str,
    ) -> BoxFut<'a, Result<(), NetError>> {
        Box::pin(async move {
            self.0
                .delete_security_group_rule(auth, id)
                .await
                .map_err(net_error)
        })
    }

    fn server_ports<'a>(
        &'a self,
        _auth: &'a AuthContext,
        server_id: &'a str,
    ) -> BoxFut<'a, Result<Vec<PortGroups>, NetError>> {
        Box::pin(async move {
            let mut ports = self.0.ports_of_device(server_id).await.map_err(net_error)?;
            ports.sort_by_key(|p| p.created_at);
            Ok(ports
                .into_iter()
                .map(|p| PortGroups {
                    can_have_groups: p.port_security_enabled && !p.fixed_ips.is_empty(),
                    port_id: p.id,
                    security_groups: p.security_groups,
                })
                .collect())
        })
    }

    fn set_port_security_groups<'a>(
        &'a self,
        auth: &'a AuthContext,
        port_id: &'a str,
        groups: &'a [String],
    ) -> BoxFut<'a, Result<(), NetError>> {
        Box::pin(async move {
            let body = json!({"port": {"security_groups": groups}});
            self.0
                .update_port(auth, port_id, &body)
                .await
                .map(|_| ())
                .map_err(net_error)
        })
    }
}

/// Compute's ear for the Networking service's port events (Neutron's `network-changed`
/// external event to Nova): a server's cache of its NICs is read again when a floating IP
/// was associated with or taken from one of its ports, so `addresses` shows it.
pub struct RefreshOnPortChange(pub std::sync::Weak<crate::service::ComputeService>);

impl ferrostack_network::service::DeviceEvents for RefreshOnPortChange {
    fn ports_changed(&self, device_id: &str) {
        let Some(compute) = self.0.upgrade() else {
            return;
        };
        let id = device_id.to_string();
        tokio::spawn(async move {
            if let Err(e) = compute.refresh_network_info(&id).await {
                tracing::warn!(server = %id, error = %e, "could not refresh the server's network info");
            }
        });
    }
}
