//! A whole control plane in one process (Identity, Image, Placement, Compute) with compute
//! agents on the fake hypervisor, on a SQLite file and, when the test script provides one,
//! on its own PostgreSQL database; the HTTP API is driven through the router.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use ferrostack_agent::{Agent, AgentConfig};
use ferrostack_compute::network::fake::{FakeNet, FakeNetworking};
use ferrostack_compute::{ComputeConfig, ComputeService};
use ferrostack_db::Db;
use ferrostack_hypervisor::fake::FakeDriver;
use ferrostack_hypervisor::HostResources;
use ferrostack_identity::fernet::KeyRepository;
use ferrostack_identity::service::bootstrap::{BootstrapSpec, ProjectMember};
use ferrostack_identity::{Identity, IdentityConfig};
use ferrostack_image::{ImageConfig, ImageService};
use ferrostack_placement::PlacementService;
use serde_json::{json, Value};
use tower::ServiceExt;

pub struct Cloud {
    pub url: String,
    pub dir: std::path::PathBuf,
    pub identity: Arc<Identity>,
    pub image: Arc<ImageService>,
    pub placement: Arc<PlacementService>,
    pub compute: Arc<ComputeService>,
    pub router: axum::Router,
    pub hosts: Vec<(Arc<FakeDriver>, Arc<Agent>)>,
    pub image_id: String,
    /// The Networking service the cloud's servers get their NICs from: one shared network
    /// `private` (10.0.0.0/24), kept across "restarts" of the same cloud directory.
    pub networking: Arc<FakeNetworking>,
}

/// The fake Networking service of a cloud directory: an outside service, so a "restart" of
/// the control plane finds the same ports.
fn networking_for(dir: &std::path::Path) -> Arc<FakeNetworking> {
    static ALL: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, Arc<FakeNetworking>>>,
    > = std::sync::OnceLock::new();
    let mut all = ALL.get_or_init(Default::default).lock().unwrap();
    all.entry(dir.to_path_buf())
        .or_insert_with(|| {
            let n = FakeNetworking::new();
            n.add_network(FakeNet {
                id: PRIVATE_NET.into(),
                name: "private".into(),
                project_id: None,
                prefix: "10.0.0".into(),
            });
            Arc::new(n)
        })
        .clone()
}

/// The id of the fake Networking service's shared network.
pub const PRIVATE_NET: &str = "6a3c9a0e-2f5b-4c0e-9b7e-2d1f0c8e5a11";

pub async fn pg_database(admin_url: &str) -> String {
    let name = format!("t{}", uuid::Uuid::new_v4().simple());
    let db = Db::connect(admin_url).await.unwrap();
    ferrostack_db::sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(db.pool())
        .await
        .unwrap();
    format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0)
}

pub async fn urls() -> Vec<String> {
    let file = std::env::temp_dir().join(format!("fs-compute-{}.db", uuid::Uuid::new_v4()));
    let mut out = vec![format!("sqlite://{}", file.display())];
    if let Ok(url) = std::env::var("FERROSTACK_TEST_PG_URL") {
        out.push(pg_database(&url).await);
    }
    out
}

/// The serial proxy URL the tests' cloud hands out (`serve_serial_proxy` gives the real one).
pub const SERIAL_PROXY_PLACEHOLDER: &str = "ws://serial-proxy.invalid/serial-console";

/// The secret remote agents and the tests' control plane share.
pub const AGENT_SECRET: &str = "agent-secret";

/// The secret the tests' metadata proxy signs with.
pub const METADATA_SECRET: &str = "proxy-secret";

pub fn resources() -> HostResources {
    HostResources {
        vcpus: 4,
        memory_mb: 8192 + 512,
        disk_gb: 100,
        cpu_model: "fake".into(),
    }
}

impl Cloud {
    /// A new cloud with `hosts` fake compute hosts.
    pub async fn new(url: &str, hosts: usize) -> Cloud {
        Self::new_with(url, hosts, |_| {}).await
    }

    /// A new cloud whose Compute settings `tune` changes from the tests' defaults.
    pub async fn new_with(url: &str, hosts: usize, tune: impl FnOnce(&mut ComputeConfig)) -> Cloud {
        let dir = std::env::temp_dir().join(format!("fs-compute-test-{}", uuid::Uuid::new_v4()));
        let drivers: Vec<Arc<FakeDriver>> = (0..hosts)
            .map(|_| Arc::new(FakeDriver::new(resources())))
            .collect();
        Self::open_with(url, &dir, drivers, true, tune).await
    }

