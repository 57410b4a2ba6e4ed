//! Subnets: IPv4 and IPv6 ranges of a network, with the gateway, allocation pools, DNS
//! servers and host routes DHCP hands out. The first DHCP-enabled subnet of a network
//! gets the network a `network:distributed` metadata port (as ML2/OVN makes one for its
//! metadata proxy), and the port takes an address on each DHCP-enabled subnet after it.

use std::net::IpAddr;

use ferrostack_common::time::now_micros;
use ferrostack_common::AuthContext;
use ferrostack_db::sqlx::AnyConnection;
use serde_json::{json, Value};

use super::body::{self, Attrs};
use super::{new_id, retry_on_conflict, Failure, NetworkService};
use crate::error::{NetworkError, Result};
use crate::ipam::{self, Cidr, Pool};
use crate::model::*;
use crate::store;
use crate::views;

const WRITABLE: &[&str] = &[
    "name",
    "description",
    "network_id",
    "ip_version",
    "cidr",
    "gateway_ip",
    "allocation_pools",
    "dns_nameservers",
    "host_routes",
    "enable_dhcp",
    "ipv6_ra_mode",
    "ipv6_address_mode",
    "subnetpool_id",
    "use_default_subnetpool",
    "prefixlen",
    "segment_id",
    "service_types",
    "project_id",
    "tenant_id",
    "tags",
    "dns_publish_fixed_ip",
];
const READ_ONLY: &[&str] = &["id", "created_at", "updated_at", "revision_number"];
const UPDATABLE: &[&str] = &[
    "name",
    "description",
    "gateway_ip",
    "allocation_pools",
    "dns_nameservers",
    "host_routes",
    "enable_dhcp",
    "service_types",
    "tags",
];
const IPV6_MODES: &[&str] = &["slaac", "dhcpv6-stateful", "dhcpv6-stateless"];
/// Neutron's `max_dns_nameservers` and `max_subnet_host_routes`.
const MAX_DNS: usize = 5;
const MAX_ROUTES: usize = 20;

/// The policy target of a subnet (its network decides sharing).
pub fn target(s: &Subnet, n: &Network) -> Value {
    json!({"project_id": s.project_id, "tenant_id": s.project_id, "network:project_id": n.project_id, "shared": n.shared, "shared_with": n.shared_with, "router:external": n.external})
}

/// What happened to a network's metadata port inside a transaction, for the backend.
pub(crate) enum MetadataChange {
    None,
    Synced(String),
    Deleted(Box<crate::backend::PortState>),
}

