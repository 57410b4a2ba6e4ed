//! The Networking service logic. Public methods taking an [`AuthContext`] serve the HTTP
//! API: they authorize with the policy, validate, write in one transaction and then tell
//! the backend the new desired state. Methods in [`internal`] serve other services of the
//! control plane (Compute) and skip the policy.
//!
//! Resources: [`networks`], [`subnets`], [`ports`] (with IP address management),
//! [`security_groups`], [`subnet_pools`] and [`address_scopes`]; [`quotas`] and the shared
//! request-body helpers live here too.

pub mod address_scopes;
pub mod agents;
pub mod body;
pub mod floating_ips;
pub mod internal;
pub mod ip_availability;
pub mod networks;
pub mod port_forwardings;
pub mod ports;
pub mod quotas;
pub mod rbac;
pub mod routers;
pub mod security_groups;
pub mod subnet_pools;
pub mod subnets;
pub mod tags;

use std::sync::Arc;
use std::time::Duration;

use ferrostack_common::{AuthContext, Authenticator};
use ferrostack_db::sqlx::AnyConnection;
use ferrostack_db::Db;
use ferrostack_policy::Policy;
use serde_json::{json, Value};

use crate::backend::*;
use crate::config::NetworkConfig;
use crate::error::{NetworkError, Result};
use crate::model::*;
use crate::store;

pub struct NetworkService {
    pub db: Db,
    pub config: NetworkConfig,
    pub policy: Policy,
    /// Validates `X-Auth-Token` (the Identity service).
    pub auth: Arc<dyn Authenticator>,
    pub backend: Arc<dyn NetworkBackend>,
    /// Told when a port of a device changed by another hand than the device's (Neutron's
    /// Nova notifier); set once Compute exists.
    device_events: std::sync::OnceLock<Arc<dyn DeviceEvents>>,
}

/// What Neutron's Nova notifier is: Compute hears that something of a server's ports it
/// shows (a floating IP) changed, and refreshes its cache of them (`network-changed`).
pub trait DeviceEvents: Send + Sync {
    fn ports_changed(&self, device_id: &str);
}

/// How many times a write that lost a race on a unique key (an IP address, a MAC, a
/// segment) is tried again from the start.
const WRITE_ATTEMPTS: usize = 30;

impl NetworkService {
    pub async fn new(
        db: Db,
        config: NetworkConfig,
        policy: Policy,
        auth: Arc<dyn Authenticator>,
        backend: Arc<dyn NetworkBackend>,
    ) -> anyhow::Result<Arc<NetworkService>> {
        db.migrate("network", crate::migrations::MIGRATIONS).await?;
        {
            let mut tx = db.begin_write().await?;
            store::backfill_network_rbac(&mut tx).await?;
            tx.commit().await?;
        }
        anyhow::ensure!(
            config.geneve_vni_min >= 1 && config.geneve_vni_min <= config.geneve_vni_max,
            "network: geneve_vni_min..geneve_vni_max is not a range"
        );
        Ok(Arc::new(NetworkService {
            db,
            config,
            policy,
            auth,
            backend,
            device_events: std::sync::OnceLock::new(),
        }))
    }

    /// Who hears of port changes of servers (once; a second call changes nothing).
    pub fn set_device_events(&self, events: Arc<dyn DeviceEvents>) {
        let _ = self.device_events.set(events);
    }

    /// Tells Compute that these ports changed, for those of them a server holds.
    pub(crate) async fn notify_devices(&self, port_ids: &[Option<String>]) {
        let Some(events) = self.device_events.get() else {
            return;
        };
        let Ok(mut c) = self.conn().await else {
            return;
        };
        for id in port_ids.iter().flatten() {
            if let Ok(Some(p)) = store::get_port(&mut c, id).await {
                if p.device_owner.starts_with("compute:") && !p.device_id.is_empty() {
                    events.ports_changed(&p.device_id);
                }
            }
        }
    }

