//! Shared setup of the Image service's HTTP tests: a cloud with a real Identity service
//! (tokens, limits) on SQLite and, when the test script provides it, on its own PostgreSQL
//! database, with users `alice` (project `alpha`) and `bob` (project `beta`).

#![allow(dead_code)]

use std::sync::Arc;

use ferrostack_db::Db;
use ferrostack_identity::fernet::KeyRepository;
use ferrostack_identity::service::bootstrap::{BootstrapSpec, ProjectMember};
use ferrostack_identity::{Identity, IdentityConfig};
use ferrostack_image::{ImageConfig, ImageService};
use serde_json::json;

pub struct Cloud {
    pub identity: Arc<Identity>,
    pub image: Arc<ImageService>,
    pub router: axum::Router,
    pub db_url: String,
    pub dir: std::path::PathBuf,
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

pub async fn cloud(url: &str) -> Cloud {
    cloud_with(
        url,
        ImageConfig {
            image_size_cap: 10 << 20,
            ..Default::default()
        },
    )
    .await
}

/// A cloud whose Image service runs with `config`.
pub async fn cloud_with(url: &str, config: ImageConfig) -> Cloud {
    let dir = std::env::temp_dir().join(format!("fs-image-test-{}", uuid::Uuid::new_v4()));
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
    let image = ImageService::new(
        db,
        config,
        ImageService::default_policy(None).unwrap(),
        dir.join("images"),
        identity.clone(),
    )
    .await
    .unwrap();
    image.set_limits(identity.clone());
    let router = ferrostack_image::http::router(image.clone());
    Cloud {
        identity,
        image,
        router,
        db_url: url.to_string(),
        dir,
    }
}

pub async fn clouds() -> Vec<Cloud> {
    let mut out = vec![cloud("sqlite::memory:").await];
    if let Ok(url) = std::env::var("FERROSTACK_TEST_PG_URL") {
        out.push(cloud(&pg_database(&url).await).await);
    }
    out
}

impl Cloud {
    pub async fn token(&self, user: &str, project: &str) -> String {
        let auth = json!({"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"id": "default"}, "password": "pw"}}}, "scope": {"project": {"name": project, "domain": {"id": "default"}}}});
        let req =
            ferrostack_identity::service::AuthRequest::parse(&json!({ "auth": auth })).unwrap();
        self.identity.issue_token(req).await.unwrap().id
    }
}
