//! The Compute service's logic: flavors, key pairs, servers and their actions, the
//! scheduler and the hosts. Handlers call one method here; multi-step operations (boot,
//! delete, power actions) are workflows ([`workflows`]) started in the same transaction
//! that moves the server into its task state, so a crash at any point either resumes or
//! unwinds them.

pub mod action_events;
pub mod addresses;
pub mod agents;
pub mod consoles;
pub mod extras;
pub mod flavors;
pub mod hosts;
pub mod image_proxy;
pub mod interfaces;
pub mod keypairs;
pub mod metadata;
pub mod networking;
pub mod rebuild;
pub mod rescue;
pub mod resize;
pub mod scheduler;
pub mod security_groups;
pub mod server_groups;
pub mod server_migrations;
pub mod server_security_groups;
pub mod servers;
pub mod shelve;
pub mod snapshot;
pub mod usage;
pub mod workflow_events;
pub mod workflows;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ferrostack_common::limits::LimitSource;
use ferrostack_common::{AuthContext, Authenticator};
use ferrostack_db::Db;
use ferrostack_image::ImageService;
use ferrostack_placement::PlacementService;
use ferrostack_policy::Policy;
use ferrostack_workflow::Engine;
use serde_json::{json, Value};

use crate::error::{ComputeError, Result};
use crate::host::HostAgent;

/// Operator settings of the Compute service.
#[derive(Clone, serde::Deserialize)]
#[serde(default)]
pub struct ComputeConfig {
    /// The availability zone hosts are in unless told otherwise (Nova's
    /// `default_availability_zone`).
    pub default_availability_zone: String,
    /// How many candidates the scheduler asks Placement for.
    pub max_placement_results: usize,
    /// Seconds a host may stay silent before its service shows `down`.
    pub service_down_time: i64,
    /// Seconds an ACPI shutdown may take before the VM is stopped hard.
    pub shutdown_timeout: u64,
    /// Seconds a boot waits for its ports to come up in the data plane before the server
    /// is called ACTIVE (Nova's `vif_plugging_timeout`; 0: do not wait).
    pub vif_plugging_timeout: u64,
    /// A port that did not come up in time fails the boot (Nova's `vif_plugging_is_fatal`);
    /// otherwise the server goes ACTIVE anyway.
    pub vif_plugging_is_fatal: bool,
    /// Milliseconds a control node's claim on a running workflow lasts without renewal;
    /// after a node dies, another takes its workflows over once this has passed.
    pub workflow_lease_ms: u64,
    /// The secret the metadata proxy signs each guest's requests with (Nova's
    /// `metadata_proxy_shared_secret`); without it the metadata service answers no one.
    pub metadata_proxy_shared_secret: Option<String>,
    /// The secret remote compute agents and the control plane present to each other;
    /// without it no remote agent is accepted (the agent inside `ferrostack up` needs none).
    pub agent_secret: Option<String>,
    /// The serial console proxy's base URL handed to users, `ws://host:port/serial-console/`
    /// (Nova's `[serial_console] base_url`); without it serial consoles are unavailable.
    pub serial_proxy_url: Option<String>,
    /// Seconds a console token stays valid (Nova's `[consoleauth] token_ttl`).
    pub console_token_ttl: u64,
    /// The scheduler's weigher multipliers (Nova's `ram_weight_multiplier`,
    /// `cpu_weight_multiplier`, `disk_weight_multiplier`, `soft_affinity_weight_multiplier`
    /// and `soft_anti_affinity_weight_multiplier`, here `[compute.weight_multipliers]` `ram`,
    /// `cpu`, `disk`, `soft_affinity`, `soft_anti_affinity`; 1.0 each by default).
    pub weight_multipliers: scheduler::Multipliers,
}

/// Everything but the secret, which must not reach a log.
impl std::fmt::Debug for ComputeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComputeConfig")
            .field("default_availability_zone", &self.default_availability_zone)
            .field("max_placement_results", &self.max_placement_results)
            .field("service_down_time", &self.service_down_time)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("workflow_lease_ms", &self.workflow_lease_ms)
            .field(
                "metadata_proxy_shared_secret",
                &self.metadata_proxy_shared_secret.as_ref().map(|_| "***"),
            )
            .field("agent_secret", &self.agent_secret.as_ref().map(|_| "***"))
            .field("serial_proxy_url", &self.serial_proxy_url)
            .field("console_token_ttl", &self.console_token_ttl)
            .field("weight_multipliers", &self.weight_multipliers)
            .finish()
    }
}

impl Default for ComputeConfig {
    fn default() -> Self {
        ComputeConfig {
            default_availability_zone: "nova".into(),
            max_placement_results: 1000,
            service_down_time: 60,
            shutdown_timeout: 60,
            vif_plugging_timeout: 300,
            vif_plugging_is_fatal: true,
            workflow_lease_ms: 30_000,
            metadata_proxy_shared_secret: None,
            agent_secret: None,
            serial_proxy_url: None,
            console_token_ttl: 600,
            weight_multipliers: Default::default(),
        }
    }
}

