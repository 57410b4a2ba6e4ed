//! A server's tags, metadata and instance actions, and `os-quota-sets`.

use std::collections::BTreeMap;

use axum::extract::{Path, State as AxState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Value};

use super::{no_content, reply, views, Ctx, HttpResult, JsonBody, State};
use crate::error::ComputeError;
use crate::service::extras::{valid_tag, InstanceAction, MAX_TAGS};

pub fn api() -> Api<State> {
    Api::new()
        .get(
            "/v2.1/servers/{id}/tags",
            op("list_server_tags", "List a server's tags"),
            tags,
        )
        .put(
            "/v2.1/servers/{id}/tags",
            op("replace_server_tags", "Replace a server's tags"),
            put_tags,
        )
        .delete(
            "/v2.1/servers/{id}/tags",
            op("delete_server_tags", "Delete all of a server's tags").status(204),
            delete_tags,
        )
        .get(
            "/v2.1/servers/{id}/tags/{tag}",
            op("check_server_tag", "Check a tag").status(204),
            has_tag,
        )
        .put(
            "/v2.1/servers/{id}/tags/{tag}",
            op("add_server_tag", "Add a tag").status(201),
            put_tag,
        )
        .delete(
            "/v2.1/servers/{id}/tags/{tag}",
            op("delete_server_tag", "Delete a tag").status(204),
            delete_tag,
        )
        .get(
            "/v2.1/servers/{id}/metadata",
            op("list_server_metadata", "List a server's metadata"),
            metadata,
        )
        .post(
            "/v2.1/servers/{id}/metadata",
            op("update_server_metadata", "Add or change metadata items"),
            post_metadata,
        )
        .put(
            "/v2.1/servers/{id}/metadata",
            op("replace_server_metadata", "Replace a server's metadata"),
            put_metadata,
        )
        .get(
            "/v2.1/servers/{id}/metadata/{key}",
            op("show_server_metadata_item", "Show a metadata item"),
            metadata_item,
        )
        .put(
            "/v2.1/servers/{id}/metadata/{key}",
            op("set_server_metadata_item", "Set a metadata item"),
            put_metadata_item,
        )
        .delete(
            "/v2.1/servers/{id}/metadata/{key}",
            op("delete_server_metadata_item", "Delete a metadata item").status(204),
            delete_metadata_item,
        )
        .get(
            "/v2.1/servers/{id}/os-instance-actions",
            op("list_instance_actions", "List a server's actions"),
            actions,
        )
        .get(
            "/v2.1/servers/{id}/os-instance-actions/{request_id}",
            op("show_instance_action", "Show a server action"),
            action,
        )
        .get(
            "/v2.1/os-quota-sets/{project}",
            op("show_quota_set", "Show a project's quotas"),
            quotas,
        )
        .get(
            "/v2.1/os-quota-sets/{project}/defaults",
            op("show_default_quota_set", "Show the default quotas"),
            default_quotas,
        )
        .get(
            "/v2.1/os-quota-sets/{project}/detail",
            op("show_quota_set_detail", "Show a project's quotas and usage"),
            quota_detail,
        )
}

fn bad_tag(t: &Value) -> ComputeError {
    ComputeError::bad(format!("Invalid input for field/attribute tags. Value: {t}. Tags must be 1-60 characters without '/' or ','"))
}

async fn tags(AxState(s): AxState<State>, ctx: Ctx, Path(id): Path<String>) -> HttpResult {
    ctx.require(26)?;
    reply(
        StatusCode::OK,
        json!({"tags": s.server_tags(&ctx.auth, &id).await?}),
    )
}

async fn put_tags(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: JsonBody,
) -> HttpResult {
    ctx.require(26)?;
    let list = body
        .0
        .get("tags")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_tag(&body.0))?;
    if list.len() > MAX_TAGS {
        return Err(ComputeError::bad(format!(
            "The number of tags exceeded the per-server limit {MAX_TAGS}"
        )));
    }
    let mut tags = Vec::new();
    for t in list {
        match t.as_str() {
            Some(v) if valid_tag(v) => tags.push(v.to_string()),
            _ => return Err(bad_tag(t)),
        }
    }
    let out = s.set_server_tags(&ctx.auth, &id, Some(&tags)).await?;
    reply(StatusCode::OK, json!({"tags": out}))
}

