//! The compute host protocol over HTTP, for agents in other processes than the control
//! plane (`ferrostack compute-agent`):
//!
//! - [`HttpHostAgent`]: the control plane's client of an agent, a [`HostAgent`] whose every
//!   call is one `POST /v1/host` of a [`HostCall`], and whose serial consoles are an HTTP
//!   upgrade of `GET /v1/console/{uuid}`; [`agent_router`] is the agent's side.
//! - [`HttpControlPlane`]: the agent's client of the control plane, a [`ControlPlane`] over
//!   the routes of [`crate::http::agents_api`] (mounted at [`CONTROL_PREFIX`]).
//!
//! Both directions present the same shared secret (`Authorization: Bearer`), as Nova's
//! services share their message queue's credentials. A network failure is
//! [`AgentError::Transient`], so the workflow step retries it: every call is idempotent.
//! Image data travels as streamed bodies, never whole in memory.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::host::{
    presented_secret, secret_matches, AgentError, BoxFut, ControlPlane, GuestSpec, HostAgent,
    HostCall, HostReport, PowerOp, SerialStream,
};

/// Where the control plane serves its agents' routes.
pub const CONTROL_PREFIX: &str = "/compute-internal/v1";
/// How long one call may take: a snapshot upload or an image download can take minutes.
const CALL_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .build()
        .expect("an HTTP client without TLS always builds")
}

fn unreachable(what: &str, e: reqwest::Error) -> AgentError {
    AgentError::Transient(format!("{what}: {e}"))
}

/// Sends `body` to `url` and returns the JSON answer (`null` for none).
async fn post_json(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    body: &impl serde::Serialize,
) -> Result<Value, AgentError> {
    let resp = client
        .post(url)
        .bearer_auth(secret)
        .json(body)
        .send()
        .await
        .map_err(|e| unreachable(url, e))?;
    answer(resp, url).await
}

async fn answer(resp: reqwest::Response, url: &str) -> Result<Value, AgentError> {
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(|e| unreachable(url, e))?;
    if !(200..300).contains(&status) {
        return Err(AgentError::from_wire(status, &bytes));
    }
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| AgentError::Transient(format!("{url}: unreadable answer: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, AgentError> {
    serde_json::from_value(v).map_err(|e| AgentError::Failed(format!("unexpected answer: {e}")))
}

/// The answer of a server side of the protocol to an error.
pub fn error_response(e: &AgentError) -> Response {
    let (status, wire) = e.to_wire();
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(wire)).into_response()
}

/// The refusal of a request without the shared secret.
pub fn refused() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"kind": "failed", "message": "the shared secret is missing or wrong"})),
    )
        .into_response()
}

/// The control plane's handle on a remote agent.
pub struct HttpHostAgent {
    url: String,
    secret: String,
    client: reqwest::Client,
}

impl HttpHostAgent {
    /// `base` is the agent's URL (`http://host:port`).
    pub fn new(base: &str, secret: &str) -> HttpHostAgent {
        HttpHostAgent {
            url: format!("{}/v1/host", base.trim_end_matches('/')),
            secret: secret.to_string(),
            client: client(),
        }
    }

    async fn call(&self, call: HostCall) -> Result<Value, AgentError> {
        post_json(&self.client, &self.url, &self.secret, &call).await
    }

    fn unit<'a>(&'a self, call: HostCall) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move { self.call(call).await.map(|_| ()) })
    }
}

impl HostAgent for HttpHostAgent {
    fn ensure<'a>(&'a self, spec: &'a GuestSpec) -> BoxFut<'a, Result<(), AgentError>> {
        self.unit(HostCall::Ensure { spec: spec.clone() })
    }

