//! `/resource_classes` and `/traits`: the catalogs of names.

use axum::extract::{Path, State as AxState};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Value};

use super::{cacheable, no_content, reply_cacheable, Ctx, HttpResult, JsonBody, Query, State};
use crate::error::PlacementError;
use crate::service::classes::Ensured;

pub fn api() -> Api<State> {
    Api::new()
        .get(
            "/resource_classes",
            op("list_resource_classes", "List resource classes"),
            list_classes,
        )
        .post(
            "/resource_classes",
            op("create_resource_class", "Create a custom resource class").status(201),
            create_class,
        )
        .get(
            "/resource_classes/{name}",
            op("show_resource_class", "Show a resource class"),
            show_class,
        )
        .put(
            "/resource_classes/{name}",
            op(
                "update_resource_class",
                "Create (1.7+) or rename a custom resource class",
            )
            .status(201),
            put_class,
        )
        .delete(
            "/resource_classes/{name}",
            op("delete_resource_class", "Delete a custom resource class").status(204),
            delete_class,
        )
        .get("/traits", op("list_traits", "List traits"), list_traits)
        .get(
            "/traits/{name}",
            op("show_trait", "Check that a trait exists").status(204),
            show_trait,
        )
        .put(
            "/traits/{name}",
            op("update_trait", "Create a custom trait").status(201),
            put_trait,
        )
        .delete(
            "/traits/{name}",
            op("delete_trait", "Delete a custom trait").status(204),
            delete_trait,
        )
}

fn class_view(ctx: &Ctx, name: &str) -> Value {
    json!({"name": name, "links": [{"rel": "self", "href": format!("{}/resource_classes/{name}", ctx.prefix)}]})
}

async fn list_classes(AxState(s): AxState<State>, ctx: Ctx) -> HttpResult {
    ctx.require(2)?;
    s.authorize(&ctx.auth, "placement:resource_classes:list")?;
    let names = s.list_resource_classes().await?;
    let list: Vec<Value> = names.iter().map(|n| class_view(&ctx, n)).collect();
    reply_cacheable(&ctx, json!({"resource_classes": list}))
}

async fn create_class(
    AxState(s): AxState<State>,
    ctx: Ctx,
    JsonBody(body): JsonBody,
) -> HttpResult {
    ctx.require(2)?;
    s.authorize(&ctx.auth, "placement:resource_classes:create")?;
    let name = class_name_from(&body)?;
    s.create_resource_class(&name).await?;
    let location = ctx.location(&format!("/resource_classes/{name}"));
    Ok((StatusCode::CREATED, [(header::LOCATION, location)]).into_response())
}

fn class_name_from(body: &Value) -> Result<String, PlacementError> {
    crate::schema::check(body, crate::schema::schemas::resource_class())?;
    let obj = body
        .as_object()
        .ok_or_else(|| PlacementError::bad("JSON does not validate: body must be an object"))?;
    for k in obj.keys() {
        if k != "name" {
            return Err(PlacementError::bad(format!(
                "JSON does not validate: Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
    }
    obj.get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| PlacementError::bad("JSON does not validate: 'name' is a required property"))
}

async fn show_class(AxState(s): AxState<State>, ctx: Ctx, Path(name): Path<String>) -> HttpResult {
    ctx.require(2)?;
    s.authorize(&ctx.auth, "placement:resource_classes:show")?;
    s.show_resource_class(&name).await?;
    reply_cacheable(&ctx, class_view(&ctx, &name))
}

async fn put_class(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(name): Path<String>,
    req: axum::extract::Request,
) -> HttpResult {
    ctx.require(2)?;
    s.authorize(&ctx.auth, "placement:resource_classes:update")?;
    if ctx.mv.at_least(7) {
        crate::schema::check(&json!(name), crate::schema::schemas::custom_class_name())?;
        let location = ctx.location(&format!("/resource_classes/{name}"));
        return Ok(match s.ensure_resource_class(&name).await? {
            Ensured::Created => {
                (StatusCode::CREATED, [(header::LOCATION, location)]).into_response()
            }
            Ensured::Existed => {
                (StatusCode::NO_CONTENT, [(header::LOCATION, location)]).into_response()
            }
        });
    }
    use axum::extract::FromRequest;
    let JsonBody(body) = JsonBody::from_request(req, &()).await?;
    let new_name = class_name_from(&body)?;
    s.rename_resource_class(&name, &new_name).await?;
    Ok((StatusCode::OK, axum::Json(class_view(&ctx, &new_name))).into_response())
}

async fn delete_class(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> HttpResult {
    ctx.require(2)?;
    s.authorize(&ctx.auth, "placement:resource_classes:delete")?;
    s.delete_resource_class(&name).await?;
    no_content()
}

async fn list_traits(AxState(s): AxState<State>, ctx: Ctx, q: Query) -> HttpResult {
    ctx.require(6)?;
    s.authorize(&ctx.auth, "placement:traits:list")?;
    q.only(&["name", "associated"])?;
    let associated = match q.single("associated")? {
        None => None,
        Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
        Some(v) => {
            return Err(PlacementError::bad(format!(
                "The query parameter \"associated\" only accepts \"true\" or \"false\". Got: {v}"
            )))
        }
    };
    let names = s.list_traits(q.single("name")?, associated).await?;
    reply_cacheable(&ctx, json!({"traits": names}))
}

async fn show_trait(AxState(s): AxState<State>, ctx: Ctx, Path(name): Path<String>) -> HttpResult {
    ctx.require(6)?;
    s.authorize(&ctx.auth, "placement:traits:show")?;
    if !s.trait_exists(&name).await? {
        return Err(PlacementError::not_found(format!(
            "No such trait(s): {name}"
        )));
    }
    Ok(cacheable(ctx.mv, StatusCode::NO_CONTENT.into_response()))
}

async fn put_trait(AxState(s): AxState<State>, ctx: Ctx, Path(name): Path<String>) -> HttpResult {
    ctx.require(6)?;
    s.authorize(&ctx.auth, "placement:traits:update")?;
    let location = ctx.location(&format!("/traits/{name}"));
    let status = match s.ensure_trait(&name).await? {
        Ensured::Created => StatusCode::CREATED,
        Ensured::Existed => StatusCode::NO_CONTENT,
    };
    Ok(cacheable(
        ctx.mv,
        (status, [(header::LOCATION, location)]).into_response(),
    ))
}

async fn delete_trait(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> HttpResult {
    ctx.require(6)?;
    s.authorize(&ctx.auth, "placement:traits:delete")?;
    s.delete_trait(&name).await?;
    no_content()
}
