//! The checked-in OpenAPI document of the Compute API matches the routes in the code.

#[test]
fn openapi_document_is_current() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi/compute.json");
    ferrostack_common::api::check_document(&ferrostack_compute::http::openapi(), &file).unwrap();
}