    fn destroy<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), AgentError>> {
        self.unit(HostCall::Destroy { uuid: uuid.into() })
    }

    fn power<'a>(&'a self, uuid: &'a str, op: PowerOp) -> BoxFut<'a, Result<(), AgentError>> {
        self.unit(HostCall::Power {
            uuid: uuid.into(),
            action: op,
        })
    }

    fn power_state<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<Option<i64>, AgentError>> {
        Box::pin(async move {
            decode(
                self.call(HostCall::PowerState { uuid: uuid.into() })
                    .await?,
            )
        })
    }

    fn console<'a>(
        &'a self,
        uuid: &'a str,
        max_bytes: usize,
    ) -> BoxFut<'a, Result<String, AgentError>> {
        Box::pin(async move {
            decode(
                self.call(HostCall::Console {
                    uuid: uuid.into(),
                    max_bytes,
                })
                .await?,
            )
        })
    }

    fn snapshot<'a>(
        &'a self,
        uuid: &'a str,
        image_id: &'a str,
    ) -> BoxFut<'a, Result<(), AgentError>> {
        self.unit(HostCall::Snapshot {
            uuid: uuid.into(),
            image_id: image_id.into(),
        })
    }

    fn resize<'a>(
        &'a self,
        spec: &'a GuestSpec,
        start: bool,
    ) -> BoxFut<'a, Result<(), AgentError>> {
        self.unit(HostCall::Resize {
            spec: spec.clone(),
            start,
        })
    }

    fn confirm_resize<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), AgentError>> {
        self.unit(HostCall::ConfirmResize { uuid: uuid.into() })
    }

    fn revert_resize<'a>(
        &'a self,
        uuid: &'a str,
        start: bool,
    ) -> BoxFut<'a, Result<(), AgentError>> {
        self.unit(HostCall::RevertResize {
            uuid: uuid.into(),
            start,
        })
    }

    fn rescue<'a>(&'a self, rescue: &'a GuestSpec) -> BoxFut<'a, Result<(), AgentError>> {
        self.unit(HostCall::Rescue {
            spec: rescue.clone(),
        })
    }

    fn unrescue<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), AgentError>> {
        self.unit(HostCall::Unrescue { uuid: uuid.into() })
    }

    fn attach_nic<'a>(
        &'a self,
        spec: &'a GuestSpec,
        port_id: &'a str,
    ) -> BoxFut<'a, Result<(), AgentError>> {
        self.unit(HostCall::AttachNic {
            spec: spec.clone(),
            port_id: port_id.into(),
        })
    }

    fn detach_nic<'a>(
        &'a self,
        spec: &'a GuestSpec,
        port_id: &'a str,
    ) -> BoxFut<'a, Result<(), AgentError>> {
        self.unit(HostCall::DetachNic {
            spec: spec.clone(),
            port_id: port_id.into(),
        })
    }

    fn servers<'a>(&'a self) -> BoxFut<'a, Result<Vec<String>, AgentError>> {
        Box::pin(async move { decode(self.call(HostCall::Servers).await?) })
    }

    fn serial_console<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<SerialStream, AgentError>> {
        Box::pin(async move {
            // An HTTP upgrade: after the agent's 101 the connection carries the console's
            // bytes both ways.
            let url = format!("{}/console/{uuid}", self.url.trim_end_matches("/host"));
            let resp = self
                .client
                .get(&url)
                .bearer_auth(&self.secret)
                .header(header::CONNECTION, "upgrade")
                .header(header::UPGRADE, SERIAL_UPGRADE)
                // The stream lives as long as the user's console session.
                .timeout(Duration::from_secs(365 * 24 * 3600))
                .send()
                .await
                .map_err(|e| unreachable(&url, e))?;
            if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
                let status = resp.status().as_u16();
                let body = resp.bytes().await.unwrap_or_default();
                return Err(AgentError::from_wire(status, &body));
            }
            let upgraded = resp.upgrade().await.map_err(|e| unreachable(&url, e))?;
            Ok(Box::new(upgraded) as SerialStream)
        })
    }
}

/// The `Upgrade` protocol of a serial console between the control plane and an agent.
const SERIAL_UPGRADE: &str = "ferrostack-serial";

/// The agent's side of a serial console: checks the secret, opens the console, answers 101
/// and then copies bytes both ways until either side closes.
async fn serial_upgrade(
    agent: Arc<dyn HostAgent>,
    secret: Arc<str>,
    uuid: String,
    mut req: axum::extract::Request,
) -> Response {
    if !secret_matches(presented_secret(req.headers()), &secret) {
        return refused();
    }
    let wants_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(SERIAL_UPGRADE.as_bytes()));
    if !wants_upgrade {
        return error_response(&AgentError::Failed(format!(
            "a console needs Upgrade: {SERIAL_UPGRADE}"
        )));
    }
    let mut console = match agent.serial_console(&uuid).await {
        Ok(c) => c,
        Err(e) => return error_response(&e),
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let mut io = hyper_util::rt::TokioIo::new(upgraded);
                let _ = tokio::io::copy_bidirectional(&mut io, &mut console).await;
            }
            Err(e) => tracing::warn!(server = %uuid, error = %e, "serial console upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, SERIAL_UPGRADE)
        .body(axum::body::Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The agent's side: `POST /v1/host` carries a [`HostCall`] out on `agent`.
pub fn agent_router(agent: Arc<dyn HostAgent>, secret: String) -> axum::Router {
    let secret: Arc<str> = secret.into();
    let (console_agent, console_secret) = (agent.clone(), secret.clone());
    axum::Router::new()
        .route(
            "/v1/console/{uuid}",
            axum::routing::get(
                move |axum::extract::Path(uuid): axum::extract::Path<String>,
                      req: axum::extract::Request| {
                    serial_upgrade(console_agent.clone(), console_secret.clone(), uuid, req)
                },
            ),
        )
        .route(
            "/v1/host",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let (agent, secret) = (agent.clone(), secret.clone());
                    async move {
                        if !secret_matches(presented_secret(&headers), &secret) {
                            return refused();
                        }
                        let call: HostCall = match serde_json::from_slice(&body) {
                            Ok(c) => c,
                            Err(e) => {
                                return error_response(&AgentError::Failed(format!(
                                    "not a host call: {e}"
                                )))
                            }
                        };
                        match call.run(agent.as_ref()).await {
                            Ok(v) => axum::Json(v).into_response(),
                            Err(e) => error_response(&e),
                        }
                    }
                },
            ),
        )
}

