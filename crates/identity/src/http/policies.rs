//! `/v3/policies`: create, list (filter by `type`), show, update and delete policy blobs.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Map, Value};

use super::views::filter_list;
use super::{json, no_content, Caller, HttpResult, JsonBody, QueryMap, State};
use crate::model::PolicyBlob;
use crate::service::Identity;

pub fn routes() -> Api<State> {
    Api::new()
        .get("/v3/policies", op("list_policies", "List policies"), list)
        .post(
            "/v3/policies",
            op("create_policy", "Create a policy").status(201),
            create,
        )
        .get("/v3/policies/{id}", op("get_policy", "Show a policy"), get)
        .patch(
            "/v3/policies/{id}",
            op("update_policy", "Update a policy"),
            update,
        )
        .delete(
            "/v3/policies/{id}",
            op("delete_policy", "Delete a policy").status(204),
            delete,
        )
}

fn view(s: &Identity, p: &PolicyBlob) -> Value {
    let mut m: Map<String, Value> = p.extra.clone();
    m.insert("id".into(), json!(p.id));
    m.insert("type".into(), json!(p.policy_type));
    m.insert("blob".into(), json!(p.blob));
    m.insert("links".into(), s.link(&format!("/policies/{}", p.id)));
    Value::Object(m)
}

async fn list(AxState(s): AxState<State>, caller: Caller, q: QueryMap) -> HttpResult {
    s.authorize(caller.ctx(), "identity:list_policies", &json!({}))?;
    let items = s
        .store
        .policies()
        .await?
        .iter()
        .map(|p| view(&s, p))
        .collect();
    json(
        StatusCode::OK,
        s.collection("policies", "/policies", filter_list(items, &q.0, &["type"])),
    )
}

async fn create(
    AxState(s): AxState<State>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:create_policy", &json!({}))?;
    let p = s.create_policy(&body).await?;
    json(StatusCode::CREATED, json!({"policy": view(&s, &p)}))
}

async fn get(AxState(s): AxState<State>, caller: Caller, Path(id): Path<String>) -> HttpResult {
    s.authorize(caller.ctx(), "identity:get_policy", &json!({}))?;
    let p = s.existing_policy(&id).await?;
    json(StatusCode::OK, json!({"policy": view(&s, &p)}))
}

async fn update(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:update_policy", &json!({}))?;
    let p = s.update_policy(&id, &body).await?;
    json(StatusCode::OK, json!({"policy": view(&s, &p)}))
}

async fn delete(AxState(s): AxState<State>, caller: Caller, Path(id): Path<String>) -> HttpResult {
    s.authorize(caller.ctx(), "identity:delete_policy", &json!({}))?;
    s.delete_policy(&id).await?;
    no_content()
}
