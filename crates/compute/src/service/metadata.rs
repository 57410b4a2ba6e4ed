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

/// `openstack/latest/network_data.json` (servers have no ports until networking exists).
pub fn network_data(_inst: &Instance) -> Value {
    json!({"links": [], "networks": [], "services": []})
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
