//! The OVN backend against a real OVN Northbound ovsdb-server (started here in a temp dir,
//! killed by PID): a network, a group with rules and a port become the rows ML2/OVN would
//! write, `ovn-nbctl show` reads them as an operator expects, calls are idempotent, a
//! deleted port goes, and a full sync of an empty snapshot removes every Neutron row.
//! Needs Open vSwitch and OVN (scripts/install-ovn.sh); fails, never skips, without them.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use ferrostack_network::backend::*;
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
        let schema = "/usr/share/ovn/ovn-nb.ovsschema";
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
        let out = Command::new("ovn-nbctl")
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