impl NetworkService {
    pub(crate) async fn visible_subnet(
        &self,
        c: &mut AnyConnection,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<(Subnet, Network)> {
        let s = store::get_subnet(c, id).await?;
        if let Some(s) = s {
            if let Some(n) = store::get_network(c, &s.network_id).await? {
                if self.allowed(ctx, "get_subnet", &target(&s, &n)) {
                    return Ok((s, n));
                }
            }
        }
        Err(NetworkError::subnet_not_found(id))
    }

    pub async fn list_subnets(&self, ctx: &AuthContext) -> Result<Vec<Value>> {
        let mut c = self.conn().await?;
        let scope = self.list_scope(ctx);
        let subnets = store::list_subnets(&mut c, scope.as_deref()).await?;
        let networks = store::list_networks(&mut c, None).await?;
        Ok(subnets
            .iter()
            .filter(|s| {
                scope.is_none()
                    || networks
                        .iter()
                        .find(|n| n.id == s.network_id)
                        .is_some_and(|n| self.allowed(ctx, "get_subnet", &target(s, n)))
            })
            .map(|s| {
                let external = networks.iter().any(|n| n.id == s.network_id && n.external);
                views::subnet(s, external)
            })
            .collect())
    }

    pub async fn show_subnet(&self, ctx: &AuthContext, id: &str) -> Result<Value> {
        let mut c = self.conn().await?;
        let (s, n) = self.visible_subnet(&mut c, ctx, id).await?;
        Ok(views::subnet(&s, n.external))
    }

    pub async fn create_subnet(&self, ctx: &AuthContext, request: &Value) -> Result<Value> {
        let attrs = body::resource(request, "subnet")?;
        body::check(&attrs, WRITABLE, READ_ONLY, true)?;
        let caller = self.project_of(ctx)?;
        let network_id = body::string(&attrs, "network_id", 36)?.ok_or_else(|| {
            NetworkError::bad_request(
                "Failed to parse request. Required attribute 'network_id' not specified",
            )
        })?;
        let mut c = self.conn().await?;
        let network = self.visible_network(&mut c, ctx, &network_id).await?;
        drop(c);
        let project = body::owner(&attrs, &caller)?;
        let mut probe = target(
            &Subnet {
                project_id: project.clone(),
                ..blank_subnet()
            },
            &network,
        );
        probe["network_id"] = json!(network.id);
        self.authorize(ctx, "create_subnet", &probe)?;
        if !matches!(attrs.get("segment_id"), None | Some(Value::Null)) {
            return Err(NetworkError::invalid(
                "segment_id is not supported: routed segments are not implemented",
            ));
        }
        let ip_version = match body::integer(&attrs, "ip_version")?.flatten() {
            Some(v @ (4 | 6)) => v,
            Some(v) => {
                return Err(NetworkError::invalid_attr(
                    "ip_version",
                    format!("{v} is not in [4, 6]"),
                ))
            }
            None => {
                return Err(NetworkError::bad_request(
                    "Failed to parse request. Required attribute 'ip_version' not specified",
                ))
            }
        };
        let pool = self.pool_for_subnet(ctx, &attrs, ip_version).await?;
        let cidr = match body::string(&attrs, "cidr", 64)? {
            Some(text) => {
                let cidr =
                    Cidr::parse(&text, true).map_err(|e| NetworkError::invalid_attr("cidr", e))?;
                if cidr.version as i64 != ip_version {
                    return Err(NetworkError::invalid(format!(
                        "Cidr {cidr} does not match the IP version {ip_version}"
                    )));
                }
                if let Some(p) = &pool {
                    super::subnet_pools::check_in_pool(p, &cidr)?;
                }
                Some(cidr)
            }
            None if pool.is_some() => None,
            None => {
                return Err(NetworkError::bad_request(
                    "Failed to parse request. Required attribute 'cidr' not specified",
                ))
            }
        };
        let prefixlen = match (&pool, body::integer(&attrs, "prefixlen")?.flatten()) {
            (Some(p), Some(l)) if l < p.min_prefixlen || l > p.max_prefixlen => {
                return Err(NetworkError::bad("SubnetAllocationError", format!("Failed to allocate subnet: Unsupported prefix length {l} (the pool allows {} to {}).", p.min_prefixlen, p.max_prefixlen)))
            }
            (Some(p), l) => l.unwrap_or(p.default_prefixlen),
            (None, _) => 0,
        };
        let now = now_micros();
        let template = Subnet {
            id: new_id(),
            network_id: network.id.clone(),
            project_id: project,
            name: body::string(&attrs, "name", body::NAME_MAX)?.unwrap_or_default(),
            description: body::string(&attrs, "description", body::DESCRIPTION_MAX)?
                .unwrap_or_default(),
            ip_version,
            cidr: String::new(),
            gateway_ip: None,
            allocation_pools: Vec::new(),
            dns_nameservers: Vec::new(),
            host_routes: Vec::new(),
            enable_dhcp: body::boolean(&attrs, "enable_dhcp")?.unwrap_or(true),
            ipv6_ra_mode: body::nullable_string(&attrs, "ipv6_ra_mode", 32)?.flatten(),
            ipv6_address_mode: body::nullable_string(&attrs, "ipv6_address_mode", 32)?.flatten(),
            service_types: body::string_list(&attrs, "service_types", 255)?.unwrap_or_default(),
            subnetpool_id: pool.as_ref().map(|p| p.id.clone()),
            tags: body::string_list(&attrs, "tags", body::TAG_MAX)?.unwrap_or_default(),
            revision_number: 1,
            created_at: now,
            updated_at: now,
        };
        // With an explicit CIDR everything is checked before the transaction.
        let checked = match &cidr {
            Some(c) => Some(self.complete_subnet(template.clone(), c, &attrs)?),
            None => None,
        };
        let s = retry_on_conflict(|attempt| {
            let template = template.clone();
            let checked = checked.clone();
            let pool = pool.clone();
            let attrs = attrs.clone();
            async move {
                let mut tx = self.db.begin_write().await?;
                self.check_quota(&mut tx, &template.project_id, "subnet", 1).await?;
                let (s, cidr) = match (checked, &pool) {
                    (Some(s), _) => {
                        let c = Cidr::parse(&s.cidr, false).map_err(NetworkError::internal)?;
                        (s, c)
                    }
                    (None, Some(p)) => {
                        let c = self.allocate_from_pool(&mut tx, p, prefixlen as u8).await?;
                        (self.complete_subnet(template, &c, &attrs)?, c)
                    }
                    (None, None) => unreachable!("a CIDR or a pool is required above"),
                };
                if let Some(p) = &pool {
                    for other in store::subnets_of_pool(&mut tx, &p.id).await? {
                        let oc = Cidr::parse(&other.cidr, false).map_err(NetworkError::internal)?;
                        if oc.overlaps(&cidr) {
                            return Err(Failure::Api(NetworkError::bad("SubnetAllocationError", format!("Failed to allocate subnet: {} overlaps with subnet {} of the pool.", s.cidr, other.id))));
                        }
                    }
                }
                let on_network = store::subnets_of_network(&mut tx, &s.network_id).await?;
                self.check_network_affinity(&mut tx, &on_network, s.ip_version, pool.as_ref()).await?;
                for other in on_network {
                    let oc = Cidr::parse(&other.cidr, false).map_err(NetworkError::internal)?;
                    if oc.overlaps(&cidr) {
                        return Err(Failure::Api(NetworkError::invalid(format!("Requested subnet with cidr: {} for network: {} overlaps with another subnet", s.cidr, s.network_id))));
                    }
                }
                store::insert_subnet(&mut tx, &s).await?;
                store::touch_network(&mut tx, &s.network_id, now_micros()).await?;
                let mut touched = Vec::new();
                if s.is_auto_address() {
                    // Every port of the network gets its SLAAC address on a new
                    // auto-address subnet, as in Neutron.
                    for mut p in store::ports_of_network(&mut tx, &s.network_id).await? {
                        if p.device_owner == OWNER_DISTRIBUTED || p.device_owner.starts_with("network:router") {
                            continue;
                        }
                        if let Some(ip) = ipam::eui64(&cidr, &p.mac_address) {
                            p.fixed_ips.push(FixedIp { subnet_id: s.id.clone(), ip_address: ip.to_string() });
                            store::set_port_ips(&mut tx, &p).await?;
                            touched.push(p.id.clone());
                        }
                    }
                }
                let meta = self.sync_metadata_port(&mut tx, &s.network_id, attempt).await?;
                tx.commit().await?;
                Ok((s, meta, touched))
            }
        })
        .await;
        let (s, meta, touched) = s?;
        self.after_subnet_change(&s.network_id, meta).await;
        for p in touched {
            self.push_port(&p).await;
        }
        Ok(views::subnet(&s, network.external))
    }

    /// Fills in what depends on the CIDR: gateway, pools, DNS servers, routes, IPv6 modes.
    fn complete_subnet(&self, mut s: Subnet, cidr: &Cidr, attrs: &Attrs) -> Result<Subnet> {
        if (s.ip_version == 4 && cidr.prefix > 30) || (s.ip_version == 6 && cidr.prefix > 126) {
            return Err(NetworkError::invalid(format!(
                "Invalid CIDR {cidr} for IPv{} subnet: it has no room for addresses",
                s.ip_version
            )));
        }
        s.cidr = cidr.to_string();
        self.check_ipv6_modes(&s, cidr)?;
        s.gateway_ip = match attrs.get("gateway_ip") {
            None => Some(cidr.default_gateway().to_string()),
            Some(Value::Null) => None,
            Some(_) => Some(check_gateway(
                cidr,
                &body::string(attrs, "gateway_ip", 64)?.unwrap_or_default(),
            )?),
        };
        let pools = match attrs.get("allocation_pools") {
            Some(Value::Null) => None,
            _ => body::list(attrs, "allocation_pools")?,
        };
        s.allocation_pools = match pools {
            Some(items) => parse_pools(cidr, items)?,
            None => {
                let gw: Option<IpAddr> = s.gateway_ip.as_deref().and_then(ipam::parse_ip);
                cidr.default_pools(gw.as_ref())
            }
        };
        check_gateway_outside_pools(cidr, &s)?;
        if let Some(dns) = body::list(attrs, "dns_nameservers")? {
            s.dns_nameservers = parse_nameservers(&s.id, dns)?;
        }
        if let Some(routes) = body::list(attrs, "host_routes")? {
            s.host_routes = parse_routes(&s.id, s.ip_version, routes)?;
        }
        Ok(s)
    }

    fn check_ipv6_modes(&self, s: &Subnet, cidr: &Cidr) -> Result<()> {
        for (attr, v) in [
            ("ipv6_ra_mode", &s.ipv6_ra_mode),
            ("ipv6_address_mode", &s.ipv6_address_mode),
        ] {
            if let Some(m) = v {
                if s.ip_version == 4 {
                    return Err(NetworkError::invalid(format!(
                        "{attr} set to '{m}' with ip_version set to '4' is not valid"
                    )));
                }
                if !IPV6_MODES.contains(&m.as_str()) {
                    return Err(NetworkError::invalid_attr(
                        attr,
                        format!("'{m}' is not in {IPV6_MODES:?}"),
                    ));
                }
            }
        }
        if let (Some(ra), Some(addr)) = (&s.ipv6_ra_mode, &s.ipv6_address_mode) {
            if ra != addr {
                return Err(NetworkError::invalid(format!("ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to '{addr}' is not valid. If both attributes are set, they must be the same value")));
            }
        }
        if s.is_auto_address() && cidr.prefix != 64 {
            return Err(NetworkError::invalid(format!("Invalid CIDR {cidr} for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64")));
        }
        Ok(())
    }

    pub async fn update_subnet(
        &self,
        ctx: &AuthContext,
        id: &str,
        request: &Value,
    ) -> Result<Value> {
        let attrs = body::resource(request, "subnet")?;
        let ro: Vec<&str> = WRITABLE
            .iter()
            .chain(READ_ONLY)
            .copied()
            .filter(|a| !UPDATABLE.contains(a))
            .collect();
        body::check(&attrs, UPDATABLE, &ro, false)?;
        let s = retry_on_conflict(|attempt| {
            let attrs = attrs.clone();
            async move {
                let mut tx = self.db.begin_write().await?;
                let (mut s, n) = self.visible_subnet(&mut tx, ctx, id).await?;
                self.authorize(ctx, "update_subnet", &target(&s, &n))?;
                let cidr = Cidr::parse(&s.cidr, false).map_err(NetworkError::internal)?;
                if let Some(v) = body::string(&attrs, "name", body::NAME_MAX)? {
                    s.name = v;
                }
                if let Some(v) = body::string(&attrs, "description", body::DESCRIPTION_MAX)? {
                    s.description = v;
                }
                if let Some(v) = body::boolean(&attrs, "enable_dhcp")? {
                    s.enable_dhcp = v;
                }
                match attrs.get("gateway_ip") {
                    None => {}
                    Some(Value::Null) => s.gateway_ip = None,
                    Some(_) => {
                        s.gateway_ip = Some(check_gateway(
                            &cidr,
                            &body::string(&attrs, "gateway_ip", 64)?.unwrap_or_default(),
                        )?)
                    }
                }
                if let Some(items) = body::list(&attrs, "allocation_pools")? {
                    s.allocation_pools = parse_pools(&cidr, items)?;
                }
                check_gateway_outside_pools(&cidr, &s)?;
                if let Some(dns) = body::list(&attrs, "dns_nameservers")? {
                    s.dns_nameservers = parse_nameservers(&s.id, dns)?;
                }
                if let Some(routes) = body::list(&attrs, "host_routes")? {
                    s.host_routes = parse_routes(&s.id, s.ip_version, routes)?;
                }
                if let Some(v) = body::string_list(&attrs, "service_types", 255)? {
                    s.service_types = v;
                }
                if let Some(v) = body::string_list(&attrs, "tags", body::TAG_MAX)? {
                    s.tags = v;
                }
                s.revision_number += 1;
                s.updated_at = now_micros();
                store::update_subnet(&mut tx, &s).await?;
                let meta = self
                    .sync_metadata_port(&mut tx, &s.network_id, attempt)
                    .await?;
                tx.commit().await?;
                Ok((s, meta, n.external))
            }
        })
        .await?;
        let (s, meta, external) = (s.0, s.1, s.2);
        self.after_subnet_change(&s.network_id, meta).await;
        Ok(views::subnet(&s, external))
    }

    pub async fn delete_subnet(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let (network_id, meta, touched) = retry_on_conflict(|attempt| async move {
            let mut tx = self.db.begin_write().await?;
            let (s, n) = self.visible_subnet(&mut tx, ctx, id).await?;
            self.authorize(ctx, "delete_subnet", &target(&s, &n))?;
            let users = store::ports_of_subnet(&mut tx, id).await?;
            let mut touched = Vec::new();
            for mut p in users {
                if p.device_owner == OWNER_DISTRIBUTED {
                    continue;
                }
                if s.is_auto_address() || p.device_owner == OWNER_DHCP {
                    // A SLAAC address was never asked for: it goes with its subnet.
                    p.fixed_ips.retain(|ip| ip.subnet_id != s.id);
                    store::set_port_ips(&mut tx, &p).await?;
                    touched.push(p.id.clone());
                    continue;
                }
                return Err(Failure::Api(NetworkError::conflict("SubnetInUse", format!("Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet."))));
            }
            // The metadata port gives its address back before the subnet goes.
            let mut gone = s.clone();
            gone.enable_dhcp = false;
            store::update_subnet(&mut tx, &gone).await?;
            let meta = self.sync_metadata_port(&mut tx, &s.network_id, attempt).await?;
            store::delete_subnet(&mut tx, id).await?;
            store::touch_network(&mut tx, &s.network_id, now_micros()).await?;
            tx.commit().await?;
            Ok((s.network_id, meta, touched))
        })
        .await?;
        self.after_subnet_change(&network_id, meta).await;
        for p in touched {
            self.push_port(&p).await;
        }
        Ok(())
    }

    async fn after_subnet_change(&self, network_id: &str, meta: MetadataChange) {
        self.push_network(network_id).await;
        match meta {
            MetadataChange::None => {}
            MetadataChange::Synced(id) => self.push_port(&id).await,
            MetadataChange::Deleted(state) => self.push_deleted_port(&state).await,
        }
    }

    /// Makes the network's metadata port hold one address on each DHCP-enabled subnet:
    /// created with the first such subnet, deleted when none is left.
    pub(crate) async fn sync_metadata_port(
        &self,
        tx: &mut AnyConnection,
        network_id: &str,
        attempt: usize,
    ) -> Result<MetadataChange, Failure> {
        let network = store::get_network(tx, network_id)
            .await?
            .ok_or_else(|| NetworkError::network_not_found(network_id))?;
        let subnets = store::subnets_of_network(tx, network_id).await?;
        let dhcp: Vec<&Subnet> = subnets.iter().filter(|s| s.enable_dhcp).collect();
        let existing = store::ports_of_network(tx, network_id)
            .await?
            .into_iter()
            .find(|p| p.device_owner == OWNER_DISTRIBUTED);
        if dhcp.is_empty() {
            return Ok(match existing {
                Some(p) => {
                    store::delete_port(tx, &p.id).await?;
                    MetadataChange::Deleted(Box::new(Self::port_state_from(p, &network, &subnets)))
                }
                None => MetadataChange::None,
            });
        }
        let now = now_micros();
        let mut port = match existing {
            Some(p) => p,
            None => {
                let p = Port {
                    id: new_id(),
                    network_id: network_id.to_string(),
                    project_id: network.project_id.clone(),
                    name: String::new(),
                    description: String::new(),
                    admin_state_up: true,
                    mac_address: self.free_mac(tx, network_id).await?,
                    device_id: format!("ovnmeta-{network_id}"),
                    device_owner: OWNER_DISTRIBUTED.into(),
                    status: "DOWN".into(),
                    fixed_ips: Vec::new(),
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
                store::insert_port(tx, &p).await?;
                p
            }
        };
        let before = port.fixed_ips.clone();
        port.fixed_ips
            .retain(|ip| dhcp.iter().any(|s| s.id == ip.subnet_id));
        for s in &dhcp {
            if !port.fixed_ips.iter().any(|ip| ip.subnet_id == s.id) {
                let ip = self
                    .allocate_in_subnet(tx, s, &port.mac_address, attempt)
                    .await?;
                port.fixed_ips.push(FixedIp {
                    subnet_id: s.id.clone(),
                    ip_address: ip,
                });
            }
        }
        if port.fixed_ips == before && port.revision_number > 1 {
            return Ok(MetadataChange::None);
        }
        if port.fixed_ips != before {
            store::set_port_ips(tx, &port).await?;
            port.revision_number += 1;
            port.updated_at = now;
            store::update_port_row(tx, &port).await?;
        }
        Ok(MetadataChange::Synced(port.id))
    }
}

fn blank_subnet() -> Subnet {
    Subnet {
        id: String::new(),
        network_id: String::new(),
        project_id: String::new(),
        name: String::new(),
        description: String::new(),
        ip_version: 4,
        cidr: String::new(),
        gateway_ip: None,
        allocation_pools: Vec::new(),
        dns_nameservers: Vec::new(),
        host_routes: Vec::new(),
        enable_dhcp: true,
        ipv6_ra_mode: None,
        ipv6_address_mode: None,
        service_types: Vec::new(),
        subnetpool_id: None,
        tags: Vec::new(),
        revision_number: 0,
        created_at: 0,
        updated_at: 0,
    }
}

fn check_gateway(cidr: &Cidr, text: &str) -> Result<String> {
    let ip = ipam::parse_ip(text).ok_or_else(|| {
        NetworkError::invalid_attr("gateway_ip", format!("'{text}' is not a valid IP address"))
    })?;
    if ipam::version_of(&ip) != cidr.version {
        return Err(NetworkError::invalid(format!(
            "Gateway IP {text} does not match the subnet's IP version"
        )));
    }
    let v = ipam::to_u128(ip);
    if cidr.contains(&ip) && cidr.version == 4 && (v == cidr.first() || v == cidr.last()) {
        return Err(NetworkError::invalid(format!(
            "Gateway is not valid on subnet: {text} is the network or broadcast address of {cidr}"
        )));
    }
    Ok(ip.to_string())
}

fn check_gateway_outside_pools(cidr: &Cidr, s: &Subnet) -> Result<()> {
    if let Some(gw) = s.gateway_ip.as_deref().and_then(ipam::parse_ip) {
        if ipam::in_pools(cidr, &s.allocation_pools, &gw) {
            let pool = s
                .allocation_pools
                .iter()
                .find(|p| ipam::in_pools(cidr, std::slice::from_ref(*p), &gw))
                .map(|p| format!("{}-{}", p.start, p.end))
                .unwrap_or_default();
            return Err(NetworkError::conflict(
                "GatewayConflictWithAllocationPools",
                format!("Gateway ip {gw} conflicts with allocation pool {pool}"),
            ));
        }
    }
    Ok(())
}

fn parse_pools(cidr: &Cidr, items: &[Value]) -> Result<Vec<Pool>> {
    let mut pools = Vec::new();
    for i in items {
        let p: Pool = serde_json::from_value(i.clone()).map_err(|_| {
            NetworkError::invalid_attr(
                "allocation_pools",
                format!("'{i}' is not a valid allocation pool (start and end)"),
            )
        })?;
        pools.push(p);
    }
    ipam::validate_pools(cidr, &pools).map_err(|e| {
        if e.contains("overlapping") {
            NetworkError::conflict("OverlappingAllocationPools", e)
        } else if e.contains("spans beyond") {
            NetworkError::bad("OutOfBoundsAllocationPool", e)
        } else {
            NetworkError::bad("InvalidAllocationPool", e)
        }
    })
}

fn parse_nameservers(subnet_id: &str, items: &[Value]) -> Result<Vec<String>> {
    if items.len() > MAX_DNS {
        return Err(NetworkError::bad("DNSNameServersExhausted", format!("Unable to complete operation for {subnet_id}. The number of DNS nameservers exceeds the limit {MAX_DNS}.")));
    }
    let mut out: Vec<String> = Vec::new();
    for i in items {
        let ip = i.as_str().and_then(ipam::normalize_ip).ok_or_else(|| {
            NetworkError::invalid_attr(
                "dns_nameservers",
                format!("'{i}' is not a valid nameserver"),
            )
        })?;
        if out.contains(&ip) {
            return Err(NetworkError::invalid_attr(
                "dns_nameservers",
                format!("Duplicate nameserver '{ip}'"),
            ));
        }
        out.push(ip);
    }
    Ok(out)
}

fn parse_routes(subnet_id: &str, ip_version: i64, items: &[Value]) -> Result<Vec<HostRoute>> {
    if items.len() > MAX_ROUTES {
        return Err(NetworkError::bad("HostRoutesExhausted", format!("Unable to complete operation for {subnet_id}. The number of host routes exceeds the limit {MAX_ROUTES}.")));
    }
    let mut out: Vec<HostRoute> = Vec::new();
    for i in items {
        let r: HostRoute = serde_json::from_value(i.clone()).map_err(|_| {
            NetworkError::invalid_attr(
                "host_routes",
                format!("'{i}' is not a valid host route (destination and nexthop)"),
            )
        })?;
        let dest = Cidr::parse(&r.destination, false)
            .map_err(|e| NetworkError::invalid_attr("host_routes", e))?;
        let hop = ipam::parse_ip(&r.nexthop).ok_or_else(|| {
            NetworkError::invalid_attr(
                "host_routes",
                format!("'{}' is not a valid IP address", r.nexthop),
            )
        })?;
        if dest.version as i64 != ip_version || ipam::version_of(&hop) as i64 != ip_version {
            return Err(NetworkError::invalid(format!(
                "Host route {i} does not match the subnet's IP version {ip_version}"
            )));
        }
        let route = HostRoute {
            destination: dest.to_string(),
            nexthop: hop.to_string(),
        };
        if out.contains(&route) {
            return Err(NetworkError::invalid_attr(
                "host_routes",
                format!("Duplicate hostroute '{i}'"),
            ));
        }
        out.push(route);
    }
    Ok(out)
}
