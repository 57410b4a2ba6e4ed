//! A server's security groups, which are those of its ports in the Networking service:
//! `GET /servers/{id}/os-security-groups`, the `addSecurityGroup` and `removeSecurityGroup`
//! actions (on every port of the server, as Nova's `add_to_instance` and
//! `remove_from_instance`), and the group names server views show.

use std::collections::HashMap;

use axum::http::StatusCode;
use ferrostack_common::AuthContext;
use serde_json::Value;

use super::security_groups::sg_error;
use super::ComputeService;
use crate::error::{ComputeError, Result};
use crate::model::Instance;
use crate::network::{NetError, Networking, PortGroups};

impl ComputeService {
    /// Neutron's `find_resourceid_by_name_or_id` in the caller's project: a unique name, or
    /// an id. Nova's 404 names the project; several groups with the name are a 409.
    async fn find_group(
        &self,
        net: &dyn Networking,
        auth: &AuthContext,
        name: &str,
    ) -> Result<String> {
        let project = auth.project_id().unwrap_or_default();
        let groups = net
            .list_security_groups(auth, false)
            .await
            .map_err(|e| sg_error(e, StatusCode::CONFLICT))?;
        let named: Vec<&str> = groups
            .iter()
            .filter(|g| g.name == name)
            .map(|g| g.id.as_str())
            .collect();
        match named.as_slice() {
            [id] => return Ok(id.to_string()),
            [] => {}
            _ => {
                return Err(ComputeError::conflict(format!(
                    "Multiple security_group matches found for name '{name}', use an ID to be more specific."
                )))
            }
        }
        match net.show_security_group(auth, name).await {
            Ok(g) if g.project_id == project => Ok(g.id),
            Ok(_) | Err(NetError::NotFound(_)) => Err(ComputeError::not_found(format!(
                "Security group {name} is not found for project {project}"
            ))),
            Err(e) => Err(sg_error(e, StatusCode::CONFLICT)),
        }
    }

    /// The server and its ports, for an action on its groups under `rule`.
    async fn server_and_ports(
        &self,
        auth: &AuthContext,
        server_id: &str,
        rule: &str,
    ) -> Result<(Instance, Vec<PortGroups>)> {
        let inst = self.get_server(auth, server_id, rule).await?;
        let net = self.groups_backend()?;
        let ports = net
            .server_ports(auth, &inst.uuid)
            .await
            .map_err(|e| sg_error(e, StatusCode::CONFLICT))?;
        Ok((inst, ports))
    }

    /// `GET /servers/{id}/os-security-groups`: the groups on the server's ports, in Nova's
    /// format (one entry per port and group, as Nova lists them).
    pub async fn server_security_groups(
        &self,
        auth: &AuthContext,
        server_id: &str,
    ) -> Result<Vec<Value>> {
        let (_, ports) = self
            .server_and_ports(auth, server_id, "os_compute_api:os-security-groups:list")
            .await?;
        let net = self.groups_backend()?;
        let visible: HashMap<String, crate::network::SecGroup> = net
            .list_security_groups(auth, true)
            .await
            .map_err(|e| sg_error(e, StatusCode::CONFLICT))?
            .into_iter()
            .map(|g| (g.id.clone(), g))
            .collect();
        let groups: Vec<_> = ports
            .iter()
            .flat_map(|p| p.security_groups.iter())
            .filter_map(|id| visible.get(id).cloned())
            .collect();
        self.nova_groups(auth, &groups).await
    }

