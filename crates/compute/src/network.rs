//! How Compute reaches the Networking service for a server's NICs, as Nova calls Neutron:
//! the [`Networking`] trait, the NIC request of a boot (`networks` in `POST /servers`), and
//! [`Vif`], one NIC as Nova's network info cache keeps it (address, MAC, MTU, the subnet facts
//! the metadata service and config drive hand to the guest).
//!
//! The trait keeps the Compute crate free of the Networking service's internals: the binary
//! plugs the real service in, tests plug [`fake::FakeNetworking`]. Every call a workflow makes
//! is idempotent, because a step that crashed half-way runs again: `allocate` finds the
//! ports it made before, `deallocate` of a server without ports is fine.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::host::BoxFut;

pub mod fake;
pub mod groups;
pub mod neutron;

use ferrostack_common::AuthContext;
pub use groups::{NewRule, PortGroups, SecGroup, SecRule};

/// One requested NIC: a network (optionally with a fixed IP) or an existing port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// What a boot asked for, from the `networks` member of `POST /servers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkRequest {
    /// `"auto"`, or no `networks` before 2.37: the project's one usable network, if any.
    Auto,
    /// `"none"`: no NIC at all.
    None,
    /// An explicit list (possibly empty).
    Nics(Vec<NicRequest>),
}

impl NetworkRequest {
    /// The existing ports the request names (the user's: kept when the server goes).
    pub fn user_ports(&self) -> Vec<String> {
        match self {
            NetworkRequest::Nics(list) => list.iter().filter_map(|n| n.port_id.clone()).collect(),
            _ => Vec::new(),
        }
    }

    /// Reads the request as the server's stored boot request keeps it (the validated JSON of
    /// the API: `null`, `"auto"`, `"none"` or a list of `{uuid, port, fixed_ip, tag}`).
    pub fn from_stored(v: &Value) -> NetworkRequest {
        match v {
            Value::String(s) if s == "none" => NetworkRequest::None,
            Value::Array(list) => NetworkRequest::Nics(
                list.iter()
                    .map(|n| {
                        let s = |k: &str| n.get(k).and_then(|v| v.as_str()).map(str::to_string);
                        NicRequest {
                            network_id: s("uuid"),
                            port_id: s("port"),
                            fixed_ip: s("fixed_ip"),
                            tag: s("tag"),
                        }
                    })
                    .collect(),
            ),
            _ => NetworkRequest::Auto,
        }
    }
}

/// One IP address of a NIC, with what the guest needs to configure it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VifIp {
    pub address: String,
    pub version: u8,
    /// The subnet's CIDR (`10.0.0.0/24`).
    pub cidr: String,
    pub subnet_id: String,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub dns_nameservers: Vec<String>,
    /// `(destination, nexthop)` pairs.
    #[serde(default)]
    pub host_routes: Vec<(String, String)>,
    #[serde(default)]
    pub dhcp: bool,
}

/// One NIC of a server (Nova's VIF in its network info cache).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vif {
    pub port_id: String,
    pub network_id: String,
    /// The network's name: the label of `addresses` in server views.
    pub network_name: String,
    pub mac: String,
    #[serde(default)]
    pub mtu: Option<u32>,
    pub fixed_ips: Vec<VifIp>,
    #[serde(default)]
    pub floating_ips: Vec<String>,
    /// The user made the port and passed it in: a delete unbinds it instead of deleting it.
    #[serde(default)]
    pub preserve_on_delete: bool,
    #[serde(default)]
    pub tag: Option<String>,
    /// `ACTIVE` once the data plane has the port up.
    #[serde(default)]
    pub status: String,
    /// The network's metadata port, through which the host's metadata proxy answers
    /// 169.254.169.254 on this network (none when the network has no DHCP subnet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_port: Option<MetadataPort>,
}

/// A network's metadata port (`device_owner` `network:distributed`, `device_id`
/// `ovnmeta-<network id>`): the compute host gives its MAC and addresses to the inside end
/// of the network's metadata namespace, and OVN delivers it the guests' requests to
/// 169.254.169.254 (DHCP routes them through its address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataPort {
    pub id: String,
    pub mac: String,
    /// Its addresses with their subnets' prefix lengths (`10.0.0.2/24`).
    pub ips: Vec<String>,
}

/// Why the Networking service refused or could not act.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum NetError {
    /// A network, port or group the request names does not exist (for the caller).
    #[error("{0}")]
    NotFound(String),
    /// Nova answers 409: a port in use, several possible networks, no address left.
    #[error("{0}")]
    Conflict(String),
    /// The request itself is wrong (400).
    #[error("{0}")]
    Bad(String),
    /// Worth retrying (the service is busy or restarting).
    #[error("{0}")]
    Transient(String),
}

