//! Resize with confirm and revert. A resize keeps the server on its host (Nova with
//! `allow_resize_to_same_host`, the all-in-one default): in one Placement transaction the
//! server's allocations move to a migration consumer and the new flavor is claimed for
//! the server, so the host must have room for both until the user decides. The host keeps
//! the old disk and description, grows the disk and restarts the guest with the new size;
//! the server waits in VERIFY_RESIZE. `confirmResize` drops the old copy and the
//! migration's allocations; `revertResize` puts the old disk, flavor and allocations back.
//! Each is a workflow; a resize that fails part-way is undone step by step. The migration
//! record (`GET /os-migrations`) is written with the request and follows Nova's statuses:
//! `pre-migrating`, `migrating` while the host resizes, `finished` in VERIFY_RESIZE, then
//! `confirming`/`confirmed` or `reverting`/`reverted`, and `error` when a step fails for good.

use std::sync::{Arc, Weak};

use ferrostack_common::AuthContext;
use ferrostack_placement::service::allocations::ConsumerAllocations;
use ferrostack_workflow::{BoxFut, Handler, Run, StepError};
use serde_json::{json, Value};
use std::collections::BTreeMap;

use super::server_migrations::{insert_migration, set_migration_status_on, MigrationRecord};
use super::workflows::{agent_error, agent_of, fail, guest_spec, load, retry, service};
use super::ComputeService;
use crate::error::{ComputeError, Result};
use crate::model::{Flavor, Instance};
use crate::states::{power, task, vm, Action};

pub const RESIZE: &str = "server_resize";
pub const CONFIRM: &str = "server_resize_confirm";
pub const REVERT: &str = "server_resize_revert";

/// System metadata of a server waiting in VERIFY_RESIZE: its flavor before, the state it
/// was in, and the migration consumer that holds the old allocations.
const OLD_FLAVOR: &str = "old_flavor";
const RESIZE_FROM: &str = "resize_from_vm_state";
pub(super) const MIGRATION: &str = "resize_migration_id";

impl ComputeService {
    /// Starts resizing `uuid` to the flavor `flavor_ref`.
    pub async fn resize_server(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        flavor_ref: &str,
        request_id: &str,
    ) -> Result<()> {
        let inst = self
            .get_server(ctx, uuid, "os_compute_api:servers:resize")
            .await?;
        self.check_lock(ctx, &inst)?;
        self.check_state(&inst, Action::Resize)?;
        let new = self.flavor_for_boot(ctx, flavor_ref).await?;
        let old = &inst.flavor;
        if new.id == old.id {
            return Err(ComputeError::bad(
                "When resizing, instances must change flavor!",
            ));
        }
        if new.disk == 0 && old.disk > 0 {
            return Err(ComputeError::bad(
                "Resize to zero disk flavor is not allowed.",
            ));
        }
        if new.disk < old.disk {
            return Err(ComputeError::bad("Unable to resize disk down."));
        }
        self.check_quota_for(
            &inst.project_id,
            0,
            new.vcpus - old.vcpus,
            new.ram - old.ram,
        )
        .await?;
        let migration = uuid::Uuid::new_v4().to_string();
        let mut tx = self.db.begin_write().await?;
        // Nova's record of the move; its uuid is also the consumer that holds the old
        // flavor's allocations meanwhile.
        insert_migration(
            &mut tx,
            &MigrationRecord {
                uuid: migration.clone(),
                instance_uuid: inst.uuid.clone(),
                migration_type: "resize".into(),
                status: "pre-migrating".into(),
                source_compute: inst.host.clone(),
                source_node: inst.node.clone(),
                dest_compute: inst.host.clone(),
                dest_node: inst.node.clone(),
                old_instance_type_id: Some(old.id.clone()),
                new_instance_type_id: Some(new.id.clone()),
                user_id: Some(ctx.user_id.clone()),
                project_id: ctx.project_id().map(str::to_string),
                ..Default::default()
            },
        )
        .await?;
        let data = json!({
            "from_vm_state": inst.vm_state,
            "old_flavor": old,
            "new_flavor": new,
            "migration_id": migration,
        });
        let run = self
            .begin_task(
                &mut tx,
                ctx,
                &inst,
                Action::Resize,
                RESIZE,
                data,
                request_id,
            )
            .await?;
        tx.commit().await?;
        self.engine.kick(&run);
        Ok(())
    }

