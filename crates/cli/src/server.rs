//! Builds the one HTTP listener (every service under its path prefix, plus health and
//! metrics) and runs it until Ctrl-C or SIGTERM, finishing in-flight requests first.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use ferrostack_common::http::{finish, Metrics};
use ferrostack_compute::ComputeService;
use ferrostack_db::{Backend, Db};
use ferrostack_identity::fernet::KeyRepository;
use ferrostack_identity::Identity;
use ferrostack_image::ImageService;
use ferrostack_network::NetworkService;
use ferrostack_placement::PlacementService;

use crate::config::Config;

/// The path prefix of each service on the listener, as the catalog advertises it.
pub const IDENTITY_PREFIX: &str = "/identity";
pub const IMAGE_PREFIX: &str = "/image";
pub const PLACEMENT_PREFIX: &str = "/placement";
pub const COMPUTE_PREFIX: &str = "/compute";
/// The Networking API, under the prefix DevStack gives Neutron.
pub const NETWORK_PREFIX: &str = "/networking";
/// The metadata service, for the networks' metadata proxies (not in the catalog).
pub const METADATA_PREFIX: &str = "/metadata";
/// The serial console proxy (Nova's `nova-serialproxy`), for the URLs consoles hand out.
pub const SERIAL_PROXY_PREFIX: &str = "/serial-console";

pub struct Services {
    pub identity: Arc<Identity>,
    pub image: Arc<ImageService>,
    pub placement: Arc<PlacementService>,
    pub compute: Arc<ComputeService>,
    pub network: Arc<NetworkService>,
}

/// Opens the database (migrating it) and the services this process runs.
pub async fn open_services(config: &Config) -> anyhow::Result<Services> {
    let url = config.database_url();
    let db = Db::connect(&url)
        .await
        .with_context(|| format!("opening database {}", redact(&url)))?;
    let overrides = match &config.policy_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading policy file {}", p.display()))?,
        ),
        None => None,
    };
    let policy = Identity::default_policy(overrides.as_deref())?;
    let keys = KeyRepository::new(
        config.data_dir.join("fernet-keys"),
        config.identity.max_active_keys,
    );
    let identity = Identity::new(
        db.clone(),
        config.identity.clone(),
        policy,
        keys,
        format!("{}{}", config.public_url(), IDENTITY_PREFIX),
    )
    .await?;
    {
        // A key rotation on disk reaches this process without a restart.
        let id = identity.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                if let Err(e) = id.reload_keys_if_rotated() {
                    tracing::warn!(error = %e, "could not check the fernet key repository");
                }
            }
        });
    }
    if db.backend() == Backend::Postgres {
        // Other control nodes write to the same database: follow their changes.
        let id = identity.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Err(e) = id.sync_revision().await {
                    tracing::warn!(error = %e, "could not refresh identity revision");
                }
            }
        });
    }
    let image_policy = ImageService::default_policy(overrides.as_deref())?;
    let image = ImageService::new(
        db.clone(),
        config.image.clone(),
        image_policy,
        config.data_dir.join("images"),
        identity.clone(),
    )
    .await?;
    image.set_limits(identity.clone());
    let placement = PlacementService::new(
        db.clone(),
        PlacementService::default_policy(overrides.as_deref())?,
        identity.clone(),
    )
    .await?;
    if db.backend() == Backend::Postgres {
        // Claims and inventories written by other control nodes reach this node's snapshot.
        let pl = placement.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Err(e) = pl.sync_revision().await {
                    tracing::warn!(error = %e, "could not refresh placement revision");
                }
            }
        });
    }
    let mut compute_config = config.compute.clone();
    if compute_config.serial_proxy_url.is_none() {
        // The proxy is on this listener: its URL is the public URL with a websocket scheme.
        let public = config.public_url();
        let ws = match public.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}"),
            None => format!("ws://{}", public.trim_start_matches("http://")),
        };
        compute_config.serial_proxy_url = Some(format!("{ws}{SERIAL_PROXY_PREFIX}"));
    }
    let compute = ComputeService::new(
        db.clone(),
        compute_config,
        ComputeService::default_policy(overrides.as_deref())?,
        identity.clone(),
        placement.clone(),
        image.clone(),
    )
    .await?;
    compute.set_limits(identity.clone());
    let (backend, ovn) = network_backend(config).await?;
    let network = NetworkService::new(
        db.clone(),
        config.network.clone(),
        NetworkService::default_policy(overrides.as_deref())?,
        identity.clone(),
        backend,
    )
    .await?;
    if let Some(ovn) = ovn {
        // Ports turn ACTIVE when OVN binds them (ovn-controller saw the VM's tap).
        ferrostack_network_ovn::status::spawn_port_status(ovn.replica().clone(), network.clone());
    }
    // Repairs whatever the backend missed (a failed call, a restart of OVN).
    network.spawn_reconciler();
    // Servers get their NICs from it, as Nova from Neutron.
    compute.set_networking(Arc::new(ferrostack_compute::network::neutron::Neutron(
        network.clone(),
    )));
    // And hear from it when a floating IP of a server's port changes, as Nova from Neutron.
    network.set_device_events(Arc::new(
        ferrostack_compute::network::neutron::RefreshOnPortChange(Arc::downgrade(&compute)),
    ));
    Ok(Services {
        identity,
        image,
        placement,
        compute,
        network,
    })
}

