//! Floating IP port forwardings (`/v2.0/floatingips/{id}/port_forwardings`): one floating
//! address shared by several ports, a TCP or UDP port of it forwarded to a fixed address
//! and port behind the router (ML2/OVN realizes them as OVN load balancers on that router).
//!
//! The rules are Neutron's: a floating IP either has forwardings or is associated with a
//! port, never both; its forwardings all go through the one router that connects the
//! floating IP's network with the internal addresses' subnets (it becomes the floating
//! IP's `router_id`); an external port per protocol is forwarded once, and an internal
//! (address, port, protocol) is the target of one forwarding. Deleting the internal port
//! deletes its forwardings.

use ferrostack_common::time::now_micros;
use ferrostack_common::AuthContext;
use ferrostack_db::sqlx::AnyConnection;
use serde_json::{json, Value};

use super::body::{self, Attrs};
use super::floating_ips::target;
use super::{new_id, NetworkService};
use crate::error::{NetworkError, Result};
use crate::ipam;
use crate::model::*;
use crate::store;
use crate::views;

const WRITABLE: &[&str] = &[
    "protocol",
    "internal_ip_address",
    "internal_port",
    "external_port",
    "internal_port_id",
    "description",
];
const READ_ONLY: &[&str] = &["id", "project_id", "tenant_id"];

/// The protocols OVN's load balancers forward (ML2/OVN maps port forwardings onto them).
const PROTOCOLS: &[&str] = &["tcp", "udp"];

fn bad_pf(msg: impl std::fmt::Display) -> NetworkError {
    NetworkError::bad("BadRequest", format!("Bad port_forwarding request: {msg}."))
}

fn pf_not_found(fip_id: &str, id: &str) -> NetworkError {
    NetworkError::not_found(
        "PortForwardingNotFound",
        format!("Port Forwarding {id} could not be found for Floating IP {fip_id}."),
    )
}

/// A TCP/UDP port number attribute: 1 to 65535.
fn port_number(attrs: &Attrs, key: &str) -> Result<Option<i64>> {
    match body::integer(attrs, key)? {
        None => Ok(None),
        Some(Some(n)) if (1..=65535).contains(&n) => Ok(Some(n)),
        Some(v) => Err(NetworkError::invalid_attr(
            key,
            format!(
                "'{}' is not a valid port number: it must be between 1 and 65535",
                v.map(|n| n.to_string()).unwrap_or_else(|| "None".into())
            ),
        )),
    }
}

impl NetworkService {
    /// A floating IP the caller may see, for the forwarding `rule` (`get_...`, `create_...`).
    async fn fip_for_forwarding(
        &self,
        c: &mut AnyConnection,
        ctx: &AuthContext,
        fip_id: &str,
        rule: &str,
    ) -> Result<FloatingIp> {
        let f = match store::get_floating_ip(c, fip_id).await? {
            Some(f) if self.allowed(ctx, "get_floatingip", &target(&f.project_id)) => f,
            _ => {
                return Err(NetworkError::not_found(
                    "FloatingIPNotFound",
                    format!("Floating IP {fip_id} could not be found"),
                ))
            }
        };
        self.authorize(ctx, rule, &target(&f.project_id))?;
        Ok(f)
    }

    pub async fn list_port_forwardings(
        &self,
        ctx: &AuthContext,
        fip_id: &str,
    ) -> Result<Vec<Value>> {
        let mut c = self.conn().await?;
        self.fip_for_forwarding(&mut c, ctx, fip_id, "get_floatingip_port_forwarding")
            .await?;
        Ok(store::port_forwardings_of_fip(&mut c, fip_id)
            .await?
            .iter()
            .map(views::port_forwarding)
            .collect())
    }

    pub async fn show_port_forwarding(
        &self,
        ctx: &AuthContext,
        fip_id: &str,
        id: &str,
    ) -> Result<Value> {
        let mut c = self.conn().await?;
        self.fip_for_forwarding(&mut c, ctx, fip_id, "get_floatingip_port_forwarding")
            .await?;
        store::port_forwardings_of_fip(&mut c, fip_id)
            .await?
            .iter()
            .find(|p| p.id == id)
            .map(views::port_forwarding)
            .ok_or_else(|| pf_not_found(fip_id, id))
    }