    /// Starts confirming (`revert` false) or reverting a resize waiting in VERIFY_RESIZE.
    pub async fn finish_resize(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        revert: bool,
        request_id: &str,
    ) -> Result<()> {
        let (action, rule, kind) = if revert {
            (
                Action::RevertResize,
                "os_compute_api:servers:revert_resize",
                REVERT,
            )
        } else {
            (
                Action::ConfirmResize,
                "os_compute_api:servers:confirm_resize",
                CONFIRM,
            )
        };
        let inst = self.get_server(ctx, uuid, rule).await?;
        self.check_lock(ctx, &inst)?;
        if inst.vm_state != vm::RESIZED {
            // Nova's wording when there is no resize to act on.
            return Err(ComputeError::bad(format!(
                "Instance has not been resized. Migration could not be found for instance {uuid}"
            )));
        }
        self.check_state(&inst, action)?;
        let mut data = json!({});
        for key in [OLD_FLAVOR, RESIZE_FROM, MIGRATION] {
            let value = self.system_metadata(uuid, key).await?.ok_or_else(|| {
                ComputeError::internal(format!("resized server {uuid} lacks {key}"))
            })?;
            data[key] = if key == OLD_FLAVOR {
                serde_json::from_str(&value).map_err(ComputeError::internal)?
            } else {
                json!(value)
            };
        }
        let mut tx = self.db.begin_write().await?;
        let migration = data[MIGRATION].as_str().unwrap_or_default().to_string();
        let status = if revert { "reverting" } else { "confirming" };
        set_migration_status_on(&mut tx, &migration, status).await?;
        let run = self
            .begin_task(&mut tx, ctx, &inst, action, kind, data, request_id)
            .await?;
        tx.commit().await?;
        self.engine.kick(&run);
        Ok(())
    }

    /// Swaps a server's allocations on its node: the server's go to `to` (the migration
    /// consumer) and the server gets `amounts`; with `to` empty, the migration's
    /// allocations go back to the server. One Placement transaction either way.
    async fn move_allocations(
        &self,
        inst: &Instance,
        holder: &str,
        give_server: BTreeMap<String, BTreeMap<String, i64>>,
        give_holder: BTreeMap<String, BTreeMap<String, i64>>,
    ) -> Result<()> {
        let claim = |consumer: &str, allocations, consumer_type: &str| ConsumerAllocations {
            consumer: consumer.to_string(),
            allocations,
            project_id: inst.project_id.clone(),
            user_id: inst.user_id.clone(),
            generation: None,
            consumer_type: Some(consumer_type.into()),
        };
        self.placement
            .set_allocations(vec![
                claim(&inst.uuid, give_server, "INSTANCE"),
                claim(holder, give_holder, "MIGRATION"),
            ])
            .await
            .map_err(|e| {
                // Over capacity (409) or beyond a provider's max_unit (400): the host has
                // no room for the new flavor, which Nova reports as no valid host.
                if matches!(e.status.as_u16(), 400 | 409) {
                    ComputeError::new(
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        "No valid host was found. There are not enough hosts available.",
                    )
                } else {
                    ComputeError::internal(format!("moving allocations: {e}"))
                }
            })
    }

    /// Provider → class → amount a consumer holds.
    async fn held_by(&self, consumer: &str) -> Result<BTreeMap<String, BTreeMap<String, i64>>> {
        let view = self
            .placement
            .consumer_allocations(consumer)
            .await
            .map_err(|e| ComputeError::internal(format!("allocations of {consumer}: {e}")))?;
        let mut out: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for row in view.rows {
            out.entry(row.provider_uuid)
                .or_default()
                .insert(row.resource_class, row.used);
        }
        Ok(out)
    }

    async fn set_flavor(&self, uuid: &str, flavor: &Flavor) -> Result<()> {
        ferrostack_db::sqlx::query("UPDATE compute_instances SET flavor = $1 WHERE uuid = $2")
            .bind(serde_json::to_string(flavor).map_err(ComputeError::internal)?)
            .bind(uuid)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }
}

/// What a flavor asks of the node that holds the server (the same classes as a boot).
fn amounts_of(flavor: &Flavor, node: &str) -> BTreeMap<String, BTreeMap<String, i64>> {
    let mut classes = BTreeMap::new();
    classes.insert("VCPU".to_string(), flavor.vcpus);
    classes.insert("MEMORY_MB".to_string(), flavor.ram);
    let disk = flavor.disk + flavor.ephemeral + (flavor.swap + 1023) / 1024;
    if disk > 0 {
        classes.insert("DISK_GB".to_string(), disk);
    }
    BTreeMap::from([(node.to_string(), classes)])
}

pub fn register(service: &Arc<ComputeService>) {
    use super::workflow_events::recorded;
    let weak = Arc::downgrade(service);
    let engine = &service.engine;
    engine.register(recorded(service, Resize(weak.clone())));
    engine.register(recorded(
        service,
        Finish {
            service: weak.clone(),
            revert: false,
        },
    ));
    engine.register(recorded(
        service,
        Finish {
            service: weak,
            revert: true,
        },
    ));
}

