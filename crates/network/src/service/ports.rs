//! Ports and IP address management. A port's addresses come from the request (an address,
//! a subnet, or both) or automatically: one from the first IPv4 subnet with room, one from
//! the first stateful IPv6 subnet, and the EUI-64 address of every SLAAC subnet. An
//! address is claimed by inserting its (subnet, address) row: two writers racing for the
//! same address cannot both commit, and the loser starts again with a random free address.

use std::collections::HashSet;

use ferrostack_common::time::now_micros;
use ferrostack_common::AuthContext;
use ferrostack_db::sqlx::AnyConnection;
use serde_json::{json, Value};

use super::body::{self, Attrs};
use super::{new_id, retry_on_conflict, Failure, NetworkService};
use crate::error::{NetworkError, Result};
use crate::ipam::{self, Cidr};
use crate::model::*;
use crate::store;
use crate::views;

const WRITABLE: &[&str] = &[
    "network_id",
    "name",
    "description",
    "admin_state_up",
    "mac_address",
    "fixed_ips",
    "device_id",
    "device_owner",
    "binding:host_id",
    "binding:vnic_type",
    "binding:profile",
    "allowed_address_pairs",
    "port_security_enabled",
    "security_groups",
    "extra_dhcp_opts",
    "dns_name",
    "project_id",
    "tenant_id",
    "tags",
];
const READ_ONLY: &[&str] = &[
    "id",
    "status",
    "binding:vif_type",
    "binding:vif_details",
    "ip_allocation",
    "created_at",
    "updated_at",
    "revision_number",
];
pub const VNIC_TYPES: &[&str] = &[
    "normal",
    "direct",
    "macvtap",
    "baremetal",
    "direct-physical",
    "virtio-forwarder",
    "smart-nic",
    "vdpa",
    "remote-managed",
];
/// Neutron's `max_allowed_address_pair`.
const MAX_ADDRESS_PAIRS: usize = 10;

/// One requested fixed IP: an address, a subnet, or both.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IpRequest {
    pub subnet_id: Option<String>,
    pub ip_address: Option<String>,
}

/// A port to create, validated except for what needs the database.
#[derive(Debug, Clone)]
pub(crate) struct PortSpec {
    pub project_id: String,
    pub network_id: String,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub mac_address: Option<String>,
    pub fixed_ips: Option<Vec<IpRequest>>,
    pub device_id: String,
    pub device_owner: String,
    pub host: String,
    pub vnic_type: String,
    pub profile: Value,
    pub allowed_address_pairs: Vec<AddressPair>,
    pub port_security_enabled: Option<bool>,
    /// Group ids, already checked to belong to the project.
    pub security_groups: Option<Vec<String>>,
    pub extra_dhcp_opts: Vec<DhcpOpt>,
    pub dns_name: String,
    pub tags: Vec<String>,
}

/// The policy target of a port (its network's owner and sharing included).
pub fn target(p_project: &str, n: &Network) -> Value {
    json!({"project_id": p_project, "tenant_id": p_project, "network:project_id": n.project_id, "network_id": n.id, "shared": n.shared, "shared_with": n.shared_with, "router:external": n.external})
}

pub(crate) fn parse_ip_requests(items: &[Value]) -> Result<Vec<IpRequest>> {
    let mut out = Vec::new();
    for i in items {
        let o = i.as_object().ok_or_else(|| {
            NetworkError::invalid_attr("fixed_ips", format!("'{i}' is not a valid fixed IP"))
        })?;
        if let Some(k) = o.keys().find(|k| *k != "subnet_id" && *k != "ip_address") {
            return Err(NetworkError::invalid_attr(
                "fixed_ips",
                format!("Unrecognized attribute '{k}' of a fixed IP"),
            ));
        }
        let r = IpRequest {
            subnet_id: body::string(o, "subnet_id", 36)?,
            ip_address: body::string(o, "ip_address", 64)?,
        };
        if r.subnet_id.is_none() && r.ip_address.is_none() {
            return Err(NetworkError::invalid_attr(
                "fixed_ips",
                "a fixed IP needs a subnet_id or an ip_address",
            ));
        }
        out.push(r);
    }
    Ok(out)
}

