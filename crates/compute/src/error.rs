//! The Compute service's error type and Nova's fault body: `{"itemNotFound": {"code": 404,
//! "message": "Flavor 42 could not be found."}}`. The fault's name follows the status the way
//! nova's WSGI fault wrapper names it, so clients that read the key (python-novaclient,
//! Tempest) see what they expect.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ComputeError {
    pub status: StatusCode,
    pub message: String,
    /// What went wrong inside, for the log only.
    pub internal: Option<String>,
}

pub type Result<T, E = ComputeError> = std::result::Result<T, E>;

impl ComputeError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ComputeError {
            status,
            message: message.into(),
            internal: None,
        }
    }
    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub fn over_limit(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "The request you have made requires authentication.",
        )
    }
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, message)
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ComputeError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "Unexpected API Error. Please report this at your cloud's support \
                      channel and attach the request id if possible."
                .into(),
            internal: Some(e.to_string()),
        }
    }
    /// An action refused because of the server's state (Nova's `InstanceInvalidState`).
    pub fn invalid_state(action: &str, attr: &str, state: &str, uuid: &str) -> Self {
        Self::conflict(format!(
            "Cannot '{action}' instance {uuid} while it is in {attr} {state}"
        ))
    }
}

/// The key Nova wraps a fault in, by status.
pub fn fault_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        409 => "conflictingRequest",
        413 => "overLimit",
        415 => "badMediaType",
        429 => "overLimit",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    }
}

pub fn fault_body(status: StatusCode, message: &str) -> serde_json::Value {
    json!({ fault_name(status): { "code": status.as_u16(), "message": message } })
}

impl IntoResponse for ComputeError {
    fn into_response(self) -> Response {
        if let Some(detail) = &self.internal {
            tracing::error!(
                status = self.status.as_u16(),
                detail,
                "compute request failed"
            );
        }
        let mut resp = (
            self.status,
            axum::Json(fault_body(self.status, &self.message)),
        )
            .into_response();
        resp.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json; charset=UTF-8"),
        );
        resp
    }
}

impl From<ferrostack_db::sqlx::Error> for ComputeError {
    fn from(e: ferrostack_db::sqlx::Error) -> Self {
        ComputeError::internal(e)
    }
}

impl From<ferrostack_db::DbError> for ComputeError {
    fn from(e: ferrostack_db::DbError) -> Self {
        ComputeError::internal(e)
    }
}

impl From<anyhow::Error> for ComputeError {
    fn from(e: anyhow::Error) -> Self {
        ComputeError::internal(format!("{e:#}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_keys_follow_the_status() {
        let b = fault_body(StatusCode::NOT_FOUND, "Flavor 7 could not be found.");
        assert_eq!(b["itemNotFound"]["code"], 404);
        assert_eq!(
            fault_body(StatusCode::CONFLICT, "x")["conflictingRequest"]["message"],
            "x"
        );
        assert!(fault_body(StatusCode::BAD_GATEWAY, "x")
            .get("computeFault")
            .is_some());
    }
}
