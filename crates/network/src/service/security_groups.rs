//! Security groups and their rules. Every project has a `default` group, made the first
//! time the project needs one (its first network, port or group list, as in Neutron) with
//! Neutron's default rules: ingress from members of the same group and egress to anywhere,
//! for IPv4 and IPv6. A project's default group is recorded in its own table, keyed by
//! project, so two requests racing to make it end with one group.

use ferrostack_common::time::now_micros;
use ferrostack_common::AuthContext;
use ferrostack_db::sqlx::AnyConnection;
use serde_json::{json, Value};

use super::body::{self, Attrs};
use super::{new_id, retry_on_conflict, Failure, NetworkService};
use crate::error::{NetworkError, Result};
use crate::ipam::Cidr;
use crate::model::*;
use crate::store;
use crate::views;

const GROUP_WRITABLE: &[&str] = &[
    "name",
    "description",
    "stateful",
    "project_id",
    "tenant_id",
    "tags",
];
const GROUP_READ_ONLY: &[&str] = &[
    "id",
    "security_group_rules",
    "shared",
    "created_at",
    "updated_at",
    "revision_number",
];
const RULE_WRITABLE: &[&str] = &[
    "security_group_id",
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
    "remote_address_group_id",
    "description",
    "project_id",
    "tenant_id",
];
const RULE_READ_ONLY: &[&str] = &[
    "id",
    "created_at",
    "updated_at",
    "revision_number",
    "normalized_cidr",
    "belongs_to_default_sg",
];

/// Protocol names Neutron accepts, with their IP protocol numbers.
const PROTOCOLS: &[(&str, u8)] = &[
    ("ah", 51),
    ("dccp", 33),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("hopopt", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ip", 0),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-frag", 44),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ipv6-route", 43),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("sctp", 132),
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("vrrp", 112),
];
/// Protocols whose port range is a range of ports.
const PORT_PROTOCOLS: &[u8] = &[6, 17, 132, 33, 136];

pub fn target(project: &str) -> Value {
    json!({"project_id": project, "tenant_id": project})
}

fn protocol_number(p: &str) -> Option<u8> {
    PROTOCOLS
        .iter()
        .find(|(n, _)| *n == p)
        .map(|(_, v)| *v)
        .or_else(|| p.parse().ok())
}

impl NetworkService {
    /// The project's default group, made now if it has none yet.
    pub async fn ensure_default_group(&self, project: &str) -> Result<String> {
        {
            let mut c = self.conn().await?;
            if let Some(id) = store::default_group_id(&mut c, project).await? {
                return Ok(id);
            }
        }
        let made = retry_on_conflict(|_| async move {
            let mut tx = self.db.begin_write().await?;
            if let Some(id) = store::default_group_id(&mut tx, project).await? {
                return Ok((id, false));
            }
            let now = now_micros();
            let g = SecurityGroup {
                id: new_id(),
                project_id: project.to_string(),
                name: "default".into(),
                description: "Default security group".into(),
                stateful: true,
                tags: Vec::new(),
                revision_number: 1,
                created_at: now,
                updated_at: now,
            };
            store::insert_group(&mut tx, &g).await?;
            store::insert_default_group(&mut tx, project, &g.id).await?;
            for t in store::list_default_rules(&mut tx).await? {
                if t.used_in_default_sg {
                    store::insert_rule(&mut tx, &rule_from_template(&g, &t, now)).await?;
                }
            }
            tx.commit().await?;
            Ok((g.id, true))
        })
        .await?;
        if made.1 {
            self.push_group(&made.0).await;
        }
        Ok(made.0)
    }

