//! The Networking service as the rest of the control plane uses it, without HTTP or
//! policy (the caller is trusted): Compute gives servers NICs by creating ports for them
//! or binding ports users made, reads what a guest needs to configure them, and the
//! backend reports ports up or down. Each method is safe to repeat, so a workflow step
//! that runs again after a crash does no harm (check [`NetworkService::ports_of_device`]
//! before creating a port for a device).

use ferrostack_common::time::now_micros;
use serde_json::json;

use super::ports::{IpRequest, PortSpec};
use super::NetworkService;
use crate::error::{NetworkError, Result};
use crate::model::*;
use crate::store;

/// A port Compute asks for.
#[derive(Debug, Clone, Default)]
pub struct PortCreate {
    pub network_id: String,
    /// Empty: automatic addresses.
    pub fixed_ips: Vec<IpRequest>,
    /// Names or ids of the project's groups; `None`: the project's default group.
    pub security_groups: Option<Vec<String>>,
    pub device_id: String,
    pub device_owner: String,
    /// The compute host the port is bound to (`binding:host_id`), when known.
    pub host: Option<String>,
}

/// One address of a port with its subnet's facts, for guest configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct PortAddressView {
    pub ip_address: String,
    pub subnet_id: String,
    pub ip_version: i64,
    pub cidr: String,
    pub gateway_ip: Option<String>,
    pub dns_nameservers: Vec<String>,
    pub host_routes: Vec<HostRoute>,
    pub enable_dhcp: bool,
    pub ipv6_address_mode: Option<String>,
}

/// What Nova needs of a port for server addresses, `network_data.json` and config drives.
#[derive(Debug, Clone, PartialEq)]
pub struct PortView {
    pub port: Port,
    pub network_name: String,
    pub network_mtu: i64,
    pub addresses: Vec<PortAddressView>,
    /// The floating addresses translated to this port's fixed addresses.
    pub floating_ips: Vec<String>,
}

impl NetworkService {
    /// The networks `project` may attach servers to: its own and shared ones (to all or to it
    /// by an RBAC policy); external
    /// networks only when `include_external`.
    pub async fn networks_for_project(
        &self,
        project_id: &str,
        include_external: bool,
    ) -> Result<Vec<Network>> {
        let mut c = self.conn().await?;
        Ok(store::list_networks(&mut c, Some(project_id))
            .await?
            .into_iter()
            .filter(|n| include_external || !n.external)
            .filter(|n| {
                n.project_id == project_id
                    || n.shared
                    || n.external
                    || n.shared_with.iter().any(|p| p == project_id)
            })
            .collect())
    }

    pub async fn get_network_internal(&self, id: &str) -> Result<Network> {
        let mut c = self.conn().await?;
        store::get_network(&mut c, id)
            .await?
            .ok_or_else(|| NetworkError::network_not_found(id))
    }

    pub async fn create_port_internal(&self, project_id: &str, req: PortCreate) -> Result<Port> {
        let security_groups = match &req.security_groups {
            Some(names) => Some(self.resolve_groups(project_id, names, true).await?),
            None => None,
        };
        let spec = PortSpec {
            project_id: project_id.to_string(),
            network_id: req.network_id.clone(),
            name: String::new(),
            description: String::new(),
            admin_state_up: true,
            mac_address: None,
            fixed_ips: (!req.fixed_ips.is_empty()).then(|| req.fixed_ips.clone()),
            device_id: req.device_id.clone(),
            device_owner: req.device_owner.clone(),
            host: req.host.clone().unwrap_or_default(),
            vnic_type: "normal".into(),
            profile: json!({}),
            allowed_address_pairs: Vec::new(),
            port_security_enabled: None,
            security_groups,
            extra_dhcp_opts: Vec::new(),
            dns_name: String::new(),
            tags: Vec::new(),
        };
        self.create_port_from(spec, true).await
    }

    /// The ids of security groups named (by name or id) for a project's new ports; an
    /// error names the first that does not exist.
    pub async fn resolve_groups_internal(
        &self,
        project_id: &str,
        wanted: &[String],
    ) -> Result<Vec<String>> {
        self.resolve_groups(project_id, wanted, true).await
    }

    pub async fn get_port_internal(&self, id: &str) -> Result<Port> {
        let mut c = self.conn().await?;
        store::get_port(&mut c, id)
            .await?
            .ok_or_else(|| NetworkError::port_not_found(id))
    }

    pub async fn ports_of_device(&self, device_id: &str) -> Result<Vec<Port>> {
        let mut c = self.conn().await?;
        Ok(store::ports_of_device(&mut c, device_id).await?)
    }

