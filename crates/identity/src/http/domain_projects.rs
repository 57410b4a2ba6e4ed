//! The project face of domains on `/v3/projects` (`is_domain: true`): the project handlers
//! in [`super::resources`] hand over here when the body asks for a domain or the id is a
//! domain's. Policy is the project rules, with a target that has no domain and no parent.

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::{json, no_content, Caller, HttpResult};
use crate::error::IdentityError;
use crate::model::Domain;
use crate::service::Identity;

fn target(d: &Domain) -> Value {
    json!({"target": {"project": {"id": d.id, "domain_id": null, "parent_id": null, "is_domain": true}}})
}

async fn existing(s: &Identity, id: &str) -> Result<Domain, IdentityError> {
    s.store
        .domain(id)
        .await?
        .ok_or_else(|| IdentityError::not_found("project", id))
}

pub async fn create(s: &Identity, caller: &Caller, body: &Value) -> HttpResult {
    let d = s.prepare_domain_project(body)?;
    s.authorize(caller.ctx(), "identity:create_project", &target(&d))?;
    s.create_domain(&d).await?;
    json(
        StatusCode::CREATED,
        json!({"project": s.domain_project_view(&d)}),
    )
}

pub async fn get(s: &Identity, caller: &Caller, id: &str) -> HttpResult {
    let d = existing(s, id).await?;
    s.authorize(caller.ctx(), "identity:get_project", &target(&d))?;
    json(
        StatusCode::OK,
        json!({"project": s.domain_project_view(&d)}),
    )
}

pub async fn update(s: &Identity, caller: &Caller, id: &str, body: &Value) -> HttpResult {
    let d = existing(s, id).await?;
    s.authorize(caller.ctx(), "identity:update_project", &target(&d))?;
    let d = s.update_domain_project(id, body).await?;
    json(
        StatusCode::OK,
        json!({"project": s.domain_project_view(&d)}),
    )
}

pub async fn delete(s: &Identity, caller: &Caller, id: &str) -> HttpResult {
    let d = existing(s, id).await?;
    s.authorize(caller.ctx(), "identity:delete_project", &target(&d))?;
    s.delete_domain_project(&d).await?;
    no_content()
}

/// `GET /v3/projects?is_domain=true`: the domains, as projects. Callers held to one domain
/// (domain-scoped readers) see none: a domain is not inside any domain.
pub async fn list(s: &Identity, held_to_domain: bool) -> Result<Vec<Value>, IdentityError> {
    if held_to_domain {
        return Ok(vec![]);
    }
    Ok(s.store
        .domains()
        .await?
        .iter()
        .map(|d| s.domain_project_view(d))
        .collect())
}
