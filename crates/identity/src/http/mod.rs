//! The Identity API over HTTP (axum), mounted under `/identity` by the binary.
//!
//! Handlers do five things: extract (token, body, query), load the target, authorize against
//! the policy, call one service method, render the view. Extractors turn every client mistake
//! into Keystone's error body: a missing or bad token is 401, a body that is not JSON is 400,
//! a body over `max_request_body_size` is 413.

pub mod access_rules;
pub mod assignments;
pub mod auth;
pub mod catalog;
pub mod credentials;
pub mod domain_configs;
pub mod domain_projects;
pub mod endpoint_groups;
pub mod ep_filter;
pub mod limits;
pub mod oauth_consumers;
pub mod policies;
pub mod resources;
pub mod trusts;
pub mod views;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use ferrostack_common::api::Api;
use ferrostack_common::AuthContext;
use serde_json::Value;

use crate::error::IdentityError;
use crate::service::Identity;

pub type State = Arc<Identity>;
pub type HttpResult = Result<Response, IdentityError>;

/// The authenticated caller, from `X-Auth-Token`.
pub struct Caller(pub Arc<crate::service::ValidatedToken>);

impl Caller {
    pub fn ctx(&self) -> &AuthContext {
        &self.0.ctx
    }
}

impl FromRequestParts<State> for Caller {
    type Rejection = IdentityError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(IdentityError::unauthenticated)?;
        match state.validate(token).await {
            Ok(v) => Ok(Caller(v)),
            Err(IdentityError::Internal(e)) => Err(IdentityError::Internal(e)),
            Err(_) => Err(IdentityError::unauthenticated()),
        }
    }
}

/// A JSON request body, size-limited; an empty body reads as `null`.
pub struct JsonBody(pub Value);

impl FromRequest<State> for JsonBody {
    type Rejection = IdentityError;

    async fn from_request(req: Request, state: &State) -> Result<Self, Self::Rejection> {
        let limit = state.config.max_request_body_size;
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| IdentityError::TooLarge)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(Value::Null));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| IdentityError::bad(format!("The request body is not valid JSON: {e}.")))
    }
}

/// Query parameters as a map (repeated keys keep the last value).
pub struct QueryMap(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = IdentityError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        Ok(QueryMap(
            form_urlencoded::parse(q.as_bytes()).into_owned().collect(),
        ))
    }
}

impl QueryMap {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Keystone's reading of boolean flags: present and not "0"/"false" means true.
    pub fn flag(&self, key: &str) -> bool {
        match self.0.get(key) {
            Some(v) => !matches!(
                v.to_ascii_lowercase().as_str(),
                "0" | "false" | "no" | "off"
            ),
            None => false,
        }
    }
}

pub fn json(status: StatusCode, body: Value) -> HttpResult {
    Ok((status, axum::Json(body)).into_response())
}

pub fn no_content() -> HttpResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Every Identity operation, declared once for the router and the OpenAPI document.
pub fn api() -> Api<State> {
    Api::new()
        .merge(auth::routes())
        .merge(resources::routes())
        .merge(domain_configs::routes())
        .merge(assignments::routes())
        .merge(catalog::routes())
        .merge(credentials::routes())
        .merge(trusts::routes())
        .merge(access_rules::routes())
        .merge(endpoint_groups::routes())
        .merge(ep_filter::routes())
        .merge(limits::routes())
        .merge(policies::routes())
        .merge(oauth_consumers::routes())
}

/// All Identity routes, relative to the service root (`/identity`), plus the service's
/// OpenAPI document at `/openapi.json`.
pub fn router(identity: State) -> Router {
    let (routes, _) = api().into_parts();
    let doc = openapi();
    routes
        .route(
            "/openapi.json",
            axum::routing::get(move || async move { axum::Json(doc) }),
        )
        .fallback(|| async {
            IdentityError::not_found("resource", "the requested URL").into_response()
        })
        .with_state(identity)
}

/// The Identity API's OpenAPI document, generated from [`api`].
pub fn openapi() -> Value {
    api().openapi(
        "ferrostack Identity API (Keystone v3 compatible)",
        auth::API_VERSION,
        "/identity",
    )
}
