//! The Identity service logic: everything between an HTTP handler and the store.
//!
//! [`Identity`] owns the store, the Fernet keys, the policy and two caches. Validated tokens
//! are cached (that is what makes validation cheap), keyed by the token text and stamped with
//! the identity *revision*: every write bumps the revision, so a cached entry never outlives a
//! change to a user, project, role or grant. Revocation events are kept in memory and
//! refreshed with the revision too, so a revoked token fails on its next use.

pub mod access_rules;
pub mod assignments;
pub mod auth;
pub mod bootstrap;
pub mod credentials;
pub mod domain_configs;
pub mod domain_projects;
pub mod endpoint_groups;
pub mod enforcement;
pub mod ep_filter;
pub mod limits;
pub mod oauth_consumers;
pub mod passwords;
pub mod policies;
pub mod resources;
pub mod trusts;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use ferrostack_common::AuthContext;
use ferrostack_db::Db;
use ferrostack_policy::Policy;
use serde_json::Value;

use crate::config::IdentityConfig;
use crate::error::{IdentityError, Result};
use crate::fernet::{FernetKey, KeyRepository};
use crate::model::{Endpoint, Revocation, Service};
use crate::store::ep_filter::Association;
use crate::store::Store;
pub use auth::{AuthRequest, IssuedToken, ValidatedToken};

/// Cached token validations, invalidated wholesale when the revision moves.
#[derive(Default)]
struct TokenCache {
    revision: i64,
    entries: HashMap<String, Arc<ValidatedToken>>,
}

const TOKEN_CACHE_MAX: usize = 100_000;

pub struct Identity {
    pub store: Store,
    pub config: IdentityConfig,
    pub policy: Policy,
    /// Public base URL of the Identity API, e.g. `http://127.0.0.1:5000/identity`.
    pub public_url: String,
    key_repo: KeyRepository,
    /// The key files loaded last (see [`KeyRepository::generation`]).
    key_generation: Mutex<Vec<u64>>,
    keys: RwLock<Arc<Vec<FernetKey>>>,
    /// Keys that encrypt credential blobs at rest, kept apart from the token keys.
    credential_keys: Vec<FernetKey>,
    revision: AtomicI64,
    cache: Mutex<TokenCache>,
    revocations: RwLock<Arc<Vec<Revocation>>>,
    /// Services and endpoints as of a revision: every token body shows the catalog, and it
    /// changes only through writes that bump the revision.
    catalog: Mutex<Option<(i64, Arc<Catalog>)>>,
}

impl Identity {
    /// Opens the service on a migrated database and an initialized key repository.
    pub async fn new(
        db: Db,
        config: IdentityConfig,
        policy: Policy,
        key_repo: KeyRepository,
        public_url: String,
    ) -> anyhow::Result<Arc<Identity>> {
        db.migrate("identity", crate::migrations::MIGRATIONS)
            .await?;
        key_repo.setup()?;
        let keys = key_repo.load()?;
        let credential_repo =
            KeyRepository::new(format!("{}-credential", key_repo.dir().display()), 3);
        credential_repo.setup()?;
        let credential_keys = credential_repo.load()?;
        let store = Store::new(db);
        let revision = store.revision().await?;
        let revocations = store.revocations(now_secs()).await?;
        Ok(Arc::new(Identity {
            store,
            config,
            policy,
            public_url: public_url.trim_end_matches('/').to_string(),
            key_generation: Mutex::new(key_repo.generation().unwrap_or_default()),
            key_repo,
            keys: RwLock::new(Arc::new(keys)),
            credential_keys,
            revision: AtomicI64::new(revision),
            cache: Mutex::new(TokenCache::default()),
            revocations: RwLock::new(Arc::new(revocations)),
            catalog: Mutex::new(None),
        }))
    }

    /// The default Keystone policy with an operator's overrides applied.
    pub fn default_policy(overrides: Option<&str>) -> anyhow::Result<Policy> {
        let policy = Policy::new(crate::policy_defaults::RULES.iter().copied())?;
        Ok(match overrides {
            Some(yaml) => policy.with_overrides(yaml)?,
            None => policy,
        })
    }

    pub fn v3_url(&self) -> String {
        format!("{}/v3", self.public_url)
    }