/// What the compute API and workflows need from the Networking service.
pub trait Networking: Send + Sync + 'static {
    /// Checks a boot's request before anything is written: the networks and ports exist for
    /// the project, ports are free, `auto` finds at most one network, the security groups
    /// exist. Answers the number of NICs the server will get.
    fn check_request<'a>(
        &'a self,
        project_id: &'a str,
        request: &'a NetworkRequest,
        security_groups: &'a [String],
    ) -> BoxFut<'a, Result<usize, NetError>>;

    /// Creates (or finds, when run again) the server's ports, bound to `host`, and answers
    /// its NICs in the requested order.
    fn allocate<'a>(
        &'a self,
        project_id: &'a str,
        server_id: &'a str,
        host: &'a str,
        request: &'a NetworkRequest,
        security_groups: &'a [String],
    ) -> BoxFut<'a, Result<Vec<Vif>, NetError>>;

    /// Deletes the ports made for the server and unbinds `user_ports` (those the user passed
    /// in); fine when the server has none.
    fn deallocate<'a>(
        &'a self,
        server_id: &'a str,
        user_ports: &'a [String],
    ) -> BoxFut<'a, Result<(), NetError>>;

    /// Makes (or finds, when run again) one more port of the server, bound to `host`, for
    /// an interface attachment: a port on `nic`'s network (with its fixed IP, if any), or
    /// the user's port `nic` names, which gets bound (refused when another device has it).
    /// `known` are the server's ports before the attachment: a port Compute made for the
    /// server on that network that is not among them was made by an earlier run.
    fn attach_port<'a>(
        &'a self,
        project_id: &'a str,
        server_id: &'a str,
        host: &'a str,
        nic: &'a NicRequest,
        known: &'a [String],
    ) -> BoxFut<'a, Result<Vif, NetError>>;

    /// Gives one port of the server back: unbinds it when `preserve` (the user's own),
    /// deletes it otherwise. Fine when it is gone or no longer the server's.
    fn detach_port<'a>(
        &'a self,
        server_id: &'a str,
        port_id: &'a str,
        preserve: bool,
    ) -> BoxFut<'a, Result<(), NetError>>;

    /// The server's NICs as the Networking service sees them now.
    fn vifs<'a>(&'a self, server_id: &'a str) -> BoxFut<'a, Result<Vec<Vif>, NetError>>;

    /// The security groups `auth` sees: every visible one when `all_projects`, otherwise
    /// those of the caller's project (Nova lists with `tenant_id` of the caller).
    fn list_security_groups<'a>(
        &'a self,
        auth: &'a AuthContext,
        all_projects: bool,
    ) -> BoxFut<'a, Result<Vec<SecGroup>, NetError>>;

    fn show_security_group<'a>(
        &'a self,
        auth: &'a AuthContext,
        id: &'a str,
    ) -> BoxFut<'a, Result<SecGroup, NetError>>;

    /// A new group of the caller's project.
    fn create_security_group<'a>(
        &'a self,
        auth: &'a AuthContext,
        name: &'a str,
        description: &'a str,
    ) -> BoxFut<'a, Result<SecGroup, NetError>>;

    fn update_security_group<'a>(
        &'a self,
        auth: &'a AuthContext,
        id: &'a str,
        name: &'a str,
        description: &'a str,
    ) -> BoxFut<'a, Result<SecGroup, NetError>>;

    /// Refused (conflict) while ports use the group, and for the project's default group.
    fn delete_security_group<'a>(
        &'a self,
        auth: &'a AuthContext,
        id: &'a str,
    ) -> BoxFut<'a, Result<(), NetError>>;

    fn show_security_group_rule<'a>(
        &'a self,
        auth: &'a AuthContext,
        id: &'a str,
    ) -> BoxFut<'a, Result<SecRule, NetError>>;

    fn create_security_group_rule<'a>(
        &'a self,
        auth: &'a AuthContext,
        rule: &'a NewRule,
    ) -> BoxFut<'a, Result<SecRule, NetError>>;

    fn delete_security_group_rule<'a>(
        &'a self,
        auth: &'a AuthContext,
        id: &'a str,
    ) -> BoxFut<'a, Result<(), NetError>>;

    /// The ports of a server with their groups (the caller may see the server).
    fn server_ports<'a>(
        &'a self,
        auth: &'a AuthContext,
        server_id: &'a str,
    ) -> BoxFut<'a, Result<Vec<PortGroups>, NetError>>;

    /// Sets the groups of a port (ids), as `PUT /ports/{id}` with `security_groups` does.
    fn set_port_security_groups<'a>(
        &'a self,
        auth: &'a AuthContext,
        port_id: &'a str,
        groups: &'a [String],
    ) -> BoxFut<'a, Result<(), NetError>>;

    /// Whether ports turn `ACTIVE` when the data plane has them up (OVN does; a backend
    /// with no data plane never says so, and then a boot does not wait for it).
    fn reports_port_status(&self) -> bool {
        false
    }
}