    /// `addSecurityGroup`: the group (a name or id of the caller's project) on every port of
    /// the server. 404 when the server has no port, 400 when a port cannot have groups or
    /// already has this one.
    pub async fn add_security_group(
        &self,
        auth: &AuthContext,
        server_id: &str,
        name: &str,
    ) -> Result<()> {
        let (inst, ports) = self
            .server_and_ports(auth, server_id, "os_compute_api:os-security-groups:add")
            .await?;
        let net = self.groups_backend()?;
        let group = self.find_group(net.as_ref(), auth, name).await?;
        if ports.is_empty() {
            return Err(no_ports(&inst.uuid));
        }
        for p in &ports {
            if !p.can_have_groups {
                return Err(ComputeError::bad(
                    "Network requires port_security_enabled and subnet associated in order to apply security groups.",
                ));
            }
            if p.security_groups.contains(&group) {
                // Neutron refuses the repeated id in the port's list.
                return Err(ComputeError::bad(format!(
                    "Duplicate items in the list: '{group}'"
                )));
            }
        }
        for p in &ports {
            let mut groups = p.security_groups.clone();
            groups.push(group.clone());
            net.set_port_security_groups(auth, &p.port_id, &groups)
                .await
                .map_err(|e| sg_error(e, StatusCode::CONFLICT))?;
        }
        Ok(())
    }

    /// `removeSecurityGroup`: the group off every port of the server that has it; 404 when
    /// none has.
    pub async fn remove_security_group(
        &self,
        auth: &AuthContext,
        server_id: &str,
        name: &str,
    ) -> Result<()> {
        let (inst, ports) = self
            .server_and_ports(auth, server_id, "os_compute_api:os-security-groups:remove")
            .await?;
        let net = self.groups_backend()?;
        let group = self.find_group(net.as_ref(), auth, name).await?;
        if ports.is_empty() {
            return Err(no_ports(&inst.uuid));
        }
        let mut found = false;
        for p in &ports {
            if !p.security_groups.contains(&group) {
                continue;
            }
            let groups: Vec<String> = p
                .security_groups
                .iter()
                .filter(|g| **g != group)
                .cloned()
                .collect();
            net.set_port_security_groups(auth, &p.port_id, &groups)
                .await
                .map_err(|e| sg_error(e, StatusCode::CONFLICT))?;
            found = true;
        }
        if !found {
            return Err(ComputeError::not_found(format!(
                "Security group {name} not associated with the instance {}",
                inst.uuid
            )));
        }
        Ok(())
    }

    /// The group names server views show for servers with ports (one per port and group, a
    /// nameless group by its id), as Nova asks Neutron on every view. Servers without ports,
    /// or when the Networking service cannot answer, are left out: their views keep the
    /// groups of the boot request.
    pub async fn security_group_names(
        &self,
        auth: &AuthContext,
        servers: &[Instance],
    ) -> HashMap<String, Vec<String>> {
        let mut out = HashMap::new();
        let Some(net) = self.networking() else {
            return out;
        };
        let with_ports: Vec<&Instance> = servers
            .iter()
            .filter(|i| !i.network_info.is_empty())
            .collect();
        if with_ports.is_empty() {
            return out;
        }
        let names: HashMap<String, String> = match net.list_security_groups(auth, true).await {
            Ok(list) => list
                .into_iter()
                .map(|g| {
                    let name = if g.name.is_empty() {
                        g.id.clone()
                    } else {
                        g.name
                    };
                    (g.id, name)
                })
                .collect(),
            Err(e) => {
                tracing::warn!("security groups of server views: {e}");
                return out;
            }
        };
        for inst in with_ports {
            match net.server_ports(auth, &inst.uuid).await {
                Ok(ports) => {
                    let list: Vec<String> = ports
                        .iter()
                        .flat_map(|p| p.security_groups.iter())
                        .filter_map(|id| names.get(id).cloned())
                        .collect();
                    out.insert(inst.uuid.clone(), list);
                }
                Err(e) => {
                    tracing::warn!(server = %inst.uuid, "security groups of the server view: {e}")
                }
            }
        }
        out
    }
}

fn no_ports(uuid: &str) -> ComputeError {
    ComputeError::not_found(format!(
        "instance_id {uuid} could not be found as device id on any ports"
    ))
}
