//! The engine: the `workflow_runs` table, ownership leases, the step loop, retries and
//! backoff, cancellation and crash injection.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ferrostack_db::sqlx::{self, Row};
use ferrostack_db::{Backend, Db, DbRow, Migration, RowExt, Tx};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::{Handler, Run, StepError};

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

/// The progress one write records.
struct Progress<'a> {
    state: &'a str,
    step: i64,
    data: &'a Value,
    attempts: i64,
    /// The public error; `None` keeps the one recorded.
    error: Option<&'a str>,
    /// The latest step or undo error; `None` keeps the one recorded.
    last_error: Option<&'a str>,
}

impl<'a> Progress<'a> {
    fn new(state: &'a str, step: i64, data: &'a Value) -> Progress<'a> {
        Progress {
            state,
            step,
            data,
            attempts: 0,
            error: None,
            last_error: None,
        }
    }

    fn attempts(mut self, attempts: i64) -> Self {
        self.attempts = attempts;
        self
    }

    fn error(mut self, error: &'a str) -> Self {
        self.error = Some(error);
        self
    }

    fn last_error(mut self, last_error: &'a str) -> Self {
        self.last_error = Some(last_error);
        self
    }
}

/// What the step loop does after looking at a run.
enum Next {
    Continue,
    Stop,
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

    /// Takes this engine's lease on a run; false when another node holds it or it is
    /// finished. Taking a run from another engine (a resume) starts its retry count again:
    /// the limit is per resume, so transient errors met before a crash do not make the new
    /// engine give up at its first one.
    async fn take_lease(&self, id: &str, take: Take) -> Result<bool, WorkflowError> {
        let t = now_ms();
        let until = t + self.lease.as_millis() as i64;
        let single_node = matches!(take, Take::Start) && self.db.backend() == Backend::Sqlite;
        let done = sqlx::query(
            "UPDATE workflow_runs SET owner = $1, lease_until = $2, \
             attempts = CASE WHEN owner = $1 THEN attempts ELSE 0 END \
             WHERE id = $3 AND state IN ($4, $5) AND (owner IS NULL OR owner = $1 OR lease_until < $6 OR $7)",
        )
        .bind(&self.owner)
        .bind(until)
        .bind(id)
        .bind(RUNNING)
        .bind(UNDOING)
        .bind(t)
        .bind(single_node)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Extends this engine's lease on a run it executes. Only where it still owns the run:
    /// unlike taking a lease, a renewal never takes a run from a node that took it over
    /// (even on SQLite, where taking at start ignores leases). False when the run is no
    /// longer this engine's (or is finished).
    async fn renew_lease(&self, id: &str) -> Result<bool, WorkflowError> {
        let done = sqlx::query(
            "UPDATE workflow_runs SET lease_until = $1 WHERE id = $2 AND owner = $3 AND state IN ($4, $5)",
        )
        .bind(now_ms() + self.lease.as_millis() as i64)
        .bind(id)
        .bind(&self.owner)
        .bind(RUNNING)
        .bind(UNDOING)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records progress if this engine still owns the run and the run is still where `from`
    /// saw it: a compare-and-swap on (id, owner, state, step), so a writer holding a stale
    /// view (a late task, a retried write) can never overwrite newer progress. False when
    /// nothing was written.
    async fn record(&self, from: &RunRecord, to: Progress<'_>) -> Result<bool, WorkflowError> {
        if self.is_dead() {
            return Ok(false);
        }
        let t = now_ms();
        let done = sqlx::query(
            "UPDATE workflow_runs SET state = $1, step = $2, data = $3, attempts = $4, error = COALESCE($5, error), \
             last_error = COALESCE($12, last_error), updated_at = $6, lease_until = $7 \
             WHERE id = $8 AND owner = $9 AND state = $10 AND step = $11",
        )
        .bind(to.state)
        .bind(to.step)
        .bind(to.data.to_string())
        .bind(to.attempts)
        .bind(to.error)
        .bind(t)
        .bind(t + self.lease.as_millis() as i64)
        .bind(&from.id)
        .bind(&self.owner)
        .bind(&from.state)
        .bind(from.step)
        .bind(to.last_error)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    fn backoff(&self, attempt: i64) -> Duration {
        let factor = 1u32 << attempt.clamp(0, 7) as u32;
        (self.base_backoff * factor).min(Duration::from_secs(5))
    }

    /// Drives a run until it ends, another engine holds it, or this engine halts. A database
    /// error (a lost connection while recording progress, say) or a lease that could not be
    /// confirmed pauses the run, which then goes on here once the lease is taken again;
    /// left alone it would wait for the next process start.
    async fn drive(self: &Arc<Self>, id: &str, held: bool) {
        let mut held = held;
        let mut pauses = 0;
        loop {
            match self.execute(id, held).await {
                Ok(()) => return,
                Err(WorkflowError::NotFound(_)) => return,
                Err(e) if !self.is_dead() => {
                    let pause = self.backoff(pauses);
                    tracing::warn!(run = %id, error = %e, ?pause, "workflow run paused; it goes on after the pause");
                    tokio::time::sleep(pause).await;
                }
                Err(_) => return,
            }
            if self.is_dead() {
                return;
            }
            held = false;
            pauses += 1;
        }
    }

    /// Runs `id` under this engine's lease: takes it (unless `held`), keeps it renewed
    /// while the steps run, and stops without another write the moment the lease is lost.
    async fn execute(self: &Arc<Self>, id: &str, held: bool) -> Result<(), WorkflowError> {
        if !held && !self.take_lease(id, Take::IfFree).await? {
            return Ok(());
        }
        let (verdict, watched) = watch::channel(LeaseState::Held);
        let renewer = self.spawn_renewer(id, verdict);
        let lease = Lease {
            id: id.to_string(),
            verdict: watched,
        };
        let result = self.step_loop(id, &lease).await;
        renewer.abort();
        result
    }

    /// Keeps the lease alive while a long step runs; reports when a renewal finds the run
    /// no longer this engine's (another node took it over, or it was deleted), or when the
    /// lease ran out before any renewal got through (another node may take it now).
    fn spawn_renewer(
        self: &Arc<Self>,
        id: &str,
        verdict: watch::Sender<LeaseState>,
    ) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            // The lease was taken just before.
            let mut confirmed_until = Instant::now() + engine.lease;
            loop {
                tokio::time::sleep(engine.lease / 3).await;
                if engine.is_dead() {
                    return;
                }
                let asked = Instant::now();
                let left = confirmed_until.saturating_duration_since(asked);
                match tokio::time::timeout(left, engine.renew_lease(&id)).await {
                    Ok(Ok(true)) => confirmed_until = asked + engine.lease,
                    Ok(Ok(false)) => {
                        let _ = verdict.send(LeaseState::Lost);
                        return;
                    }
                    Ok(Err(e)) if Instant::now() < confirmed_until => {
                        tracing::warn!(run = %id, error = %e, "could not renew a workflow lease; trying again")
                    }
                    Ok(Err(_)) | Err(_) => {
                        let _ = verdict.send(LeaseState::Unconfirmed);
                        return;
                    }
                }
            }
        })
    }