    /// Opens the services on an existing database and directory (a "restart"), with the
    /// given drivers (their VMs survive, as QEMU processes survive the agent).
    pub async fn open(
        url: &str,
        dir: &std::path::Path,
        drivers: Vec<Arc<FakeDriver>>,
        seed: bool,
    ) -> Cloud {
        Self::open_with(url, dir, drivers, seed, |_| {}).await
    }

    async fn open_with(
        url: &str,
        dir: &std::path::Path,
        drivers: Vec<Arc<FakeDriver>>,
        seed: bool,
        tune: impl FnOnce(&mut ComputeConfig),
    ) -> Cloud {
        // RUST_LOG=warn (or finer) shows the services' logs, e.g. why a workflow step
        // retries.
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
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
        if seed {
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
        }
        let image = ImageService::new(
            db.clone(),
            ImageConfig::default(),
            ImageService::default_policy(None).unwrap(),
            dir.join("images"),
            identity.clone(),
        )
        .await
        .unwrap();
        let placement = PlacementService::new(
            db.clone(),
            PlacementService::default_policy(None).unwrap(),
            identity.clone(),
        )
        .await
        .unwrap();
        let mut config = ComputeConfig {
            workflow_lease_ms: 300,
            metadata_proxy_shared_secret: Some(METADATA_SECRET.into()),
            agent_secret: Some(AGENT_SECRET.into()),
            // The tests serve the proxy on a port of their own and put it in the URL.
            serial_proxy_url: Some(SERIAL_PROXY_PLACEHOLDER.into()),
            ..Default::default()
        };
        tune(&mut config);
        let compute = ComputeService::new(
            db.clone(),
            config,
            ComputeService::default_policy(None).unwrap(),
            identity.clone(),
            placement.clone(),
            image.clone(),
        )
        .await
        .unwrap();
        compute.set_limits(identity.clone());
        let networking = networking_for(dir);
        compute.set_networking(networking.clone());
        let image_id = if seed {
            let file = dir.join("guest.qcow2");
            std::fs::create_dir_all(dir).unwrap();
            let ok = std::process::Command::new("qemu-img")
                .args(["create", "-q", "-f", "qcow2"])
                .arg(&file)
                .arg("64M")
                .status()
                .unwrap();
            assert!(ok.success());
            let admin = identity
                .store
                .project_by_name("default", "admin")
                .await
                .unwrap()
                .unwrap();
            let img = image
                .register_local(&ferrostack_image::service::bootstrap::LocalImage {
                    name: "guest",
                    path: &file,
                    disk_format: "qcow2",
                    owner_project: &admin.id,
                    properties: vec![],
                })
                .await
                .unwrap();
            for (id, name, ram, disk) in [
                ("1", "tiny", 256, 1),
                ("2", "small", 2048, 10),
                ("3", "medium", 4096, 10),
                ("99", "huge", 1 << 20, 20),
            ] {
                compute
                    .insert_flavor(&ferrostack_compute::model::Flavor {
                        id: id.into(),
                        name: name.into(),
                        ram,
                        vcpus: 1,
                        disk,
                        ephemeral: 0,
                        swap: 0,
                        rxtx_factor: 1.0,
                        is_public: true,
                        disabled: false,
                        description: None,
                        extra_specs: Default::default(),
                    })
                    .await
                    .unwrap();
            }
            img.id
        } else {
            std::fs::read_to_string(dir.join("image-id")).unwrap()
        };
        std::fs::write(dir.join("image-id"), &image_id).unwrap();
        let mut hosts = Vec::new();
        for (i, driver) in drivers.into_iter().enumerate() {
            let agent = Agent::start_local(
                AgentConfig {
                    host: format!("host{i}"),
                    state_dir: dir.join(format!("host{i}")),
                    sync_interval: 3600,
                    ..Default::default()
                },
                driver.clone(),
                &compute,
            )
            .await
            .unwrap();
            hosts.push((driver, agent));
        }
        compute.resume().await.unwrap();
        let router = ferrostack_compute::http::router(compute.clone());
        Cloud {
            url: url.to_string(),
            dir: dir.to_path_buf(),
            identity,
            image,
            placement,
            compute,
            router,
            hosts,
            image_id,
            networking,
        }
    }