    async fn modify_port(
        &self,
        id: &str,
        f: impl FnOnce(&mut Port) -> Result<bool>,
    ) -> Result<Port> {
        let mut tx = self.db.begin_write().await?;
        let mut p = store::get_port(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::port_not_found(id))?;
        if !f(&mut p)? {
            return Ok(p);
        }
        p.revision_number += 1;
        p.updated_at = now_micros();
        store::update_port_row(&mut tx, &p).await?;
        tx.commit().await?;
        self.push_port(id).await;
        Ok(p)
    }

    /// Gives a user's port to a device (a server) on `host`. Binding again to the same
    /// device is a no-op; a port another device holds is refused (409 PortInUse).
    pub async fn bind_port(
        &self,
        port_id: &str,
        device_id: &str,
        device_owner: &str,
        host: &str,
    ) -> Result<Port> {
        self.modify_port(port_id, |p| {
            if !p.device_id.is_empty() && p.device_id != device_id {
                return Err(NetworkError::conflict("PortInUse", format!("Unable to complete operation on port {port_id} for network {}. Port already has an attached device {}.", p.network_id, p.device_id)));
            }
            if p.device_id == device_id && p.device_owner == device_owner && p.host == host {
                return Ok(false);
            }
            p.device_id = device_id.to_string();
            p.device_owner = device_owner.to_string();
            p.host = host.to_string();
            Ok(true)
        })
        .await
    }

    /// Takes a port back from its device (the server was deleted); the port stays.
    pub async fn unbind_port(&self, port_id: &str) -> Result<Port> {
        self.modify_port(port_id, |p| {
            if p.device_id.is_empty()
                && p.device_owner.is_empty()
                && p.host.is_empty()
                && p.status == "DOWN"
            {
                return Ok(false);
            }
            p.device_id.clear();
            p.device_owner.clear();
            p.host.clear();
            p.status = "DOWN".into();
            Ok(true)
        })
        .await
    }

    /// Deletes a port; one already gone is not an error.
    pub async fn delete_port_internal(&self, id: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let Some(p) = store::get_port(&mut tx, id).await? else {
            return Ok(());
        };
        let network = store::get_network(&mut tx, &p.network_id).await?;
        let subnets = store::subnets_of_network(&mut tx, &p.network_id).await?;
        let released = self.release_floating_ips(&mut tx, id).await?;
        store::delete_port(&mut tx, id).await?;
        tx.commit().await?;
        if let Some(n) = network {
            self.push_deleted_port(&Self::port_state_from(p, &n, &subnets))
                .await;
        }
        for f in released {
            self.push_floating_ip(&f).await;
        }
        Ok(())
    }

    /// The backend saw the port come up (`ACTIVE`) or go down (`DOWN`).
    pub async fn set_port_status(&self, port_id: &str, up: bool) -> Result<()> {
        let status = if up { "ACTIVE" } else { "DOWN" };
        self.modify_port(port_id, |p| {
            if p.status == status {
                return Ok(false);
            }
            p.status = status.to_string();
            Ok(true)
        })
        .await
        .map(drop)
    }

    pub async fn port_view(&self, port_id: &str) -> Result<PortView> {
        let mut c = self.conn().await?;
        let port = store::get_port(&mut c, port_id)
            .await?
            .ok_or_else(|| NetworkError::port_not_found(port_id))?;
        let network = store::get_network(&mut c, &port.network_id)
            .await?
            .ok_or_else(|| NetworkError::network_not_found(&port.network_id))?;
        let subnets = store::subnets_of_network(&mut c, &port.network_id).await?;
        let addresses = port
            .fixed_ips
            .iter()
            .filter_map(|ip| {
                let s = subnets.iter().find(|s| s.id == ip.subnet_id)?;
                Some(PortAddressView {
                    ip_address: ip.ip_address.clone(),
                    subnet_id: s.id.clone(),
                    ip_version: s.ip_version,
                    cidr: s.cidr.clone(),
                    gateway_ip: s.gateway_ip.clone(),
                    dns_nameservers: s.dns_nameservers.clone(),
                    host_routes: s.host_routes.clone(),
                    enable_dhcp: s.enable_dhcp,
                    ipv6_address_mode: s.ipv6_address_mode.clone(),
                })
            })
            .collect();
        let floating_ips = store::floating_ips_of_port(&mut c, port_id)
            .await?
            .into_iter()
            .map(|f| f.floating_ip_address)
            .collect();
        Ok(PortView {
            port,
            network_name: network.name,
            network_mtu: network.mtu,
            addresses,
            floating_ips,
        })
    }
}