/// A remote agent's handle on the control plane.
pub struct HttpControlPlane {
    base: String,
    secret: String,
    client: reqwest::Client,
}

impl HttpControlPlane {
    /// `base` is the control plane's public URL (`http://controller:5000`).
    pub fn new(base: &str, secret: &str) -> HttpControlPlane {
        HttpControlPlane {
            base: format!("{}{CONTROL_PREFIX}", base.trim_end_matches('/')),
            secret: secret.to_string(),
            client: client(),
        }
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, AgentError> {
        post_json(
            &self.client,
            &format!("{}{path}", self.base),
            &self.secret,
            &body,
        )
        .await
    }
}

impl ControlPlane for HttpControlPlane {
    fn register<'a>(
        &'a self,
        report: &'a HostReport,
        agent_url: Option<&'a str>,
    ) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move {
            self.post(
                "/register",
                json!({"report": report, "agent_url": agent_url}),
            )
            .await
            .map(|_| ())
        })
    }

    fn heartbeat<'a>(&'a self, host: &'a str) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move {
            self.post("/heartbeat", json!({ "host": host }))
                .await
                .map(|_| ())
        })
    }

    fn servers_on_host<'a>(&'a self, host: &'a str) -> BoxFut<'a, Result<Vec<String>, AgentError>> {
        Box::pin(async move { decode(self.post("/servers", json!({ "host": host })).await?) })
    }

    fn observe_power_state<'a>(
        &'a self,
        uuid: &'a str,
        power_state: i64,
    ) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move {
            self.post(
                "/power-state",
                json!({"uuid": uuid, "power_state": power_state}),
            )
            .await
            .map(|_| ())
        })
    }

    fn busy<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<bool, AgentError>> {
        Box::pin(async move { decode(self.post("/busy", json!({ "uuid": uuid })).await?) })
    }

    fn fetch_image<'a>(
        &'a self,
        image_id: &'a str,
        dest: &'a Path,
    ) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move {
            use tokio::io::AsyncWriteExt;
            let url = format!("{}/images/{image_id}/file", self.base);
            let mut resp = self
                .client
                .get(&url)
                .bearer_auth(&self.secret)
                .send()
                .await
                .map_err(|e| unreachable(&url, e))?;
            if !resp.status().is_success() {
                let status = resp.status().as_u16();
                let body = resp.bytes().await.unwrap_or_default();
                return Err(AgentError::from_wire(status, &body));
            }
            let io = |e: std::io::Error| AgentError::Transient(format!("{}: {e}", dest.display()));
            let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
            while let Some(chunk) = resp.chunk().await.map_err(|e| unreachable(&url, e))? {
                file.write_all(&chunk).await.map_err(io)?;
            }
            file.sync_all().await.map_err(io)
        })
    }

    fn upload_image<'a>(
        &'a self,
        image_id: &'a str,
        file: &'a Path,
    ) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move {
            let url = format!("{}/images/{image_id}/file", self.base);
            let f = tokio::fs::File::open(file)
                .await
                .map_err(|e| AgentError::Transient(format!("{}: {e}", file.display())))?;
            let body =
                reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(f, 1 << 20));
            let resp = self
                .client
                .put(&url)
                .bearer_auth(&self.secret)
                .body(body)
                .send()
                .await
                .map_err(|e| unreachable(&url, e))?;
            answer(resp, &url).await.map(|_| ())
        })
    }
}
