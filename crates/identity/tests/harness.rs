//! A test cloud for HTTP-level tests: the Identity router on a fresh database, driven in
//! process with `tower::ServiceExt::oneshot`. [`clouds`] yields one on SQLite and, when the
//! test script exported `FERROSTACK_TEST_PG_URL`, one on its own new PostgreSQL database, so
//! every test runs against both engines.

#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use ferrostack_db::Db;
use ferrostack_identity::fernet::KeyRepository;
use ferrostack_identity::service::bootstrap::BootstrapSpec;
use ferrostack_identity::{Identity, IdentityConfig};
use serde_json::{json, Value};
use tower::ServiceExt;

pub const ADMIN_PASSWORD: &str = "admin-secret";

pub struct TestCloud {
    pub identity: Arc<Identity>,
    pub router: axum::Router,
    pub engine: &'static str,
    pub keys_dir: std::path::PathBuf,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn subject_token(&self) -> String {
        self.headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
}

fn config() -> IdentityConfig {
    let mut c = IdentityConfig {
        password_hash_rounds: 4,
        ..Default::default()
    };
    c.security_compliance.lockout_failure_attempts = Some(2);
    c.security_compliance.lockout_duration = Some(2);
    c.security_compliance.unique_last_password_count = Some(2);
    c.security_compliance.minimum_password_age = Some(0);
    c
}

/// A new, empty PostgreSQL database on the test cluster; its URL.
pub async fn new_pg_database(admin_url: &str) -> String {
    let name = format!("t{}", uuid::Uuid::new_v4().simple());
    let db = Db::connect(admin_url)
        .await
        .expect("connect to test PostgreSQL");
    ferrostack_db::sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(db.pool())
        .await
        .expect("create test database");
    db.pool().close().await;
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(admin_url);
    format!("{base}/{name}")
}

impl TestCloud {
    pub async fn new(url: &str, engine: &'static str) -> TestCloud {
        TestCloud::with_config(url, engine, config()).await
    }

    pub async fn with_config(url: &str, engine: &'static str, config: IdentityConfig) -> TestCloud {
        let db = Db::connect(url).await.unwrap();
        let keys_dir = std::env::temp_dir().join(format!("fs-keys-{}", uuid::Uuid::new_v4()));
        let keys = KeyRepository::new(keys_dir.clone(), 3);
        let policy = Identity::default_policy(None).unwrap();
        let identity = Identity::new(db, config, policy, keys, "http://localhost/identity".into())
            .await
            .unwrap();
        identity
            .bootstrap(&BootstrapSpec {
                admin_user: "admin".into(),
                admin_password: ADMIN_PASSWORD.into(),
                admin_project: "admin".into(),
                region: "RegionOne".into(),
                services: vec![(
                    "identity".into(),
                    "keystone".into(),
                    "http://localhost/identity".into(),
                )],
            })
            .await
            .unwrap();
        let router = ferrostack_identity::http::router(identity.clone());
        TestCloud {
            identity,
            router,
            engine,
            keys_dir,
        }
    }

    /// A second node on the same database and Fernet keys as `first` (a multi-node control plane).
    pub async fn sharing(first: &TestCloud, url: &str) -> TestCloud {
        let db = Db::connect(url).await.unwrap();
        let keys = KeyRepository::new(first.keys_dir.clone(), 3);
        let policy = Identity::default_policy(None).unwrap();
        let identity = Identity::new(
            db,
            config(),
            policy,
            keys,
            "http://localhost/identity".into(),
        )
        .await
        .unwrap();
        let router = ferrostack_identity::http::router(identity.clone());
        TestCloud {
            identity,
            router,
            engine: first.engine,
            keys_dir: first.keys_dir.clone(),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Reply {
        self.call_with(method, path, body.map(|b| b.to_string()), token, &[])
            .await
    }

    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("x-auth-token", t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// A password token for `user` (in Default), scoped to `project` when given.
    pub async fn login(&self, user: &str, password: &str, project: Option<&str>) -> Reply {
        let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}}}});
        if let Some(p) = project {
            auth["scope"] = json!({"project": {"name": p, "domain": {"id": "default"}}});
        }
        self.call(
            Method::POST,
            "/v3/auth/tokens",
            Some(json!({ "auth": auth })),
            None,
        )
        .await
    }

    pub async fn admin_token(&self) -> String {
        let r = self.login("admin", ADMIN_PASSWORD, Some("admin")).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.subject_token()
    }

    /// Creates a user with `password` holding `role` on a new project; returns (user id, project id).
    pub async fn user_with_role(
        &self,
        admin: &str,
        name: &str,
        password: &str,
        role: &str,
    ) -> (String, String) {
        let p = self
            .call(
                Method::POST,
                "/v3/projects",
                Some(json!({"project": {"name": format!("{name}-project")}})),
                Some(admin),
            )
            .await;
        assert_eq!(p.status, StatusCode::CREATED, "{:?}", p.body);
        let pid = p.body["project"]["id"].as_str().unwrap().to_string();
        let u = self.call(Method::POST, "/v3/users", Some(json!({"user": {"name": name, "password": password, "default_project_id": pid}})), Some(admin)).await;
        assert_eq!(u.status, StatusCode::CREATED, "{:?}", u.body);
        let uid = u.body["user"]["id"].as_str().unwrap().to_string();
        let roles = self
            .call(
                Method::GET,
                &format!("/v3/roles?name={role}"),
                None,
                Some(admin),
            )
            .await;
        let rid = roles.body["roles"][0]["id"].as_str().unwrap().to_string();
        let g = self
            .call(
                Method::PUT,
                &format!("/v3/projects/{pid}/users/{uid}/roles/{rid}"),
                None,
                Some(admin),
            )
            .await;
        assert_eq!(g.status, StatusCode::NO_CONTENT, "{:?}", g.body);
        (uid, pid)
    }
}

/// One test cloud per database engine available to this run.
pub async fn clouds() -> Vec<TestCloud> {
    let mut out = vec![TestCloud::new("sqlite::memory:", "sqlite").await];
    if let Ok(url) = std::env::var("FERROSTACK_TEST_PG_URL") {
        let db_url = new_pg_database(&url).await;
        out.push(TestCloud::new(&db_url, "postgres").await);
    }
    out
}