    async fn visible_group(
        &self,
        c: &mut AnyConnection,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<SecurityGroup> {
        match store::get_group(c, id).await? {
            Some(g) if self.allowed(ctx, "get_security_group", &target(&g.project_id)) => Ok(g),
            _ => Err(NetworkError::group_not_found(id)),
        }
    }

    pub async fn list_security_groups(&self, ctx: &AuthContext) -> Result<Vec<Value>> {
        if let Some(p) = ctx.project_id() {
            self.ensure_default_group(p).await?;
        }
        let mut c = self.conn().await?;
        let scope = self.list_scope(ctx);
        let groups = store::list_groups(&mut c, scope.as_deref()).await?;
        let rules = store::list_rules(&mut c, scope.as_deref()).await?;
        Ok(groups
            .iter()
            .filter(|g| {
                scope.is_none() || self.allowed(ctx, "get_security_group", &target(&g.project_id))
            })
            .map(|g| {
                let mine: Vec<Rule> = rules
                    .iter()
                    .filter(|r| r.security_group_id == g.id)
                    .cloned()
                    .collect();
                views::security_group(g, &mine)
            })
            .collect())
    }

    pub async fn show_security_group(&self, ctx: &AuthContext, id: &str) -> Result<Value> {
        let mut c = self.conn().await?;
        let g = self.visible_group(&mut c, ctx, id).await?;
        let rules = store::rules_of_group(&mut c, id).await?;
        Ok(views::security_group(&g, &rules))
    }

    pub async fn create_security_group(&self, ctx: &AuthContext, request: &Value) -> Result<Value> {
        let attrs = body::resource(request, "security_group")?;
        body::check(&attrs, GROUP_WRITABLE, GROUP_READ_ONLY, true)?;
        let project = body::owner(&attrs, &self.project_of(ctx)?)?;
        self.authorize(ctx, "create_security_group", &target(&project))?;
        let name = body::string(&attrs, "name", body::NAME_MAX)?.unwrap_or_default();
        self.ensure_default_group(&project).await?;
        if name == "default" {
            return Err(NetworkError::conflict(
                "SecurityGroupDefaultAlreadyExists",
                "Default security group already exists.",
            ));
        }
        let now = now_micros();
        let g = SecurityGroup {
            id: new_id(),
            project_id: project,
            name,
            description: body::string(&attrs, "description", body::DESCRIPTION_MAX)?
                .unwrap_or_default(),
            stateful: body::boolean(&attrs, "stateful")?.unwrap_or(true),
            tags: body::string_list(&attrs, "tags", body::TAG_MAX)?.unwrap_or_default(),
            revision_number: 1,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.db.begin_write().await?;
        self.check_quota(&mut tx, &g.project_id, "security_group", 1)
            .await
            .map_err(failure)?;
        store::insert_group(&mut tx, &g).await?;
        // A new group gets the template's rules for other groups (by default: everything
        // out), as Neutron's do.
        for t in store::list_default_rules(&mut tx).await? {
            if t.used_in_non_default_sg {
                store::insert_rule(&mut tx, &rule_from_template(&g, &t, now)).await?;
            }
        }
        let rules = store::rules_of_group(&mut tx, &g.id).await?;
        tx.commit().await?;
        self.push_group(&g.id).await;
        Ok(views::security_group(&g, &rules))
    }

    pub async fn update_security_group(
        &self,
        ctx: &AuthContext,
        id: &str,
        request: &Value,
    ) -> Result<Value> {
        let attrs = body::resource(request, "security_group")?;
        let mut ro = GROUP_READ_ONLY.to_vec();
        ro.extend(["project_id", "tenant_id"]);
        body::check(
            &attrs,
            &["name", "description", "stateful", "tags"],
            &ro,
            false,
        )?;
        let mut tx = self.db.begin_write().await?;
        let mut g = self.visible_group(&mut tx, ctx, id).await?;
        self.authorize(ctx, "update_security_group", &target(&g.project_id))?;
        let is_default = store::default_group_id(&mut tx, &g.project_id)
            .await?
            .as_deref()
            == Some(id);
        if let Some(name) = body::string(&attrs, "name", body::NAME_MAX)? {
            if is_default && name != "default" {
                return Err(NetworkError::conflict(
                    "SecurityGroupCannotUpdateDefault",
                    "Updating default security group not allowed.",
                ));
            }
            if !is_default && name == "default" {
                return Err(NetworkError::conflict(
                    "SecurityGroupDefaultAlreadyExists",
                    "Default security group already exists.",
                ));
            }
            g.name = name;
        }
        if let Some(v) = body::string(&attrs, "description", body::DESCRIPTION_MAX)? {
            g.description = v;
        }
        if let Some(v) = body::boolean(&attrs, "stateful")? {
            if v != g.stateful && !store::ports_of_group(&mut tx, id).await?.is_empty() {
                return Err(NetworkError::conflict(
                    "SecurityGroupInUse",
                    format!("Security Group {id} in use."),
                ));
            }
            g.stateful = v;
        }
        if let Some(v) = body::string_list(&attrs, "tags", body::TAG_MAX)? {
            g.tags = v;
        }
        g.revision_number += 1;
        g.updated_at = now_micros();
        store::update_group(&mut tx, &g).await?;
        let rules = store::rules_of_group(&mut tx, id).await?;
        tx.commit().await?;
        self.push_group(id).await;
        Ok(views::security_group(&g, &rules))
    }

    pub async fn delete_security_group(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let g = self.visible_group(&mut tx, ctx, id).await?;
        self.authorize(ctx, "delete_security_group", &target(&g.project_id))?;
        let is_default = store::default_group_id(&mut tx, &g.project_id)
            .await?
            .as_deref()
            == Some(id);
        if is_default && !self.is_admin(ctx) {
            return Err(NetworkError::conflict(
                "SecurityGroupCannotRemoveDefault",
                "Insufficient rights for removing default security group.",
            ));
        }
        if !store::ports_of_group(&mut tx, id).await?.is_empty() {
            return Err(NetworkError::conflict(
                "SecurityGroupInUse",
                format!("Security Group {id} in use."),
            ));
        }
        // Rules elsewhere that name this group as their remote go with it.
        let referring: Vec<Rule> = store::list_rules(&mut tx, None)
            .await?
            .into_iter()
            .filter(|r| r.remote_group_id.as_deref() == Some(id) && r.security_group_id != id)
            .collect();
        for r in &referring {
            store::delete_rule(&mut tx, &r.id).await?;
            store::touch_group(&mut tx, &r.security_group_id, now_micros()).await?;
        }
        store::delete_group(&mut tx, id).await?;
        tx.commit().await?;
        self.push_group(id).await;
        for r in referring {
            self.push_group(&r.security_group_id).await;
        }
        Ok(())
    }

    pub async fn list_security_group_rules(&self, ctx: &AuthContext) -> Result<Vec<Value>> {
        if let Some(p) = ctx.project_id() {
            self.ensure_default_group(p).await?;
        }
        let mut c = self.conn().await?;
        let scope = self.list_scope(ctx);
        Ok(store::list_rules(&mut c, scope.as_deref())
            .await?
            .iter()
            .map(views::rule)
            .collect())
    }

    async fn visible_rule(
        &self,
        c: &mut AnyConnection,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<Rule> {
        match store::get_rule(c, id).await? {
            Some(r) => {
                let group_owner = store::get_group(c, &r.security_group_id)
                    .await?
                    .map(|g| g.project_id);
                let visible = self.allowed(ctx, "get_security_group_rule", &target(&r.project_id))
                    || group_owner
                        .is_some_and(|p| self.allowed(ctx, "get_security_group_rule", &target(&p)));
                if visible {
                    Ok(r)
                } else {
                    Err(NetworkError::rule_not_found(id))
                }
            }
            None => Err(NetworkError::rule_not_found(id)),
        }
    }

    pub async fn show_security_group_rule(&self, ctx: &AuthContext, id: &str) -> Result<Value> {
        let mut c = self.conn().await?;
        Ok(views::rule(&self.visible_rule(&mut c, ctx, id).await?))
    }

    pub async fn create_security_group_rule(
        &self,
        ctx: &AuthContext,
        request: &Value,
    ) -> Result<Value> {
        let attrs = body::resource(request, "security_group_rule")?;
        body::check(&attrs, RULE_WRITABLE, RULE_READ_ONLY, true)?;
        let group_id = body::string(&attrs, "security_group_id", 36)?.ok_or_else(|| {
            NetworkError::bad_request(
                "Failed to parse request. Required attribute 'security_group_id' not specified",
            )
        })?;
        let mut rule = parse_rule(&attrs)?;
        let mut tx = self.db.begin_write().await?;
        let g = self.visible_group(&mut tx, ctx, &group_id).await?;
        self.authorize(ctx, "create_security_group_rule", &target(&g.project_id))?;
        if let Some(remote) = &rule.remote_group_id {
            self.visible_group(&mut tx, ctx, remote).await?;
        }
        rule.security_group_id = g.id.clone();
        rule.project_id = g.project_id.clone();
        if let Some(same) = store::rules_of_group(&mut tx, &g.id)
            .await?
            .iter()
            .find(|r| r.same_as(&rule))
        {
            return Err(NetworkError::conflict(
                "SecurityGroupRuleExists",
                format!(
                    "Security group rule already exists. Rule id is {}.",
                    same.id
                ),
            ));
        }
        self.check_quota(&mut tx, &g.project_id, "security_group_rule", 1)
            .await
            .map_err(failure)?;
        store::insert_rule(&mut tx, &rule).await?;
        store::touch_group(&mut tx, &g.id, now_micros()).await?;
        tx.commit().await?;
        self.push_group(&g.id).await;
        Ok(views::rule(&rule))
    }

    pub async fn delete_security_group_rule(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let r = self.visible_rule(&mut tx, ctx, id).await?;
        let owner = store::get_group(&mut tx, &r.security_group_id)
            .await?
            .map(|g| g.project_id)
            .unwrap_or(r.project_id.clone());
        self.authorize(ctx, "delete_security_group_rule", &target(&owner))?;
        store::delete_rule(&mut tx, id).await?;
        store::touch_group(&mut tx, &r.security_group_id, now_micros()).await?;
        tx.commit().await?;
        self.push_group(&r.security_group_id).await;
        Ok(())
    }
}

const TEMPLATE_WRITABLE: &[&str] = &[
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
    "remote_address_group_id",
    "description",
    "used_in_default_sg",
    "used_in_non_default_sg",
];

/// The default rules template (`security-groups-default-rules`): the rules every new
/// group starts with, read by anyone, changed by administrators.
impl NetworkService {
    pub async fn list_default_rules(&self, ctx: &AuthContext) -> Result<Vec<Value>> {
        self.authorize(ctx, "get_default_security_group_rule", &json!({}))?;
        let mut c = self.conn().await?;
        Ok(store::list_default_rules(&mut c)
            .await?
            .iter()
            .map(views::default_rule)
            .collect())
    }

    pub async fn show_default_rule(&self, ctx: &AuthContext, id: &str) -> Result<Value> {
        self.authorize(ctx, "get_default_security_group_rule", &json!({}))?;
        let mut c = self.conn().await?;
        store::list_default_rules(&mut c)
            .await?
            .iter()
            .find(|r| r.id == id)
            .map(views::default_rule)
            .ok_or_else(|| {
                NetworkError::not_found(
                    "DefaultSecurityGroupRuleNotFound",
                    format!("Default Security Group rule {id} does not exist"),
                )
            })
    }

    pub async fn create_default_rule(&self, ctx: &AuthContext, request: &Value) -> Result<Value> {
        self.authorize(ctx, "create_default_security_group_rule", &json!({}))?;
        let attrs = body::resource(request, "default_security_group_rule")?;
        body::check(&attrs, TEMPLATE_WRITABLE, &["id"], true)?;
        let mut plain = attrs.clone();
        let remote = body::nullable_string(&attrs, "remote_group_id", 36)?.flatten();
        if remote.as_deref().is_some_and(|r| r != "PARENT") {
            return Err(NetworkError::invalid_attr(
                "remote_group_id",
                "only PARENT (the group the rule is added to) may be a template's remote group",
            ));
        }
        for k in [
            "remote_group_id",
            "used_in_default_sg",
            "used_in_non_default_sg",
        ] {
            plain.remove(k);
        }
        let r = parse_rule(&plain)?;
        if remote.is_some() && r.remote_ip_prefix.is_some() {
            return Err(NetworkError::bad(
                "SecurityGroupRemoteGroupAndRemoteIpPrefix",
                "Only remote_ip_prefix or remote_group_id may be provided.",
            ));
        }
        let t = DefaultRule {
            id: new_id(),
            direction: r.direction,
            ethertype: r.ethertype,
            protocol: r.protocol,
            port_range_min: r.port_range_min,
            port_range_max: r.port_range_max,
            remote_ip_prefix: r.remote_ip_prefix,
            remote_group_id: remote,
            description: r.description,
            used_in_default_sg: body::boolean(&attrs, "used_in_default_sg")?.unwrap_or(false),
            used_in_non_default_sg: body::boolean(&attrs, "used_in_non_default_sg")?
                .unwrap_or(true),
        };
        let mut tx = self.db.begin_write().await?;
        if let Some(same) = store::list_default_rules(&mut tx)
            .await?
            .iter()
            .find(|o| o.same_as(&t))
        {
            return Err(NetworkError::conflict(
                "DefaultSecurityGroupRuleExists",
                format!(
                    "Default security group rule already exists. Rule id is {}.",
                    same.id
                ),
            ));
        }
        store::insert_default_rule(&mut tx, &t).await?;
        tx.commit().await?;
        Ok(views::default_rule(&t))
    }

    pub async fn delete_default_rule(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        self.authorize(ctx, "delete_default_security_group_rule", &json!({}))?;
        let mut tx = self.db.begin_write().await?;
        if !store::list_default_rules(&mut tx)
            .await?
            .iter()
            .any(|r| r.id == id)
        {
            return Err(NetworkError::not_found(
                "DefaultSecurityGroupRuleNotFound",
                format!("Default Security Group rule {id} does not exist"),
            ));
        }
        store::delete_default_rule(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }
}

fn failure(f: Failure) -> NetworkError {
    match f {
        Failure::Api(e) => e,
        Failure::Db(e) => e.into(),
    }
}

/// A group's rule from a template rule (`PARENT` as remote group is the group itself).
fn rule_from_template(g: &SecurityGroup, t: &DefaultRule, now: i64) -> Rule {
    Rule {
        id: new_id(),
        security_group_id: g.id.clone(),
        project_id: g.project_id.clone(),
        direction: t.direction.clone(),
        ethertype: t.ethertype.clone(),
        protocol: t.protocol.clone(),
        port_range_min: t.port_range_min,
        port_range_max: t.port_range_max,
        remote_ip_prefix: t.remote_ip_prefix.clone(),
        remote_group_id: t.remote_group_id.as_ref().map(|_| g.id.clone()),
        description: t.description.clone(),
        revision_number: 1,
        created_at: now,
        updated_at: now,
    }
}

/// Validates a rule's attributes as Neutron does (the group is filled in by the caller).
fn parse_rule(attrs: &Attrs) -> Result<Rule> {
    let direction = body::string(attrs, "direction", 16)?.ok_or_else(|| {
        NetworkError::bad_request(
            "Failed to parse request. Required attribute 'direction' not specified",
        )
    })?;
    if direction != "ingress" && direction != "egress" {
        return Err(NetworkError::invalid_attr(
            "direction",
            format!("{direction} is not in ['ingress', 'egress']"),
        ));
    }
    let ethertype = match body::string(attrs, "ethertype", 8)? {
        None => "IPv4".to_string(),
        Some(e) if e.eq_ignore_ascii_case("ipv4") => "IPv4".into(),
        Some(e) if e.eq_ignore_ascii_case("ipv6") => "IPv6".into(),
        Some(e) => {
            return Err(NetworkError::bad("SecurityGroupRuleInvalidEtherType", format!("Security group rule for ethertype '{e}' not supported. Allowed values are ['IPv4', 'IPv6'].")))
        }
    };
    let protocol = match attrs.get("protocol") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::String(s)) if s.is_empty() || s.eq_ignore_ascii_case("any") => None,
        Some(Value::String(s)) => Some(s.to_lowercase()),
        Some(other) => Some(other.to_string()),
    };
    let number = match &protocol {
        None => None,
        Some(p) => Some(protocol_number(p).ok_or_else(|| {
            NetworkError::bad("SecurityGroupRuleInvalidProtocol", format!("Security group rule protocol {p} not supported. Only protocol values {:?} and integer representations [0 to 255] are supported.", PROTOCOLS.iter().map(|(n, _)| *n).collect::<Vec<_>>()))
        })?),
    };
    if ethertype == "IPv4" && matches!(protocol.as_deref(), Some("ipv6-icmp" | "icmpv6" | "58")) {
        return Err(NetworkError::bad(
            "SecurityGroupEthertypeConflictWithProtocol",
            format!(
                "Invalid ethertype {ethertype} for protocol {}.",
                protocol.as_deref().unwrap_or("")
            ),
        ));
    }
    let min = body::integer(attrs, "port_range_min")?.flatten();
    let mut max = body::integer(attrs, "port_range_max")?.flatten();
    match number {
        Some(n) if PORT_PROTOCOLS.contains(&n) => {
            if min.is_some() && max.is_none() {
                max = min;
            }
            for v in [min, max].into_iter().flatten() {
                if !(1..=65535).contains(&v) {
                    return Err(NetworkError::bad(
                        "SecurityGroupInvalidPortValue",
                        format!("Invalid value for port {v}"),
                    ));
                }
            }
            match (min, max) {
                (Some(a), Some(b)) if a > b => {
                    return Err(NetworkError::bad(
                        "SecurityGroupInvalidPortRange",
                        "For TCP/UDP protocols, port_range_min must be <= port_range_max",
                    ))
                }
                (None, Some(_)) => {
                    return Err(NetworkError::bad(
                        "SecurityGroupInvalidPortRange",
                        "For TCP/UDP protocols, port_range_min must be <= port_range_max",
                    ))
                }
                _ => {}
            }
        }
        Some(1 | 58) => {
            for (field, attr, v) in [
                ("type", "port_range_min", min),
                ("code", "port_range_max", max),
            ] {
                if let Some(v) = v {
                    if !(0..=255).contains(&v) {
                        return Err(NetworkError::bad(
                            "SecurityGroupInvalidIcmpValue",
                            format!(
                                "Invalid value for ICMP {field} ({attr}) {v}. It must be 0 to 255."
                            ),
                        ));
                    }
                }
            }
            if min.is_none() && max.is_some() {
                return Err(NetworkError::bad("SecurityGroupMissingIcmpType", format!("ICMP code (port-range-max) {} is provided but ICMP type (port-range-min) is missing.", max.unwrap_or_default())));
            }
        }
        _ => {
            if min.is_some() || max.is_some() {
                return Err(NetworkError::bad("SecurityGroupInvalidProtocolForPortRange", format!("Invalid protocol {} for port range, only supported for TCP, UDP, UDPLITE, SCTP and DCCP.", protocol.as_deref().unwrap_or("None"))));
            }
        }
    }
    let remote_ip_prefix = match body::nullable_string(attrs, "remote_ip_prefix", 64)?.flatten() {
        None => None,
        Some(text) => {
            let c = Cidr::parse(&text, false)
                .map_err(|e| NetworkError::invalid_attr("remote_ip_prefix", e))?;
            let want = if ethertype == "IPv4" { 4 } else { 6 };
            if c.version != want {
                return Err(NetworkError::bad(
                    "SecurityGroupRuleParameterConflict",
                    format!("Conflicting value ethertype {ethertype} for CIDR {text}"),
                ));
            }
            Some(authentic_prefix(&text, &c))
        }
    };
    let remote_group_id = body::nullable_string(attrs, "remote_group_id", 36)?.flatten();
    if remote_ip_prefix.is_some() && remote_group_id.is_some() {
        return Err(NetworkError::bad(
            "SecurityGroupRemoteGroupAndRemoteIpPrefix",
            "Only remote_ip_prefix or remote_group_id may be provided.",
        ));
    }
    if !matches!(
        attrs.get("remote_address_group_id"),
        None | Some(Value::Null)
    ) {
        return Err(NetworkError::invalid(
            "remote_address_group_id is not supported: address groups are not implemented",
        ));
    }
    let now = now_micros();
    Ok(Rule {
        id: new_id(),
        security_group_id: String::new(),
        project_id: String::new(),
        direction,
        ethertype,
        protocol,
        port_range_min: min,
        port_range_max: max,
        remote_ip_prefix,
        remote_group_id,
        description: body::string(attrs, "description", body::DESCRIPTION_MAX)?.unwrap_or_default(),
        revision_number: 1,
        created_at: now,
        updated_at: now,
    })
}

/// The prefix as the user wrote it (Neutron's `AuthenticIPNetwork`): `10.2.3.124/24` stays
/// so, a bare address gets its full length (`10.0.0.1/32`); the network form is the rule's
/// `normalized_cidr`, which duplicate checks and the data plane use.
fn authentic_prefix(text: &str, parsed: &Cidr) -> String {
    let addr = text.split_once('/').map_or(text, |(a, _)| a);
    match addr.parse::<std::net::IpAddr>() {
        Ok(ip) => format!("{ip}/{}", parsed.prefix),
        Err(_) => parsed.to_string(),
    }
}
