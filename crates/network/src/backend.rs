//! What the Networking service tells the component that realizes networks (OVN in
//! production). After each committed change the service hands the backend the complete
//! desired state of the object that changed; every method is idempotent (a repeat with the
//! same state changes nothing), so a call may be retried or replayed by the reconciler.
//! A failure is logged and left to the periodic [`NetworkBackend::full_sync`], which gets
//! the whole [`Snapshot`] and must make the backend match it, removing what is not in it
//! (as ML2/OVN's maintenance task repairs drift between Neutron's database and OVN).

use std::future::Future;
use std::pin::Pin;

use crate::model::{
    FloatingIp, Network, Port, PortForwarding, Router, Rule, SecurityGroup, Subnet,
};

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
#[error("network backend: {0}")]
pub struct BackendError(pub String);

/// A network with everything needed to build its logical switch: its subnets (DHCP
/// options come from them), its metadata port and its segment (`network_type`, `physical_network`,
/// `segmentation_id` in [`Network`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkState {
    pub network: Network,
    pub subnets: Vec<Subnet>,
    /// The network's metadata port (`network:distributed`), whose address on each DHCP
    /// subnet is where guests reach 169.254.169.254 (a DHCP classless route).
    pub metadata_port: Option<Port>,
}

/// One fixed IP with the facts of its subnet a switch port and DHCP need.
#[derive(Debug, Clone, PartialEq)]
pub struct PortAddress {
    pub subnet_id: String,
    pub ip_address: String,
    pub ip_version: i64,
    pub cidr: String,
    pub gateway_ip: Option<String>,
    pub enable_dhcp: bool,
    pub dns_nameservers: Vec<String>,
    pub ipv6_address_mode: Option<String>,
}

/// A port with its network's relevant facts, its security groups and its addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct PortState {
    pub port: Port,
    pub network_mtu: i64,
    pub network_type: String,
    pub physical_network: Option<String>,
    pub segmentation_id: Option<i64>,
    pub network_external: bool,
    pub security_group_ids: Vec<String>,
    pub addresses: Vec<PortAddress>,
}

/// A security group with its rules (the port group and ACLs of OVN).
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityGroupState {
    pub group: SecurityGroup,
    pub rules: Vec<Rule>,
}

/// A router with its gateway port (on an external network) and its interface ports, each
/// with its addresses and their subnets (OVN's logical router and router ports, SNAT).
#[derive(Debug, Clone, PartialEq)]
pub struct RouterState {
    pub router: Router,
    pub gateway: Option<PortState>,
    pub interfaces: Vec<PortState>,
}

/// A floating IP: the external address, the fixed address and port it maps to, and the
/// router doing the translation (OVN's dnat_and_snat NAT rule) when associated; or its
/// port forwardings through `router_id` (OVN load balancers on that router).
#[derive(Debug, Clone, PartialEq)]
pub struct FloatingIpState {
    pub floating_ip: FloatingIp,
    pub port_forwardings: Vec<PortForwarding>,
}

/// Everything, of every project: what the backend should hold after a full sync.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub networks: Vec<NetworkState>,
    pub ports: Vec<PortState>,
    pub security_groups: Vec<SecurityGroupState>,
    pub routers: Vec<RouterState>,
    pub floating_ips: Vec<FloatingIpState>,
}

/// One agent as Neutron's agents API shows it. ML2/OVN keeps no agent table: it derives
/// its agents from the Southbound chassis (an OVN Controller agent and an OVN Metadata
/// agent per chassis), and so does the OVN backend. Times are microseconds since the epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub id: String,
    pub agent_type: String,
    pub binary: String,
    pub host: String,
    pub topic: String,
    pub availability_zone: String,
    pub description: String,
    pub configurations: serde_json::Value,
    pub alive: bool,
    pub admin_state_up: bool,
    pub created_at: i64,
    pub started_at: i64,
    pub heartbeat_timestamp: i64,
}

pub trait NetworkBackend: Send + Sync + 'static {
    /// A short name for logs (`fake`, `ovn`).
    fn name(&self) -> &'static str;
    /// Whether the backend reports ports up ([`crate::NetworkService::set_port_status`])
    /// once the data plane has them; Compute waits for that before a server is ACTIVE.
    fn reports_port_status(&self) -> bool {
        false
    }
    fn sync_network<'a>(&'a self, state: &'a NetworkState) -> BoxFut<'a, Result<(), BackendError>>;
    fn delete_network<'a>(&'a self, network_id: &'a str) -> BoxFut<'a, Result<(), BackendError>>;
    fn sync_port<'a>(&'a self, state: &'a PortState) -> BoxFut<'a, Result<(), BackendError>>;
    fn delete_port<'a>(&'a self, state: &'a PortState) -> BoxFut<'a, Result<(), BackendError>>;
    fn sync_security_group<'a>(
        &'a self,
        state: &'a SecurityGroupState,
    ) -> BoxFut<'a, Result<(), BackendError>>;
    fn delete_security_group<'a>(
        &'a self,
        group_id: &'a str,
    ) -> BoxFut<'a, Result<(), BackendError>>;
    fn sync_router<'a>(&'a self, state: &'a RouterState) -> BoxFut<'a, Result<(), BackendError>>;
    fn delete_router<'a>(&'a self, router_id: &'a str) -> BoxFut<'a, Result<(), BackendError>>;
    fn sync_floating_ip<'a>(
        &'a self,
        state: &'a FloatingIpState,
    ) -> BoxFut<'a, Result<(), BackendError>>;
    fn delete_floating_ip<'a>(
        &'a self,
        floating_ip_id: &'a str,
    ) -> BoxFut<'a, Result<(), BackendError>>;
    /// Makes the backend hold exactly `snapshot`.
    fn full_sync<'a>(&'a self, snapshot: &'a Snapshot) -> BoxFut<'a, Result<(), BackendError>>;

    /// The agents realizing the networks (`GET /v2.0/agents`); none unless the backend has
    /// some to show.
    fn list_agents(&self) -> BoxFut<'_, Result<Vec<Agent>, BackendError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Sets an agent's description; `false` when there is no such agent.
    fn set_agent_description<'a>(
        &'a self,
        _agent_id: &'a str,
        _description: &'a str,
    ) -> BoxFut<'a, Result<bool, BackendError>> {
        Box::pin(async { Ok(false) })
    }

    /// Forgets an agent (ML2/OVN removes its chassis); `false` when there is no such agent.
    fn delete_agent<'a>(&'a self, _agent_id: &'a str) -> BoxFut<'a, Result<bool, BackendError>> {
        Box::pin(async { Ok(false) })
    }
}
