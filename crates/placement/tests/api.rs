//! The Placement API over HTTP with a real Identity service, on SQLite and (when the test
//! script provides one) PostgreSQL: providers, inventories with generations, traits,
//! aggregates, allocations and their capacity checks, microversions, and parallel claims
//! racing for the last units of one provider.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use ferrostack_db::Db;
use ferrostack_identity::fernet::KeyRepository;
use ferrostack_identity::service::bootstrap::{BootstrapSpec, ProjectMember};
use ferrostack_identity::{Identity, IdentityConfig};
use ferrostack_placement::PlacementService;
use serde_json::{json, Value};
use tower::ServiceExt;

struct Cloud {
    router: axum::Router,
    admin: String,
    member: String,
    service: Arc<PlacementService>,
}

async fn pg_database(admin_url: &str) -> String {
    let name = format!("t{}", uuid::Uuid::new_v4().simple());
    let db = Db::connect(admin_url).await.unwrap();
    ferrostack_db::sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(db.pool())
        .await
        .unwrap();
    format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0)
}

async fn cloud(url: &str) -> Cloud {
    let dir = std::env::temp_dir().join(format!("fs-placement-test-{}", uuid::Uuid::new_v4()));
    let db = Db::connect(url).await.unwrap();
    let identity = Identity::new(
        db.clone(),
        IdentityConfig {
            password_hash_rounds: 4,
            ..Default::default()
        },
        Identity::default_policy(None).unwrap(),
        KeyRepository::new(dir.join("keys"), 3),
        "http://localhost/identity".into(),
    )
    .await
    .unwrap();
    identity
        .bootstrap(&BootstrapSpec {
            admin_user: "admin".into(),
            admin_password: "pw".into(),
            admin_project: "admin".into(),
            region: "RegionOne".into(),
            services: vec![],
        })
        .await
        .unwrap();
    identity
        .ensure_member(&ProjectMember {
            user: "alice",
            password: "pw",
            project: "alpha",
            role: "member",
        })
        .await
        .unwrap();
    let service = PlacementService::new(
        db,
        PlacementService::default_policy(None).unwrap(),
        identity.clone(),
    )
    .await
    .unwrap();
    let router = axum::Router::new().nest(
        "/placement",
        ferrostack_placement::http::router(service.clone()),
    );
    let token = |user: &str, project: &str| {
        let auth = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"id": "default"}, "password": "pw"}}}, "scope": {"project": {"name": project, "domain": {"id": "default"}}}}});
        let req = ferrostack_identity::service::AuthRequest::parse(&auth).unwrap();
        let identity = identity.clone();
        async move { identity.issue_token(req).await.unwrap().id }
    };
    Cloud {
        admin: token("admin", "admin").await,
        member: token("alice", "alpha").await,
        router,
        service,
    }
}

async fn clouds() -> Vec<Cloud> {
    let file = std::env::temp_dir().join(format!("fs-placement-{}.db", uuid::Uuid::new_v4()));
    let mut out = vec![cloud(&format!("sqlite://{}", file.display())).await];
    if let Ok(url) = std::env::var("FERROSTACK_TEST_PG_URL") {
        out.push(cloud(&pg_database(&url).await).await);
    }
    out
}

struct Reply {
    status: StatusCode,
    body: Value,
    headers: axum::http::HeaderMap,
}

