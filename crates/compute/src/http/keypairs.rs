//! `/os-keypairs`: a user's SSH key pairs (2.10+: admins name another user with `user_id`;
//! 2.35+: paging; 2.92+: a public key is required and names may contain `@` and `.`).

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Value};

use super::{reply, views, Ctx, HttpResult, JsonBody, Query, State};
use crate::error::ComputeError;
use crate::service::keypairs::valid_name;

pub fn api() -> Api<State> {
    Api::new()
        .get(
            "/v2.1/os-keypairs",
            op("list_keypairs", "List key pairs"),
            list,
        )
        .post(
            "/v2.1/os-keypairs",
            op("create_keypair", "Create or import a key pair"),
            create,
        )
        .get(
            "/v2.1/os-keypairs/{name}",
            op("show_keypair", "Show a key pair"),
            show,
        )
        .delete(
            "/v2.1/os-keypairs/{name}",
            op("delete_keypair", "Delete a key pair").status(202),
            delete,
        )
}

fn user_param<'a>(ctx: &Ctx, q: &'a Query) -> Option<&'a str> {
    q.get("user_id").filter(|_| ctx.mv.at_least(10))
}

async fn list(AxState(s): AxState<State>, ctx: Ctx, q: Query) -> HttpResult {
    let (marker, limit) = if ctx.mv.at_least(35) {
        (q.get("marker"), q.limit()?)
    } else {
        (None, None)
    };
    let list = s
        .list_keypairs(&ctx.auth, user_param(&ctx, &q), marker, limit)
        .await?;
    let mut body = json!({"keypairs": list.iter().map(|k| json!({"keypair": views::keypair(k, &ctx, false)})).collect::<Vec<_>>()});
    if let (Some(l), Some(last)) = (limit, list.last()) {
        if list.len() == l {
            body["keypairs_links"] = json!([{"rel": "next", "href": format!("{}/v2.1/os-keypairs?limit={l}&marker={}", ctx.base, last.name)}]);
        }
    }
    reply(StatusCode::OK, body)
}

async fn show(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(name): Path<String>,
    q: Query,
) -> HttpResult {
    let k = s
        .get_keypair(&ctx.auth, &name, user_param(&ctx, &q))
        .await?;
    reply(
        StatusCode::OK,
        json!({"keypair": views::keypair(&k, &ctx, true)}),
    )
}

async fn create(AxState(s): AxState<State>, ctx: Ctx, body: JsonBody) -> HttpResult {
    let b = body.object("keypair")?;
    let bad = |field: &str, v: &Value, why: &str| {
        ComputeError::bad(format!(
            "Invalid input for field/attribute {field}. Value: {v}. {why}"
        ))
    };
    let name = match b.get("name") {
        Some(Value::String(n)) if valid_name(n, ctx.mv.at_least(92)) => n.clone(),
        Some(v) => return Err(bad("name", v, "Invalid key pair name")),
        None => return Err(bad("name", &Value::Null, "'name' is a required property")),
    };
    let key_type = match b.get("type") {
        Some(v) if !ctx.mv.at_least(2) => {
            return Err(bad(
                "keypair",
                v,
                "Additional properties are not allowed ('type' was unexpected)",
            ))
        }
        Some(Value::String(t)) if t == "ssh" || t == "x509" => t.clone(),
        Some(v) => return Err(bad("type", v, "'ssh' or 'x509' expected")),
        None => "ssh".to_string(),
    };
    let public_key = match b.get("public_key") {
        Some(Value::String(k)) => Some(k.as_str()),
        Some(v) => return Err(bad("public_key", v, "is not of type 'string'")),
        None if ctx.mv.at_least(92) => {
            return Err(bad(
                "public_key",
                &Value::Null,
                "'public_key' is a required property",
            ))
        }
        None => None,
    };
    let user_id = match b.get("user_id") {
        Some(Value::String(u)) if ctx.mv.at_least(10) => Some(u.as_str()),
        Some(v) => {
            return Err(bad(
                "keypair",
                v,
                "Additional properties are not allowed ('user_id' was unexpected)",
            ))
        }
        None => None,
    };
    let created = s
        .create_keypair(&ctx.auth, &name, &key_type, public_key, user_id)
        .await?;
    let mut view = views::keypair(&created.keypair, &ctx, false);
    view["user_id"] = json!(created.keypair.user_id);
    if let Some(p) = created.private_key {
        view["private_key"] = json!(p);
    }
    // 2.2 changed the status of a create from 200 to 201.
    let status = if ctx.mv.at_least(2) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    reply(status, json!({"keypair": view}))
}

async fn delete(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(name): Path<String>,
    q: Query,
) -> HttpResult {
    s.delete_keypair(&ctx.auth, &name, user_param(&ctx, &q))
        .await?;
    // 2.2 changed the status of a delete from 202 to 204.
    Ok(axum::response::IntoResponse::into_response(
        if ctx.mv.at_least(2) {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::ACCEPTED
        },
    ))
}
