//! The checked-in OpenAPI document must match the routes in the code, and be served.

mod harness;

use axum::http::{Method, StatusCode};

#[test]
fn checked_in_document_matches_the_code() {
    // Read at run time: a cached test binary may have been built in another checkout.
    let file =
        std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo"))
            .join("../../openapi/identity.json");
    let doc = ferrostack_identity::http::openapi();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/v3/auth/tokens"));
    assert!(paths["/v3/users/{id}"]["get"]["parameters"][0]["name"] == "id");
    ferrostack_common::api::check_document(&doc, &file).unwrap();
}

#[tokio::test]
async fn document_is_served() {
    let c = harness::TestCloud::new("sqlite::memory:", "sqlite").await;
    let r = c.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["openapi"], "3.1.0");
}
