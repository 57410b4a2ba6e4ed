//! Durable multi-step operations. A workflow is a list of steps, each with a `do` and an
//! `undo`, that a [`Handler`] implements; the [`Engine`] runs it and writes its progress to
//! the `workflow_runs` table (SQLite or PostgreSQL), so that a run interrupted by a crash is
//! picked up again by [`Engine::resume_all`] at the next start.
//!
//! The contract, which makes kill -9 at any point safe:
//! - Steps and undos are idempotent. The engine records the step it is about to run and,
//!   once it returned, the next step and the run's data in one compare-and-swap update; after
//!   a crash the recorded step runs again.
//! - A step that fails for good ([`StepError::Fail`]) or a run that is cancelled switches the
//!   run to `undoing`: the undo of the failing step (which may have half-happened) runs, then
//!   each earlier one down to step 0, and the run ends `failed`. A cancel that arrives once
//!   the last step completed is too late: the run ends `done`. Transient errors
//!   ([`StepError::Retry`]) retry the same step (or undo) with backoff, up to the handler's
//!   limit, counted afresh when an engine resumes a run another one left. An undo that
//!   keeps failing leaves the run `undoing` for the next resume, never dropped.
//! - The completion hooks ([`Handler::on_done`], [`Handler::on_failed`]) run before the final
//!   state is recorded, so a crash between the two runs them again: they must be idempotent.
//! - With several control nodes on one PostgreSQL database, a run is executed by the node
//!   that holds its lease (`owner`, `lease_until`), renewed while it runs; a node takes over
//!   runs whose lease expired. A new run is leased to the engine that inserts it, in the
//!   INSERT itself. SQLite has one node by definition and takes every run at start.
//!   A renewal only extends a lease the node still holds. A node that finds it no longer
//!   holds a run (a renewal or a progress write matches no row) drops the run: the step in
//!   progress stops at its next await, as in a crash, and the node writes nothing more.
//! - A database error during a run (a lost connection while recording progress), or a lease
//!   no renewal could confirm before it ran out, pauses the run; the engine takes its lease
//!   again after a backoff and goes on from the recorded step.
//!
//! Crash injection for tests: [`Engine::set_crash_point`], or the environment variable
//! `FERROSTACK_CRASH_AT=<kind>:<step>:<before|after|before-undo|after-undo>`, which aborts the
//! process at that point so an end-to-end test can kill the real binary at every step.

mod engine;

pub use engine::{CrashAction, CrashPoint, CrashWhen, Engine, RunRecord, WorkflowError};

use std::future::Future;
use std::pin::Pin;

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A run as a step sees it; `data` may be changed and is saved with the step's completion.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: String,
    pub kind: String,
    pub subject: String,
    pub data: serde_json::Value,
    pub step: usize,
    pub attempt: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Transient: try the same step again after a pause.
    #[error("{0}")]
    Retry(String),
    /// Permanent: unwind. `public` is what the user may read, `detail` goes to the log.
    #[error("{public}")]
    Fail { public: String, detail: String },
}

/// One kind of workflow.
pub trait Handler: Send + Sync + 'static {
    fn kind(&self) -> &'static str;
    /// Step names, for logs and crash points; their number is the workflow's length.
    fn steps(&self) -> &'static [&'static str];
    fn run_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>>;
    fn undo_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>>;
    fn on_done<'a>(&'a self, run: &'a Run) -> BoxFut<'a, ()>;
    fn on_failed<'a>(&'a self, run: &'a Run, public_error: &'a str) -> BoxFut<'a, ()>;
    /// Retries of one step (or undo) before it counts as failed.
    fn max_retries(&self) -> u32 {
        20
    }
}
