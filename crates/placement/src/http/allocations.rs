//! `/allocations`, `/usages`, `/reshaper` and `/allocation_candidates`: claims and what
//! the scheduler reads.

use std::collections::BTreeMap;

use axum::extract::{Path, State as AxState};
use ferrostack_common::api::{op, Api};
use serde_json::{json, Map, Value};

use super::{
    no_content, reply_cacheable, reply_cacheable_text, views, Ctx, HttpResult, JsonBody, Query,
    State,
};
use crate::error::PlacementError;
use crate::microversion::Microversion;
use crate::service::allocations::ConsumerAllocations;

/// The project and user recorded for consumers written before 1.8 named them.
pub const INCOMPLETE_CONSUMER_ID: &str = "00000000-0000-0000-0000-000000000000";

pub fn api() -> Api<State> {
    Api::new()
        .get(
            "/allocations/{consumer}",
            op("list_allocations", "List a consumer's allocations"),
            show,
        )
        .put(
            "/allocations/{consumer}",
            op("update_allocations", "Set a consumer's allocations").status(204),
            put,
        )
        .delete(
            "/allocations/{consumer}",
            op("delete_allocations", "Delete a consumer's allocations").status(204),
            delete,
        )
        .post(
            "/allocations",
            op(
                "manage_allocations",
                "Set allocations of several consumers at once",
            )
            .status(204),
            post,
        )
        .get(
            "/usages",
            op("list_usages", "Usages of a project (and user)"),
            usages,
        )
        .post(
            "/reshaper",
            op("reshape", "Move inventories and allocations atomically").status(204),
            reshape,
        )
        .get(
            "/allocation_candidates",
            op(
                "list_allocation_candidates",
                "Allocation candidates for a request",
            ),
            candidates,
        )
}

fn schema_error(detail: impl std::fmt::Display) -> PlacementError {
    PlacementError::bad(format!("JSON does not validate: {detail}"))
}

fn check_consumer_uuid(consumer: &str) -> Result<String, PlacementError> {
    uuid::Uuid::parse_str(consumer)
        .map(|u| u.to_string())
        .map_err(|_| PlacementError::bad(format!("Malformed consumer_uuid: {consumer}")))
}

fn resources_of(v: &Value) -> Result<BTreeMap<String, i64>, PlacementError> {
    let obj = v
        .as_object()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| schema_error(format!("{v} does not have enough properties")))?;
    let mut out = BTreeMap::new();
    for (class, amount) in obj {
        if !crate::service::classes::valid_name(class) {
            return Err(schema_error(format!(
                "'{class}' does not match any of the regexes: '^[A-Z0-9_]+$'"
            )));
        }
        let n = amount
            .as_i64()
            .filter(|n| *n >= 1 && (amount.is_i64() || amount.is_u64()))
            .ok_or_else(|| schema_error(format!("{amount} is less than the minimum of 1")))?;
        out.insert(class.clone(), n);
    }
    Ok(out)
}

fn string_field(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, PlacementError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => Ok(Some(s.clone())),
        Some(v) => Err(schema_error(format!("{v} is not a valid {key}"))),
    }
}

