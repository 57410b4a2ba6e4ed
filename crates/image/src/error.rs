//! The Image service's error type and Glance's error body:
//! `{"message": "...", "code": "404 Not Found", "title": "Not Found"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    BadRequest(String),
    #[error("The request you have made requires authentication.")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;

impl ImageError {
    pub fn bad(msg: impl Into<String>) -> Self {
        ImageError::BadRequest(msg.into())
    }

    pub fn no_image(id: &str) -> Self {
        ImageError::NotFound(format!("No image found with ID {id}"))
    }

    fn status(&self) -> StatusCode {
        match self {
            ImageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ImageError::Unauthorized => StatusCode::UNAUTHORIZED,
            ImageError::Forbidden(_) => StatusCode::FORBIDDEN,
            ImageError::NotFound(_) => StatusCode::NOT_FOUND,
            ImageError::Conflict(_) => StatusCode::CONFLICT,
            ImageError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ImageError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ImageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ferrostack_db::sqlx::Error> for ImageError {
    fn from(e: ferrostack_db::sqlx::Error) -> Self {
        ImageError::Internal(e.into())
    }
}

impl From<ferrostack_db::DbError> for ImageError {
    fn from(e: ferrostack_db::DbError) -> Self {
        ImageError::Internal(e.into())
    }
}

impl From<std::io::Error> for ImageError {
    fn from(e: std::io::Error) -> Self {
        ImageError::Internal(e.into())
    }
}

impl IntoResponse for ImageError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ImageError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                "The server has either erred or is incapable of performing the requested operation."
                    .to_string()
            }
            other => other.to_string(),
        };
        let title = status.canonical_reason().unwrap_or("Error");
        let body = json!({"message": message, "code": format!("{} {title}", status.as_u16()), "title": title});
        (status, axum::Json(body)).into_response()
    }
}
