//! Unified limits: `/v3/registered_limits`, `/v3/limits` and `/v3/limits/model`.
//!
//! Anyone authenticated may read registered limits and the model; a project-scoped (or
//! domain-scoped) caller who is not an administrator sees only their own project's (domain's)
//! limits, as Keystone filters them.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Value};

use super::views::filter_list;
use super::{json, no_content, Caller, HttpResult, JsonBody, QueryMap, State};
use crate::model::{Limit, RegisteredLimit};
use crate::service::Identity;

pub fn routes() -> Api<State> {
    Api::new()
        .get(
            "/v3/registered_limits",
            op("list_registered_limits", "List registered limits"),
            list_registered,
        )
        .post(
            "/v3/registered_limits",
            op("create_registered_limits", "Create registered limits").status(201),
            create_registered,
        )
        .get(
            "/v3/registered_limits/{id}",
            op("get_registered_limit", "Show a registered limit"),
            get_registered,
        )
        .patch(
            "/v3/registered_limits/{id}",
            op("update_registered_limit", "Update a registered limit"),
            update_registered,
        )
        .delete(
            "/v3/registered_limits/{id}",
            op("delete_registered_limit", "Delete a registered limit").status(204),
            delete_registered,
        )
        .get(
            "/v3/limits/model",
            op("get_limit_model", "Show the limit enforcement model"),
            model,
        )
        .get("/v3/limits", op("list_limits", "List limits"), list_limits)
        .post(
            "/v3/limits",
            op("create_limits", "Create limits").status(201),
            create_limits,
        )
        .get(
            "/v3/limits/{id}",
            op("get_limit", "Show a limit"),
            get_limit,
        )
        .patch(
            "/v3/limits/{id}",
            op("update_limit", "Update a limit"),
            update_limit,
        )
        .delete(
            "/v3/limits/{id}",
            op("delete_limit", "Delete a limit").status(204),
            delete_limit,
        )
}

fn registered_view(s: &Identity, r: &RegisteredLimit) -> Value {
    json!({
        "id": r.id, "service_id": r.service_id, "region_id": r.region_id,
        "resource_name": r.resource_name, "default_limit": r.default_limit,
        "description": r.description, "links": s.link(&format!("/registered_limits/{}", r.id)),
    })
}

fn limit_view(s: &Identity, l: &Limit) -> Value {
    json!({
        "id": l.id, "project_id": l.project_id, "domain_id": l.domain_id,
        "service_id": l.service_id, "region_id": l.region_id,
        "resource_name": l.resource_name, "resource_limit": l.resource_limit,
        "description": l.description, "links": s.link(&format!("/limits/{}", l.id)),
    })
}

fn limit_target(l: &Limit) -> Value {
    json!({"target": {"limit": {"id": l.id, "project_id": l.project_id, "domain_id": l.domain_id}}})
}

async fn list_registered(AxState(s): AxState<State>, caller: Caller, q: QueryMap) -> HttpResult {
    s.authorize(caller.ctx(), "identity:list_registered_limits", &json!({}))?;
    let items = s
        .store
        .registered_limits()
        .await?
        .iter()
        .map(|r| registered_view(&s, r))
        .collect();
    json(
        StatusCode::OK,
        s.collection(
            "registered_limits",
            "/registered_limits",
            filter_list(items, &q.0, &["service_id", "region_id", "resource_name"]),
        ),
    )
}

async fn create_registered(
    AxState(s): AxState<State>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(
        caller.ctx(),
        "identity:create_registered_limits",
        &json!({}),
    )?;
    let items: Vec<Value> = s
        .create_registered_limits(&body)
        .await?
        .iter()
        .map(|r| registered_view(&s, r))
        .collect();
    json(StatusCode::CREATED, json!({ "registered_limits": items }))
}

async fn get_registered(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:get_registered_limit", &json!({}))?;
    let r = s.existing_registered_limit(&id).await?;
    json(
        StatusCode::OK,
        json!({"registered_limit": registered_view(&s, &r)}),
    )
}

async fn update_registered(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:update_registered_limit", &json!({}))?;
    let r = s.existing_registered_limit(&id).await?;
    let r = s.update_registered_limit(r, &body).await?;
    json(
        StatusCode::OK,
        json!({"registered_limit": registered_view(&s, &r)}),
    )
}

async fn delete_registered(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:delete_registered_limit", &json!({}))?;
    let r = s.existing_registered_limit(&id).await?;
    s.delete_registered_limit(&r).await?;
    no_content()
}

async fn model(AxState(s): AxState<State>, caller: Caller) -> HttpResult {
    s.authorize(caller.ctx(), "identity:get_limit_model", &json!({}))?;
    json(
        StatusCode::OK,
        json!({"model": {"name": "flat", "description": "Limit enforcement and validation does not take project hierarchy into consideration."}}),
    )
}

async fn list_limits(AxState(s): AxState<State>, caller: Caller, q: QueryMap) -> HttpResult {
    let ctx = caller.ctx();
    s.authorize(ctx, "identity:list_limits", &json!({}))?;
    let sees_all = ctx.is_system() || ctx.has_role("admin");
    let items = s
        .store
        .limits()
        .await?
        .iter()
        .filter(|l| {
            sees_all
                || (l.project_id.is_some() && l.project_id.as_deref() == ctx.project_id())
                || (l.domain_id.is_some() && l.domain_id.as_deref() == ctx.domain_id())
        })
        .map(|l| limit_view(&s, l))
        .collect();
    json(
        StatusCode::OK,
        s.collection(
            "limits",
            "/limits",
            filter_list(
                items,
                &q.0,
                &[
                    "service_id",
                    "region_id",
                    "resource_name",
                    "project_id",
                    "domain_id",
                ],
            ),
        ),
    )
}

async fn create_limits(
    AxState(s): AxState<State>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:create_limits", &json!({}))?;
    let items: Vec<Value> = s
        .create_limits(&body)
        .await?
        .iter()
        .map(|l| limit_view(&s, l))
        .collect();
    json(StatusCode::CREATED, json!({ "limits": items }))
}

async fn get_limit(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let l = s.existing_limit(&id).await?;
    s.authorize(caller.ctx(), "identity:get_limit", &limit_target(&l))?;
    json(StatusCode::OK, json!({"limit": limit_view(&s, &l)}))
}

async fn update_limit(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    let l = s.existing_limit(&id).await?;
    s.authorize(caller.ctx(), "identity:update_limit", &limit_target(&l))?;
    let l = s.update_limit(l, &body).await?;
    json(StatusCode::OK, json!({"limit": limit_view(&s, &l)}))
}

async fn delete_limit(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let l = s.existing_limit(&id).await?;
    s.authorize(caller.ctx(), "identity:delete_limit", &limit_target(&l))?;
    s.delete_limit(&l.id).await?;
    no_content()
}
