//! Neutron's objects as OVN Northbound rows, the way ML2/OVN writes them, so an operator's
//! `ovn-nbctl show` and `ovn-trace` read as on any OpenStack cloud: a network is the
//! Logical_Switch `neutron-<network id>`, a port the Logical_Switch_Port named by its id
//! with `"MAC IP..."` addresses (and the same as port security when that is on), a DHCP
//! subnet a DHCP_Options row, a security group the Port_Group `pg_<id with underscores>`
//! with one ACL per rule, and every port with port security also sits in `neutron_pg_drop`,
//! whose ACLs drop what no group allows.
//!
//! Pure functions of the backend's states; writing them is the backend's job.

use std::collections::BTreeMap;

use ferrostack_network::backend::{NetworkState, PortState};
use ferrostack_network::model::{Rule, Subnet};

/// The Port_Group every port with port security is in (ML2/OVN's drop-by-default group).
pub const DROP_PORT_GROUP: &str = "neutron_pg_drop";
/// ACL priorities as ML2/OVN uses them: group rules above the drop rules.
pub const ACL_PRIORITY_ALLOW: i64 = 1002;
pub const ACL_PRIORITY_DROP: i64 = 1001;
/// The address guests reach the metadata proxy at.
pub const METADATA_IP: &str = "169.254.169.254";

pub fn switch_name(network_id: &str) -> String {
    format!("neutron-{network_id}")
}

pub fn router_name(router_id: &str) -> String {
    format!("neutron-{router_id}")
}

pub fn router_port_name(port_id: &str) -> String {
    format!("lrp-{port_id}")
}

/// `pg_` and the group id with `-` made `_` (port group names must be valid identifiers in
/// ACL matches).
pub fn port_group_name(group_id: &str) -> String {
    format!("pg_{}", group_id.replace('-', "_"))
}

/// The localnet port of a provider (flat or VLAN) network.
pub fn localnet_port_name(network_id: &str) -> String {
    format!("provnet-{network_id}")
}

/// The Logical_Switch's `external_ids`.
pub fn switch_external_ids(s: &NetworkState) -> BTreeMap<String, String> {
    let n = &s.network;
    BTreeMap::from([
        ("neutron:network_name".into(), n.name.clone()),
        ("neutron:mtu".into(), n.mtu.to_string()),
        (
            "neutron:revision_number".into(),
            n.revision_number.to_string(),
        ),
        ("neutron:availability_zone_hints".into(), String::new()),
    ])
}

/// The Logical_Switch's `other_config`: the MTU northd hands out, and the VNI of Geneve
/// networks.
pub fn switch_other_config(s: &NetworkState) -> BTreeMap<String, String> {
    let mut c = BTreeMap::from([("mcast_snoop".into(), "false".into())]);
    if let Some(vni) = s
        .network
        .segmentation_id
        .filter(|_| s.network.network_type == "geneve")
    {
        c.insert("requested-tnl-key".into(), vni.to_string());
    }
    c
}

/// A localnet port for a network on a physical network (`flat` here): `(name, options)`.
pub fn localnet_port(s: &NetworkState) -> Option<(String, BTreeMap<String, String>)> {
    let physnet = s.network.physical_network.as_ref()?;
    Some((
        localnet_port_name(&s.network.id),
        BTreeMap::from([("network_name".into(), physnet.clone())]),
    ))
}

/// A port's `addresses`: `["MAC IP IP..."]`; router ports have `["router"]`, and OVN learns
/// nothing for a port with no address.
pub fn port_addresses(p: &PortState) -> Vec<String> {
    let port = &p.port;
    if port.device_owner.starts_with("network:router") {
        return vec!["router".into()];
    }
    let mut one = port.mac_address.clone();
    for a in &p.addresses {
        one.push(' ');
        one.push_str(&a.ip_address);
    }
    vec![one]
}

/// A port's `port_security`: its own addresses and each allowed pair, when port security
/// is on; nothing (anything goes) when it is off.
pub fn port_security(p: &PortState) -> Vec<String> {
    let port = &p.port;
    if !port.port_security_enabled || port.device_owner.starts_with("network:") {
        return Vec::new();
    }
    let mut out = port_addresses(p);
    for pair in &port.allowed_address_pairs {
        let mac = if pair.mac_address.is_empty() {
            &port.mac_address
        } else {
            &pair.mac_address
        };
        out.push(format!("{mac} {}", pair.ip_address));
    }
    out
}

