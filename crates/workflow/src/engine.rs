//! The engine: the `workflow_runs` table, the public operations (insert, kick, resume,
//! cancel, wait, queries) and crash injection. Leases are in [`lease`], the step loop with
//! its retries, backoff and unwinding in [`steps`].

mod lease;
mod steps;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ferrostack_db::sqlx::{self, Row};
use ferrostack_db::{Backend, Db, DbRow, Migration, RowExt, Tx};
use serde_json::Value;

use crate::Handler;
use lease::Take;

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "workflow_runs",
        sql: r#"
CREATE TABLE workflow_runs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL, state TEXT NOT NULL, step BIGINT NOT NULL, data TEXT NOT NULL, attempts BIGINT NOT NULL, error TEXT, cancel_requested BOOLEAN NOT NULL, owner TEXT, lease_until BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX workflow_runs_state ON workflow_runs (state);
CREATE INDEX workflow_runs_subject ON workflow_runs (subject, state);
"#,
        postgres: None,
    },
    // The latest step or undo error, for operators; `error` stays the public one.
    Migration {
        version: 2,
        name: "workflow_runs_last_error",
        sql: "ALTER TABLE workflow_runs ADD COLUMN last_error TEXT;\n",
        postgres: None,
    },
];

/// The columns [`RunRecord::from_row`] reads, named so that a later migration adding a
/// column can never shift what a query returns.
const RUN_COLUMNS: &str =
    "id, kind, subject, state, step, data, attempts, error, last_error, cancel_requested";

