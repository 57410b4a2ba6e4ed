//! `/v3/OS-OAUTH1/consumers`: create (the only response that shows the secret), list, show,
//! update and delete OAuth1 consumers.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Map, Value};

use super::views::filter_list;
use super::{json, no_content, Caller, HttpResult, JsonBody, QueryMap, State};
use crate::model::OauthConsumer;
use crate::service::Identity;

const BASE: &str = "/v3/OS-OAUTH1/consumers";

pub fn routes() -> Api<State> {
    let one = format!("{BASE}/{{id}}");
    Api::new()
        .get(BASE, op("list_consumers", "List OAuth1 consumers"), list)
        .post(
            BASE,
            op(
                "create_consumer",
                "Create an OAuth1 consumer (shows its secret once)",
            )
            .status(201),
            create,
        )
        .get(&one, op("get_consumer", "Show an OAuth1 consumer"), get)
        .patch(
            &one,
            op("update_consumer", "Update an OAuth1 consumer"),
            update,
        )
        .delete(
            &one,
            op("delete_consumer", "Delete an OAuth1 consumer").status(204),
            delete,
        )
}

fn view(s: &Identity, c: &OauthConsumer) -> Value {
    let mut m: Map<String, Value> = c.extra.clone();
    m.insert("id".into(), json!(c.id));
    m.insert("description".into(), json!(c.description));
    m.insert(
        "links".into(),
        s.link(&format!("/OS-OAUTH1/consumers/{}", c.id)),
    );
    Value::Object(m)
}

async fn list(AxState(s): AxState<State>, caller: Caller, q: QueryMap) -> HttpResult {
    s.authorize(caller.ctx(), "identity:list_consumers", &json!({}))?;
    let items = s
        .store
        .consumers()
        .await?
        .iter()
        .map(|c| view(&s, c))
        .collect();
    json(
        StatusCode::OK,
        s.collection(
            "consumers",
            "/OS-OAUTH1/consumers",
            filter_list(items, &q.0, &["description"]),
        ),
    )
}

async fn create(
    AxState(s): AxState<State>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:create_consumer", &json!({}))?;
    let c = s.create_consumer(&body).await?;
    let mut v = view(&s, &c);
    v["secret"] = json!(c.secret);
    json(StatusCode::CREATED, json!({ "consumer": v }))
}

async fn get(AxState(s): AxState<State>, caller: Caller, Path(id): Path<String>) -> HttpResult {
    s.authorize(caller.ctx(), "identity:get_consumer", &json!({}))?;
    let c = s.existing_consumer(&id).await?;
    json(StatusCode::OK, json!({"consumer": view(&s, &c)}))
}

async fn update(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:update_consumer", &json!({}))?;
    let c = s.update_consumer(&id, &body).await?;
    json(StatusCode::OK, json!({"consumer": view(&s, &c)}))
}

async fn delete(AxState(s): AxState<State>, caller: Caller, Path(id): Path<String>) -> HttpResult {
    s.authorize(caller.ctx(), "identity:delete_consumer", &json!({}))?;
    s.delete_consumer(&id).await?;
    no_content()
}
