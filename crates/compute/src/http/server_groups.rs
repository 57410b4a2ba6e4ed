//! `/os-server-groups`: create, list, show and delete server groups. Before 2.64 a group is
//! shown and created with `policies: [one]` and an empty `metadata`; from 2.64 with `policy`
//! and `rules`; 2.13 adds `project_id` and `user_id`; 2.15 allows the soft policies.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Map, Value};

use super::{no_content, params, reply, Ctx, HttpResult, JsonBody, Query, State};
use crate::error::ComputeError;
use crate::microversion::Microversion;
use crate::service::server_groups::{ServerGroup, POLICIES, SOFT_POLICIES};

pub fn api() -> Api<State> {
    Api::new()
        .get(
            "/v2.1/os-server-groups",
            op("list_server_groups", "List server groups"),
            list,
        )
        .post(
            "/v2.1/os-server-groups",
            op("create_server_group", "Create a server group"),
            create,
        )
        .get(
            "/v2.1/os-server-groups/{id}",
            op("show_server_group", "Show a server group"),
            show,
        )
        .delete(
            "/v2.1/os-server-groups/{id}",
            op("delete_server_group", "Delete a server group").status(204),
            delete,
        )
}

fn view(ctx: &Ctx, g: &ServerGroup) -> Value {
    let mut v = json!({"id": g.uuid, "name": g.name, "members": g.members});
    if ctx.mv.at_least(64) {
        v["policy"] = json!(g.policy);
        v["rules"] = Value::Object(g.rules.clone());
    } else {
        v["policies"] = json!([g.policy]);
        v["metadata"] = json!({});
    }
    if ctx.mv.at_least(13) {
        v["project_id"] = json!(g.project_id);
        v["user_id"] = json!(g.user_id);
    }
    v
}

fn invalid(field: &str, value: &Value, why: &str) -> ComputeError {
    ComputeError::bad(format!(
        "Invalid input for field/attribute {field}. Value: {value}. {why}"
    ))
}

fn unexpected(field: &str, obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), ComputeError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(invalid(
            field,
            &Value::Object(obj.clone()),
            &format!("Additional properties are not allowed ('{k}' was unexpected)"),
        )),
        None => Ok(()),
    }
}

/// Nova's `name` format: 1-255 printable characters, no whitespace at either end.
fn valid_name(v: &Value) -> Result<String, ComputeError> {
    let Some(name) = v.as_str() else {
        return Err(invalid("name", v, &format!("{v} is not of type 'string'")));
    };
    let len = name.chars().count();
    if len == 0 || len > 255 {
        return Err(invalid(
            "name",
            v,
            &format!("{v} is too {}", if len == 0 { "short" } else { "long" }),
        ));
    }
    if name.starts_with(char::is_whitespace)
        || name.ends_with(char::is_whitespace)
        || name.chars().any(char::is_control)
    {
        return Err(ComputeError::bad(
            "An invalid 'name' value was provided. The name must be: printable characters. \
             Can not start or end with whitespace.",
        ));
    }
    Ok(name.to_string())
}

fn allowed_policies(mv: Microversion) -> Vec<&'static str> {
    let mut all = POLICIES.to_vec();
    if mv.at_least(15) {
        all.extend_from_slice(SOFT_POLICIES);
    }
    all
}

fn one_of(field: &str, v: &Value, allowed: &[&str]) -> Result<String, ComputeError> {
    match v.as_str() {
        Some(p) if allowed.contains(&p) => Ok(p.to_string()),
        _ => {
            // Worded as Python's jsonschema writes the enum.
            let names: Vec<String> = allowed.iter().map(|p| format!("'{p}'")).collect();
            Err(invalid(
                field,
                v,
                &format!("{v} is not one of [{}]", names.join(", ")),
            ))
        }
    }
}

/// `policies: ["affinity"]`, the form before 2.64: exactly one known policy.
fn legacy_policy(mv: Microversion, v: Option<&Value>) -> Result<String, ComputeError> {
    let Some(v) = v else {
        return Err(invalid(
            "server_group",
            &Value::Null,
            "'policies' is a required property",
        ));
    };
    let list = v
        .as_array()
        .ok_or_else(|| invalid("policies", v, &format!("{v} is not of type 'array'")))?;
    if list.len() != 1 {
        let why = if list.is_empty() {
            "[] should be non-empty".to_string()
        } else {
            format!("{v} is too long")
        };
        return Err(invalid("policies", v, &why));
    }
    one_of("policies", &list[0], &allowed_policies(mv))
}

/// `rules` of 2.64: only `max_server_per_host`, a positive integer (or its digits).
fn rules(v: Option<&Value>) -> Result<Map<String, Value>, ComputeError> {
    let Some(v) = v else { return Ok(Map::new()) };
    let obj = v
        .as_object()
        .ok_or_else(|| invalid("rules", v, &format!("{v} is not of type 'object'")))?;
    unexpected("rules", obj, &["max_server_per_host"])?;
    let mut out = Map::new();
    if let Some(m) = obj.get("max_server_per_host") {
        let n = m
            .as_u64()
            .or_else(|| m.as_str().and_then(|s| s.parse::<u64>().ok()))
            .filter(|n| *n >= 1 && *n <= i64::MAX as u64)
            .ok_or_else(|| {
                invalid(
                    "max_server_per_host",
                    m,
                    &format!("{m} is not a positive integer"),
                )
            })?;
        out.insert("max_server_per_host".into(), json!(n));
    }
    Ok(out)
}

