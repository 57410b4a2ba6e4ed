//! The Placement service's logic. Writes run in a SQL transaction ([`Write`]) that checks
//! generations and capacity against the database itself, bumps the revision counter and,
//! once committed, reloads the providers it touched into the in-memory [`Snapshot`] that
//! every read and search uses. A control node that sees the revision move without having
//! written (another node did) reloads the whole snapshot.
//!
//! On SQLite the service serializes its own writers (one process owns the file); on
//! PostgreSQL concurrent claims lock the provider rows they touch, in id order.

pub mod allocations;
pub mod classes;
pub mod filter;
pub mod providers;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use ferrostack_common::{AuthContext, Authenticator};
use ferrostack_db::{Backend, Db, Tx};
use ferrostack_policy::Policy;
use serde_json::json;

use crate::error::{PlacementError, Result};
use crate::model::Snapshot;
use crate::store;

pub struct PlacementService {
    pub db: Db,
    pub policy: Policy,
    pub auth: Arc<dyn Authenticator>,
    snapshot: RwLock<Snapshot>,
    /// The revision the snapshot reflects, as far as this node knows.
    seen_revision: AtomicI64,
    /// SQLite allows one writer; queueing here is cheaper than the engine's busy retries.
    sqlite_writer: tokio::sync::Mutex<()>,
    /// Reloads read the database and apply in one critical section, so an older read can
    /// never overwrite a newer one.
    reload_lock: tokio::sync::Mutex<()>,
    /// Resource class and trait names known to exist (a cache: a miss asks the database).
    names: RwLock<classes::KnownNames>,
}

/// An open write: the transaction, the providers it changes, and (SQLite) the writer slot.
pub struct Write<'a> {
    pub tx: Tx<'static>,
    touched: BTreeSet<i64>,
    /// Usage changes the write knows exactly (a claim holds the provider rows), applied to
    /// the snapshot without reading the providers back.
    patches: Vec<UsagePatch>,
    _slot: Option<tokio::sync::MutexGuard<'a, ()>>,
}

/// A provider's usage and generation as a committed claim left them.
#[derive(Debug)]
pub struct UsagePatch {
    pub id: i64,
    pub generation: i64,
    pub used: std::collections::BTreeMap<String, i64>,
}

impl Write<'_> {
    /// Marks providers whose snapshot entry must be reloaded after commit.
    pub fn touch(&mut self, id: i64) {
        self.touched.insert(id);
    }

    pub fn touch_all(&mut self, ids: impl IntoIterator<Item = i64>) {
        self.touched.extend(ids);
    }

    pub fn patch(&mut self, patch: UsagePatch) {
        self.patches.push(patch);
    }
}

impl PlacementService {
    pub async fn new(
        db: Db,
        policy: Policy,
        auth: Arc<dyn Authenticator>,
    ) -> anyhow::Result<Arc<PlacementService>> {
        db.migrate("placement", crate::migrations::MIGRATIONS)
            .await?;
        let service = Arc::new(PlacementService {
            db,
            policy,
            auth,
            snapshot: RwLock::new(Snapshot::default()),
            seen_revision: AtomicI64::new(-1),
            sqlite_writer: tokio::sync::Mutex::new(()),
            reload_lock: tokio::sync::Mutex::new(()),
            names: RwLock::new(classes::KnownNames::default()),
        });
        service.seed_standard().await?;
        service.reload_all().await?;
        Ok(service)
    }

    pub fn default_policy(overrides: Option<&str>) -> anyhow::Result<Policy> {
        let policy = Policy::new(crate::policy_defaults::RULES.iter().copied())?;
        Ok(match overrides {
            Some(yaml) => policy.with_overrides(yaml)?,
            None => policy,
        })
    }

    /// Allows the call when the policy rule passes for the caller.
    pub fn authorize(&self, ctx: &AuthContext, rule: &str) -> Result<()> {
        let target = json!({"project_id": ctx.project_id().unwrap_or_default()});
        if self
            .policy
            .enforce(rule, &ctx.policy_credentials(), &target)
        {
            Ok(())
        } else {
            Err(PlacementError::forbidden(format!(
                "Policy does not allow {rule} to be performed."
            )))
        }
    }

