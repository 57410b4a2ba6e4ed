//! Metadata definitions (`/v2/metadefs/...`): the catalog of properties operators describe
//! for images and other resources. Not built yet; routes are added here.

use ferrostack_common::api::Api;

use super::State;

pub fn routes() -> Api<State> {
    Api::new()
}
