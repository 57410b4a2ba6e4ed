//! The Image API over HTTP with a real Identity service for tokens, on SQLite and (when the
//! test script provides it) PostgreSQL: life cycle, streamed data, sharing, hostile images,
//! and recovery of an upload interrupted by a crash.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use ferrostack_db::Db;
use ferrostack_image::{HashingAlgorithm, ImageConfig, ImageService};
use serde_json::{json, Value};
use tower::ServiceExt;

mod common;

use common::{cloud, clouds, pg_database, Cloud};

impl Cloud {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        content_type: &str,
        body: Body,
    ) -> (StatusCode, Vec<u8>) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("x-auth-token", token)
            .header("content-type", content_type)
            .body(body)
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        (
            status,
            axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec(),
        )
    }

    async fn call_with_headers(
        &self,
        method: Method,
        path: &str,
        token: &str,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("x-auth-token", token)
            .body(Body::empty())
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (parts.status, parts.headers, body.to_vec())
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let ct = if method == Method::PATCH {
            "application/openstack-images-v2.1-json-patch"
        } else {
            "application/json"
        };
        let body = if body.is_null() {
            Body::empty()
        } else {
            Body::from(body.to_string())
        };
        let (s, b) = self.call(method, path, token, ct, body).await;
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    async fn create(&self, token: &str, disk_format: &str) -> String {
        let (s, b) = self.json(Method::POST, "/v2/images", token, json!({"name": "img", "disk_format": disk_format, "container_format": "bare", "visibility": "private", "ramdisk_id": "r1"})).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        assert_eq!(b["status"], "queued");
        b["id"].as_str().unwrap().to_string()
    }

    fn stored_files(&self) -> usize {
        // Image data files and temp files; the staging directory is not a file.
        std::fs::read_dir(self.dir.join("images"))
            .unwrap()
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_file()))
            .count()
    }
}

fn qcow2(backing: bool) -> Vec<u8> {
    let mut h = vec![0u8; 8192];
    h[0..4].copy_from_slice(b"QFI\xfb");
    h[4..8].copy_from_slice(&3u32.to_be_bytes());
    if backing {
        h[8..16].copy_from_slice(&512u64.to_be_bytes());
    }
    h[24..32].copy_from_slice(&(1u64 << 30).to_be_bytes());
    h[100..104].copy_from_slice(&112u32.to_be_bytes());
    h
}

