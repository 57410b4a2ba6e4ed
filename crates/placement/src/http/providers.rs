//! `/resource_providers` and everything under one provider: inventories, usages,
//! aggregates, traits and allocations.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State as AxState};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Value};

use super::{
    cacheable, no_content, reply_cacheable, views, Ctx, HttpResult, JsonBody, Query, State,
};
use crate::error::PlacementError;
use crate::model::{Inventory, Provider};
use crate::schema::{check, schemas};
use crate::service::providers::{ProviderSpec, MAX_INT};

pub fn api() -> Api<State> {
    Api::new()
        .get(
            "/resource_providers",
            op("list_resource_providers", "List resource providers"),
            list,
        )
        .post(
            "/resource_providers",
            op("create_resource_provider", "Create a resource provider").status(201),
            create,
        )
        .get(
            "/resource_providers/{uuid}",
            op("show_resource_provider", "Show a resource provider"),
            show,
        )
        .put(
            "/resource_providers/{uuid}",
            op("update_resource_provider", "Update a resource provider"),
            update,
        )
        .delete(
            "/resource_providers/{uuid}",
            op("delete_resource_provider", "Delete a resource provider").status(204),
            delete,
        )
        .get(
            "/resource_providers/{uuid}/inventories",
            op("list_inventories", "List a provider's inventories"),
            list_inventories,
        )
        .post(
            "/resource_providers/{uuid}/inventories",
            op("create_inventory", "Add one inventory").status(201),
            create_inventory,
        )
        .put(
            "/resource_providers/{uuid}/inventories",
            op("replace_inventories", "Replace all inventories"),
            replace_inventories,
        )
        .delete(
            "/resource_providers/{uuid}/inventories",
            op("delete_inventories", "Delete all inventories").status(204),
            delete_inventories,
        )
        .get(
            "/resource_providers/{uuid}/inventories/{class}",
            op("show_inventory", "Show one inventory"),
            show_inventory,
        )
        .put(
            "/resource_providers/{uuid}/inventories/{class}",
            op("update_inventory", "Update one inventory"),
            update_inventory,
        )
        .delete(
            "/resource_providers/{uuid}/inventories/{class}",
            op("delete_inventory", "Delete one inventory").status(204),
            delete_inventory,
        )
        .get(
            "/resource_providers/{uuid}/usages",
            op("show_provider_usages", "Show a provider's usages"),
            usages,
        )
        .get(
            "/resource_providers/{uuid}/aggregates",
            op("list_provider_aggregates", "List a provider's aggregates"),
            aggregates,
        )
        .put(
            "/resource_providers/{uuid}/aggregates",
            op(
                "update_provider_aggregates",
                "Replace a provider's aggregates",
            ),
            set_aggregates,
        )
        .get(
            "/resource_providers/{uuid}/traits",
            op("list_provider_traits", "List a provider's traits"),
            traits,
        )
        .put(
            "/resource_providers/{uuid}/traits",
            op("update_provider_traits", "Replace a provider's traits"),
            set_traits,
        )
        .delete(
            "/resource_providers/{uuid}/traits",
            op("delete_provider_traits", "Remove a provider's traits").status(204),
            delete_traits,
        )
        .get(
            "/resource_providers/{uuid}/allocations",
            op(
                "list_provider_allocations",
                "List allocations against a provider",
            ),
            provider_allocations,
        )
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// Placement accepts uuids with or without dashes and stores them dashed.
fn normalize_uuid(s: &str) -> Option<String> {
    uuid::Uuid::parse_str(s).ok().map(|u| u.to_string())
}

fn schema_error(detail: impl std::fmt::Display) -> PlacementError {
    PlacementError::bad(format!("JSON does not validate: {detail}"))
}

fn spec_from_body(body: &Value, ctx: &Ctx, creating: bool) -> Result<ProviderSpec, PlacementError> {
    check(body, schemas::provider(creating, u32::from(ctx.mv.0)))?;
    let obj = body
        .as_object()
        .ok_or_else(|| schema_error("body must be an object"))?;
    let mut allowed = vec!["name"];
    if creating {
        allowed.push("uuid");
    }
    if ctx.mv.at_least(14) {
        allowed.push("parent_provider_uuid");
    }
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(schema_error(format!(
                "Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
    }
    let name = match obj.get("name") {
        Some(Value::String(n)) if !n.is_empty() && n.chars().count() <= 200 => n.clone(),
        Some(Value::String(_)) => return Err(schema_error("'name' must be 1 to 200 characters")),
        Some(other) => return Err(schema_error(format!("{other} is not of type 'string'"))),
        None => return Err(schema_error("'name' is a required property")),
    };
    let uuid = match obj.get("uuid") {
        None => None,
        Some(Value::String(u)) => {
            Some(normalize_uuid(u).ok_or_else(|| schema_error(format!("'{u}' is not a 'uuid'")))?)
        }
        Some(other) => return Err(schema_error(format!("{other} is not of type 'string'"))),
    };
    let parent_uuid = match obj.get("parent_provider_uuid") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(u)) => {
            Some(Some(normalize_uuid(u).ok_or_else(|| {
                schema_error(format!("'{u}' is not a 'uuid'"))
            })?))
        }
        Some(other) => {
            return Err(schema_error(format!(
                "{other} is not of type 'string', 'null'"
            )))
        }
    };
    Ok(ProviderSpec {
        name,
        uuid,
        parent_uuid,
    })
}

async fn list(AxState(s): AxState<State>, ctx: Ctx, q: Query) -> HttpResult {
    s.authorize(&ctx.auth, "placement:resource_providers:list")?;
    let mut allowed = vec!["name", "uuid"];
    if ctx.mv.at_least(3) {
        allowed.push("member_of");
    }
    if ctx.mv.at_least(4) {
        allowed.push("resources");
    }
    if ctx.mv.at_least(14) {
        allowed.push("in_tree");
    }
    if ctx.mv.at_least(18) {
        allowed.push("required");
    }
    q.only(&allowed)?;
    if let Some(u) = q.all("uuid").into_iter().find(|u| !is_uuid(u)) {
        return Err(PlacementError::bad(format!(
            "Invalid query string parameters: '{u}' is not a 'uuid'"
        )));
    }
    let filter = crate::service::filter::ProviderFilter::parse(&q.0, ctx.mv)?;
    let wanted_traits: Vec<&str> = filter.required.names().map(String::as_str).collect();
    let (classes, traits) = s
        .existing_names(
            filter.resources.keys().map(String::as_str),
            wanted_traits.iter().copied(),
        )
        .await?;
    if let Some(c) = filter.resources.keys().find(|c| !classes.contains(*c)) {
        return Err(crate::query::unknown_class_error(c));
    }
    let missing: Vec<&str> = wanted_traits
        .iter()
        .copied()
        .filter(|t| !traits.contains(*t))
        .collect();
    if !missing.is_empty() {
        return Err(PlacementError::bad(format!(
            "No such trait(s): {}.",
            missing.join(", ")
        )));
    }
    let found: Vec<Provider> = {
        let snap = s.snapshot();
        filter.select(&snap).into_iter().cloned().collect()
    };
    let list: Vec<Value> = found
        .iter()
        .map(|p| views::provider(&s, p, ctx.mv, &ctx.prefix))
        .collect();
    reply_cacheable(&ctx, json!({"resource_providers": list}))
}

async fn create(AxState(s): AxState<State>, ctx: Ctx, JsonBody(body): JsonBody) -> HttpResult {
    s.authorize(&ctx.auth, "placement:resource_providers:create")?;
    let spec = spec_from_body(&body, &ctx, true)?;
    let p = s.create_provider(spec).await?;
    let location = ctx.location(&format!("/resource_providers/{}", p.uuid));
    if ctx.mv.at_least(20) {
        let mut resp = (
            StatusCode::OK,
            axum::Json(views::provider(&s, &p, ctx.mv, &ctx.prefix)),
        )
            .into_response();
        if let Ok(v) = location.parse() {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        Ok(cacheable(ctx.mv, resp))
    } else {
        Ok((StatusCode::CREATED, [(header::LOCATION, location)]).into_response())
    }
}

async fn show(AxState(s): AxState<State>, ctx: Ctx, Path(uuid): Path<String>) -> HttpResult {
    s.authorize(&ctx.auth, "placement:resource_providers:show")?;
    let p = s.provider(&uuid)?;
    reply_cacheable(&ctx, views::provider(&s, &p, ctx.mv, &ctx.prefix))
}

async fn update(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(uuid): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(&ctx.auth, "placement:resource_providers:update")?;
    let spec = spec_from_body(&body, &ctx, false)?;
    let p = s.update_provider(&uuid, spec, ctx.mv.at_least(37)).await?;
    reply_cacheable(&ctx, views::provider(&s, &p, ctx.mv, &ctx.prefix))
}

async fn delete(AxState(s): AxState<State>, ctx: Ctx, Path(uuid): Path<String>) -> HttpResult {
    s.authorize(&ctx.auth, "placement:resource_providers:delete")?;
    s.delete_provider(&uuid).await?;
    no_content()
}

// ----- inventories -----

fn int_field(
    obj: &serde_json::Map<String, Value>,
    key: &str,
    default: i64,
    min: i64,
) -> Result<i64, PlacementError> {
    match obj.get(key) {
        None => Ok(default),
        Some(v) => {
            let n = v
                .as_i64()
                .filter(|_| v.is_i64() || v.is_u64())
                .ok_or_else(|| schema_error(format!("{v} is not of type 'integer'")))?;
            if n < min {
                return Err(schema_error(format!(
                    "{n} is less than the minimum of {min}"
                )));
            }
            if n > MAX_INT {
                return Err(schema_error(format!(
                    "{n} is greater than the maximum of {MAX_INT}"
                )));
            }
            Ok(n)
        }
    }
}

/// What an inventory body is for, so a refusal reads as upstream's: `Unable to {verb}
/// inventory for resource provider {uuid}: ...` about `class`.
pub struct InventoryTarget<'a> {
    pub verb: &'a str,
    pub uuid: &'a str,
    pub class: &'a str,
}

/// One inventory from a body object; `extra` are keys allowed besides the fields.
fn inventory_from(
    obj: &serde_json::Map<String, Value>,
    extra: &[&str],
    ctx: &Ctx,
    target: &InventoryTarget,
) -> Result<Inventory, PlacementError> {
    const FIELDS: &[&str] = &[
        "total",
        "reserved",
        "min_unit",
        "max_unit",
        "step_size",
        "allocation_ratio",
    ];
    for k in obj.keys() {
        if !FIELDS.contains(&k.as_str()) && !extra.contains(&k.as_str()) {
            return Err(schema_error(format!(
                "Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
    }
    if !obj.contains_key("total") {
        return Err(schema_error("'total' is a required property"));
    }
    let total = int_field(obj, "total", 0, 1)?;
    let reserved = int_field(obj, "reserved", 0, 0)?;
    let min_unit = int_field(obj, "min_unit", 1, 1)?;
    let max_unit = int_field(obj, "max_unit", MAX_INT, 1)?;
    let step_size = int_field(obj, "step_size", 1, 1)?;
    let allocation_ratio = match obj.get("allocation_ratio") {
        None => 1.0,
        Some(v) => v
            .as_f64()
            .filter(|r| *r > 0.0 && *r <= 3.40282e38)
            .ok_or_else(|| schema_error(format!("{v} is not a valid allocation_ratio")))?,
    };
    let InventoryTarget { verb, uuid, class } = target;
    // Reserved equal to total is allowed from 1.26 (a fully reserved provider).
    if reserved > total || (reserved == total && !ctx.mv.at_least(26)) {
        let rule = if ctx.mv.at_least(26) {
            "greater than"
        } else {
            "greater than or equal to"
        };
        return Err(PlacementError::bad(format!(
            "Unable to {verb} inventory for resource provider {uuid}: Invalid inventory for '{class}' on resource provider '{uuid}'. The reserved value is {rule} total."
        )));
    }
    if min_unit > max_unit {
        return Err(PlacementError::bad(format!(
            "Unable to {verb} inventory for resource provider {uuid}: Invalid inventory for '{class}' on resource provider '{uuid}': min_unit ({min_unit}) must be less than or equal to max_unit ({max_unit})."
        )));
    }
    Ok(Inventory {
        total,
        reserved,
        min_unit,
        max_unit,
        step_size,
        allocation_ratio,
    })
}

fn generation_of(obj: &serde_json::Map<String, Value>) -> Result<i64, PlacementError> {
    match obj.get("resource_provider_generation") {
        Some(v) if v.is_i64() => Ok(v.as_i64().unwrap_or_default()),
        Some(v) => Err(schema_error(format!("{v} is not of type 'integer'"))),
        None => Err(schema_error(
            "'resource_provider_generation' is a required property",
        )),
    }
}

async fn list_inventories(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(uuid): Path<String>,
) -> HttpResult {
    s.authorize(&ctx.auth, "placement:resource_providers:inventories:list")?;
    let p = s.provider(&uuid)?;
    reply_cacheable(&ctx, views::inventories(&p))
}

async fn show_inventory(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path((uuid, class)): Path<(String, String)>,
) -> HttpResult {
    s.authorize(&ctx.auth, "placement:resource_providers:inventories:show")?;
    let p = s.provider(&uuid)?;
    let inv = p.inventories.get(&class).ok_or_else(|| {
        PlacementError::not_found(format!("No inventory of class {class} for {uuid}"))
    })?;
    let mut body = views::inventory(inv);
    body["resource_provider_generation"] = json!(p.generation);
    reply_cacheable(&ctx, body)
}

async fn create_inventory(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(uuid): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(&ctx.auth, "placement:resource_providers:inventories:create")?;
    // As upstream: an unknown provider is a 404 before the body is looked at.
    s.provider(&uuid)?;
    check(&body, schemas::post_inventory())?;
    let obj = body
        .as_object()
        .ok_or_else(|| schema_error("body must be an object"))?;
    let class = obj
        .get("resource_class")
        .and_then(Value::as_str)
        .ok_or_else(|| schema_error("'resource_class' is a required property"))?
        .to_string();
    // A POST names no generation: it adds to whatever the provider has now.
    let generation = match obj.get("resource_provider_generation") {
        Some(_) => generation_of(obj)?,
        None => s.provider(&uuid)?.generation,
    };
    let inv = inventory_from(
        obj,
        &["resource_class", "resource_provider_generation"],
        &ctx,
        &InventoryTarget {
            verb: "create",
            uuid: &uuid,
            class: &class,
        },
    )?;
    let p = s
        .set_inventory(&uuid, generation, &class, inv, true, false)
        .await?;
    let mut out = views::inventory(&p.inventories[&class]);
    out["resource_provider_generation"] = json!(p.generation);
    let location = ctx.location(&format!("/resource_providers/{uuid}/inventories/{class}"));
    Ok(cacheable(
        ctx.mv,
        (
            StatusCode::CREATED,
            [(header::LOCATION, location)],
            axum::Json(out),
        )
            .into_response(),
    ))
}

async fn update_inventory(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path((uuid, class)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(&ctx.auth, "placement:resource_providers:inventories:update")?;
    s.provider(&uuid)?;
    check(&body, schemas::put_inventory())?;
    let obj = body
        .as_object()
        .ok_or_else(|| schema_error("body must be an object"))?;
    let generation = generation_of(obj)?;
    let inv = inventory_from(
        obj,
        &["resource_provider_generation"],
        &ctx,
        &InventoryTarget {
            verb: "update",
            uuid: &uuid,
            class: &class,
        },
    )?;
    let p = s
        .set_inventory(&uuid, generation, &class, inv, false, true)
        .await?;
    let mut out = views::inventory(&p.inventories[&class]);
    out["resource_provider_generation"] = json!(p.generation);
    reply_cacheable(&ctx, out)
}

async fn replace_inventories(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(uuid): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(&ctx.auth, "placement:resource_providers:inventories:update")?;
    s.provider(&uuid)?;
    check(&body, schemas::put_inventories())?;
    let (generation, invs) = inventories_body(&body, &ctx, &uuid)?;
    let p = s.set_inventories(&uuid, generation, invs).await?;
    reply_cacheable(&ctx, views::inventories(&p))
}

/// `{"resource_provider_generation": N, "inventories": {CLASS: {...}}}` (also the reshaper's).
pub fn inventories_body(
    body: &Value,
    ctx: &Ctx,
    uuid: &str,
) -> Result<(i64, BTreeMap<String, Inventory>), PlacementError> {
    let obj = body
        .as_object()
        .ok_or_else(|| schema_error("body must be an object"))?;
    for k in obj.keys() {
        if k != "inventories" && k != "resource_provider_generation" {
            return Err(schema_error(format!(
                "Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
    }
    let generation = generation_of(obj)?;
    let invs = obj
        .get("inventories")
        .and_then(Value::as_object)
        .ok_or_else(|| schema_error("'inventories' is a required property"))?;
    let mut out = BTreeMap::new();
    for (class, v) in invs {
        if !crate::service::classes::valid_name(class) {
            return Err(schema_error(format!(
                "'{class}' does not match any of the regexes: '^[A-Z0-9_]+$'"
            )));
        }
        let o = v
            .as_object()
            .ok_or_else(|| schema_error(format!("{v} is not of type 'object'")))?;
        let target = InventoryTarget {
            verb: "update",
            uuid,
            class,
        };
        out.insert(class.clone(), inventory_from(o, &[], ctx, &target)?);
    }
    Ok((generation, out))
}

async fn delete_inventories(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(uuid): Path<String>,
) -> HttpResult {
    ctx.require(5).map_err(|_| {
        PlacementError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            crate::error::code::DEFAULT,
            "The method specified is not allowed for this resource.",
        )
    })?;
    s.authorize(&ctx.auth, "placement:resource_providers:inventories:delete")?;
    let p = s.provider(&uuid)?;
    s.set_inventories(&uuid, p.generation, BTreeMap::new())
        .await?;
    no_content()
}

async fn delete_inventory(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path((uuid, class)): Path<(String, String)>,
) -> HttpResult {
    s.authorize(&ctx.auth, "placement:resource_providers:inventories:delete")?;
    s.delete_inventory(&uuid, &class).await?;
    no_content()
}

async fn usages(AxState(s): AxState<State>, ctx: Ctx, Path(uuid): Path<String>) -> HttpResult {
    s.authorize(&ctx.auth, "placement:resource_providers:usages")?;
    let p = s.provider(&uuid)?;
    let mut usages: BTreeMap<String, i64> = p
        .inventories
        .keys()
        .map(|c| (c.clone(), p.used(c)))
        .collect();
    for (c, u) in &p.used {
        usages.insert(c.clone(), *u);
    }
    reply_cacheable(
        &ctx,
        json!({"resource_provider_generation": p.generation, "usages": usages}),
    )
}

// ----- aggregates and traits -----

async fn aggregates(AxState(s): AxState<State>, ctx: Ctx, Path(uuid): Path<String>) -> HttpResult {
    ctx.require(1)?;
    s.authorize(&ctx.auth, "placement:resource_providers:aggregates:list")?;
    let p = s.provider(&uuid)?;
    let mut body = json!({"aggregates": p.aggregates});
    if ctx.mv.at_least(19) {
        body["resource_provider_generation"] = json!(p.generation);
    }
    reply_cacheable(&ctx, body)
}

async fn set_aggregates(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(uuid): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    ctx.require(1)?;
    s.authorize(&ctx.auth, "placement:resource_providers:aggregates:update")?;
    s.provider(&uuid)?;
    check(&body, schemas::aggregates(u32::from(ctx.mv.0)))?;
    // Before 1.19 the body is the bare list; from 1.19 an object with the generation.
    let (list, generation) = if ctx.mv.at_least(19) {
        let obj = body
            .as_object()
            .ok_or_else(|| schema_error(format!("{body} is not of type 'object'")))?;
        for k in obj.keys() {
            if k != "aggregates" && k != "resource_provider_generation" {
                return Err(schema_error(format!(
                    "Additional properties are not allowed ('{k}' was unexpected)"
                )));
            }
        }
        let list = obj
            .get("aggregates")
            .ok_or_else(|| schema_error("'aggregates' is a required property"))?;
        (list.clone(), Some(generation_of(obj)?))
    } else {
        (body.clone(), None)
    };
    let items = list
        .as_array()
        .ok_or_else(|| schema_error(format!("{list} is not of type 'array'")))?;
    let mut aggs = BTreeSet::new();
    for v in items {
        let u = v
            .as_str()
            .filter(|u| is_uuid(u))
            .ok_or_else(|| schema_error(format!("{v} is not a 'uuid'")))?;
        if !aggs.insert(normalize_uuid(u).unwrap_or_default()) {
            return Err(schema_error(format!("{list} has non-unique elements")));
        }
    }
    let p = s.set_aggregates(&uuid, generation, aggs).await?;
    // The answer lists the aggregates as the request did (upstream echoes them in order).
    let mut out = json!({"aggregates": items});
    if ctx.mv.at_least(19) {
        out["resource_provider_generation"] = json!(p.generation);
    }
    reply_cacheable(&ctx, out)
}

async fn traits(AxState(s): AxState<State>, ctx: Ctx, Path(uuid): Path<String>) -> HttpResult {
    ctx.require(6)?;
    s.authorize(&ctx.auth, "placement:resource_providers:traits:list")?;
    let p = s.provider(&uuid)?;
    reply_cacheable(
        &ctx,
        json!({"traits": p.traits, "resource_provider_generation": p.generation}),
    )
}

async fn set_traits(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(uuid): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    ctx.require(6)?;
    s.authorize(&ctx.auth, "placement:resource_providers:traits:update")?;
    s.provider(&uuid)?;
    check(&body, schemas::set_provider_traits())?;
    let obj = body
        .as_object()
        .ok_or_else(|| schema_error(format!("{body} is not of type 'object'")))?;
    for k in obj.keys() {
        if k != "traits" && k != "resource_provider_generation" {
            return Err(schema_error(format!(
                "Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
    }
    let generation = generation_of(obj)?;
    let list = obj
        .get("traits")
        .and_then(Value::as_array)
        .ok_or_else(|| schema_error("'traits' is a required property"))?;
    let mut names = BTreeSet::new();
    for v in list {
        let t = v
            .as_str()
            .filter(|t| crate::service::classes::valid_name(t))
            .ok_or_else(|| schema_error(format!("{v} does not match '^[A-Z0-9_]+$'")))?;
        names.insert(t.to_string());
    }
    let p = s.set_traits(&uuid, Some(generation), names).await?;
    reply_cacheable(
        &ctx,
        json!({"traits": p.traits, "resource_provider_generation": p.generation}),
    )
}

async fn delete_traits(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(uuid): Path<String>,
) -> HttpResult {
    ctx.require(6)?;
    s.authorize(&ctx.auth, "placement:resource_providers:traits:delete")?;
    s.set_traits(&uuid, None, BTreeSet::new()).await?;
    no_content()
}

async fn provider_allocations(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(uuid): Path<String>,
) -> HttpResult {
    s.authorize(&ctx.auth, "placement:resource_providers:allocations:list")?;
    let (p, rows, generations) = s.provider_allocations(&uuid).await?;
    reply_cacheable(
        &ctx,
        views::provider_allocations(&p, &rows, &generations, ctx.mv),
    )
}