    async fn step_loop(&self, id: &str, lease: &Lease) -> Result<(), WorkflowError> {
        loop {
            if self.is_dead() || !lease.held()? {
                return Ok(());
            }
            let rec = self
                .get(id)
                .await?
                .ok_or_else(|| WorkflowError::NotFound(id.to_string()))?;
            let Some(handler) = self.handler(&rec.kind) else {
                tracing::warn!(run = id, kind = %rec.kind, "no handler registered for workflow kind");
                return Ok(());
            };
            let next = match rec.state.as_str() {
                RUNNING => self.forward(&*handler, rec, lease).await?,
                UNDOING => self.backward(&*handler, rec, lease).await?,
                _ => Next::Stop,
            };
            if let Next::Stop = next {
                return Ok(());
            }
        }
    }

    /// Records progress; when the write finds the run no longer where this engine left it
    /// (taken over), the engine drops the run without running or writing anything more.
    async fn advance(&self, from: &RunRecord, to: Progress<'_>) -> Result<Next, WorkflowError> {
        if self.record(from, to).await? {
            return Ok(Next::Continue);
        }
        if !self.is_dead() {
            tracing::warn!(run = %from.id, kind = %from.kind, "workflow run taken over by another engine; dropping it here");
        }
        Ok(Next::Stop)
    }

    /// Pauses before a retry, unless the lease is lost meanwhile.
    async fn pause(&self, next: Next, attempt: i64, lease: &Lease) -> Result<Next, WorkflowError> {
        if let Next::Stop = next {
            return Ok(Next::Stop);
        }
        let slept = lease
            .guard(tokio::time::sleep(self.backoff(attempt)))
            .await?;
        Ok(if slept.is_some() {
            Next::Continue
        } else {
            Next::Stop
        })
    }

