//! Security groups as Compute reads and asks for them from the Networking service, in
//! Neutron's terms (groups with directional rules, ports carrying group ids). Nova's API
//! proxies these: `os-security-groups`, `os-security-group-rules`, a server's groups and
//! the `addSecurityGroup`/`removeSecurityGroup` actions; the translation to Nova's format
//! lives in the compute service and API, not here.

use serde::{Deserialize, Serialize};

/// A security group, with its rules (as Neutron's `security_group` shows them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecGroup {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub project_id: String,
    #[serde(default, rename = "security_group_rules")]
    pub rules: Vec<SecRule>,
}

/// One rule of a group (Neutron's `security_group_rule`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecRule {
    pub id: String,
    pub security_group_id: String,
    /// `ingress` or `egress`.
    pub direction: String,
    #[serde(default)]
    pub ethertype: String,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub port_range_min: Option<i64>,
    #[serde(default)]
    pub port_range_max: Option<i64>,
    #[serde(default)]
    pub remote_ip_prefix: Option<String>,
    #[serde(default)]
    pub remote_group_id: Option<String>,
}

/// A rule to add: always ingress (Nova's API knows no other direction).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRule {
    pub security_group_id: String,
    /// `IPv4` or `IPv6`.
    pub ethertype: String,
    pub protocol: Option<String>,
    pub port_range_min: Option<i64>,
    pub port_range_max: Option<i64>,
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
}

/// One port of a server and the groups on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortGroups {
    pub port_id: String,
    /// Group ids, in the port's order.
    pub security_groups: Vec<String>,
    /// Groups can apply: port security is on and the port has an address.
    pub can_have_groups: bool,
}
