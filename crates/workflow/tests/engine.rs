//! The engine against SQLite (always) and PostgreSQL (when the test script provides one):
//! happy path, failure at each step unwinding everything before it, retries, cancellation
//! (and a cancel too late to matter), and a crash (Halt) at every step and every point,
//! after which a fresh engine on the same database must finish the run with nothing leaked.
//! Then the ways a lease changes hands: a take-over that a late renewal must not undo, an
//! engine that finds its lease lost and must stop, a database outage the run must survive
//! without a restart, new runs leased to their inserting engine, resume counts, and undo
//! errors kept apart from the public error with retries counted per resume.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ferrostack_db::Db;
use ferrostack_workflow::{
    BoxFut, CrashAction, CrashPoint, CrashWhen, Engine, Handler, Run, StepError,
};
use serde_json::json;

const STEPS: &[&str] = &["a", "b", "c", "d"];
/// The test engines' lease, and how long a `hold_at` step takes (five leases).
const LEASE: Duration = Duration::from_millis(200);
const HOLD: Duration = Duration::from_millis(1000);
/// A lease end that never comes (milliseconds since the epoch).
const FAR: i64 = i64::MAX / 2;

/// The outside world: effects of done steps, keyed by (subject, step).
#[derive(Default)]
struct World {
    effects: Mutex<BTreeSet<(String, usize)>>,
    done: AtomicUsize,
    failed: AtomicUsize,
    flaky_left: AtomicUsize,
    /// Transient failures left for the undo of step `undo_flaky_at`.
    undo_flaky_left: AtomicUsize,
    /// Steps as they start and as they complete, repeats included.
    started: Mutex<Vec<(String, usize)>>,
    completed: Mutex<Vec<(String, usize)>>,
    /// The engine a step may call back into (the latest one built for this world).
    engine: Mutex<Weak<Engine>>,
    /// The database those engines use.
    url: Mutex<String>,
}

struct TestHandler(Arc<World>);

impl Handler for TestHandler {
    fn kind(&self) -> &'static str {
        "test"
    }
    fn steps(&self) -> &'static [&'static str] {
        STEPS
    }
    fn run_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        Box::pin(async move {
            self.0
                .started
                .lock()
                .unwrap()
                .push((run.subject.clone(), step));
            if run.data["taken_in"].as_u64() == Some(step as u64) {
                // Another node takes the run over just before this step returns.
                let url = self.0.url.lock().unwrap().clone();
                let update = format!(
                    "UPDATE workflow_runs SET owner = 'another-node', lease_until = {FAR} WHERE id = '{}'",
                    run.id
                );
                sql(&url, &update).await;
            }
            if run.data["fail_at"].as_u64() == Some(step as u64) {
                // Half-happened: the effect is there, then the step fails.
                self.0
                    .effects
                    .lock()
                    .unwrap()
                    .insert((run.subject.clone(), step));
                return Err(StepError::Fail {
                    public: format!("step {step} broke"),
                    detail: "test".into(),
                });
            }
            if run.data["flaky_at"].as_u64() == Some(step as u64) {
                let left = self.0.flaky_left.load(Ordering::SeqCst);
                if left > 0 {
                    self.0.flaky_left.store(left - 1, Ordering::SeqCst);
                    return Err(StepError::Retry("not yet".into()));
                }
            }
            if run.data["slow_at"].as_u64() == Some(step as u64) {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            if run.data["hold_at"].as_u64() == Some(step as u64) {
                // Several lease periods: long enough for the lease to change hands.
                tokio::time::sleep(HOLD).await;
            }
            self.0
                .effects
                .lock()
                .unwrap()
                .insert((run.subject.clone(), step));
            run.data[format!("did_{step}")] = json!(true);
            self.0
                .completed
                .lock()
                .unwrap()
                .push((run.subject.clone(), step));
            if run.data["cancel_in"].as_u64() == Some(step as u64) {
                // A cancel that lands while the step finishes.
                let engine = self.0.engine.lock().unwrap().upgrade().unwrap();
                engine.cancel(&run.id).await.unwrap();
            }
            Ok(())
        })
    }
    fn undo_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        Box::pin(async move {
            if run.data["undo_flaky_at"].as_u64() == Some(step as u64) {
                let left = self.0.undo_flaky_left.load(Ordering::SeqCst);
                if left > 0 {
                    self.0.undo_flaky_left.store(left - 1, Ordering::SeqCst);
                    return Err(StepError::Retry(format!("undo {step} not yet")));
                }
            }
            self.0
                .effects
                .lock()
                .unwrap()
                .remove(&(run.subject.clone(), step));
            Ok(())
        })
    }
    fn on_done<'a>(&'a self, _run: &'a Run) -> BoxFut<'a, ()> {
        Box::pin(async move {
            self.0.done.fetch_add(1, Ordering::SeqCst);
        })
    }
    fn on_failed<'a>(&'a self, _run: &'a Run, _e: &'a str) -> BoxFut<'a, ()> {
        Box::pin(async move {
            self.0.failed.fetch_add(1, Ordering::SeqCst);
        })
    }
    fn max_retries(&self) -> u32 {
        3
    }
}