/// A port's type: the network's metadata port is a `localport` (present on every chassis,
/// never leaving it); others are ordinary VIFs (`""`).
pub fn port_type(p: &PortState) -> &'static str {
    match p.port.device_owner.as_str() {
        "network:distributed" => "localport",
        o if o.starts_with("network:router") => "router",
        _ => "",
    }
}

/// The Logical_Switch_Port's `external_ids`.
pub fn port_external_ids(p: &PortState) -> BTreeMap<String, String> {
    let port = &p.port;
    let cidrs: Vec<String> = p
        .addresses
        .iter()
        .map(|a| {
            let len = a.cidr.split_once('/').map_or("32", |(_, l)| l);
            format!("{}/{len}", a.ip_address)
        })
        .collect();
    BTreeMap::from([
        ("neutron:port_name".into(), port.name.clone()),
        ("neutron:device_id".into(), port.device_id.clone()),
        ("neutron:device_owner".into(), port.device_owner.clone()),
        ("neutron:network_name".into(), switch_name(&port.network_id)),
        ("neutron:project_id".into(), port.project_id.clone()),
        ("neutron:cidrs".into(), cidrs.join(" ")),
        (
            "neutron:security_group_ids".into(),
            p.security_group_ids.join(" "),
        ),
        (
            "neutron:revision_number".into(),
            port.revision_number.to_string(),
        ),
    ])
}

/// The MAC OVN's DHCP server answers from, stable per subnet (`fa:16:3e` and three bytes of
/// the subnet id, as ML2/OVN derives a `server_mac` once per subnet).
pub fn dhcp_server_mac(subnet_id: &str) -> String {
    let hex: Vec<char> = subnet_id
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect();
    let byte = |i: usize| -> String {
        hex.get(i * 2..i * 2 + 2)
            .map_or("00".into(), |b| b.iter().collect())
    };
    format!("fa:16:3e:{}:{}:{}", byte(0), byte(1), byte(2)).to_lowercase()
}

/// The `options` of a DHCPv4 subnet's DHCP_Options row: lease, router, server id and MAC,
/// MTU, DNS servers, and the classless static routes (the subnet's host routes, the route
/// to the metadata proxy through the network's metadata port, and the default route).
pub fn dhcpv4_options(
    subnet: &Subnet,
    mtu: i64,
    metadata_port_ip: Option<&str>,
) -> BTreeMap<String, String> {
    let mut o = BTreeMap::from([
        ("lease_time".to_string(), "43200".to_string()),
        ("mtu".to_string(), mtu.to_string()),
        ("server_mac".to_string(), dhcp_server_mac(&subnet.id)),
    ]);
    // Without a gateway the server still needs an address to answer from.
    let server = subnet
        .gateway_ip
        .clone()
        .or_else(|| subnet.allocation_pools.first().map(|p| p.start.clone()))
        .unwrap_or_default();
    o.insert("server_id".into(), server);
    if let Some(gw) = &subnet.gateway_ip {
        o.insert("router".into(), gw.clone());
    }
    if !subnet.dns_nameservers.is_empty() {
        o.insert(
            "dns_server".into(),
            format!("{{{}}}", subnet.dns_nameservers.join(", ")),
        );
    }
    let mut routes: Vec<String> = subnet
        .host_routes
        .iter()
        .map(|r| format!("{},{}", r.destination, r.nexthop))
        .collect();
    if let Some(ip) = metadata_port_ip {
        routes.push(format!("{METADATA_IP}/32,{ip}"));
    }
    if !routes.is_empty() {
        // A client given classless routes ignores the router option: add the default.
        if let Some(gw) = &subnet.gateway_ip {
            routes.push(format!("0.0.0.0/0,{gw}"));
        }
        o.insert(
            "classless_static_route".into(),
            format!("{{{}}}", routes.join(", ")),
        );
    }
    o
}

