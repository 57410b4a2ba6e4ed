//! Nova's security group proxy (`os-security-groups`, `os-security-group-rules`) on the
//! Networking service, as Nova's `security_group_api` does it on Neutron: groups shown in
//! Nova's format (only ingress rules, `from_port`/`to_port`, `ip_range` or the source
//! `group`), rules checked as Nova checks them (TCP, UDP or ICMP; port ranges; a CIDR or a
//! source group) before Neutron sees them, and Neutron's refusals answered with Nova's
//! statuses (a group in use or the default group cannot be deleted: 400; over quota: 403).

use std::collections::HashMap;

use axum::http::StatusCode;
use ferrostack_common::AuthContext;
use serde_json::{json, Value};

use super::ComputeService;
use crate::error::{ComputeError, Result};
use crate::network::{NetError, Networking, NewRule, SecGroup, SecRule};

/// A refusal of the Networking service: 404 and 400 as they are, a conflict as `conflict`
/// (the status Nova gives it for the call at hand).
pub(crate) fn sg_error(e: NetError, conflict: StatusCode) -> ComputeError {
    match e {
        NetError::NotFound(m) => ComputeError::not_found(m),
        NetError::Bad(m) => ComputeError::bad(m),
        NetError::Conflict(m) => ComputeError::new(conflict, m),
        NetError::Transient(m) => ComputeError::internal(m),
    }
}

/// Nova's `osapi_max_limit`: the most a list answers.
const MAX_LIMIT: usize = 1000;

/// Nova's `validate_id`: group and rule ids are UUIDs.
pub fn valid_id(id: &str) -> Result<()> {
    uuid::Uuid::parse_str(id)
        .map(|_| ())
        .map_err(|_| ComputeError::bad("Security group id should be uuid"))
}

/// A rule as `POST /os-security-group-rules` asks for it (Nova validates none of the
/// values but `parent_group_id` and `group_id` in its schema).
#[derive(Debug, Clone, Default)]
pub struct RuleRequest {
    pub parent_group_id: String,
    pub group_id: Option<String>,
    pub ip_protocol: Option<String>,
    pub from_port: Option<String>,
    pub to_port: Option<String>,
    pub cidr: Option<String>,
}

/// Nova's view of a Neutron rule: ports filled in for a protocol without a range, the CIDR
/// `0.0.0.0/0` when there is none.
struct NovaRule {
    id: String,
    parent_group_id: String,
    protocol: Option<String>,
    from_port: Option<i64>,
    to_port: Option<i64>,
    group_id: Option<String>,
    cidr: String,
}

fn nova_rule(r: &SecRule) -> NovaRule {
    let (from_port, to_port) = match (&r.protocol, r.port_range_min, r.port_range_max) {
        (Some(p), None, None) if matches!(p.to_ascii_uppercase().as_str(), "TCP" | "UDP") => {
            (Some(1), Some(65535))
        }
        (Some(_), None, None) => (Some(-1), Some(-1)),
        (_, lo, hi) => (lo, hi),
    };
    NovaRule {
        id: r.id.clone(),
        parent_group_id: r.security_group_id.clone(),
        protocol: r.protocol.clone(),
        from_port,
        to_port,
        group_id: r.remote_group_id.clone(),
        cidr: r
            .remote_ip_prefix
            .clone()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "0.0.0.0/0".into()),
    }
}

/// The `{name, tenant_id}` of source groups by id; `None`: gone or not visible (the rule is
/// left out then, as Nova does).
type SourceGroups = HashMap<String, Option<Value>>;

fn format_rule(r: &NovaRule, sources: &SourceGroups) -> Option<Value> {
    let (group, ip_range) = match &r.group_id {
        Some(g) => (sources.get(g).cloned().flatten()?, json!({})),
        None => (json!({}), json!({"cidr": r.cidr})),
    };
    Some(json!({
        "id": r.id,
        "parent_group_id": r.parent_group_id,
        "ip_protocol": r.protocol,
        "from_port": r.from_port,
        "to_port": r.to_port,
        "group": group,
        "ip_range": ip_range,
    }))
}

fn format_group(g: &SecGroup, sources: &SourceGroups) -> Value {
    let rules: Vec<Value> = g
        .rules
        .iter()
        .filter(|r| r.direction == "ingress")
        .filter_map(|r| format_rule(&nova_rule(r), sources))
        .collect();
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "tenant_id": g.project_id,
        "rules": rules,
    })
}