    pub async fn create_port_forwarding(
        &self,
        ctx: &AuthContext,
        fip_id: &str,
        request: &Value,
    ) -> Result<Value> {
        let attrs = body::resource(request, "port_forwarding")?;
        body::check(&attrs, WRITABLE, READ_ONLY, true)?;
        for required in [
            "protocol",
            "internal_ip_address",
            "internal_port",
            "external_port",
            "internal_port_id",
        ] {
            if !attrs.contains_key(required) {
                return Err(NetworkError::bad_request(format!(
                    "Failed to parse request. Required attribute '{required}' not specified"
                )));
            }
        }
        let mut tx = self.db.begin_write().await?;
        let fip = self
            .fip_for_forwarding(&mut tx, ctx, fip_id, "create_floatingip_port_forwarding")
            .await?;
        let pf = PortForwarding {
            id: new_id(),
            floatingip_id: fip.id.clone(),
            project_id: fip.project_id.clone(),
            protocol: String::new(),
            internal_ip_address: String::new(),
            internal_port: 0,
            external_port: 0,
            internal_port_id: String::new(),
            description: String::new(),
        };
        let (pf, router) = self
            .apply_forwarding(ctx, &mut tx, &fip, pf, &attrs)
            .await?;
        let result = store::insert_port_forwarding(&mut tx, &pf).await;
        self.finish_forwarding_write(tx, fip, router, result, &pf)
            .await?;
        Ok(views::port_forwarding(&pf))
    }

