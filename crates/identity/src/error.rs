//! The Identity service's one error type and its Keystone-shaped HTTP body:
//! `{"error": {"code": 404, "title": "Not Found", "message": "..."}}`.
//!
//! Messages are for the user and say what to fix; anything internal (SQL errors, file paths)
//! is logged with the request id and replaced by a generic 500 message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{0}")]
    BadRequest(String),
    /// 401 with a message safe to show (lockout, disabled account, expired password...).
    #[error("{0}")]
    Unauthorized(String),
    #[error("You are not authorized to perform the requested action: {0}.")]
    Forbidden(String),
    /// 403 with a specific message (e.g. password length).
    #[error("{0}")]
    ForbiddenMessage(String),
    #[error("Could not find {kind}: {id}.")]
    NotFound { kind: &'static str, id: String },
    /// 404 with a specific message (e.g. an option missing from a domain's configuration).
    #[error("{0}")]
    NotFoundMessage(String),
    #[error("Conflict occurred attempting to store {kind} - {detail}.")]
    Conflict { kind: &'static str, detail: String },
    #[error("Request Entity Too Large")]
    TooLarge,
    #[error("{0}")]
    NotImplemented(String),
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = IdentityError> = std::result::Result<T, E>;

impl IdentityError {
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        IdentityError::NotFound {
            kind,
            id: id.into(),
        }
    }

    pub fn bad(msg: impl Into<String>) -> Self {
        IdentityError::BadRequest(msg.into())
    }

    /// The generic 401: the client learns authentication failed, not why.
    pub fn unauthenticated() -> Self {
        IdentityError::Unauthorized("The request you have made requires authentication.".into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            IdentityError::BadRequest(_) => StatusCode::BAD_REQUEST,
            IdentityError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            IdentityError::Forbidden(_) | IdentityError::ForbiddenMessage(_) => {
                StatusCode::FORBIDDEN
            }
            IdentityError::NotFound { .. } | IdentityError::NotFoundMessage(_) => {
                StatusCode::NOT_FOUND
            }
            IdentityError::Conflict { .. } => StatusCode::CONFLICT,
            IdentityError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            IdentityError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            IdentityError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ferrostack_db::DbError> for IdentityError {
    fn from(e: ferrostack_db::DbError) -> Self {
        IdentityError::Internal(e.into())
    }
}

impl From<ferrostack_db::sqlx::Error> for IdentityError {
    fn from(e: ferrostack_db::sqlx::Error) -> Self {
        IdentityError::Internal(e.into())
    }
}

impl IntoResponse for IdentityError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            IdentityError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                "An unexpected error prevented the server from fulfilling your request.".to_string()
            }
            other => other.to_string(),
        };
        let title = status.canonical_reason().unwrap_or("Error");
        let body = json!({"error": {"code": status.as_u16(), "title": title, "message": message}});
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Keystone"),
            );
        }
        resp
    }
}
