//! The resources as stored. Lists that belong to one row (pools, routes, address pairs,
//! DHCP options, tags) are kept as JSON text; fixed IPs and a port's security groups have
//! tables of their own because uniqueness and lookups depend on them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::ipam::Pool;

/// Device owners Neutron itself creates ports for; deleting the network deletes them.
pub const OWNER_DHCP: &str = "network:dhcp";
pub const OWNER_DISTRIBUTED: &str = "network:distributed";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Network {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub shared: bool,
    pub external: bool,
    pub mtu: i64,
    pub port_security_enabled: bool,
    /// `geneve` for tenant networks, `flat` for provider networks on a physical network.
    pub network_type: String,
    pub physical_network: Option<String>,
    pub segmentation_id: Option<i64>,
    pub is_default: bool,
    pub dns_domain: String,
    pub tags: Vec<String>,
    pub revision_number: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Projects an `access_as_shared` RBAC policy names (not `*`, which is `shared`); read
    /// with the network, not a column.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_with: Vec<String>,
}

/// An RBAC policy: `action` on the object granted to `target_project` (a project or `*`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RbacPolicy {
    pub id: String,
    pub project_id: String,
    pub object_type: String,
    pub object_id: String,
    pub action: String,
    pub target_project: String,
}

pub const ACCESS_SHARED: &str = "access_as_shared";
pub const ACCESS_EXTERNAL: &str = "access_as_external";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HostRoute {
    pub destination: String,
    pub nexthop: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Subnet {
    pub id: String,
    pub network_id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub ip_version: i64,
    pub cidr: String,
    pub gateway_ip: Option<String>,
    pub allocation_pools: Vec<Pool>,
    pub dns_nameservers: Vec<String>,
    pub host_routes: Vec<HostRoute>,
    pub enable_dhcp: bool,
    pub ipv6_ra_mode: Option<String>,
    pub ipv6_address_mode: Option<String>,
    pub service_types: Vec<String>,
    /// The subnet pool the CIDR was allocated from.
    pub subnetpool_id: Option<String>,
    pub tags: Vec<String>,
    pub revision_number: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Subnet {
    /// Addresses of this subnet come from the MAC (SLAAC or DHCPv6-stateless), not the pools.
    pub fn is_auto_address(&self) -> bool {
        self.ip_version == 6
            && matches!(
                self.ipv6_address_mode.as_deref(),
                Some("slaac") | Some("dhcpv6-stateless")
            )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AddressPair {
    pub ip_address: String,
    pub mac_address: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DhcpOpt {
    pub opt_name: String,
    pub opt_value: String,
    pub ip_version: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Port {
    pub id: String,
    pub network_id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub mac_address: String,
    pub device_id: String,
    pub device_owner: String,
    /// `DOWN` until the backend reports the port up (`ACTIVE`).
    pub status: String,
    pub fixed_ips: Vec<FixedIp>,
    /// `binding:host_id`; empty while unbound.
    pub host: String,
    pub vnic_type: String,
    pub profile: Value,
    pub allowed_address_pairs: Vec<AddressPair>,
    pub port_security_enabled: bool,
    pub security_groups: Vec<String>,
    pub extra_dhcp_opts: Vec<DhcpOpt>,
    pub dns_name: String,
    pub tags: Vec<String>,
    pub revision_number: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Port {
    /// `binding:vif_type`: `ovs` once bound to a host, as ML2/OVN reports.
    pub fn vif_type(&self) -> &'static str {
        if self.host.is_empty() {
            "unbound"
        } else {
            "ovs"
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SecurityGroup {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub stateful: bool,
    pub tags: Vec<String>,
    pub revision_number: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rule {
    pub id: String,
    pub security_group_id: String,
    pub project_id: String,
    pub direction: String,
    pub ethertype: String,
    pub protocol: Option<String>,
    pub port_range_min: Option<i64>,
    pub port_range_max: Option<i64>,
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
    pub description: String,
    pub revision_number: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Rule {
    /// Two rules are the same rule when everything but id, description and times match.
    pub fn same_as(&self, other: &Rule) -> bool {
        self.security_group_id == other.security_group_id
            && self.direction == other.direction
            && self.ethertype == other.ethertype
            && self.protocol == other.protocol
            && self.port_range_min == other.port_range_min
            && self.port_range_max == other.port_range_max
            && self.remote_ip_prefix.as_deref().map(normalized)
                == other.remote_ip_prefix.as_deref().map(normalized)
            && self.remote_group_id == other.remote_group_id
    }
}

/// A prefix with its host bits cleared (`10.2.3.124/24` is `10.2.3.0/24`).
pub fn normalized(prefix: &str) -> String {
    crate::ipam::Cidr::parse(prefix, false)
        .map(|c| c.to_string())
        .unwrap_or_else(|_| prefix.to_string())
}

/// Device owners of the ports a router holds.
pub const OWNER_ROUTER_INTERFACE: &str = "network:router_interface";
pub const OWNER_ROUTER_GATEWAY: &str = "network:router_gateway";
pub const OWNER_FLOATINGIP: &str = "network:floatingip";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Route {
    pub destination: String,
    pub nexthop: String,
}

/// A router. Its interfaces are ports (`network:router_interface`, `device_id` the router)
/// holding each subnet's gateway address; its gateway is a port on an external network.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Router {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub gateway_network_id: Option<String>,
    pub gateway_port_id: Option<String>,
    pub enable_snat: bool,
    pub routes: Vec<Route>,
    pub tags: Vec<String>,
    pub revision_number: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A floating IP: an address on an external network (held by a `network:floatingip` port)
/// and, when associated, the fixed address of a port it is translated to by `router_id`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FloatingIp {
    pub id: String,
    pub project_id: String,
    pub floating_network_id: String,
    pub floating_ip_address: String,
    pub floating_port_id: String,
    pub port_id: Option<String>,
    pub fixed_ip_address: Option<String>,
    pub router_id: Option<String>,
    pub description: String,
    pub tags: Vec<String>,
    pub revision_number: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A port forwarding of a floating IP: traffic of `protocol` to the floating address's
/// `external_port` goes to `internal_ip_address:internal_port`, a fixed address of
/// `internal_port_id` (`floating-ip-port-forwarding`). A floating IP with forwardings is
/// not associated with a port; its `router_id` is the router that reaches the ports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PortForwarding {
    pub id: String,
    pub floatingip_id: String,
    pub project_id: String,
    pub protocol: String,
    pub internal_ip_address: String,
    pub internal_port: i64,
    pub external_port: i64,
    pub internal_port_id: String,
    pub description: String,
}

/// A pool of prefixes subnets may be allocated from (`subnet_allocation`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SubnetPool {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub prefixes: Vec<String>,
    pub ip_version: i64,
    pub default_prefixlen: i64,
    pub min_prefixlen: i64,
    pub max_prefixlen: i64,
    pub default_quota: Option<i64>,
    pub shared: bool,
    pub is_default: bool,
    /// The address scope the pool's prefixes belong to.
    pub address_scope_id: Option<String>,
    pub tags: Vec<String>,
    pub revision_number: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An address scope (`address-scope`): subnet pools in one scope never share an address,
/// so addresses from it are unique across every network that draws from it. Neutron gives
/// scopes no standard attributes (no description, tags, revision or timestamps).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AddressScope {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub shared: bool,
    pub ip_version: i64,
}

/// The address scope of a network per IP version: that of the pool its subnets of that
/// version were allocated from (all of them share one scope).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkScopes {
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
}

/// A rule of the default rules template: copied into new groups (`used_in_default_sg` for
/// projects' `default` groups, `used_in_non_default_sg` for the others). A remote group of
/// `PARENT` stands for the new group itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DefaultRule {
    pub id: String,
    pub direction: String,
    pub ethertype: String,
    pub protocol: Option<String>,
    pub port_range_min: Option<i64>,
    pub port_range_max: Option<i64>,
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
    pub description: String,
    pub used_in_default_sg: bool,
    pub used_in_non_default_sg: bool,
}

impl DefaultRule {
    pub fn same_as(&self, o: &DefaultRule) -> bool {
        self.direction == o.direction
            && self.ethertype == o.ethertype
            && self.protocol == o.protocol
            && self.port_range_min == o.port_range_min
            && self.port_range_max == o.port_range_max
            && self.remote_ip_prefix == o.remote_ip_prefix
            && self.remote_group_id == o.remote_group_id
            && self.used_in_default_sg == o.used_in_default_sg
            && self.used_in_non_default_sg == o.used_in_non_default_sg
    }
}