async fn pg_database(admin_url: &str) -> String {
    let name = format!("t{}", uuid::Uuid::new_v4().simple());
    let db = Db::connect(admin_url).await.unwrap();
    ferrostack_db::sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(db.pool())
        .await
        .unwrap();
    format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0)
}

/// A fresh database URL per engine family: a SQLite file (shared by the engines of one
/// test, as processes share it), and a PostgreSQL database when available.
async fn databases() -> Vec<String> {
    let file = std::env::temp_dir().join(format!("fs-wf-{}.db", uuid::Uuid::new_v4()));
    let mut out = vec![format!("sqlite://{}", file.display())];
    if let Ok(url) = std::env::var("FERROSTACK_TEST_PG_URL") {
        out.push(pg_database(&url).await);
    }
    out
}

async fn engine(url: &str, world: &Arc<World>) -> Arc<Engine> {
    let db = Db::connect(url).await.unwrap();
    let e = Engine::with_lease(db, LEASE).await.unwrap();
    e.register(Arc::new(TestHandler(world.clone())));
    *world.engine.lock().unwrap() = Arc::downgrade(&e);
    *world.url.lock().unwrap() = url.to_string();
    e
}

/// How often `subject`'s `step` started and completed.
fn runs_of(world: &World, subject: &str, step: usize) -> (usize, usize) {
    let count = |list: &Mutex<Vec<(String, usize)>>| {
        let list = list.lock().unwrap();
        list.iter()
            .filter(|(s, i)| s == subject && *i == step)
            .count()
    };
    (count(&world.started), count(&world.completed))
}

