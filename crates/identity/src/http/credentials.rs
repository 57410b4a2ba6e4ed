//! `/v3/credentials` (CRUD with `user_id` and `type` filters) and the EC2 credentials of a user
//! under `/v3/users/{user_id}/credentials/OS-EC2`.
//!
//! Listing follows Keystone: a system-scoped reader sees every credential, anyone else only
//! those the `identity:get_credential` rule lets them read (their own, unless admin).

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Value};

use super::views::filter_list;
use super::{json, no_content, Caller, HttpResult, JsonBody, QueryMap, State};
use crate::model::Credential;

pub fn routes() -> Api<State> {
    Api::new()
        .get(
            "/v3/credentials",
            op("list_credentials", "List credentials"),
            list_credentials,
        )
        .post(
            "/v3/credentials",
            op("create_credential", "Create a credential").status(201),
            create_credential,
        )
        .get(
            "/v3/credentials/{id}",
            op("get_credential", "Show a credential"),
            get_credential,
        )
        .patch(
            "/v3/credentials/{id}",
            op("update_credential", "Update a credential"),
            update_credential,
        )
        .delete(
            "/v3/credentials/{id}",
            op("delete_credential", "Delete a credential").status(204),
            delete_credential,
        )
        .get(
            "/v3/users/{id}/credentials/OS-EC2",
            op("ec2_list_credentials", "List a user's EC2 credentials"),
            list_ec2,
        )
        .post(
            "/v3/users/{id}/credentials/OS-EC2",
            op("ec2_create_credential", "Create an EC2 credential").status(201),
            create_ec2,
        )
        .get(
            "/v3/users/{id}/credentials/OS-EC2/{access}",
            op("ec2_get_credential", "Show an EC2 credential"),
            get_ec2,
        )
        .delete(
            "/v3/users/{id}/credentials/OS-EC2/{access}",
            op("ec2_delete_credential", "Delete an EC2 credential").status(204),
            delete_ec2,
        )
}

fn target(c: &Credential) -> Value {
    json!({"target": {"credential": {"id": c.id, "user_id": c.user_id, "project_id": c.project_id}}})
}

async fn list_credentials(AxState(s): AxState<State>, caller: Caller, q: QueryMap) -> HttpResult {
    let ctx = caller.ctx();
    let want_user = q.get("user_id").unwrap_or(&ctx.user_id).to_string();
    s.authorize(
        ctx,
        "identity:list_credentials",
        &json!({"target": {"credential": {"user_id": want_user}}}),
    )?;
    let items = s
        .list_credentials(q.get("user_id"))
        .await?
        .iter()
        .filter(|c| {
            ctx.is_system()
                || s.authorize(ctx, "identity:get_credential", &target(c))
                    .is_ok()
        })
        .map(|c| s.credential_view(c))
        .collect();
    json(
        StatusCode::OK,
        s.collection(
            "credentials",
            "/credentials",
            filter_list(items, &q.0, &["user_id", "type"]),
        ),
    )
}

async fn create_credential(
    AxState(s): AxState<State>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> HttpResult {
    let c = s.prepare_credential(caller.ctx(), &body).await?;
    s.authorize(caller.ctx(), "identity:create_credential", &target(&c))?;
    s.create_credential(&c).await?;
    json(
        StatusCode::CREATED,
        json!({"credential": s.credential_view(&c)}),
    )
}

async fn get_credential(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let c = s.existing_credential(&id).await?;
    s.authorize(caller.ctx(), "identity:get_credential", &target(&c))?;
    json(StatusCode::OK, json!({"credential": s.credential_view(&c)}))
}

async fn update_credential(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    let c = s.existing_credential(&id).await?;
    s.authorize(caller.ctx(), "identity:update_credential", &target(&c))?;
    let c = s.update_credential(c, &body).await?;
    json(StatusCode::OK, json!({"credential": s.credential_view(&c)}))
}

async fn delete_credential(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let c = s.existing_credential(&id).await?;
    s.authorize(caller.ctx(), "identity:delete_credential", &target(&c))?;
    s.delete_credential(&c.id).await?;
    no_content()
}

fn owner(user_id: &str) -> Value {
    json!({"user_id": user_id, "target": {"credential": {"user_id": user_id}}})
}

async fn list_ec2(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:ec2_list_credentials", &owner(&id))?;
    let items = s
        .ec2_credentials(&id)
        .await?
        .iter()
        .map(|c| s.ec2_view(c))
        .collect();
    json(
        StatusCode::OK,
        s.collection(
            "credentials",
            &format!("/users/{id}/credentials/OS-EC2"),
            items,
        ),
    )
}

async fn create_ec2(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:ec2_create_credential", &owner(&id))?;
    let c = s.create_ec2_credential(caller.ctx(), &id, &body).await?;
    json(StatusCode::CREATED, json!({"credential": s.ec2_view(&c)}))
}

async fn get_ec2(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, access)): Path<(String, String)>,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:ec2_get_credential", &owner(&id))?;
    let c = s.ec2_credential(&id, &access).await?;
    json(StatusCode::OK, json!({"credential": s.ec2_view(&c)}))
}

async fn delete_ec2(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, access)): Path<(String, String)>,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:ec2_delete_credential", &owner(&id))?;
    let c = s.ec2_credential(&id, &access).await?;
    s.delete_credential(&c.id).await?;
    no_content()
}