    pub async fn token(&self, user: &str, project: &str) -> String {
        let auth = json!({"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"id": "default"}, "password": "pw"}}}, "scope": {"project": {"name": project, "domain": {"id": "default"}}}});
        let req =
            ferrostack_identity::service::AuthRequest::parse(&json!({ "auth": auth })).unwrap();
        self.identity.issue_token(req).await.unwrap().id
    }

    /// One request; returns status, body (JSON or Null) and headers.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        version: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, axum::http::HeaderMap) {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/compute{path}"))
            .header("x-auth-token", token)
            .header("openstack-api-version", format!("compute {version}"));
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let app = axum::Router::new().nest("/compute", self.router.clone());
        let resp = app.oneshot(req.body(body).unwrap()).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
            .await
            .unwrap();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, v, headers)
    }

    /// Boots a server (networks none) and returns its id.
    pub async fn boot(&self, token: &str, name: &str, flavor: &str) -> String {
        let (st, body, _) = self
            .call("POST", "/v2.1/servers", token, "latest", Some(json!({"server": {"name": name, "imageRef": self.image_id, "flavorRef": flavor, "networks": "auto"}})))
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{body}");
        body["server"]["id"].as_str().unwrap().to_string()
    }

    /// Polls until the server's status is `want` (or fails after 20 s).
    pub async fn wait_status(&self, token: &str, id: &str, want: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (st, body, _) = self
                .call("GET", &format!("/v2.1/servers/{id}"), token, "latest", None)
                .await;
            if want == "DELETED" && st == StatusCode::NOT_FOUND {
                return Value::Null;
            }
            assert_eq!(st, StatusCode::OK, "{body}");
            let status = body["server"]["status"].as_str().unwrap_or("").to_string();
            if status == want && body["server"]["OS-EXT-STS:task_state"].is_null() {
                return body["server"].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "server {id} stuck in {status}, wanted {want}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Closes this cloud's database connections, as a dead process's go away. A crash test
    /// calls it before "restarting": the halted services' tasks may live on in the test
    /// process, and their pools would otherwise hold PostgreSQL connections until the
    /// server's limit is reached.
    pub async fn close(&self) {
        self.compute.db.pool().close().await;
    }

    pub async fn project_id(&self, name: &str) -> String {
        self.identity
            .store
            .project_by_name("default", name)
            .await
            .unwrap()
            .unwrap()
            .id
    }

    /// Allocations Placement holds for a consumer.
    pub async fn allocations(&self, consumer: &str) -> usize {
        self.placement
            .consumer_allocations(consumer)
            .await
            .map(|v| v.rows.len())
            .unwrap_or(0)
    }

    /// Serves the serial proxy on a free loopback port; returns its base URL (to replace
    /// [`SERIAL_PROXY_PLACEHOLDER`] in the URLs the cloud hands out).
    pub async fn serve_serial_proxy(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().nest(
            "/serial-console",
            ferrostack_compute::http::consoles::serial_proxy(self.compute.clone()),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("ws://{addr}/serial-console")
    }

    /// The newest instance action `action` of a server and its events (as an admin sees
    /// them at 2.84), each as (event, result, host, details, traceback) text, once none is
    /// open: a workflow's last step records its event's end just after the server's state.
    pub async fn action_events(&self, server: &str, action: &str) -> (Value, Vec<[String; 5]>) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (a, events) = self.action_events_now(server, action).await;
            if events.iter().all(|e| !e[1].is_empty()) {
                return (a, events);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "events of {action} stay open: {events:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// [`Self::action_events`] as they are now.
    pub async fn action_events_now(&self, server: &str, action: &str) -> (Value, Vec<[String; 5]>) {
        let admin = self.token("admin", "admin").await;
        let path = format!("/v2.1/servers/{server}/os-instance-actions");
        let (st, list, _) = self.call("GET", &path, &admin, "2.84", None).await;
        assert_eq!(st, StatusCode::OK, "{list}");
        let found = list["instanceActions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["action"] == action)
            .unwrap_or_else(|| panic!("no {action} action: {list}"))
            .clone();
        let rid = found["request_id"].as_str().unwrap();
        let (st, shown, _) = self
            .call("GET", &format!("{path}/{rid}"), &admin, "2.84", None)
            .await;
        assert_eq!(st, StatusCode::OK, "{shown}");
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let mut events: Vec<[String; 5]> = shown["instanceAction"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert!(
                    e["finish_time"].is_null()
                        || e["finish_time"].as_str() >= e["start_time"].as_str(),
                    "{e}"
                );
                [
                    text(&e["event"]),
                    text(&e["result"]),
                    text(&e["host"]),
                    text(&e["details"]),
                    text(&e["traceback"]),
                ]
            })
            .collect();
        // Oldest first, as they happened.
        events.reverse();
        (shown["instanceAction"].clone(), events)
    }

    pub fn vms(&self) -> usize {
        self.hosts.iter().map(|(d, _)| d.count()).sum()
    }
}
