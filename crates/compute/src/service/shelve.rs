//! Shelving: a server that gives its host back. `shelve` saves the root disk as an image
//! (`<name>-shelved`, remembered in the server's system metadata), removes the VM and
//! releases the server's allocations, so it ends SHELVED_OFFLOADED (Nova's behaviour with
//! its default `shelved_offload_time` of 0) and uses no host resources. `unshelve`
//! schedules it again like a boot, spawns it from that image, and deletes the image.
//! Both are workflows; a failed shelve gives the server back as it was, a failed unshelve
//! leaves it shelved.

use std::sync::{Arc, Weak};

use ferrostack_common::AuthContext;
use ferrostack_workflow::{BoxFut, Handler, Run, StepError};
use serde_json::{json, Value};

use super::snapshot::{image_refusal, SnapshotRequest};
use super::workflows::{
    agent_error, agent_of, fail, load, retry, schedule_and_place, service, spawn_guest,
};
use super::ComputeService;
use crate::error::{ComputeError, Result};
use crate::host::PowerOp;
use crate::states::{power, task, vm, Action};

pub const SHELVE: &str = "server_shelve";
pub const UNSHELVE: &str = "server_unshelve";

/// The system metadata key of the image a shelved server was saved to.
pub const SHELVED_IMAGE: &str = "shelved_image_id";

impl ComputeService {
    /// Starts shelving `uuid`: makes the `<name>-shelved` image record (with the caller's
    /// rights, as `createImage` does) and the workflow that fills it and offloads the server.
    pub async fn shelve_server(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        request_id: &str,
    ) -> Result<()> {
        let inst = self
            .get_server(ctx, uuid, "os_compute_api:os-shelve:shelve")
            .await?;
        self.check_lock(ctx, &inst)?;
        self.check_state(&inst, Action::Shelve)?;
        let req = SnapshotRequest {
            name: format!("{}-shelved", inst.name),
            metadata: Default::default(),
        };
        let body = self.snapshot_image_body(ctx, &inst, &req).await;
        let image = self.image.create(ctx, &body).await.map_err(image_refusal)?;
        let started = async {
            let mut tx = self.db.begin_write().await?;
            self.set_system_metadata(&mut tx, uuid, SHELVED_IMAGE, &image.id)
                .await?;
            let data = json!({"image_id": image.id, "from_vm_state": inst.vm_state});
            let run = self
                .begin_task(
                    &mut tx,
                    ctx,
                    &inst,
                    Action::Shelve,
                    SHELVE,
                    data,
                    request_id,
                )
                .await?;
            tx.commit().await?;
            Ok::<_, ComputeError>(run)
        }
        .await;
        match started {
            Ok(run) => {
                self.engine.kick(&run);
                Ok(())
            }
            Err(e) => {
                let _ = self.image.discard(&image.id).await;
                Err(e)
            }
        }
    }

    /// Starts unshelving `uuid` (optionally into another availability zone, from 2.77).
    pub async fn unshelve_server(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        zone: Option<String>,
        request_id: &str,
    ) -> Result<()> {
        let inst = self
            .get_server(ctx, uuid, "os_compute_api:os-shelve:unshelve")
            .await?;
        self.check_lock(ctx, &inst)?;
        self.check_state(&inst, Action::Unshelve)?;
        let image = self
            .system_metadata(uuid, SHELVED_IMAGE)
            .await?
            .ok_or_else(|| {
                ComputeError::conflict(format!("Instance {uuid} has no shelved image."))
            })?;
        let mut tx = self.db.begin_write().await?;
        if let Some(zone) = &zone {
            ferrostack_db::sqlx::query(
                "UPDATE compute_instances SET availability_zone = $1 WHERE uuid = $2",
            )
            .bind(zone)
            .bind(uuid)
            .execute(&mut *tx)
            .await?;
        }
        let data = json!({"image_id": image});
        let run = self
            .begin_task(
                &mut tx,
                ctx,
                &inst,
                Action::Unshelve,
                UNSHELVE,
                data,
                request_id,
            )
            .await?;
        tx.commit().await?;
        self.engine.kick(&run);
        Ok(())
    }
}