    pub fn default_policy(overrides: Option<&str>) -> anyhow::Result<Policy> {
        let policy = Policy::new(crate::policy_defaults::RULES.iter().copied())?;
        Ok(match overrides {
            Some(yaml) => policy.with_overrides(yaml)?,
            None => policy,
        })
    }

    pub fn is_admin(&self, ctx: &AuthContext) -> bool {
        self.allowed(ctx, "context_is_admin", &json!({}))
    }

    /// Whether the policy allows `rule` on `target`. A target naming the projects a network
    /// is shared with by RBAC policies (`shared_with`) is `shared` for those projects, as
    /// Neutron's network dict says `shared` to a project an `access_as_shared` policy names.
    pub fn allowed(&self, ctx: &AuthContext, rule: &str, target: &Value) -> bool {
        let granted = ctx.project_id().is_some_and(|p| {
            target
                .get("shared_with")
                .and_then(Value::as_array)
                .is_some_and(|l| l.iter().any(|v| v.as_str() == Some(p)))
        });
        if granted {
            let mut t = target.clone();
            t["shared"] = json!(true);
            return self.policy.enforce(rule, &ctx.policy_credentials(), &t);
        }
        self.policy.enforce(rule, &ctx.policy_credentials(), target)
    }

    /// `shared` as the caller sees it: shared with everyone, or with its project.
    pub(crate) fn shared_for(&self, ctx: &AuthContext, n: &Network) -> bool {
        n.shared
            || ctx
                .project_id()
                .is_some_and(|p| n.shared_with.iter().any(|s| s == p))
    }

    pub fn authorize(&self, ctx: &AuthContext, rule: &str, target: &Value) -> Result<()> {
        if self.allowed(ctx, rule, target) {
            Ok(())
        } else {
            Err(NetworkError::policy(&format!("rule:{rule}")))
        }
    }

    /// The caller's project; Neutron's resources all belong to one.
    pub fn project_of(&self, ctx: &AuthContext) -> Result<String> {
        ctx.project_id().map(str::to_string).ok_or_else(|| {
            NetworkError::bad_request("A project-scoped token is required for this request.")
        })
    }

    /// The project whose rows a list starts from; `None` (all) for administrators.
    fn list_scope(&self, ctx: &AuthContext) -> Option<String> {
        if self.is_admin(ctx) {
            None
        } else {
            Some(ctx.project_id().unwrap_or("").to_string())
        }
    }

    /// Removes the attributes `get_<resource>:<attribute>` rules hide from the caller.
    fn strip(&self, ctx: &AuthContext, resource: &str, target: &Value, view: &mut Value) {
        let Some(map) = view.as_object_mut() else {
            return;
        };
        let hidden: Vec<String> = map
            .keys()
            .filter(|k| {
                let rule = format!("get_{resource}:{k}");
                self.policy.contains(&rule) && !self.allowed(ctx, &rule, target)
            })
            .cloned()
            .collect();
        for k in hidden {
            map.remove(&k);
        }
    }

    async fn conn(
        &self,
    ) -> Result<ferrostack_db::sqlx::pool::PoolConnection<ferrostack_db::DbKind>> {
        Ok(self.db.pool().acquire().await?)
    }

    // ------------------------------------------------------------ the backend

    /// The desired state of one network, from the database.
    pub async fn network_state(
        &self,
        c: &mut AnyConnection,
        id: &str,
    ) -> Result<Option<NetworkState>> {
        let Some(network) = store::get_network(c, id).await? else {
            return Ok(None);
        };
        let subnets = store::subnets_of_network(c, id).await?;
        let metadata_port = store::ports_of_network(c, id)
            .await?
            .into_iter()
            .find(|p| p.device_owner == OWNER_DISTRIBUTED);
        Ok(Some(NetworkState {
            network,
            subnets,
            metadata_port,
        }))
    }

