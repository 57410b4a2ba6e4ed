//! `/v3/OS-TRUST/trusts`: create, list (by trustor or trustee), show and delete trusts, and
//! read the roles a trust delegates. Trusts cannot be updated, as in Keystone.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use ferrostack_common::time::iso_micros;
use serde_json::{json, Value};

use super::{json, no_content, Caller, HttpResult, JsonBody, QueryMap, State};
use crate::error::IdentityError;
use crate::model::Trust;
use crate::service::Identity;

pub fn routes() -> Api<State> {
    Api::new()
        .get(
            "/v3/OS-TRUST/trusts",
            op("list_trusts", "List trusts"),
            list_trusts,
        )
        .post(
            "/v3/OS-TRUST/trusts",
            op("create_trust", "Create a trust").status(201),
            create_trust,
        )
        .get(
            "/v3/OS-TRUST/trusts/{id}",
            op("get_trust", "Show a trust"),
            get_trust,
        )
        .delete(
            "/v3/OS-TRUST/trusts/{id}",
            op("delete_trust", "Delete a trust").status(204),
            delete_trust,
        )
        .get(
            "/v3/OS-TRUST/trusts/{id}/roles",
            op("list_roles_for_trust", "List the roles a trust delegates"),
            trust_roles,
        )
        .get(
            "/v3/OS-TRUST/trusts/{id}/roles/{role_id}",
            op(
                "get_role_for_trust",
                "Show (HEAD: check) a role the trust delegates",
            ),
            trust_role,
        )
}

fn target(t: &Trust) -> Value {
    json!({"target": {"trust": {"id": t.id, "trustor_user_id": t.trustor_user_id, "trustee_user_id": t.trustee_user_id}}})
}

fn role_view(s: &Identity, r: &crate::model::Role) -> Value {
    json!({"id": r.id, "name": r.name, "domain_id": r.domain_id, "links": s.link(&format!("/roles/{}", r.id))})
}

async fn trust_view(s: &Identity, t: &Trust) -> Result<Value, IdentityError> {
    let roles: Vec<Value> = s
        .trust_roles(t)
        .await?
        .iter()
        .map(|r| role_view(s, r))
        .collect();
    let path = format!("/OS-TRUST/trusts/{}", t.id);
    Ok(json!({
        "id": t.id, "trustor_user_id": t.trustor_user_id, "trustee_user_id": t.trustee_user_id,
        "project_id": t.project_id, "impersonation": t.impersonation,
        "expires_at": t.expires_at.map(iso_micros), "remaining_uses": t.remaining_uses,
        "allow_redelegation": false, "redelegation_count": t.redelegation_count,
        "redelegated_trust_id": null, "deleted_at": null,
        "roles": roles,
        "roles_links": {"self": format!("{}{path}/roles", s.v3_url()), "previous": null, "next": null},
        "links": s.link(&path),
    }))
}

async fn list_trusts(AxState(s): AxState<State>, caller: Caller, q: QueryMap) -> HttpResult {
    let ctx = caller.ctx();
    let trustor = q.get("trustor_user_id");
    let trustee = q.get("trustee_user_id");
    if let Some(u) = trustor {
        s.authorize(
            ctx,
            "identity:list_trusts_for_trustor",
            &json!({"target": {"trust": {"trustor_user_id": u}}}),
        )?;
    }
    if let Some(u) = trustee {
        s.authorize(
            ctx,
            "identity:list_trusts_for_trustee",
            &json!({"target": {"trust": {"trustee_user_id": u}}}),
        )?;
    }
    if trustor.is_none() && trustee.is_none() {
        s.authorize(ctx, "identity:list_trusts", &json!({}))?;
    }
    let mut items = Vec::new();
    for t in s.list_trusts(trustor, trustee).await? {
        items.push(trust_view(&s, &t).await?);
    }
    json(
        StatusCode::OK,
        s.collection("trusts", "/OS-TRUST/trusts", items),
    )
}

async fn create_trust(
    AxState(s): AxState<State>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> HttpResult {
    let t = s.prepare_trust(caller.ctx(), &body).await?;
    s.authorize(
        caller.ctx(),
        "identity:create_trust",
        &json!({"trust": {"trustor_user_id": t.trustor_user_id}}),
    )?;
    s.create_trust(&t).await?;
    json(
        StatusCode::CREATED,
        json!({"trust": trust_view(&s, &t).await?}),
    )
}

async fn get_trust(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let t = s.existing_trust(&id).await?;
    s.authorize(caller.ctx(), "identity:get_trust", &target(&t))?;
    json(StatusCode::OK, json!({"trust": trust_view(&s, &t).await?}))
}

async fn delete_trust(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let t = s
        .store
        .trust(&id)
        .await?
        .ok_or_else(|| IdentityError::not_found("trust", &id))?;
    s.authorize(caller.ctx(), "identity:delete_trust", &target(&t))?;
    s.delete_trust(&t.id).await?;
    no_content()
}

async fn trust_roles(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let t = s.existing_trust(&id).await?;
    s.authorize(caller.ctx(), "identity:list_roles_for_trust", &target(&t))?;
    let roles: Vec<Value> = s
        .trust_roles(&t)
        .await?
        .iter()
        .map(|r| role_view(&s, r))
        .collect();
    json(
        StatusCode::OK,
        s.collection("roles", &format!("/OS-TRUST/trusts/{id}/roles"), roles),
    )
}

async fn trust_role(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, role_id)): Path<(String, String)>,
) -> HttpResult {
    let t = s.existing_trust(&id).await?;
    s.authorize(caller.ctx(), "identity:get_role_for_trust", &target(&t))?;
    let role = s
        .trust_roles(&t)
        .await?
        .into_iter()
        .find(|r| r.id == role_id)
        .ok_or_else(|| IdentityError::not_found("role", &role_id))?;
    json(StatusCode::OK, json!({"role": role_view(&s, &role)}))
}