    fn keys(&self) -> Arc<Vec<FernetKey>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Picks up a rotation made by `ferrostack admin fernet-rotate` (or by an operator
    /// distributing keys to this node): reloads the keys when the files changed. Servers call
    /// this every few seconds; a token signed with a key this node has not loaded yet fails
    /// until then, as with Keystone between key distribution and its next read.
    pub fn reload_keys_if_rotated(&self) -> Result<bool> {
        let current = self
            .key_repo
            .generation()
            .map_err(|e| IdentityError::Internal(e.into()))?;
        let mut seen = self
            .key_generation
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if *seen == current {
            return Ok(false);
        }
        self.reload_keys()?;
        *seen = current;
        tracing::info!("fernet keys reloaded after a rotation");
        Ok(true)
    }

    /// Re-reads the key repository.
    pub fn reload_keys(&self) -> Result<()> {
        let keys = self
            .key_repo
            .load()
            .map_err(|e| IdentityError::Internal(e.into()))?;
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
        Ok(())
    }

    /// Records that identity data changed: caches drop their entries.
    pub async fn changed(&self) -> Result<()> {
        let rev = self.store.bump_revision().await?;
        self.revision.store(rev, Ordering::SeqCst);
        Ok(())
    }

    /// Catches up with writes made by other control nodes sharing the database.
    pub async fn sync_revision(&self) -> Result<()> {
        let rev = self.store.revision().await?;
        if rev != self.revision.load(Ordering::SeqCst) {
            let revocations = self.store.revocations(now_secs()).await?;
            *self.revocations.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(revocations);
            self.revision.store(rev, Ordering::SeqCst);
        }
        Ok(())
    }

    pub async fn add_revocation(&self, event: Revocation) -> Result<()> {
        // Keep the event as long as a token issued before it can live.
        let keep_until = now_secs() + self.config.token_expiration + 60;
        self.store.insert_revocation(&event, keep_until).await?;
        {
            let mut guard = self.revocations.write().unwrap_or_else(|p| p.into_inner());
            let mut list = guard.as_ref().clone();
            list.push(event);
            *guard = Arc::new(list);
        }
        self.changed().await
    }

    fn cached(&self, token: &str) -> Option<Arc<ValidatedToken>> {
        let rev = self.revision.load(Ordering::SeqCst);
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.revision != rev {
            return None;
        }
        cache.entries.get(token).cloned()
    }

    fn remember(&self, token: &str, validated: Arc<ValidatedToken>, revision: i64) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.revision != revision {
            cache.entries.clear();
            cache.revision = revision;
        }
        if cache.entries.len() >= TOKEN_CACHE_MAX {
            cache.entries.clear();
        }
        cache.entries.insert(token.to_string(), validated);
    }

    /// The services and endpoints, read from the store at most once per revision.
    pub async fn catalog(&self) -> Result<Arc<Catalog>> {
        let rev = self.revision.load(Ordering::SeqCst);
        if let Some((at, c)) = self
            .catalog
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            if *at == rev {
                return Ok(c.clone());
            }
        }
        let endpoints = self.store.endpoints().await?;
        let project_endpoints = ep_filter::project_endpoint_sets(
            &endpoints,
            &self.store.endpoint_groups().await?,
            &self.store.associations(Association::Endpoint).await?,
            &self.store.associations(Association::EndpointGroup).await?,
        );
        let fresh = Arc::new(Catalog {
            services: self.store.services().await?,
            endpoints,
            project_endpoints,
        });
        *self.catalog.lock().unwrap_or_else(|p| p.into_inner()) = Some((rev, fresh.clone()));
        Ok(fresh)
    }

    /// Checks `rule` for `ctx` on `target`; 403 naming the rule when denied.
    pub fn authorize(&self, ctx: &AuthContext, rule: &str, target: &Value) -> Result<()> {
        if self.policy.enforce(rule, &ctx.policy_credentials(), target) {
            Ok(())
        } else {
            Err(IdentityError::Forbidden(rule.to_string()))
        }
    }
}

/// The catalog's raw material; `http::views` renders it per token (project id templates).
pub struct Catalog {
    pub services: Vec<Service>,
    pub endpoints: Vec<Endpoint>,
    /// OS-EP-FILTER: for each project with associations, the endpoints its catalog shows.
    pub project_endpoints: HashMap<String, std::collections::HashSet<String>>,
}

pub fn now_secs() -> i64 {
    ferrostack_db::now_unix()
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl ferrostack_common::Authenticator for Identity {
    fn authenticate(
        &self,
        token: &str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Arc<AuthContext>>> + Send + '_>>
    {
        let token = token.to_string();
        Box::pin(async move {
            self.validate(&token)
                .await
                .ok()
                .map(|v| Arc::new(v.ctx.clone()))
        })
    }
}