async fn delete_tags(AxState(s): AxState<State>, ctx: Ctx, Path(id): Path<String>) -> HttpResult {
    ctx.require(26)?;
    s.set_server_tags(&ctx.auth, &id, None).await?;
    no_content()
}

async fn has_tag(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path((id, tag)): Path<(String, String)>,
) -> HttpResult {
    ctx.require(26)?;
    s.has_server_tag(&ctx.auth, &id, &tag).await?;
    no_content()
}

async fn put_tag(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path((id, tag)): Path<(String, String)>,
) -> HttpResult {
    ctx.require(26)?;
    if !valid_tag(&tag) {
        return Err(bad_tag(&json!(tag)));
    }
    let created = s.add_server_tag(&ctx.auth, &id, &tag).await?;
    let mut resp = if created {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    }
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{}/v2.1/servers/{id}/tags/{tag}", ctx.base)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

async fn delete_tag(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path((id, tag)): Path<(String, String)>,
) -> HttpResult {
    ctx.require(26)?;
    s.delete_server_tag(&ctx.auth, &id, &tag).await?;
    no_content()
}

/// A `{"metadata": {...}}` or `{"meta": {...}}` body as string pairs.
fn items(body: &Value, key: &str) -> Result<BTreeMap<String, String>, ComputeError> {
    let obj = body.get(key).and_then(Value::as_object).ok_or_else(|| {
        ComputeError::bad(format!("Invalid input for field/attribute {key}. Value: {body}. '{key}' is a required property"))
    })?;
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let v = v.as_str().ok_or_else(|| {
            ComputeError::bad(format!(
                "Invalid input for field/attribute {k}. Value: {v}. {v} is not of type 'string'"
            ))
        })?;
        if k.is_empty() || k.chars().count() > 255 || v.chars().count() > 255 {
            return Err(ComputeError::bad(format!(
                "Invalid input for field/attribute {key}: keys and values are 1-255 characters"
            )));
        }
        out.insert(k.clone(), v.to_string());
    }
    Ok(out)
}

async fn metadata(AxState(s): AxState<State>, ctx: Ctx, Path(id): Path<String>) -> HttpResult {
    let inst = s
        .get_server(&ctx.auth, &id, "os_compute_api:server-metadata:index")
        .await?;
    reply(StatusCode::OK, json!({"metadata": inst.metadata}))
}

async fn post_metadata(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: JsonBody,
) -> HttpResult {
    let new = items(&body.0, "metadata")?;
    let all = s
        .set_server_metadata(
            &ctx.auth,
            &id,
            &new,
            false,
            "os_compute_api:server-metadata:create",
        )
        .await?;
    reply(StatusCode::OK, json!({"metadata": all}))
}

async fn put_metadata(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: JsonBody,
) -> HttpResult {
    let new = items(&body.0, "metadata")?;
    let all = s
        .set_server_metadata(
            &ctx.auth,
            &id,
            &new,
            true,
            "os_compute_api:server-metadata:update_all",
        )
        .await?;
    reply(StatusCode::OK, json!({"metadata": all}))
}

