//! `os-security-groups` and `os-security-group-rules`, Nova's deprecated proxy to the
//! Networking service's security groups (up to 2.35; later versions answer 404, as Nova),
//! `GET /servers/{id}/os-security-groups` and the `addSecurityGroup`/`removeSecurityGroup`
//! actions (every version). This module checks requests as Nova's schemas do; the service
//! (`service::security_groups`) does the rest.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Map, Value};

use super::servers::field_error;
use super::{accepted, params, reply, Ctx, HttpResult, JsonBody, Query, State};
use crate::error::ComputeError;
use crate::service::security_groups::RuleRequest;

/// The last microversion with the proxy.
const LAST: u16 = 35;

pub fn api() -> Api<State> {
    Api::new()
        .get(
            "/v2.1/os-security-groups",
            op(
                "list_security_groups",
                "List security groups (proxy, up to 2.35)",
            ),
            list,
        )
        .post(
            "/v2.1/os-security-groups",
            op(
                "create_security_group",
                "Create a security group (proxy, up to 2.35)",
            ),
            create,
        )
        .get(
            "/v2.1/os-security-groups/{id}",
            op(
                "show_security_group",
                "Show a security group (proxy, up to 2.35)",
            ),
            show,
        )
        .put(
            "/v2.1/os-security-groups/{id}",
            op(
                "update_security_group",
                "Update a security group (proxy, up to 2.35)",
            ),
            update,
        )
        .delete(
            "/v2.1/os-security-groups/{id}",
            op(
                "delete_security_group",
                "Delete a security group (proxy, up to 2.35)",
            )
            .status(202),
            delete,
        )
        .post(
            "/v2.1/os-security-group-rules",
            op(
                "create_security_group_rule",
                "Create a security group rule (proxy, up to 2.35)",
            ),
            create_rule,
        )
        .delete(
            "/v2.1/os-security-group-rules/{id}",
            op(
                "delete_security_group_rule",
                "Delete a security group rule (proxy, up to 2.35)",
            )
            .status(202),
            delete_rule,
        )
        .get(
            "/v2.1/servers/{id}/os-security-groups",
            op(
                "list_server_security_groups",
                "List a server's security groups",
            ),
            server_groups,
        )
}

fn proxy(ctx: &Ctx) -> Result<(), ComputeError> {
    if ctx.mv.0 > LAST {
        Err(ComputeError::not_found("The resource could not be found."))
    } else {
        Ok(())
    }
}

/// A string member of at most 255 characters, required.
fn text(b: &Map<String, Value>, field: &str) -> Result<String, ComputeError> {
    match b.get(field) {
        Some(Value::String(s)) if s.chars().count() <= 255 => Ok(s.clone()),
        Some(Value::String(s)) => Err(field_error(field, &json!(s), &format!("'{s}' is too long"))),
        Some(v) => Err(field_error(field, v, "is not of type 'string'")),
        None => Err(field_error(
            field,
            &Value::Null,
            &format!("'{field}' is a required property"),
        )),
    }
}

/// `name` and `description` of a create or update body.
fn name_and_description(body: &JsonBody) -> Result<(String, String), ComputeError> {
    let b = body.object("security_group")?;
    Ok((text(b, "name")?, text(b, "description")?))
}

async fn list(AxState(s): AxState<State>, ctx: Ctx, q: Query) -> HttpResult {
    proxy(&ctx)?;
    let limit = params::count(&q, "limit")?;
    let offset = params::count(&q, "offset")?.unwrap_or(0);
    let all = q.get("all_tenants").is_some();
    let groups = s
        .list_security_groups(&ctx.auth, all, offset, limit)
        .await?;
    reply(StatusCode::OK, json!({"security_groups": groups}))
}

async fn create(AxState(s): AxState<State>, ctx: Ctx, body: JsonBody) -> HttpResult {
    proxy(&ctx)?;
    let (name, description) = name_and_description(&body)?;
    let g = s
        .create_security_group(&ctx.auth, &name, &description)
        .await?;
    reply(StatusCode::OK, json!({"security_group": g}))
}