    async fn forward(
        &self,
        h: &dyn Handler,
        rec: RunRecord,
        lease: &Lease,
    ) -> Result<Next, WorkflowError> {
        let step = rec.step.max(0) as usize;
        // Past the last step every effect is in place: a cancel that arrives now is too late
        // (undoing finished work would also run both completion hooks), so the run finishes.
        if step >= h.steps().len() {
            return self.finish(h, &rec, lease).await;
        }
        if rec.cancel_requested {
            tracing::info!(run = %rec.id, kind = %rec.kind, step, "workflow cancelled; unwinding");
            // Step `step` has not started, or crashed half-way: undo it too (undos are
            // idempotent).
            let to = Progress::new(UNDOING, step as i64, &rec.data).error("cancelled");
            return self.advance(&rec, to).await;
        }
        if self.crash_here(&rec.kind, step, CrashWhen::BeforeStep) {
            return Ok(Next::Stop);
        }
        let mut run = Run::of(&rec);
        let Some(outcome) = lease.guard(h.run_step(step, &mut run)).await? else {
            return Ok(Next::Stop);
        };
        if self.is_dead() {
            return Ok(Next::Stop);
        }
        match outcome {
            Ok(()) => {
                if self.crash_here(&rec.kind, step, CrashWhen::AfterStep) {
                    return Ok(Next::Stop);
                }
                let to = Progress::new(RUNNING, step as i64 + 1, &run.data);
                self.advance(&rec, to).await
            }
            Err(StepError::Retry(why)) if (rec.attempts as u32) < h.max_retries() => {
                tracing::debug!(run = %rec.id, kind = %rec.kind, step = h.steps()[step], attempt = rec.attempts, %why, "step will be retried");
                let last = format!("step {}: {why}", h.steps()[step]);
                let to = Progress::new(RUNNING, step as i64, &run.data)
                    .attempts(rec.attempts + 1)
                    .last_error(&last);
                let next = self.advance(&rec, to).await?;
                self.pause(next, rec.attempts, lease).await
            }
            Err(e) => self.fail_step(h, &rec, &run, e).await,
        }
    }

    /// The last step is done: the completion hook, then the final state.
    async fn finish(
        &self,
        h: &dyn Handler,
        rec: &RunRecord,
        lease: &Lease,
    ) -> Result<Next, WorkflowError> {
        let run = Run::of(rec);
        if lease.guard(h.on_done(&run)).await?.is_none() || self.is_dead() {
            return Ok(Next::Stop);
        }
        self.advance(rec, Progress::new(DONE, rec.step, &rec.data))
            .await?;
        tracing::debug!(run = %rec.id, kind = %rec.kind, "workflow done");
        Ok(Next::Stop)
    }

    /// A step failed for good (or ran out of retries): unwind from it.
    async fn fail_step(
        &self,
        h: &dyn Handler,
        rec: &RunRecord,
        run: &Run,
        e: StepError,
    ) -> Result<Next, WorkflowError> {
        let (public, detail) = match e {
            StepError::Retry(why) => (
                "The operation did not succeed in time; it was undone.".to_string(),
                format!("gave up retrying: {why}"),
            ),
            StepError::Fail { public, detail } => (public, detail),
        };
        let step = run.step;
        tracing::warn!(run = %rec.id, kind = %rec.kind, step = h.steps()[step], %public, %detail, "step failed; unwinding");
        let last = format!("step {}: {detail}", h.steps()[step]);
        let to = Progress::new(UNDOING, step as i64, &run.data)
            .error(&public)
            .last_error(&last);
        self.advance(rec, to).await
    }

    async fn backward(
        &self,
        h: &dyn Handler,
        rec: RunRecord,
        lease: &Lease,
    ) -> Result<Next, WorkflowError> {
        if rec.step < 0 {
            return self.finish_failed(h, &rec, lease).await;
        }
        let step = rec.step as usize;
        if self.crash_here(&rec.kind, step, CrashWhen::BeforeUndo) {
            return Ok(Next::Stop);
        }
        let mut run = Run::of(&rec);
        let Some(outcome) = lease.guard(h.undo_step(step, &mut run)).await? else {
            return Ok(Next::Stop);
        };
        if self.is_dead() {
            return Ok(Next::Stop);
        }
        match outcome {
            Ok(()) => {
                if self.crash_here(&rec.kind, step, CrashWhen::AfterUndo) {
                    return Ok(Next::Stop);
                }
                let to = Progress::new(UNDOING, step as i64 - 1, &run.data);
                self.advance(&rec, to).await
            }
            Err(e) => {
                let attempts = rec.attempts + 1;
                // The public error stays that of the step that failed; this one is the
                // operators' (with the detail a permanent error keeps from the user).
                let last = format!("undo of step {}: {}", h.steps()[step], detail_of(&e));
                tracing::warn!(run = %rec.id, kind = %rec.kind, step, attempt = attempts, error = %last, "undo failed; will retry");
                let to = Progress::new(UNDOING, step as i64, &run.data)
                    .attempts(attempts)
                    .last_error(&last);
                let next = self.advance(&rec, to).await?;
                if attempts as u32 > h.max_retries() {
                    // Left for the next resume (an operator sees it as unfinished), never
                    // dropped: an undo that cannot run is a leak waiting to be cleaned.
                    tracing::error!(run = %rec.id, kind = %rec.kind, step, "undo keeps failing; the run stays unwinding until the next restart");
                    return Ok(Next::Stop);
                }
                self.pause(next, rec.attempts, lease).await
            }
        }
    }

