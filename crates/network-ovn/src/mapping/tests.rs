//! The mapping against what ML2/OVN writes for the same objects.

use ferrostack_network::backend::{NetworkState, PortAddress, PortState};
use ferrostack_network::model::{Network, Port, Rule, Subnet};
use serde_json::{json, Value};

use super::*;

const NET: &str = "cb7db1a4-a378-4e89-ba3d-b01f554ce3d8";
const SG: &str = "5f4a2c1e-8b7d-4e3f-9a2b-1c0d9e8f7a6b";

fn merge(mut base: Value, over: Value) -> Value {
    if let (Some(b), Some(o)) = (base.as_object_mut(), over.as_object()) {
        for (k, v) in o {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

fn network(over: Value) -> Network {
    serde_json::from_value(merge(
        json!({"id": NET, "project_id": "p", "name": "private", "description": "",
            "admin_state_up": true, "shared": false, "external": false, "mtu": 1442,
            "port_security_enabled": true, "network_type": "geneve", "physical_network": null,
            "segmentation_id": 77, "is_default": false, "dns_domain": "", "tags": [],
            "revision_number": 3, "created_at": 0, "updated_at": 0}),
        over,
    ))
    .unwrap()
}

fn subnet(over: Value) -> Subnet {
    serde_json::from_value(merge(
        json!({"id": "8e1c7b52-0a4f-4d3e-b2c1-9f8e7d6c5b4a", "network_id": NET, "project_id": "p",
            "name": "", "description": "", "ip_version": 4, "cidr": "10.0.0.0/24",
            "gateway_ip": "10.0.0.1", "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.254"}],
            "dns_nameservers": [], "host_routes": [], "enable_dhcp": true, "ipv6_ra_mode": null,
            "ipv6_address_mode": null, "service_types": [], "tags": [], "revision_number": 1,
            "created_at": 0, "updated_at": 0}),
        over,
    ))
    .unwrap()
}

fn port(over: Value) -> PortState {
    let port: Port = serde_json::from_value(merge(
        json!({"id": "f41f75ce-2bc7-4ea2-8908-c61fedaad9b2", "network_id": NET, "project_id": "p",
            "name": "web", "description": "", "admin_state_up": true,
            "mac_address": "fa:16:3e:11:22:33", "device_id": "vm-1", "device_owner": "compute:nova",
            "status": "DOWN", "fixed_ips": [{"subnet_id": "s", "ip_address": "10.0.0.5"}],
            "host": "h", "vnic_type": "normal", "profile": {}, "allowed_address_pairs": [],
            "port_security_enabled": true, "security_groups": [SG], "extra_dhcp_opts": [],
            "dns_name": "", "tags": [], "revision_number": 2, "created_at": 0, "updated_at": 0}),
        over,
    ))
    .unwrap();
    PortState {
        port,
        network_mtu: 1442,
        network_type: "geneve".into(),
        physical_network: None,
        segmentation_id: Some(77),
        network_external: false,
        security_group_ids: vec![SG.into()],
        addresses: vec![PortAddress {
            subnet_id: "s".into(),
            ip_address: "10.0.0.5".into(),
            ip_version: 4,
            cidr: "10.0.0.0/24".into(),
            gateway_ip: Some("10.0.0.1".into()),
            enable_dhcp: true,
            dns_nameservers: vec![],
            ipv6_address_mode: None,
        }],
    }
}

fn rule(over: Value) -> Rule {
    serde_json::from_value(merge(
        json!({"id": "r", "security_group_id": SG, "project_id": "p", "direction": "ingress",
            "ethertype": "IPv4", "protocol": null, "port_range_min": null, "port_range_max": null,
            "remote_ip_prefix": null, "remote_group_id": null, "description": "",
            "revision_number": 0, "created_at": 0, "updated_at": 0}),
        over,
    ))
    .unwrap()
}

#[test]
fn names_are_ml2_ovns() {
    assert_eq!(switch_name(NET), format!("neutron-{NET}"));
    assert_eq!(
        port_group_name(SG),
        "pg_5f4a2c1e_8b7d_4e3f_9a2b_1c0d9e8f7a6b"
    );
    assert_eq!(router_port_name("x"), "lrp-x");
}

#[test]
fn a_switch_carries_its_name_mtu_and_vni() {
    let s = NetworkState {
        network: network(json!({})),
        subnets: vec![],
        metadata_port: None,
    };
    let ids = switch_external_ids(&s);
    assert_eq!(ids["neutron:network_name"], "private");
    assert_eq!(ids["neutron:revision_number"], "3");
    assert_eq!(switch_other_config(&s)["requested-tnl-key"], "77");
    assert_eq!(localnet_port(&s), None);
    let flat = NetworkState {
        network: network(
            json!({"network_type": "flat", "physical_network": "public", "segmentation_id": null}),
        ),
        subnets: vec![],
        metadata_port: None,
    };
    let (name, options) = localnet_port(&flat).unwrap();
    assert_eq!(name, format!("provnet-{NET}"));
    assert_eq!(options["network_name"], "public");
    assert!(!switch_other_config(&flat).contains_key("requested-tnl-key"));
}

#[test]
fn a_vm_port_has_its_addresses_and_port_security() {
    let mut p =
        port(json!({"allowed_address_pairs": [{"ip_address": "10.0.0.99", "mac_address": ""}]}));
    assert_eq!(port_addresses(&p), ["fa:16:3e:11:22:33 10.0.0.5"]);
    assert_eq!(
        port_security(&p),
        ["fa:16:3e:11:22:33 10.0.0.5", "fa:16:3e:11:22:33 10.0.0.99"]
    );
    assert_eq!(port_type(&p), "");
    let ids = port_external_ids(&p);
    assert_eq!(ids["neutron:cidrs"], "10.0.0.5/24");
    assert_eq!(ids["neutron:network_name"], format!("neutron-{NET}"));
    assert_eq!(ids["neutron:security_group_ids"], SG);
    p.port.port_security_enabled = false;
    assert!(port_security(&p).is_empty());
    let meta = port(json!({"device_owner": "network:distributed"}));
    assert_eq!(port_type(&meta), "localport");
    assert!(port_security(&meta).is_empty());
    let router = port(json!({"device_owner": "network:router_interface"}));
    assert_eq!(port_addresses(&router), ["router"]);
}

#[test]
fn dhcp_options_route_the_metadata_address_through_the_metadata_port() {
    let s = subnet(json!({"dns_nameservers": ["10.0.0.53", "9.9.9.9"],
        "host_routes": [{"destination": "192.168.0.0/16", "nexthop": "10.0.0.254"}]}));
    let o = dhcpv4_options(&s, 1442, Some("10.0.0.2"));
    assert_eq!(o["router"], "10.0.0.1");
    assert_eq!(o["server_id"], "10.0.0.1");
    assert_eq!(o["mtu"], "1442");
    assert_eq!(o["lease_time"], "43200");
    assert_eq!(o["dns_server"], "{10.0.0.53, 9.9.9.9}");
    assert_eq!(
        o["classless_static_route"],
        "{192.168.0.0/16,10.0.0.254, 169.254.169.254/32,10.0.0.2, 0.0.0.0/0,10.0.0.1}"
    );
    assert_eq!(o["server_mac"], "fa:16:3e:8e:1c:7b");
    let bare = dhcpv4_options(&subnet(json!({"gateway_ip": null})), 1442, None);
    assert_eq!(bare["server_id"], "10.0.0.2");
    assert!(!bare.contains_key("router"));
    assert!(!bare.contains_key("classless_static_route"));
}

#[test]
fn rules_become_acls_on_their_port_group() {
    let pg = port_group_name(SG);
    let ssh = rule_acl(
        &rule(
            json!({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
            "remote_ip_prefix": "0.0.0.0/0"}),
        ),
        true,
    );
    assert_eq!(ssh.direction, "to-lport");
    assert_eq!(ssh.priority, 1002);
    assert_eq!(ssh.action, "allow-related");
    assert_eq!(
        ssh.matches,
        format!("outport == @{pg} && ip4 && ip4.src == 0.0.0.0/0 && tcp && tcp.dst == 22")
    );
    let range = rule_acl(
        &rule(json!({"protocol": "udp", "port_range_min": 1000, "port_range_max": 2000})),
        true,
    );
    assert_eq!(
        range.matches,
        format!("outport == @{pg} && ip4 && udp && udp.dst >= 1000 && udp.dst <= 2000")
    );
    let from_group = rule_acl(
        &rule(json!({"ethertype": "IPv6", "remote_group_id": SG})),
        true,
    );
    assert_eq!(
        from_group.matches,
        format!("outport == @{pg} && ip6 && ip6.src == ${pg}_ip6")
    );
    let egress = rule_acl(&rule(json!({"direction": "egress"})), false);
    assert_eq!(egress.direction, "from-lport");
    assert_eq!(egress.action, "allow-stateless");
    assert_eq!(egress.matches, format!("inport == @{pg} && ip4"));
    let ping = rule_acl(
        &rule(json!({"protocol": "icmp", "port_range_min": 8, "port_range_max": 0})),
        true,
    );
    assert_eq!(
        ping.matches,
        format!("outport == @{pg} && ip4 && icmp4 && icmp4.type == 8 && icmp4.code == 0")
    );
    let gre = rule_acl(&rule(json!({"protocol": "47"})), true);
    assert_eq!(
        gre.matches,
        format!("outport == @{pg} && ip4 && ip.proto == 47")
    );
    assert_eq!(drop_acls()[0].matches, "inport == @neutron_pg_drop && ip");
}

#[test]
fn a_prefix_with_host_bits_matches_its_network() {
    let acl = rule_acl(
        &rule(json!({"protocol": "udp", "remote_ip_prefix": "10.2.3.124/24"})),
        true,
    );
    assert!(
        acl.matches.contains("ip4.src == 10.2.3.0/24"),
        "{}",
        acl.matches
    );
}
