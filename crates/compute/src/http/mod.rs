//! The Compute API over HTTP, mounted under `/compute` (`/compute/v2.1/...`). Every answer
//! carries the negotiated microversion in both of Nova's headers; handlers extract (caller,
//! microversion, body), call one service method and render the view for that version.

mod action_events;
pub mod agents_api;
pub mod consoles;
mod extras;
mod flavors;
mod hosts;
mod images;
mod interfaces;
mod ips;
mod keypairs;
pub mod metadata_api;
mod migrations;
mod params;
mod security_groups;
mod server_actions;
mod server_groups;
mod servers;
mod usage;
pub mod views;

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use ferrostack_common::api::{op, Api};
use ferrostack_common::http::RequestId;
use ferrostack_common::AuthContext;
use serde_json::{json, Value};

use crate::error::ComputeError;
use crate::microversion::{self, Microversion};
use crate::service::ComputeService;

pub type State = Arc<ComputeService>;
pub type HttpResult = Result<Response, ComputeError>;

/// The caller, the microversion, the request id and where links point.
pub struct Ctx {
    pub auth: Arc<AuthContext>,
    pub mv: Microversion,
    pub request_id: String,
    /// `scheme://host/compute`, for `links`.
    pub base: String,
}

impl Ctx {
    /// `self` and `bookmark` links of a resource under `collection`.
    pub fn links(&self, collection: &str, id: &str) -> Value {
        json!([
            {"rel": "self", "href": format!("{}/v2.1/{collection}/{id}", self.base)},
            {"rel": "bookmark", "href": format!("{}/{collection}/{id}", self.base)},
        ])
    }

    /// Routes and fields younger than the request's version do not exist for it.
    pub fn require(&self, minor: u16) -> Result<(), ComputeError> {
        if self.mv.at_least(minor) {
            Ok(())
        } else {
            Err(ComputeError::not_found("The resource could not be found."))
        }
    }

    pub fn is_admin(&self, s: &ComputeService) -> bool {
        s.is_admin(&self.auth)
    }
}

fn base_of(parts: &Parts) -> String {
    let full = parts
        .extensions
        .get::<OriginalUri>()
        .map(|u| u.0.path().to_string())
        .unwrap_or_else(|| parts.uri.path().to_string());
    let inner = parts.uri.path();
    let prefix = full.strip_suffix(inner).unwrap_or("").trim_end_matches('/');
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let scheme = parts
        .headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("http");
    format!("{scheme}://{host}{prefix}")
}

impl FromRequestParts<State> for Ctx {
    type Rejection = ComputeError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        let mv = microversion::negotiate(&parts.headers)?;
        let token = parts
            .headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(ComputeError::unauthorized)?;
        let auth = state
            .auth
            .authenticate(token)
            .await
            .ok_or_else(ComputeError::unauthorized)?;
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_else(|| format!("req-{}", uuid::Uuid::new_v4()));
        Ok(Ctx {
            auth,
            mv,
            request_id,
            base: base_of(parts),
        })
    }
}

/// Query pairs in order.
pub struct Query(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ComputeError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Query(
            form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        ))
    }
}

impl Query {
    /// The last value of `key` (Nova reads repeated parameters that way for most filters).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `limit` as Nova validates it (a non-negative integer).
    pub fn limit(&self) -> Result<Option<usize>, ComputeError> {
        match self.get("limit") {
            None => Ok(None),
            Some(v) => v.parse::<usize>().map(Some).map_err(|_| {
                ComputeError::bad(format!(
                    "Invalid input for query parameters limit. Value: {v}. '{v}' does not match '^[0-9]*$'"
                ))
            }),
        }
    }
}

/// A JSON request body; a malformed one is Nova's 400.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ComputeError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .map_err(|_| {
                ComputeError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request is too large.")
            })?;
        if bytes.is_empty() {
            return Err(ComputeError::bad("The request body is empty."));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|_| ComputeError::bad("Malformed request body"))
    }
}