/// A create body as the microversion's schema allows it: (name, policy, rules).
fn parse_create(
    mv: Microversion,
    body: &Value,
) -> Result<(String, String, Map<String, Value>), ComputeError> {
    let top = body
        .as_object()
        .ok_or_else(|| ComputeError::bad("Malformed request body"))?;
    if let Some(k) = top.keys().find(|k| *k != "server_group") {
        return Err(ComputeError::bad(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let g = top
        .get("server_group")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            invalid(
                "server_group",
                body,
                "'server_group' is a required property",
            )
        })?;
    let fields: &[&str] = if mv.at_least(64) {
        &["name", "policy", "rules"]
    } else {
        &["name", "policies"]
    };
    unexpected("server_group", g, fields)?;
    let name = match g.get("name") {
        Some(v) => valid_name(v)?,
        None => {
            return Err(invalid(
                "server_group",
                &Value::Object(g.clone()),
                "'name' is a required property",
            ))
        }
    };
    if !mv.at_least(64) {
        return Ok((name, legacy_policy(mv, g.get("policies"))?, Map::new()));
    }
    let policy = match g.get("policy") {
        Some(v) => one_of("policy", v, &allowed_policies(mv))?,
        None => {
            return Err(invalid(
                "server_group",
                &Value::Object(g.clone()),
                "'policy' is a required property",
            ))
        }
    };
    let rules = rules(g.get("rules"))?;
    if policy != "anti-affinity" && !rules.is_empty() {
        return Err(ComputeError::bad(
            "Only anti-affinity policy supports rules.",
        ));
    }
    Ok((name, policy, rules))
}

async fn list(AxState(s): AxState<State>, ctx: Ctx, q: Query) -> HttpResult {
    if ctx.mv.at_least(75) {
        params::only(&q, &["all_projects", "limit", "offset"])?;
    }
    let offset = params::count(&q, "offset")?.unwrap_or(0);
    let limit = params::page_size(params::count(&q, "limit")?, params::MAX_LIMIT);
    let all_projects = q.get("all_projects").is_some();
    let groups = s
        .list_server_groups(&ctx.auth, all_projects, offset, limit)
        .await?;
    reply(
        StatusCode::OK,
        json!({"server_groups": groups.iter().map(|g| view(&ctx, g)).collect::<Vec<_>>()}),
    )
}

async fn create(AxState(s): AxState<State>, ctx: Ctx, body: JsonBody) -> HttpResult {
    let (name, policy, rules) = parse_create(ctx.mv, &body.0)?;
    let g = s
        .create_server_group(&ctx.auth, &name, &policy, &rules)
        .await?;
    reply(StatusCode::OK, json!({"server_group": view(&ctx, &g)}))
}

async fn show(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    q: Query,
) -> HttpResult {
    if ctx.mv.at_least(102) {
        params::only(&q, &[])?;
    }
    let g = s
        .get_server_group(&ctx.auth, &id, "os_compute_api:os-server-groups:show")
        .await?;
    reply(StatusCode::OK, json!({"server_group": view(&ctx, &g)}))
}

async fn delete(AxState(s): AxState<State>, ctx: Ctx, Path(id): Path<String>) -> HttpResult {
    s.delete_server_group(&ctx.auth, &id).await?;
    no_content()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_bodies_follow_the_microversion() {
        let old = json!({"server_group": {"name": "g", "policies": ["affinity"]}});
        assert_eq!(parse_create(Microversion(1), &old).unwrap().1, "affinity");
        // Soft policies from 2.15; `policies` is gone at 2.64.
        let soft = json!({"server_group": {"name": "g", "policies": ["soft-affinity"]}});
        assert!(parse_create(Microversion(14), &soft).is_err());
        assert!(parse_create(Microversion(15), &soft).is_ok());
        assert!(parse_create(Microversion(64), &old).is_err());
        let new = json!({"server_group": {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": "3"}}});
        let (_, p, r) = parse_create(Microversion(64), &new).unwrap();
        assert_eq!(
            (p.as_str(), r["max_server_per_host"].clone()),
            ("anti-affinity", json!(3))
        );
        let bad_rule = json!({"server_group": {"name": "g", "policy": "affinity", "rules": {"max_server_per_host": 2}}});
        assert_eq!(
            parse_create(Microversion(64), &bad_rule)
                .unwrap_err()
                .message,
            "Only anti-affinity policy supports rules."
        );
        let zero = json!({"server_group": {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": 0}}});
        assert!(parse_create(Microversion(64), &zero).is_err());
        for bad in [
            json!({"server_group": {"name": " g", "policies": ["affinity"]}}),
            json!({"server_group": {"name": "g", "policies": ["affinity", "anti-affinity"]}}),
            json!({"server_group": {"name": "g", "policies": []}}),
            json!({"server_group": {"policies": ["affinity"]}}),
            json!({"server_group": {"name": "g", "policies": ["affinity"], "x": 1}}),
        ] {
            assert!(parse_create(Microversion(1), &bad).is_err(), "{bad}");
        }
    }
}
