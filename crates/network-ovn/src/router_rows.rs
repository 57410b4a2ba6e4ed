//! Routers and floating IPs as OVN Northbound rows, the way ML2/OVN writes them: a router
//! is the Logical_Router `neutron-<router id>`, each of its Neutron ports (the gateway on
//! the external network and one per interface) a Logical_Router_Port `lrp-<port id>` with
//! the port's MAC and addresses, the gateway port pinned to gateway chassis; SNAT of each
//! interface subnet to the gateway address is a `snat` NAT row, the default route through
//! the external subnet's gateway a static route marked `neutron:is_ext_gw`, and an
//! associated floating IP a `dnat_and_snat` NAT row on the router that reaches its port.
//!
//! Pure functions of the backend's states; [`crate::routing`] writes them.

use std::collections::BTreeMap;

use ferrostack_network::backend::{PortState, RouterState};
use ferrostack_network::model::FloatingIp;

use crate::mapping::{router_name, router_port_name, switch_name};

/// A Logical_Router_Port as ML2/OVN makes it for one router port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterPortRow {
    pub name: String,
    pub mac: String,
    /// `address/prefix length` for each fixed IP (OVN's `networks`).
    pub networks: Vec<String>,
    pub external_ids: BTreeMap<String, String>,
    /// The gateway port: the one pinned to gateway chassis.
    pub gateway: bool,
}

/// One NAT row: `(type, external_ip, logical_ip)` and its `external_ids`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatRow {
    pub kind: &'static str,
    pub external_ip: String,
    pub logical_ip: String,
    pub external_ids: BTreeMap<String, String>,
}

/// One Logical_Router_Static_Route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRow {
    pub ip_prefix: String,
    pub nexthop: String,
    pub external_ids: BTreeMap<String, String>,
}

/// The Logical_Router's `external_ids`.
pub fn router_external_ids(r: &RouterState) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("neutron:router_name".into(), r.router.name.clone()),
        (
            "neutron:revision_number".into(),
            r.router.revision_number.to_string(),
        ),
        (
            "neutron:gw_port_id".into(),
            r.router.gateway_port_id.clone().unwrap_or_default(),
        ),
        ("neutron:availability_zone_hints".into(), String::new()),
    ])
}

/// The Logical_Router's `options` ML2/OVN sets on every router: no ARP learning from
/// requests (large external networks would fill the MAC_Binding table), neighbours
/// resolved on demand.
pub fn router_options() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("always_learn_from_arp_request".into(), "false".into()),
        ("dynamic_neigh_routers".into(), "true".into()),
    ])
}

/// The router's ports: the gateway first (when there is one), then the interfaces.
pub fn router_ports(r: &RouterState) -> Vec<RouterPortRow> {
    let mut out = Vec::new();
    if let Some(g) = &r.gateway {
        out.push(router_port(&r.router.id, g, true));
    }
    for i in &r.interfaces {
        out.push(router_port(&r.router.id, i, false));
    }
    out
}