impl JsonBody {
    /// The object under `key` (`{"server": {...}}`), or Nova's 400.
    pub fn object(&self, key: &str) -> Result<&serde_json::Map<String, Value>, ComputeError> {
        self.0.get(key).and_then(Value::as_object).ok_or_else(|| {
            ComputeError::bad(format!(
                "Invalid input for field/attribute {key}. Value: {}. '{key}' is a required property",
                self.0
            ))
        })
    }
}

pub fn reply(status: StatusCode, body: Value) -> HttpResult {
    Ok((status, axum::Json(body)).into_response())
}

pub fn accepted() -> HttpResult {
    Ok(StatusCode::ACCEPTED.into_response())
}

pub fn no_content() -> HttpResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Stamps the negotiated microversion on every answer, errors included; a bad version is
/// answered here before routing.
async fn version_headers(req: Request, next: Next) -> Response {
    let mv = microversion::negotiate(req.headers());
    // Nova answers its request id under its own name too (`x-compute-request-id`), and
    // clients read it there (Tempest's instance action tests look actions up by it).
    let request_id = req
        .extensions()
        .get::<ferrostack_common::http::RequestId>()
        .map(|r| r.0.clone());
    let mut resp = match &mv {
        Ok(_) => next.run(req).await,
        Err(e) => ComputeError::new(e.status, e.message.clone()).into_response(),
    };
    microversion::stamp(resp.headers_mut(), mv.unwrap_or(microversion::MIN));
    if let Some(v) = request_id.and_then(|id| axum::http::HeaderValue::from_str(&id).ok()) {
        resp.headers_mut().insert("x-compute-request-id", v);
    }
    resp
}

fn version_doc(base: &str) -> Value {
    json!({
        "id": "v2.1",
        "status": "CURRENT",
        "version": microversion::MAX.to_string(),
        "min_version": microversion::MIN.to_string(),
        "updated": "2013-07-23T11:33:21Z",
        "links": [
            {"rel": "self", "href": format!("{base}/v2.1/")},
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
        ],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}],
    })
}

async fn versions(req: Request) -> HttpResult {
    let (parts, _) = req.into_parts();
    let base = base_of(&parts);
    let mut v21 = version_doc(&base);
    v21.as_object_mut().map(|m| m.remove("media-types"));
    let body = json!({"versions": [
        {
            "id": "v2.0",
            "status": "SUPPORTED",
            "version": "",
            "min_version": "",
            "updated": "2011-01-21T11:33:21Z",
            "links": [{"rel": "self", "href": format!("{base}/v2/")}],
        },
        v21,
    ]});
    reply(StatusCode::OK, body)
}

async fn version(req: Request) -> HttpResult {
    let (parts, _) = req.into_parts();
    reply(
        StatusCode::OK,
        json!({"version": version_doc(&base_of(&parts))}),
    )
}

pub fn api() -> Api<State> {
    Api::new()
        .get(
            "/",
            op("list_versions", "List API versions").public(),
            versions,
        )
        .get(
            "/v2.1",
            op("show_version", "Show the v2.1 API version").public(),
            version,
        )
        .get(
            "/v2.1/",
            op("show_version_slash", "Show the v2.1 API version").public(),
            version,
        )
        .merge(flavors::api())
        .merge(keypairs::api())
        .merge(servers::api())
        .merge(hosts::api())
        .merge(extras::api())
        .merge(server_groups::api())
        .merge(usage::api())
        .merge(images::api())
        .merge(ips::api())
        .merge(interfaces::api())
        .merge(migrations::api())
        .merge(consoles::api())
        .merge(security_groups::api())
}

pub fn openapi() -> Value {
    api().openapi(
        "ferrostack Compute API (OpenStack Nova v2.1 compatible)",
        &microversion::MAX.to_string(),
        "/compute",
    )
}

pub fn router(state: State) -> Router {
    let (router, _) = api().into_parts();
    let doc = openapi();
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || async move { axum::Json(doc) }),
        )
        .fallback(|| async {
            ComputeError::not_found("The resource could not be found.").into_response()
        })
        .layer(axum::middleware::from_fn(version_headers))
        .with_state(state)
}
