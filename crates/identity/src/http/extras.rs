//! Placeholder routes for the parts of the Identity API still being written (credentials,
//! trusts, unified limits): they answer 501 in Keystone's error format rather than a bare
//! 404, so clients learn the feature is missing, not that their URL is wrong.

use axum::routing::any;
use axum::Router;

use super::State;
use crate::error::IdentityError;

pub fn routes() -> Router<State> {
    let missing = |what: &'static str| {
        any(move || async move {
            IdentityError::NotImplemented(format!("{what} are not implemented yet."))
        })
    };
    Router::new()
        .route("/v3/credentials", missing("Credentials"))
        .route("/v3/credentials/{id}", missing("Credentials"))
        .route("/v3/OS-TRUST/trusts", missing("Trusts"))
        .route("/v3/OS-TRUST/trusts/{*rest}", missing("Trusts"))
        .route("/v3/registered_limits", missing("Registered limits"))
        .route("/v3/registered_limits/{id}", missing("Registered limits"))
        .route("/v3/limits", missing("Limits"))
        .route("/v3/limits/{*rest}", missing("Limits"))
}