/// One consumer's allocation body, per microversion. `post` is the form inside
/// `POST /allocations` (allocations may be empty there from 1.13).
pub fn parse_consumer(
    consumer: &str,
    body: &Value,
    mv: Microversion,
    post: bool,
) -> Result<ConsumerAllocations, PlacementError> {
    let obj = body
        .as_object()
        .ok_or_else(|| schema_error(format!("{body} is not of type 'object'")))?;
    let mut allowed = vec!["allocations"];
    if mv.at_least(8) {
        allowed.extend(["project_id", "user_id"]);
    }
    if mv.at_least(28) {
        allowed.push("consumer_generation");
    }
    if mv.at_least(34) {
        allowed.push("mappings");
    }
    if mv.at_least(38) {
        allowed.push("consumer_type");
    }
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(schema_error(format!(
                "Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
    }
    let required = |k: &str| -> Result<(), PlacementError> {
        if obj.contains_key(k) {
            Ok(())
        } else {
            Err(schema_error(format!("'{k}' is a required property")))
        }
    };
    required("allocations")?;
    if mv.at_least(8) {
        required("project_id")?;
        required("user_id")?;
    }
    if mv.at_least(28) {
        required("consumer_generation")?;
    }
    if mv.at_least(38) {
        required("consumer_type")?;
    }
    let mut allocations: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let raw = &obj["allocations"];
    if mv.at_least(12) {
        let map = raw
            .as_object()
            .ok_or_else(|| schema_error(format!("{raw} is not of type 'object'")))?;
        if map.is_empty() && !post && !mv.at_least(28) {
            return Err(schema_error("{} does not have enough properties"));
        }
        for (rp, v) in map {
            let rp_uuid = uuid::Uuid::parse_str(rp)
                .map_err(|_| schema_error(format!("'{rp}' is not a valid provider uuid")))?;
            let entry = v
                .as_object()
                .ok_or_else(|| schema_error(format!("{v} is not of type 'object'")))?;
            for k in entry.keys() {
                if k != "resources" && k != "generation" {
                    return Err(schema_error(format!(
                        "Additional properties are not allowed ('{k}' was unexpected)"
                    )));
                }
            }
            let res = entry
                .get("resources")
                .ok_or_else(|| schema_error("'resources' is a required property"))?;
            allocations.insert(rp_uuid.to_string(), resources_of(res)?);
        }
    } else {
        let list = raw
            .as_array()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| schema_error(format!("{raw} is too short")))?;
        for item in list {
            let o = item
                .as_object()
                .ok_or_else(|| schema_error(format!("{item} is not of type 'object'")))?;
            let rp = o
                .get("resource_provider")
                .and_then(|r| r.get("uuid"))
                .and_then(Value::as_str)
                .and_then(|u| uuid::Uuid::parse_str(u).ok())
                .ok_or_else(|| {
                    schema_error("'resource_provider' with a 'uuid' is a required property")
                })?;
            let res = o
                .get("resources")
                .ok_or_else(|| schema_error("'resources' is a required property"))?;
            allocations
                .entry(rp.to_string())
                .or_default()
                .extend(resources_of(res)?);
        }
    }
    let generation = if mv.at_least(28) {
        match &obj["consumer_generation"] {
            Value::Null => Some(None),
            v if v.is_i64() => Some(v.as_i64()),
            v => {
                return Err(schema_error(format!(
                    "{v} is not of type 'integer', 'null'"
                )))
            }
        }
    } else {
        None
    };
    let consumer_type = match string_field(obj, "consumer_type")? {
        Some(t)
            if !t
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') =>
        {
            return Err(schema_error(format!("'{t}' does not match '^[A-Z0-9_]+$'")))
        }
        other => other,
    };
    Ok(ConsumerAllocations {
        consumer: consumer.to_string(),
        allocations,
        project_id: string_field(obj, "project_id")?
            .unwrap_or_else(|| INCOMPLETE_CONSUMER_ID.into()),
        user_id: string_field(obj, "user_id")?.unwrap_or_else(|| INCOMPLETE_CONSUMER_ID.into()),
        generation,
        consumer_type,
    })
}

async fn show(AxState(s): AxState<State>, ctx: Ctx, Path(consumer): Path<String>) -> HttpResult {
    s.authorize(&ctx.auth, "placement:allocations:list")?;
    let view = s.consumer_allocations(&consumer).await?;
    reply_cacheable(&ctx, views::consumer_allocations(&view, ctx.mv))
}

async fn put(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(consumer): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(&ctx.auth, "placement:allocations:update")?;
    let consumer = check_consumer_uuid(&consumer)?;
    crate::schema::check(
        &body,
        crate::schema::schemas::put_allocations(u32::from(ctx.mv.0)),
    )?;
    let item = parse_consumer(&consumer, &body, ctx.mv, false)?;
    s.set_allocations(vec![item]).await?;
    no_content()
}

async fn delete(AxState(s): AxState<State>, ctx: Ctx, Path(consumer): Path<String>) -> HttpResult {
    s.authorize(&ctx.auth, "placement:allocations:delete")?;
    s.delete_allocations(&consumer).await?;
    no_content()
}

async fn post(AxState(s): AxState<State>, ctx: Ctx, JsonBody(body): JsonBody) -> HttpResult {
    ctx.require(13)?;
    s.authorize(&ctx.auth, "placement:allocations:manage")?;
    crate::schema::check(
        &body,
        crate::schema::schemas::post_allocations(u32::from(ctx.mv.0)),
    )?;
    let obj = body
        .as_object()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| schema_error(format!("{body} does not have enough properties")))?;
    let mut items = Vec::new();
    for (consumer, v) in obj {
        let consumer = uuid::Uuid::parse_str(consumer)
            .map_err(|_| schema_error(format!("'{consumer}' does not match any of the regexes")))?
            .to_string();
        items.push(parse_consumer(&consumer, v, ctx.mv, true)?);
    }
    s.set_allocations(items).await?;
    no_content()
}