const RUNNING: &str = "running";
const UNDOING: &str = "undoing";
const DONE: &str = "done";
const FAILED: &str = "failed";

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("workflow database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("{0}")]
    Db(#[from] ferrostack_db::DbError),
    #[error("workflow run {0} does not exist")]
    NotFound(String),
    #[error("workflow run {0} did not finish in time")]
    Timeout(String),
    #[error("workflow run {0}: the lease could not be confirmed in time")]
    LeaseUnconfirmed(String),
}

/// Where a crash is injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashWhen {
    BeforeStep,
    /// After the step's effect, before its completion is recorded (it will run again).
    AfterStep,
    BeforeUndo,
    AfterUndo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashAction {
    /// `std::process::abort()`: the real thing, for tests that kill the binary.
    Abort,
    /// The engine stops dead without writing anything more, and refuses all further work,
    /// as if its process had died; a new engine on the same database then resumes.
    Halt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashPoint {
    pub kind: String,
    pub step: usize,
    pub when: CrashWhen,
    pub action: CrashAction,
}

impl CrashPoint {
    /// Parses `<kind>:<step>:<before|after|before-undo|after-undo>` (an `Abort` point).
    pub fn parse(text: &str) -> Option<CrashPoint> {
        let mut parts = text.rsplitn(3, ':');
        let when = match parts.next()? {
            "before" => CrashWhen::BeforeStep,
            "after" => CrashWhen::AfterStep,
            "before-undo" => CrashWhen::BeforeUndo,
            "after-undo" => CrashWhen::AfterUndo,
            _ => return None,
        };
        let step = parts.next()?.parse().ok()?;
        let kind = parts.next()?.to_string();
        if kind.is_empty() {
            return None;
        }
        Some(CrashPoint {
            kind,
            step,
            when,
            action: CrashAction::Abort,
        })
    }
}

/// A run as stored.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub id: String,
    pub kind: String,
    pub subject: String,
    pub state: String,
    pub step: i64,
    pub data: Value,
    pub attempts: i64,
    /// The public error: that of the step that failed, or "cancelled".
    pub error: Option<String>,
    /// The latest error of a step or an undo, with its detail, for operators and logs.
    pub last_error: Option<String>,
    pub cancel_requested: bool,
}

impl RunRecord {
    fn from_row(r: &DbRow) -> RunRecord {
        let data: String = r.get("data");
        RunRecord {
            id: r.get("id"),
            kind: r.get("kind"),
            subject: r.get("subject"),
            state: r.get("state"),
            step: r.get("step"),
            data: serde_json::from_str(&data).unwrap_or(Value::Null),
            attempts: r.get("attempts"),
            error: r.get("error"),
            last_error: r.get("last_error"),
            cancel_requested: r.flag("cancel_requested"),
        }
    }

    pub fn finished(&self) -> bool {
        self.state == DONE || self.state == FAILED
    }

    pub fn succeeded(&self) -> bool {
        self.state == DONE
    }
}

pub struct Engine {
    db: Db,
    owner: String,
    lease: Duration,
    handlers: RwLock<HashMap<String, Arc<dyn Handler>>>,
    crash: Mutex<Option<CrashPoint>>,
    dead: AtomicBool,
    /// Runs this engine is executing now (so a second kick does not start a second task).
    active: Mutex<HashSet<String>>,
    finished: tokio::sync::Notify,
    base_backoff: Duration,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Engine {
    pub async fn new(db: Db) -> Result<Arc<Engine>, WorkflowError> {
        Self::with_lease(db, Duration::from_secs(30)).await
    }

    /// An engine whose leases last `lease` (tests use short ones).
    pub async fn with_lease(db: Db, lease: Duration) -> Result<Arc<Engine>, WorkflowError> {
        db.migrate("workflow", MIGRATIONS).await?;
        let crash = std::env::var("FERROSTACK_CRASH_AT")
            .ok()
            .and_then(|v| CrashPoint::parse(&v));
        if let Some(c) = &crash {
            tracing::warn!(kind = %c.kind, step = c.step, when = ?c.when, "crash point armed (FERROSTACK_CRASH_AT)");
        }
        Ok(Arc::new(Engine {
            db,
            owner: uuid::Uuid::new_v4().to_string(),
            lease,
            handlers: RwLock::new(HashMap::new()),
            crash: Mutex::new(crash),
            dead: AtomicBool::new(false),
            active: Mutex::new(HashSet::new()),
            finished: tokio::sync::Notify::new(),
            base_backoff: Duration::from_millis(50),
        }))
    }

    pub fn register(&self, handler: Arc<dyn Handler>) {
        self.handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(handler.kind().to_string(), handler);
    }

    pub fn set_crash_point(&self, point: Option<CrashPoint>) {
        *self.crash.lock().unwrap_or_else(|e| e.into_inner()) = point;
    }

    /// Whether a Halt crash point stopped this engine.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// Inserts a run in the caller's transaction; nothing runs until [`Engine::kick`]. The
    /// run is leased to this engine from the start, so no other node's poller takes it
    /// between the commit and the kick (if this node dies before kicking, the lease expires
    /// and another node takes it over).
    pub async fn insert(
        &self,
        tx: &mut Tx<'_>,
        kind: &str,
        subject: &str,
        data: Value,
    ) -> Result<String, WorkflowError> {
        let id = uuid::Uuid::new_v4().to_string();
        let t = now_ms();
        sqlx::query(
            "INSERT INTO workflow_runs (id, kind, subject, state, step, data, attempts, cancel_requested, \
             owner, lease_until, created_at, updated_at) VALUES ($1, $2, $3, $4, 0, $5, 0, FALSE, $6, $7, $8, $8)",
        )
        .bind(&id)
        .bind(kind)
        .bind(subject)
        .bind(RUNNING)
        .bind(data.to_string())
        .bind(&self.owner)
        .bind(t + self.lease.as_millis() as i64)
        .bind(t)
        .execute(&mut **tx)
        .await?;
        Ok(id)
    }

    pub async fn start(
        self: &Arc<Self>,
        kind: &str,
        subject: &str,
        data: Value,
    ) -> Result<String, WorkflowError> {
        let mut tx = self.db.begin_write().await?;
        let id = self.insert(&mut tx, kind, subject, data).await?;
        tx.commit().await?;
        self.kick(&id);
        Ok(id)
    }

    /// Executes a committed run in a task of its own (no-op when it already runs here).
    pub fn kick(self: &Arc<Self>, run_id: &str) {
        if !self.is_dead() && self.reserve(run_id) {
            self.spawn_drive(run_id, false);
        }
    }

    /// Marks a run as executing here; false when it already is.
    fn reserve(&self, id: &str) -> bool {
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string())
    }

    fn release(&self, id: &str) {
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        self.finished.notify_waiters();
    }

    /// Drives a reserved run in a task of its own, then releases it.
    fn spawn_drive(self: &Arc<Self>, id: &str, held: bool) {
        let engine = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            engine.drive(&id, held).await;
            engine.release(&id);
        });
    }

    /// Picks up unfinished runs: on SQLite all of them (one node), on PostgreSQL those whose
    /// lease expired. Each is leased here before its task starts, so the count is of the
    /// runs this call took (not of those already running here or taken by another node
    /// meanwhile).
    pub async fn resume_all(self: &Arc<Self>) -> Result<usize, WorkflowError> {
        let mut n = 0;
        for id in self.takeable().await? {
            if self.is_dead() || !self.reserve(&id) {
                continue;
            }
            match self.take_lease(&id, Take::Start).await {
                Ok(true) => {
                    self.spawn_drive(&id, true);
                    n += 1;
                }
                Ok(false) => self.release(&id),
                Err(e) => {
                    self.release(&id);
                    return Err(e);
                }
            }
        }
        if n > 0 {
            tracing::info!(runs = n, "resumed unfinished workflows");
        }
        Ok(n)
    }

    /// Unfinished runs this engine may take at start, oldest first.
    async fn takeable(&self) -> Result<Vec<String>, WorkflowError> {
        let rows = sqlx::query(
            "SELECT id FROM workflow_runs WHERE state IN ($1, $2) \
             AND (owner IS NULL OR owner = $3 OR lease_until < $4 OR $5) ORDER BY created_at",
        )
        .bind(RUNNING)
        .bind(UNDOING)
        .bind(&self.owner)
        .bind(now_ms())
        .bind(self.db.backend() == Backend::Sqlite)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.iter().map(|r| r.get("id")).collect())
    }

    /// Keeps picking up runs other nodes left behind (their lease expired) every `every`.
    /// With one node (SQLite) [`Engine::resume_all`] at start is enough, but it costs one
    /// indexed query per tick either way.
    pub fn spawn_poller(self: &Arc<Self>, every: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(engine) = weak.upgrade() else { return };
                if engine.is_dead() {
                    return;
                }
                if let Err(e) = engine.resume_all().await {
                    tracing::warn!(error = %e, "could not look for abandoned workflows");
                }
            }
        });
    }

    /// The lease this engine takes on the runs it executes.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Asks a run to unwind at its next step boundary.
    pub async fn cancel(&self, run_id: &str) -> Result<(), WorkflowError> {
        sqlx::query("UPDATE workflow_runs SET cancel_requested = TRUE, updated_at = $1 WHERE id = $2 AND state = $3")
            .bind(now_ms())
            .bind(run_id)
            .bind(RUNNING)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    pub async fn get(&self, run_id: &str) -> Result<Option<RunRecord>, WorkflowError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM workflow_runs WHERE id = $1"
        ))
        .bind(run_id)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.as_ref().map(RunRecord::from_row))
    }

    /// Unfinished runs about `subject`.
    pub async fn active_for_subject(&self, subject: &str) -> Result<Vec<RunRecord>, WorkflowError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM workflow_runs WHERE subject = $1 AND state IN ($2, $3) \
             ORDER BY created_at"
        ))
        .bind(subject)
        .bind(RUNNING)
        .bind(UNDOING)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.iter().map(RunRecord::from_row).collect())
    }

    /// Every unfinished run (for leak checks and operators).
    pub async fn unfinished(&self) -> Result<Vec<RunRecord>, WorkflowError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM workflow_runs WHERE state IN ($1, $2) ORDER BY created_at"
        ))
        .bind(RUNNING)
        .bind(UNDOING)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.iter().map(RunRecord::from_row).collect())
    }

    /// Waits until the run is done or failed.
    pub async fn wait(&self, run_id: &str, timeout: Duration) -> Result<RunRecord, WorkflowError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.finished.notified();
            let rec = self
                .get(run_id)
                .await?
                .ok_or_else(|| WorkflowError::NotFound(run_id.to_string()))?;
            if rec.finished() {
                return Ok(rec);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(WorkflowError::Timeout(run_id.to_string()));
            }
            let pause = (deadline - now).min(Duration::from_millis(50));
            let _ = tokio::time::timeout(pause, notified).await;
        }
    }

    /// Deletes finished runs last updated before `older_than` ago.
    pub async fn purge_finished(&self, older_than: Duration) -> Result<u64, WorkflowError> {
        let cutoff = now_ms() - older_than.as_millis() as i64;
        let done =
            sqlx::query("DELETE FROM workflow_runs WHERE state IN ($1, $2) AND updated_at < $3")
                .bind(DONE)
                .bind(FAILED)
                .bind(cutoff)
                .execute(self.db.pool())
                .await?;
        Ok(done.rows_affected())
    }

    fn handler(&self, kind: &str) -> Option<Arc<dyn Handler>> {
        self.handlers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(kind)
            .cloned()
    }

    /// True when a crash point matches; Abort never returns, Halt kills the engine.
    fn crash_here(&self, kind: &str, step: usize, when: CrashWhen) -> bool {
        let point = self.crash.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match point {
            Some(p) if p.kind == kind && p.step == step && p.when == when => {
                tracing::warn!(kind, step, ?when, "crash point reached");
                match p.action {
                    CrashAction::Abort => std::process::abort(),
                    CrashAction::Halt => {
                        self.dead.store(true, Ordering::SeqCst);
                        true
                    }
                }
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_crash_points() {
        let p = CrashPoint::parse("server_boot:2:after").unwrap();
        assert_eq!(p.kind, "server_boot");
        assert_eq!(p.step, 2);
        assert_eq!(p.when, CrashWhen::AfterStep);
        assert_eq!(CrashPoint::parse("a:b:0:before-undo").unwrap().kind, "a:b");
        assert_eq!(
            CrashPoint::parse("x:1:after-undo").unwrap().when,
            CrashWhen::AfterUndo
        );
        assert!(CrashPoint::parse("x:one:before").is_none());
        assert!(CrashPoint::parse("x:1:sometime").is_none());
        assert!(CrashPoint::parse(":1:before").is_none());
    }
}
