//! `/v3/users/{user_id}/access_rules`: list, show and delete the access rules a user's
//! application credentials use (they are created with the credentials).

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Value};

use super::views::filter_list;
use super::{json, no_content, Caller, HttpResult, QueryMap, State};
use crate::model::AccessRule;
use crate::service::Identity;

pub fn routes() -> Api<State> {
    Api::new()
        .get(
            "/v3/users/{id}/access_rules",
            op("list_access_rules", "List a user's access rules"),
            list_rules,
        )
        .get(
            "/v3/users/{id}/access_rules/{rule_id}",
            op("get_access_rule", "Show an access rule"),
            get_rule,
        )
        .delete(
            "/v3/users/{id}/access_rules/{rule_id}",
            op("delete_access_rule", "Delete an unused access rule").status(204),
            delete_rule,
        )
}

fn target(user_id: &str) -> Value {
    json!({"target": {"user": {"id": user_id}}})
}

fn view(s: &Identity, r: &AccessRule) -> Value {
    json!({
        "id": r.id, "service": r.service, "path": r.path, "method": r.method,
        "links": s.link(&format!("/users/{}/access_rules/{}", r.user_id, r.id)),
    })
}

async fn list_rules(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    q: QueryMap,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:list_access_rules", &target(&id))?;
    s.existing_user(&id).await?;
    let items = s
        .list_access_rules(&id)
        .await?
        .iter()
        .map(|r| view(&s, r))
        .collect();
    json(
        StatusCode::OK,
        s.collection(
            "access_rules",
            &format!("/users/{id}/access_rules"),
            filter_list(items, &q.0, &["service", "path", "method"]),
        ),
    )
}

async fn get_rule(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, rule_id)): Path<(String, String)>,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:get_access_rule", &target(&id))?;
    let r = s.access_rule(&id, &rule_id).await?;
    json(StatusCode::OK, json!({"access_rule": view(&s, &r)}))
}

async fn delete_rule(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, rule_id)): Path<(String, String)>,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:delete_access_rule", &target(&id))?;
    s.delete_access_rule(&id, &rule_id).await?;
    no_content()
}