/// The backend `[network] backend` names. The OVN backend is plugged in here once it exists.
/// The backend `[network] backend` names; for OVN also the backend itself (its replica
/// feeds port status).
pub async fn network_backend(
    config: &Config,
) -> anyhow::Result<(
    Arc<dyn ferrostack_network::NetworkBackend>,
    Option<Arc<ferrostack_network_ovn::OvnBackend>>,
)> {
    let c = &config.network;
    match c.backend.as_str() {
        "fake" => Ok((Arc::new(ferrostack_network::fake::FakeBackend::new()), None)),
        "ovn" => {
            if c.ovn_nb_connection.is_empty() {
                anyhow::bail!("network.backend = \"ovn\" needs network.ovn_nb_connection (the OVN Northbound database, unix:PATH or tcp:HOST:PORT)");
            }
            let mut ovn = ferrostack_network_ovn::OvnBackend::connect(&c.ovn_nb_connection)
                .await
                .map_err(|e| anyhow::anyhow!("network: {e} ({})", c.ovn_nb_connection))?;
            if !c.ovn_sb_connection.is_empty() {
                ovn = ovn
                    .with_southbound(&c.ovn_sb_connection)
                    .await
                    .map_err(|e| anyhow::anyhow!("network: {e} ({})", c.ovn_sb_connection))?;
            }
            let ovn = Arc::new(ovn);
            Ok((ovn.clone(), Some(ovn)))
        }
        other => anyhow::bail!("network.backend must be fake or ovn, not {other:?}"),
    }
}

/// The hypervisor driver `[compute_agent]` names, keeping its VMs under the data directory.
pub fn hypervisor(config: &Config) -> anyhow::Result<Arc<dyn ferrostack_hypervisor::Hypervisor>> {
    let c = &config.compute_agent;
    Ok(match c.driver.as_str() {
        "qemu" => Arc::new(
            ferrostack_hypervisor::qemu::QemuDriver::new(ferrostack_hypervisor::qemu::QemuConfig {
                instances_dir: config.data_dir.join("instances"),
                qemu_binary: None,
                accel: c.accel.clone(),
                ovs: c
                    .ovs_db
                    .clone()
                    .map(|db| ferrostack_hypervisor::qemu::tap::OvsConfig { db, vsctl: None }),
            })
            .map_err(|e| anyhow::anyhow!("compute agent: {e}"))?,
        ),
        "fake" => Arc::new(ferrostack_hypervisor::fake::FakeDriver::new(
            ferrostack_hypervisor::HostResources {
                vcpus: c.fake_vcpus,
                memory_mb: c.fake_memory_mb,
                disk_gb: c.fake_disk_gb,
                cpu_model: "fake".into(),
            },
        )),
        other => anyhow::bail!("compute_agent.driver must be qemu or fake, not {other:?}"),
    })
}

/// The URL this process's own listener answers at, for the in-process agent's metadata
/// proxies (the listener's address, a wildcard read as loopback).
pub fn listener_url(config: &Config) -> String {
    let bind = config
        .bind
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    format!("http://{bind}")
}

/// The agent's settings from `[compute_agent]` (and `[compute] shutdown_timeout` and
/// `metadata_proxy_shared_secret`); `control_url` is where its metadata proxies reach the
/// Compute metadata service (`<control_url>/metadata`).
pub fn agent_config(config: &Config, control_url: &str) -> ferrostack_agent::AgentConfig {
    let c = &config.compute_agent;
    let defaults = ferrostack_agent::AgentConfig::default();
    ferrostack_agent::AgentConfig {
        host: c.host.clone().unwrap_or(defaults.host),
        state_dir: config.data_dir.join("compute"),
        reserved_host_memory_mb: c.reserved_host_memory_mb,
        cpu_allocation_ratio: c.cpu_allocation_ratio,
        ram_allocation_ratio: c.ram_allocation_ratio,
        disk_allocation_ratio: c.disk_allocation_ratio,
        shutdown_timeout: config.compute.shutdown_timeout,
        sync_interval: c.sync_interval,
        integration_bridge: c.integration_bridge.clone(),
        ovs_db: c.ovs_db.clone(),
        ovs_netns: None,
        metadata_url: Some(format!(
            "{}{METADATA_PREFIX}",
            control_url.trim_end_matches('/')
        )),
        metadata_secret: config
            .compute
            .metadata_proxy_shared_secret
            .clone()
            .filter(|s| !s.is_empty()),
    }
}