    fn port_state_from(port: Port, network: &Network, subnets: &[Subnet]) -> PortState {
        let addresses = port
            .fixed_ips
            .iter()
            .filter_map(|ip| {
                let s = subnets.iter().find(|s| s.id == ip.subnet_id)?;
                Some(PortAddress {
                    subnet_id: s.id.clone(),
                    ip_address: ip.ip_address.clone(),
                    ip_version: s.ip_version,
                    cidr: s.cidr.clone(),
                    gateway_ip: s.gateway_ip.clone(),
                    enable_dhcp: s.enable_dhcp,
                    dns_nameservers: s.dns_nameservers.clone(),
                    ipv6_address_mode: s.ipv6_address_mode.clone(),
                })
            })
            .collect();
        PortState {
            security_group_ids: port.security_groups.clone(),
            port,
            network_mtu: network.mtu,
            network_type: network.network_type.clone(),
            physical_network: network.physical_network.clone(),
            segmentation_id: network.segmentation_id,
            network_external: network.external,
            addresses,
        }
    }

    pub async fn port_state(&self, c: &mut AnyConnection, port: Port) -> Result<PortState> {
        let network = store::get_network(c, &port.network_id)
            .await?
            .ok_or_else(|| NetworkError::network_not_found(&port.network_id))?;
        let subnets = store::subnets_of_network(c, &port.network_id).await?;
        Ok(Self::port_state_from(port, &network, &subnets))
    }

    pub async fn group_state(
        &self,
        c: &mut AnyConnection,
        id: &str,
    ) -> Result<Option<SecurityGroupState>> {
        let Some(group) = store::get_group(c, id).await? else {
            return Ok(None);
        };
        let rules = store::rules_of_group(c, id).await?;
        Ok(Some(SecurityGroupState { group, rules }))
    }

    /// Everything the backend should hold.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let mut c = self.conn().await?;
        let networks = store::list_networks(&mut c, None).await?;
        let all_subnets = store::list_subnets(&mut c, None).await?;
        let mut snap = Snapshot::default();
        for n in &networks {
            let subnets: Vec<Subnet> = all_subnets
                .iter()
                .filter(|s| s.network_id == n.id)
                .cloned()
                .collect();
            snap.networks.push(NetworkState {
                network: n.clone(),
                subnets,
                metadata_port: None,
            });
        }
        for p in store::list_ports(&mut c, None).await? {
            if p.device_owner == OWNER_DISTRIBUTED {
                if let Some(ns) = snap
                    .networks
                    .iter_mut()
                    .find(|ns| ns.network.id == p.network_id)
                {
                    ns.metadata_port = Some(p.clone());
                }
            }
            if let Some(ns) = snap
                .networks
                .iter()
                .find(|ns| ns.network.id == p.network_id)
            {
                snap.ports
                    .push(Self::port_state_from(p, &ns.network, &ns.subnets));
            }
        }
        for g in store::list_groups(&mut c, None).await? {
            let rules = store::rules_of_group(&mut c, &g.id).await?;
            snap.security_groups
                .push(SecurityGroupState { group: g, rules });
        }
        for r in store::list_routers(&mut c, None).await? {
            if let Some(st) = self.router_state(&mut c, &r.id).await? {
                snap.routers.push(st);
            }
        }
        for f in store::list_floating_ips(&mut c, None).await? {
            let port_forwardings = store::port_forwardings_of_fip(&mut c, &f.id).await?;
            snap.floating_ips.push(FloatingIpState {
                floating_ip: f,
                port_forwardings,
            });
        }
        Ok(snap)
    }

    /// One reconciliation: the backend is made to match the database.
    pub async fn reconcile(&self) -> Result<()> {
        let snap = self.snapshot().await?;
        self.backend
            .full_sync(&snap)
            .await
            .map_err(|e| NetworkError::internal(e.to_string()))
    }

    /// Runs [`Self::reconcile`] at once (the backend may have lost state while this
    /// process was down, as the fake one always has) and then every `reconcile_interval`
    /// seconds, for the process's life.
    pub fn spawn_reconciler(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        let every = Duration::from_secs(self.config.reconcile_interval.max(1));
        tokio::spawn(async move {
            loop {
                if let Err(e) = service.reconcile().await {
                    tracing::warn!(backend = service.backend.name(), error = %e, "network reconciliation failed; trying again next period");
                }
                tokio::time::sleep(every).await;
            }
        })
    }

    fn logged(&self, what: &str, id: &str, r: Result<(), BackendError>) {
        if let Err(e) = r {
            tracing::warn!(backend = self.backend.name(), %what, %id, error = %e, "backend call failed; the reconciler will repair it");
        }
    }

    /// Tells the backend the current state of a network (after a commit).
    pub(crate) async fn push_network(&self, id: &str) {
        let state = match self.conn().await {
            Ok(mut c) => self.network_state(&mut c, id).await,
            Err(e) => Err(e),
        };
        match state {
            Ok(Some(s)) => {
                let r = self.backend.sync_network(&s).await;
                self.logged("sync_network", id, r);
            }
            Ok(None) => {
                let r = self.backend.delete_network(id).await;
                self.logged("delete_network", id, r);
            }
            Err(e) => tracing::warn!(%id, error = %e, "could not read a network for the backend"),
        }
    }

    pub(crate) async fn push_port(&self, id: &str) {
        let state = match self.conn().await {
            Ok(mut c) => match store::get_port(&mut c, id).await {
                Ok(Some(p)) => self.port_state(&mut c, p).await.map(Some),
                Ok(None) => Ok(None),
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e),
        };
        match state {
            Ok(Some(s)) => {
                let r = self.backend.sync_port(&s).await;
                self.logged("sync_port", id, r);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(%id, error = %e, "could not read a port for the backend"),
        }
    }

    pub(crate) async fn push_deleted_port(&self, state: &PortState) {
        let r = self.backend.delete_port(state).await;
        self.logged("delete_port", &state.port.id, r);
    }

    pub(crate) async fn push_group(&self, id: &str) {
        let state = match self.conn().await {
            Ok(mut c) => self.group_state(&mut c, id).await,
            Err(e) => Err(e),
        };
        match state {
            Ok(Some(s)) => {
                let r = self.backend.sync_security_group(&s).await;
                self.logged("sync_security_group", id, r);
            }
            Ok(None) => {
                let r = self.backend.delete_security_group(id).await;
                self.logged("delete_security_group", id, r);
            }
            Err(e) => {
                tracing::warn!(%id, error = %e, "could not read a security group for the backend")
            }
        }
    }
}