/// The metadata port's address on a subnet: the next hop of the route to 169.254.169.254.
pub fn metadata_ip<'a>(s: &'a NetworkState, subnet_id: &str) -> Option<&'a str> {
    s.metadata_port
        .as_ref()?
        .fixed_ips
        .iter()
        .find(|ip| ip.subnet_id == subnet_id)
        .map(|ip| ip.ip_address.as_str())
}

/// One ACL: `(direction, priority, match, action)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Acl {
    pub direction: &'static str,
    pub priority: i64,
    pub matches: String,
    pub action: &'static str,
}

fn protocol_match(protocol: &str, ipv6: bool) -> Option<String> {
    Some(
        match protocol {
            "tcp" | "6" => "tcp",
            "udp" | "17" => "udp",
            "sctp" | "132" => "sctp",
            "icmp" | "1" if !ipv6 => "icmp4",
            "icmp" | "ipv6-icmp" | "icmpv6" | "58" if ipv6 => "icmp6",
            "icmp" | "1" => "icmp4",
            other => return other.parse::<u8>().ok().map(|n| format!("ip.proto == {n}")),
        }
        .to_string(),
    )
}

/// The ACL of one security group rule, as ML2/OVN builds it: ingress rules match the
/// group's ports as `outport` (`to-lport`), egress as `inport` (`from-lport`); the remote
/// side is a prefix or the other group's address set (`$pg_<id>_ip4`, which northd keeps
/// for every port group); stateful groups `allow-related`, stateless ones `allow-stateless`.
pub fn rule_acl(rule: &Rule, stateful: bool) -> Acl {
    let pg = port_group_name(&rule.security_group_id);
    let ipv6 = rule.ethertype == "IPv6";
    let ip = if ipv6 { "ip6" } else { "ip4" };
    let ingress = rule.direction == "ingress";
    let mut m = vec![
        if ingress {
            format!("outport == @{pg}")
        } else {
            format!("inport == @{pg}")
        },
        ip.to_string(),
    ];
    let remote_side = if ingress { "src" } else { "dst" };
    if let Some(prefix) = &rule.remote_ip_prefix {
        // OVN refuses a masked value with host bits set: match the network.
        let prefix = ferrostack_network::model::normalized(prefix);
        m.push(format!("{ip}.{remote_side} == {prefix}"));
    } else if let Some(g) = &rule.remote_group_id {
        m.push(format!(
            "{ip}.{remote_side} == ${}_{ip}",
            port_group_name(g)
        ));
    }
    if let Some(proto) = rule
        .protocol
        .as_deref()
        .and_then(|p| protocol_match(p, ipv6))
    {
        let l4 = proto.clone();
        m.push(proto);
        let icmp = l4.starts_with("icmp");
        match (rule.port_range_min, rule.port_range_max) {
            // For ICMP the "ports" are the type and the code.
            (Some(t), code) if icmp => {
                m.push(format!("{l4}.type == {t}"));
                if let Some(c) = code {
                    m.push(format!("{l4}.code == {c}"));
                }
            }
            (Some(lo), Some(hi)) if !l4.starts_with("ip.") && lo == hi => {
                m.push(format!("{l4}.dst == {lo}"))
            }
            (Some(lo), Some(hi)) if !l4.starts_with("ip.") => {
                m.push(format!("{l4}.dst >= {lo} && {l4}.dst <= {hi}"))
            }
            _ => {}
        }
    }
    Acl {
        direction: if ingress { "to-lport" } else { "from-lport" },
        priority: ACL_PRIORITY_ALLOW,
        matches: m.join(" && "),
        action: if stateful {
            "allow-related"
        } else {
            "allow-stateless"
        },
    }
}

/// The two ACLs of `neutron_pg_drop`: anything to or from a port with port security that no
/// group allowed is dropped.
pub fn drop_acls() -> [Acl; 2] {
    [
        Acl {
            direction: "from-lport",
            priority: ACL_PRIORITY_DROP,
            matches: format!("inport == @{DROP_PORT_GROUP} && ip"),
            action: "drop",
        },
        Acl {
            direction: "to-lport",
            priority: ACL_PRIORITY_DROP,
            matches: format!("outport == @{DROP_PORT_GROUP} && ip"),
            action: "drop",
        },
    ]
}

#[cfg(test)]
mod tests;