fn parse_pairs(items: &[Value], mac: Option<&str>) -> Result<Vec<AddressPair>> {
    if items.len() > MAX_ADDRESS_PAIRS {
        return Err(NetworkError::bad(
            "AllowedAddressPairExhausted",
            format!("The number of allowed address pair exceeds the maximum {MAX_ADDRESS_PAIRS}."),
        ));
    }
    let mut out: Vec<AddressPair> = Vec::new();
    for i in items {
        let o = i.as_object().ok_or_else(|| {
            NetworkError::invalid_attr(
                "allowed_address_pairs",
                format!("'{i}' is not a valid address pair"),
            )
        })?;
        if let Some(k) = o.keys().find(|k| *k != "ip_address" && *k != "mac_address") {
            return Err(NetworkError::bad_request(format!(
                "Unrecognized attribute(s) '{k}'"
            )));
        }
        let ip = body::string(o, "ip_address", 64)?.ok_or_else(|| {
            NetworkError::bad(
                "AllowedAddressPairsMissingIP",
                "AllowedAddressPair must contain ip_address",
            )
        })?;
        let ip = if ip.contains('/') {
            Cidr::parse(&ip, false).map(|c| c.to_string())
        } else {
            ipam::normalize_ip(&ip).ok_or_else(|| format!("'{ip}' is not a valid IP address"))
        }
        .map_err(|e| NetworkError::invalid_attr("allowed_address_pairs", e))?;
        let mac = match body::string(o, "mac_address", 32)? {
            Some(m) => ipam::normalize_mac(&m).ok_or_else(|| {
                NetworkError::invalid_attr(
                    "allowed_address_pairs",
                    format!("'{m}' is not a valid MAC address"),
                )
            })?,
            None => mac.unwrap_or_default().to_string(),
        };
        let pair = AddressPair {
            ip_address: ip,
            mac_address: mac,
        };
        if out.contains(&pair) {
            return Err(NetworkError::bad(
                "DuplicateAddressPairInRequest",
                format!(
                    "Request contains duplicate address pair: mac_address {} ip_address {}.",
                    pair.mac_address, pair.ip_address
                ),
            ));
        }
        out.push(pair);
    }
    Ok(out)
}

fn parse_dhcp_opts(items: &[Value]) -> Result<Vec<DhcpOpt>> {
    let mut out = Vec::new();
    for i in items {
        let o = i.as_object().ok_or_else(|| {
            NetworkError::invalid_attr(
                "extra_dhcp_opts",
                format!("'{i}' is not a valid DHCP option"),
            )
        })?;
        let name = body::string(o, "opt_name", 64)?
            .filter(|n| !n.is_empty())
            .ok_or_else(|| NetworkError::invalid_attr("extra_dhcp_opts", "opt_name is required"))?;
        let value = match o.get("opt_value") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let ip_version = match body::integer(o, "ip_version")?.flatten() {
            None | Some(4) => 4,
            Some(6) => 6,
            Some(v) => {
                return Err(NetworkError::invalid_attr(
                    "extra_dhcp_opts",
                    format!("ip_version {v} is not in [4, 6]"),
                ))
            }
        };
        out.push(DhcpOpt {
            opt_name: name,
            opt_value: value,
            ip_version,
        });
    }
    Ok(out)
}

fn parse_profile(attrs: &Attrs) -> Result<Option<Value>> {
    match attrs.get("binding:profile") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(json!({}))),
        Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
        Some(other) => Err(NetworkError::invalid_attr(
            "binding:profile",
            format!("'{other}' is not a dictionary"),
        )),
    }
}

fn parse_vnic(attrs: &Attrs) -> Result<Option<String>> {
    match body::string(attrs, "binding:vnic_type", 64)? {
        Some(v) if VNIC_TYPES.contains(&v.as_str()) => Ok(Some(v)),
        Some(v) => Err(NetworkError::invalid_attr(
            "binding:vnic_type",
            format!("'{v}' is not in {VNIC_TYPES:?}"),
        )),
        None => Ok(None),
    }
}

