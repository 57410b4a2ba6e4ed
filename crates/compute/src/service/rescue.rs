//! Rescue: a server whose own system will not start is restarted from a rescue image (the
//! one asked for, the image's `hw_rescue_image` hint, or the server's own image), with its
//! own disk attached as the second disk so the user can repair it; `unrescue` restarts it
//! from its own disk. The rescue system gets a new admin password through its config
//! drive. Both are workflows; a failed rescue puts the server back on its own disk.

use std::sync::{Arc, Weak};

use ferrostack_common::AuthContext;
use ferrostack_workflow::{BoxFut, Handler, Run, StepError};
use serde_json::{json, Value};

use super::workflows::{agent_error, agent_of, fail, guest_spec, load, retry, service};
use super::ComputeService;
use crate::error::Result;
use crate::states::{power, vm, Action};

pub const RESCUE: &str = "server_rescue";
pub const UNRESCUE: &str = "server_unrescue";

impl ComputeService {
    /// Starts a rescue; returns the rescue system's admin password.
    pub async fn rescue_server(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        rescue_image_ref: Option<String>,
        admin_pass: Option<String>,
        request_id: &str,
    ) -> Result<String> {
        let inst = self
            .get_server(ctx, uuid, "os_compute_api:os-rescue")
            .await?;
        self.check_lock(ctx, &inst)?;
        self.check_state(&inst, Action::Rescue)?;
        let wanted = match rescue_image_ref {
            Some(r) => r,
            None => self
                .image
                .store
                .get(&inst.image_ref)
                .await
                .ok()
                .flatten()
                .and_then(|i| {
                    i.properties
                        .get("hw_rescue_image")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_else(|| inst.image_ref.clone()),
        };
        let image = self.boot_image(ctx, &wanted, &inst.flavor).await?;
        let admin_pass = admin_pass.unwrap_or_else(super::servers::random_password);
        let mut tx = self.db.begin_write().await?;
        let data = json!({"image_id": image, "admin_pass": admin_pass});
        let run = self
            .begin_task(
                &mut tx,
                ctx,
                &inst,
                Action::Rescue,
                RESCUE,
                data,
                request_id,
            )
            .await?;
        tx.commit().await?;
        self.engine.kick(&run);
        Ok(admin_pass)
    }

    pub async fn unrescue_server(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        request_id: &str,
    ) -> Result<()> {
        let inst = self
            .get_server(ctx, uuid, "os_compute_api:os-unrescue")
            .await?;
        self.check_lock(ctx, &inst)?;
        self.check_state(&inst, Action::Unrescue)?;
        let mut tx = self.db.begin_write().await?;
        let run = self
            .begin_task(
                &mut tx,
                ctx,
                &inst,
                Action::Unrescue,
                UNRESCUE,
                json!({}),
                request_id,
            )
            .await?;
        tx.commit().await?;
        self.engine.kick(&run);
        Ok(())
    }
}

pub fn register(service: &Arc<ComputeService>) {
    use super::workflow_events::recorded;
    let weak = Arc::downgrade(service);
    let engine = &service.engine;
    engine.register(recorded(
        service,
        Rescue {
            service: weak.clone(),
            rescue: true,
        },
    ));
    engine.register(recorded(
        service,
        Rescue {
            service: weak,
            rescue: false,
        },
    ));
}

/// `rescue` (`rescue` true) or `unrescue`.
struct Rescue {
    service: Weak<ComputeService>,
    rescue: bool,
}

impl Rescue {
    fn action(&self) -> Action {
        if self.rescue {
            Action::Rescue
        } else {
            Action::Unrescue
        }
    }
}

impl Handler for Rescue {
    fn kind(&self) -> &'static str {
        if self.rescue {
            RESCUE
        } else {
            UNRESCUE
        }
    }
    fn steps(&self) -> &'static [&'static str] {
        &["host", "finish"]
    }
    fn run_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        Box::pin(async move {
            let s = service(&self.service)?;
            let inst = load(&s, &run.subject).await?;
            let agent = agent_of(&s, &inst).await?;
            match (step, self.rescue) {
                (0, true) => {
                    let image = run
                        .data
                        .get("image_id")
                        .and_then(Value::as_str)
                        .ok_or_else(|| fail("The rescue image is unknown.", "no image_id"))?;
                    let format = s
                        .image
                        .store
                        .get(image)
                        .await
                        .map_err(retry)?
                        .and_then(|i| i.disk_format)
                        .unwrap_or_else(|| "qcow2".into());
                    let pass = run.data.get("admin_pass").and_then(Value::as_str);
                    let mut spec = guest_spec(&inst, &format, pass);
                    spec.image_id = image.to_string();
                    agent.rescue(&spec).await.map_err(agent_error("rescue"))
                }
                (0, false) => agent
                    .unrescue(&inst.uuid)
                    .await
                    .map_err(agent_error("unrescue")),
                _ => {
                    let (vm_state, _) = self.action().outcome(&inst.vm_state);
                    s.set_state(
                        &inst.uuid,
                        Some(self.action().task_state()),
                        vm_state,
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
            if step == 0 && self.rescue {
                let s = service(&self.service)?;
                let inst = load(&s, &run.subject).await?;
                agent_of(&s, &inst)
                    .await?
                    .unrescue(&inst.uuid)
                    .await
                    .map_err(agent_error("unrescue"))?;
            }
            Ok(())
        })
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
            // A failed rescue was undone (the server runs from its own disk again); a
            // failed unrescue leaves the server rescued. Either way, the state it had.
            let Ok(Some(inst)) = s.instance(&run.subject).await else {
                return;
            };
            let _ = s
                .set_state(
                    &run.subject,
                    Some(self.action().task_state()),
                    crate::states::vm_state_named(&inst.vm_state).unwrap_or(vm::ERROR),
                    None,
                    None,
                )
                .await;
            let _ = s
                .finish_action(&run.subject, self.action().name(), Some(public_error))
                .await;
        })
    }
}