/// A port number as Nova's `int()` reads it.
fn port_number(v: &str) -> Option<i64> {
    v.trim().parse().ok()
}

/// Nova's `parse_cidr`: none is `0.0.0.0/0`; otherwise an address with a prefix length.
fn parse_cidr(cidr: Option<&str>) -> Result<String> {
    let Some(c) = cidr.filter(|c| !c.is_empty()) else {
        return Ok("0.0.0.0/0".into());
    };
    let bad = || ComputeError::bad(format!("{c} is not a valid IP network."));
    let (addr, len) = c.split_once('/').ok_or_else(bad)?;
    let ip: std::net::IpAddr = addr.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if len > if ip.is_ipv4() { 32 } else { 128 } {
        return Err(bad());
    }
    Ok(c.to_string())
}

/// Nova's `_new_ingress_rule`: the rule's protocol, ports and source, checked. `None`: a
/// CIDR rule without protocol and ports (not enough to build a rule).
fn build_rule(req: &RuleRequest) -> Result<Option<NewRule>> {
    let mut rule = NewRule {
        security_group_id: req.parent_group_id.clone(),
        ethertype: "IPv4".into(),
        ..Default::default()
    };
    let (mut from, mut to) = (req.from_port.clone(), req.to_port.clone());
    let upper = req
        .ip_protocol
        .as_deref()
        .map(str::to_ascii_uppercase)
        .unwrap_or_default();
    let cidr = match &req.group_id {
        Some(g) => {
            rule.remote_group_id = Some(g.clone());
            if from.is_none() && to.is_none() {
                match upper.as_str() {
                    "ICMP" => (from, to) = (Some("-1".into()), Some("-1".into())),
                    "TCP" | "UDP" => (from, to) = (Some("1".into()), Some("65535".into())),
                    _ => {}
                }
            }
            None
        }
        None => {
            let c = parse_cidr(req.cidr.as_deref())?;
            if c.contains(':') {
                rule.ethertype = "IPv6".into();
            }
            rule.remote_ip_prefix = Some(c.clone());
            Some(c)
        }
    };
    let protocol = req.ip_protocol.clone().filter(|p| !p.is_empty());
    let (Some(protocol), Some(from), Some(to)) = (protocol, from, to) else {
        return Ok(if cidr.is_some() { None } else { Some(rule) });
    };
    let (Some(from), Some(to)) = (port_number(&from), port_number(&to)) else {
        let reason = if upper == "ICMP" {
            "Type and Code must be integers for ICMP protocol type"
        } else {
            "To and From ports must be integers"
        };
        return Err(ComputeError::bad(format!(
            "Invalid input received: {reason}"
        )));
    };
    let range = |msg: &str| ComputeError::bad(format!("Invalid port range {from}:{to}. {msg}"));
    match upper.as_str() {
        "TCP" | "UDP" if from > to => {
            return Err(range("Former value cannot be greater than the later"))
        }
        "TCP" | "UDP" if from < 1 || to > 65535 => {
            return Err(range(&format!(
                "Valid {upper} ports should be between 1-65535"
            )))
        }
        "ICMP" if !(-1..=255).contains(&from) || !(-1..=255).contains(&to) => {
            return Err(range("For ICMP, the type:code must be valid"))
        }
        "TCP" | "UDP" | "ICMP" => {}
        _ => {
            return Err(ComputeError::bad(format!(
                "Invalid IP protocol {protocol}."
            )))
        }
    }
    rule.protocol = Some(protocol);
    rule.port_range_min = (from != -1).then_some(from);
    rule.port_range_max = (to != -1).then_some(to);
    Ok(Some(rule))
}

impl ComputeService {
    /// The Networking service, or Nova's answer for a cloud without one.
    pub(crate) fn groups_backend(&self) -> Result<std::sync::Arc<dyn Networking>> {
        self.networking().ok_or_else(|| {
            ComputeError::bad(
                "Security groups need a Networking service; this cloud runs without one.",
            )
        })
    }

