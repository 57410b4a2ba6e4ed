//! The Placement service's error type and its error body, as Placement sends it:
//! `{"errors": [{"status": 409, "title": "Conflict", "detail": "...", "code":
//! "placement.concurrent_update", "request_id": "req-..."}]}`. The `code` values are part of
//! the API (clients such as nova retry on `placement.concurrent_update`), so they are kept
//! exactly as upstream spells them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Placement's error codes (the `code` member of an error).
pub mod code {
    pub const DEFAULT: &str = "placement.undefined_code";
    pub const INVENTORY_INUSE: &str = "placement.inventory.inuse";
    pub const CONCURRENT_UPDATE: &str = "placement.concurrent_update";
    pub const DUPLICATE_NAME: &str = "placement.duplicate_name";
    pub const PROVIDER_IN_USE: &str = "placement.resource_provider.inuse";
    pub const PROVIDER_CANNOT_DELETE_PARENT: &str =
        "placement.resource_provider.cannot_delete_parent";
    pub const PROVIDER_NOT_FOUND: &str = "placement.resource_provider.not_found";
    pub const QUERY_DUPLICATE_KEY: &str = "placement.query.duplicate_key";
    pub const QUERY_BAD_VALUE: &str = "placement.query.bad_value";
    pub const QUERY_MISSING_VALUE: &str = "placement.query.missing_value";
}

/// An error for the client: status, Placement error code and a human-readable detail.
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct PlacementError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Extra headers some errors carry (406 and 405 answers list what is accepted).
    pub internal: Option<String>,
}

pub type Result<T, E = PlacementError> = std::result::Result<T, E>;

impl PlacementError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        PlacementError {
            status,
            code,
            detail: detail.into(),
            internal: None,
        }
    }

    pub fn bad(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code::DEFAULT, detail)
    }

    pub fn bad_code(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code::DEFAULT, detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code::DEFAULT, detail)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            code::DEFAULT,
            "The request you have made requires authentication.",
        )
    }

    /// A generation check failed: someone else changed the provider or consumer first.
    pub fn concurrent(detail: impl Into<String>) -> Self {
        Self::conflict(code::CONCURRENT_UPDATE, detail)
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        PlacementError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: code::DEFAULT,
            detail:
                "The server has either erred or is incapable of performing the requested operation."
                    .into(),
            internal: Some(e.to_string()),
        }
    }
}

impl From<ferrostack_db::sqlx::Error> for PlacementError {
    fn from(e: ferrostack_db::sqlx::Error) -> Self {
        PlacementError::internal(e)
    }
}

impl From<ferrostack_db::DbError> for PlacementError {
    fn from(e: ferrostack_db::DbError) -> Self {
        PlacementError::internal(e)
    }
}

impl From<anyhow::Error> for PlacementError {
    fn from(e: anyhow::Error) -> Self {
        PlacementError::internal(format!("{e:#}"))
    }
}

/// The body of an error answer; `request_id` is filled by the HTTP layer's id when known.
pub fn error_body(
    status: StatusCode,
    code: &str,
    detail: &str,
    request_id: Option<&str>,
) -> serde_json::Value {
    let title = status.canonical_reason().unwrap_or("Error");
    let mut err = json!({
        "status": status.as_u16(),
        "title": title,
        "detail": detail,
        "code": code,
    });
    if let Some(id) = request_id {
        err["request_id"] = json!(id);
    }
    json!({ "errors": [err] })
}

/// What an error answer was made of, kept on the response (as an extension) so the HTTP
/// layer, which knows the request id, can render the body again with `request_id` filled.
#[derive(Debug, Clone)]
pub struct ErrorParts {
    pub code: &'static str,
    pub detail: String,
}

impl IntoResponse for PlacementError {
    fn into_response(self) -> Response {
        if let Some(internal) = &self.internal {
            tracing::error!(error = %internal, "internal error");
        }
        let body = error_body(self.status, self.code, &self.detail, None);
        let mut resp = (self.status, axum::Json(body)).into_response();
        resp.extensions_mut().insert(ErrorParts {
            code: self.code,
            detail: self.detail,
        });
        resp
    }
}