pub fn register(service: &Arc<ComputeService>) {
    let weak = Arc::downgrade(service);
    let engine = &service.engine;
    engine.register(super::workflow_events::recorded(
        service,
        Shelve(weak.clone()),
    ));
    engine.register(super::workflow_events::recorded(service, Unshelve(weak)));
}

fn image_id(run: &Run) -> Result<String, StepError> {
    run.data
        .get("image_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| fail("The shelved image is unknown.", "run data has no image_id"))
}

fn from_vm_state(run: &Run) -> &'static str {
    run.data
        .get("from_vm_state")
        .and_then(Value::as_str)
        .and_then(crate::states::vm_state_named)
        .unwrap_or(vm::ACTIVE)
}

/// Moves a server's task on (a compare-and-swap on the one it had, or already `next`).
async fn advance(
    s: &ComputeService,
    uuid: &str,
    vm_state: &str,
    from: &str,
    next: &str,
) -> Result<(), StepError> {
    if !s
        .set_state(uuid, Some(from), vm_state, Some(next), None)
        .await
        .map_err(retry)?
    {
        let inst = load(s, uuid).await?;
        if inst.task_state.as_deref() != Some(next) {
            return Err(fail(
                "The server changed while it was being shelved.",
                format!("task state {:?}", inst.task_state),
            ));
        }
    }
    Ok(())
}

struct Shelve(Weak<ComputeService>);

impl Handler for Shelve {
    fn kind(&self) -> &'static str {
        SHELVE
    }
    fn steps(&self) -> &'static [&'static str] {
        &["stop", "snapshot", "offload", "finish"]
    }
    fn run_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        Box::pin(async move {
            let s = service(&self.0)?;
            let inst = load(&s, &run.subject).await?;
            let from = from_vm_state(run);
            match step {
                // A running guest shuts down first so its disk is consistent; a paused or
                // suspended one writes nothing while its disk is copied.
                0 if from == vm::ACTIVE => agent_of(&s, &inst)
                    .await?
                    .power(&inst.uuid, PowerOp::Stop)
                    .await
                    .map_err(agent_error("stop")),
                0 => Ok(()),
                1 => {
                    advance(
                        &s,
                        &inst.uuid,
                        from,
                        task::SHELVING,
                        task::SHELVING_IMAGE_UPLOADING,
                    )
                    .await?;
                    agent_of(&s, &inst)
                        .await?
                        .snapshot(&inst.uuid, &image_id(run)?)
                        .await
                        .map_err(agent_error("snapshot"))
                }
                2 => {
                    advance(
                        &s,
                        &inst.uuid,
                        from,
                        task::SHELVING_IMAGE_UPLOADING,
                        task::SHELVING_OFFLOADING,
                    )
                    .await?;
                    if inst.host.is_some() {
                        agent_of(&s, &inst)
                            .await?
                            .destroy(&inst.uuid)
                            .await
                            .map_err(agent_error("remove"))?;
                    }
                    s.release(&inst.uuid).await.map_err(retry)?;
                    s.unplace(&inst.uuid).await.map_err(retry)
                }
                _ => {
                    s.set_state(
                        &inst.uuid,
                        Some(task::SHELVING_OFFLOADING),
                        vm::SHELVED_OFFLOADED,
                        None,
                        Some(power::NOSTATE),
                    )
                    .await
                    .map_err(retry)?;
                    Ok(())
                }
            }
        })
    }
    fn undo_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        Box::pin(async move {
            let s = service(&self.0)?;
            match step {
                0 if from_vm_state(run) == vm::ACTIVE => {
                    let inst = load(&s, &run.subject).await?;
                    agent_of(&s, &inst)
                        .await?
                        .power(&inst.uuid, PowerOp::Start)
                        .await
                        .map_err(agent_error("start"))
                }
                1 => {
                    s.image.discard(&image_id(run)?).await.map_err(retry)?;
                    s.delete_system_metadata(&run.subject, SHELVED_IMAGE)
                        .await
                        .map_err(retry)
                }
                _ => Ok(()),
            }
        })
    }
    fn on_done<'a>(&'a self, run: &'a Run) -> BoxFut<'a, ()> {
        Box::pin(async move {
            if let Some(s) = self.0.upgrade() {
                let _ = s.finish_action(&run.subject, "shelve", None).await;
            }
        })
    }
    fn on_failed<'a>(&'a self, run: &'a Run, public_error: &'a str) -> BoxFut<'a, ()> {
        Box::pin(async move {
            let Some(s) = self.0.upgrade() else { return };
            let from = from_vm_state(run);
            for expected in [
                task::SHELVING,
                task::SHELVING_IMAGE_UPLOADING,
                task::SHELVING_OFFLOADING,
            ] {
                if let Ok(true) = s
                    .set_state(&run.subject, Some(expected), from, None, None)
                    .await
                {
                    break;
                }
            }
            let _ = s
                .finish_action(&run.subject, "shelve", Some(public_error))
                .await;
        })
    }
}

