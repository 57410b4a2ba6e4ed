//! The fake Networking service's security groups: Neutron's behaviour in small (a
//! `default` group per project made when first needed, with ingress from its own members and
//! egress anywhere; new groups with egress anywhere; duplicate rules, deleting the default
//! group or a group in use refused as conflicts), scoped to the caller's project unless the
//! caller is an administrator.

use ferrostack_common::AuthContext;

use super::FakeNetworking;
use crate::network::{NetError, NewRule, PortGroups, SecGroup, SecRule};

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn group_not_found(id: &str) -> NetError {
    NetError::NotFound(format!("Security group {id} does not exist"))
}

fn rule_not_found(id: &str) -> NetError {
    NetError::NotFound(format!("Security group rule {id} does not exist"))
}

fn egress(group: &str, ethertype: &str) -> SecRule {
    SecRule {
        id: new_id(),
        security_group_id: group.into(),
        direction: "egress".into(),
        ethertype: ethertype.into(),
        protocol: None,
        port_range_min: None,
        port_range_max: None,
        remote_ip_prefix: None,
        remote_group_id: None,
    }
}

fn is_admin(auth: &AuthContext) -> bool {
    auth.has_role("admin")
}

fn project(auth: &AuthContext) -> Result<String, NetError> {
    auth.project_id()
        .map(str::to_string)
        .ok_or_else(|| NetError::Bad("A project scope is needed.".into()))
}

impl FakeNetworking {
    /// The project's default group, made now if it has none.
    pub(super) fn ensure_default_group(&self, project_id: &str) -> String {
        let mut groups = self.groups.lock().unwrap();
        if let Some(g) = groups
            .values()
            .find(|g| g.project_id == project_id && g.name == "default")
        {
            return g.id.clone();
        }
        let id = new_id();
        let mut rules = Vec::new();
        for e in ["IPv4", "IPv6"] {
            rules.push(egress(&id, e));
            rules.push(SecRule {
                direction: "ingress".into(),
                remote_group_id: Some(id.clone()),
                ..egress(&id, e)
            });
        }
        groups.insert(
            id.clone(),
            SecGroup {
                id: id.clone(),
                name: "default".into(),
                description: "Default security group".into(),
                project_id: project_id.into(),
                rules,
            },
        );
        id
    }

    /// The ids of the groups a boot names (names or ids of the project's groups); none: the
    /// default group.
    pub(super) fn resolve_groups(
        &self,
        project_id: &str,
        wanted: &[String],
    ) -> Result<Vec<String>, NetError> {
        let default = self.ensure_default_group(project_id);
        if wanted.is_empty() {
            return Ok(vec![default]);
        }
        let groups = self.groups.lock().unwrap();
        let mut out: Vec<String> = Vec::new();
        for w in wanted {
            let mine = groups.values().filter(|g| g.project_id == project_id);
            let id = match groups.get(w).filter(|g| g.project_id == project_id) {
                Some(g) => g.id.clone(),
                None => {
                    let named: Vec<&SecGroup> = mine.filter(|g| &g.name == w).collect();
                    match named.as_slice() {
                        [g] => g.id.clone(),
                        [] => return Err(group_not_found(w)),
                        _ => {
                            return Err(NetError::Conflict(format!(
                                "Multiple security groups named {w} exist; use an id"
                            )))
                        }
                    }
                }
            };
            if !out.contains(&id) {
                out.push(id);
            }
        }
        Ok(out)
    }

    fn visible_group(&self, auth: &AuthContext, id: &str) -> Result<SecGroup, NetError> {
        self.groups
            .lock()
            .unwrap()
            .get(id)
            .filter(|g| is_admin(auth) || auth.project_id() == Some(g.project_id.as_str()))
            .cloned()
            .ok_or_else(|| group_not_found(id))
    }

    pub(super) fn sg_list(
        &self,
        auth: &AuthContext,
        all_projects: bool,
    ) -> Result<Vec<SecGroup>, NetError> {
        if let Some(p) = auth.project_id() {
            self.ensure_default_group(p);
        }
        Ok(self
            .groups
            .lock()
            .unwrap()
            .values()
            .filter(|g| {
                let own = auth.project_id() == Some(g.project_id.as_str());
                own || (all_projects && is_admin(auth))
            })
            .cloned()
            .collect())
    }

    pub(super) fn sg_show(&self, auth: &AuthContext, id: &str) -> Result<SecGroup, NetError> {
        self.visible_group(auth, id)
    }

    pub(super) fn sg_create(
        &self,
        auth: &AuthContext,
        name: &str,
        description: &str,
    ) -> Result<SecGroup, NetError> {
        let project_id = project(auth)?;
        self.ensure_default_group(&project_id);
        if name == "default" {
            return Err(NetError::Conflict(
                "Default security group already exists.".into(),
            ));
        }
        let id = new_id();
        let g = SecGroup {
            id: id.clone(),
            name: name.into(),
            description: description.into(),
            project_id,
            rules: vec![egress(&id, "IPv4"), egress(&id, "IPv6")],
        };
        self.groups.lock().unwrap().insert(id, g.clone());
        Ok(g)
    }

