//! Leases: how an engine takes a run, keeps it while the steps run, and learns that it lost
//! it. Taking is a compare-and-swap on the owner and the lease's end; a renewal only
//! extends a lease the engine still holds; the step loop watches the renewer's verdict so
//! that an engine that lost a run stops running it.

use std::future::Future;
use std::sync::Arc;

use ferrostack_db::sqlx;
use ferrostack_db::Backend;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{now_ms, Engine, WorkflowError, RUNNING, UNDOING};

/// How a lease is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Take {
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

/// One execution's hold on run `id`: the renewer keeps the lease alive and reports what
/// it found; dropping the hold stops the renewer.
pub(super) struct Lease {
    id: String,
    verdict: watch::Receiver<LeaseState>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

impl Lease {
    /// True while held, false once lost; an error when it could not be confirmed.
    pub(super) fn held(&self) -> Result<bool, WorkflowError> {
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
    pub(super) async fn guard<T>(
        &self,
        work: impl Future<Output = T>,
    ) -> Result<Option<T>, WorkflowError> {
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

impl Engine {
    /// Takes this engine's lease on a run; false when another node holds it or it is
    /// finished. Taking a run from another engine (a resume) starts its retry count again:
    /// the limit is per resume, so transient errors met before a crash do not make the new
    /// engine give up at its first one.
    pub(super) async fn take_lease(&self, id: &str, take: Take) -> Result<bool, WorkflowError> {
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

    /// Holds the lease just taken on `id` for one execution of its steps.
    pub(super) fn keep_lease(self: &Arc<Self>, id: &str) -> Lease {
        let (verdict, watched) = watch::channel(LeaseState::Held);
        let renewer = self.spawn_renewer(id, verdict);
        Lease {
            id: id.to_string(),
            verdict: watched,
            renewer,
        }
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
}
