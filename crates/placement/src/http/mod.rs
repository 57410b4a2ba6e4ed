//! The Placement API over HTTP, mounted under `/placement`. Every answer carries the
//! negotiated `OpenStack-API-Version`; handlers extract (caller, microversion, body), call
//! one service method and render the view for that microversion.

mod allocations;
mod classes;
mod providers;
pub mod views;

use std::sync::Arc;

use axum::extract::{
    FromRequest, FromRequestParts, MatchedPath, OriginalUri, Request, State as AxState,
};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use ferrostack_common::api::{op, Api};
use ferrostack_common::http::RequestId;
use ferrostack_common::AuthContext;
use serde_json::{json, Value};

use crate::error::{code, error_body, ErrorParts, PlacementError};
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
        require_content_type(&parts.headers)?;
        if parts.method == Method::GET && answers_json(parts.uri.path()) {
            check_accept(&parts.headers)?;
        }
        // Before any body is read, so a route too young for the request's version answers
        // 404 rather than a complaint about its body (415, 400).
        if let Some(minor) = route_min_version(&parts.method, parts.uri.path()) {
            if !mv.at_least(minor) {
                return Err(PlacementError::not_found(
                    "The resource could not be found.",
                ));
            }
        }
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

/// The microversion the routes below `path` (relative to the service) appeared in, for the
/// routes younger than 1.0. Handlers check it too (`Ctx::require`); this earlier check
/// orders a 404 for an unknown route before the body's checks, as Placement does.
fn route_min_version(method: &Method, path: &str) -> Option<u16> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["resource_classes", ..] => Some(2),
        ["traits", ..] | ["resource_providers", _, "traits"] => Some(6),
        ["resource_providers", _, "aggregates"] => Some(1),
        ["allocations"] if method == Method::POST => Some(13),
        ["usages"] => Some(9),
        ["allocation_candidates"] => Some(10),
        ["reshaper"] => Some(30),
        _ => None,
    }
}

/// Whether a GET on `path` answers a JSON body (all but `GET /traits/{name}`, a 204), and so
/// insists that the client accept one.
fn answers_json(path: &str) -> bool {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    !matches!(segs.as_slice(), ["traits", _])
}

/// 406 unless the `Accept` header (when there is one) admits `application/json`.
fn check_accept(headers: &HeaderMap) -> Result<(), PlacementError> {
    let mut ranges = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .peekable();
    if ranges.peek().is_none() {
        return Ok(());
    }
    let mut shown = Vec::new();
    for range in ranges {
        shown.push(range);
        let mut params = range.split(';').map(str::trim);
        let media = params.next().unwrap_or("").to_ascii_lowercase();
        let q = params
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, v)| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q > 0.0 && matches!(media.as_str(), "application/json" | "application/*" | "*/*") {
            return Ok(());
        }
    }
    Err(PlacementError::new(
        StatusCode::NOT_ACCEPTABLE,
        code::DEFAULT,
        format!(
            "Only application/json is provided; the Accept header asks for {}.",
            shown.join(", ")
        ),
    ))
}

/// Whether the client asked for HTML and accepts no JSON (`Accept: text/html`): its errors
/// are then an HTML page, as upstream's.
fn prefers_html(headers: &HeaderMap) -> bool {
    let accept: Vec<String> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|r| {
            r.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .collect();
    accept.iter().any(|m| m == "text/html")
        && !accept
            .iter()
            .any(|m| matches!(m.as_str(), "application/json" | "application/*" | "*/*"))
}

/// An error as an HTML page (the detail escaped).
fn html_error(status: StatusCode, detail: &str) -> String {
    let escaped = detail
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    format!("<html>\n <head>\n  <title>{title}</title>\n </head>\n <body>\n  <h1>{title}</h1>\n  {escaped}<br /><br />\n </body>\n</html>")
}

/// A request with a body (a non-zero `Content-Length`) must say what the body is: 400 when
/// `Content-Type` is missing (a wrong one is the body extractor's 415).
fn require_content_type(headers: &HeaderMap) -> Result<(), PlacementError> {
    let Some(len) = headers.get(header::CONTENT_LENGTH) else {
        return Ok(());
    };
    let len: u64 = len
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            PlacementError::bad("Bad request: content-length header must be an integer")
        })?;
    let has_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().is_empty());
    if len > 0 && !has_type {
        return Err(PlacementError::bad(
            "Bad request: content-type header required when the request has a body (content-length is set)",
        ));
    }
    Ok(())
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

/// A 200 answer that, from 1.15 on, carries `last-modified` and `cache-control: no-cache`
/// (GETs, and the PUTs and POSTs that answer the resource as upstream marks them).
pub fn reply_cacheable(ctx: &Ctx, body: Value) -> HttpResult {
    Ok(cacheable(
        ctx.mv,
        (StatusCode::OK, axum::Json(body)).into_response(),
    ))
}