struct Unshelve(Weak<ComputeService>);

impl Handler for Unshelve {
    fn kind(&self) -> &'static str {
        UNSHELVE
    }
    fn steps(&self) -> &'static [&'static str] {
        &["schedule", "spawn", "finish"]
    }
    fn run_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        Box::pin(async move {
            let s = service(&self.0)?;
            let inst = load(&s, &run.subject).await?;
            match step {
                0 => {
                    schedule_and_place(
                        &s,
                        &inst,
                        vm::SHELVED_OFFLOADED,
                        task::UNSHELVING,
                        task::SPAWNING,
                    )
                    .await?;
                    Ok(())
                }
                1 => {
                    // The ports stayed with the shelved server; bind them to its new host.
                    s.allocate_network(&inst).await?;
                    let inst = load(&s, &run.subject).await?;
                    spawn_guest(&s, &inst, &image_id(run)?, run).await
                }
                _ => {
                    // The host keeps its own copy of the base; the snapshot has done its job.
                    // Forgotten before the server is ACTIVE again, so a new shelve cannot
                    // meet the old image's record.
                    s.image.discard(&image_id(run)?).await.map_err(retry)?;
                    s.delete_system_metadata(&inst.uuid, SHELVED_IMAGE)
                        .await
                        .map_err(retry)?;
                    s.set_state(
                        &inst.uuid,
                        Some(task::SPAWNING),
                        vm::ACTIVE,
                        None,
                        Some(power::RUNNING),
                    )
                    .await
                    .map_err(retry)?;
                    Ok(())
                }
            }
        })
    }
    fn undo_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        Box::pin(async move {
            let s = service(&self.0)?;
            match step {
                0 => {
                    s.release(&run.subject).await.map_err(retry)?;
                    s.unplace(&run.subject).await.map_err(retry)
                }
                1 => {
                    let inst = load(&s, &run.subject).await?;
                    if inst.host.is_none() {
                        return Ok(());
                    }
                    agent_of(&s, &inst)
                        .await?
                        .destroy(&inst.uuid)
                        .await
                        .map_err(agent_error("remove"))
                }
                _ => Ok(()),
            }
        })
    }
    fn on_done<'a>(&'a self, run: &'a Run) -> BoxFut<'a, ()> {
        Box::pin(async move {
            if let Some(s) = self.0.upgrade() {
                let _ = s.finish_action(&run.subject, "unshelve", None).await;
            }
        })
    }
    fn on_failed<'a>(&'a self, run: &'a Run, public_error: &'a str) -> BoxFut<'a, ()> {
        Box::pin(async move {
            let Some(s) = self.0.upgrade() else { return };
            for expected in [task::UNSHELVING, task::SPAWNING] {
                if let Ok(true) = s
                    .set_state(
                        &run.subject,
                        Some(expected),
                        vm::SHELVED_OFFLOADED,
                        None,
                        Some(power::NOSTATE),
                    )
                    .await
                {
                    let _ = s.record_fault(&run.subject, 500, public_error, "").await;
                    break;
                }
            }
            let _ = s
                .finish_action(&run.subject, "unshelve", Some(public_error))
                .await;
        })
    }
}