async fn usages(AxState(s): AxState<State>, ctx: Ctx, q: Query) -> HttpResult {
    ctx.require(9)?;
    s.authorize(&ctx.auth, "placement:usages")?;
    let mut allowed = vec!["project_id", "user_id"];
    if ctx.mv.at_least(38) {
        allowed.push("consumer_type");
    }
    q.only(&allowed)?;
    // Upstream checks the query as a JSON object (each name's last value) with a schema.
    let as_object: Map<String, Value> = q.0.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    crate::schema::validate(
        &Value::Object(as_object),
        crate::schema::schemas::usages_query(u32::from(ctx.mv.0)),
    )
    .map_err(|text| PlacementError::bad(format!("Invalid query string parameters: {text}")))?;
    let project = q.single("project_id")?.ok_or_else(|| {
        PlacementError::bad("Invalid query string parameters: 'project_id' is a required property")
    })?;
    let kind = q.single("consumer_type")?;
    let grouped = s
        .project_usages(project, q.single("user_id")?, kind)
        .await?;
    let body = if ctx.mv.at_least(38) {
        let mut out = Map::new();
        for (kind, (count, classes)) in grouped {
            let mut entry: Map<String, Value> =
                classes.into_iter().map(|(c, u)| (c, json!(u))).collect();
            entry.insert("consumer_count".into(), json!(count));
            out.insert(kind, Value::Object(entry));
        }
        json!({"usages": out})
    } else {
        let mut total: BTreeMap<String, i64> = BTreeMap::new();
        for (_, (_, classes)) in grouped {
            for (c, u) in classes {
                *total.entry(c).or_insert(0) += u;
            }
        }
        json!({"usages": total})
    };
    reply_cacheable(&ctx, body)
}

async fn reshape(AxState(s): AxState<State>, ctx: Ctx, JsonBody(body): JsonBody) -> HttpResult {
    ctx.require(30)?;
    s.authorize(&ctx.auth, "placement:reshaper:reshape")?;
    let obj = body
        .as_object()
        .ok_or_else(|| schema_error("body must be an object"))?;
    for k in obj.keys() {
        if k != "inventories" && k != "allocations" {
            return Err(schema_error(format!(
                "Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
    }
    let invs = obj
        .get("inventories")
        .and_then(Value::as_object)
        .ok_or_else(|| schema_error("'inventories' is a required property"))?;
    let allocs = obj
        .get("allocations")
        .and_then(Value::as_object)
        .ok_or_else(|| schema_error("'allocations' is a required property"))?;
    let mut inventories = Vec::new();
    for (rp, v) in invs {
        let (generation, map) = super::providers::inventories_body(v, &ctx, rp)?;
        inventories.push((rp.clone(), generation, map));
    }
    let mut items = Vec::new();
    for (consumer, v) in allocs {
        let consumer = check_consumer_uuid(consumer)?;
        // The reshaper's consumers always carry a generation (the 1.28+ form).
        items.push(parse_consumer(
            &consumer,
            v,
            ctx.mv.max(Microversion(28)),
            true,
        )?);
    }
    s.reshape(inventories, items).await?;
    no_content()
}

async fn candidates(AxState(s): AxState<State>, ctx: Ctx, q: Query) -> HttpResult {
    ctx.require(10)?;
    s.authorize(&ctx.auth, "placement:allocation_candidates:list")?;
    let request = crate::candidates::parse(&q.0, ctx.mv)?;
    let traits: Vec<&str> = request
        .root_required
        .names()
        .chain(request.groups.iter().flat_map(|g| g.required.names()))
        .map(String::as_str)
        .collect();
    let (classes, traits) = s
        .existing_names(request.requested_classes(), traits)
        .await?;
    request.check_names(|c| classes.contains(c), |t| traits.contains(t))?;
    // Rendered straight to text: building a JSON value for 10,000 candidates costs more than
    // the search itself.
    let body = {
        let snap = s.snapshot();
        let found = crate::candidates::search(&snap, &request);
        crate::candidates::render_json(&snap, &found, &request, ctx.mv)
    };
    reply_cacheable_text(&ctx, body)
}