/// A one-line description of a host's hypervisor, for the start-up message.
pub fn host_summary(host: &str, hv: &dyn ferrostack_hypervisor::Hypervisor) -> String {
    let info = hv.info();
    format!(
        "host {host} ({} {}, accel {})",
        info.hypervisor_type, info.version, info.accel
    )
}

/// Starts this host's compute agent (when enabled) and then resumes the compute workflows a
/// previous run left unfinished, which may need the agent.
pub async fn start_compute(config: &Config, services: &Services) -> anyhow::Result<Option<String>> {
    let mut summary = None;
    if config.compute_agent.enabled {
        let hv = hypervisor(config)?;
        let agent = ferrostack_agent::Agent::start_local(
            agent_config(config, &listener_url(config)),
            hv.clone(),
            &services.compute,
        )
        .await?;
        summary = Some(host_summary(&agent.config.host, hv.as_ref()));
    }
    services.compute.resume().await?;
    Ok(summary)
}

pub fn catalog(config: &Config) -> Vec<(String, String, String)> {
    vec![
        (
            "identity".into(),
            "keystone".into(),
            format!("{}{}", config.public_url(), IDENTITY_PREFIX),
        ),
        (
            "image".into(),
            "glance".into(),
            format!("{}{}", config.public_url(), IMAGE_PREFIX),
        ),
        (
            "placement".into(),
            "placement".into(),
            format!("{}{}", config.public_url(), PLACEMENT_PREFIX),
        ),
        (
            "compute".into(),
            "nova".into(),
            format!("{}{}/v2.1", config.public_url(), COMPUTE_PREFIX),
        ),
        (
            "network".into(),
            "neutron".into(),
            format!("{}{}", config.public_url(), NETWORK_PREFIX),
        ),
    ]
}

pub fn app(services: &Services) -> Router {
    let router = Router::new()
        .nest(
            IDENTITY_PREFIX,
            ferrostack_identity::http::router(services.identity.clone()),
        )
        .nest(
            IMAGE_PREFIX,
            ferrostack_image::http::router(services.image.clone()),
        )
        .nest(
            PLACEMENT_PREFIX,
            ferrostack_placement::http::router(services.placement.clone()),
        )
        .nest(
            COMPUTE_PREFIX,
            ferrostack_compute::http::router(services.compute.clone()),
        )
        .nest(
            NETWORK_PREFIX,
            ferrostack_network::http::router(services.network.clone()),
        )
        .nest(
            METADATA_PREFIX,
            ferrostack_compute::http::metadata_api::router(services.compute.clone()),
        )
        .nest(
            SERIAL_PROXY_PREFIX,
            ferrostack_compute::http::consoles::serial_proxy(services.compute.clone()),
        )
        .nest(
            ferrostack_compute::host_http::CONTROL_PREFIX,
            ferrostack_compute::http::agents_api::router(services.compute.clone()),
        );
    finish(router, Metrics::default())
}

/// Serves `app` until Ctrl-C or SIGTERM, finishing in-flight requests.
pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> anyhow::Result<()> {
    use tower::Layer;
    let app = tower::util::MapRequestLayer::new(trim_trailing_slash).layer(app);
    axum::serve(
        listener,
        axum::ServiceExt::<axum::extract::Request>::into_make_service(app),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    tracing::info!("stopped");
    Ok(())
}

/// Services differ on trailing slashes: Keystone accepts `/v3/users/` like `/v3/users`, while
/// Glance answers 404 to `/v2/images/` (an empty image id) and Tempest checks both. So the
/// slash is trimmed before routing for Identity paths and for the version documents only.
fn trim_trailing_slash(mut req: axum::extract::Request) -> axum::extract::Request {
    let path = req.uri().path();
    let trim = path.len() > 1
        && path.ends_with('/')
        && (path.starts_with(IDENTITY_PREFIX)
            || path == "/image/"
            || path == "/image/v2/"
            || path == "/placement/"
            || path == "/compute/"
            || path == "/networking/"
            || path == "/networking/v2.0/");
    if trim {
        let new_path = path.trim_end_matches('/');
        let rebuilt = match req.uri().query() {
            Some(q) => format!("{new_path}?{q}"),
            None => new_path.to_string(),
        };
        if let Ok(pq) = rebuilt.parse::<axum::http::uri::PathAndQuery>() {
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query = Some(pq);
            if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
