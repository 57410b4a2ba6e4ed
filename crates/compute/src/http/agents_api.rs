//! The control plane's routes for remote compute agents ([`crate::host_http`] is their
//! client), mounted at [`crate::host_http::CONTROL_PREFIX`] on the API listener and not in
//! the catalog. Every request presents `[compute] agent_secret`; without one configured
//! the routes answer no one.
//!
//! - `POST /register` `{report, agent_url}`, `POST /heartbeat` `{host}`
//! - `POST /servers` `{host}` → the host's server ids; `POST /busy` `{uuid}` → bool
//! - `POST /power-state` `{uuid, power_state}`
//! - `GET|PUT /images/{id}/file`: a base image's data for the host's cache; a snapshot's
//!   data from the host

use axum::body::Body;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::State;
use crate::host::{presented_secret, secret_matches, AgentError, HostReport};
use crate::host_http::{error_response, refused};

pub fn router(state: State) -> Router {
    Router::new()
        .route("/register", post(register))
        .route("/heartbeat", post(heartbeat))
        .route("/servers", post(servers))
        .route("/busy", post(busy))
        .route("/power-state", post(power_state))
        .route("/images/{id}/file", get(image_file).put(upload_image))
        .with_state(state)
}

fn allowed(s: &State, headers: &HeaderMap) -> bool {
    s.config
        .agent_secret
        .as_deref()
        .is_some_and(|secret| secret_matches(presented_secret(headers), secret))
}

fn failed(e: impl std::fmt::Display) -> Response {
    // Database trouble and the like: the agent retries.
    error_response(&AgentError::Transient(e.to_string()))
}

#[derive(Deserialize)]
struct Register {
    report: HostReport,
    agent_url: Option<String>,
}

async fn register(
    AxState(s): AxState<State>,
    headers: HeaderMap,
    Json(r): Json<Register>,
) -> Response {
    if !allowed(&s, &headers) {
        return refused();
    }
    if let Some(url) = &r.agent_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return error_response(&AgentError::Failed(format!("bad agent URL {url:?}")));
        }
    }
    match s.register_agent(&r.report, r.agent_url.as_deref()).await {
        Ok(()) => {
            tracing::info!(host = %r.report.host, url = ?r.agent_url, "remote compute agent registered");
            Json(json!(null)).into_response()
        }
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
struct Host {
    host: String,
}

async fn heartbeat(
    AxState(s): AxState<State>,
    headers: HeaderMap,
    Json(h): Json<Host>,
) -> Response {
    if !allowed(&s, &headers) {
        return refused();
    }
    match s.heartbeat(&h.host).await {
        Ok(()) => Json(json!(null)).into_response(),
        Err(e) => failed(e),
    }
}

async fn servers(AxState(s): AxState<State>, headers: HeaderMap, Json(h): Json<Host>) -> Response {
    if !allowed(&s, &headers) {
        return refused();
    }
    match s.server_ids_on_host(&h.host).await {
        Ok(ids) => Json(json!(ids)).into_response(),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
struct Server {
    uuid: String,
}

async fn busy(AxState(s): AxState<State>, headers: HeaderMap, Json(b): Json<Server>) -> Response {
    if !allowed(&s, &headers) {
        return refused();
    }
    match s.server_busy(&b.uuid).await {
        Ok(busy) => Json(json!(busy)).into_response(),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
struct PowerState {
    uuid: String,
    power_state: i64,
}

async fn power_state(
    AxState(s): AxState<State>,
    headers: HeaderMap,
    Json(p): Json<PowerState>,
) -> Response {
    if !allowed(&s, &headers) {
        return refused();
    }
    match s.observe_power_state(&p.uuid, p.power_state).await {
        Ok(()) => Json(json!(null)).into_response(),
        Err(e) => failed(e),
    }
}

async fn image_file(
    AxState(s): AxState<State>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !allowed(&s, &headers) {
        return refused();
    }
    let Some(path) = s.image_data_path(&id) else {
        return error_response(&AgentError::Failed(format!("image {id} has no data")));
    };
    match tokio::fs::File::open(&path).await {
        Ok(f) => Body::from_stream(tokio_util::io::ReaderStream::with_capacity(f, 1 << 20))
            .into_response(),
        Err(e) => failed(format!("image {id}: {e}")),
    }
}

async fn upload_image(
    AxState(s): AxState<State>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    if !allowed(&s, &headers) {
        return refused();
    }
    if uuid::Uuid::parse_str(&id).is_err() {
        return error_response(&AgentError::NotFound(format!("image {id}")));
    }
    // Received whole into a file next to the image store, then handed over as a local
    // upload; a broken transfer leaves nothing (the agent's step sends it again).
    let tmp = s
        .image
        .data_path(&format!(".agent-upload-{}", uuid::Uuid::new_v4()));
    let received = async {
        let mut file = tokio::fs::File::create(&tmp).await?;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk.map_err(std::io::Error::other)?)
                .await?;
        }
        file.sync_all().await
    }
    .await;
    let result = match received {
        Ok(()) => s
            .upload_image_file(&id, &tmp)
            .await
            .map_err(|e| error_response(&AgentError::Failed(e.to_string()))),
        Err(e) => Err(failed(format!("receiving image {id}: {e}"))),
    };
    let _ = tokio::fs::remove_file(&tmp).await;
    match result {
        Ok(()) => Json(json!(null)).into_response(),
        Err(r) => r,
    }
}
