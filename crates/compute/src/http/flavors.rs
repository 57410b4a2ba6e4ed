//! `/flavors`: list, detail, show, create/update/delete (admins), extra specs and the
//! access list of private flavors.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Map, Value};

use super::{reply, views, Ctx, HttpResult, JsonBody, Query, State};
use crate::error::ComputeError;
use crate::model::Flavor;
use crate::service::flavors::{FlavorQuery, NewFlavor};

pub fn api() -> Api<State> {
    Api::new()
        .get("/v2.1/flavors", op("list_flavors", "List flavors"), list)
        .get(
            "/v2.1/flavors/detail",
            op("list_flavors_detail", "List flavors with details"),
            detail,
        )
        .post(
            "/v2.1/flavors",
            op("create_flavor", "Create a flavor"),
            create,
        )
        .get(
            "/v2.1/flavors/{id}",
            op("show_flavor", "Show a flavor"),
            show,
        )
        .put(
            "/v2.1/flavors/{id}",
            op("update_flavor", "Update a flavor's description"),
            update,
        )
        .delete(
            "/v2.1/flavors/{id}",
            op("delete_flavor", "Delete a flavor").status(202),
            delete,
        )
        .get(
            "/v2.1/flavors/{id}/os-extra_specs",
            op("list_extra_specs", "List a flavor's extra specs"),
            specs,
        )
        .post(
            "/v2.1/flavors/{id}/os-extra_specs",
            op("create_extra_specs", "Set extra specs"),
            set_specs,
        )
        .get(
            "/v2.1/flavors/{id}/os-extra_specs/{key}",
            op("show_extra_spec", "Show an extra spec"),
            spec,
        )
        .put(
            "/v2.1/flavors/{id}/os-extra_specs/{key}",
            op("update_extra_spec", "Update an extra spec"),
            set_spec,
        )
        .delete(
            "/v2.1/flavors/{id}/os-extra_specs/{key}",
            op("delete_extra_spec", "Delete an extra spec"),
            delete_spec,
        )
        .get(
            "/v2.1/flavors/{id}/os-flavor-access",
            op(
                "list_flavor_access",
                "List projects with access to a private flavor",
            ),
            access,
        )
        .post(
            "/v2.1/flavors/{id}/action",
            op("flavor_action", "Add or remove a project's access"),
            action,
        )
}

fn query(q: &Query, admin: bool) -> Result<FlavorQuery, ComputeError> {
    let int = |key: &str| -> Result<Option<i64>, ComputeError> {
        match q.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ComputeError::bad(format!("Invalid {key} filter [{v}]"))),
        }
    };
    let is_public = match q.get("is_public") {
        None => Some(true),
        Some(v) if v.eq_ignore_ascii_case("none") => None,
        Some(v) => Some(
            parse_bool(v)
                .ok_or_else(|| ComputeError::bad(format!("Invalid is_public filter [{v}]")))?,
        ),
    };
    let sort_key = q.get("sort_key").unwrap_or("flavorid").to_string();
    if ![
        "flavorid",
        "id",
        "name",
        "memory_mb",
        "vcpus",
        "root_gb",
        "swap",
        "ephemeral_gb",
        "rxtx_factor",
        "created_at",
        "description",
        "disabled",
        "is_public",
        "updated_at",
    ]
    .contains(&sort_key.as_str())
    {
        return Err(ComputeError::bad(format!(
            "Invalid input for query parameters sort_key. Value: {sort_key}."
        )));
    }
    let sort_desc = match q.get("sort_dir") {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(v) => {
            return Err(ComputeError::bad(format!(
                "Invalid input for query parameters sort_dir. Value: {v}."
            )))
        }
    };
    Ok(FlavorQuery {
        is_public: if admin { is_public } else { Some(true) },
        min_ram: int("minRam")?,
        min_disk: int("minDisk")?,
        sort_key,
        sort_desc,
        limit: q.limit()?,
        marker: q.get("marker").map(str::to_string),
    })
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

fn page_links(
    ctx: &Ctx,
    collection: &str,
    items: &[Flavor],
    limit: Option<usize>,
) -> Option<Value> {
    let limit = limit?;
    if items.len() < limit || items.is_empty() {
        return None;
    }
    let last = &items.last()?.id;
    Some(
        json!([{"rel": "next", "href": format!("{}/v2.1/{collection}?limit={limit}&marker={last}", ctx.base)}]),
    )
}

async fn list(AxState(s): AxState<State>, ctx: Ctx, q: Query) -> HttpResult {
    let fq = query(&q, ctx.is_admin(&s))?;
    let list = s.list_flavors(&ctx.auth, &fq).await?;
    let mut body =
        json!({"flavors": list.iter().map(|f| views::flavor_brief(&ctx, f)).collect::<Vec<_>>()});
    if let Some(l) = page_links(&ctx, "flavors", &list, fq.limit) {
        body["flavors_links"] = l;
    }
    reply(StatusCode::OK, body)
}