fn field<T: serde::de::DeserializeOwned>(run: &Run, key: &str) -> Result<T, StepError> {
    let v = run.data.get(key).cloned().unwrap_or(Value::Null);
    serde_json::from_value(v)
        .map_err(|e| fail("The resize lost its record.", format!("{key}: {e}")))
}

fn from_state(run: &Run, key: &str) -> &'static str {
    run.data
        .get(key)
        .and_then(Value::as_str)
        .and_then(crate::states::vm_state_named)
        .unwrap_or(vm::ACTIVE)
}

struct Resize(Weak<ComputeService>);

impl Handler for Resize {
    fn kind(&self) -> &'static str {
        RESIZE
    }
    fn steps(&self) -> &'static [&'static str] {
        &["claim", "resize", "finish"]
    }
    fn run_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        Box::pin(async move {
            let s = service(&self.0)?;
            let inst = load(&s, &run.subject).await?;
            let new: Flavor = field(run, "new_flavor")?;
            let migration: String = field(run, "migration_id")?;
            let from = from_state(run, "from_vm_state");
            match step {
                0 => {
                    if !s.held_by(&migration).await.map_err(retry)?.is_empty() {
                        return Ok(()); // moved already (a step running again)
                    }
                    let old = s.held_by(&inst.uuid).await.map_err(retry)?;
                    // The compute node's provider: where the server's resources are now.
                    let node = old
                        .keys()
                        .next()
                        .cloned()
                        .ok_or_else(|| fail("The server holds no resources.", &inst.uuid))?;
                    s.move_allocations(&inst, &migration, amounts_of(&new, &node), old)
                        .await
                        .map_err(|e| {
                            if e.internal.is_none() {
                                fail(e.message.clone(), &e.message)
                            } else {
                                retry(e.internal.clone().unwrap_or(e.message))
                            }
                        })
                }
                1 => {
                    s.set_migration_status(&migration, "migrating")
                        .await
                        .map_err(retry)?;
                    let mut sized = inst.clone();
                    sized.flavor = new;
                    let format = s
                        .image
                        .store
                        .get(&inst.image_ref)
                        .await
                        .map_err(retry)?
                        .and_then(|i| i.disk_format)
                        .unwrap_or_else(|| "qcow2".into());
                    let spec = guest_spec(&sized, &format, None);
                    agent_of(&s, &inst)
                        .await?
                        .resize(&spec, from == vm::ACTIVE)
                        .await
                        .map_err(agent_error("resize"))
                }
                _ => {
                    let old: Flavor = field(run, "old_flavor")?;
                    let mut tx = s.db.begin_write().await.map_err(retry)?;
                    for (key, value) in [
                        (OLD_FLAVOR, serde_json::to_string(&old).unwrap_or_default()),
                        (RESIZE_FROM, from.to_string()),
                        (MIGRATION, migration.clone()),
                    ] {
                        s.set_system_metadata(&mut tx, &inst.uuid, key, &value)
                            .await
                            .map_err(retry)?;
                    }
                    tx.commit().await.map_err(retry)?;
                    s.set_flavor(&inst.uuid, &new).await.map_err(retry)?;
                    s.set_migration_status(&migration, "finished")
                        .await
                        .map_err(retry)?;
                    let power_state = if from == vm::ACTIVE {
                        power::RUNNING
                    } else {
                        power::SHUTDOWN
                    };
                    s.set_state(
                        &inst.uuid,
                        Some(task::RESIZE_PREP),
                        vm::RESIZED,
                        None,
                        Some(power_state),
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
            let inst = load(&s, &run.subject).await?;
            let migration: String = field(run, "migration_id")?;
            match step {
                0 => {
                    let old = s.held_by(&migration).await.map_err(retry)?;
                    if old.is_empty() {
                        return Ok(());
                    }
                    s.move_allocations(&inst, &migration, old, BTreeMap::new())
                        .await
                        .map_err(retry)
                }
                1 => agent_of(&s, &inst)
                    .await?
                    .revert_resize(&inst.uuid, from_state(run, "from_vm_state") == vm::ACTIVE)
                    .await
                    .map_err(agent_error("revert the resize of")),
                _ => Ok(()),
            }
        })
    }
    fn on_done<'a>(&'a self, run: &'a Run) -> BoxFut<'a, ()> {
        Box::pin(async move {
            if let Some(s) = self.0.upgrade() {
                let _ = s.finish_action(&run.subject, "resize", None).await;
            }
        })
    }
    fn on_failed<'a>(&'a self, run: &'a Run, public_error: &'a str) -> BoxFut<'a, ()> {
        Box::pin(async move {
            let Some(s) = self.0.upgrade() else { return };
            if let Ok(migration) = field::<String>(run, "migration_id") {
                let _ = s.set_migration_status(&migration, "error").await;
            }
            let from = from_state(run, "from_vm_state");
            let _ = s
                .set_state(&run.subject, Some(task::RESIZE_PREP), from, None, None)
                .await;
            let _ = s
                .finish_action(&run.subject, "resize", Some(public_error))
                .await;
        })
    }
}

