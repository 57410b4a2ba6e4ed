//! The Networking service's error type and Neutron's error body:
//! `{"NeutronError": {"type": "NetworkNotFound", "message": "...", "detail": ""}}`. The
//! `type` is the name of the exception Neutron raises for the same condition, which clients
//! (openstacksdk, Tempest) look at, so the names below are Neutron's spelling.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error for the client: status, Neutron's exception name and a message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct NetworkError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
}

pub type Result<T, E = NetworkError> = std::result::Result<T, E>;

impl NetworkError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        NetworkError {
            status,
            kind,
            message: message.into(),
        }
    }

    /// Input the API layer rejects before any logic (bad type, unknown attribute).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "HTTPBadRequest", message)
    }

    /// Input the logic rejects (Neutron's `InvalidInput`).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            format!("Invalid input for operation: {}.", message.into()),
        )
    }

    /// A request-body attribute failing its validator, as Neutron words it.
    pub fn invalid_attr(attr: &str, reason: impl Into<String>) -> Self {
        Self::bad_request(format!(
            "Invalid input for {attr}. Reason: {}.",
            reason.into().trim_end_matches('.')
        ))
    }

    pub fn bad(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind, message)
    }

    pub fn not_found(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, kind, message)
    }

    pub fn conflict(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, kind, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "HTTPUnauthorized",
            "The request you have made requires authentication.",
        )
    }

    /// A policy check failed on something the caller may see.
    pub fn policy(rule: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "PolicyNotAuthorized",
            format!("({rule}) is disallowed by policy"),
        )
    }

    pub fn network_not_found(id: &str) -> Self {
        Self::not_found(
            "NetworkNotFound",
            format!("Network {id} could not be found."),
        )
    }

    pub fn agent_not_found(id: &str) -> Self {
        Self::not_found("AgentNotFound", format!("Agent {id} could not be found."))
    }

    pub fn subnet_not_found(id: &str) -> Self {
        Self::not_found("SubnetNotFound", format!("Subnet {id} could not be found."))
    }

    pub fn port_not_found(id: &str) -> Self {
        Self::not_found("PortNotFound", format!("Port {id} could not be found."))
    }

    pub fn group_not_found(id: &str) -> Self {
        Self::not_found(
            "SecurityGroupNotFound",
            format!("Security group {id} does not exist"),
        )
    }

    pub fn rule_not_found(id: &str) -> Self {
        Self::not_found(
            "SecurityGroupRuleNotFound",
            format!("Security group rule {id} does not exist"),
        )
    }

    pub fn over_quota(resource: &str) -> Self {
        Self::conflict(
            "OverQuota",
            format!("Quota exceeded for resources: ['{resource}']."),
        )
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "HTTPInternalServerError",
            "Request Failed: internal server error while processing your request.",
        )
    }
}

impl From<ferrostack_db::sqlx::Error> for NetworkError {
    fn from(e: ferrostack_db::sqlx::Error) -> Self {
        NetworkError::internal(e)
    }
}

impl From<ferrostack_db::DbError> for NetworkError {
    fn from(e: ferrostack_db::DbError) -> Self {
        NetworkError::internal(e)
    }
}

impl IntoResponse for NetworkError {
    fn into_response(self) -> Response {
        let body =
            json!({"NeutronError": {"type": self.kind, "message": self.message, "detail": ""}});
        (self.status, axum::Json(body)).into_response()
    }
}