/// Retries `attempt` while it fails on a unique key another writer took first.
pub(crate) async fn retry_on_conflict<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    let mut i = 0;
    loop {
        match attempt(i).await {
            Ok(v) => return Ok(v),
            Err(Failure::Api(e)) => return Err(e),
            Err(Failure::Db(e))
                if ferrostack_db::is_unique_violation(&e) && i + 1 < WRITE_ATTEMPTS =>
            {
                i += 1;
                let jitter = rand::random::<u64>() % (5 * i as u64 + 1);
                tokio::time::sleep(Duration::from_millis(jitter)).await;
            }
            Err(Failure::Db(e)) => return Err(e.into()),
        }
    }
}

/// Why one attempt of a write failed: an answer for the client, or a database error that
/// may be a lost race.
pub(crate) enum Failure {
    Api(NetworkError),
    Db(ferrostack_db::sqlx::Error),
}

impl From<NetworkError> for Failure {
    fn from(e: NetworkError) -> Self {
        Failure::Api(e)
    }
}

impl From<Failure> for NetworkError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Api(e) => e,
            Failure::Db(e) => e.into(),
        }
    }
}

impl From<ferrostack_db::sqlx::Error> for Failure {
    fn from(e: ferrostack_db::sqlx::Error) -> Self {
        Failure::Db(e)
    }
}

impl From<ferrostack_db::DbError> for Failure {
    fn from(e: ferrostack_db::DbError) -> Self {
        match e {
            ferrostack_db::DbError::Sqlx(s) => Failure::Db(s),
            other => Failure::Api(other.into()),
        }
    }
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
