//! What a server learns about itself, in OpenStack's metadata format: the files of the
//! config drive (`openstack/latest/meta_data.json`, `user_data`, `network_data.json`,
//! `vendor_data.json`, `vendor_data2.json`, and the EC2 `ec2/latest/meta-data.json`), which
//! the metadata service answers from the same functions.

use base64::Engine as _;
use serde_json::{json, Value};

use crate::host::DriveFile;
use crate::model::Instance;

/// `openstack/latest/meta_data.json`.
pub fn meta_data(inst: &Instance, admin_pass: Option<&str>) -> Value {
    let mut keys = Vec::new();
    let mut public_keys = serde_json::Map::new();
    if let (Some(name), Some(data)) = (&inst.key_name, &inst.key_data) {
        public_keys.insert(name.clone(), json!(format!("{data}\n")));
        keys.push(json!({"name": name, "type": "ssh", "data": format!("{data}\n")}));
    }
    let mut seed = [0u8; 512];
    for chunk in seed.chunks_mut(16) {
        let b = uuid::Uuid::new_v4().into_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    let mut doc = json!({
        "uuid": inst.uuid,
        "meta": inst.metadata,
        "hostname": inst.hostname,
        "name": inst.name,
        "launch_index": inst.launch_index,
        "availability_zone": inst.availability_zone.clone().unwrap_or_else(|| "nova".into()),
        "random_seed": base64::engine::general_purpose::STANDARD.encode(seed),
        "project_id": inst.project_id,
        "devices": [],
        "dedicated_cpus": [],
    });
    if !keys.is_empty() {
        doc["public_keys"] = Value::Object(public_keys);
        doc["keys"] = json!(keys);
    }
    if let Some(p) = admin_pass {
        doc["admin_pass"] = json!(p);
    }
    doc
}

/// `openstack/latest/network_data.json`: a link per NIC, a network per address (DHCP where
/// the subnet serves DHCP, otherwise the static address with its routes), and the DNS
/// servers, as Nova writes it.
pub fn network_data(inst: &Instance) -> Value {
    let mut links = Vec::new();
    let mut networks = Vec::new();
    let mut services: Vec<Value> = Vec::new();
    for vif in &inst.network_info {
        let link = tap_name(&vif.port_id);
        links.push(json!({
            "id": link,
            "vif_id": vif.port_id,
            "type": "ovs",
            "mtu": vif.mtu,
            "ethernet_mac_address": vif.mac,
        }));
        for ip in &vif.fixed_ips {
            let n = networks.len();
            let dns: Vec<Value> = ip
                .dns_nameservers
                .iter()
                .map(|a| json!({"type": "dns", "address": a}))
                .collect();
            for d in &dns {
                if !services.contains(d) {
                    services.push(d.clone());
                }
            }
            let mut net = json!({
                "id": format!("network{n}"),
                "link": link,
                "network_id": vif.network_id,
            });
            let v6 = ip.version == 6;
            if ip.dhcp && !v6 {
                net["type"] = json!("ipv4_dhcp");
            } else {
                net["type"] = json!(if v6 { "ipv6" } else { "ipv4" });
                net["ip_address"] = json!(ip.address);
                net["netmask"] = json!(netmask(&ip.cidr, v6));
                let mut routes: Vec<Value> = ip
                    .host_routes
                    .iter()
                    .map(|(dest, hop)| {
                        let (addr, _) = dest.split_once('/').unwrap_or((dest, ""));
                        json!({"network": addr, "netmask": netmask(dest, v6), "gateway": hop})
                    })
                    .collect();
                if let Some(gw) = &ip.gateway {
                    let any = if v6 { "::" } else { "0.0.0.0" };
                    routes.push(json!({"network": any, "netmask": any, "gateway": gw}));
                }
                net["routes"] = json!(routes);
                net["services"] = json!(dns);
            }
            networks.push(net);
        }
    }
    json!({"links": links, "networks": networks, "services": services})
}

/// The name of a port's tap device on its host, as Nova names it (`tap` and the port id's
/// first 11 characters: a Linux interface name has at most 15).
pub fn tap_name(port_id: &str) -> String {
    format!("tap{}", &port_id[..port_id.len().min(11)])
}

/// The netmask of a CIDR's prefix length (`255.255.255.0`, or `ffff:ffff:...::` for IPv6).
fn netmask(cidr: &str, v6: bool) -> String {
    let len: u32 = cidr
        .split_once('/')
        .and_then(|(_, l)| l.parse().ok())
        .unwrap_or(if v6 { 128 } else { 32 });
    if v6 {
        let bits: u128 = if len == 0 {
            0
        } else {
            u128::MAX << (128 - len.min(128))
        };
        std::net::Ipv6Addr::from(bits).to_string()
    } else {
        let bits: u32 = if len == 0 {
            0
        } else {
            u32::MAX << (32 - len.min(32))
        };
        std::net::Ipv4Addr::from(bits).to_string()
    }
}

/// The EC2-style document (`ec2/latest/meta-data.json`).
pub fn ec2_meta_data(inst: &Instance) -> Value {
    let mut doc = json!({
        "ami-id": format!("ami-{:08x}", inst.id),
        "instance-id": format!("i-{:08x}", inst.id),
        "hostname": inst.hostname,
        "local-hostname": inst.hostname,
        "public-hostname": inst.hostname,
        "instance-type": inst.flavor.name,
        "placement": {"availability-zone": inst.availability_zone.clone().unwrap_or_else(|| "nova".into())},
        "reservation-id": inst.reservation_id,
        "security-groups": ["default"],
    });
    let v4 = inst
        .network_info
        .iter()
        .flat_map(|v| &v.fixed_ips)
        .find(|ip| ip.version == 4);
    if let Some(ip) = v4 {
        doc["local-ipv4"] = json!(ip.address);
    }
    let floating = inst
        .network_info
        .iter()
        .flat_map(|v| &v.floating_ips)
        .next();
    if let Some(f) = floating {
        doc["public-ipv4"] = json!(f);
    }
    if let (Some(name), Some(data)) = (&inst.key_name, &inst.key_data) {
        doc["public-keys"] =
            json!({"0": {"openssh-key": format!("{data}\n"), "_name": format!("0={name}")}});
    }
    doc
}

/// The user data as the guest gets it (decoded from the request's base64).
pub fn user_data(inst: &Instance) -> Option<Vec<u8>> {
    let text = inst.user_data.as_deref()?;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
}

/// Every file of the config drive.
pub fn config_drive_files(inst: &Instance, admin_pass: Option<&str>) -> Vec<DriveFile> {
    let pretty = |v: &Value| serde_json::to_string(v).unwrap_or_default();
    let mut files = Vec::new();
    for version in ["latest", "2018-08-27", "2013-10-17"] {
        let dir = format!("openstack/{version}");
        files.push(DriveFile {
            path: format!("{dir}/meta_data.json"),
            content: pretty(&meta_data(inst, admin_pass)),
        });
        files.push(DriveFile {
            path: format!("{dir}/network_data.json"),
            content: pretty(&network_data(inst)),
        });
        files.push(DriveFile {
            path: format!("{dir}/vendor_data.json"),
            content: "{}".into(),
        });
        files.push(DriveFile {
            path: format!("{dir}/vendor_data2.json"),
            content: "{}".into(),
        });
        if let Some(data) = user_data(inst) {
            // Non-UTF-8 user data is rare (gzip); it is passed as lossless as JSON allows.
            files.push(DriveFile {
                path: format!("{dir}/user_data"),
                content: String::from_utf8_lossy(&data).into_owned(),
            });
        }
    }
    files.push(DriveFile {
        path: "ec2/latest/meta-data.json".into(),
        content: pretty(&ec2_meta_data(inst)),
    });
    files
}