    /// The source groups the rules of `groups` name, looked up once each.
    pub(crate) async fn source_groups(
        &self,
        auth: &AuthContext,
        groups: &[SecGroup],
    ) -> Result<SourceGroups> {
        let net = self.groups_backend()?;
        let mut out: SourceGroups = groups
            .iter()
            .map(|g| {
                (
                    g.id.clone(),
                    Some(json!({"name": g.name, "tenant_id": g.project_id})),
                )
            })
            .collect();
        for r in groups.iter().flat_map(|g| g.rules.iter()) {
            let Some(id) = &r.remote_group_id else {
                continue;
            };
            if out.contains_key(id) || r.direction != "ingress" {
                continue;
            }
            let found = match net.show_security_group(auth, id).await {
                Ok(g) => Some(json!({"name": g.name, "tenant_id": g.project_id})),
                Err(NetError::NotFound(_)) => None,
                Err(e) => return Err(sg_error(e, StatusCode::CONFLICT)),
            };
            out.insert(id.clone(), found);
        }
        Ok(out)
    }

    /// Groups in Nova's format, sorted as Nova sorts them (by project, then name).
    pub(crate) async fn nova_groups(
        &self,
        auth: &AuthContext,
        groups: &[SecGroup],
    ) -> Result<Vec<Value>> {
        let sources = self.source_groups(auth, groups).await?;
        let mut out: Vec<Value> = groups.iter().map(|g| format_group(g, &sources)).collect();
        out.sort_by(|a, b| {
            let key = |v: &Value| (v["tenant_id"].to_string(), v["name"].to_string());
            key(a).cmp(&key(b))
        });
        Ok(out)
    }

    /// `GET /os-security-groups`: the caller's project's groups (every project's for an
    /// administrator asking `all_tenants`), `offset` and `limit` applied.
    pub async fn list_security_groups(
        &self,
        auth: &AuthContext,
        all_tenants: bool,
        offset: usize,
        limit: Option<usize>,
    ) -> Result<Vec<Value>> {
        self.authorize(auth, "os_compute_api:os-security-groups:get")?;
        let net = self.groups_backend()?;
        let all = all_tenants && self.is_admin(auth);
        let groups: Vec<SecGroup> = net
            .list_security_groups(auth, all)
            .await
            .map_err(|e| sg_error(e, StatusCode::CONFLICT))?
            .into_iter()
            .skip(offset)
            .take(limit.unwrap_or(usize::MAX).min(MAX_LIMIT))
            .collect();
        self.nova_groups(auth, &groups).await
    }

    async fn group(&self, auth: &AuthContext, id: &str) -> Result<SecGroup> {
        valid_id(id)?;
        self.groups_backend()?
            .show_security_group(auth, id)
            .await
            .map_err(|e| sg_error(e, StatusCode::BAD_REQUEST))
    }

    async fn one_group(&self, auth: &AuthContext, g: SecGroup) -> Result<Value> {
        let mut list = self.nova_groups(auth, &[g]).await?;
        Ok(list.pop().unwrap_or(Value::Null))
    }

    pub async fn show_security_group(&self, auth: &AuthContext, id: &str) -> Result<Value> {
        self.authorize(auth, "os_compute_api:os-security-groups:show")?;
        let g = self.group(auth, id).await?;
        self.one_group(auth, g).await
    }

    pub async fn create_security_group(
        &self,
        auth: &AuthContext,
        name: &str,
        description: &str,
    ) -> Result<Value> {
        self.authorize(auth, "os_compute_api:os-security-groups:create")?;
        let g = self
            .groups_backend()?
            .create_security_group(auth, name, description)
            .await
            .map_err(|e| sg_error(e, StatusCode::FORBIDDEN))?;
        self.one_group(auth, g).await
    }

    pub async fn update_security_group(
        &self,
        auth: &AuthContext,
        id: &str,
        name: &str,
        description: &str,
    ) -> Result<Value> {
        self.authorize(auth, "os_compute_api:os-security-groups:update")?;
        self.group(auth, id).await?;
        let g = self
            .groups_backend()?
            .update_security_group(auth, id, name, description)
            .await
            .map_err(|e| sg_error(e, StatusCode::BAD_REQUEST))?;
        self.one_group(auth, g).await
    }

    /// Refused with 400 while a port uses the group, and for the project's default group.
    pub async fn delete_security_group(&self, auth: &AuthContext, id: &str) -> Result<()> {
        self.authorize(auth, "os_compute_api:os-security-groups:delete")?;
        self.group(auth, id).await?;
        self.groups_backend()?
            .delete_security_group(auth, id)
            .await
            .map_err(|e| sg_error(e, StatusCode::BAD_REQUEST))
    }

