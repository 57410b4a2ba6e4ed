//! The checked-in OpenAPI document of the Networking API matches the routes in the code.

#[test]
fn openapi_document_is_current() {
    // Read at run time: a cached test binary may have been built in another checkout.
    let file =
        std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo"))
            .join("../../openapi/network.json");
    ferrostack_common::api::check_document(&ferrostack_network::http::openapi(), &file).unwrap();
}
