//! `rebuild`: a server keeps its id, flavor, host and allocations but gets a fresh root disk
//! from an image (the same or another), and optionally a new name, metadata, key, user data
//! and admin password. The request writes the new attributes and the `server_rebuild`
//! workflow in one transaction; the workflow destroys the old VM, spawns the new one with a
//! new config drive, and leaves the server as it was before (a stopped server is stopped
//! again, as Nova does). A rebuild cannot be taken back: one that fails ends in ERROR, from
//! which the user can rebuild again or delete.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use ferrostack_common::AuthContext;
use ferrostack_db::sqlx;
use ferrostack_workflow::{BoxFut, Handler, Run, StepError};
use serde_json::{json, Value};

use super::workflows::{agent_error, agent_of, load, retry, service, spawn_guest};
use super::{now, ComputeService};
use crate::error::{ComputeError, Result};
use crate::host::PowerOp;
use crate::model::Instance;
use crate::states::{task, vm, Action};

pub const REBUILD: &str = "server_rebuild";

/// A validated `rebuild` body. `Some(None)` clears an attribute, `None` leaves it.
#[derive(Debug, Clone, Default)]
pub struct RebuildRequest {
    pub image_ref: String,
    pub name: Option<String>,
    pub admin_pass: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub access_ipv4: Option<Option<String>>,
    pub access_ipv6: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub key_name: Option<Option<String>>,
    pub user_data: Option<Option<String>>,
    pub hostname: Option<String>,
}

