//! Placeholder routes for the parts of the Identity API still being written (credentials,
//! trusts, unified limits): they answer 501 in Keystone's error format rather than a bare
//! 404, so clients learn the feature is missing, not that their URL is wrong.

use ferrostack_common::api::{op, Api};

use super::State;
use crate::error::IdentityError;

async fn missing() -> IdentityError {
    IdentityError::NotImplemented("This part of the Identity API is not implemented yet.".into())
}

pub fn routes() -> Api<State> {
    let mut api = Api::new();
    for (path, what) in [
        ("/v3/registered_limits", "registered_limits"),
        ("/v3/registered_limits/{id}", "registered_limit"),
        ("/v3/limits", "limits"),
        ("/v3/limits/{id}", "limit"),
    ] {
        api = api.get(
            path,
            op(&format!("todo_{what}"), "Not implemented yet (501)").status(501),
            missing,
        );
    }
    api
}