pub struct ComputeService {
    pub db: Db,
    pub config: ComputeConfig,
    pub policy: Policy,
    pub auth: Arc<dyn Authenticator>,
    pub placement: Arc<PlacementService>,
    pub image: Arc<ImageService>,
    pub engine: Arc<Engine>,
    /// The agents of the hosts this control node can reach, by host name.
    hosts: RwLock<HashMap<String, Arc<dyn HostAgent>>>,
    limits: RwLock<Option<Arc<dyn LimitSource>>>,
    /// The Networking service, once the binary plugs it in; without it servers get no NICs.
    networking: RwLock<Option<Arc<dyn crate::network::Networking>>>,
    /// Held while one server is scheduled and placed, so the servers of one request (or of
    /// requests at the same moment) are placed one after the other and each one's filters
    /// and weighers see where the previous went. Other control nodes schedule in parallel;
    /// Placement's claims and the group check in `place_in` keep them right.
    scheduling: tokio::sync::Mutex<()>,
}

impl ComputeService {
    pub async fn new(
        db: Db,
        config: ComputeConfig,
        policy: Policy,
        auth: Arc<dyn Authenticator>,
        placement: Arc<PlacementService>,
        image: Arc<ImageService>,
    ) -> anyhow::Result<Arc<ComputeService>> {
        db.migrate("compute", crate::migrations::MIGRATIONS).await?;
        let lease = std::time::Duration::from_millis(config.workflow_lease_ms.max(100));
        let engine = Engine::with_lease(db.clone(), lease).await?;
        let service = Arc::new(ComputeService {
            db,
            config,
            policy,
            auth,
            placement,
            image,
            engine,
            hosts: RwLock::new(HashMap::new()),
            limits: RwLock::new(None),
            networking: RwLock::new(None),
            scheduling: tokio::sync::Mutex::new(()),
        });
        workflows::register(&service);
        Ok(service)
    }

    /// Resumes the workflows a previous run of this process left unfinished. Call once the
    /// hosts this node runs are attached, so a resumed step can reach them.
    pub async fn resume(&self) -> anyhow::Result<usize> {
        let n = self.engine.resume_all().await?;
        if self.db.backend() == ferrostack_db::Backend::Postgres {
            // Other control nodes may die holding workflows: take them over when their
            // leases run out.
            self.engine.spawn_poller(self.engine.lease() / 2);
        }
        Ok(n)
    }

    pub fn default_policy(overrides: Option<&str>) -> anyhow::Result<Policy> {
        let policy = Policy::new(crate::policy_defaults::RULES.iter().copied())?;
        Ok(match overrides {
            Some(yaml) => policy.with_overrides(yaml)?,
            None => policy,
        })
    }

    pub fn set_limits(&self, source: Arc<dyn LimitSource>) {
        *self.limits.write().unwrap_or_else(|e| e.into_inner()) = Some(source);
    }

    pub(crate) fn limits(&self) -> Option<Arc<dyn LimitSource>> {
        self.limits
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Plugs in the Networking service: from now on servers get NICs (ports) from it.
    pub fn set_networking(&self, networking: Arc<dyn crate::network::Networking>) {
        *self.networking.write().unwrap_or_else(|e| e.into_inner()) = Some(networking);
    }

    pub(crate) fn networking(&self) -> Option<Arc<dyn crate::network::Networking>> {
        self.networking
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn attach_agent(&self, host: &str, agent: Arc<dyn HostAgent>) {
        self.hosts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(host.to_string(), agent);
    }

    /// The agent of `host`: one attached to this process, else a remote one at the URL it
    /// registered (with any control node: the URL is in the database).
    pub(crate) async fn agent(&self, host: &str) -> Result<Option<Arc<dyn HostAgent>>> {
        let attached = self
            .hosts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(host)
            .cloned();
        if attached.is_some() {
            return Ok(attached);
        }
        let Some(secret) = self.config.agent_secret.as_deref() else {
            return Ok(None);
        };
        let url: Option<Option<String>> = ferrostack_db::sqlx::query_scalar(
            "SELECT agent_url FROM compute_nodes WHERE host = $1",
        )
        .bind(host)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(url) = url.flatten() else {
            return Ok(None);
        };
        let agent: Arc<dyn HostAgent> =
            Arc::new(crate::host_http::HttpHostAgent::new(&url, secret));
        self.attach_agent(host, agent.clone());
        Ok(Some(agent))
    }

    /// Whether the caller may do `rule` on something of `project_id` (and `user_id`).
    pub fn allowed(&self, ctx: &AuthContext, rule: &str, project_id: &str, user_id: &str) -> bool {
        let target = json!({"project_id": project_id, "user_id": user_id});
        self.policy
            .enforce(rule, &ctx.policy_credentials(), &target)
    }

    /// Allows the call when the policy rule passes for the caller's own project.
    pub fn authorize(&self, ctx: &AuthContext, rule: &str) -> Result<()> {
        let project = ctx.project_id().unwrap_or_default().to_string();
        self.authorize_on(ctx, rule, &project, &ctx.user_id.clone())
    }

    pub fn authorize_on(
        &self,
        ctx: &AuthContext,
        rule: &str,
        project_id: &str,
        user_id: &str,
    ) -> Result<()> {
        if self.allowed(ctx, rule, project_id, user_id) {
            Ok(())
        } else {
            Err(ComputeError::forbidden(format!(
                "Policy doesn't allow {rule} to be performed."
            )))
        }
    }

    pub fn is_admin(&self, ctx: &AuthContext) -> bool {
        self.policy
            .enforce("context_is_admin", &ctx.policy_credentials(), &Value::Null)
    }
}

/// Microseconds since the epoch.
pub fn now() -> i64 {
    ferrostack_common::time::now_micros()
}
