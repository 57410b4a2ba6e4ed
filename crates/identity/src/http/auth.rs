//! Version discovery and the `/v3/auth` API: issue, validate, check and revoke tokens, and
//! what a token may be used for (catalog, projects, domains, system).

use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::IntoResponse;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Value};

use super::{json, no_content, Caller, HttpResult, JsonBody, QueryMap, State};
use crate::error::IdentityError;
use crate::service::AuthRequest;

/// Keystone 2026.1 speaks Identity API v3.14.
pub const API_VERSION: &str = "v3.14";

pub fn routes() -> Api<State> {
    Api::new()
        .get(
            "/",
            op("list_versions", "List Identity API versions")
                .status(300)
                .public(),
            versions,
        )
        .get(
            "/v3",
            op("show_version", "Show Identity API v3").public(),
            version,
        )
        .post(
            "/v3/auth/tokens",
            op("issue_token", "Authenticate and issue a token")
                .status(201)
                .public(),
            issue_token,
        )
        .get(
            "/v3/auth/tokens",
            op("validate_token", "Validate a token (HEAD checks it)"),
            validate_token,
        )
        .delete(
            "/v3/auth/tokens",
            op("revoke_token", "Revoke a token").status(204),
            revoke_token,
        )
        .get(
            "/v3/auth/catalog",
            op("get_auth_catalog", "Catalog of the current token"),
            auth_catalog,
        )
        .get(
            "/v3/auth/projects",
            op(
                "get_auth_projects",
                "Projects the token's user may scope to",
            ),
            auth_projects,
        )
        .get(
            "/v3/auth/domains",
            op("get_auth_domains", "Domains the token's user may scope to"),
            auth_domains,
        )
        .get(
            "/v3/auth/system",
            op("get_auth_system", "System scopes the token's user may use"),
            auth_system,
        )
}

fn version_body(s: &State) -> Value {
    json!({
        "id": API_VERSION,
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{}/", s.v3_url())}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    })
}

async fn versions(AxState(s): AxState<State>) -> impl IntoResponse {
    let body = json!({"versions": {"values": [version_body(&s)]}});
    let location = format!("{}/", s.v3_url());
    (
        StatusCode::MULTIPLE_CHOICES,
        [("location", location)],
        axum::Json(body),
    )
}

async fn version(AxState(s): AxState<State>) -> impl IntoResponse {
    axum::Json(json!({"version": version_body(&s)}))
}

async fn issue_token(
    AxState(s): AxState<State>,
    q: QueryMap,
    JsonBody(body): JsonBody,
) -> HttpResult {
    let req = AuthRequest::parse(&body)?;
    let issued = s.issue_token(req).await?;
    let view = s
        .token_view(&issued.token, !q.0.contains_key("nocatalog"))
        .await?;
    let mut resp = (StatusCode::CREATED, axum::Json(view)).into_response();
    resp.headers_mut().insert(
        "x-subject-token",
        HeaderValue::from_str(&issued.id).map_err(|e| IdentityError::Internal(e.into()))?,
    );
    Ok(resp)
}

fn subject(headers: &HeaderMap) -> Result<String, IdentityError> {
    headers
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| {
            IdentityError::bad("Expecting to find X-Subject-Token in the request headers.")
        })
}

/// GET validates (and answers the token body); HEAD checks (no body).
async fn validate_token(
    AxState(s): AxState<State>,
    method: Method,
    caller: Caller,
    headers: HeaderMap,
    q: QueryMap,
) -> HttpResult {
    let subject = subject(&headers)?;
    let target = json!({"target": {"token": {"user_id": caller.ctx().user_id}}});
    let rule = if method == Method::HEAD {
        "identity:check_token"
    } else {
        "identity:validate_token"
    };
    // The token subject rule compares the caller with the subject token's owner, so a user
    // may always look at their own tokens; anyone else needs an admin or service role.
    let validated = s.validate(&subject).await?;
    let target = if validated.ctx.user_id == caller.ctx().user_id {
        target
    } else {
        json!({"target": {"token": {"user_id": validated.ctx.user_id}}})
    };
    s.authorize(caller.ctx(), rule, &target)?;
    let view = s
        .token_view(&validated, !q.0.contains_key("nocatalog"))
        .await?;
    let mut resp = (StatusCode::OK, axum::Json(view)).into_response();
    resp.headers_mut().insert(
        "x-subject-token",
        HeaderValue::from_str(&subject).map_err(|e| IdentityError::Internal(e.into()))?,
    );
    Ok(resp)
}

async fn revoke_token(
    AxState(s): AxState<State>,
    caller: Caller,
    headers: HeaderMap,
) -> HttpResult {
    let subject = subject(&headers)?;
    let validated = s.validate(&subject).await?;
    s.authorize(
        caller.ctx(),
        "identity:revoke_token",
        &json!({"target": {"token": {"user_id": validated.ctx.user_id}}}),
    )?;
    s.revoke_token(&subject).await?;
    no_content()
}

async fn auth_catalog(AxState(s): AxState<State>, caller: Caller) -> HttpResult {
    if caller.ctx().scope == ferrostack_common::Scope::Unscoped {
        return Err(IdentityError::ForbiddenMessage(
            "A scoped token is required to read the catalog.".into(),
        ));
    }
    let catalog = s.catalog_view(caller.ctx().project_id()).await?;
    json(
        StatusCode::OK,
        json!({"catalog": catalog, "links": s.link("/auth/catalog")}),
    )
}

async fn auth_projects(AxState(s): AxState<State>, caller: Caller) -> HttpResult {
    let projects = s.projects_for_user(&caller.ctx().user_id).await?;
    let items = projects
        .iter()
        .filter(|p| p.enabled)
        .map(|p| s.project_view(p))
        .collect();
    json(
        StatusCode::OK,
        s.collection("projects", "/auth/projects", items),
    )
}

async fn auth_domains(AxState(s): AxState<State>, caller: Caller) -> HttpResult {
    let domains = s.domains_for_user(&caller.ctx().user_id).await?;
    let items = domains
        .iter()
        .filter(|d| d.enabled)
        .map(|d| s.domain_view(d))
        .collect();
    json(
        StatusCode::OK,
        s.collection("domains", "/auth/domains", items),
    )
}

async fn auth_system(AxState(s): AxState<State>, caller: Caller) -> HttpResult {
    let roles = s
        .effective_roles(
            &caller.ctx().user_id,
            &crate::service::assignments::RoleTarget::System,
        )
        .await?;
    let system: Vec<Value> = if roles.is_empty() {
        vec![]
    } else {
        vec![json!({"all": true})]
    };
    json(
        StatusCode::OK,
        json!({"system": system, "links": s.link("/auth/system")}),
    )
}
