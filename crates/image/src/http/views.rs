//! Images and members as Glance shows them: core attributes, then custom properties at the
//! top level; times as `2026-11-21T10:00:00Z`.

use ferrostack_common::time::iso_seconds;
use serde_json::{json, Value};

use crate::model::{Image, Member};

pub fn image(i: &Image) -> Value {
    let mut v = json!({
        "id": i.id, "name": i.name, "status": i.status, "visibility": i.visibility,
        "protected": i.protected, "os_hidden": i.os_hidden, "owner": i.owner,
        "disk_format": i.disk_format, "container_format": i.container_format,
        "min_disk": i.min_disk, "min_ram": i.min_ram, "size": i.size, "virtual_size": i.virtual_size,
        "checksum": i.checksum, "os_hash_algo": i.os_hash_algo, "os_hash_value": i.os_hash_value,
        "tags": i.tags, "created_at": iso_seconds(i.created_at), "updated_at": iso_seconds(i.updated_at),
        "self": format!("/v2/images/{}", i.id), "file": format!("/v2/images/{}/file", i.id), "schema": "/v2/schemas/image",
    });
    if let Some(obj) = v.as_object_mut() {
        for (k, val) in &i.properties {
            obj.entry(k.clone()).or_insert(val.clone());
        }
        if i.status == "active" {
            obj.insert("stores".into(), json!("local"));
        }
    }
    v
}

pub fn member(m: &Member) -> Value {
    json!({
        "image_id": m.image_id, "member_id": m.member_id, "status": m.status,
        "created_at": iso_seconds(m.created_at), "updated_at": iso_seconds(m.updated_at), "schema": "/v2/schemas/member",
    })
}