    /// The snapshot for reading (searches hold it for the length of one search).
    pub fn snapshot(&self) -> RwLockReadGuard<'_, Snapshot> {
        self.snapshot.read().unwrap_or_else(|e| e.into_inner())
    }

    pub async fn begin(&self) -> Result<Write<'_>> {
        let slot = match self.db.backend() {
            Backend::Sqlite => Some(self.sqlite_writer.lock().await),
            Backend::Postgres => None,
        };
        Ok(Write {
            tx: self.db.begin_write().await?,
            touched: BTreeSet::new(),
            patches: Vec::new(),
            _slot: slot,
        })
    }

    /// Commits `w` and brings the snapshot up to date with what it changed.
    pub async fn commit(&self, mut w: Write<'_>) -> Result<()> {
        let revision = store::bump_revision(&mut w.tx).await?;
        let Write {
            tx,
            touched,
            patches,
            _slot,
        } = w;
        tx.commit().await?;
        // The writer slot is released before the reload, which needs no exclusivity.
        drop(_slot);
        self.apply_patches(patches.into_iter().filter(|p| !touched.contains(&p.id)));
        let touched: Vec<i64> = touched.into_iter().collect();
        self.reload(&touched).await?;
        // Revisions are taken in commit order; a gap means another node wrote in between,
        // which the periodic sync picks up with a full reload.
        let _ = self.seen_revision.compare_exchange(
            revision - 1,
            revision,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        Ok(())
    }

    pub fn postgres(&self) -> bool {
        self.db.backend() == Backend::Postgres
    }

    /// Reloads the given providers (removing those gone) into the snapshot.
    async fn reload(&self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let _serial = self.reload_lock.lock().await;
        let fresh = store::load_providers(&self.db, Some(ids)).await?;
        let mut snap = self.snapshot.write().unwrap_or_else(|e| e.into_inner());
        let found: BTreeSet<i64> = fresh.iter().map(|p| p.id).collect();
        for id in ids {
            if !found.contains(id) {
                snap.remove(*id);
            }
        }
        for p in fresh {
            // A claim's patch may already have put a newer state there (generations only
            // grow; renames and re-parenting keep the generation, so equal still applies).
            if snap
                .get(p.id)
                .is_none_or(|old| old.generation <= p.generation)
            {
                snap.upsert(p);
            }
        }
        Ok(())
    }

    /// Applies claim results in any order: a patch older than what the snapshot holds is
    /// dropped.
    fn apply_patches(&self, patches: impl Iterator<Item = UsagePatch>) {
        let mut snap = self.snapshot.write().unwrap_or_else(|e| e.into_inner());
        for patch in patches {
            if let Some(p) = snap.providers.get_mut(&patch.id) {
                if p.generation < patch.generation {
                    p.generation = patch.generation;
                    p.used = patch.used;
                }
            }
        }
    }

    /// Replaces the snapshot with the database's whole state.
    pub async fn reload_all(&self) -> Result<()> {
        let _serial = self.reload_lock.lock().await;
        let revision = store::revision(&self.db).await?;
        let providers = store::load_providers(&self.db, None).await?;
        let snap = Snapshot::from_providers(providers);
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = snap;
        self.seen_revision.store(revision, Ordering::SeqCst);
        Ok(())
    }

    /// Follows writes made by other control nodes (called every second on PostgreSQL).
    pub async fn sync_revision(&self) -> Result<()> {
        let revision = store::revision(&self.db).await?;
        if revision != self.seen_revision.load(Ordering::SeqCst) {
            self.reload_all().await?;
        }
        Ok(())
    }
}

/// Microseconds since the epoch, for `created_at`/`updated_at`.
pub fn now() -> i64 {
    ferrostack_common::time::now_micros()
}