fn specs_visible(s: &State, ctx: &Ctx) -> bool {
    s.allowed(
        &ctx.auth,
        "os_compute_api:os-flavor-extra-specs:index",
        ctx.auth.project_id().unwrap_or_default(),
        &ctx.auth.user_id,
    )
}

async fn detail(AxState(s): AxState<State>, ctx: Ctx, q: Query) -> HttpResult {
    let fq = query(&q, ctx.is_admin(&s))?;
    let list = s.list_flavors(&ctx.auth, &fq).await?;
    let specs = specs_visible(&s, &ctx);
    let mut body =
        json!({"flavors": list.iter().map(|f| views::flavor(&ctx, f, specs)).collect::<Vec<_>>()});
    if let Some(l) = page_links(&ctx, "flavors/detail", &list, fq.limit) {
        body["flavors_links"] = l;
    }
    reply(StatusCode::OK, body)
}

async fn show(AxState(s): AxState<State>, ctx: Ctx, Path(id): Path<String>) -> HttpResult {
    let f = s.get_flavor(&ctx.auth, &id).await?;
    reply(
        StatusCode::OK,
        json!({"flavor": views::flavor(&ctx, &f, specs_visible(&s, &ctx))}),
    )
}

fn field_error(field: &str, value: &Value, why: &str) -> ComputeError {
    ComputeError::bad(format!(
        "Invalid input for field/attribute {field}. Value: {value}. {why}"
    ))
}

/// An integer that may come as a string of digits, at least `min` (Nova's flavor params).
fn flavor_int(
    body: &Map<String, Value>,
    field: &str,
    min: i64,
    default: Option<i64>,
) -> Result<i64, ComputeError> {
    let Some(v) = body.get(field) else {
        return default.ok_or_else(|| {
            field_error(
                field,
                &Value::Null,
                &format!("'{field}' is a required property"),
            )
        });
    };
    let n = match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            field_error(field, v, &format!("{v} is not of type 'integer', 'string'"))
        })?,
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
            .parse()
            .map_err(|_| field_error(field, v, "is too large"))?,
        Value::String(s) if s.is_empty() && field == "swap" => 0,
        _ => {
            return Err(field_error(
                field,
                v,
                &format!("{v} is not of type 'integer', 'string'"),
            ))
        }
    };
    if n < min {
        return Err(field_error(
            field,
            v,
            &format!("{n} is less than the minimum of {min}"),
        ));
    }
    if n > i32::MAX as i64 {
        return Err(field_error(
            field,
            v,
            &format!("{n} is greater than the maximum of 2147483647"),
        ));
    }
    Ok(n)
}

async fn create(AxState(s): AxState<State>, ctx: Ctx, body: JsonBody) -> HttpResult {
    let b = body.object("flavor")?;
    let name = match b.get("name") {
        Some(Value::String(n)) if !n.is_empty() && n.chars().count() <= 255 && n.trim() == n => {
            n.clone()
        }
        Some(v) => return Err(field_error("name", v, "Invalid flavor name")),
        None => {
            return Err(field_error(
                "name",
                &Value::Null,
                "'name' is a required property",
            ))
        }
    };
    let id = match b.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(i))
            if !i.is_empty()
                && i.len() <= 255
                && i.trim() == i
                && i.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ' ' | '_' | '-')) =>
        {
            Some(i.clone())
        }
        Some(Value::Number(n)) if n.is_i64() => Some(n.to_string()),
        Some(v) => return Err(field_error("id", v, "Invalid flavor id")),
    };
    let rxtx = match b.get("rxtx_factor") {
        None => 1.0,
        Some(v) => match v.as_f64() {
            Some(x) if x > 0.0 => x,
            _ => {
                return Err(field_error(
                    "rxtx_factor",
                    v,
                    "must be a number greater than 0",
                ))
            }
        },
    };
    let is_public = match b.get("os-flavor-access:is_public") {
        None => true,
        Some(Value::Bool(p)) => *p,
        Some(v) => {
            return Err(field_error(
                "os-flavor-access:is_public",
                v,
                &format!("{v} is not of type 'boolean'"),
            ))
        }
    };
    let description = match b.get("description") {
        Some(v) if !ctx.mv.at_least(55) => return Err(ComputeError::bad(format!("Invalid input for field/attribute flavor. Value: {}. Additional properties are not allowed ('description' was unexpected)", v))),
        Some(Value::String(d)) if d.chars().count() <= 65535 => Some(d.clone()),
        Some(Value::Null) | None => None,
        Some(v) => return Err(field_error("description", v, "Invalid description")),
    };
    let flavor = Flavor {
        id: String::new(),
        name,
        ram: flavor_int(b, "ram", 1, None)?,
        vcpus: flavor_int(b, "vcpus", 1, None)?,
        disk: flavor_int(b, "disk", 0, None)?,
        ephemeral: flavor_int(b, "OS-FLV-EXT-DATA:ephemeral", 0, Some(0))?,
        swap: flavor_int(b, "swap", 0, Some(0))?,
        rxtx_factor: rxtx,
        is_public,
        disabled: false,
        description,
        extra_specs: Default::default(),
    };
    let f = s.create_flavor(&ctx.auth, NewFlavor { id, flavor }).await?;
    reply(
        StatusCode::OK,
        json!({"flavor": views::flavor(&ctx, &f, true)}),
    )
}