#[tokio::test]
async fn life_cycle_with_streamed_data() {
    for c in clouds().await {
        let alice = c.token("alice", "alpha").await;
        let id = c.create(&alice, "raw").await;
        let (s, b) = c
            .call(
                Method::GET,
                &format!("/v2/images/{id}/file"),
                &alice,
                "",
                Body::empty(),
            )
            .await;
        assert_eq!((s, b.len()), (StatusCode::NO_CONTENT, 0), "no data yet");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let (s, _) = c
            .call(
                Method::PUT,
                &format!("/v2/images/{id}/file"),
                &alice,
                "application/octet-stream",
                Body::from(data.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{}", c.db_url);
        let (_, img) = c
            .json(
                Method::GET,
                &format!("/v2/images/{id}"),
                &alice,
                Value::Null,
            )
            .await;
        assert_eq!(img["status"], "active");
        assert_eq!(img["size"], 3_000_000);
        assert_eq!(img["virtual_size"], 3_000_000);
        assert_eq!(img["ramdisk_id"], "r1");
        assert_eq!(img["os_hash_algo"], "sha512");
        assert_eq!(img["os_hash_value"], hex_digest::<sha2::Sha512>(&data));
        assert_eq!(img["checksum"], hex_digest::<md5::Md5>(&data));
        let (s, back) = c
            .call(
                Method::GET,
                &format!("/v2/images/{id}/file"),
                &alice,
                "",
                Body::empty(),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert!(back == data, "downloaded bytes equal the upload");
        // A second upload to an active image is a conflict.
        let (s, _) = c
            .call(
                Method::PUT,
                &format!("/v2/images/{id}/file"),
                &alice,
                "application/octet-stream",
                Body::from("x"),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        // Patch, tags, read-only attributes.
        let (s, b) = c.json(Method::PATCH, &format!("/v2/images/{id}"), &alice, json!([{"op": "replace", "path": "/name", "value": "renamed"}, {"op": "add", "path": "/purpose", "value": "test"}])).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(
            (b["name"].as_str(), b["purpose"].as_str()),
            (Some("renamed"), Some("test"))
        );
        let (s, _) = c
            .json(
                Method::PATCH,
                &format!("/v2/images/{id}"),
                &alice,
                json!([{"op": "replace", "path": "/status", "value": "killed"}]),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = c
            .call(
                Method::PUT,
                &format!("/v2/images/{id}/tags/blue"),
                &alice,
                "",
                Body::empty(),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (_, list) = c
            .json(Method::GET, "/v2/images?tag=blue", &alice, Value::Null)
            .await;
        assert_eq!(list["images"].as_array().unwrap().len(), 1);
        // Another project does not see a private image at all.
        let bob = c.token("bob", "beta").await;
        let (s, _) = c
            .json(Method::GET, &format!("/v2/images/{id}"), &bob, Value::Null)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = c
            .json(
                Method::DELETE,
                &format!("/v2/images/{id}"),
                &bob,
                Value::Null,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // Delete removes record and data.
        let (s, _) = c
            .json(
                Method::DELETE,
                &format!("/v2/images/{id}"),
                &alice,
                Value::Null,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_eq!(
            c.json(
                Method::GET,
                &format!("/v2/images/{id}"),
                &alice,
                Value::Null
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(c.stored_files(), 0);
    }
}

fn hex_digest<D: sha2::Digest>(data: &[u8]) -> String {
    hex::encode(D::digest(data))
}

/// An operator who drops the legacy MD5 `checksum` and picks SHA-256 gets images with a null
/// checksum and the multihash they chose, and downloads announce no Content-MD5.
#[tokio::test]
async fn hashing_follows_the_operator_settings() {
    for algo in [HashingAlgorithm::Sha256, HashingAlgorithm::Sha384] {
        let c = common::cloud_with(
            "sqlite::memory:",
            ImageConfig {
                hashing_algorithm: algo,
                md5_checksum: false,
                ..Default::default()
            },
        )
        .await;
        let alice = c.token("alice", "alpha").await;
        let data: Vec<u8> = (0..2_500_000u32).map(|i| (i % 241) as u8).collect();
        let (_, created) = c
            .json(
                Method::POST,
                "/v2/images",
                &alice,
                json!({"name": "h", "disk_format": "raw", "container_format": "bare"}),
            )
            .await;
        let id = created["id"].as_str().unwrap().to_string();
        let (s, _) = c
            .call(
                Method::PUT,
                &format!("/v2/images/{id}/file"),
                &alice,
                "application/octet-stream",
                Body::from(data.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (_, img) = c
            .json(
                Method::GET,
                &format!("/v2/images/{id}"),
                &alice,
                Value::Null,
            )
            .await;
        let want = match algo {
            HashingAlgorithm::Sha256 => hex_digest::<sha2::Sha256>(&data),
            HashingAlgorithm::Sha384 => hex_digest::<sha2::Sha384>(&data),
            HashingAlgorithm::Sha512 => hex_digest::<sha2::Sha512>(&data),
        };
        assert_eq!(img["status"], "active");
        assert_eq!(img["checksum"], Value::Null);
        assert_eq!(img["os_hash_algo"], algo.name());
        assert_eq!(img["os_hash_value"], want);
        let (s, headers, _) = c
            .call_with_headers(Method::GET, &format!("/v2/images/{id}/file"), &alice)
            .await;
        assert_eq!(s, StatusCode::OK);
        assert!(headers.get("content-md5").is_none(), "no MD5 to announce");
    }
}

#[tokio::test]
async fn hostile_images_are_refused_and_nothing_is_stored() {
    for c in clouds().await {
        let alice = c.token("alice", "alpha").await;
        let mut vmdk = vec![0u8; 4096];
        vmdk[0..4].copy_from_slice(b"KDMV");
        vmdk[12..20].copy_from_slice(&2048u64.to_le_bytes());
        vmdk[28..36].copy_from_slice(&1u64.to_le_bytes());
        vmdk[36..44].copy_from_slice(&2u64.to_le_bytes());
        let desc = b"createType=\"monolithicSparse\"\nRW 2048 SPARSE \"/etc/shadow\"\n";
        vmdk[512..512 + desc.len()].copy_from_slice(desc);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("qcow2", qcow2(true)),
            ("vmdk", vmdk),
            ("qcow2", b"this is not a qcow2 image at all".to_vec()),
            ("raw", qcow2(false)),
            ("qcow2", b"QFI\xfb\x00\x00".to_vec()),
        ];
        for (fmt, bytes) in cases {
            let id = c.create(&alice, fmt).await;
            let (s, body) = c
                .call(
                    Method::PUT,
                    &format!("/v2/images/{id}/file"),
                    &alice,
                    "application/octet-stream",
                    Body::from(bytes),
                )
                .await;
            assert_eq!(
                s,
                StatusCode::BAD_REQUEST,
                "{fmt}: {}",
                String::from_utf8_lossy(&body)
            );
            let (_, img) = c
                .json(
                    Method::GET,
                    &format!("/v2/images/{id}"),
                    &alice,
                    Value::Null,
                )
                .await;
            assert_eq!(img["status"], "queued", "back to queued, never active");
            assert!(img["size"].is_null());
            assert_eq!(c.stored_files(), 0, "no data file and no temp file left");
        }
        // A good qcow2 passes and reports its virtual size.
        let id = c.create(&alice, "qcow2").await;
        let (s, _) = c
            .call(
                Method::PUT,
                &format!("/v2/images/{id}/file"),
                &alice,
                "application/octet-stream",
                Body::from(qcow2(false)),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_eq!(
            c.json(
                Method::GET,
                &format!("/v2/images/{id}"),
                &alice,
                Value::Null
            )
            .await
            .1["virtual_size"],
            1u64 << 30
        );
        // Over the size cap: 413 and nothing kept.
        let id = c.create(&alice, "raw").await;
        let (s, _) = c
            .call(
                Method::PUT,
                &format!("/v2/images/{id}/file"),
                &alice,
                "application/octet-stream",
                Body::from(vec![0u8; 11 << 20]),
            )
            .await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(c.stored_files(), 1);
    }
}

#[tokio::test]
async fn bad_requests_change_nothing() {
    for c in clouds().await {
        let alice = c.token("alice", "alpha").await;
        for body in [
            json!({"disk_format": "floppy"}),
            json!({"container_format": "zip"}),
            json!({"min_ram": -1}),
            json!({"protected": "yes"}),
            json!({"custom": 5}),
        ] {
            let (s, _) = c
                .json(Method::POST, "/v2/images", &alice, body.clone())
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        }
        for body in [
            json!({"status": "active"}),
            json!({"size": 5}),
            json!({"os_glance_x": "y"}),
            json!({"visibility": "public"}),
        ] {
            let (s, _) = c
                .json(Method::POST, "/v2/images", &alice, body.clone())
                .await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
        }
        let (_, list) = c.json(Method::GET, "/v2/images", &alice, Value::Null).await;
        assert_eq!(list["images"].as_array().unwrap().len(), 0);
        let (s, _) = c
            .call(
                Method::POST,
                "/v2/images",
                &alice,
                "application/json",
                Body::from("{not json"),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = c
            .call(Method::GET, "/v2/images", "garbage", "", Body::empty())
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn sharing_with_members() {
    for c in clouds().await {
        let alice = c.token("alice", "alpha").await;
        let bob = c.token("bob", "beta").await;
        let beta = c
            .identity
            .store
            .project_by_name("default", "beta")
            .await
            .unwrap()
            .unwrap()
            .id;
        let id = c.create(&alice, "raw").await;
        let (s, _) = c
            .json(
                Method::POST,
                &format!("/v2/images/{id}/members"),
                &alice,
                json!({"member": beta}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "private images have no members");
        c.json(
            Method::PATCH,
            &format!("/v2/images/{id}"),
            &alice,
            json!([{"op": "replace", "path": "/visibility", "value": "shared"}]),
        )
        .await;
        let (s, m) = c
            .json(
                Method::POST,
                &format!("/v2/images/{id}/members"),
                &alice,
                json!({"member": beta}),
            )
            .await;
        assert_eq!((s, m["status"].as_str()), (StatusCode::OK, Some("pending")));
        let (_, list) = c.json(Method::GET, "/v2/images", &bob, Value::Null).await;
        assert!(
            list["images"].as_array().unwrap().is_empty(),
            "pending shares are not listed"
        );
        assert_eq!(
            c.json(Method::GET, &format!("/v2/images/{id}"), &bob, Value::Null)
                .await
                .0,
            StatusCode::OK,
            "but can be shown"
        );
        let (s, _) = c
            .json(
                Method::PUT,
                &format!("/v2/images/{id}/members/{beta}"),
                &alice,
                json!({"status": "accepted"}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "only the member accepts");
        let (s, _) = c
            .json(
                Method::PUT,
                &format!("/v2/images/{id}/members/{beta}"),
                &bob,
                json!({"status": "accepted"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (_, list) = c.json(Method::GET, "/v2/images", &bob, Value::Null).await;
        assert_eq!(list["images"].as_array().unwrap().len(), 1);
        assert_eq!(
            c.json(
                Method::DELETE,
                &format!("/v2/images/{id}"),
                &bob,
                Value::Null
            )
            .await
            .0,
            StatusCode::FORBIDDEN,
            "members cannot delete"
        );
    }
}

#[tokio::test]
async fn interrupted_upload_is_requeued_after_a_restart() {
    let url = match std::env::var("FERROSTACK_TEST_PG_URL") {
        Ok(admin) => pg_database(&admin).await,
        Err(_) => format!(
            "sqlite://{}/t.db",
            std::env::temp_dir()
                .join(format!("fs-img-{}", uuid::Uuid::new_v4()))
                .display()
        ),
    };
    if let Some(dir) = url
        .strip_prefix("sqlite://")
        .and_then(|p| std::path::Path::new(p).parent())
    {
        std::fs::create_dir_all(dir).unwrap();
    }
    let c = cloud(&url).await;
    let alice = c.token("alice", "alpha").await;
    let id = c.create(&alice, "raw").await;
    // What a kill -9 mid-upload leaves: the image `saving` and a temp file.
    assert!(c
        .image
        .store
        .transition(&id, "queued", "saving", 1)
        .await
        .unwrap());
    std::fs::write(
        c.dir.join("images").join(format!(".tmp-{id}-x")),
        b"partial",
    )
    .unwrap();
    c.image.recover().await.unwrap();
    assert_eq!(
        c.json(
            Method::GET,
            &format!("/v2/images/{id}"),
            &alice,
            Value::Null
        )
        .await
        .1["status"],
        "queued"
    );
    assert_eq!(c.stored_files(), 0);
    let (s, _) = c
        .call(
            Method::PUT,
            &format!("/v2/images/{id}/file"),
            &alice,
            "application/octet-stream",
            Body::from("retry"),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "the upload can be retried");
}

#[test]
fn checked_in_openapi_matches_the_code() {
    // Read at run time: a cached test binary may have been built in another checkout.
    let file =
        std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo"))
            .join("../../openapi/image.json");
    ferrostack_common::api::check_document(&ferrostack_image::http::openapi(), &file).unwrap();
}

#[tokio::test]
async fn unified_limits_from_identity_are_enforced() {
    use ferrostack_identity::model::{Extra, Limit, RegisteredLimit, Service};
    for c in clouds().await {
        let alice = c.token("alice", "alpha").await;
        let service = Service {
            id: "img-svc".into(),
            service_type: "image".into(),
            name: "glance".into(),
            description: String::new(),
            enabled: true,
            extra: Extra::new(),
        };
        c.identity.store.insert_service(&service).await.unwrap();
        for (resource, limit) in [("image_count_total", 2), ("image_size_total", 1)] {
            let l = RegisteredLimit {
                id: resource.into(),
                service_id: "img-svc".into(),
                region_id: None,
                resource_name: resource.into(),
                default_limit: limit,
                description: None,
            };
            c.identity.store.insert_registered_limit(&l).await.unwrap();
        }
        c.identity.changed().await.unwrap();
        let first = c.create(&alice, "raw").await;
        // 1 MiB allowed in all: 1.5 MiB is cut off with 413 and nothing is kept.
        let (s, _) = c
            .call(
                Method::PUT,
                &format!("/v2/images/{first}/file"),
                &alice,
                "application/octet-stream",
                Body::from(vec![1u8; 1536 * 1024]),
            )
            .await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{}", c.db_url);
        assert_eq!(c.stored_files(), 0);
        let (s, _) = c
            .call(
                Method::PUT,
                &format!("/v2/images/{first}/file"),
                &alice,
                "application/octet-stream",
                Body::from(vec![1u8; 1024 * 1024]),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "exactly the limit fits");
        let second = c.create(&alice, "raw").await;
        let (s, _) = c
            .call(
                Method::PUT,
                &format!("/v2/images/{second}/file"),
                &alice,
                "application/octet-stream",
                Body::from("x"),
            )
            .await;
        assert_eq!(
            s,
            StatusCode::PAYLOAD_TOO_LARGE,
            "the project is at its size limit"
        );
        let (s, b) = c
            .json(Method::POST, "/v2/images", &alice, json!({"name": "third"}))
            .await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{b}");
        assert!(b["message"].as_str().unwrap().contains("image_count_total"));
        // A project limit overrides the registered default.
        let alpha = c
            .identity
            .store
            .project_by_name("default", "alpha")
            .await
            .unwrap()
            .unwrap()
            .id;
        let l = Limit {
            id: "alpha-count".into(),
            project_id: Some(alpha),
            domain_id: None,
            service_id: "img-svc".into(),
            region_id: None,
            resource_name: "image_count_total".into(),
            resource_limit: 5,
            description: None,
        };
        c.identity.store.insert_limit(&l).await.unwrap();
        let (s, _) = c
            .json(Method::POST, "/v2/images", &alice, json!({"name": "third"}))
            .await;
        assert_eq!(s, StatusCode::CREATED);
        // Another project is not affected by alpha's usage.
        let bob = c.token("bob", "beta").await;
        let id = c.create(&bob, "raw").await;
        let (s, _) = c
            .call(
                Method::PUT,
                &format!("/v2/images/{id}/file"),
                &bob,
                "application/octet-stream",
                Body::from(vec![2u8; 1000]),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
}

/// Waits for the only task of image `id` to reach `want`, and returns it.
async fn wait_task(c: &Cloud, token: &str, id: &str, want: &str) -> Value {
    for _ in 0..200 {
        let (s, body) = c
            .json(
                Method::GET,
                &format!("/v2/images/{id}/tasks"),
                token,
                Value::Null,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let tasks = body["tasks"].as_array().unwrap();
        assert_eq!(tasks.len(), 1, "{body}");
        if tasks[0]["status"] == want {
            return tasks[0].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the task of image {id} did not reach {want}");
}

async fn wait_status(c: &Cloud, token: &str, id: &str, want: &str) -> Value {
    for _ in 0..100 {
        let (_, img) = c
            .json(Method::GET, &format!("/v2/images/{id}"), token, Value::Null)
            .await;
        if img["status"] == want {
            return img;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("image {id} never reached {want}");
}

#[tokio::test]
async fn stage_and_import_glance_direct() {
    for c in clouds().await {
        let alice = c.token("alice", "alpha").await;
        let (_, info) = c
            .json(Method::GET, "/v2/info/import", &alice, Value::Null)
            .await;
        assert_eq!(info["import-methods"]["value"], json!(["glance-direct"]));
        let id = c.create(&alice, "qcow2").await;
        let (s, _) = c
            .json(
                Method::POST,
                &format!("/v2/images/{id}/import"),
                &alice,
                json!({"method": {"name": "glance-direct"}}),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "nothing staged yet");
        let (s, _) = c
            .call(
                Method::PUT,
                &format!("/v2/images/{id}/stage"),
                &alice,
                "application/octet-stream",
                Body::from(qcow2(false)),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_eq!(
            c.json(
                Method::GET,
                &format!("/v2/images/{id}"),
                &alice,
                Value::Null
            )
            .await
            .1["status"],
            "uploading"
        );
        let (s, _) = c
            .json(
                Method::POST,
                &format!("/v2/images/{id}/import"),
                &alice,
                json!({"method": {"name": "web-download", "uri": "http://example.invalid/x"}}),
            )
            .await;
        assert_eq!(
            s,
            StatusCode::BAD_REQUEST,
            "no URL downloads (server-side request forgery)"
        );
        let (s, _) = c
            .json(
                Method::POST,
                &format!("/v2/images/{id}/import"),
                &alice,
                json!({"method": {"name": "glance-direct"}}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let img = wait_status(&c, &alice, &id, "active").await;
        assert_eq!(img["virtual_size"], 1u64 << 30);
        assert_eq!(img["size"], 8192);

        // A hostile image is refused at import: back to queued, no data kept.
        let evil = c.create(&alice, "qcow2").await;
        c.call(
            Method::PUT,
            &format!("/v2/images/{evil}/stage"),
            &alice,
            "application/octet-stream",
            Body::from(qcow2(true)),
        )
        .await;
        let (s, _) = c
            .json(
                Method::POST,
                &format!("/v2/images/{evil}/import"),
                &alice,
                json!({"method": {"name": "glance-direct"}}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        wait_status(&c, &alice, &evil, "queued").await;
        assert_eq!(c.stored_files(), 1, "the good image only");

        // Each import is recorded as a task of its image.
        let good = wait_task(&c, &alice, &id, "success").await;
        assert_eq!(good["type"], "api_image_import");
        assert_eq!(good["image_id"], id.as_str());
        assert_eq!(
            good["input"]["import_req"]["method"]["name"],
            "glance-direct"
        );
        assert!(good["expires_at"].is_string(), "a finished task expires");
        let bad = wait_task(&c, &alice, &evil, "failure").await;
        assert!(
            bad["message"].as_str().unwrap().contains("refused"),
            "{bad}"
        );
        let bob = c.token("bob", "beta").await;
        let (s, _) = c
            .json(
                Method::GET,
                &format!("/v2/images/{id}/tasks"),
                &bob,
                Value::Null,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "another project's image");
        // The tasks API is for administrators.
        let (s, _) = c.json(Method::GET, "/v2/tasks", &alice, Value::Null).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let admin = c.token("admin", "admin").await;
        let (s, all) = c.json(Method::GET, "/v2/tasks", &admin, Value::Null).await;
        assert_eq!(s, StatusCode::OK);
        let listed: Vec<&str> = all["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        assert!(listed.contains(&good["id"].as_str().unwrap()));
        assert!(listed.contains(&bad["id"].as_str().unwrap()));
        let (s, failed) = c
            .json(Method::GET, "/v2/tasks?status=failure", &admin, Value::Null)
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(failed["tasks"].as_array().unwrap().len(), 1);
        let (s, one) = c
            .json(
                Method::GET,
                &format!("/v2/tasks/{}", good["id"].as_str().unwrap()),
                &admin,
                Value::Null,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(one["status"], "success");
        assert_eq!(one["input"]["image_id"], id.as_str());
        let (s, _) = c
            .json(
                Method::POST,
                "/v2/tasks",
                &admin,
                json!({"type": "import", "input": {"import_from": "http://example.invalid/x", "import_from_format": "raw", "image_properties": {}}}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "no URL import tasks");
        assert_eq!(
            std::fs::read_dir(c.dir.join("images/staging"))
                .unwrap()
                .count(),
            0
        );
    }
}

/// A SQLite database in a file of its own (a restart must find what the first run wrote).
fn sqlite_file_url() -> String {
    let dir = std::env::temp_dir().join(format!("fs-img-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    format!("sqlite://{}/t.db", dir.display())
}

/// The cloud's Image service started again on the same database and store, as after a
/// kill -9 (its start-up recovery runs).
async fn restarted(c: &Cloud) -> Cloud {
    let image = ImageService::new(
        Db::connect(&c.db_url).await.unwrap(),
        ImageConfig::default(),
        ImageService::default_policy(None).unwrap(),
        c.dir.join("images"),
        c.identity.clone(),
    )
    .await
    .unwrap();
    Cloud {
        identity: c.identity.clone(),
        router: ferrostack_image::http::router(image.clone()),
        image,
        db_url: c.db_url.clone(),
        dir: c.dir.clone(),
    }
}

#[tokio::test]
async fn an_import_interrupted_by_a_crash_is_finished_at_restart() {
    let url = sqlite_file_url();
    let c = cloud(&url).await;
    let alice = c.token("alice", "alpha").await;
    let id = c.create(&alice, "raw").await;
    c.call(
        Method::PUT,
        &format!("/v2/images/{id}/stage"),
        &alice,
        "application/octet-stream",
        Body::from("staged bytes"),
    )
    .await;
    // What a kill -9 between accepting the import and finishing it leaves.
    assert!(c
        .image
        .store
        .transition(&id, "uploading", "importing", 1)
        .await
        .unwrap());
    let again = restarted(&c).await;
    let img = wait_status(&again, &alice, &id, "active").await;
    assert_eq!(img["size"], 12);
}

/// A crash between an import's activation and the end of its task leaves the task
/// `processing`; the next start settles it from the image's status.
#[tokio::test]
async fn a_task_left_processing_by_a_crash_is_settled_at_restart() {
    let url = sqlite_file_url();
    let c = cloud(&url).await;
    let alice = c.token("alice", "alpha").await;
    let id = c.create(&alice, "raw").await;
    c.call(
        Method::PUT,
        &format!("/v2/images/{id}/stage"),
        &alice,
        "application/octet-stream",
        Body::from("staged bytes"),
    )
    .await;
    let (s, _) = c
        .json(
            Method::POST,
            &format!("/v2/images/{id}/import"),
            &alice,
            json!({"method": {"name": "glance-direct"}}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    wait_task(&c, &alice, &id, "success").await;
    // What a kill -9 right after activation leaves behind.
    ferrostack_db::sqlx::query("UPDATE image_tasks SET status = 'processing', expires_at = NULL")
        .execute(c.image.store.db.pool())
        .await
        .unwrap();
    let again = restarted(&c).await;
    let task = wait_task(&again, &alice, &id, "success").await;
    assert!(task["expires_at"].is_string());
}
