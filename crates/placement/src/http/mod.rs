//! The Placement API over HTTP, mounted under `/placement`. Every answer carries the
//! negotiated `OpenStack-API-Version`; handlers extract (caller, microversion, body), call
//! one service method and render the view for that microversion.

mod allocations;
mod classes;
mod providers;
pub mod views;

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Request, State as AxState};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use ferrostack_common::api::{op, Api};
use ferrostack_common::AuthContext;
use serde_json::{json, Value};

use crate::error::{code, PlacementError};
use crate::microversion::{self, Microversion};
use crate::service::PlacementService;

pub type State = Arc<PlacementService>;
pub type HttpResult = Result<Response, PlacementError>;

/// The caller, the microversion it asked for, and the path prefix links are built under.
pub struct Ctx {
    pub auth: Arc<AuthContext>,
    pub mv: Microversion,
    pub prefix: String,
    /// `scheme://host` as the client addressed us, for absolute `Location` headers (as
    /// upstream's WSGI stack makes them; osc-placement follows them verbatim).
    pub origin: String,
}

impl Ctx {
    /// The absolute URL of `path` under this service.
    pub fn location(&self, path: &str) -> String {
        format!("{}{}{path}", self.origin, self.prefix)
    }

    /// Routes and parameters younger than the request's version do not exist for it.
    pub fn require(&self, minor: u16) -> Result<(), PlacementError> {
        if self.mv.at_least(minor) {
            Ok(())
        } else {
            Err(PlacementError::not_found(
                "The resource could not be found.",
            ))
        }
    }
}

fn prefix_of(parts: &Parts) -> String {
    let full = parts
        .extensions
        .get::<OriginalUri>()
        .map(|u| u.0.path().to_string())
        .unwrap_or_else(|| parts.uri.path().to_string());
    let inner = parts.uri.path();
    full.strip_suffix(inner)
        .unwrap_or("")
        .trim_end_matches('/')
        .to_string()
}

impl FromRequestParts<State> for Ctx {
    type Rejection = PlacementError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        let mv = microversion::negotiate(&parts.headers)?;
        let token = parts
            .headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(PlacementError::unauthorized)?;
        let auth = state
            .auth
            .authenticate(token)
            .await
            .ok_or_else(PlacementError::unauthorized)?;
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
        Ok(Ctx {
            auth,
            mv,
            prefix: prefix_of(parts),
            origin: format!("{scheme}://{host}"),
        })
    }
}

/// Query pairs in order (`member_of` and `required` may repeat).
pub struct Query(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = PlacementError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Query(
            form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        ))
    }
}

impl Query {
    /// The one value of `key`; 400 when it repeats.
    pub fn single(&self, key: &str) -> Result<Option<&str>, PlacementError> {
        let mut values = self.0.iter().filter(|(k, _)| k == key);
        let first = values.next().map(|(_, v)| v.as_str());
        if values.next().is_some() {
            return Err(PlacementError::bad_code(
                code::QUERY_DUPLICATE_KEY,
                format!("Query parameter {key:?} can only be specified once."),
            ));
        }
        Ok(first)
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// 400 for parameters outside `allowed`, as Placement's query schemas do.
    pub fn only(&self, allowed: &[&str]) -> Result<(), PlacementError> {
        for (k, _) in &self.0 {
            if !allowed.contains(&k.as_str()) {
                return Err(PlacementError::bad(format!(
                    "Invalid query string parameters: Additional properties are not allowed ('{k}' was unexpected)"
                )));
            }
        }
        Ok(())
    }
}

/// A JSON request body; Placement insists on `Content-Type: application/json`.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = PlacementError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let ctype = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let is_json = ctype.as_deref().is_some_and(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
        if !is_json {
            return Err(PlacementError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code::DEFAULT,
                format!(
                    "The media type {} is not supported, use application/json",
                    ctype.unwrap_or_else(|| "None".into())
                ),
            ));
        }
        let bytes = axum::body::to_bytes(req.into_body(), 8 << 20)
            .await
            .map_err(|_| {
                PlacementError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    code::DEFAULT,
                    "Request body too large",
                )
            })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| PlacementError::bad(format!("Malformed JSON: {e}")))
    }
}

pub fn reply(status: StatusCode, body: Value) -> HttpResult {
    Ok((status, axum::Json(body)).into_response())
}

pub fn no_content() -> HttpResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A GET answer from 1.15 on carries `last-modified` and `cache-control: no-cache`.
pub fn reply_cacheable(ctx: &Ctx, body: Value) -> HttpResult {
    let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
    if ctx.mv.at_least(15) {
        let now = httpdate(std::time::SystemTime::now());
        if let Ok(v) = HeaderValue::from_str(&now) {
            resp.headers_mut().insert(header::LAST_MODIFIED, v);
        }
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    Ok(resp)
}

/// [`reply_cacheable`] for a body already serialized.
pub fn reply_cacheable_text(ctx: &Ctx, body: String) -> HttpResult {
    let mut resp = reply_cacheable(ctx, Value::Null)?;
    *resp.body_mut() = axum::body::Body::from(body);
    resp.headers_mut().remove(header::CONTENT_LENGTH);
    Ok(resp)
}

/// An HTTP date (RFC 7231 IMF-fixdate).
fn httpdate(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let dt = chrono::DateTime::<chrono::Utc>::from_timestamp(secs, 0).unwrap_or_default();
    dt.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Adds the negotiated microversion to every answer (errors included), and answers 400/406
/// for a bad or unsupported version before routing.
async fn version_headers(req: Request, next: Next) -> Response {
    let mv = microversion::negotiate(req.headers());
    let mut resp = match &mv {
        Ok(_) => next.run(req).await,
        Err(e) => PlacementError::new(e.status, e.code, e.detail.clone()).into_response(),
    };
    let shown = mv.unwrap_or(microversion::MIN);
    if let Ok(v) = HeaderValue::from_str(&shown.header_value()) {
        resp.headers_mut().insert("openstack-api-version", v);
    }
    resp.headers_mut().insert(
        header::VARY,
        HeaderValue::from_static("openstack-api-version"),
    );
    resp
}

async fn root(AxState(_): AxState<State>) -> HttpResult {
    reply(
        StatusCode::OK,
        json!({"versions": [{
            "id": "v1.0",
            "max_version": microversion::MAX.to_string(),
            "min_version": microversion::MIN.to_string(),
            "status": "CURRENT",
            "links": [{"rel": "self", "href": ""}],
        }]}),
    )
}

pub fn api() -> Api<State> {
    Api::new()
        .get(
            "/",
            op("list_versions", "List Placement API versions").public(),
            root,
        )
        .merge(providers::api())
        .merge(classes::api())
        .merge(allocations::api())
}

pub fn openapi() -> Value {
    api().openapi(
        "ferrostack Placement API (OpenStack Placement compatible)",
        "1.39",
        "/placement",
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
            PlacementError::not_found("The resource could not be found.").into_response()
        })
        .layer(axum::middleware::from_fn(version_headers))
        .with_state(state)
}