/// `confirmResize` (drop the old copy and allocations) or `revertResize` (put them back).
struct Finish {
    service: Weak<ComputeService>,
    revert: bool,
}

impl Finish {
    fn action(&self) -> Action {
        if self.revert {
            Action::RevertResize
        } else {
            Action::ConfirmResize
        }
    }
}

impl Handler for Finish {
    fn kind(&self) -> &'static str {
        if self.revert {
            REVERT
        } else {
            CONFIRM
        }
    }
    fn steps(&self) -> &'static [&'static str] {
        &["host", "allocations", "finish"]
    }
    fn run_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        Box::pin(async move {
            let s = service(&self.service)?;
            let inst = load(&s, &run.subject).await?;
            let from = from_state(run, RESIZE_FROM);
            let migration: String = field(run, MIGRATION)?;
            match (step, self.revert) {
                (0, false) => agent_of(&s, &inst)
                    .await?
                    .confirm_resize(&inst.uuid)
                    .await
                    .map_err(agent_error("confirm the resize of")),
                (0, true) => agent_of(&s, &inst)
                    .await?
                    .revert_resize(&inst.uuid, from == vm::ACTIVE)
                    .await
                    .map_err(agent_error("revert the resize of")),
                (1, false) => s.release(&migration).await.map_err(retry),
                (1, true) => {
                    let old = s.held_by(&migration).await.map_err(retry)?;
                    if old.is_empty() {
                        return Ok(());
                    }
                    s.move_allocations(&inst, &migration, old, BTreeMap::new())
                        .await
                        .map_err(retry)?;
                    let flavor: Flavor = field(run, OLD_FLAVOR)?;
                    s.set_flavor(&inst.uuid, &flavor).await.map_err(retry)
                }
                _ => {
                    for key in [OLD_FLAVOR, RESIZE_FROM, MIGRATION] {
                        s.delete_system_metadata(&inst.uuid, key)
                            .await
                            .map_err(retry)?;
                    }
                    let done = if self.revert { "reverted" } else { "confirmed" };
                    s.set_migration_status(&migration, done)
                        .await
                        .map_err(retry)?;
                    let (vm_state, power_state) = self.action().outcome(from);
                    s.set_state(
                        &inst.uuid,
                        Some(self.action().task_state()),
                        vm_state,
                        None,
                        Some(power_state),
                    )
                    .await
                    .map_err(retry)?;
                    Ok(())
                }
            }
        })
    }
    fn undo_step<'a>(
        &'a self,
        _step: usize,
        _run: &'a mut Run,
    ) -> BoxFut<'a, Result<(), StepError>> {
        // Confirming and reverting only go forward; a failure leaves the server in ERROR,
        // as Nova does, for an operator to look at.
        Box::pin(async { Ok(()) })
    }
    fn on_done<'a>(&'a self, run: &'a Run) -> BoxFut<'a, ()> {
        Box::pin(async move {
            if let Some(s) = self.service.upgrade() {
                let _ = s
                    .finish_action(&run.subject, self.action().name(), None)
                    .await;
            }
        })
    }
    fn on_failed<'a>(&'a self, run: &'a Run, public_error: &'a str) -> BoxFut<'a, ()> {
        Box::pin(async move {
            let Some(s) = self.service.upgrade() else {
                return;
            };
            if let Ok(migration) = field::<String>(run, MIGRATION) {
                let _ = s.set_migration_status(&migration, "error").await;
            }
            // The fault before the state, so whoever sees ERROR finds it; none when a delete
            // took the server over meanwhile.
            let task = self.action().task_state();
            let in_task = s
                .instance(&run.subject)
                .await
                .ok()
                .flatten()
                .is_some_and(|i| i.task_state.as_deref() == Some(task));
            if in_task {
                let _ = s.record_fault(&run.subject, 500, public_error, "").await;
            }
            let _ = s
                .set_state(&run.subject, Some(task), vm::ERROR, None, None)
                .await;
            let _ = s
                .finish_action(&run.subject, self.action().name(), Some(public_error))
                .await;
        })
    }
}