/// Waits until `subject`'s `step` has started `times` times.
async fn started(world: &World, subject: &str, step: usize, times: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while runs_of(world, subject, step).0 < times {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{subject}: step {step} never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs SQL against the test database behind the engines' back.
async fn sql(url: &str, statement: &str) {
    let db = Db::connect(url).await.unwrap();
    ferrostack_db::sqlx::query(statement)
        .execute(db.pool())
        .await
        .unwrap();
}

/// The owner and update time of a run, read behind the engines' back.
async fn owner_of(url: &str, id: &str) -> (String, i64) {
    use ferrostack_db::sqlx::Row;
    let db = Db::connect(url).await.unwrap();
    let row =
        ferrostack_db::sqlx::query("SELECT owner, updated_at FROM workflow_runs WHERE id = $1")
            .bind(id)
            .fetch_one(db.pool())
            .await
            .unwrap();
    (row.get("owner"), row.get("updated_at"))
}

/// Makes `to` take a run over as if its owner had stalled: the lease is expired behind the
/// owner's back until `to` picks the run up (the owner's renewal may win a round).
async fn take_over(url: &str, id: &str, to: &Arc<Engine>) {
    let (was, _) = owner_of(url, id).await;
    for _ in 0..50 {
        sql(
            url,
            &format!("UPDATE workflow_runs SET lease_until = 0 WHERE id = '{id}'"),
        )
        .await;
        to.resume_all().await.unwrap();
        for _ in 0..10 {
            if owner_of(url, id).await.0 != was {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    panic!("{url}: run {id} was never taken over");
}

fn effects(world: &World, subject: &str) -> Vec<usize> {
    world
        .effects
        .lock()
        .unwrap()
        .iter()
        .filter(|(s, _)| s == subject)
        .map(|(_, i)| *i)
        .collect()
}

#[tokio::test]
async fn runs_to_the_end_and_fails_cleanly_at_each_step() {
    for url in databases().await {
        let world = Arc::new(World::default());
        let e = engine(&url, &world).await;
        let id = e.start("test", "ok", json!({})).await.unwrap();
        let rec = e.wait(&id, Duration::from_secs(10)).await.unwrap();
        assert!(rec.succeeded(), "{rec:?}");
        assert_eq!(effects(&world, "ok"), vec![0, 1, 2, 3]);
        assert_eq!(rec.data["did_3"], true);
        for fail_at in 0..STEPS.len() {
            let subject = format!("fail{fail_at}");
            let id = e
                .start("test", &subject, json!({"fail_at": fail_at}))
                .await
                .unwrap();
            let rec = e.wait(&id, Duration::from_secs(10)).await.unwrap();
            assert_eq!(rec.state, "failed");
            assert_eq!(
                rec.error.as_deref(),
                Some(format!("step {fail_at} broke").as_str())
            );
            assert!(
                effects(&world, &subject).is_empty(),
                "{url}: leaked {:?}",
                effects(&world, &subject)
            );
        }
        assert_eq!(world.done.load(Ordering::SeqCst), 1);
        assert_eq!(world.failed.load(Ordering::SeqCst), STEPS.len());
        assert!(e.unfinished().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn retries_transient_errors_then_gives_up() {
    for url in databases().await {
        let world = Arc::new(World::default());
        let e = engine(&url, &world).await;
        world.flaky_left.store(2, Ordering::SeqCst);
        let id = e
            .start("test", "flaky", json!({"flaky_at": 1}))
            .await
            .unwrap();
        assert!(e
            .wait(&id, Duration::from_secs(10))
            .await
            .unwrap()
            .succeeded());
        // More failures than the handler allows: unwound.
        world.flaky_left.store(10, Ordering::SeqCst);
        let id = e
            .start("test", "hopeless", json!({"flaky_at": 2}))
            .await
            .unwrap();
        let rec = e.wait(&id, Duration::from_secs(10)).await.unwrap();
        assert_eq!(rec.state, "failed");
        assert!(effects(&world, "hopeless").is_empty());
    }
}

#[tokio::test]
async fn cancel_unwinds_a_running_workflow() {
    for url in databases().await {
        let world = Arc::new(World::default());
        let e = engine(&url, &world).await;
        let id = e.start("test", "c", json!({"slow_at": 1})).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        e.cancel(&id).await.unwrap();
        let rec = e.wait(&id, Duration::from_secs(10)).await.unwrap();
        assert_eq!(rec.state, "failed");
        assert_eq!(rec.error.as_deref(), Some("cancelled"));
        assert!(effects(&world, "c").is_empty());
        assert_eq!(e.active_for_subject("c").await.unwrap().len(), 0);
    }
}

#[tokio::test]
async fn a_cancel_after_the_last_step_lets_the_run_finish() {
    for url in databases().await {
        let world = Arc::new(World::default());
        let e = engine(&url, &world).await;
        let last = STEPS.len() - 1;
        let id = e
            .start("test", "late", json!({"cancel_in": last}))
            .await
            .unwrap();
        let rec = e.wait(&id, Duration::from_secs(10)).await.unwrap();
        // Every step's work is done: it stays, and only the done hook runs.
        assert!(rec.succeeded(), "{url}: {rec:?}");
        assert_eq!(effects(&world, "late"), vec![0, 1, 2, 3], "{url}");
        assert_eq!(world.done.load(Ordering::SeqCst), 1, "{url}");
        assert_eq!(world.failed.load(Ordering::SeqCst), 0, "{url}");
    }
}

#[tokio::test]
async fn a_crash_at_any_point_resumes_without_leaks() {
    for url in databases().await {
        let world = Arc::new(World::default());
        let mut cases = 0;
        for step in 0..STEPS.len() {
            for when in [
                CrashWhen::BeforeStep,
                CrashWhen::AfterStep,
                CrashWhen::BeforeUndo,
                CrashWhen::AfterUndo,
            ] {
                // Undo points are reached by a run that fails at the last step.
                let undoing = matches!(when, CrashWhen::BeforeUndo | CrashWhen::AfterUndo);
                let data = if undoing {
                    json!({"fail_at": STEPS.len() - 1})
                } else {
                    json!({})
                };
                let subject = format!("crash-{step}-{when:?}");
                let first = engine(&url, &world).await;
                first.set_crash_point(Some(CrashPoint {
                    kind: "test".into(),
                    step,
                    when,
                    action: CrashAction::Halt,
                }));
                let id = first.start("test", &subject, data).await.unwrap();
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                while !first.is_dead() {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "{subject}: crash point never reached"
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let (done0, failed0) = (
                    world.done.load(Ordering::SeqCst),
                    world.failed.load(Ordering::SeqCst),
                );
                // The first process is dead; the next one takes over after its lease.
                tokio::time::sleep(Duration::from_millis(250)).await;
                let second = engine(&url, &world).await;
                assert!(second.resume_all().await.unwrap() >= 1, "{subject}");
                let rec = second.wait(&id, Duration::from_secs(10)).await.unwrap();
                let left = effects(&world, &subject);
                if undoing {
                    assert_eq!(rec.state, "failed", "{subject}");
                    assert!(left.is_empty(), "{url} {subject}: leaked {left:?}");
                    assert_eq!(
                        world.failed.load(Ordering::SeqCst),
                        failed0 + 1,
                        "{subject}"
                    );
                } else {
                    assert!(rec.succeeded(), "{subject}: {rec:?}");
                    assert_eq!(left, vec![0, 1, 2, 3], "{subject}");
                    assert_eq!(world.done.load(Ordering::SeqCst), done0 + 1, "{subject}");
                }
                cases += 1;
            }
        }
        assert_eq!(cases, 16);
    }
}

#[tokio::test]
async fn a_live_lease_is_not_stolen_on_postgres() {
    let Ok(admin) = std::env::var("FERROSTACK_TEST_PG_URL") else {
        // SQLite is single-node by definition: every engine there takes every run.
        eprintln!("FERROSTACK_TEST_PG_URL not set: lease test runs on PostgreSQL only");
        return;
    };
    let url = pg_database(&admin).await;
    let world = Arc::new(World::default());
    let a = {
        let db = Db::connect(&url).await.unwrap();
        let e = Engine::with_lease(db, Duration::from_secs(30))
            .await
            .unwrap();
        e.register(Arc::new(TestHandler(world.clone())));
        e
    };
    a.set_crash_point(Some(CrashPoint {
        kind: "test".into(),
        step: 1,
        when: CrashWhen::BeforeStep,
        action: CrashAction::Halt,
    }));
    let id = a.start("test", "leased", json!({})).await.unwrap();
    while !a.is_dead() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let b = engine(&url, &world).await;
    assert_eq!(
        b.resume_all().await.unwrap(),
        0,
        "a run under a live lease was taken"
    );
    assert_eq!(b.get(&id).await.unwrap().unwrap().state, "running");
}

#[tokio::test]
async fn a_new_run_is_leased_to_the_engine_that_inserted_it() {
    let Ok(admin) = std::env::var("FERROSTACK_TEST_PG_URL") else {
        eprintln!("FERROSTACK_TEST_PG_URL not set: lease test runs on PostgreSQL only");
        return;
    };
    let url = pg_database(&admin).await;
    let world = Arc::new(World::default());
    let a = engine(&url, &world).await;
    let b = engine(&url, &world).await;
    // Between the commit of the caller's transaction and its kick, another node's poller
    // must not take the run.
    let db = Db::connect(&url).await.unwrap();
    let mut tx = db.begin_write().await.unwrap();
    let id = a.insert(&mut tx, "test", "fresh", json!({})).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        b.resume_all().await.unwrap(),
        0,
        "the poller took a new run"
    );
    a.kick(&id);
    assert!(a
        .wait(&id, Duration::from_secs(10))
        .await
        .unwrap()
        .succeeded());
    assert_eq!(world.done.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_late_renewal_never_takes_a_run_back() {
    for url in databases().await {
        let world = Arc::new(World::default());
        let a = engine(&url, &world).await;
        let id = a
            .start("test", "late", json!({"hold_at": 1}))
            .await
            .unwrap();
        started(&world, "late", 1, 1).await;
        let b = engine(&url, &world).await;
        take_over(&url, &id, &b).await;
        started(&world, "late", 1, 2).await;
        let (new_owner, _) = owner_of(&url, &id).await;
        // A's renewals keep coming while its step runs; none may take the run back.
        let until = tokio::time::Instant::now() + HOLD / 2;
        while tokio::time::Instant::now() < until {
            assert_eq!(owner_of(&url, &id).await.0, new_owner, "{url}: taken back");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let rec = b.wait(&id, Duration::from_secs(10)).await.unwrap();
        assert!(rec.succeeded(), "{url}: {rec:?}");
        assert_eq!(owner_of(&url, &id).await.0, new_owner, "{url}");
        assert_eq!(effects(&world, "late"), vec![0, 1, 2, 3], "{url}");
        assert_eq!(world.done.load(Ordering::SeqCst), 1, "{url}");
    }
}

#[tokio::test]
async fn an_engine_that_loses_its_lease_drops_the_run() {
    for url in databases().await {
        let world = Arc::new(World::default());
        let a = engine(&url, &world).await;
        // The renewal finds the run taken while a step runs: the step stops there.
        let id = a
            .start("test", "lost", json!({"hold_at": 1}))
            .await
            .unwrap();
        started(&world, "lost", 1, 1).await;
        let update = format!(
            "UPDATE workflow_runs SET owner = 'another-node', lease_until = {FAR} WHERE id = '{id}'"
        );
        sql(&url, &update).await;
        let before = owner_of(&url, &id).await;
        tokio::time::sleep(HOLD + HOLD / 2).await;
        assert_eq!(
            runs_of(&world, "lost", 1),
            (1, 0),
            "{url}: the step went on"
        );
        assert_eq!(
            runs_of(&world, "lost", 2),
            (0, 0),
            "{url}: a later step ran"
        );
        assert_eq!(
            owner_of(&url, &id).await,
            before,
            "{url}: written after the loss"
        );
        // A progress write finds the run taken (after a failing step): nothing runs again,
        // nothing unwinds, no hook runs.
        let id = a
            .start("test", "taken", json!({"taken_in": 1, "fail_at": 1}))
            .await
            .unwrap();
        started(&world, "taken", 1, 1).await;
        tokio::time::sleep(LEASE * 3).await;
        assert_eq!(
            runs_of(&world, "taken", 1).0,
            1,
            "{url}: the step ran again"
        );
        let rec = a.get(&id).await.unwrap().unwrap();
        assert_eq!((rec.state.as_str(), rec.step), ("running", 1), "{url}");
        assert_eq!(world.failed.load(Ordering::SeqCst), 0, "{url}");
        assert_eq!(world.done.load(Ordering::SeqCst), 0, "{url}");
    }
}

#[tokio::test]
async fn a_database_error_pauses_the_run_and_retries_it() {
    for url in databases().await {
        let world = Arc::new(World::default());
        let e = engine(&url, &world).await;
        let id = e
            .start("test", "outage", json!({"hold_at": 1}))
            .await
            .unwrap();
        started(&world, "outage", 1, 1).await;
        // The runs table is out of reach while the step runs and for a while after: lease
        // renewals and the progress write fail, as with a lost connection.
        sql(
            &url,
            "ALTER TABLE workflow_runs RENAME TO workflow_runs_away",
        )
        .await;
        tokio::time::sleep(HOLD + LEASE).await;
        sql(
            &url,
            "ALTER TABLE workflow_runs_away RENAME TO workflow_runs",
        )
        .await;
        // The same engine, with no restart and no poller, finishes the run.
        let rec = e.wait(&id, Duration::from_secs(10)).await.unwrap();
        assert!(rec.succeeded(), "{url}: {rec:?}");
        assert_eq!(effects(&world, "outage"), vec![0, 1, 2, 3], "{url}");
        // The step in progress stopped when the lease could no longer be confirmed, and ran
        // again once the database was back.
        assert_eq!(runs_of(&world, "outage", 1), (2, 1), "{url}");
        assert_eq!(world.done.load(Ordering::SeqCst), 1, "{url}");
    }
}

#[tokio::test]
async fn resume_all_counts_only_the_runs_it_takes() {
    for url in databases().await {
        let world = Arc::new(World::default());
        let a = engine(&url, &world).await;
        let id = a
            .start("test", "busy", json!({"hold_at": 1}))
            .await
            .unwrap();
        started(&world, "busy", 1, 1).await;
        // The run is unfinished but already running here: nothing is taken.
        assert_eq!(a.resume_all().await.unwrap(), 0, "{url}");
        assert!(a
            .wait(&id, Duration::from_secs(10))
            .await
            .unwrap()
            .succeeded());
        assert_eq!(runs_of(&world, "busy", 1), (1, 1), "{url}");
        assert_eq!(a.resume_all().await.unwrap(), 0, "{url}");
    }
}

#[tokio::test]
async fn undo_errors_are_kept_apart_from_the_public_error() {
    for url in databases().await {
        let world = Arc::new(World::default());
        let e = engine(&url, &world).await;
        world.undo_flaky_left.store(2, Ordering::SeqCst);
        let id = e
            .start("test", "undo", json!({"fail_at": 3, "undo_flaky_at": 2}))
            .await
            .unwrap();
        let rec = e.wait(&id, Duration::from_secs(10)).await.unwrap();
        assert_eq!(rec.state, "failed", "{url}");
        // The user reads why the operation failed, not why an undo had to be retried.
        assert_eq!(rec.error.as_deref(), Some("step 3 broke"), "{url}");
        let last = rec.last_error.as_deref().unwrap_or_default();
        assert!(last.contains("undo 2 not yet"), "{url}: {last:?}");
        assert!(effects(&world, "undo").is_empty(), "{url}");
    }
}

#[tokio::test]
async fn undo_retries_count_afresh_after_a_restart() {
    for url in databases().await {
        let world = Arc::new(World::default());
        world.undo_flaky_left.store(100, Ordering::SeqCst);
        let first = engine(&url, &world).await;
        let id = first
            .start("test", "again", json!({"fail_at": 3, "undo_flaky_at": 2}))
            .await
            .unwrap();
        // The undo of step 2 fails a few times, then the process dies.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while first.get(&id).await.unwrap().unwrap().attempts < 2 {
            assert!(tokio::time::Instant::now() < deadline, "{url}: no retries");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        first.set_crash_point(Some(CrashPoint {
            kind: "test".into(),
            step: 2,
            when: CrashWhen::BeforeUndo,
            action: CrashAction::Halt,
        }));
        while !first.is_dead() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{url}: never halted"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Fewer transient failures to come than the limit allows: the restarted engine's
        // count starts again, so the run unwinds to the end.
        world.undo_flaky_left.store(2, Ordering::SeqCst);
        tokio::time::sleep(LEASE + LEASE / 4).await;
        let second = engine(&url, &world).await;
        assert_eq!(second.resume_all().await.unwrap(), 1, "{url}");
        let rec = second.wait(&id, Duration::from_secs(10)).await.unwrap();
        assert_eq!(rec.state, "failed", "{url}");
        assert_eq!(rec.error.as_deref(), Some("step 3 broke"), "{url}");
        assert!(effects(&world, "again").is_empty(), "{url}");
        assert_eq!(world.failed.load(Ordering::SeqCst), 1, "{url}");
    }
}