async fn update(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: JsonBody,
) -> HttpResult {
    ctx.require(55)?;
    let b = body.object("flavor")?;
    let description = match b.get("description") {
        Some(Value::String(d)) => Some(d.clone()),
        Some(Value::Null) => None,
        _ => {
            return Err(field_error(
                "description",
                &body.0,
                "'description' is a required property",
            ))
        }
    };
    let f = s.update_flavor(&ctx.auth, &id, description).await?;
    reply(
        StatusCode::OK,
        json!({"flavor": views::flavor(&ctx, &f, true)}),
    )
}

async fn delete(AxState(s): AxState<State>, ctx: Ctx, Path(id): Path<String>) -> HttpResult {
    s.delete_flavor(&ctx.auth, &id).await?;
    super::accepted()
}

async fn specs(AxState(s): AxState<State>, ctx: Ctx, Path(id): Path<String>) -> HttpResult {
    let specs = s.flavor_extra_specs(&ctx.auth, &id).await?;
    reply(StatusCode::OK, json!({"extra_specs": specs}))
}

fn check_specs(specs: &Map<String, Value>) -> Result<(), ComputeError> {
    for (k, v) in specs {
        let key_ok = !k.is_empty()
            && k.len() <= 255
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | ' '));
        let val_ok = match v {
            Value::String(s) => s.len() <= 255,
            Value::Number(_) | Value::Bool(_) => true,
            _ => false,
        };
        if !key_ok || !val_ok {
            return Err(field_error(
                "extra_specs",
                &Value::Object(specs.clone()),
                &format!("Invalid extra spec {k}"),
            ));
        }
    }
    Ok(())
}

async fn set_specs(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: JsonBody,
) -> HttpResult {
    let specs = body.object("extra_specs")?.clone();
    check_specs(&specs)?;
    s.set_flavor_extra_specs(
        &ctx.auth,
        &id,
        &specs,
        "os_compute_api:os-flavor-extra-specs:create",
    )
    .await?;
    reply(StatusCode::OK, json!({"extra_specs": specs}))
}

async fn spec(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> HttpResult {
    let value = s.flavor_extra_spec(&ctx.auth, &id, &key).await?;
    reply(StatusCode::OK, json!({ key: value }))
}

async fn set_spec(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
    body: JsonBody,
) -> HttpResult {
    let Some(map) = body.0.as_object() else {
        return Err(ComputeError::bad("Malformed request body"));
    };
    if map.len() != 1 || !map.contains_key(&key) {
        return Err(ComputeError::bad("Request body and URI mismatch"));
    }
    check_specs(map)?;
    s.set_flavor_extra_specs(
        &ctx.auth,
        &id,
        map,
        "os_compute_api:os-flavor-extra-specs:update",
    )
    .await?;
    reply(StatusCode::OK, body.0.clone())
}

async fn delete_spec(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> HttpResult {
    s.delete_flavor_extra_spec(&ctx.auth, &id, &key).await?;
    Ok(axum::response::IntoResponse::into_response(StatusCode::OK))
}

fn access_body(id: &str, projects: &[String]) -> Value {
    json!({"flavor_access": projects.iter().map(|p| json!({"flavor_id": id, "tenant_id": p})).collect::<Vec<_>>()})
}

async fn access(AxState(s): AxState<State>, ctx: Ctx, Path(id): Path<String>) -> HttpResult {
    let projects = s.flavor_access(&ctx.auth, &id).await?;
    reply(StatusCode::OK, access_body(&id, &projects))
}

async fn action(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: JsonBody,
) -> HttpResult {
    let tenant = |key: &str| -> Result<String, ComputeError> {
        body.0
            .get(key)
            .and_then(|v| v.get("tenant"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty() && t.len() <= 255)
            .map(str::to_string)
            .ok_or_else(|| field_error("tenant", &body.0, "'tenant' is a required property"))
    };
    let projects = if body.0.get("addTenantAccess").is_some() {
        s.add_flavor_access(&ctx.auth, &id, &tenant("addTenantAccess")?)
            .await?
    } else if body.0.get("removeTenantAccess").is_some() {
        s.remove_flavor_access(&ctx.auth, &id, &tenant("removeTenantAccess")?)
            .await?
    } else {
        return Err(ComputeError::bad("There is no such action"));
    };
    reply(StatusCode::OK, access_body(&id, &projects))
}