async fn metadata_item(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> HttpResult {
    let inst = s
        .get_server(&ctx.auth, &id, "os_compute_api:server-metadata:show")
        .await?;
    let v = inst
        .metadata
        .get(&key)
        .ok_or_else(|| ComputeError::not_found("Metadata item was not found"))?;
    reply(StatusCode::OK, json!({"meta": { key: v }}))
}

async fn put_metadata_item(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
    body: JsonBody,
) -> HttpResult {
    let item = items(&body.0, "meta")?;
    if item.len() != 1 || !item.contains_key(&key) {
        return Err(ComputeError::bad("Request body and URI mismatch"));
    }
    s.set_server_metadata(
        &ctx.auth,
        &id,
        &item,
        false,
        "os_compute_api:server-metadata:update",
    )
    .await?;
    reply(StatusCode::OK, json!({"meta": item}))
}

async fn delete_metadata_item(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> HttpResult {
    s.delete_server_metadata(&ctx.auth, &id, &key).await?;
    no_content()
}

fn action_view(ctx: &Ctx, a: &InstanceAction) -> Value {
    let mut v = json!({
        "action": a.action,
        "instance_uuid": a.instance_uuid,
        "message": a.message,
        "project_id": a.project_id,
        "request_id": a.request_id,
        "start_time": views::naive(a.start_time),
        "user_id": a.user_id,
    });
    if ctx.mv.at_least(58) {
        v["updated_at"] = json!(views::naive(a.updated_at));
    }
    v
}

async fn actions(AxState(s): AxState<State>, ctx: Ctx, Path(id): Path<String>) -> HttpResult {
    let list = s.instance_actions(&ctx.auth, &id).await?;
    reply(
        StatusCode::OK,
        json!({"instanceActions": list.iter().map(|a| action_view(&ctx, a)).collect::<Vec<_>>()}),
    )
}

async fn action(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path((id, request_id)): Path<(String, String)>,
) -> HttpResult {
    let a = s.instance_action(&ctx.auth, &id, &request_id).await?;
    let mut v = action_view(&ctx, &a);
    if let Some(events) = super::action_events::events(&s, &ctx, &a).await? {
        v["events"] = events;
    }
    reply(StatusCode::OK, json!({"instanceAction": v}))
}

fn quota_body(
    ctx: &Ctx,
    project: &str,
    items: &[(&str, i64)],
    detail: bool,
    usage: (i64, i64, i64),
) -> Value {
    let mut q = serde_json::Map::new();
    q.insert("id".into(), json!(project));
    for (name, limit) in items {
        let used = match *name {
            "instances" => usage.0,
            "cores" => usage.1,
            "ram" => usage.2,
            _ => 0,
        };
        q.insert(
            name.to_string(),
            if detail {
                json!({"limit": limit, "in_use": used, "reserved": 0})
            } else {
                json!(limit)
            },
        );
    }
    if !ctx.mv.at_least(57) {
        for (k, v) in [
            ("injected_files", 5),
            ("injected_file_content_bytes", 10240),
            ("injected_file_path_bytes", 255),
        ] {
            q.insert(
                k.into(),
                if detail {
                    json!({"limit": v, "in_use": 0, "reserved": 0})
                } else {
                    json!(v)
                },
            );
        }
    }
    if !ctx.mv.at_least(36) {
        for k in [
            "fixed_ips",
            "floating_ips",
            "security_group_rules",
            "security_groups",
        ] {
            q.insert(
                k.into(),
                if detail {
                    json!({"limit": -1, "in_use": 0, "reserved": 0})
                } else {
                    json!(-1)
                },
            );
        }
    }
    json!({"quota_set": q})
}

async fn quotas(AxState(s): AxState<State>, ctx: Ctx, Path(project): Path<String>) -> HttpResult {
    let items = s.quota_set(&ctx.auth, &project, false).await?;
    reply(
        StatusCode::OK,
        quota_body(&ctx, &project, &items, false, (0, 0, 0)),
    )
}

async fn default_quotas(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(project): Path<String>,
) -> HttpResult {
    let items = s.quota_set(&ctx.auth, &project, true).await?;
    reply(
        StatusCode::OK,
        quota_body(&ctx, &project, &items, false, (0, 0, 0)),
    )
}

async fn quota_detail(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(project): Path<String>,
) -> HttpResult {
    let items = s.quota_set(&ctx.auth, &project, false).await?;
    let usage = s.project_usage(&project).await?;
    let mut body = quota_body(&ctx, &project, &items, true, usage);
    // Nova's unified-limits driver counts a project's server groups as in use.
    body["quota_set"]["server_groups"]["in_use"] = json!(s.server_group_count(&project).await?);
    reply(StatusCode::OK, body)
}