impl ComputeService {
    /// Starts a rebuild; returns the server as it is now (status REBUILD) and the admin
    /// password the new guest gets.
    pub async fn rebuild_server(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        req: RebuildRequest,
        request_id: &str,
    ) -> Result<(Instance, String)> {
        let inst = self
            .get_server(ctx, uuid, "os_compute_api:servers:rebuild")
            .await?;
        self.check_lock(ctx, &inst)?;
        self.check_state(&inst, Action::Rebuild)?;
        let image_id = self.boot_image(ctx, &req.image_ref, &inst.flavor).await?;
        let key = match &req.key_name {
            Some(Some(name)) => Some(Some(
                self.keypair_of(&inst.user_id, name)
                    .await?
                    .ok_or_else(|| ComputeError::bad("Invalid key_name provided."))?,
            )),
            Some(None) => Some(None),
            None => None,
        };
        let admin_pass = req
            .admin_pass
            .clone()
            .unwrap_or_else(super::servers::random_password);

        let mut tx = self.db.begin_write().await?;
        let set = |column: &str, value: Option<String>| {
            (
                format!("UPDATE compute_instances SET {column} = $1 WHERE uuid = $2"),
                value,
            )
        };
        let mut updates = vec![set("image_ref", Some(image_id))];
        if let Some(name) = &req.name {
            updates.push(set("display_name", Some(name.clone())));
        }
        for (column, change) in [
            ("access_ipv4", &req.access_ipv4),
            ("access_ipv6", &req.access_ipv6),
            ("description", &req.description),
            ("user_data", &req.user_data),
        ] {
            if let Some(value) = change {
                updates.push(set(column, value.clone()));
            }
        }
        if let Some(hostname) = &req.hostname {
            updates.push(set("hostname", Some(hostname.clone())));
        }
        if let Some(key) = &key {
            updates.push(set("key_name", key.as_ref().map(|k| k.name.clone())));
            updates.push(set("key_data", key.as_ref().map(|k| k.public_key.clone())));
        }
        for (sql, value) in updates {
            sqlx::query(&sql)
                .bind(value)
                .bind(uuid)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(metadata) = &req.metadata {
            sqlx::query("DELETE FROM compute_instance_metadata WHERE instance_uuid = $1")
                .bind(uuid)
                .execute(&mut *tx)
                .await?;
            for (k, v) in metadata {
                sqlx::query("INSERT INTO compute_instance_metadata (instance_uuid, meta_key, meta_value) VALUES ($1, $2, $3)")
                    .bind(uuid)
                    .bind(k)
                    .bind(v)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let data = json!({"from_vm_state": inst.vm_state, "admin_pass": admin_pass});
        let run = self
            .begin_task(
                &mut tx,
                ctx,
                &inst,
                Action::Rebuild,
                REBUILD,
                data,
                request_id,
            )
            .await?;
        tx.commit().await?;
        self.engine.kick(&run);
        let now = self
            .instance(uuid)
            .await?
            .ok_or_else(|| super::servers::not_found(uuid))?;
        Ok((now, admin_pass))
    }

    /// The rebuild's last step: back to the state it had, with a new launch time.
    async fn finish_rebuild(&self, uuid: &str, vm_state: &str, power_state: i64) -> Result<()> {
        sqlx::query(
            "UPDATE compute_instances SET vm_state = $1, task_state = NULL, power_state = $2, \
             launched_at = $3, updated_at = $3 WHERE uuid = $4 AND task_state = $5",
        )
        .bind(vm_state)
        .bind(power_state)
        .bind(now())
        .bind(uuid)
        .bind(task::REBUILDING)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }
}

pub fn register(service: &Arc<ComputeService>) {
    let handler = Rebuild(Arc::downgrade(service));
    service
        .engine
        .register(super::workflow_events::recorded(service, handler));
}

struct Rebuild(Weak<ComputeService>);

fn from_vm_state(run: &Run) -> &'static str {
    run.data
        .get("from_vm_state")
        .and_then(Value::as_str)
        .and_then(crate::states::vm_state_named)
        .unwrap_or(vm::ACTIVE)
}

impl Handler for Rebuild {
    fn kind(&self) -> &'static str {
        REBUILD
    }
    fn steps(&self) -> &'static [&'static str] {
        &["destroy", "spawn", "finish"]
    }
    fn run_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        Box::pin(async move {
            let s = service(&self.0)?;
            let inst = load(&s, &run.subject).await?;
            let from = from_vm_state(run);
            match step {
                0 => agent_of(&s, &inst)
                    .await?
                    .destroy(&inst.uuid)
                    .await
                    .map_err(agent_error("destroy")),
                1 => {
                    spawn_guest(&s, &inst, &inst.image_ref, run).await?;
                    if from == vm::STOPPED {
                        agent_of(&s, &inst)
                            .await?
                            .power(&inst.uuid, PowerOp::Stop)
                            .await
                            .map_err(agent_error("stop"))?;
                    }
                    Ok(())
                }
                _ => {
                    let (vm_state, power_state) = Action::Rebuild.outcome(from);
                    s.finish_rebuild(&inst.uuid, vm_state, power_state)
                        .await
                        .map_err(retry)
                }
            }
        })
    }
    fn undo_step<'a>(
        &'a self,
        _step: usize,
        _run: &'a mut Run,
    ) -> BoxFut<'a, Result<(), StepError>> {
        // The old disk is gone once the first step ran: there is nothing to give back. The
        // failure hook leaves the server in ERROR, to be rebuilt again or deleted.
        Box::pin(async { Ok(()) })
    }
    fn on_done<'a>(&'a self, run: &'a Run) -> BoxFut<'a, ()> {
        Box::pin(async move {
            if let Some(s) = self.0.upgrade() {
                let _ = s.finish_action(&run.subject, "rebuild", None).await;
            }
        })
    }
    fn on_failed<'a>(&'a self, run: &'a Run, public_error: &'a str) -> BoxFut<'a, ()> {
        Box::pin(async move {
            let Some(s) = self.0.upgrade() else { return };
            // The fault before the state, so whoever sees ERROR finds it; none when a delete
            // took the server over meanwhile.
            let rebuilding = s
                .instance(&run.subject)
                .await
                .ok()
                .flatten()
                .is_some_and(|i| i.task_state.as_deref() == Some(task::REBUILDING));
            if rebuilding {
                let _ = s.record_fault(&run.subject, 500, public_error, "").await;
            }
            let _ = s
                .set_state(
                    &run.subject,
                    Some(task::REBUILDING),
                    vm::ERROR,
                    None,
                    Some(0),
                )
                .await;
            let _ = s
                .finish_action(&run.subject, "rebuild", Some(public_error))
                .await;
        })
    }
}