fn router_port(router_id: &str, p: &PortState, gateway: bool) -> RouterPortRow {
    let networks = p
        .addresses
        .iter()
        .map(|a| {
            let len = a.cidr.split_once('/').map_or("32", |(_, l)| l);
            format!("{}/{len}", a.ip_address)
        })
        .collect();
    let mut ids = BTreeMap::from([
        ("neutron:router_name".into(), router_id.to_string()),
        (
            "neutron:network_name".into(),
            switch_name(&p.port.network_id),
        ),
        (
            "neutron:revision_number".into(),
            p.port.revision_number.to_string(),
        ),
        (
            "neutron:subnet_ids".into(),
            p.addresses
                .iter()
                .map(|a| a.subnet_id.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ),
    ]);
    if gateway {
        ids.insert("neutron:is_ext_gw".into(), "True".into());
    }
    RouterPortRow {
        name: router_port_name(&p.port.id),
        mac: p.port.mac_address.clone(),
        networks,
        external_ids: ids,
        gateway,
    }
}

/// SNAT of every IPv4 interface subnet to the gateway's IPv4 address, when the router has
/// a gateway with SNAT on (IPv6 is routed, never translated).
pub fn snat_rows(r: &RouterState) -> Vec<NatRow> {
    let Some(gw) = &r.gateway else {
        return Vec::new();
    };
    if !r.router.enable_snat {
        return Vec::new();
    }
    let Some(external) = gw.addresses.iter().find(|a| a.ip_version == 4) else {
        return Vec::new();
    };
    let mut out: Vec<NatRow> = Vec::new();
    for a in r.interfaces.iter().flat_map(|i| &i.addresses) {
        if a.ip_version != 4 || out.iter().any(|n| n.logical_ip == a.cidr) {
            continue;
        }
        out.push(NatRow {
            kind: "snat",
            external_ip: external.ip_address.clone(),
            logical_ip: a.cidr.clone(),
            external_ids: BTreeMap::from([(
                "neutron:router_name".into(),
                router_name(&r.router.id),
            )]),
        });
    }
    out
}

/// The default routes through the external subnets' gateways, then the router's own
/// extra routes.
pub fn static_routes(r: &RouterState) -> Vec<RouteRow> {
    let mut out = Vec::new();
    if let Some(gw) = &r.gateway {
        for a in &gw.addresses {
            let Some(hop) = &a.gateway_ip else { continue };
            out.push(RouteRow {
                ip_prefix: if a.ip_version == 4 {
                    "0.0.0.0/0".into()
                } else {
                    "::/0".into()
                },
                nexthop: hop.clone(),
                external_ids: BTreeMap::from([
                    ("neutron:is_ext_gw".into(), "true".into()),
                    ("neutron:subnet_id".into(), a.subnet_id.clone()),
                ]),
            });
        }
    }
    for route in &r.router.routes {
        out.push(RouteRow {
            ip_prefix: route.destination.clone(),
            nexthop: route.nexthop.clone(),
            external_ids: BTreeMap::new(),
        });
    }
    out
}

/// The `dnat_and_snat` row of an associated floating IP, and the router it belongs on;
/// `None` while it is not associated.
pub fn floating_ip_nat(f: &FloatingIp) -> Option<(String, NatRow)> {
    let router_id = f.router_id.as_ref()?;
    let fixed = f.fixed_ip_address.as_ref()?;
    let port_id = f.port_id.as_ref()?;
    Some((
        router_name(router_id),
        NatRow {
            kind: "dnat_and_snat",
            external_ip: f.floating_ip_address.clone(),
            logical_ip: fixed.clone(),
            external_ids: BTreeMap::from([
                ("neutron:fip_id".into(), f.id.clone()),
                ("neutron:fip_port_id".into(), port_id.clone()),
                ("neutron:router_name".into(), router_name(router_id)),
                (
                    "neutron:fip_network_id".into(),
                    f.floating_network_id.clone(),
                ),
                (
                    "neutron:revision_number".into(),
                    f.revision_number.to_string(),
                ),
            ]),
        },
    ))
}

/// The `options` of the switch port standing for a router port: the router port it
/// patches to, and on the gateway the router's NAT addresses announced with GARPs.
pub fn router_switch_port_options(port_id: &str, gateway: bool) -> BTreeMap<String, String> {
    let mut o = BTreeMap::from([("router-port".into(), router_port_name(port_id))]);
    if gateway {
        o.insert("nat-addresses".into(), "router".into());
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrostack_network::backend::PortAddress;
    use serde_json::json;

    fn port(id: &str, owner: &str, ip: &str, cidr: &str, gw: Option<&str>) -> PortState {
        PortState {
            port: serde_json::from_value(json!({"id": id, "network_id": format!("net-{id}"),
                "project_id": "p", "name": "", "description": "", "admin_state_up": true,
                "mac_address": "fa:16:3e:00:00:01", "device_id": "r1", "device_owner": owner,
                "status": "ACTIVE", "fixed_ips": [{"subnet_id": format!("sub-{id}"), "ip_address": ip}],
                "host": "", "vnic_type": "normal", "profile": {}, "allowed_address_pairs": [],
                "port_security_enabled": false, "security_groups": [], "extra_dhcp_opts": [],
                "dns_name": "", "tags": [], "revision_number": 2, "created_at": 0, "updated_at": 0}))
            .unwrap(),
            network_mtu: 1500,
            network_type: "geneve".into(),
            physical_network: None,
            segmentation_id: None,
            network_external: false,
            security_group_ids: vec![],
            addresses: vec![PortAddress {
                subnet_id: format!("sub-{id}"),
                ip_address: ip.into(),
                ip_version: 4,
                cidr: cidr.into(),
                gateway_ip: gw.map(str::to_string),
                enable_dhcp: true,
                dns_nameservers: vec![],
                ipv6_address_mode: None,
            }],
        }
    }

    fn router(snat: bool) -> RouterState {
        RouterState {
            router: serde_json::from_value(json!({"id": "r1", "project_id": "p", "name": "demo",
                "description": "", "admin_state_up": true, "gateway_network_id": "net-gw",
                "gateway_port_id": "gw", "enable_snat": snat,
                "routes": [{"destination": "192.168.9.0/24", "nexthop": "10.0.0.9"}],
                "tags": [], "revision_number": 4, "created_at": 0, "updated_at": 0}))
            .unwrap(),
            gateway: Some(port(
                "gw",
                "network:router_gateway",
                "172.24.4.10",
                "172.24.4.0/24",
                Some("172.24.4.1"),
            )),
            interfaces: vec![port(
                "if1",
                "network:router_interface",
                "10.0.0.1",
                "10.0.0.0/24",
                Some("10.0.0.1"),
            )],
        }
    }

    #[test]
    fn a_router_has_a_gateway_port_and_its_interfaces() {
        let r = router(true);
        let ports = router_ports(&r);
        assert_eq!(ports.len(), 2);
        assert_eq!(ports[0].name, "lrp-gw");
        assert!(ports[0].gateway);
        assert_eq!(ports[0].networks, ["172.24.4.10/24"]);
        assert_eq!(ports[0].external_ids["neutron:is_ext_gw"], "True");
        assert_eq!(ports[1].name, "lrp-if1");
        assert_eq!(ports[1].networks, ["10.0.0.1/24"]);
        assert_eq!(
            ports[1].external_ids["neutron:network_name"],
            "neutron-net-if1"
        );
        assert_eq!(router_external_ids(&r)["neutron:gw_port_id"], "gw");
    }

    #[test]
    fn snat_follows_enable_snat_and_routes_go_through_the_external_gateway() {
        let nat = snat_rows(&router(true));
        assert_eq!(nat.len(), 1);
        assert_eq!(
            (
                nat[0].kind,
                nat[0].external_ip.as_str(),
                nat[0].logical_ip.as_str()
            ),
            ("snat", "172.24.4.10", "10.0.0.0/24")
        );
        assert!(snat_rows(&router(false)).is_empty());
        let routes = static_routes(&router(true));
        assert_eq!(routes[0].ip_prefix, "0.0.0.0/0");
        assert_eq!(routes[0].nexthop, "172.24.4.1");
        assert_eq!(routes[1].ip_prefix, "192.168.9.0/24");
        let mut bare = router(true);
        bare.gateway = None;
        assert!(snat_rows(&bare).is_empty());
        assert_eq!(static_routes(&bare).len(), 1);
    }

    #[test]
    fn only_an_associated_floating_ip_has_a_nat_row() {
        let mut f: FloatingIp = serde_json::from_value(json!({"id": "f1", "project_id": "p",
            "floating_network_id": "net-gw", "floating_ip_address": "172.24.4.20",
            "floating_port_id": "fp", "port_id": null, "fixed_ip_address": null,
            "router_id": null, "description": "", "tags": [], "revision_number": 1,
            "created_at": 0, "updated_at": 0}))
        .unwrap();
        assert!(floating_ip_nat(&f).is_none());
        f.port_id = Some("vm".into());
        f.fixed_ip_address = Some("10.0.0.5".into());
        f.router_id = Some("r1".into());
        let (router, nat) = floating_ip_nat(&f).unwrap();
        assert_eq!(router, "neutron-r1");
        assert_eq!(nat.kind, "dnat_and_snat");
        assert_eq!(nat.external_ip, "172.24.4.20");
        assert_eq!(nat.logical_ip, "10.0.0.5");
        assert_eq!(nat.external_ids["neutron:fip_id"], "f1");
        assert_eq!(
            router_switch_port_options("gw", true)["nat-addresses"],
            "router"
        );
    }
}
