//! Images, members and tasks as Glance shows them: core attributes, then custom properties at the
//! top level; times as `2026-11-21T10:00:00Z`.

use ferrostack_common::time::iso_seconds;
use serde_json::{json, Value};

use crate::model::{Image, Member, Task};

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

fn iso_opt(micros: Option<i64>) -> Value {
    micros.map_or(Value::Null, |m| json!(iso_seconds(m)))
}

/// A task in a list of `/v2/tasks`: without its input, result and message, as Glance lists.
pub fn task_summary(t: &Task) -> Value {
    json!({
        "id": t.id, "type": t.kind, "status": t.status, "owner": t.owner,
        "created_at": iso_seconds(t.created_at), "updated_at": iso_seconds(t.updated_at),
        "expires_at": iso_opt(t.expires_at),
        "self": format!("/v2/tasks/{}", t.id), "schema": "/v2/schemas/task",
    })
}

/// One task, whole (`GET /v2/tasks/{id}`).
pub fn task(t: &Task) -> Value {
    let mut v = task_summary(t);
    v["input"] = t.input.clone();
    v["result"] = t.result.clone().unwrap_or(Value::Null);
    v["message"] = json!(t.message);
    v
}

/// A task as `GET /v2/images/{id}/tasks` shows it: with the image, the request and the user
/// it came from.
pub fn image_task(t: &Task) -> Value {
    json!({
        "id": t.id, "type": t.kind, "status": t.status, "owner": t.owner,
        "image_id": t.image_id, "request_id": t.request_id, "user_id": t.user_id,
        "input": t.input, "result": t.result, "message": t.message,
        "created_at": iso_seconds(t.created_at), "updated_at": iso_seconds(t.updated_at),
        "expires_at": iso_opt(t.expires_at), "deleted": false, "deleted_at": null,
    })
}