    /// `POST /os-security-group-rules`: an ingress rule from a CIDR or a source group.
    pub async fn create_security_group_rule(
        &self,
        auth: &AuthContext,
        req: RuleRequest,
    ) -> Result<Value> {
        self.authorize(auth, "os_compute_api:os-security-groups:rule:create")?;
        let parent = self.group(auth, &req.parent_group_id).await?;
        let source = match &req.group_id {
            Some(g) => Some(self.group(auth, g).await?),
            None => None,
        };
        let Some(rule) = build_rule(&req)? else {
            return Err(ComputeError::bad(
                "Not enough parameters to build a valid rule.",
            ));
        };
        if let Some(c) = &rule.remote_ip_prefix {
            let (net, len) = c.split_once('/').unwrap_or((c, ""));
            if net != "0.0.0.0" && net != "::" && len == "0" {
                return Err(ComputeError::bad(format!(
                    "Bad prefix for network in cidr {c}"
                )));
            }
        }
        // Nova's own duplicate check, on the group's rules in Nova's terms.
        let exists = parent
            .rules
            .iter()
            .filter(|r| r.direction == "ingress")
            .map(nova_rule)
            .any(|r| {
                r.group_id == rule.remote_group_id
                    && Some(&r.cidr) == rule.remote_ip_prefix.as_ref()
                    && r.protocol == rule.protocol
                    && r.from_port == rule.port_range_min.or(rule.protocol.as_ref().map(|_| -1))
                    && r.to_port == rule.port_range_max.or(rule.protocol.as_ref().map(|_| -1))
            });
        if exists {
            return Err(ComputeError::bad(format!(
                "This rule already exists in group {}",
                parent.id
            )));
        }
        let made = self
            .groups_backend()?
            .create_security_group_rule(auth, &rule)
            .await
            .map_err(|e| sg_error(e, StatusCode::FORBIDDEN))?;
        let mut sources = SourceGroups::new();
        if let Some(g) = source {
            sources.insert(
                g.id.clone(),
                Some(json!({"name": g.name, "tenant_id": g.project_id})),
            );
        }
        format_rule(&nova_rule(&made), &sources)
            .ok_or_else(|| ComputeError::internal("the rule's source group is gone"))
    }

    pub async fn delete_security_group_rule(&self, auth: &AuthContext, id: &str) -> Result<()> {
        self.authorize(auth, "os_compute_api:os-security-groups:rule:delete")?;
        valid_id(id)?;
        let net = self.groups_backend()?;
        let rule = net
            .show_security_group_rule(auth, id)
            .await
            .map_err(|e| sg_error(e, StatusCode::CONFLICT))?;
        self.group(auth, &rule.security_group_id).await?;
        net.delete_security_group_rule(auth, id)
            .await
            .map_err(|e| sg_error(e, StatusCode::CONFLICT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(proto: &str, from: &str, to: &str) -> RuleRequest {
        RuleRequest {
            parent_group_id: "p".into(),
            ip_protocol: Some(proto.into()),
            from_port: Some(from.into()),
            to_port: Some(to.into()),
            ..Default::default()
        }
    }

    #[test]
    fn rules_are_checked_as_nova_checks_them() {
        let r = build_rule(&req("tcp", "22", "22")).unwrap().unwrap();
        assert_eq!(r.port_range_min, Some(22));
        assert_eq!(r.remote_ip_prefix.as_deref(), Some("0.0.0.0/0"));
        let icmp = build_rule(&req("icmp", "-1", "-1")).unwrap().unwrap();
        assert_eq!((icmp.port_range_min, icmp.port_range_max), (None, None));
        for (p, f, t) in [
            ("tcp", "22", "21"),
            ("tcp", "70000", "22"),
            ("tcp", "22", "70000"),
            ("icmp", "256", "0"),
            ("sctp", "1", "2"),
            ("tcp", "x", "2"),
        ] {
            assert!(build_rule(&req(p, f, t)).is_err(), "{p} {f} {t}");
        }
        // A CIDR rule needs a protocol and ports; a group rule does not.
        let bare = RuleRequest {
            parent_group_id: "p".into(),
            ..Default::default()
        };
        assert!(build_rule(&bare).unwrap().is_none());
        let grp = RuleRequest {
            group_id: Some("g".into()),
            ip_protocol: Some("tcp".into()),
            ..bare
        };
        let r = build_rule(&grp).unwrap().unwrap();
        assert_eq!((r.port_range_min, r.port_range_max), (Some(1), Some(65535)));
        assert!(parse_cidr(Some("10.0.0.0/33")).is_err());
        assert!(parse_cidr(Some("fe80::/64")).is_ok());
    }
}
