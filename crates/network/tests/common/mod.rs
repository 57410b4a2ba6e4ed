//! Shared setup of the Networking service's HTTP tests: a real Identity service (tokens)
//! with users `alice` (project `alpha`), `bob` (project `beta`) and `admin`, the Networking
//! service with the fake backend, on SQLite and, when the test script provides it, on a
//! PostgreSQL database of its own.

#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use ferrostack_db::Db;
use ferrostack_identity::fernet::KeyRepository;
use ferrostack_identity::service::bootstrap::{BootstrapSpec, ProjectMember};
use ferrostack_identity::{Identity, IdentityConfig};
use ferrostack_network::fake::FakeBackend;
use ferrostack_network::{NetworkConfig, NetworkService};
use serde_json::{json, Value};
use tower::ServiceExt;

pub struct Cloud {
    pub identity: Arc<Identity>,
    pub network: Arc<NetworkService>,
    pub backend: Arc<FakeBackend>,
    pub router: axum::Router,
    pub db_url: String,
}

pub async fn pg_database(admin_url: &str) -> String {
    let name = format!("t{}", uuid::Uuid::new_v4().simple());
    let db = Db::connect(admin_url).await.unwrap();
    ferrostack_db::sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(db.pool())
        .await
        .unwrap();
    format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0)
}

pub async fn cloud_with(url: &str, config: NetworkConfig) -> Cloud {
    let dir = std::env::temp_dir().join(format!("fs-network-test-{}", uuid::Uuid::new_v4()));
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
    for (user, project) in [("alice", "alpha"), ("bob", "beta")] {
        identity
            .ensure_member(&ProjectMember {
                user,
                password: "pw",
                project,
                role: "member",
            })
            .await
            .unwrap();
    }
    let backend = Arc::new(FakeBackend::new());
    let network = NetworkService::new(
        db,
        config,
        NetworkService::default_policy(None).unwrap(),
        identity.clone(),
        backend.clone(),
    )
    .await
    .unwrap();
    let router = ferrostack_network::http::router(network.clone());
    Cloud {
        identity,
        network,
        backend,
        router,
        db_url: url.to_string(),
    }
}

pub async fn cloud(url: &str) -> Cloud {
    cloud_with(url, NetworkConfig::default()).await
}

/// SQLite always; PostgreSQL too when `FERROSTACK_TEST_PG_URL` is set.
pub async fn clouds() -> Vec<Cloud> {
    clouds_with(NetworkConfig::default()).await
}

pub async fn clouds_with(config: NetworkConfig) -> Vec<Cloud> {
    let mut out = vec![cloud_with("sqlite::memory:", config.clone()).await];
    if let Ok(url) = std::env::var("FERROSTACK_TEST_PG_URL") {
        out.push(cloud_with(&pg_database(&url).await, config).await);
    }
    out
}

/// A caller: its token and project id.
#[derive(Clone)]
pub struct User {
    pub token: String,
    pub project: String,
}

impl Cloud {
    pub async fn user(&self, user: &str, project: &str) -> User {
        let auth = json!({"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"id": "default"}, "password": "pw"}}}, "scope": {"project": {"name": project, "domain": {"id": "default"}}}});
        let req =
            ferrostack_identity::service::AuthRequest::parse(&json!({ "auth": auth })).unwrap();
        let token = self.identity.issue_token(req).await.unwrap();
        let project_id = {
            use ferrostack_common::Authenticator;
            self.identity
                .authenticate(&token.id)
                .await
                .unwrap()
                .project_id()
                .unwrap()
                .to_string()
        };
        User {
            token: token.id,
            project: project_id,
        }
    }

    pub async fn users(&self) -> (User, User, User) {
        (
            self.user("admin", "admin").await,
            self.user("alice", "alpha").await,
            self.user("bob", "beta").await,
        )
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        who: &User,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("x-auth-token", &who.token)
            .header("host", "cloud.test");
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
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
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }

    /// A call that must answer `status`; returns the body.
    pub async fn ok(
        &self,
        method: &str,
        path: &str,
        who: &User,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let (s, v) = self.call(method, path, who, body).await;
        assert_eq!(s.as_u16(), status, "{method} {path}: {v}");
        v
    }

    /// A call that must fail with `status` and Neutron's error `kind`.
    pub async fn fails(
        &self,
        method: &str,
        path: &str,
        who: &User,
        body: Option<Value>,
        status: u16,
        kind: &str,
    ) -> Value {
        let (s, v) = self.call(method, path, who, body).await;
        assert_eq!(s.as_u16(), status, "{method} {path}: {v}");
        assert_eq!(v["NeutronError"]["type"], kind, "{method} {path}: {v}");
        v
    }

    pub async fn network(&self, who: &User, body: Value) -> Value {
        self.ok(
            "POST",
            "/v2.0/networks",
            who,
            Some(json!({"network": body})),
            201,
        )
        .await["network"]
            .clone()
    }

    pub async fn subnet(&self, who: &User, body: Value) -> Value {
        self.ok(
            "POST",
            "/v2.0/subnets",
            who,
            Some(json!({"subnet": body})),
            201,
        )
        .await["subnet"]
            .clone()
    }

    pub async fn port(&self, who: &User, body: Value) -> Value {
        self.ok("POST", "/v2.0/ports", who, Some(json!({"port": body})), 201)
            .await["port"]
            .clone()
    }
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}