    pub(super) fn sg_update(
        &self,
        auth: &AuthContext,
        id: &str,
        name: &str,
        description: &str,
    ) -> Result<SecGroup, NetError> {
        let g = self.visible_group(auth, id)?;
        if (g.name == "default") != (name == "default") {
            return Err(NetError::Conflict(
                "Updating default security group not allowed.".into(),
            ));
        }
        let mut groups = self.groups.lock().unwrap();
        let g = groups.get_mut(id).ok_or_else(|| group_not_found(id))?;
        g.name = name.into();
        g.description = description.into();
        Ok(g.clone())
    }

    pub(super) fn sg_delete(&self, auth: &AuthContext, id: &str) -> Result<(), NetError> {
        let g = self.visible_group(auth, id)?;
        if g.name == "default" && !is_admin(auth) {
            return Err(NetError::Conflict(
                "Insufficient rights for removing default security group.".into(),
            ));
        }
        let mut groups = self.groups.lock().unwrap();
        let ports = self.ports.lock().unwrap();
        if ports.values().any(|p| p.groups.iter().any(|x| x == id)) {
            return Err(NetError::Conflict(format!("Security Group {id} in use.")));
        }
        groups.remove(id);
        for other in groups.values_mut() {
            other
                .rules
                .retain(|r| r.remote_group_id.as_deref() != Some(id));
        }
        Ok(())
    }

    fn find_rule(&self, auth: &AuthContext, id: &str) -> Result<SecRule, NetError> {
        self.groups
            .lock()
            .unwrap()
            .values()
            .filter(|g| is_admin(auth) || auth.project_id() == Some(g.project_id.as_str()))
            .flat_map(|g| g.rules.iter())
            .find(|r| r.id == id)
            .cloned()
            .ok_or_else(|| rule_not_found(id))
    }

    pub(super) fn rule_show(&self, auth: &AuthContext, id: &str) -> Result<SecRule, NetError> {
        self.find_rule(auth, id)
    }

    pub(super) fn rule_create(
        &self,
        auth: &AuthContext,
        new: &NewRule,
    ) -> Result<SecRule, NetError> {
        self.visible_group(auth, &new.security_group_id)?;
        if let Some(remote) = &new.remote_group_id {
            self.visible_group(auth, remote)?;
        }
        let protocol = new.protocol.as_deref().map(str::to_ascii_lowercase);
        let ports = matches!(protocol.as_deref(), Some("tcp" | "udp"));
        if let Some(p) = protocol.as_deref() {
            if !["tcp", "udp", "icmp"].contains(&p) && p.parse::<u8>().is_err() {
                return Err(NetError::Bad(format!(
                    "Security group rule protocol {p} not supported."
                )));
            }
        }
        if let (true, Some(lo), Some(hi)) = (ports, new.port_range_min, new.port_range_max) {
            if lo > hi || lo < 1 || hi > 65535 {
                return Err(NetError::Bad(format!("Invalid port range {lo}:{hi}.")));
            }
        }
        let rule = SecRule {
            id: new_id(),
            security_group_id: new.security_group_id.clone(),
            direction: "ingress".into(),
            ethertype: new.ethertype.clone(),
            protocol,
            port_range_min: new.port_range_min,
            port_range_max: new.port_range_max,
            remote_ip_prefix: new.remote_ip_prefix.clone(),
            remote_group_id: new.remote_group_id.clone(),
        };
        let mut groups = self.groups.lock().unwrap();
        let g = groups
            .get_mut(&new.security_group_id)
            .ok_or_else(|| group_not_found(&new.security_group_id))?;
        if let Some(same) = g.rules.iter().find(|r| {
            SecRule {
                id: r.id.clone(),
                ..rule.clone()
            } == **r
        }) {
            return Err(NetError::Conflict(format!(
                "Security group rule already exists. Rule id is {}.",
                same.id
            )));
        }
        g.rules.push(rule.clone());
        Ok(rule)
    }

    pub(super) fn rule_delete(&self, auth: &AuthContext, id: &str) -> Result<(), NetError> {
        let r = self.find_rule(auth, id)?;
        if let Some(g) = self.groups.lock().unwrap().get_mut(&r.security_group_id) {
            g.rules.retain(|x| x.id != id);
        }
        Ok(())
    }

    pub(super) fn ports_of_server(&self, server_id: &str) -> Vec<PortGroups> {
        self.ports
            .lock()
            .unwrap()
            .values()
            .filter(|p| p.device_id.as_deref() == Some(server_id))
            .map(|p| PortGroups {
                port_id: p.vif.port_id.clone(),
                security_groups: p.groups.clone(),
                can_have_groups: !p.vif.fixed_ips.is_empty(),
            })
            .collect()
    }

    pub(super) fn set_port_groups(
        &self,
        auth: &AuthContext,
        port_id: &str,
        groups: &[String],
    ) -> Result<(), NetError> {
        let project_id = {
            let ports = self.ports.lock().unwrap();
            let p = ports
                .get(port_id)
                .filter(|p| is_admin(auth) || auth.project_id() == Some(p.project_id.as_str()))
                .ok_or_else(|| NetError::NotFound(format!("Port {port_id} could not be found.")))?;
            p.project_id.clone()
        };
        let ids = if groups.is_empty() {
            Vec::new()
        } else {
            self.resolve_groups(&project_id, groups)?
        };
        if let Some(p) = self.ports.lock().unwrap().get_mut(port_id) {
            p.groups = ids;
        }
        Ok(())
    }
}
