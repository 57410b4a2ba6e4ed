//! The layers every ferrostack listener wears, outermost first: panic containment (a bug
//! answers 500, never drops the connection), request ids (`x-openstack-request-id`, also on
//! every log line of the request), and Prometheus metrics per route and status, served at
//! `/metrics` together with `/healthcheck`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Response, StatusCode};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-openstack-request-id";

/// The request id of the current request, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Latency bucket bounds in seconds, from sub-millisecond token checks to slow uploads.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// (method, route template, status)
type SeriesKey = (String, String, u16);

/// Request counts and latency histograms keyed by (method, route template, status).
#[derive(Default, Clone)]
pub struct Metrics {
    series: Arc<Mutex<BTreeMap<SeriesKey, Series>>>,
}

impl Metrics {
    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let s = map
            .entry((method.to_string(), route.to_string(), status))
            .or_default();
        s.count += 1;
        s.sum += seconds;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                s.buckets[i] += 1;
            }
        }
    }

    /// The Prometheus text exposition of everything observed so far.
    pub fn render(&self) -> String {
        let map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        out.push_str("# HELP ferrostack_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE ferrostack_http_requests_total counter\n");
        for ((m, r, st), s) in map.iter() {
            out.push_str(&format!(
                "ferrostack_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{st}\"}} {}\n",
                s.count
            ));
        }
        out.push_str("# HELP ferrostack_http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE ferrostack_http_request_duration_seconds histogram\n");
        for ((m, r, st), s) in map.iter() {
            let labels = format!("method=\"{m}\",route=\"{r}\",status=\"{st}\"");
            for (i, bound) in BUCKETS.iter().enumerate() {
                out.push_str(&format!(
                    "ferrostack_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}\n",
                    s.buckets[i]
                ));
            }
            out.push_str(&format!(
                "ferrostack_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n",
                s.count
            ));
            out.push_str(&format!(
                "ferrostack_http_request_duration_seconds_sum{{{labels}}} {}\n",
                s.sum
            ));
            out.push_str(&format!(
                "ferrostack_http_request_duration_seconds_count{{{labels}}} {}\n",
                s.count
            ));
        }
        out
    }
}

/// Times each routed request under its route template (not the raw path, so ids do not
/// explode the label set). Installed as a route layer, where the template is known.
async fn record_metrics(
    State(metrics): State<Metrics>,
    request: Request,
    next: Next,
) -> Response<Body> {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(request).await;
    metrics.observe(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Gives every request an id, a tracing span carrying it, an access log line, and the
/// `x-openstack-request-id` response header.
async fn request_context(request: Request, next: Next) -> Response<Body> {
    let started = Instant::now();
    let id = format!("req-{}", uuid::Uuid::new_v4());
    let span = tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path());
    let mut request = request;
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| tracing::info!(status, elapsed_ms, "handled"));
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    response
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    // The panic itself is logged by the panic hook; the client gets no internals.
    tracing::error!("request handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [("content-type", "application/json")],
        r#"{"error": {"code": 500, "title": "Internal Server Error", "message": "An unexpected error prevented the server from fulfilling your request."}}"#,
    )
        .into_response()
}

/// Wraps the services' routes with the shared layers and adds `/healthcheck` and `/metrics`.
pub fn finish(router: Router, metrics: Metrics) -> Router {
    let m = metrics.clone();
    router
        .route("/healthcheck", get(|| async { "OK" }))
        .route("/metrics", get(move || async move { m.render() }))
        // Innermost, so a handler's panic is a 500 that the metrics and the access log see.
        .route_layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .route_layer(middleware::from_fn_with_state(metrics, record_metrics))
        .layer(middleware::from_fn(request_context))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::Path;
    use tower::ServiceExt;

    async fn get(app: &Router, path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let req = Request::builder().uri(path).body(Body::empty()).unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into(),
        )
    }

    #[tokio::test]
    async fn request_ids_metrics_and_panics() {
        let metrics = Metrics::default();
        let routes = Router::new()
            .route(
                "/things/{id}",
                get_route(|Path(id): Path<String>| async move { id }),
            )
            .route(
                "/boom",
                get_route(|| async { panic!("handler bug") as &'static str }),
            );
        let app = finish(routes, metrics);

        let (status, headers, body) = get(&app, "/things/abc").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "abc");
        let id = headers
            .get(REQUEST_ID_HEADER)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(id.starts_with("req-"));
        let (_, headers2, _) = get(&app, "/things/def").await;
        assert_ne!(
            headers2.get(REQUEST_ID_HEADER).unwrap().to_str().unwrap(),
            id,
            "ids are unique"
        );

        let (status, _, body) = get(&app, "/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            body.contains("\"code\": 500") && !body.contains("handler bug"),
            "{body}"
        );

        assert_eq!(get(&app, "/healthcheck").await.0, StatusCode::OK);
        let (_, _, text) = get(&app, "/metrics").await;
        assert!(text.contains(r#"ferrostack_http_requests_total{method="GET",route="/things/{id}",status="200"} 2"#), "{text}");
        assert!(text.contains(r#"route="/boom",status="500"}"#), "{text}");
        assert!(
            !text.contains("/things/abc"),
            "raw paths must not become labels"
        );
    }

    fn get_route<H: axum::handler::Handler<T, ()>, T: 'static>(
        h: H,
    ) -> axum::routing::MethodRouter<()> {
        axum::routing::get(h)
    }
}
