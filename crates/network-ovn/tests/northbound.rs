//! The OVN backend against a real OVN Northbound ovsdb-server (started here in a temp dir,
//! killed by PID): a network, a group with rules and a port become the rows ML2/OVN would
//! write, `ovn-nbctl show` reads them as an operator expects, calls are idempotent, a
//! deleted port goes, and a full sync of an empty snapshot removes every Neutron row; a
//! router with a gateway, an interface and a floating IP becomes a Logical_Router with its
//! ports pinned to the gateway chassis the Southbound database offers, SNAT and DNAT rows.
//! Needs Open vSwitch and OVN (scripts/install-ovn.sh); fails, never skips, without them.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use ferrostack_network::backend::*;
use ferrostack_network::model::PortForwarding;
use ferrostack_network::NetworkBackend;
use ferrostack_network_ovn::mapping::{port_group_name, switch_name, DROP_PORT_GROUP};
use ferrostack_network_ovn::OvnBackend;
use serde_json::{json, Value};

struct Nb {
    dir: PathBuf,
    child: Child,
}

impl Nb {
    fn start() -> Nb {
        Nb::start_db("/usr/share/ovn/ovn-nb.ovsschema")
    }

    fn start_db(schema: &str) -> Nb {
        assert!(
            std::path::Path::new(schema).exists(),
            "OVN is not installed: run scripts/install-ovn.sh"
        );
        let dir = std::env::temp_dir().join(format!("fs-ovn-nb-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("nb.db");
        let ok = Command::new("ovsdb-tool")
            .arg("create")
            .arg(&db)
            .arg(schema)
            .status()
            .unwrap();
        assert!(ok.success());
        let child = Command::new("ovsdb-server")
            .arg(&db)
            .arg(format!("--remote=punix:{}", dir.join("nb.sock").display()))
            .arg(format!("--unixctl={}", dir.join("nb.ctl").display()))
            .arg("--no-chdir")
            .arg("-vconsole:off")
            .arg(format!("--log-file={}", dir.join("nb.log").display()))
            .spawn()
            .unwrap();
        for _ in 0..200 {
            if dir.join("nb.sock").exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Nb { dir, child }
    }

    fn endpoint(&self) -> String {
        format!("unix:{}", self.dir.join("nb.sock").display())
    }

    fn nbctl(&self, args: &[&str]) -> String {
        self.ctl("ovn-nbctl", args)
    }

    fn ctl(&self, tool: &str, args: &[&str]) -> String {
        let out = Command::new(tool)
            .arg(format!("--db={}", self.endpoint()))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Nb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const NET: &str = "cb7db1a4-a378-4e89-ba3d-b01f554ce3d8";
const SUBNET: &str = "8e1c7b52-0a4f-4d3e-b2c1-9f8e7d6c5b4a";
const SG: &str = "5f4a2c1e-8b7d-4e3f-9a2b-1c0d9e8f7a6b";
const PORT: &str = "f41f75ce-2bc7-4ea2-8908-c61fedaad9b2";

fn network_state() -> NetworkState {
    NetworkState {
        network: serde_json::from_value(json!({"id": NET, "project_id": "p", "name": "private",
            "description": "", "admin_state_up": true, "shared": false, "external": false,
            "mtu": 1442, "port_security_enabled": true, "network_type": "geneve",
            "physical_network": null, "segmentation_id": 77, "is_default": false,
            "dns_domain": "", "tags": [], "revision_number": 1, "created_at": 0, "updated_at": 0}))
        .unwrap(),
        subnets: vec![
            serde_json::from_value(json!({"id": SUBNET, "network_id": NET,
            "project_id": "p", "name": "", "description": "", "ip_version": 4,
            "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1",
            "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.254"}],
            "dns_nameservers": ["10.0.0.53"], "host_routes": [], "enable_dhcp": true,
            "ipv6_ra_mode": null, "ipv6_address_mode": null, "service_types": [], "tags": [],
            "revision_number": 1, "created_at": 0, "updated_at": 0}))
            .unwrap(),
        ],
        metadata_port: None,
    }
}

fn group_state() -> SecurityGroupState {
    let rule = |id: &str, dir: &str, extra: Value| {
        let mut r = json!({"id": id, "security_group_id": SG, "project_id": "p",
            "direction": dir, "ethertype": "IPv4", "protocol": null, "port_range_min": null,
            "port_range_max": null, "remote_ip_prefix": null, "remote_group_id": null,
            "description": "", "revision_number": 0, "created_at": 0, "updated_at": 0});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        serde_json::from_value(r).unwrap()
    };
    SecurityGroupState {
        group: serde_json::from_value(json!({"id": SG, "project_id": "p", "name": "default",
            "description": "", "stateful": true, "tags": [], "revision_number": 0,
            "created_at": 0, "updated_at": 0}))
        .unwrap(),
        rules: vec![
            rule("r1", "egress", json!({})),
            rule("r2", "ingress", json!({"remote_group_id": SG})),
            rule(
                "r3",
                "ingress",
                json!({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}),
            ),
        ],
    }
}

fn port_state() -> PortState {
    PortState {
        port: serde_json::from_value(json!({"id": PORT, "network_id": NET, "project_id": "p",
            "name": "web", "description": "", "admin_state_up": true,
            "mac_address": "fa:16:3e:11:22:33", "device_id": "vm-1",
            "device_owner": "compute:nova", "status": "DOWN",
            "fixed_ips": [{"subnet_id": SUBNET, "ip_address": "10.0.0.5"}], "host": "host-1",
            "vnic_type": "normal", "profile": {}, "allowed_address_pairs": [],
            "port_security_enabled": true, "security_groups": [SG], "extra_dhcp_opts": [],
            "dns_name": "", "tags": [], "revision_number": 1, "created_at": 0, "updated_at": 0}))
        .unwrap(),
        network_mtu: 1442,
        network_type: "geneve".into(),
        physical_network: None,
        segmentation_id: Some(77),
        network_external: false,
        security_group_ids: vec![SG.into()],
        addresses: vec![PortAddress {
            subnet_id: SUBNET.into(),
            ip_address: "10.0.0.5".into(),
            ip_version: 4,
            cidr: "10.0.0.0/24".into(),
            gateway_ip: Some("10.0.0.1".into()),
            enable_dhcp: true,
            dns_nameservers: vec!["10.0.0.53".into()],
            ipv6_address_mode: None,
        }],
    }
}

#[tokio::test]
async fn neutron_objects_become_ml2_ovn_rows() {
    let nb = Nb::start();
    let ovn = OvnBackend::connect(&nb.endpoint()).await.unwrap();
    // Twice each: the second call must change nothing.
    for _ in 0..2 {
        ovn.sync_security_group(&group_state()).await.unwrap();
        ovn.sync_network(&network_state()).await.unwrap();
        ovn.sync_port(&port_state()).await.unwrap();
    }
    let show = nb.nbctl(&["show"]);
    assert!(
        show.contains(&format!("({}) (aka private)", switch_name(NET))),
        "{show}"
    );
    assert!(show.contains(&format!("port {PORT}")), "{show}");
    assert!(
        show.contains("addresses: [\"fa:16:3e:11:22:33 10.0.0.5\"]"),
        "{show}"
    );
    assert_eq!(
        nb.nbctl(&["--bare", "--columns=name", "list", "Logical_Switch"])
            .trim(),
        switch_name(NET)
    );
    assert_eq!(
        nb.nbctl(&["lsp-get-port-security", PORT]).trim(),
        "fa:16:3e:11:22:33 10.0.0.5"
    );
    let dhcp = nb.nbctl(&["dhcp-options-list"]);
    assert_eq!(dhcp.lines().count(), 1, "{dhcp}");
    let dhcp_uuid = dhcp.trim();
    assert_eq!(
        nb.nbctl(&["lsp-get-dhcpv4-options", PORT])
            .split_whitespace()
            .next(),
        Some(dhcp_uuid)
    );
    let opts = nb.nbctl(&["dhcp-options-get-options", dhcp_uuid]);
    assert!(
        opts.contains("router=10.0.0.1") && opts.contains("mtu=1442"),
        "{opts}"
    );
    let pg = port_group_name(SG);
    let acls = nb.nbctl(&["acl-list", &pg]);
    assert_eq!(acls.lines().count(), 3, "{acls}");
    assert!(acls.contains("tcp.dst == 22"), "{acls}");
    assert!(acls.contains(&format!("ip4.src == ${pg}_ip4")), "{acls}");
    assert_eq!(nb.nbctl(&["acl-list", DROP_PORT_GROUP]).lines().count(), 2);
    let members = nb.nbctl(&[
        "--bare",
        "--columns=ports",
        "find",
        "Port_Group",
        &format!("name={pg}"),
    ]);
    assert_eq!(members.split_whitespace().count(), 1, "{members}");
    assert_eq!(
        nb.nbctl(&[
            "--bare",
            "--columns=options",
            "find",
            "Logical_Switch_Port",
            &format!("name={PORT}")
        ])
        .trim(),
        "requested-chassis=host-1"
    );

    // A rule fewer: its ACL goes.
    let mut g = group_state();
    g.rules.pop();
    ovn.sync_security_group(&g).await.unwrap();
    assert_eq!(nb.nbctl(&["acl-list", &pg]).lines().count(), 2);

    ovn.delete_port(&port_state()).await.unwrap();
    assert!(!nb.nbctl(&["show"]).contains(PORT));
    ovn.delete_port(&port_state()).await.unwrap();

    // Drift: a full sync puts the port back, then an empty snapshot removes everything.
    ovn.full_sync(&Snapshot {
        networks: vec![network_state()],
        ports: vec![port_state()],
        security_groups: vec![group_state()],
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(nb.nbctl(&["show"]).contains(PORT));
    ovn.full_sync(&Snapshot::default()).await.unwrap();
    assert_eq!(nb.nbctl(&["show"]).trim(), "");
    assert_eq!(
        nb.nbctl(&["--bare", "--columns=name", "list", "Port_Group"])
            .trim(),
        DROP_PORT_GROUP
    );
}

fn port_on(id: &str, net: &str, owner: &str, ip: &str, cidr: &str, gw: &str) -> PortState {
    let mut p = port_state();
    p.port.id = id.into();
    p.port.network_id = net.into();
    p.port.device_owner = owner.into();
    p.port.device_id = "router-1".into();
    p.port.host = String::new();
    p.port.port_security_enabled = false;
    p.security_group_ids.clear();
    p.addresses[0].subnet_id = format!("sub-{id}");
    p.addresses[0].ip_address = ip.into();
    p.addresses[0].cidr = cidr.into();
    p.addresses[0].gateway_ip = Some(gw.into());
    p
}

const EXT: &str = "5e0e3d10-4b8f-4e8e-9a61-3b1f2a7c6d01";
const ROUTER: &str = "7d5b8c3a-1f2e-4a6b-9c8d-0e1f2a3b4c5d";
const GW_PORT: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const IF_PORT: &str = "1b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e";

fn router_state(snat: bool) -> RouterState {
    RouterState {
        router: serde_json::from_value(json!({"id": ROUTER, "project_id": "p", "name": "demo",
            "description": "", "admin_state_up": true, "gateway_network_id": EXT,
            "gateway_port_id": GW_PORT, "enable_snat": snat, "routes": [],
            "tags": [], "revision_number": 3, "created_at": 0, "updated_at": 0}))
        .unwrap(),
        gateway: Some(port_on(
            GW_PORT,
            EXT,
            "network:router_gateway",
            "172.24.4.10",
            "172.24.4.0/24",
            "172.24.4.1",
        )),
        interfaces: vec![port_on(
            IF_PORT,
            NET,
            "network:router_interface",
            "10.0.0.1",
            "10.0.0.0/24",
            "10.0.0.1",
        )],
    }
}

fn floating_ip(associated: bool) -> FloatingIpState {
    FloatingIpState {
        floating_ip: serde_json::from_value(json!({"id": "fip-1", "project_id": "p",
            "floating_network_id": EXT, "floating_ip_address": "172.24.4.20",
            "floating_port_id": "fport", "port_id": if associated { Some(PORT) } else { None },
            "fixed_ip_address": if associated { Some("10.0.0.5") } else { None },
            "router_id": if associated { Some(ROUTER) } else { None },
            "description": "", "tags": [], "revision_number": 1, "created_at": 0,
            "updated_at": 0}))
        .unwrap(),
        port_forwardings: vec![],
    }
}

/// An unassociated floating IP forwarding TCP 2222 and UDP 5353 (and TCP 8080 when
/// `more`) to the VM port through the router.
fn forwarding_fip(more: bool) -> FloatingIpState {
    let pf = |id: &str, proto: &str, ext: i64, int: i64| -> PortForwarding {
        serde_json::from_value(
            json!({"id": id, "floatingip_id": "fip-2", "project_id": "p",
            "protocol": proto, "internal_ip_address": "10.0.0.5", "internal_port": int,
            "external_port": ext, "internal_port_id": PORT, "description": ""}),
        )
        .unwrap()
    };
    let mut pfs = vec![pf("pf-1", "tcp", 2222, 22), pf("pf-2", "udp", 5353, 53)];
    if more {
        pfs.push(pf("pf-3", "tcp", 8080, 80));
    }
    FloatingIpState {
        floating_ip: serde_json::from_value(json!({"id": "fip-2", "project_id": "p",
            "floating_network_id": EXT, "floating_ip_address": "172.24.4.21",
            "floating_port_id": "fport2", "port_id": null, "fixed_ip_address": null,
            "router_id": ROUTER, "description": "", "tags": [], "revision_number": 1,
            "created_at": 0, "updated_at": 0}))
        .unwrap(),
        port_forwardings: pfs,
    }
}

#[tokio::test]
async fn port_forwardings_become_load_balancers_on_the_router() {
    let nb = Nb::start();
    let ovn = OvnBackend::connect(&nb.endpoint()).await.unwrap();
    ovn.sync_network(&network_state()).await.unwrap();
    let r = router_state(true);
    ovn.sync_port(r.interfaces.first().unwrap()).await.unwrap();
    ovn.sync_router(&r).await.unwrap();
    for _ in 0..2 {
        ovn.sync_floating_ip(&forwarding_fip(true)).await.unwrap();
    }
    let lr = format!("neutron-{ROUTER}");
    let names = nb.nbctl(&["--bare", "--columns=name", "list", "Load_Balancer"]);
    assert!(
        names.contains("pf-floatingip-fip-2-tcp") && names.contains("pf-floatingip-fip-2-udp"),
        "{names}"
    );
    let lbs = nb.nbctl(&["lb-list"]);
    assert!(
        lbs.contains("172.24.4.21:2222") && lbs.contains("10.0.0.5:22"),
        "{lbs}"
    );
    assert!(
        lbs.contains("172.24.4.21:8080") && lbs.contains("10.0.0.5:80"),
        "{lbs}"
    );
    assert!(
        lbs.contains("172.24.4.21:5353") && lbs.contains("10.0.0.5:53"),
        "{lbs}"
    );
    // Both on the router (lr-lb-list cuts names: count them, check a VIP of each).
    let on_router = nb.nbctl(&["lr-lb-list", &lr]);
    assert!(
        on_router.contains("172.24.4.21:2222") && on_router.contains("172.24.4.21:5353"),
        "{on_router}"
    );
    assert_eq!(
        nb.nbctl(&["get", "Logical_Router", &lr, "load_balancer"])
            .matches('-')
            .count(),
        8,
        "two load balancer references"
    );
    let ids = nb.nbctl(&[
        "get",
        "Load_Balancer",
        "pf-floatingip-fip-2-tcp",
        "external_ids",
    ]);
    assert!(
        ids.contains("port_forwarding_plugin") && ids.contains(&format!("neutron-{ROUTER}")),
        "{ids}"
    );
    // No NAT row: the forwardings are the floating IP's only translation.
    assert!(nb
        .nbctl(&["lr-nat-list", &lr])
        .lines()
        .all(|l| !l.contains("172.24.4.21")));

    // One forwarding fewer: its VIP goes, the load balancer stays.
    ovn.sync_floating_ip(&forwarding_fip(false)).await.unwrap();
    let lbs = nb.nbctl(&["lb-list"]);
    assert!(
        !lbs.contains("172.24.4.21:8080") && lbs.contains("172.24.4.21:2222"),
        "{lbs}"
    );

    // Drift: a load balancer deleted behind our back comes back; a stale one goes.
    nb.nbctl(&["lb-del", "pf-floatingip-fip-2-udp"]);
    ovn.full_sync(&Snapshot {
        networks: vec![network_state()],
        ports: r.interfaces.clone(),
        routers: vec![router_state(true)],
        floating_ips: vec![forwarding_fip(false)],
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(nb
        .nbctl(&["--bare", "--columns=name", "list", "Load_Balancer"])
        .contains("pf-floatingip-fip-2-udp"));
    ovn.delete_floating_ip("fip-2").await.unwrap();
    assert_eq!(nb.nbctl(&["lb-list"]).trim(), "");
    ovn.sync_floating_ip(&forwarding_fip(false)).await.unwrap();
    ovn.full_sync(&Snapshot::default()).await.unwrap();
    assert_eq!(nb.nbctl(&["lb-list"]).trim(), "");
}

#[tokio::test]
async fn routers_and_floating_ips_become_ml2_ovn_rows() {
    let nb = Nb::start();
    let sb = Nb::start_db("/usr/share/ovn/ovn-sb.ovsschema");
    sb.ctl(
        "ovn-sbctl",
        &["chassis-add", "compute-1", "geneve", "127.0.0.2"],
    );
    sb.ctl("ovn-sbctl", &["chassis-add", "gw-1", "geneve", "127.0.0.1"]);
    sb.ctl(
        "ovn-sbctl",
        &[
            "set",
            "Chassis",
            "gw-1",
            "other_config:ovn-cms-options=enable-chassis-as-gw",
        ],
    );
    let ovn = OvnBackend::connect(&nb.endpoint())
        .await
        .unwrap()
        .with_southbound(&sb.endpoint())
        .await
        .unwrap();
    assert_eq!(ovn.gateway_chassis(), ["gw-1"]);
    ovn.sync_network(&network_state()).await.unwrap();
    let r = router_state(true);
    for _ in 0..2 {
        ovn.sync_port(r.interfaces.first().unwrap()).await.unwrap();
        ovn.sync_router(&r).await.unwrap();
        ovn.sync_floating_ip(&floating_ip(true)).await.unwrap();
    }
    let lr = format!("neutron-{ROUTER}");
    let show = nb.nbctl(&["show", &lr]);
    assert!(show.contains(&format!("port lrp-{GW_PORT}")), "{show}");
    assert!(show.contains("networks: [\"172.24.4.10/24\"]"), "{show}");
    assert!(show.contains(&format!("port lrp-{IF_PORT}")), "{show}");
    assert!(show.contains("gateway chassis: [gw-1]"), "{show}");
    let nat = nb.nbctl(&["lr-nat-list", &lr]);
    assert!(nat.contains("snat") && nat.contains("10.0.0.0/24"), "{nat}");
    assert!(
        nat.contains("dnat_and_snat") && nat.contains("172.24.4.20") && nat.contains("10.0.0.5"),
        "{nat}"
    );
    assert_eq!(nat.lines().count(), 3, "{nat}");
    let routes = nb.nbctl(&["lr-route-list", &lr]);
    assert!(
        routes.contains("0.0.0.0/0") && routes.contains("172.24.4.1"),
        "{routes}"
    );
    // The interface's switch port patches to its router port.
    assert_eq!(nb.nbctl(&["lsp-get-type", IF_PORT]).trim(), "router");
    assert!(nb
        .nbctl(&["lsp-get-options", IF_PORT])
        .contains(&format!("router-port=lrp-{IF_PORT}")));

    // SNAT off keeps the floating IP; a disassociated floating IP loses its row.
    ovn.sync_router(&router_state(false)).await.unwrap();
    let nat = nb.nbctl(&["lr-nat-list", &lr]);
    assert_eq!(nat.lines().count(), 2, "{nat}");
    assert!(nat.contains("dnat_and_snat"), "{nat}");
    ovn.sync_floating_ip(&floating_ip(false)).await.unwrap();
    assert!(nb.nbctl(&["lr-nat-list", &lr]).trim().is_empty());

    // Drift: the router wiped behind our back comes back whole; an empty snapshot removes it.
    nb.nbctl(&["lr-del", &lr]);
    ovn.full_sync(&Snapshot {
        networks: vec![network_state()],
        ports: r.interfaces.clone(),
        routers: vec![router_state(true)],
        floating_ips: vec![floating_ip(true)],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(nb.nbctl(&["lr-nat-list", &lr]).lines().count(), 3);
    ovn.delete_floating_ip("fip-1").await.unwrap();
    assert_eq!(nb.nbctl(&["lr-nat-list", &lr]).lines().count(), 2);
    ovn.full_sync(&Snapshot::default()).await.unwrap();
    assert_eq!(nb.nbctl(&["show"]).trim(), "");
}

/// Neutron's agents from real Southbound chassis: a gateway chassis and a compute chassis
/// named by a UUID (as a system-id usually is), each with its controller and metadata
/// agent; ids, types, hosts, zones and bridge mappings as ML2/OVN shows them; a chassis
/// that stops following `NB_Global.nb_cfg` turns dead after `agent_down_time`;
/// descriptions land in `Chassis_Private.external_ids`; deleting an agent removes its
/// chassis.
#[tokio::test]
async fn chassis_become_ml2_ovn_agents() {
    const COMPUTE: &str = "5c9d1a06-3f1e-4b8a-9d0e-2a7b6c4f8e11";
    let nb = Nb::start();
    let sb = Nb::start_db("/usr/share/ovn/ovn-sb.ovsschema");
    sb.ctl("ovn-sbctl", &["chassis-add", "gw-1", "geneve", "127.0.0.1"]);
    sb.ctl(
        "ovn-sbctl",
        &["chassis-add", COMPUTE, "geneve", "127.0.0.2"],
    );
    sb.ctl(
        "ovn-sbctl",
        &[
            "set",
            "Chassis",
            "gw-1",
            "hostname=node1",
            "other_config:ovn-cms-options=\"enable-chassis-as-gw,availability-zones=az2:az1\"",
            "other_config:ovn-bridge-mappings=public:br-ex",
        ],
    );
    sb.ctl("ovn-sbctl", &["set", "Chassis", COMPUTE, "hostname=node2"]);
    // A Chassis_Private row for each, as ovn-controller makes it.
    for name in ["gw-1", COMPUTE] {
        let chassis = sb.ctl(
            "ovn-sbctl",
            &[
                "--bare",
                "--columns=_uuid",
                "find",
                "Chassis",
                &format!("name={name}"),
            ],
        );
        let existing = sb.ctl(
            "ovn-sbctl",
            &[
                "--bare",
                "--columns=_uuid",
                "find",
                "Chassis_Private",
                &format!("name={name}"),
            ],
        );
        if existing.trim().is_empty() {
            sb.ctl(
                "ovn-sbctl",
                &[
                    "create",
                    "Chassis_Private",
                    &format!("name={name}"),
                    &format!("chassis={}", chassis.trim()),
                ],
            );
        }
    }
    nb.nbctl(&["set", "NB_Global", ".", "nb_cfg=10"]);
    sb.ctl(
        "ovn-sbctl",
        &["set", "Chassis_Private", COMPUTE, "nb_cfg=10"],
    );
    let ovn = OvnBackend::connect(&nb.endpoint())
        .await
        .unwrap()
        .with_southbound(&sb.endpoint())
        .await
        .unwrap()
        .with_agent_down_time(Duration::from_secs(1));
    let fake = ferrostack_network::fake::FakeBackend::new();
    assert!(fake.list_agents().await.unwrap().is_empty());

    let mut agents = ovn.list_agents().await.unwrap();
    agents.sort_by(|a, b| (&a.host, &a.binary).cmp(&(&b.host, &b.binary)));
    let summary: Vec<(&str, &str, &str, &str, bool)> = agents
        .iter()
        .map(|a| {
            (
                a.id.as_str(),
                a.agent_type.as_str(),
                a.binary.as_str(),
                a.host.as_str(),
                a.alive,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "dbf58ed8-7bbd-58f2-bce2-aa913fca215e",
                "OVN Metadata agent",
                "neutron-ovn-metadata-agent",
                "node1",
                true
            ),
            (
                "gw-1",
                "OVN Controller Gateway agent",
                "ovn-controller",
                "node1",
                true
            ),
            (
                "ed81e2c0-7670-5e3b-a6ea-e2c0e76e96d0",
                "OVN Metadata agent",
                "neutron-ovn-metadata-agent",
                "node2",
                true
            ),
            (
                COMPUTE,
                "OVN Controller agent",
                "ovn-controller",
                "node2",
                true
            ),
        ]
    );
    let gw = &agents[1];
    assert_eq!(gw.availability_zone, "az1, az2");
    assert_eq!(
        gw.configurations,
        json!({"chassis_name": "gw-1", "bridge-mappings": "public:br-ex"})
    );
    assert!(gw.admin_state_up);
    assert_eq!(agents[3].availability_zone, "");
    // Listing pinged the chassis (NB_Global.nb_cfg 10 -> 11).
    assert!(nb.nbctl(&["get", "NB_Global", ".", "nb_cfg"]).trim() == "11");

    // gw-1's controller never answers; the compute chassis' does.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    sb.ctl(
        "ovn-sbctl",
        &["set", "Chassis_Private", COMPUTE, "nb_cfg=12"],
    );
    let agents = ovn.list_agents().await.unwrap();
    let alive = |id: &str| agents.iter().find(|a| a.id == id).unwrap().alive;
    assert!(!alive("gw-1"), "{agents:?}");
    assert!(!alive("dbf58ed8-7bbd-58f2-bce2-aa913fca215e"));
    assert!(alive(COMPUTE), "{agents:?}");
    assert!(alive("ed81e2c0-7670-5e3b-a6ea-e2c0e76e96d0"));

    assert!(ovn.set_agent_description("gw-1", "rack 4").await.unwrap());
    assert!(ovn
        .set_agent_description("dbf58ed8-7bbd-58f2-bce2-aa913fca215e", "metadata of rack 4")
        .await
        .unwrap());
    assert!(!ovn.set_agent_description("nope", "x").await.unwrap());
    let ids = sb.ctl(
        "ovn-sbctl",
        &["get", "Chassis_Private", "gw-1", "external_ids"],
    );
    assert!(ids.contains("\"neutron:description\"=\"rack 4\""), "{ids}");
    assert!(
        ids.contains("\"neutron:description-metadata\"=\"metadata of rack 4\""),
        "{ids}"
    );
    let agents = ovn.list_agents().await.unwrap();
    let gw = agents.iter().find(|a| a.id == "gw-1").unwrap();
    assert_eq!(gw.description, "rack 4");

    assert!(ovn
        .delete_agent("ed81e2c0-7670-5e3b-a6ea-e2c0e76e96d0")
        .await
        .unwrap());
    assert!(!ovn.delete_agent(COMPUTE).await.unwrap());
    let left: Vec<String> = ovn
        .list_agents()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&"gw-1".to_string()));
    let names = sb.ctl(
        "ovn-sbctl",
        &["--bare", "--columns=name", "list", "Chassis"],
    );
    assert_eq!(names.trim(), "gw-1");
}

/// What the Northbound database holds, without UUIDs: per table the sorted key columns of
/// its rows, and the number of references that tie them together.
fn nb_contents(nb: &Nb) -> Vec<String> {
    let tables: &[(&str, &str)] = &[
        ("Logical_Switch", "name"),
        ("Logical_Switch_Port", "name,type,addresses,port_security"),
        ("Port_Group", "name"),
        ("ACL", "direction,priority,match,action"),
        ("DHCP_Options", "cidr"),
        ("Logical_Router", "name"),
        ("Logical_Router_Port", "name,networks"),
        ("Gateway_Chassis", "name,chassis_name"),
        ("NAT", "type,external_ip,logical_ip"),
        ("Logical_Router_Static_Route", "ip_prefix,nexthop"),
        ("Load_Balancer", "name,vips"),
    ];
    let mut out = Vec::new();
    for (table, columns) in tables {
        let mut rows: Vec<String> = nb
            .nbctl(&[
                "--format=csv",
                "--data=bare",
                "--no-headings",
                &format!("--columns={columns}"),
                "list",
                table,
            ])
            .lines()
            .map(|l| format!("{table}: {l}"))
            .collect();
        rows.sort();
        out.extend(rows);
    }
    for (table, column) in [
        ("Logical_Switch", "ports"),
        ("Port_Group", "ports"),
        ("Port_Group", "acls"),
        ("Logical_Router", "ports"),
        ("Logical_Router", "nat"),
        ("Logical_Router", "load_balancer"),
        ("Logical_Switch_Port", "dhcpv4_options"),
    ] {
        let refs = nb
            .nbctl(&["--bare", &format!("--columns={column}"), "list", table])
            .split_whitespace()
            .count();
        out.push(format!("{table}.{column}: {refs} references"));
    }
    out
}

/// The reconciler's promise: a Northbound database wiped clean is written again, row for
/// row, from the Networking service's snapshot.
#[tokio::test]
async fn a_wiped_northbound_database_is_rebuilt_from_the_snapshot() {
    let nb = Nb::start();
    let ovn = OvnBackend::connect(&nb.endpoint()).await.unwrap();
    let r = router_state(true);
    let mut ports = vec![port_state()];
    ports.extend(r.interfaces.clone());
    let snapshot = Snapshot {
        networks: vec![network_state()],
        ports,
        security_groups: vec![group_state()],
        routers: vec![r],
        floating_ips: vec![floating_ip(true), forwarding_fip(true)],
    };
    ovn.full_sync(&snapshot).await.unwrap();
    let before = nb_contents(&nb);
    for needed in [
        "Logical_Switch: ",
        "Logical_Switch_Port: ",
        "Port_Group: ",
        "ACL: ",
        "DHCP_Options: ",
        "Logical_Router: ",
        "Logical_Router_Port: ",
        "NAT: ",
        "Logical_Router_Static_Route: ",
        "Load_Balancer: ",
    ] {
        assert!(
            before.iter().any(|l| l.starts_with(needed)),
            "{needed} missing from {before:#?}"
        );
    }
    for table in [
        "Logical_Switch",
        "Port_Group",
        "DHCP_Options",
        "Logical_Router",
        "Load_Balancer",
    ] {
        nb.nbctl(&["--all", "destroy", table]);
    }
    assert_eq!(nb.nbctl(&["show"]).trim(), "", "wiped");
    // The replica follows the wipe before the reconciler runs (as it would, later).
    tokio::time::sleep(Duration::from_millis(200)).await;
    ovn.full_sync(&snapshot).await.unwrap();
    assert_eq!(nb_contents(&nb), before);
    // And a second pass changes nothing.
    ovn.full_sync(&snapshot).await.unwrap();
    assert_eq!(nb_contents(&nb), before);
}