async fn show(AxState(s): AxState<State>, ctx: Ctx, Path(id): Path<String>) -> HttpResult {
    proxy(&ctx)?;
    let g = s.show_security_group(&ctx.auth, &id).await?;
    reply(StatusCode::OK, json!({"security_group": g}))
}

async fn update(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: JsonBody,
) -> HttpResult {
    proxy(&ctx)?;
    let (name, description) = name_and_description(&body)?;
    let g = s
        .update_security_group(&ctx.auth, &id, &name, &description)
        .await?;
    reply(StatusCode::OK, json!({"security_group": g}))
}

async fn delete(AxState(s): AxState<State>, ctx: Ctx, Path(id): Path<String>) -> HttpResult {
    proxy(&ctx)?;
    s.delete_security_group(&ctx.auth, &id).await?;
    accepted()
}

/// Nova reads the ports, protocol and CIDR of a rule with `int()` and `str()`, whatever
/// JSON type they come as.
fn loose(b: &Map<String, Value>, field: &str) -> Option<String> {
    match b.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => Some(v.to_string()),
    }
}

fn uuid_field(b: &Map<String, Value>, field: &str) -> Result<Option<String>, ComputeError> {
    match b.get(field) {
        None | Some(Value::Null) if field == "group_id" => Ok(None),
        None => Err(field_error(
            field,
            &Value::Null,
            &format!("'{field}' is a required property"),
        )),
        Some(Value::String(v)) if uuid::Uuid::parse_str(v).is_ok() => Ok(Some(v.clone())),
        Some(Value::String(v)) => Err(field_error(
            field,
            &json!(v),
            &format!("'{v}' is not a 'uuid'"),
        )),
        Some(v) => Err(field_error(field, v, "is not of type 'string'")),
    }
}

async fn create_rule(AxState(s): AxState<State>, ctx: Ctx, body: JsonBody) -> HttpResult {
    proxy(&ctx)?;
    let b = body.object("security_group_rule")?;
    let req = RuleRequest {
        parent_group_id: uuid_field(b, "parent_group_id")?.unwrap_or_default(),
        group_id: uuid_field(b, "group_id")?,
        ip_protocol: loose(b, "ip_protocol"),
        from_port: loose(b, "from_port"),
        to_port: loose(b, "to_port"),
        cidr: loose(b, "cidr"),
    };
    let rule = s.create_security_group_rule(&ctx.auth, req).await?;
    reply(StatusCode::OK, json!({"security_group_rule": rule}))
}

async fn delete_rule(AxState(s): AxState<State>, ctx: Ctx, Path(id): Path<String>) -> HttpResult {
    proxy(&ctx)?;
    s.delete_security_group_rule(&ctx.auth, &id).await?;
    accepted()
}

async fn server_groups(AxState(s): AxState<State>, ctx: Ctx, Path(id): Path<String>) -> HttpResult {
    let groups = s.server_security_groups(&ctx.auth, &id).await?;
    reply(StatusCode::OK, json!({"security_groups": groups}))
}

/// `addSecurityGroup` and `removeSecurityGroup`: `{"name": "<name or id>"}`, 202.
pub async fn action(s: &State, ctx: &Ctx, id: &str, action: &str, args: &Value) -> HttpResult {
    let b = args
        .as_object()
        .ok_or_else(|| field_error(action, args, "is not of type 'object'"))?;
    if let Some(k) = b.keys().find(|k| *k != "name") {
        return Err(field_error(
            action,
            args,
            &format!("Additional properties are not allowed ('{k}' was unexpected)"),
        ));
    }
    let name = match b.get("name") {
        Some(Value::String(n)) if !n.is_empty() => n.clone(),
        Some(Value::String(_)) => {
            return Err(field_error("name", &json!(""), "should be non-empty"))
        }
        Some(v) => return Err(field_error("name", v, "is not of type 'string'")),
        None => {
            return Err(field_error(
                "name",
                &Value::Null,
                "'name' is a required property",
            ))
        }
    };
    if name.trim().is_empty() {
        return Err(ComputeError::bad("Security group name cannot be empty"));
    }
    if action == "addSecurityGroup" {
        s.add_security_group(&ctx.auth, id, &name).await?;
    } else {
        s.remove_security_group(&ctx.auth, id, &name).await?;
    }
    accepted()
}
