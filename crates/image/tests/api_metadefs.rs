//! The metadata definitions API (`/v2/metadefs`) over HTTP with a real Identity service for
//! tokens, on SQLite and (when the test script provides it) PostgreSQL: namespaces and their
//! contents, protection, who sees and changes what, paging, and refused requests.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use ferrostack_common::Authenticator;
use serde_json::{json, Value};
use tower::ServiceExt;

mod common;

use common::{clouds, Cloud};

impl Cloud {
    async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("x-auth-token", token)
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = if body.is_null() {
            Body::empty()
        } else {
            Body::from(body.to_string())
        };
        let resp = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        self.call_with(method, path, token, body, &[]).await
    }
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

const NS: &str = "/v2/metadefs/namespaces";

#[tokio::test]
async fn namespace_life_cycle_with_contents() {
    for c in clouds().await {
        let admin = c.token("admin", "admin").await;
        let (s, b) = c
            .call(
                Method::GET,
                "/v2/metadefs/resource_types",
                &admin,
                Value::Null,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert!(names(&b["resource_types"]).contains(&"OS::Glance::Image".to_string()));

        let (s, b) = c
            .call(
                Method::POST,
                NS,
                &admin,
                json!({
                    "namespace": "OS::Compute::Test", "display_name": "Test", "description": "d",
                    "visibility": "public", "protected": true,
                    "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "hw_"}],
                    "properties": {"cpu": {"type": "integer", "title": "CPU", "minimum": 1}},
                    "objects": [{"name": "Limits", "required": ["quota"], "properties": {"quota": {"type": "integer", "title": "Q"}}}],
                    "tags": [{"name": "t1"}],
                }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        assert_eq!(b["self"], "/v2/metadefs/namespaces/OS::Compute::Test");
        assert_eq!(b["protected"], true);
        assert!(
            b["owner"].is_string(),
            "the owner defaults to the caller's project"
        );
        let (s, _) = c
            .call(
                Method::POST,
                NS,
                &admin,
                json!({"namespace": "OS::Compute::Test"}),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "namespace names are unique");

        let path = format!("{NS}/OS::Compute::Test");
        let (s, b) = c
            .call(
                Method::GET,
                &format!("{path}?resource_type=OS::Glance::Image"),
                &admin,
                Value::Null,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(
            b["properties"]["hw_cpu"]["minimum"], 1,
            "prefixed for the resource type: {b}"
        );
        assert_eq!(b["objects"][0]["required"], json!(["hw_quota"]));
        assert_eq!(b["tags"], json!([{"name": "t1"}]));
        assert_eq!(b["resource_type_associations"][0]["prefix"], "hw_");
        let (_, b) = c.call(Method::GET, &path, &admin, Value::Null).await;
        assert!(b["properties"]["cpu"].is_object(), "{b}");

        // Filters.
        let (_, b) = c
            .call(
                Method::GET,
                &format!("{NS}?resource_types=OS::Nova::Flavor,OS::Glance::Image"),
                &admin,
                Value::Null,
            )
            .await;
        assert_eq!(b["namespaces"].as_array().unwrap().len(), 1, "{b}");
        assert_eq!(
            b["namespaces"][0]["resource_type_associations"][0]["name"],
            "OS::Glance::Image"
        );
        let (_, b) = c
            .call(
                Method::GET,
                &format!("{NS}?resource_types=OS::Nova::Flavor"),
                &admin,
                Value::Null,
            )
            .await;
        assert!(b["namespaces"].as_array().unwrap().is_empty());
        let (_, b) = c
            .call(
                Method::GET,
                &format!("{NS}?visibility=private"),
                &admin,
                Value::Null,
            )
            .await;
        assert!(b["namespaces"].as_array().unwrap().is_empty());

        // Objects.
        let objects = format!("{path}/objects");
        let (s, b) = c
            .call(
                Method::POST,
                &objects,
                &admin,
                json!({"name": "Disk QoS", "description": "io"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        assert_eq!(
            b["self"],
            "/v2/metadefs/namespaces/OS::Compute::Test/objects/Disk QoS"
        );
        let (s, _) = c
            .call(Method::POST, &objects, &admin, json!({"name": "Disk QoS"}))
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, b) = c
            .call(
                Method::PUT,
                &format!("{objects}/Disk%20QoS"),
                &admin,
                json!({"name": "Disk"}),
            )
            .await;
        assert_eq!((s, &b["name"]), (StatusCode::OK, &json!("Disk")), "{b}");
        assert!(
            b.get("description").is_none(),
            "a PUT replaces the whole object"
        );
        let (s, _) = c
            .call(
                Method::GET,
                &format!("{objects}/Disk%20QoS"),
                &admin,
                Value::Null,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "renamed away");
        let (_, b) = c
            .call(
                Method::GET,
                &format!("{objects}?sort_key=name&sort_dir=asc"),
                &admin,
                Value::Null,
            )
            .await;
        assert_eq!(names(&b["objects"]), ["Disk", "Limits"]);
        let (s, _) = c
            .call(
                Method::DELETE,
                &format!("{objects}/Disk"),
                &admin,
                Value::Null,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "the namespace is protected");

        // Properties.
        let props = format!("{path}/properties");
        let (s, b) = c.call(Method::POST, &props, &admin, json!({"name": "bus", "title": "Bus", "type": "string", "enum": ["scsi", "virtio"]})).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        assert_eq!(b["enum"], json!(["scsi", "virtio"]));
        let (s, b) = c
            .call(
                Method::GET,
                &format!("{props}/hw_bus?resource_type=OS::Glance::Image"),
                &admin,
                Value::Null,
            )
            .await;
        assert_eq!((s, &b["name"]), (StatusCode::OK, &json!("bus")), "{b}");
        let (s, _) = c
            .call(
                Method::GET,
                &format!("{props}/bus?resource_type=OS::Glance::Image"),
                &admin,
                Value::Null,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "without the prefix");
        let (s, b) = c
            .call(
                Method::PUT,
                &format!("{props}/bus"),
                &admin,
                json!({"name": "disk_bus", "title": "Disk bus", "type": "string"}),
            )
            .await;
        assert_eq!(
            (s, &b["title"]),
            (StatusCode::OK, &json!("Disk bus")),
            "{b}"
        );
        let (_, b) = c.call(Method::GET, &props, &admin, Value::Null).await;
        assert!(
            b["properties"]["disk_bus"].is_object() && b["properties"]["bus"].is_null(),
            "{b}"
        );

        // Tags: single, bulk replace, bulk append.
        let tags = format!("{path}/tags");
        let (s, b) = c
            .call(Method::POST, &format!("{tags}/t2"), &admin, Value::Null)
            .await;
        assert_eq!((s, &b["name"]), (StatusCode::CREATED, &json!("t2")), "{b}");
        let (s, _) = c
            .call(Method::POST, &format!("{tags}/t2"), &admin, Value::Null)
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, b) = c
            .call(
                Method::POST,
                &tags,
                &admin,
                json!({"tags": [{"name": "a"}, {"name": "b"}]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let (_, b) = c
            .call(
                Method::GET,
                &format!("{tags}?sort_key=name&sort_dir=asc"),
                &admin,
                Value::Null,
            )
            .await;
        assert_eq!(
            names(&b["tags"]),
            ["a", "b"],
            "a bulk create replaces the tags"
        );
        let (s, _) = c
            .call_with(
                Method::POST,
                &tags,
                &admin,
                json!({"tags": [{"name": "c"}]}),
                &[("x-openstack-append", "True")],
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, _) = c
            .call(
                Method::POST,
                &tags,
                &admin,
                json!({"tags": [{"name": "x"}, {"name": "x"}]}),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "duplicates in one request");
        let (_, b) = c
            .call(
                Method::GET,
                &format!("{tags}?sort_key=name&sort_dir=asc"),
                &admin,
                Value::Null,
            )
            .await;
        assert_eq!(
            names(&b["tags"]),
            ["a", "b", "c"],
            "a refused request changes nothing"
        );
        let (s, b) = c
            .call(
                Method::PUT,
                &format!("{tags}/c"),
                &admin,
                json!({"name": "d"}),
            )
            .await;
        assert_eq!((s, &b["name"]), (StatusCode::OK, &json!("d")), "{b}");
        let (s, _) = c.call(Method::DELETE, &tags, &admin, Value::Null).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "protected");

        // Associations.
        let rts = format!("{path}/resource_types");
        let (s, b) = c
            .call(
                Method::POST,
                &rts,
                &admin,
                json!({"name": "OS::Custom::Thing", "properties_target": "image"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let (_, b) = c
            .call(
                Method::GET,
                "/v2/metadefs/resource_types",
                &admin,
                Value::Null,
            )
            .await;
        assert!(
            names(&b["resource_types"]).contains(&"OS::Custom::Thing".to_string()),
            "created on first use"
        );
        let (s, _) = c
            .call(
                Method::POST,
                &rts,
                &admin,
                json!({"name": "OS::Custom::Thing"}),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, _) = c
            .call(
                Method::DELETE,
                &format!("{rts}/OS::Custom::Thing"),
                &admin,
                Value::Null,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "protected");

        // Delete: refused while protected, then everything goes.
        let (s, _) = c.call(Method::DELETE, &path, &admin, Value::Null).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, b) = c.call(Method::PUT, &path, &admin, json!({"namespace": "OS::Compute::Test", "visibility": "public", "protected": false})).await;
        assert_eq!((s, &b["protected"]), (StatusCode::OK, &json!(false)), "{b}");
        assert!(
            b.get("display_name").is_none(),
            "a PUT resets what it omits"
        );
        let (s, _) = c
            .call(
                Method::DELETE,
                &format!("{rts}/OS::Custom::Thing"),
                &admin,
                Value::Null,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (_, b) = c.call(Method::GET, &rts, &admin, Value::Null).await;
        assert_eq!(
            names(&b["resource_type_associations"]),
            ["OS::Glance::Image"]
        );
        let (s, _) = c
            .call(
                Method::DELETE,
                &format!("{objects}/Disk"),
                &admin,
                Value::Null,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = c.call(Method::DELETE, &tags, &admin, Value::Null).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (_, b) = c.call(Method::GET, &tags, &admin, Value::Null).await;
        assert_eq!(b["tags"], json!([]));
        let (s, _) = c.call(Method::DELETE, &path, &admin, Value::Null).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = c.call(Method::GET, &path, &admin, Value::Null).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // Its contents went with it: a namespace of the same name starts empty.
        c.call(
            Method::POST,
            NS,
            &admin,
            json!({"namespace": "OS::Compute::Test"}),
        )
        .await;
        let (_, b) = c.call(Method::GET, &path, &admin, Value::Null).await;
        assert!(
            b.get("objects").is_none() && b.get("properties").is_none() && b.get("tags").is_none(),
            "{b}"
        );
    }
}

#[tokio::test]
async fn readers_see_public_and_own_namespaces_and_change_nothing() {
    for c in clouds().await {
        let admin = c.token("admin", "admin").await;
        let alice = c.token("alice", "alpha").await;
        let (s, b) = c
            .call(Method::POST, NS, &alice, json!({"namespace": "mine"}))
            .await;
        assert_eq!(
            s,
            StatusCode::FORBIDDEN,
            "only administrators manage the catalog: {b}"
        );
        for (name, visibility) in [("pub", "public"), ("priv", "private")] {
            let (s, _) = c
                .call(
                    Method::POST,
                    NS,
                    &admin,
                    json!({"namespace": name, "visibility": visibility}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED);
            c.call(
                Method::POST,
                &format!("{NS}/{name}/objects"),
                &admin,
                json!({"name": "o"}),
            )
            .await;
        }
        let (s, b) = c.call(Method::GET, NS, &alice, Value::Null).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let listed: Vec<&str> = b["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["namespace"].as_str().unwrap())
            .collect();
        assert_eq!(listed, ["pub"]);
        let (s, _) = c
            .call(Method::GET, &format!("{NS}/priv"), &alice, Value::Null)
            .await;
        assert_eq!(
            s,
            StatusCode::NOT_FOUND,
            "another project's private namespace is not confirmed"
        );
        let (s, _) = c
            .call(
                Method::GET,
                &format!("{NS}/priv/objects/o"),
                &alice,
                Value::Null,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, b) = c
            .call(
                Method::GET,
                &format!("{NS}/pub/objects/o"),
                &alice,
                Value::Null,
            )
            .await;
        assert_eq!((s, &b["name"]), (StatusCode::OK, &json!("o")));
        let (s, _) = c
            .call(Method::DELETE, &format!("{NS}/pub"), &alice, Value::Null)
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = c
            .call(
                Method::POST,
                &format!("{NS}/pub/tags/x"),
                &alice,
                Value::Null,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = c
            .call(
                Method::PUT,
                &format!("{NS}/pub"),
                &alice,
                json!({"namespace": "pub", "visibility": "private"}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = c
            .call(
                Method::GET,
                "/v2/metadefs/resource_types",
                &alice,
                Value::Null,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, b) = c
            .call(
                Method::GET,
                "/v2/schemas/metadefs/resource_type",
                &alice,
                Value::Null,
            )
            .await;
        assert_eq!(
            (s, &b["name"]),
            (StatusCode::OK, &json!("resource_type_association"))
        );
        let (_, public) = c
            .call(
                Method::GET,
                &format!("{NS}?visibility=public"),
                &alice,
                Value::Null,
            )
            .await;
        assert_eq!(public["namespaces"].as_array().unwrap().len(), 1);
        // A private namespace owned by alice's project is hers to read (and only to read).
        let ctx = c.identity.authenticate(&alice).await.unwrap();
        let alpha = ctx.project_id().unwrap();
        let (s, _) = c
            .call(
                Method::POST,
                NS,
                &admin,
                json!({"namespace": "alphas", "owner": alpha}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, b) = c
            .call(Method::GET, &format!("{NS}/alphas"), &alice, Value::Null)
            .await;
        assert_eq!(
            (s, &b["visibility"]),
            (StatusCode::OK, &json!("private")),
            "{b}"
        );
        let bob = c.token("bob", "beta").await;
        let (s, _) = c
            .call(Method::GET, &format!("{NS}/alphas"), &bob, Value::Null)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = c
            .call(Method::DELETE, &format!("{NS}/alphas"), &alice, Value::Null)
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (_, me) = c.call(Method::GET, NS, &alice, Value::Null).await;
        assert_eq!(me["namespaces"].as_array().unwrap().len(), 2, "{me}");
    }
}

#[tokio::test]
async fn bad_requests_are_refused_and_lists_page() {
    for c in clouds().await {
        let admin = c.token("admin", "admin").await;
        for (body, status) in [
            (
                json!({"namespace": "n", "colour": "red"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"namespace": "n", "created_at": "2020-01-01T00:00:00Z"}),
                StatusCode::FORBIDDEN,
            ),
            (
                json!({"namespace": "n", "visibility": "shared"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"namespace": "n".repeat(81)}),
                StatusCode::BAD_REQUEST,
            ),
            (json!({"display_name": "no name"}), StatusCode::BAD_REQUEST),
            (
                json!({"namespace": "n", "properties": {"p": {"title": "no type"}}}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"namespace": "n", "objects": [{"name": "o"}, {"name": "o"}]}),
                StatusCode::CONFLICT,
            ),
        ] {
            let (s, b) = c.call(Method::POST, NS, &admin, body.clone()).await;
            assert_eq!(s, status, "{body} -> {b}");
            assert!(b["message"].is_string(), "Glance's error body: {b}");
        }
        let (s, _) = c
            .call(Method::GET, &format!("{NS}/n"), &admin, Value::Null)
            .await;
        assert_eq!(
            s,
            StatusCode::NOT_FOUND,
            "refused creates leave nothing behind"
        );
        for q in [
            "sort_dir=up",
            "limit=x",
            "sort_key=owner",
            "visibility=shared",
        ] {
            let (s, _) = c
                .call(Method::GET, &format!("{NS}?{q}"), &admin, Value::Null)
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{q}");
        }
        c.call(Method::POST, NS, &admin, json!({"namespace": "n"}))
            .await;
        let (s, _) = c
            .call(
                Method::POST,
                &format!("{NS}/n/properties"),
                &admin,
                json!({"title": "t", "type": "string"}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "a property needs a name");
        let (s, _) = c
            .call(
                Method::POST,
                &format!("{NS}/n/objects"),
                &admin,
                json!({"name": "o", "properties": {"p": {"type": "colour", "title": "t"}}}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = c
            .call(
                Method::DELETE,
                &format!("{NS}/n/resource_types/OS::Nova::Flavor"),
                &admin,
                Value::Null,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "not associated");

        for i in 0..4 {
            c.call(
                Method::POST,
                NS,
                &admin,
                json!({"namespace": format!("page-{i}")}),
            )
            .await;
        }
        let mut seen = vec![];
        let mut next = Some(format!("{NS}?limit=2&sort_key=namespace&sort_dir=asc"));
        while let Some(url) = next {
            let (s, b) = c.call(Method::GET, &url, &admin, Value::Null).await;
            assert_eq!(s, StatusCode::OK, "{url}: {b}");
            assert!(b["namespaces"].as_array().unwrap().len() <= 2);
            seen.extend(
                b["namespaces"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n["namespace"].as_str().unwrap().to_string()),
            );
            next = b["next"].as_str().map(str::to_string);
        }
        assert_eq!(seen, ["n", "page-0", "page-1", "page-2", "page-3"]);
    }
}