    pub async fn update_port_forwarding(
        &self,
        ctx: &AuthContext,
        fip_id: &str,
        id: &str,
        request: &Value,
    ) -> Result<Value> {
        let attrs = body::resource(request, "port_forwarding")?;
        body::check(&attrs, WRITABLE, READ_ONLY, false)?;
        let mut tx = self.db.begin_write().await?;
        let fip = self
            .fip_for_forwarding(&mut tx, ctx, fip_id, "update_floatingip_port_forwarding")
            .await?;
        let current = store::port_forwardings_of_fip(&mut tx, fip_id)
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| pf_not_found(fip_id, id))?;
        let (pf, router) = self
            .apply_forwarding(ctx, &mut tx, &fip, current, &attrs)
            .await?;
        let result = store::update_port_forwarding(&mut tx, &pf).await;
        self.finish_forwarding_write(tx, fip, router, result, &pf)
            .await?;
        Ok(views::port_forwarding(&pf))
    }

    pub async fn delete_port_forwarding(
        &self,
        ctx: &AuthContext,
        fip_id: &str,
        id: &str,
    ) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let mut fip = self
            .fip_for_forwarding(&mut tx, ctx, fip_id, "delete_floatingip_port_forwarding")
            .await?;
        let all = store::port_forwardings_of_fip(&mut tx, fip_id).await?;
        if !all.iter().any(|p| p.id == id) {
            return Err(pf_not_found(fip_id, id));
        }
        store::delete_port_forwarding(&mut tx, id).await?;
        if all.len() == 1 {
            // The last forwarding gone: the floating IP no longer goes through a router.
            fip.router_id = None;
        }
        fip.revision_number += 1;
        fip.updated_at = now_micros();
        store::update_floating_ip(&mut tx, &fip).await?;
        tx.commit().await?;
        self.push_floating_ip(fip_id).await;
        Ok(())
    }

    /// Applies the request's attributes to `pf` and checks the result against Neutron's
    /// rules (inside the writing transaction, so two requests cannot both pass them); the
    /// forwarding and the router it goes through.
    async fn apply_forwarding(
        &self,
        ctx: &AuthContext,
        tx: &mut AnyConnection,
        fip: &FloatingIp,
        mut pf: PortForwarding,
        attrs: &Attrs,
    ) -> Result<(PortForwarding, String)> {
        if let Some(p) = body::string(attrs, "protocol", 40)? {
            let p = p.to_ascii_lowercase();
            if !PROTOCOLS.contains(&p.as_str()) {
                return Err(NetworkError::invalid_attr(
                    "protocol",
                    format!("{p} is not in {PROTOCOLS:?}"),
                ));
            }
            pf.protocol = p;
        }
        if let Some(n) = port_number(attrs, "internal_port")? {
            pf.internal_port = n;
        }
        if let Some(n) = port_number(attrs, "external_port")? {
            pf.external_port = n;
        }
        if let Some(d) = body::string(attrs, "description", body::DESCRIPTION_MAX)? {
            pf.description = d;
        }
        if let Some(id) = body::string(attrs, "internal_port_id", 36)? {
            pf.internal_port_id = id;
        }
        if let Some(ip) = body::string(attrs, "internal_ip_address", 64)? {
            pf.internal_ip_address = ipam::normalize_ip(&ip).ok_or_else(|| {
                NetworkError::invalid_attr(
                    "internal_ip_address",
                    format!("'{ip}' is not a valid IP address"),
                )
            })?;
        }
        if let Some(port_id) = &fip.port_id {
            return Err(bad_pf(format!(
                "The floating IP {} is associated with port {port_id}: a floating IP is either associated with a port or has port forwardings",
                fip.id
            )));
        }
        let (port, _) = self.visible_port(tx, ctx, &pf.internal_port_id).await?;
        if port.project_id != fip.project_id && !self.is_admin(ctx) {
            return Err(NetworkError::port_not_found(&pf.internal_port_id));
        }
        let fixed = port
            .fixed_ips
            .iter()
            .find(|f| f.ip_address == pf.internal_ip_address && f.ip_address.contains('.'))
            .ok_or_else(|| {
                bad_pf(format!(
                    "The internal IP address {} is not an IPv4 address of port {}",
                    pf.internal_ip_address, port.id
                ))
            })?;
        if store::floating_ips_of_port(tx, &port.id)
            .await?
            .iter()
            .any(|f| f.fixed_ip_address.as_deref() == Some(fixed.ip_address.as_str()))
        {
            return Err(NetworkError::conflict(
                "PortHasBindingFloatingIP",
                format!(
                    "Cannot create port forwarding to {} of port {}: that address already has a floating IP",
                    fixed.ip_address, port.id
                ),
            ));
        }
        let router = self
            .router_reaching(tx, &fip.floating_network_id, &fixed.subnet_id)
            .await?
            .ok_or_else(|| NetworkError::not_found("ExternalGatewayForFloatingIPNotFound", format!("External network {} is not reachable from subnet {}.  Therefore, cannot associate Port {} with a Floating IP.", fip.floating_network_id, fixed.subnet_id, port.id)))?;
        let others = store::port_forwardings_of_fip(tx, &fip.id).await?;
        if others.iter().any(|o| o.id != pf.id) && fip.router_id.as_deref() != Some(&router) {
            return Err(bad_pf(format!(
                "The port forwardings of floating IP {} go through router {}; {} is behind router {router}",
                fip.id,
                fip.router_id.as_deref().unwrap_or("-"),
                pf.internal_ip_address
            )));
        }
        let clash = others.iter().find(|o| {
            o.id != pf.id && o.protocol == pf.protocol && o.external_port == pf.external_port
        });
        let internal_clash = store::port_forwardings_of_port(tx, &pf.internal_port_id)
            .await?
            .into_iter()
            .find(|o| {
                o.id != pf.id
                    && o.protocol == pf.protocol
                    && o.internal_ip_address == pf.internal_ip_address
                    && o.internal_port == pf.internal_port
            });
        if clash.is_some() || internal_clash.is_some() {
            return Err(bad_pf(format!(
                "A duplicate port forwarding entry with same attributes already exists, conflicting values are {{'floatingip_id': '{}', 'external_port': {}, 'internal_ip_address': '{}', 'internal_port': {}, 'protocol': '{}'}}",
                fip.id, pf.external_port, pf.internal_ip_address, pf.internal_port, pf.protocol
            )));
        }
        Ok((pf, router))
    }

    /// Commits a forwarding write (the floating IP now goes through the forwardings'
    /// `router`) and tells the backend; a unique key lost to a concurrent writer is the same
    /// duplicate the checks above report.
    async fn finish_forwarding_write(
        &self,
        mut tx: ferrostack_db::Tx<'static>,
        mut fip: FloatingIp,
        router: String,
        written: std::result::Result<(), ferrostack_db::sqlx::Error>,
        pf: &PortForwarding,
    ) -> Result<()> {
        match written {
            Err(e) if ferrostack_db::is_unique_violation(&e) => return Err(bad_pf(format!(
                "A duplicate port forwarding entry with same attributes already exists (external port {} or internal {}:{}, {})",
                pf.external_port, pf.internal_ip_address, pf.internal_port, pf.protocol
            ))),
            Err(e) => return Err(e.into()),
            Ok(()) => {}
        }
        fip.router_id = Some(router);
        fip.revision_number += 1;
        fip.updated_at = now_micros();
        store::update_floating_ip(&mut tx, &fip).await?;
        tx.commit().await?;
        self.push_floating_ip(&fip.id).await;
        Ok(())
    }
}

/// The short form a floating IP shows of its forwardings (`expose-port-forwarding-in-fip`).
pub fn summary(pfs: &[PortForwarding]) -> Value {
    Value::Array(
        pfs.iter()
            .map(|p| {
                json!({
                    "protocol": p.protocol,
                    "internal_ip_address": p.internal_ip_address,
                    "internal_port": p.internal_port,
                    "external_port": p.external_port,
                })
            })
            .collect(),
    )
}