/// Adds the 1.15 cache headers to any answer (201 and 204 ones included) at `mv`.
pub fn cacheable(mv: Microversion, mut resp: Response) -> Response {
    if mv.at_least(15) {
        let now = httpdate(std::time::SystemTime::now());
        if let Ok(v) = HeaderValue::from_str(&now) {
            resp.headers_mut().insert(header::LAST_MODIFIED, v);
        }
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    resp
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

/// The request's microversion (the 400/406 for a bad one is answered before routing).
impl<S: Send + Sync> FromRequestParts<S> for Microversion {
    type Rejection = PlacementError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        microversion::negotiate(&parts.headers)
    }
}

/// Each route template's methods as a 405's `Allow` lists them (`GET, POST`; HEAD, which
/// every GET route also answers, left out as upstream does).
type AllowTable = Arc<std::collections::HashMap<String, String>>;

fn allow_table(api: &Api<State>) -> AllowTable {
    let mut table: std::collections::HashMap<String, Vec<String>> = Default::default();
    for op in api.operations() {
        let methods = table.entry(op.path.clone()).or_default();
        let m = op.method.to_ascii_uppercase();
        if m != "HEAD" && !methods.contains(&m) {
            methods.push(m);
        }
    }
    Arc::new(
        table
            .into_iter()
            .map(|(path, methods)| (path, methods.join(", ")))
            .collect(),
    )
}

/// Adds the negotiated microversion to every answer (errors included), answers 400/406 for
/// a bad or unsupported version before routing, gives the router's bare 405 Placement's
/// error body and `Allow` list, and fills every error body's `request_id`.
async fn version_headers(
    AxState(allow): AxState<AllowTable>,
    req: Request,
    next: Next,
) -> Response {
    let mv = microversion::negotiate(req.headers());
    let request_id = req.extensions().get::<RequestId>().cloned();
    let method = req.method().clone();
    let wants_html = prefers_html(req.headers());
    // The route template, relative to where the service is mounted (for 405's `Allow`).
    let route = req.extensions().get::<MatchedPath>().map(|m| {
        let full = req
            .extensions()
            .get::<OriginalUri>()
            .map(|u| u.0.path())
            .unwrap_or_else(|| req.uri().path());
        let inner = req.uri().path();
        let mount = full
            .strip_suffix(inner)
            .or_else(|| full.strip_suffix(inner.trim_end_matches('/')))
            .unwrap_or("");
        let inner = m.as_str().strip_prefix(mount).unwrap_or(m.as_str());
        if inner.is_empty() {
            "/".to_string()
        } else {
            inner.to_string()
        }
    });
    let mut resp = match &mv {
        Ok(_) => next.run(req).await,
        Err(e) => PlacementError::new(e.status, e.code, e.detail.clone()).into_response(),
    };
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && resp.extensions().get::<ErrorParts>().is_none()
    {
        // The router's own 405 (it adds its `Allow` only outside this layer, when none is set).
        let allow = route.as_deref().and_then(|r| allow.get(r));
        resp = method_not_allowed(&method, allow.map(String::as_str));
    }
    if let Some(parts) = resp.extensions().get::<ErrorParts>().cloned() {
        let status = resp.status();
        let text = if wants_html {
            // As upstream (webob) answers a client that asks for HTML and not JSON.
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=UTF-8"),
            );
            html_error(status, &parts.detail)
        } else {
            let id = request_id.as_ref().map(|RequestId(id)| id.as_str());
            error_body(status, parts.code, &parts.detail, id).to_string()
        };
        *resp.body_mut() = axum::body::Body::from(text);
        resp.headers_mut().remove(header::CONTENT_LENGTH);
    }
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

/// Placement's 405: its error body, and the route's methods in `Allow` when known.
fn method_not_allowed(method: &Method, allow: Option<&str>) -> Response {
    let mut resp = PlacementError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        code::DEFAULT,
        format!("The method {method} is not allowed for this resource."),
    )
    .into_response();
    if let Some(v) = allow.and_then(|a| HeaderValue::from_str(a).ok()) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    resp
}

async fn root(mv: Microversion) -> HttpResult {
    let body = json!({"versions": [{
        "id": "v1.0",
        "max_version": microversion::MAX.to_string(),
        "min_version": microversion::MIN.to_string(),
        "status": "CURRENT",
        "links": [{"rel": "self", "href": ""}],
    }]});
    Ok(cacheable(
        mv,
        (StatusCode::OK, axum::Json(body)).into_response(),
    ))
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
    let api = api();
    let allow = allow_table(&api);
    let (router, _) = api.into_parts();
    let doc = openapi();
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || async move { axum::Json(doc) }),
        )
        .fallback(|| async {
            PlacementError::not_found("The resource could not be found.").into_response()
        })
        .layer(axum::middleware::from_fn_with_state(allow, version_headers))
        .with_state(state)
}
