//! The step loop: runs a workflow's steps forward, unwinds them on failure or cancel, runs
//! the completion hooks, and records each move with a compare-and-swap progress write. A
//! database error pauses a run and the engine takes it again after a backoff.

use std::sync::Arc;
use std::time::Duration;

use ferrostack_db::sqlx;
use serde_json::Value;

use super::lease::{Lease, Take};
use super::{now_ms, CrashWhen, Engine, RunRecord, WorkflowError, DONE, FAILED, RUNNING, UNDOING};
use crate::{Handler, Run, StepError};

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

    /// The pause before retry `attempt` (from 0): the base doubling, at most 5 s.
    fn backoff(&self, attempt: i64) -> Duration {
        let factor = 1u32 << attempt.clamp(0, 7) as u32;
        (self.base_backoff * factor).min(Duration::from_secs(5))
    }

    /// Drives a run until it ends, another engine holds it, or this engine halts. A database
    /// error (a lost connection while recording progress, say) or a lease that could not be
    /// confirmed pauses the run, which then goes on here once the lease is taken again;
    /// left alone it would wait for the next process start.
    pub(super) async fn drive(self: &Arc<Self>, id: &str, held: bool) {
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
        let lease = self.keep_lease(id);
        self.step_loop(id, &lease).await
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

#[cfg(test)]
mod tests {
    use ferrostack_db::Db;

    use super::*;

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