    /// Every undo ran: the failure hook, then the final state.
    async fn finish_failed(
        &self,
        h: &dyn Handler,
        rec: &RunRecord,
        lease: &Lease,
    ) -> Result<Next, WorkflowError> {
        let public = rec.error.as_deref().unwrap_or("The operation failed.");
        let run = Run::of(rec);
        if lease.guard(h.on_failed(&run, public)).await?.is_none() || self.is_dead() {
            return Ok(Next::Stop);
        }
        self.advance(rec, Progress::new(FAILED, -1, &rec.data))
            .await?;
        Ok(Next::Stop)
    }
}

/// What the log and `last_error` keep of a step error: its detail, not the public text.
fn detail_of(e: &StepError) -> &str {
    match e {
        StepError::Retry(why) => why,
        StepError::Fail { detail, .. } => detail,
    }
}

impl Run {
    /// The run as its steps see it, from the stored record.
    fn of(rec: &RunRecord) -> Run {
        Run {
            id: rec.id.clone(),
            kind: rec.kind.clone(),
            subject: rec.subject.clone(),
            data: rec.data.clone(),
            step: rec.step.max(0) as usize,
            attempt: rec.attempts as u32,
        }
    }
}

/// How a lease is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    /// At start: on SQLite whatever the lease says, since with one node a live lease is
    /// that of a process that died; on PostgreSQL as [`Take::IfFree`].
    Start,
    /// Where the run has no owner, its lease expired, or it is already this engine's.
    IfFree,
}

/// Whether this engine still holds the lease of a run it executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaseState {
    Held,
    /// A renewal found the run no longer this engine's: another node may be running it.
    Lost,
    /// No renewal got through before the lease ran out (the database is out of reach):
    /// another node may take the run, so this one pauses it and takes it again later.
    Unconfirmed,
}

/// One execution's view of its lease on run `id`, as the renewer last found it.
struct Lease {
    id: String,
    verdict: watch::Receiver<LeaseState>,
}

impl Lease {
    /// True while held, false once lost; an error when it could not be confirmed.
    fn held(&self) -> Result<bool, WorkflowError> {
        match *self.verdict.borrow() {
            LeaseState::Held => Ok(true),
            LeaseState::Lost => Ok(false),
            LeaseState::Unconfirmed => Err(WorkflowError::LeaseUnconfirmed(self.id.clone())),
        }
    }

    /// Runs `work` unless the lease is lost first; `None` when it is, an error when it
    /// could not be confirmed. Interrupted work is dropped at its next await, as a crash
    /// would stop it (steps are idempotent and the next owner runs it again), so two nodes
    /// do not keep running the same step side by side.
    async fn guard<T>(&self, work: impl Future<Output = T>) -> Result<Option<T>, WorkflowError> {
        let mut verdict = self.verdict.clone();
        let ended = async move {
            let _ = verdict.wait_for(|s| *s != LeaseState::Held).await;
            if *verdict.borrow() == LeaseState::Held {
                // The renewer ended without a verdict (the engine halted): no news.
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            biased;
            () = ended => self.held().map(|_| None),
            out = work => Ok(Some(out)),
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

    /// A run inserted and leased by `engine`, not executed (no handler is registered).
    async fn leased_run(engine: &Engine) -> RunRecord {
        let mut tx = engine.db.begin_write().await.unwrap();
        let id = engine
            .insert(&mut tx, "test", "s", serde_json::json!({}))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(engine.take_lease(&id, Take::IfFree).await.unwrap());
        engine.get(&id).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn a_stale_progress_write_is_refused() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let engine = Engine::new(db).await.unwrap();
        let seen = leased_run(&engine).await;
        let data = serde_json::json!({"n": 1});
        let fresh = Progress::new(RUNNING, 1, &data);
        assert!(engine.record(&seen, fresh).await.unwrap());
        // The same owner writing from the view it had before step 1 was recorded (a late
        // task, a retried write) must not take the run back to an older step.
        let stale = Progress::new(UNDOING, 0, &data).error("stale");
        assert!(!engine.record(&seen, stale).await.unwrap());
        let now = engine.get(&seen.id).await.unwrap().unwrap();
        assert_eq!((now.state.as_str(), now.step), (RUNNING, 1));
        assert_eq!(now.error, None);
    }
}
