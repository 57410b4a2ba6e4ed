//! Remote consoles ([`crate::service::consoles`]): `POST /servers/{id}/remote-consoles`
//! (2.6+), the `os-getSerialConsole` action (2.1-2.5, see [`serial_console_action`]),
//! `GET /os-console-auth-tokens/{token}` for admins, and the serial proxy itself
//! ([`serial_proxy`]), a websocket endpoint mounted outside `/compute` that joins a user to
//! the guest's serial port. Messages from the user, text or binary, go to the guest as bytes;
//! the guest's bytes come back as binary messages.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query as AxQuery, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{reply, Ctx, HttpResult, JsonBody, State};
use crate::error::ComputeError;

/// Protocols and types Nova's schema knows (the ones without a handler here are refused as
/// unavailable, not as malformed).
const PROTOCOLS: &[&str] = &["vnc", "spice", "rdp", "serial", "mks", "spice-direct"];
const TYPES: &[&str] = &[
    "novnc",
    "xvpvnc",
    "rdp-html5",
    "spice-html5",
    "serial",
    "webmks",
    "spice-direct",
];

pub fn api() -> Api<State> {
    Api::new()
        .post(
            "/v2.1/servers/{id}/remote-consoles",
            op("create_remote_console", "Create a remote console (2.6+)"),
            create,
        )
        .get(
            "/v2.1/os-console-auth-tokens/{token}",
            op(
                "show_console_auth_token",
                "Show a console token's target (admin)",
            ),
            show_token,
        )
}

fn field_error(field: &str, value: &Value) -> ComputeError {
    ComputeError::bad(format!(
        "Invalid input for field/attribute {field}. Value: {value}. {value} is not one of the allowed values"
    ))
}

fn one_of<'a>(body: &'a Value, field: &str, allowed: &[&str]) -> Result<&'a str, ComputeError> {
    match body.get(field) {
        Some(Value::String(v)) if allowed.contains(&v.as_str()) => Ok(v),
        Some(v) => Err(field_error(field, v)),
        None => Err(ComputeError::bad(format!(
            "Invalid input for field/attribute remote_console. '{field}' is a required property"
        ))),
    }
}

async fn create(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: JsonBody,
) -> HttpResult {
    if !ctx.mv.at_least(6) {
        return Err(ComputeError::not_found("The resource could not be found."));
    }
    let rc = body
        .0
        .get("remote_console")
        .filter(|v| v.is_object())
        .ok_or_else(|| {
            ComputeError::bad("Invalid input for field/attribute remote_console. 'remote_console' is a required property")
        })?;
    let protocol = one_of(rc, "protocol", PROTOCOLS)?;
    let kind = one_of(rc, "type", TYPES)?;
    let url = s
        .create_remote_console(&ctx.auth, &id, protocol, kind)
        .await?;
    reply(
        StatusCode::OK,
        json!({"remote_console": {"protocol": protocol, "type": kind, "url": url}}),
    )
}

/// The `os-getSerialConsole` action of microversions 2.1-2.5.
pub async fn serial_console_action(s: &State, ctx: &Ctx, id: &str, args: &Value) -> HttpResult {
    if ctx.mv.at_least(6) {
        return Err(ComputeError::not_found("The resource could not be found."));
    }
    let kind = match args.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(v) => return Err(field_error("type", v)),
        None => return Err(ComputeError::bad(
            "Invalid input for field/attribute os-getSerialConsole. 'type' is a required property",
        )),
    };
    let url = s
        .create_remote_console(&ctx.auth, id, "serial", kind)
        .await?;
    reply(
        StatusCode::OK,
        json!({"console": {"type": kind, "url": url}}),
    )
}

async fn show_token(AxState(s): AxState<State>, ctx: Ctx, Path(token): Path<String>) -> HttpResult {
    let t = s
        .show_console_token(&ctx.auth, &token, ctx.mv.at_least(31))
        .await?;
    let mut console = json!({
        "instance_uuid": t.instance_uuid,
        "host": t.host,
        "port": Value::Null,
        "internal_access_path": Value::Null,
    });
    if ctx.mv.at_least(99) {
        console["tls_port"] = Value::Null;
    }
    reply(StatusCode::OK, json!({ "console": console }))
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The serial proxy: `GET /?token=…` with a websocket upgrade (subprotocol `binary`, as
/// Nova's serial proxy offers).
pub fn serial_proxy(state: State) -> Router {
    Router::new()
        .route("/", axum::routing::get(proxy))
        .with_state(state)
}

async fn proxy(
    AxState(s): AxState<State>,
    AxQuery(q): AxQuery<TokenQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let refused = |status: StatusCode, why: &str| (status, why.to_string()).into_response();
    let Some(token) = q.token.filter(|t| !t.is_empty()) else {
        return refused(StatusCode::BAD_REQUEST, "a console token is required");
    };
    let target = match s.console_target(&token).await {
        Ok(Some(t)) if t.console_type == "serial" => t,
        Ok(_) => {
            return refused(
                StatusCode::UNAUTHORIZED,
                "the token is invalid or has expired",
            )
        }
        Err(e) => return e.into_response(),
    };
    let stream = match s.open_serial_console(&target).await {
        Ok(stream) => stream,
        Err(e) => return e.into_response(),
    };
    tracing::info!(server = %target.instance_uuid, host = %target.host, "serial console opened");
    ws.protocols(["binary", "base64"])
        .on_upgrade(move |socket| join(socket, stream))
}

/// Copies between the user's websocket and the guest's serial port until either ends.
async fn join(mut socket: WebSocket, stream: crate::host::SerialStream) {
    let (mut from_guest, mut to_guest) = tokio::io::split(stream);
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            read = from_guest.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let bytes = axum::body::Bytes::copy_from_slice(&buf[..n]);
                    if socket.send(Message::Binary(bytes)).await.is_err() {
                        break;
                    }
                }
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    if to_guest.write_all(&b).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Text(t))) => {
                    if to_guest.write_all(t.as_bytes()).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
}