impl NetworkService {
    pub(crate) async fn visible_port(
        &self,
        c: &mut AnyConnection,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<(Port, Network)> {
        if let Some(p) = store::get_port(c, id).await? {
            if let Some(n) = store::get_network(c, &p.network_id).await? {
                if self.allowed(ctx, "get_port", &target(&p.project_id, &n)) {
                    return Ok((p, n));
                }
            }
        }
        Err(NetworkError::port_not_found(id))
    }

    pub(crate) fn port_json(&self, ctx: &AuthContext, p: &Port, n: &Network) -> Value {
        let mut v = views::port(p);
        self.strip(ctx, "port", &target(&p.project_id, n), &mut v);
        v
    }

    pub async fn list_ports(&self, ctx: &AuthContext) -> Result<Vec<Value>> {
        let mut c = self.conn().await?;
        let scope = self.list_scope(ctx);
        let ports = store::list_ports(&mut c, scope.as_deref()).await?;
        let networks = store::list_networks(&mut c, None).await?;
        Ok(ports
            .iter()
            .filter_map(|p| {
                let n = networks.iter().find(|n| n.id == p.network_id)?;
                (scope.is_none() || self.allowed(ctx, "get_port", &target(&p.project_id, n)))
                    .then(|| self.port_json(ctx, p, n))
            })
            .collect())
    }

    pub async fn show_port(&self, ctx: &AuthContext, id: &str) -> Result<Value> {
        let mut c = self.conn().await?;
        let (p, n) = self.visible_port(&mut c, ctx, id).await?;
        Ok(self.port_json(ctx, &p, &n))
    }

    pub async fn create_port(&self, ctx: &AuthContext, request: &Value) -> Result<Value> {
        let attrs = body::resource(request, "port")?;
        body::check(&attrs, WRITABLE, READ_ONLY, true)?;
        let caller = self.project_of(ctx)?;
        let network_id = body::string(&attrs, "network_id", 36)?.ok_or_else(|| {
            NetworkError::bad_request(
                "Failed to parse request. Required attribute 'network_id' not specified",
            )
        })?;
        let network = {
            let mut c = self.conn().await?;
            self.visible_network(&mut c, ctx, &network_id).await?
        };
        let project = body::owner(&attrs, &caller)?;
        let t = target(&project, &network);
        self.authorize(ctx, "create_port", &t)?;
        for a in [
            "mac_address",
            "port_security_enabled",
            "binding:host_id",
            "binding:profile",
        ] {
            if attrs.contains_key(a) {
                self.authorize(ctx, &format!("create_port:{a}"), &t)?;
            }
        }
        // Only the network's owner (or an administrator) gives a port to the network itself
        // (router, DHCP, metadata ports): Neutron's `not rule:network_device` clause.
        if body::string(&attrs, "device_owner", 255)?.is_some_and(|o| o.starts_with("network:")) {
            self.authorize(ctx, "create_port:device_owner", &t)?;
        }
        let fixed_ips = match body::list(&attrs, "fixed_ips")? {
            Some(items) => Some(parse_ip_requests(items)?),
            None => None,
        };
        if let Some(reqs) = &fixed_ips {
            if reqs.iter().any(|r| r.ip_address.is_some()) {
                self.authorize(ctx, "create_port:fixed_ips:ip_address", &t)?;
            }
            if reqs.iter().any(|r| r.subnet_id.is_some()) {
                self.authorize(ctx, "create_port:fixed_ips:subnet_id", &t)?;
            }
        }
        let mac_address = match body::string(&attrs, "mac_address", 32)? {
            Some(m) => Some(ipam::normalize_mac(&m).ok_or_else(|| {
                NetworkError::invalid_attr(
                    "mac_address",
                    format!("'{m}' is not a valid MAC address"),
                )
            })?),
            None => None,
        };
        let security_groups = match body::string_list(&attrs, "security_groups", 255)? {
            Some(ids) => Some(self.resolve_groups(&project, &ids, false).await?),
            None => None,
        };
        let spec = PortSpec {
            project_id: project,
            network_id,
            name: body::string(&attrs, "name", body::NAME_MAX)?.unwrap_or_default(),
            description: body::string(&attrs, "description", body::DESCRIPTION_MAX)?
                .unwrap_or_default(),
            admin_state_up: body::boolean(&attrs, "admin_state_up")?.unwrap_or(true),
            allowed_address_pairs: match body::list(&attrs, "allowed_address_pairs")? {
                Some(items) => parse_pairs(items, mac_address.as_deref())?,
                None => Vec::new(),
            },
            mac_address,
            fixed_ips,
            device_id: body::string(&attrs, "device_id", 255)?.unwrap_or_default(),
            device_owner: body::string(&attrs, "device_owner", 255)?.unwrap_or_default(),
            host: body::string(&attrs, "binding:host_id", 255)?.unwrap_or_default(),
            vnic_type: parse_vnic(&attrs)?.unwrap_or_else(|| "normal".into()),
            profile: parse_profile(&attrs)?.unwrap_or_else(|| json!({})),
            port_security_enabled: body::boolean(&attrs, "port_security_enabled")?,
            security_groups,
            extra_dhcp_opts: match body::list(&attrs, "extra_dhcp_opts")? {
                Some(items) => parse_dhcp_opts(items)?,
                None => Vec::new(),
            },
            dns_name: body::string(&attrs, "dns_name", 255)?.unwrap_or_default(),
            tags: body::string_list(&attrs, "tags", body::TAG_MAX)?.unwrap_or_default(),
        };
        let port = self.create_port_from(spec, true).await?;
        Ok(self.port_json(ctx, &port, &network))
    }

    /// Checks that every group exists in `project` (`by_name`: names are accepted too,
    /// as Nova sends them); returns their ids.
    pub(crate) async fn resolve_groups(
        &self,
        project: &str,
        wanted: &[String],
        by_name: bool,
    ) -> Result<Vec<String>> {
        if wanted.iter().any(|w| w == "default") && by_name {
            self.ensure_default_group(project).await?;
        }
        let mut c = self.conn().await?;
        let mut ids: Vec<String> = Vec::new();
        for w in wanted {
            let id = match store::get_group(&mut c, w).await? {
                Some(g) if g.project_id == project => g.id,
                _ if by_name => {
                    let named = store::groups_named(&mut c, project, w).await?;
                    match named.as_slice() {
                        [g] => g.id.clone(),
                        [] => return Err(NetworkError::group_not_found(w)),
                        _ => {
                            return Err(NetworkError::conflict(
                                "DuplicateSecurityGroupName",
                                format!("Multiple security groups named {w} exist; use an id"),
                            ))
                        }
                    }
                }
                _ => return Err(NetworkError::group_not_found(w)),
            };
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// Creates a port from a checked spec: quota, MAC, addresses, groups, all in one
    /// transaction tried again when it loses a race on an address or a MAC.
    pub(crate) async fn create_port_from(
        &self,
        spec: PortSpec,
        enforce_quota: bool,
    ) -> Result<Port> {
        let network = {
            let mut c = self.conn().await?;
            store::get_network(&mut c, &spec.network_id)
                .await?
                .ok_or_else(|| NetworkError::network_not_found(&spec.network_id))?
        };
        let psec = spec
            .port_security_enabled
            .unwrap_or(network.port_security_enabled);
        let groups = match &spec.security_groups {
            Some(g) if !psec && !g.is_empty() => {
                return Err(NetworkError::bad("PortSecurityAndIPRequiredForSecurityGroups", "Port security must be enabled and port must have an IP address in order to use security groups."));
            }
            Some(g) => g.clone(),
            None if psec && !spec.device_owner.starts_with("network:") => {
                vec![self.ensure_default_group(&spec.project_id).await?]
            }
            None => Vec::new(),
        };
        if !psec && !spec.allowed_address_pairs.is_empty() {
            return Err(NetworkError::conflict(
                "AddressPairAndPortSecurityRequired",
                "Port Security must be enabled in order to have allowed address pairs on a port.",
            ));
        }
        let port = retry_on_conflict(|attempt| {
            let spec = spec.clone();
            let groups = groups.clone();
            let network = network.clone();
            async move {
                let mut tx = self.db.begin_write().await?;
                if enforce_quota {
                    self.check_quota(&mut tx, &spec.project_id, "port", 1).await?;
                }
                let mac = match &spec.mac_address {
                    Some(m) => {
                        if store::mac_in_use(&mut tx, &network.id, m).await? {
                            return Err(Failure::Api(NetworkError::conflict("MacAddressInUse", format!("Unable to complete operation for network {}. The mac address {m} is in use.", network.id))));
                        }
                        m.clone()
                    }
                    None => self.free_mac(&mut tx, &network.id).await?,
                };
                let subnets = store::subnets_of_network(&mut tx, &network.id).await?;
                let fixed_ips = self
                    .plan_ips(&mut tx, &network, &subnets, spec.fixed_ips.as_deref(), &mac, &spec.device_owner, &[], attempt)
                    .await?;
                let now = now_micros();
                let mut pairs = spec.allowed_address_pairs.clone();
                for p in &mut pairs {
                    if p.mac_address.is_empty() {
                        p.mac_address = mac.clone();
                    }
                }
                let port = Port {
                    id: new_id(),
                    network_id: network.id.clone(),
                    project_id: spec.project_id.clone(),
                    name: spec.name.clone(),
                    description: spec.description.clone(),
                    admin_state_up: spec.admin_state_up,
                    mac_address: mac,
                    device_id: spec.device_id.clone(),
                    device_owner: spec.device_owner.clone(),
                    status: "DOWN".into(),
                    fixed_ips,
                    host: spec.host.clone(),
                    vnic_type: spec.vnic_type.clone(),
                    profile: spec.profile.clone(),
                    allowed_address_pairs: pairs,
                    port_security_enabled: psec,
                    security_groups: groups,
                    extra_dhcp_opts: spec.extra_dhcp_opts.clone(),
                    dns_name: spec.dns_name.clone(),
                    tags: spec.tags.clone(),
                    revision_number: 1,
                    created_at: now,
                    updated_at: now,
                };
                store::insert_port(&mut tx, &port).await?;
                tx.commit().await?;
                Ok(port)
            }
        })
        .await?;
        self.push_port(&port.id).await;
        Ok(port)
    }

    /// Inserts a port the service owns for a router or a floating IP (no port security, no
    /// groups), inside the caller's transaction.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn insert_service_port(
        &self,
        tx: &mut AnyConnection,
        network: &Network,
        project_id: &str,
        device_owner: &str,
        device_id: &str,
        requested: Option<&[IpRequest]>,
        status: &str,
        attempt: usize,
    ) -> Result<Port, Failure> {
        let mac = self.free_mac(tx, &network.id).await?;
        let subnets = store::subnets_of_network(tx, &network.id).await?;
        let fixed_ips = self
            .plan_ips(
                tx,
                network,
                &subnets,
                requested,
                &mac,
                device_owner,
                &[],
                attempt,
            )
            .await?;
        let now = now_micros();
        let port = Port {
            id: new_id(),
            network_id: network.id.clone(),
            project_id: project_id.to_string(),
            name: String::new(),
            description: String::new(),
            admin_state_up: true,
            mac_address: mac,
            device_id: device_id.to_string(),
            device_owner: device_owner.to_string(),
            status: status.to_string(),
            fixed_ips,
            host: String::new(),
            vnic_type: "normal".into(),
            profile: json!({}),
            allowed_address_pairs: Vec::new(),
            port_security_enabled: false,
            security_groups: Vec::new(),
            extra_dhcp_opts: Vec::new(),
            dns_name: String::new(),
            tags: Vec::new(),
            revision_number: 1,
            created_at: now,
            updated_at: now,
        };
        store::insert_port(tx, &port).await?;
        Ok(port)
    }

    /// A MAC address no port of the network has.
    pub(crate) async fn free_mac(
        &self,
        c: &mut AnyConnection,
        network_id: &str,
    ) -> Result<String, Failure> {
        for _ in 0..16 {
            let mac = ipam::random_mac();
            if !store::mac_in_use(c, network_id, &mac).await? {
                return Ok(mac);
            }
        }
        Err(Failure::Api(NetworkError::conflict(
            "MacAddressGenerationFailure",
            format!("Unable to generate unique mac on network {network_id}."),
        )))
    }

    /// One free address of `subnet` (the SLAAC address on auto-address subnets). The first
    /// attempt takes the lowest; later attempts, after losing a race, a random one.
    pub(crate) async fn allocate_in_subnet(
        &self,
        c: &mut AnyConnection,
        subnet: &Subnet,
        mac: &str,
        attempt: usize,
    ) -> Result<String, Failure> {
        self.allocate_excluding(c, subnet, mac, attempt, &[]).await
    }

    async fn allocate_excluding(
        &self,
        c: &mut AnyConnection,
        subnet: &Subnet,
        mac: &str,
        attempt: usize,
        chosen: &[FixedIp],
    ) -> Result<String, Failure> {
        let cidr = Cidr::parse(&subnet.cidr, false).map_err(NetworkError::internal)?;
        if subnet.is_auto_address() {
            return ipam::eui64(&cidr, mac)
                .map(|ip| ip.to_string())
                .ok_or_else(|| Failure::Api(NetworkError::internal("bad MAC for EUI-64")));
        }
        let mut taken: HashSet<u128> = store::taken_addresses(c, &subnet.id)
            .await?
            .iter()
            .chain(
                chosen
                    .iter()
                    .filter(|f| f.subnet_id == subnet.id)
                    .map(|f| &f.ip_address),
            )
            .chain(subnet.gateway_ip.iter())
            .filter_map(|t| ipam::parse_ip(t))
            .map(ipam::to_u128)
            .collect();
        taken.shrink_to_fit();
        let free = ipam::free_addresses(&cidr, &subnet.allocation_pools, &taken, 64);
        if free.is_empty() {
            return Err(Failure::Api(NetworkError::conflict(
                "IpAddressGenerationFailure",
                format!(
                    "No more IP addresses available on network {}.",
                    subnet.network_id
                ),
            )));
        }
        let pick = if attempt == 0 {
            0
        } else {
            rand::random::<usize>() % free.len()
        };
        Ok(free[pick].to_string())
    }

    /// The addresses a port gets: `requested` (or automatic ones when `None`), keeping the
    /// port's current addresses (`keep`) that are asked for again.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn plan_ips(
        &self,
        c: &mut AnyConnection,
        network: &Network,
        subnets: &[Subnet],
        requested: Option<&[IpRequest]>,
        mac: &str,
        device_owner: &str,
        keep: &[FixedIp],
        attempt: usize,
    ) -> Result<Vec<FixedIp>, Failure> {
        let mut out: Vec<FixedIp> = Vec::new();
        let serves = |s: &Subnet| {
            s.service_types.is_empty() || s.service_types.iter().any(|t| t == device_owner)
        };
        let Some(requested) = requested else {
            let v4: Vec<&Subnet> = subnets
                .iter()
                .filter(|s| s.ip_version == 4 && serves(s))
                .collect();
            let mut exhausted = false;
            let mut got_v4 = v4.is_empty();
            for s in &v4 {
                match self.allocate_excluding(c, s, mac, attempt, &out).await {
                    Ok(ip) => {
                        out.push(FixedIp {
                            subnet_id: s.id.clone(),
                            ip_address: ip,
                        });
                        got_v4 = true;
                        break;
                    }
                    Err(Failure::Api(e)) if e.kind == "IpAddressGenerationFailure" => {
                        exhausted = true
                    }
                    Err(e) => return Err(e),
                }
            }
            if !got_v4 && exhausted {
                return Err(Failure::Api(NetworkError::conflict(
                    "IpAddressGenerationFailure",
                    format!("No more IP addresses available on network {}.", network.id),
                )));
            }
            if let Some(s) = subnets
                .iter()
                .find(|s| s.ip_version == 6 && !s.is_auto_address() && serves(s))
            {
                let ip = self.allocate_excluding(c, s, mac, attempt, &out).await?;
                out.push(FixedIp {
                    subnet_id: s.id.clone(),
                    ip_address: ip,
                });
            }
            if !device_owner.starts_with("network:router") {
                for s in subnets.iter().filter(|s| s.is_auto_address()) {
                    let ip = self.allocate_excluding(c, s, mac, attempt, &out).await?;
                    out.push(FixedIp {
                        subnet_id: s.id.clone(),
                        ip_address: ip,
                    });
                }
            }
            return Ok(out);
        };
        for r in requested {
            let subnet = match &r.subnet_id {
                Some(id) => subnets.iter().find(|s| &s.id == id).ok_or_else(|| {
                    NetworkError::invalid(format!("Failed to create port on network {}, because fixed_ips included invalid subnet {id}", network.id))
                })?,
                None => {
                    let text = r.ip_address.as_deref().unwrap_or_default();
                    let ip = ipam::parse_ip(text).ok_or_else(|| NetworkError::invalid_attr("fixed_ips", format!("'{text}' is not a valid IP address")))?;
                    subnets
                        .iter()
                        .find(|s| Cidr::parse(&s.cidr, false).is_ok_and(|c| c.contains(&ip)))
                        .ok_or_else(|| NetworkError::bad("InvalidIpForNetwork", format!("IP address {text} is not a valid IP for any of the subnets on the specified network.")))?
                }
            };
            let cidr = Cidr::parse(&subnet.cidr, false).map_err(NetworkError::internal)?;
            let fixed = match &r.ip_address {
                Some(text) => {
                    let ip = ipam::parse_ip(text).ok_or_else(|| {
                        NetworkError::invalid_attr(
                            "fixed_ips",
                            format!("'{text}' is not a valid IP address"),
                        )
                    })?;
                    let v = ipam::to_u128(ip);
                    let invalid = !cidr.contains(&ip)
                        || (cidr.version == 4
                            && cidr.prefix < 31
                            && (v == cidr.first() || v == cidr.last()));
                    if invalid {
                        return Err(Failure::Api(NetworkError::bad(
                            "InvalidIpForSubnet",
                            format!(
                                "IP address {text} is not a valid IP for the specified subnet."
                            ),
                        )));
                    }
                    let ip = ip.to_string();
                    let is_gateway = subnet.gateway_ip.as_deref() == Some(ip.as_str());
                    if is_gateway && !device_owner.starts_with("network:router") {
                        return Err(Failure::Api(NetworkError::bad("InvalidIpForSubnet", format!("IP address {ip} is the gateway of subnet {} and cannot be assigned to this port.", subnet.id))));
                    }
                    let f = FixedIp {
                        subnet_id: subnet.id.clone(),
                        ip_address: ip.clone(),
                    };
                    if out.contains(&f) {
                        return Err(Failure::Api(NetworkError::invalid(format!(
                            "Duplicate IP address '{ip}'"
                        ))));
                    }
                    if !keep.contains(&f)
                        && store::taken_addresses(c, &subnet.id).await?.contains(&ip)
                    {
                        return Err(Failure::Api(NetworkError::conflict(
                            "IpAddressAlreadyAllocated",
                            format!("IP address {ip} already allocated in subnet {}", subnet.id),
                        )));
                    }
                    f
                }
                None => match keep
                    .iter()
                    .find(|k| k.subnet_id == subnet.id && !out.contains(k))
                {
                    Some(k) => k.clone(),
                    None => FixedIp {
                        subnet_id: subnet.id.clone(),
                        ip_address: self
                            .allocate_excluding(c, subnet, mac, attempt, &out)
                            .await?,
                    },
                },
            };
            out.push(fixed);
        }
        Ok(out)
    }

    pub async fn update_port(&self, ctx: &AuthContext, id: &str, request: &Value) -> Result<Value> {
        let attrs = body::resource(request, "port")?;
        let writable: Vec<&str> = WRITABLE
            .iter()
            .copied()
            .filter(|a| !matches!(*a, "network_id" | "project_id" | "tenant_id"))
            .collect();
        let mut ro = READ_ONLY.to_vec();
        ro.extend(["network_id", "project_id", "tenant_id"]);
        body::check(&attrs, &writable, &ro, false)?;
        let (current, network) = {
            let mut c = self.conn().await?;
            self.visible_port(&mut c, ctx, id).await?
        };
        let t = target(&current.project_id, &network);
        self.authorize(ctx, "update_port", &t)?;
        for a in [
            "mac_address",
            "port_security_enabled",
            "binding:host_id",
            "binding:profile",
        ] {
            if attrs.contains_key(a) {
                self.authorize(ctx, &format!("update_port:{a}"), &t)?;
            }
        }
        // Only the network's owner (or an administrator) gives a port to the network itself
        // (router, DHCP, metadata ports): Neutron's `not rule:network_device` clause.
        if body::string(&attrs, "device_owner", 255)?.is_some_and(|o| o.starts_with("network:")) {
            self.authorize(ctx, "update_port:device_owner", &t)?;
        }
        let fixed_ips = match body::list(&attrs, "fixed_ips")? {
            Some(items) => Some(parse_ip_requests(items)?),
            None => None,
        };
        if fixed_ips
            .as_ref()
            .is_some_and(|r| r.iter().any(|r| r.ip_address.is_some()))
        {
            self.authorize(ctx, "update_port:fixed_ips:ip_address", &t)?;
        }
        let groups = match body::string_list(&attrs, "security_groups", 255)? {
            Some(ids) => Some(
                self.resolve_groups(&current.project_id, &ids, false)
                    .await?,
            ),
            None => None,
        };
        let new_mac = match body::string(&attrs, "mac_address", 32)? {
            Some(m) => Some(ipam::normalize_mac(&m).ok_or_else(|| {
                NetworkError::invalid_attr(
                    "mac_address",
                    format!("'{m}' is not a valid MAC address"),
                )
            })?),
            None => None,
        };
        let port = retry_on_conflict(|attempt| {
            let attrs = attrs.clone();
            let fixed_ips = fixed_ips.clone();
            let groups = groups.clone();
            let new_mac = new_mac.clone();
            async move {
                let mut tx = self.db.begin_write().await?;
                let mut p = store::get_port(&mut tx, id).await?.ok_or_else(|| NetworkError::port_not_found(id))?;
                let network = store::get_network(&mut tx, &p.network_id).await?.ok_or_else(|| NetworkError::network_not_found(&p.network_id))?;
                if let Some(v) = body::string(&attrs, "name", body::NAME_MAX)? {
                    p.name = v;
                }
                if let Some(v) = body::string(&attrs, "description", body::DESCRIPTION_MAX)? {
                    p.description = v;
                }
                if let Some(v) = body::boolean(&attrs, "admin_state_up")? {
                    p.admin_state_up = v;
                }
                if let Some(v) = body::string(&attrs, "device_id", 255)? {
                    p.device_id = v;
                }
                if let Some(v) = body::string(&attrs, "device_owner", 255)? {
                    p.device_owner = v;
                }
                if let Some(v) = body::string(&attrs, "binding:host_id", 255)? {
                    p.host = v;
                }
                if let Some(v) = parse_vnic(&attrs)? {
                    p.vnic_type = v;
                }
                if let Some(v) = parse_profile(&attrs)? {
                    p.profile = v;
                }
                if let Some(v) = body::string(&attrs, "dns_name", 255)? {
                    p.dns_name = v;
                }
                if let Some(v) = body::string_list(&attrs, "tags", body::TAG_MAX)? {
                    p.tags = v;
                }
                if let Some(items) = body::list(&attrs, "extra_dhcp_opts")? {
                    p.extra_dhcp_opts = parse_dhcp_opts(items)?;
                }
                if let Some(mac) = &new_mac {
                    if *mac != p.mac_address {
                        if !p.host.is_empty() {
                            return Err(Failure::Api(NetworkError::conflict("PortBound", format!("Unable to complete operation on port {id}, port is already bound, port type: {}, old_mac {}, new_mac {mac}.", p.vif_type(), p.mac_address))));
                        }
                        if store::mac_in_use(&mut tx, &p.network_id, mac).await? {
                            return Err(Failure::Api(NetworkError::conflict("MacAddressInUse", format!("Unable to complete operation for network {}. The mac address {mac} is in use.", p.network_id))));
                        }
                        p.mac_address = mac.clone();
                    }
                }
                if let Some(items) = body::list(&attrs, "allowed_address_pairs")? {
                    p.allowed_address_pairs = parse_pairs(items, Some(&p.mac_address))?;
                }
                if let Some(v) = body::boolean(&attrs, "port_security_enabled")? {
                    p.port_security_enabled = v;
                }
                if let Some(g) = &groups {
                    p.security_groups = g.clone();
                }
                if !p.port_security_enabled {
                    if groups.as_ref().is_some_and(|g| !g.is_empty()) {
                        return Err(Failure::Api(NetworkError::bad("PortSecurityAndIPRequiredForSecurityGroups", "Port security must be enabled and port must have an IP address in order to use security groups.")));
                    }
                    if !p.security_groups.is_empty() {
                        return Err(Failure::Api(NetworkError::conflict("PortSecurityPortHasSecurityGroup", "Port has security group associated. Cannot disable port security or ip address until security group is removed")));
                    }
                    if !p.allowed_address_pairs.is_empty() {
                        return Err(Failure::Api(NetworkError::conflict("AddressPairAndPortSecurityRequired", "Port Security must be enabled in order to have allowed address pairs on a port.")));
                    }
                }
                if let Some(reqs) = &fixed_ips {
                    let subnets = store::subnets_of_network(&mut tx, &p.network_id).await?;
                    let keep = p.fixed_ips.clone();
                    p.fixed_ips = self.plan_ips(&mut tx, &network, &subnets, Some(reqs), &p.mac_address, &p.device_owner, &keep, attempt).await?;
                    store::set_port_ips(&mut tx, &p).await?;
                }
                store::set_port_groups(&mut tx, &p.id, &p.security_groups).await?;
                p.revision_number += 1;
                p.updated_at = now_micros();
                store::update_port_row(&mut tx, &p).await?;
                tx.commit().await?;
                Ok(p)
            }
        })
        .await?;
        self.push_port(id).await;
        Ok(self.port_json(ctx, &port, &network))
    }

    pub async fn delete_port(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let (p, n) = self.visible_port(&mut tx, ctx, id).await?;
        self.authorize(ctx, "delete_port", &target(&p.project_id, &n))?;
        if [
            OWNER_ROUTER_INTERFACE,
            OWNER_ROUTER_GATEWAY,
            OWNER_FLOATINGIP,
        ]
        .contains(&p.device_owner.as_str())
        {
            return Err(NetworkError::conflict(
                "L3PortInUse",
                format!(
                    "Port {id} cannot be deleted directly via the port API: has device owner {}.",
                    p.device_owner
                ),
            ));
        }
        let subnets = store::subnets_of_network(&mut tx, &n.id).await?;
        let released = self.release_floating_ips(&mut tx, id).await?;
        store::delete_port(&mut tx, id).await?;
        tx.commit().await?;
        self.push_deleted_port(&Self::port_state_from(p, &n, &subnets))
            .await;
        for f in released {
            self.push_floating_ip(&f).await;
        }
        Ok(())
    }

    /// Disassociates the floating IPs of a port about to go and deletes the port forwardings
    /// to it, as Neutron does; the ids of the floating IPs that changed.
    pub(crate) async fn release_floating_ips(
        &self,
        tx: &mut AnyConnection,
        port_id: &str,
    ) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for pf in store::port_forwardings_of_port(tx, port_id).await? {
            store::delete_port_forwarding(tx, &pf.id).await?;
            if let Some(mut f) = store::get_floating_ip(tx, &pf.floatingip_id).await? {
                if store::port_forwardings_of_fip(tx, &f.id).await?.is_empty() {
                    f.router_id = None;
                }
                f.revision_number += 1;
                f.updated_at = now_micros();
                store::update_floating_ip(tx, &f).await?;
                if !ids.contains(&f.id) {
                    ids.push(f.id);
                }
            }
        }
        for mut f in store::floating_ips_of_port(tx, port_id).await? {
            f.port_id = None;
            f.fixed_ip_address = None;
            f.router_id = None;
            f.revision_number += 1;
            f.updated_at = now_micros();
            store::update_floating_ip(tx, &f).await?;
            ids.push(f.id);
        }
        Ok(ids)
    }
}