impl Cloud {
    async fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        mv: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/placement{path}"))
            .header("x-auth-token", token)
            .header("openstack-api-version", format!("placement {mv}"));
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        self.send(&self.router, req.body(body).unwrap()).await
    }

    /// Sends a request as built, through `router` (the service's, or it wrapped).
    async fn send(&self, router: &axum::Router, req: Request<Body>) -> Reply {
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            headers,
        }
    }

    async fn call(&self, method: &str, path: &str, mv: &str, body: Option<Value>) -> Reply {
        let token = self.admin.clone();
        self.call_as(&token, method, path, mv, body).await
    }

    async fn generation_of(&self, rp: &str) -> i64 {
        let r = self
            .call("GET", &format!("/resource_providers/{rp}"), "1.39", None)
            .await;
        r.body["generation"].as_i64().unwrap()
    }

    /// A provider with the usual compute inventories; returns its uuid.
    async fn compute_node(&self, name: &str, vcpus: i64) -> String {
        let r = self
            .call(
                "POST",
                "/resource_providers",
                "1.39",
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let uuid = r.body["uuid"].as_str().unwrap().to_string();
        let r = self
            .call(
                "PUT",
                &format!("/resource_providers/{uuid}/inventories"),
                "1.39",
                Some(json!({"resource_provider_generation": 0, "inventories": {
                    "VCPU": {"total": vcpus},
                    "MEMORY_MB": {"total": 4096, "reserved": 512},
                    "DISK_GB": {"total": 100, "allocation_ratio": 1.5},
                }})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        uuid
    }
}

fn claim(rp: &str, vcpu: i64, generation: Value) -> Value {
    json!({
        "allocations": {rp: {"resources": {"VCPU": vcpu}}},
        "project_id": "p1", "user_id": "u1",
        "consumer_generation": generation, "consumer_type": "INSTANCE",
    })
}

#[tokio::test]
async fn versions_and_errors() {
    for c in clouds().await {
        let r = c.call("GET", "", "1.0", None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["versions"][0]["max_version"], "1.39");
        assert_eq!(r.headers["openstack-api-version"], "placement 1.0");
        let r = c.call("GET", "/resource_providers", "1.40", None).await;
        assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
        let r = c.call("GET", "/resource_providers", "latest", None).await;
        assert_eq!(r.headers["openstack-api-version"], "placement 1.39");
        let r = c.call("GET", "/traits", "1.5", None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "traits appear in 1.6");
        let r = c
            .call_as("bogus", "GET", "/resource_providers", "1.0", None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let member = c.member.clone();
        let r = c
            .call_as(&member, "GET", "/resource_providers", "1.0", None)
            .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "placement is admin/service only"
        );
        assert_eq!(r.body["errors"][0]["status"], 403);
        let r = c
            .call("GET", "/resource_providers/nope", "1.39", None)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(
            r.body["errors"][0]["code"],
            "placement.resource_provider.not_found"
        );
    }
}

#[tokio::test]
async fn providers_inventories_traits_aggregates() {
    for c in clouds().await {
        let root = c.compute_node("cn1", 8).await;
        // Duplicate name.
        let r = c
            .call(
                "POST",
                "/resource_providers",
                "1.39",
                Some(json!({"name": "cn1"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(r.body["errors"][0]["code"], "placement.duplicate_name");
        // Before 1.20 creation answers 201 with a location and no body.
        let r = c
            .call(
                "POST",
                "/resource_providers",
                "1.19",
                Some(json!({"name": "old-style"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert!(r.headers["location"]
            .to_str()
            .unwrap()
            .starts_with("http://localhost/placement/resource_providers/"));
        // A child provider (NUMA node) in the tree.
        let r = c
            .call(
                "POST",
                "/resource_providers",
                "1.39",
                Some(json!({"name": "cn1-numa0", "parent_provider_uuid": root})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["root_provider_uuid"], root.as_str());
        let child = r.body["uuid"].as_str().unwrap().to_string();
        let r = c
            .call(
                "GET",
                &format!("/resource_providers?in_tree={root}"),
                "1.39",
                None,
            )
            .await;
        assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 2);
        // A parent cannot go while it has children.
        let r = c
            .call(
                "DELETE",
                &format!("/resource_providers/{root}"),
                "1.39",
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(
            r.body["errors"][0]["code"],
            "placement.resource_provider.cannot_delete_parent"
        );
        // Inventories with a stale generation are refused.
        let r = c
            .call(
                "GET",
                &format!("/resource_providers/{root}/inventories"),
                "1.39",
                None,
            )
            .await;
        assert_eq!(r.body["resource_provider_generation"], 1);
        assert_eq!(r.body["inventories"]["DISK_GB"]["allocation_ratio"], 1.5);
        assert_eq!(r.body["inventories"]["VCPU"]["max_unit"], 2147483647);
        let r = c
            .call(
                "PUT",
                &format!("/resource_providers/{root}/inventories/VCPU"),
                "1.39",
                Some(json!({"resource_provider_generation": 0, "total": 16})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(r.body["errors"][0]["code"], "placement.concurrent_update");
        let r = c
            .call(
                "PUT",
                &format!("/resource_providers/{root}/inventories/VCPU"),
                "1.39",
                Some(json!({"resource_provider_generation": 1, "total": 16})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["resource_provider_generation"], 2);
        // Bad inventories change nothing.
        for bad in [
            json!({"resource_provider_generation": 2, "inventories": {"VCPU": {"total": 0}}}),
            json!({"resource_provider_generation": 2, "inventories": {"VCPU": {"total": 4, "reserved": 5}}}),
            json!({"resource_provider_generation": 2, "inventories": {"NOT_A_CLASS": {"total": 4}}}),
            json!({"resource_provider_generation": 2, "inventories": {"VCPU": {"total": 4, "bogus": 1}}}),
        ] {
            let r = c
                .call(
                    "PUT",
                    &format!("/resource_providers/{root}/inventories"),
                    "1.39",
                    Some(bad),
                )
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
        }
        let r = c
            .call(
                "GET",
                &format!("/resource_providers/{root}/inventories/VCPU"),
                "1.39",
                None,
            )
            .await;
        assert_eq!(r.body["total"], 16);
        // Traits: unknown ones refused, custom ones created first.
        let r = c
            .call(
                "PUT",
                &format!("/resource_providers/{root}/traits"),
                "1.39",
                Some(json!({"resource_provider_generation": 2, "traits": ["CUSTOM_GOLD"]})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            c.call("PUT", "/traits/CUSTOM_GOLD", "1.39", None)
                .await
                .status,
            StatusCode::CREATED
        );
        assert_eq!(
            c.call("PUT", "/traits/CUSTOM_GOLD", "1.39", None)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            c.call("PUT", "/traits/HW_CPU_X86_AVX2", "1.39", None)
                .await
                .status,
            StatusCode::BAD_REQUEST
        );
        let r = c
            .call("PUT", &format!("/resource_providers/{root}/traits"), "1.39", Some(json!({"resource_provider_generation": 2, "traits": ["CUSTOM_GOLD", "HW_CPU_X86_AVX2"]})))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["resource_provider_generation"], 3);
        let r = c
            .call(
                "GET",
                "/resource_providers?required=CUSTOM_GOLD,!COMPUTE_STATUS_DISABLED",
                "1.39",
                None,
            )
            .await;
        assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 1);
        let r = c.call("GET", "/traits?associated=true", "1.39", None).await;
        assert_eq!(r.body["traits"], json!(["CUSTOM_GOLD", "HW_CPU_X86_AVX2"]));
        let r = c.call("DELETE", "/traits/CUSTOM_GOLD", "1.39", None).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "in use");
        // Aggregates: the list form before 1.19, the object form with generation after.
        let agg = uuid::Uuid::new_v4().to_string();
        let r = c
            .call(
                "PUT",
                &format!("/resource_providers/{child}/aggregates"),
                "1.1",
                Some(json!([agg])),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let r = c
            .call(
                "PUT",
                &format!("/resource_providers/{root}/aggregates"),
                "1.39",
                Some(json!({"resource_provider_generation": 3, "aggregates": [agg]})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let r = c
            .call(
                "GET",
                &format!("/resource_providers?member_of={agg}"),
                "1.39",
                None,
            )
            .await;
        assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 2);
        let r = c
            .call(
                "GET",
                &format!("/resource_providers?member_of=!{agg}"),
                "1.39",
                None,
            )
            .await;
        assert_eq!(
            r.body["resource_providers"].as_array().unwrap().len(),
            1,
            "only old-style"
        );
        // resources= filter: capacity is (total - reserved) * ratio.
        let r = c
            .call(
                "GET",
                "/resource_providers?resources=DISK_GB:150,MEMORY_MB:3584",
                "1.39",
                None,
            )
            .await;
        assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 1);
        let r = c
            .call(
                "GET",
                "/resource_providers?resources=MEMORY_MB:3585",
                "1.39",
                None,
            )
            .await;
        assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 0);
        // Custom resource classes.
        assert_eq!(
            c.call(
                "POST",
                "/resource_classes",
                "1.39",
                Some(json!({"name": "CUSTOM_FPGA"}))
            )
            .await
            .status,
            StatusCode::CREATED
        );
        assert_eq!(
            c.call(
                "POST",
                "/resource_classes",
                "1.39",
                Some(json!({"name": "CUSTOM_FPGA"}))
            )
            .await
            .status,
            StatusCode::CONFLICT
        );
        assert_eq!(
            c.call(
                "POST",
                "/resource_classes",
                "1.39",
                Some(json!({"name": "FPGA"}))
            )
            .await
            .status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            c.call("PUT", "/resource_classes/CUSTOM_FPGA", "1.39", None)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            c.call("DELETE", "/resource_classes/VCPU", "1.39", None)
                .await
                .status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            c.call("DELETE", "/resource_classes/CUSTOM_FPGA", "1.39", None)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        // Leaves go, then the root.
        assert_eq!(
            c.call(
                "DELETE",
                &format!("/resource_providers/{child}"),
                "1.39",
                None
            )
            .await
            .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            c.call(
                "DELETE",
                &format!("/resource_providers/{root}"),
                "1.39",
                None
            )
            .await
            .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            c.call("GET", &format!("/resource_providers/{root}"), "1.39", None)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn allocations_and_usages() {
    for c in clouds().await {
        let rp = c.compute_node("cn-alloc", 4).await;
        let consumer = uuid::Uuid::new_v4().to_string();
        let path = format!("/allocations/{consumer}");
        // A new consumer must be claimed with generation null.
        let r = c
            .call("PUT", &path, "1.39", Some(claim(&rp, 2, json!(5))))
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(r.body["errors"][0]["code"], "placement.concurrent_update");
        let r = c
            .call("PUT", &path, "1.39", Some(claim(&rp, 2, Value::Null)))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
        let r = c.call("GET", &path, "1.39", None).await;
        assert_eq!(r.body["allocations"][&rp]["resources"]["VCPU"], 2);
        assert_eq!(r.body["consumer_generation"], 1);
        assert_eq!(r.body["consumer_type"], "INSTANCE");
        assert_eq!(r.body["project_id"], "p1");
        // Too much: capacity is 4 * 1.0.
        let other = uuid::Uuid::new_v4().to_string();
        let r = c
            .call(
                "PUT",
                &format!("/allocations/{other}"),
                "1.39",
                Some(claim(&rp, 3, Value::Null)),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
        // Resizing the same consumer replaces its allocation (2 -> 4 fits).
        let r = c
            .call("PUT", &path, "1.39", Some(claim(&rp, 4, json!(1))))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
        let r = c
            .call(
                "GET",
                &format!("/resource_providers/{rp}/usages"),
                "1.39",
                None,
            )
            .await;
        assert_eq!(r.body["usages"]["VCPU"], 4);
        assert_eq!(r.body["usages"]["DISK_GB"], 0);
        let r = c.call("GET", "/usages?project_id=p1", "1.39", None).await;
        assert_eq!(r.body["usages"]["INSTANCE"]["VCPU"], 4);
        assert_eq!(r.body["usages"]["INSTANCE"]["consumer_count"], 1);
        let r = c.call("GET", "/usages?project_id=p1", "1.9", None).await;
        assert_eq!(r.body["usages"]["VCPU"], 4);
        // An inventory in use cannot go.
        let r = c
            .call(
                "DELETE",
                &format!("/resource_providers/{rp}/inventories/VCPU"),
                "1.39",
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(r.body["errors"][0]["code"], "placement.inventory.inuse");
        // Nor a provider with allocations.
        let r = c
            .call("DELETE", &format!("/resource_providers/{rp}"), "1.39", None)
            .await;
        assert_eq!(
            r.body["errors"][0]["code"],
            "placement.resource_provider.inuse"
        );
        // Allocations against a provider, and the provider's generation moved.
        let r = c
            .call(
                "GET",
                &format!("/resource_providers/{rp}/allocations"),
                "1.39",
                None,
            )
            .await;
        assert_eq!(r.body["allocations"][&consumer]["resources"]["VCPU"], 4);
        // POST /allocations moves the claim to another consumer atomically.
        let r = c
            .call("POST", "/allocations", "1.39", Some(json!({
                consumer.clone(): {"allocations": {}, "project_id": "p1", "user_id": "u1", "consumer_generation": 2, "consumer_type": "INSTANCE"},
                other.clone(): {"allocations": {rp.clone(): {"resources": {"VCPU": 4}}}, "project_id": "p1", "user_id": "u1", "consumer_generation": null, "consumer_type": "MIGRATION"},
            })))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
        let r = c.call("GET", &path, "1.39", None).await;
        assert_eq!(r.body["allocations"], json!({}));
        // Old-style (1.0) list body, no project: stored for the incomplete consumer.
        let r = c
            .call("DELETE", &format!("/allocations/{other}"), "1.39", None)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let old = uuid::Uuid::new_v4().to_string();
        let r = c
            .call("PUT", &format!("/allocations/{old}"), "1.0", Some(json!({"allocations": [{"resource_provider": {"uuid": rp}, "resources": {"VCPU": 1}}]})))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
        assert_eq!(
            c.call("DELETE", &format!("/allocations/{old}"), "1.39", None)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            c.call("DELETE", &format!("/allocations/{old}"), "1.39", None)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        // Bad bodies change nothing.
        for bad in [
            json!({"allocations": {rp.clone(): {"resources": {"VCPU": 0}}}, "project_id": "p", "user_id": "u", "consumer_generation": null, "consumer_type": "INSTANCE"}),
            json!({"allocations": {rp.clone(): {"resources": {"VCPU": 1}}}, "project_id": "p", "user_id": "u", "consumer_generation": null}),
            json!({"allocations": {uuid::Uuid::new_v4().to_string(): {"resources": {"VCPU": 1}}}, "project_id": "p", "user_id": "u", "consumer_generation": null, "consumer_type": "INSTANCE"}),
        ] {
            let r = c
                .call(
                    "PUT",
                    &format!("/allocations/{}", uuid::Uuid::new_v4()),
                    "1.39",
                    Some(bad),
                )
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
        }
        let r = c
            .call(
                "GET",
                &format!("/resource_providers/{rp}/usages"),
                "1.39",
                None,
            )
            .await;
        assert_eq!(r.body["usages"]["VCPU"], 0);
    }
}

/// As upstream: a claim bumps the generation of the providers it allocates from; moving a
/// consumer away or deleting its allocations leaves the released provider's generation alone.
/// Bodies are checked against the schemas with jsonschema's wording.
#[tokio::test]
async fn generations_follow_upstream_and_bodies_are_schema_checked() {
    for c in clouds().await {
        let a = c.compute_node("cn-gen-a", 8).await;
        let b = c.compute_node("cn-gen-b", 8).await;

        let (ga, gb) = (c.generation_of(&a).await, c.generation_of(&b).await);
        let consumer = uuid::Uuid::new_v4().to_string();
        let path = format!("/allocations/{consumer}");
        let r = c
            .call("PUT", &path, "1.39", Some(claim(&a, 2, Value::Null)))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
        assert_eq!(c.generation_of(&a).await, ga + 1);
        // Moving the consumer to b: b is allocated from, a only released from.
        let r = c
            .call("PUT", &path, "1.39", Some(claim(&b, 2, json!(1))))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
        assert_eq!(c.generation_of(&a).await, ga + 1);
        assert_eq!(c.generation_of(&b).await, gb + 1);
        let r = c.call("DELETE", &path, "1.39", None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(c.generation_of(&b).await, gb + 1);
        // Schema refusals read as upstream's.
        let r = c
            .call(
                "POST",
                &format!("/resource_providers/{a}/inventories"),
                "1.39",
                Some(json!({"resource_class": "DISK_GB", "total": 0})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let detail = r.body["errors"][0]["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("JSON does not validate: 0 is less than the minimum of 1"),
            "{detail}"
        );
        let r = c
            .call(
                "POST",
                &format!("/resource_providers/{a}/inventories"),
                "1.39",
                Some(json!({"resource_class": "NO_SUCH_CLASS", "total": 4})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("No such resource class NO_SUCH_CLASS"));
        // A POST of one inventory names no generation.
        let r = c
            .call(
                "POST",
                &format!("/resource_providers/{a}/inventories"),
                "1.39",
                Some(json!({"resource_class": "IPV4_ADDRESS", "total": 4})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let r = c.call("GET", "/usages?project_id=", "1.39", None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("Failed validating 'minLength'"));
    }
}

#[tokio::test]
async fn reshaper_moves_inventory_and_allocations() {
    for c in clouds().await {
        let root = c.compute_node("cn-reshape", 8).await;
        let r = c
            .call(
                "POST",
                "/resource_providers",
                "1.39",
                Some(json!({"name": "cn-reshape-numa0", "parent_provider_uuid": root})),
            )
            .await;
        let child = r.body["uuid"].as_str().unwrap().to_string();
        let consumer = uuid::Uuid::new_v4().to_string();
        let r = c
            .call(
                "PUT",
                &format!("/allocations/{consumer}"),
                "1.39",
                Some(claim(&root, 2, Value::Null)),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let gen_root = c
            .call("GET", &format!("/resource_providers/{root}"), "1.39", None)
            .await
            .body["generation"]
            .clone();
        // VCPU moves from the root to the NUMA child, with the allocation.
        let body = json!({
            "inventories": {
                root.clone(): {"resource_provider_generation": gen_root, "inventories": {"MEMORY_MB": {"total": 4096, "reserved": 512}, "DISK_GB": {"total": 100}}},
                child.clone(): {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 8}}},
            },
            "allocations": {consumer.clone(): {"allocations": {child.clone(): {"resources": {"VCPU": 2}}}, "project_id": "p1", "user_id": "u1", "consumer_generation": 1, "consumer_type": "INSTANCE"}},
        });
        let r = c.call("POST", "/reshaper", "1.39", Some(body)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
        let r = c
            .call(
                "GET",
                &format!("/resource_providers/{child}/usages"),
                "1.39",
                None,
            )
            .await;
        assert_eq!(r.body["usages"]["VCPU"], 2);
        let r = c
            .call(
                "GET",
                &format!("/resource_providers/{root}/inventories"),
                "1.39",
                None,
            )
            .await;
        assert!(r.body["inventories"].get("VCPU").is_none());
    }
}

/// Many schedulers claim one unit each of a provider with 5 units: exactly 5 win, the rest
/// get a 409, and the usage ends at 5 (never above capacity).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_claims_never_oversubscribe() {
    for c in clouds().await {
        let rp = c.compute_node("cn-race", 5).await;
        let c = Arc::new(c);
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let c = c.clone();
            let rp = rp.clone();
            tasks.push(tokio::spawn(async move {
                let consumer = uuid::Uuid::new_v4();
                c.call(
                    "PUT",
                    &format!("/allocations/{consumer}"),
                    "1.39",
                    Some(claim(&rp, 1, Value::Null)),
                )
                .await
                .status
            }));
        }
        let mut won = 0;
        for t in tasks {
            match t.await.unwrap() {
                StatusCode::NO_CONTENT => won += 1,
                StatusCode::CONFLICT => {}
                other => panic!("unexpected {other}"),
            }
        }
        assert_eq!(won, 5);
        let r = c
            .call(
                "GET",
                &format!("/resource_providers/{rp}/usages"),
                "1.39",
                None,
            )
            .await;
        assert_eq!(r.body["usages"]["VCPU"], 5);
        // The snapshot the searches read agrees with the database.
        let snap_used = c.service.snapshot().by_uuid(&rp).unwrap().used("VCPU");
        assert_eq!(snap_used, 5);
    }
}

#[test]
fn openapi_document_is_current() {
    let file =
        // Read at run time: a cached test binary may have been built in another checkout.
        std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../../openapi/placement.json");
    ferrostack_common::api::check_document(&ferrostack_placement::http::openapi(), &file).unwrap();
}

/// Two control nodes on one PostgreSQL: what one writes reaches the other's snapshot
/// (the searches' view) once it follows the revision counter.
#[tokio::test]
async fn second_node_follows_writes() {
    let Ok(url) = std::env::var("FERROSTACK_TEST_PG_URL") else {
        // The test script always sets it; without PostgreSQL there is no second node.
        eprintln!("second_node_follows_writes: needs FERROSTACK_TEST_PG_URL (PostgreSQL)");
        return;
    };
    let url = pg_database(&url).await;
    let a = cloud(&url).await;
    let b = PlacementService::new(
        Db::connect(&url).await.unwrap(),
        PlacementService::default_policy(None).unwrap(),
        Arc::new(NoAuth),
    )
    .await
    .unwrap();
    let rp = a.compute_node("cn-multi", 4).await;
    assert!(b.snapshot().by_uuid(&rp).is_none(), "not yet synced");
    b.sync_revision().await.unwrap();
    assert_eq!(
        b.snapshot().by_uuid(&rp).unwrap().inventories["VCPU"].total,
        4
    );
    let consumer = uuid::Uuid::new_v4();
    let r = a
        .call(
            "PUT",
            &format!("/allocations/{consumer}"),
            "1.39",
            Some(claim(&rp, 3, Value::Null)),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    b.sync_revision().await.unwrap();
    assert_eq!(b.snapshot().by_uuid(&rp).unwrap().used("VCPU"), 3);
}

struct NoAuth;

impl ferrostack_common::Authenticator for NoAuth {
    fn authenticate(
        &self,
        _token: &str,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Option<Arc<ferrostack_common::AuthContext>>>
                + Send
                + '_,
        >,
    > {
        Box::pin(async { None })
    }
}

#[tokio::test]
async fn allocation_candidates_over_http() {
    for c in clouds().await {
        let a = c.compute_node("cn-a", 8).await;
        let b = c.compute_node("cn-b", 8).await;
        let r = c
            .call("PUT", &format!("/resource_providers/{b}/traits"), "1.39", Some(json!({"resource_provider_generation": 1, "traits": ["COMPUTE_STATUS_DISABLED"]})))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let q = "/allocation_candidates?resources=VCPU:2,MEMORY_MB:1024&required=!COMPUTE_STATUS_DISABLED&limit=10";
        let r = c.call("GET", q, "1.39", None).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let reqs = r.body["allocation_requests"].as_array().unwrap();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0]["allocations"][&a]["resources"]["VCPU"], 2);
        let summary = &r.body["provider_summaries"][&a];
        assert_eq!(summary["resources"]["VCPU"]["capacity"], 8);
        assert_eq!(summary["resources"]["MEMORY_MB"]["capacity"], 3584);
        assert_eq!(summary["root_provider_uuid"], a.as_str());
        // Both without the forbidden trait; none when asking for more than any has.
        let r = c
            .call(
                "GET",
                "/allocation_candidates?resources=VCPU:2",
                "1.39",
                None,
            )
            .await;
        assert_eq!(r.body["allocation_requests"].as_array().unwrap().len(), 2);
        let r = c
            .call(
                "GET",
                "/allocation_candidates?resources=VCPU:9",
                "1.39",
                None,
            )
            .await;
        assert_eq!(r.body["allocation_requests"].as_array().unwrap().len(), 0);
        // A claim takes capacity away from the next search.
        let consumer = uuid::Uuid::new_v4();
        let r = c
            .call(
                "PUT",
                &format!("/allocations/{consumer}"),
                "1.39",
                Some(claim(&a, 7, Value::Null)),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c.call("GET", q, "1.39", None).await;
        assert_eq!(r.body["allocation_requests"].as_array().unwrap().len(), 0);
        // Unknown names and bad syntax are 400s; the route starts at 1.10.
        let r = c
            .call(
                "GET",
                "/allocation_candidates?resources=NOPE:1",
                "1.39",
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = c
            .call(
                "GET",
                "/allocation_candidates?resources=VCPU:1&required=CUSTOM_NOPE",
                "1.39",
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = c
            .call(
                "GET",
                "/allocation_candidates?resources=VCPU:x",
                "1.39",
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = c
            .call(
                "GET",
                "/allocation_candidates?resources=VCPU:1",
                "1.9",
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = c
            .call("GET", "/resource_providers?resources=NOPE:1", "1.39", None)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
}

/// A request with the admin token at `mv` and extra headers; `body` is sent as given (the
/// headers say what it is, or nothing does).
fn raw(
    c: &Cloud,
    method: &str,
    path: &str,
    mv: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Request<Body> {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("/placement{path}"))
        .header("x-auth-token", c.admin.as_str())
        .header("openstack-api-version", format!("placement {mv}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if !body.is_empty() {
        req = req.header("content-length", body.len().to_string());
    }
    req.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn http_semantics() {
    for c in clouds().await {
        // Error bodies carry the request id the listener's middleware gave the request, for
        // errors from handlers, from the fallback, from the router and from the version check.
        let app = ferrostack_common::http::finish(
            c.router.clone(),
            ferrostack_common::http::Metrics::default(),
        );
        for (method, path, mv, status) in [
            ("GET", "/barnabas", "1.0", StatusCode::NOT_FOUND),
            (
                "GET",
                "/resource_providers/nope",
                "1.39",
                StatusCode::NOT_FOUND,
            ),
            ("DELETE", "", "1.0", StatusCode::METHOD_NOT_ALLOWED),
            ("GET", "", "pony.horse", StatusCode::BAD_REQUEST),
        ] {
            let r = c.send(&app, raw(&c, method, path, mv, &[], "")).await;
            assert_eq!(r.status, status, "{method} {path}: {:?}", r.body);
            let id = r.headers["x-openstack-request-id"].to_str().unwrap();
            assert!(id.starts_with("req-"));
            assert_eq!(r.body["errors"][0]["request_id"], id, "{method} {path}");
            assert_eq!(r.body["errors"][0]["status"], status.as_u16());
        }

        // A client that asks for HTML (and accepts no JSON) gets its errors as HTML.
        for (path, mv, status, text) in [
            (
                "/barnabas",
                "1.0",
                StatusCode::NOT_FOUND,
                "The resource could not be found",
            ),
            (
                "",
                "0.5",
                StatusCode::NOT_ACCEPTABLE,
                "Unacceptable version header: 0.5",
            ),
        ] {
            let resp = app
                .clone()
                .oneshot(raw(&c, "GET", path, mv, &[("accept", "text/html")], ""))
                .await
                .unwrap();
            assert_eq!(resp.status(), status);
            assert!(resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"));
            let page = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            assert!(String::from_utf8_lossy(&page).contains(text));
        }

        // Malformed versions are 400s naming the string.
        for bad in ["pony.horse", "1.2.3"] {
            let r = c.call("GET", "", bad, None).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST);
            let detail = r.body["errors"][0]["detail"].as_str().unwrap();
            assert!(
                detail.contains(&format!("invalid version string: {bad}")),
                "{detail}"
            );
        }

        // 405: the route's methods without HEAD, and Placement's error body; OPTIONS too.
        for (method, path, allow) in [
            ("DELETE", "", "GET"),
            ("DELETE", "/resource_providers", "GET, POST"),
            ("OPTIONS", "/resource_providers", "GET, POST"),
        ] {
            let r = c.call(method, path, "1.0", None).await;
            assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_eq!(r.headers["allow"], allow, "{method} {path}");
            assert_eq!(r.body["errors"][0]["title"], "Method Not Allowed");
            let detail = r.body["errors"][0]["detail"].as_str().unwrap();
            assert!(detail.contains(&format!("The method {method} is not allowed")));
        }

        // 406 unless Accept admits JSON; the version document ignores Accept.
        let rp = c.compute_node("accepting", 1).await;
        for (path, accept, status) in [
            (
                "/resource_providers",
                "text/plain",
                StatusCode::NOT_ACCEPTABLE,
            ),
            (
                "/resource_providers",
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                StatusCode::OK,
            ),
            (
                &format!("/resource_providers/{rp}"),
                "text/html,application/xhtml+xml,application/xml;q=0.9",
                StatusCode::NOT_ACCEPTABLE,
            ),
            (
                &format!("/resource_providers/{rp}"),
                "application/json;q=0",
                StatusCode::NOT_ACCEPTABLE,
            ),
            (
                &format!("/resource_providers/{rp}"),
                "application/*",
                StatusCode::OK,
            ),
            (
                &format!("/resource_providers/{rp}"),
                "application/json",
                StatusCode::OK,
            ),
            ("", "text/plain", StatusCode::OK),
        ] {
            let r = c
                .send(
                    &c.router,
                    raw(&c, "GET", path, "1.0", &[("accept", accept)], ""),
                )
                .await;
            assert_eq!(r.status, status, "GET {path} accepting {accept}");
            // (A client asking for HTML gets the same refusal as an HTML page, tested above.)
            if status == StatusCode::NOT_ACCEPTABLE && !accept.contains("text/html") {
                let detail = r.body["errors"][0]["detail"].as_str().unwrap();
                assert!(
                    detail.contains("Only application/json is provided"),
                    "{detail}"
                );
            }
        }

        // A body needs a content type (400), a wrong one is 415, and a route younger than
        // the request's version is 404 whatever its body.
        let body = "I want a resource provider please";
        let r = c
            .send(
                &c.router,
                raw(&c, "POST", "/resource_providers", "1.0", &[], body),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
        assert!(r.body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("content-type header required"));
        let plain = [("content-type", "text/plain")];
        let r = c
            .send(
                &c.router,
                raw(&c, "POST", "/resource_providers", "1.0", &plain, body),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let r = c
            .send(
                &c.router,
                raw(
                    &c,
                    "PUT",
                    &format!("/resource_providers/{rp}"),
                    "1.0",
                    &[],
                    "",
                ),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let r = c
            .send(
                &c.router,
                raw(&c, "POST", "/resource_classes", "1.1", &plain, "data"),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = c
            .send(
                &c.router,
                raw(&c, "POST", "/resource_classes", "1.2", &plain, "data"),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let r = c
            .call(
                "PUT",
                &format!("/resource_providers/{rp}/aggregates"),
                "1.0",
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = c
            .call(
                "PUT",
                &format!("/resource_providers/{rp}/traits"),
                "1.5",
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        // The uuid filter must be a uuid.
        let r = c
            .call("GET", "/resource_providers?uuid=spameggs", "1.0", None)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("Invalid query string parameters"));

        // From 1.15 the answers upstream marks carry the cache headers; before, none does.
        let cached = |r: &Reply| {
            r.headers
                .get("cache-control")
                .map(|v| v.to_str().unwrap().to_string())
                == Some("no-cache".into())
                && r.headers
                    .get("last-modified")
                    .is_some_and(|v| v.to_str().unwrap().ends_with(" GMT"))
        };
        let plain_of = |r: &Reply| {
            !r.headers.contains_key("cache-control") && !r.headers.contains_key("last-modified")
        };
        let r = c.call("GET", "", "1.15", None).await;
        assert!(cached(&r));
        let r = c.call("GET", "", "1.14", None).await;
        assert!(plain_of(&r));
        let r = c.call("PUT", "/traits/CUSTOM_CACHED", "1.15", None).await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert!(cached(&r));
        let r = c.call("PUT", "/traits/CUSTOM_CACHED", "1.15", None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(cached(&r));
        let r = c.call("PUT", "/traits/CUSTOM_CACHED", "1.14", None).await;
        assert!(plain_of(&r));
        let r = c.call("GET", "/traits/CUSTOM_CACHED", "1.15", None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(cached(&r));
        let r = c
            .call(
                "PUT",
                &format!("/resource_providers/{rp}"),
                "1.15",
                Some(json!({"name": "renamed"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert!(cached(&r));
        let r = c
            .call(
                "PUT",
                &format!("/resource_providers/{rp}/aggregates"),
                "1.19",
                Some(json!({"resource_provider_generation": 1, "aggregates": [
                    "f918801a-5e54-4bee-9095-09a9d0c786b8",
                    "a893eb5c-e2a0-4251-ab26-f71d3b0cfc0b",
                ]})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert!(cached(&r));
        // In the request's order, not sorted.
        assert_eq!(
            r.body["aggregates"][0],
            "f918801a-5e54-4bee-9095-09a9d0c786b8"
        );
        let r = c
            .call(
                "PUT",
                &format!("/resource_providers/{rp}/traits"),
                "1.15",
                Some(json!({"resource_provider_generation": 2, "traits": ["CUSTOM_CACHED"]})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert!(cached(&r));
        // Neither are the resource class writes nor allocations marked, as upstream.
        let r = c
            .call("PUT", "/resource_classes/CUSTOM_MOO", "1.15", None)
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert!(plain_of(&r));
    }
}
