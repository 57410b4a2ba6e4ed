//! `/v3/OS-EP-FILTER/endpoint_groups`: create, list, show (HEAD checks), update and delete
//! endpoint groups.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Value};

use super::views::filter_list;
use super::{json, no_content, Caller, HttpResult, JsonBody, QueryMap, State};
use crate::model::EndpointGroup;
use crate::service::Identity;

const BASE: &str = "/v3/OS-EP-FILTER/endpoint_groups";

pub fn routes() -> Api<State> {
    let one = format!("{BASE}/{{id}}");
    Api::new()
        .get(
            BASE,
            op("list_endpoint_groups", "List endpoint groups"),
            list_groups,
        )
        .post(
            BASE,
            op("create_endpoint_group", "Create an endpoint group").status(201),
            create_group,
        )
        .get(
            &one,
            op("get_endpoint_group", "Show (HEAD: check) an endpoint group"),
            get_group,
        )
        .patch(
            &one,
            op("update_endpoint_group", "Update an endpoint group"),
            update_group,
        )
        .delete(
            &one,
            op("delete_endpoint_group", "Delete an endpoint group").status(204),
            delete_group,
        )
}

pub(super) fn view(s: &Identity, g: &EndpointGroup) -> Value {
    json!({
        "id": g.id, "name": g.name, "description": g.description, "filters": g.filters,
        "links": s.link(&format!("/OS-EP-FILTER/endpoint_groups/{}", g.id)),
    })
}

async fn list_groups(AxState(s): AxState<State>, caller: Caller, q: QueryMap) -> HttpResult {
    s.authorize(caller.ctx(), "identity:list_endpoint_groups", &json!({}))?;
    let items = s
        .store
        .endpoint_groups()
        .await?
        .iter()
        .map(|g| view(&s, g))
        .collect();
    json(
        StatusCode::OK,
        s.collection(
            "endpoint_groups",
            "/OS-EP-FILTER/endpoint_groups",
            filter_list(items, &q.0, &["name"]),
        ),
    )
}

async fn create_group(
    AxState(s): AxState<State>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:create_endpoint_group", &json!({}))?;
    let g = s.create_endpoint_group(&body).await?;
    json(StatusCode::CREATED, json!({"endpoint_group": view(&s, &g)}))
}

async fn get_group(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:get_endpoint_group", &json!({}))?;
    let g = s.existing_endpoint_group(&id).await?;
    json(StatusCode::OK, json!({"endpoint_group": view(&s, &g)}))
}

async fn update_group(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:update_endpoint_group", &json!({}))?;
    let g = s.update_endpoint_group(&id, &body).await?;
    json(StatusCode::OK, json!({"endpoint_group": view(&s, &g)}))
}

async fn delete_group(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:delete_endpoint_group", &json!({}))?;
    s.delete_endpoint_group(&id).await?;
    no_content()
}
