//! The server workflows: boot, delete and power actions, each a list of idempotent steps
//! with undo, run by the durable workflow engine. A crash (of the control plane or of the
//! agent) at any step resumes from that step after restart; a step that cannot succeed
//! unwinds what the earlier ones did and leaves the server in ERROR with a fault the user can
//! read. A delete cancels a boot or action still running on the same server first, and waits
//! for it to unwind, so two workflows never act on one server at once.

use std::sync::{Arc, Weak};

use ferrostack_workflow::{BoxFut, Handler, Run, StepError};
use serde_json::json;

use super::scheduler::{Constraints, Placed};
use super::workflow_events::recorded;
use super::ComputeService;
use crate::host::{AgentError, GuestSpec, PowerOp};
use crate::model::Instance;
use crate::states::{task, vm, Action};

pub const BOOT: &str = "server_boot";
pub const DELETE: &str = "server_delete";
pub const ACTION: &str = "server_action";

pub fn register(service: &Arc<ComputeService>) {
    let weak = Arc::downgrade(service);
    let engine = &service.engine;
    engine.register(recorded(service, Boot(weak.clone())));
    engine.register(recorded(service, Delete(weak.clone())));
    engine.register(recorded(service, PowerAction(weak)));
    super::snapshot::register(service);
    super::rebuild::register(service);
    super::shelve::register(service);
    super::resize::register(service);
    super::rescue::register(service);
    super::interfaces::register(service);
}

pub(super) fn fail(public: impl Into<String>, detail: impl std::fmt::Display) -> StepError {
    StepError::Fail {
        public: public.into(),
        detail: detail.to_string(),
    }
}

pub(super) fn retry(e: impl std::fmt::Display) -> StepError {
    StepError::Retry(e.to_string())
}

pub(super) fn service(w: &Weak<ComputeService>) -> Result<Arc<ComputeService>, StepError> {
    w.upgrade()
        .ok_or_else(|| retry("compute service is shutting down"))
}

pub(super) async fn load(s: &ComputeService, uuid: &str) -> Result<Instance, StepError> {
    s.instance(uuid)
        .await
        .map_err(retry)?
        .ok_or_else(|| fail("The server no longer exists.", uuid))
}

/// A host's refusal as a step error. The host's own words (QEMU's stderr, file names on the
/// host) go to the log only; the user reads which operation failed.
pub(super) fn agent_error(op: &str) -> impl Fn(AgentError) -> StepError + '_ {
    move |e| match e {
        AgentError::Transient(m) => StepError::Retry(m),
        AgentError::Failed(m) => fail(format!("The compute host failed to {op} the server."), m),
        AgentError::NotFound(m) => fail("The server is gone from its host.", m),
    }
}

/// The host's agent, or a retry while it is not (yet) connected.
pub(super) async fn agent_of(
    s: &ComputeService,
    inst: &Instance,
) -> Result<Arc<dyn crate::host::HostAgent>, StepError> {
    let host = inst
        .host
        .as_deref()
        .ok_or_else(|| fail("The server has no host.", &inst.uuid))?;
    s.agent(host)
        .await
        .map_err(|e| retry(format!("finding the agent of host {host}: {e}")))?
        .ok_or_else(|| retry(format!("the agent of host {host} is not connected")))
}

/// The full description of a server that its host needs.
pub fn guest_spec(inst: &Instance, disk_format: &str, admin_pass: Option<&str>) -> GuestSpec {
    GuestSpec {
        uuid: inst.uuid.clone(),
        name: inst.instance_name(),
        hostname: inst.hostname.clone(),
        vcpus: inst.flavor.vcpus.max(1) as u32,
        memory_mb: inst.flavor.ram.max(1) as u64,
        root_gb: inst.flavor.disk.max(0) as u64,
        image_id: inst.image_ref.clone(),
        image_disk_format: disk_format.to_string(),
        // As Nova: a config drive when the user asks for one. A server with no NIC gets one
        // too: it cannot reach the metadata service, and would otherwise learn nothing.
        config_drive: (inst.config_drive || inst.network_info.is_empty())
            .then(|| super::metadata::config_drive_files(inst, admin_pass)),
        nics: inst
            .network_info
            .iter()
            .map(|v| crate::host::GuestNic {
                port_id: v.port_id.clone(),
                mac: v.mac.clone(),
                mtu: v.mtu,
                network_id: v.network_id.clone(),
                fixed_ips: v.fixed_ips.iter().map(|ip| ip.address.clone()).collect(),
                metadata_port: v.metadata_port.clone(),
            })
            .collect(),
        project_id: inst.project_id.clone(),
    }
}

/// Has the server's host create and start its VM from `image_id` (the server's image, or
/// the snapshot a shelved server was saved to); idempotent: a VM that exists is left alone.
/// The run's data may hold the admin password to inject.
pub(super) async fn spawn_guest(
    s: &ComputeService,
    inst: &Instance,
    image_id: &str,
    run: &Run,
) -> Result<(), StepError> {
    let agent = agent_of(s, inst).await?;
    let format = match s.image.store.get(image_id).await {
        Ok(Some(i)) => i.disk_format.unwrap_or_else(|| "qcow2".into()),
        Ok(None) => {
            return Err(fail(
                format!("Image {image_id} could not be found."),
                "image gone",
            ))
        }
        Err(e) => return Err(retry(e)),
    };
    let pass = run.data.get("admin_pass").and_then(|v| v.as_str());
    let mut spec = guest_spec(inst, &format, pass);
    spec.image_id = image_id.to_string();
    agent.ensure(&spec).await.map_err(agent_error("start"))
}

pub(super) struct Boot(Weak<ComputeService>);

impl Boot {
    /// Where `inst` may go: hosts whose compute service is up and enabled, its zone, its
    /// forced host, its server group's policy; and the weighers' multipliers.
    pub(super) async fn constraints(
        s: &ComputeService,
        inst: &Instance,
    ) -> Result<Constraints, StepError> {
        let services = s.services().await.map_err(retry)?;
        let hosts = services
            .into_iter()
            .filter(|sv| sv.binary == "nova-compute" && !sv.disabled && s.service_is_up(sv))
            .map(|sv| (sv.host, sv.zone))
            .collect();
        let group = match &inst.request.server_group {
            Some(group) => {
                let mut conn = s.db.pool().acquire().await.map_err(retry)?;
                ComputeService::group_state(&mut conn, group, &inst.uuid)
                    .await
                    .map_err(retry)?
            }
            None => None,
        };
        Ok(Constraints {
            hosts,
            zone: inst.availability_zone.clone(),
            requested_host: inst.request.requested_host.clone(),
            group,
            multipliers: s.config.weight_multipliers,
        })
    }
}

/// Picks a host for `inst`, claims its resources and records the host, moving the task
/// from `task` to `next` (idempotent: a server that holds a claim keeps it). Returns the
/// placement and the host's zone. A member of a server group that lost its place to another
/// member meanwhile gives the claim back and is scheduled again on the retry.
pub(super) async fn schedule_and_place(
    s: &ComputeService,
    inst: &Instance,
    vm_state: &str,
    task: &str,
    next: &str,
) -> Result<(Placed, Option<String>), StepError> {
    let _one_at_a_time = s.scheduling.lock().await;
    let c = Boot::constraints(s, inst).await?;
    let placed = s.schedule(inst, &c).await.map_err(|e| {
        if e.status.as_u16() == 500 && e.internal.is_none() {
            fail(e.message.clone(), &e.message)
        } else {
            retry(e.internal.clone().unwrap_or(e.message))
        }
    })?;
    let zone = c.hosts.get(&placed.host).cloned();
    let placed_ok = s
        .place_in(&inst.uuid, &placed, zone.as_deref(), vm_state, task, next)
        .await
        .map_err(retry)?;
    if !placed_ok {
        s.release(&inst.uuid).await.map_err(retry)?;
        return Err(retry(format!(
            "another member of the server's group took host {} meanwhile",
            placed.host
        )));
    }
    Ok((placed, zone))
}

impl Handler for Boot {
    fn kind(&self) -> &'static str {
        BOOT
    }
    fn steps(&self) -> &'static [&'static str] {
        &["schedule", "network", "spawn", "activate"]
    }
    fn run_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        Box::pin(async move {
            let s = service(&self.0)?;
            let inst = load(&s, &run.subject).await?;
            match step {
                0 => {
                    let (placed, _) = schedule_and_place(
                        &s,
                        &inst,
                        vm::BUILDING,
                        task::SCHEDULING,
                        task::SPAWNING,
                    )
                    .await?;
                    run.data["placed"] = json!(placed);
                    Ok(())
                }
                1 => s.allocate_network(&inst).await,
                2 => spawn_guest(&s, &inst, &inst.image_ref, run).await,
                _ => {
                    s.wait_for_vifs(&inst.uuid).await?;
                    s.activate(&inst.uuid).await.map_err(retry)?;
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
                    s.unplace(&run.subject).await.map_err(retry)?;
                    Ok(())
                }
                1 => s.deallocate_network(&run.subject).await,
                2 => {
                    let Some(inst) = s.instance(&run.subject).await.map_err(retry)? else {
                        return Ok(());
                    };
                    if inst.host.is_none() {
                        return Ok(());
                    }
                    agent_of(&s, &inst)
                        .await?
                        .destroy(&inst.uuid)
                        .await
                        .map_err(agent_error("destroy"))
                }
                _ => Ok(()),
            }
        })
    }
    fn on_done<'a>(&'a self, run: &'a Run) -> BoxFut<'a, ()> {
        Box::pin(async move {
            if let Some(s) = self.0.upgrade() {
                let _ = s.finish_action(&run.subject, "create", None).await;
            }
        })
    }
    fn on_failed<'a>(&'a self, run: &'a Run, public_error: &'a str) -> BoxFut<'a, ()> {
        Box::pin(async move {
            let Some(s) = self.0.upgrade() else { return };
            // A boot cancelled by a delete leaves the server to the delete.
            let deleting = s
                .instance(&run.subject)
                .await
                .ok()
                .flatten()
                .is_some_and(|i| i.task_state.as_deref() == Some(task::DELETING) || i.deleted);
            if !deleting {
                let _ = s.record_fault(&run.subject, 500, public_error, "").await;
                let _ = s.fail_build(&run.subject).await;
            }
            let _ = s
                .finish_action(&run.subject, "create", Some(public_error))
                .await;
        })
    }
}

struct Delete(Weak<ComputeService>);

impl Handler for Delete {
    fn kind(&self) -> &'static str {
        DELETE
    }
    fn steps(&self) -> &'static [&'static str] {
        &["stop_other_workflows", "destroy", "release", "mark_deleted"]
    }
    fn max_retries(&self) -> u32 {
        40
    }
    fn run_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        Box::pin(async move {
            let s = service(&self.0)?;
            match step {
                0 => {
                    let others: Vec<_> = s
                        .engine
                        .active_for_subject(&run.subject)
                        .await
                        .map_err(retry)?
                        .into_iter()
                        .filter(|r| r.id != run.id)
                        .collect();
                    if others.is_empty() {
                        return Ok(());
                    }
                    for r in &others {
                        s.engine.cancel(&r.id).await.map_err(retry)?;
                    }
                    Err(retry("waiting for the server's other workflows to stop"))
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
                        .map_err(agent_error("destroy"))
                }
                2 => {
                    s.deallocate_network(&run.subject).await?;
                    s.release(&run.subject).await.map_err(retry)?;
                    s.leave_groups(&run.subject).await.map_err(retry)?;
                    // A server waiting in VERIFY_RESIZE also holds its old flavor's room.
                    if let Some(migration) = s
                        .system_metadata(&run.subject, super::resize::MIGRATION)
                        .await
                        .map_err(retry)?
                    {
                        s.release(&migration).await.map_err(retry)?;
                        // Deleting a resized server confirms its resize, as in Nova.
                        s.set_migration_status(&migration, "confirmed")
                            .await
                            .map_err(retry)?;
                    }
                    // A shelved server's disk lives on as its shelved image only.
                    let shelved = super::shelve::SHELVED_IMAGE;
                    if let Some(image) = s
                        .system_metadata(&run.subject, shelved)
                        .await
                        .map_err(retry)?
                    {
                        s.image.discard(&image).await.map_err(retry)?;
                        s.delete_system_metadata(&run.subject, shelved)
                            .await
                            .map_err(retry)?;
                    }
                    Ok(())
                }
                _ => s.mark_deleted(&run.subject).await.map_err(retry),
            }
        })
    }
    fn undo_step<'a>(
        &'a self,
        _step: usize,
        _run: &'a mut Run,
    ) -> BoxFut<'a, Result<(), StepError>> {
        // A deletion is not taken back: a failed one leaves the server in ERROR, and
        // deleting it again retries from the start.
        Box::pin(async { Ok(()) })
    }
    fn on_done<'a>(&'a self, run: &'a Run) -> BoxFut<'a, ()> {
        Box::pin(async move {
            if let Some(s) = self.0.upgrade() {
                let _ = s.finish_action(&run.subject, "delete", None).await;
            }
        })
    }
    fn on_failed<'a>(&'a self, run: &'a Run, public_error: &'a str) -> BoxFut<'a, ()> {
        Box::pin(async move {
            let Some(s) = self.0.upgrade() else { return };
            let _ = s.record_fault(&run.subject, 500, public_error, "").await;
            let _ = s
                .set_state(&run.subject, Some(task::DELETING), vm::ERROR, None, None)
                .await;
            let _ = s
                .finish_action(&run.subject, "delete", Some(public_error))
                .await;
        })
    }
}

struct PowerAction(Weak<ComputeService>);

fn parse_action(run: &Run) -> Result<Action, StepError> {
    let name = run
        .data
        .get("action")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    Ok(match name {
        "Start" => Action::Start,
        "Stop" => Action::Stop,
        "RebootSoft" => Action::RebootSoft,
        "RebootHard" => Action::RebootHard,
        "Pause" => Action::Pause,
        "Unpause" => Action::Unpause,
        "Suspend" => Action::Suspend,
        "Resume" => Action::Resume,
        other => return Err(fail("Unknown server action.", other)),
    })
}

fn power_op(a: Action) -> Option<PowerOp> {
    Some(match a {
        Action::Start => PowerOp::Start,
        Action::Stop => PowerOp::Stop,
        Action::RebootSoft => PowerOp::RebootSoft,
        Action::RebootHard => PowerOp::RebootHard,
        Action::Pause => PowerOp::Pause,
        Action::Unpause => PowerOp::Unpause,
        Action::Suspend => PowerOp::Suspend,
        Action::Resume => PowerOp::Resume,
        _ => return None,
    })
}

impl Handler for PowerAction {
    fn kind(&self) -> &'static str {
        ACTION
    }
    fn steps(&self) -> &'static [&'static str] {
        &["apply", "record"]
    }
    fn run_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        Box::pin(async move {
            let s = service(&self.0)?;
            let action = parse_action(run)?;
            let inst = load(&s, &run.subject).await?;
            match step {
                0 => {
                    let op = power_op(action)
                        .ok_or_else(|| fail("Unsupported action.", action.name()))?;
                    agent_of(&s, &inst)
                        .await?
                        .power(&inst.uuid, op)
                        .await
                        .map_err(agent_error(action.name()))
                }
                _ => {
                    let from = run
                        .data
                        .get("from_vm_state")
                        .and_then(|v| v.as_str())
                        .unwrap_or(vm::ACTIVE);
                    let (vm_state, power_state) = action.outcome(from);
                    s.set_state(
                        &inst.uuid,
                        Some(action.task_state()),
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
        // A power operation that failed half-way has nothing to give back; the failure hook
        // reads the real power state from the host instead.
        Box::pin(async { Ok(()) })
    }
    fn on_done<'a>(&'a self, run: &'a Run) -> BoxFut<'a, ()> {
        Box::pin(async move {
            if let (Some(s), Ok(a)) = (self.0.upgrade(), parse_action(run)) {
                let _ = s.finish_action(&run.subject, a.name(), None).await;
            }
        })
    }
    fn on_failed<'a>(&'a self, run: &'a Run, public_error: &'a str) -> BoxFut<'a, ()> {
        Box::pin(async move {
            let (Some(s), Ok(a)) = (self.0.upgrade(), parse_action(run)) else {
                return;
            };
            let from = run
                .data
                .get("from_vm_state")
                .and_then(|v| v.as_str())
                .unwrap_or(vm::ACTIVE)
                .to_string();
            // Back to where it was, with the power state the host reports now.
            let observed = match s.instance(&run.subject).await.ok().flatten() {
                Some(inst) => match agent_of(&s, &inst).await {
                    Ok(agent) => agent.power_state(&inst.uuid).await.ok().flatten(),
                    Err(_) => None,
                },
                None => None,
            };
            let _ = s
                .set_state(
                    &run.subject,
                    Some(a.task_state()),
                    crate::states::vm_state_named(&from).unwrap_or(vm::ERROR),
                    None,
                    observed,
                )
                .await;
            let _ = s.record_fault(&run.subject, 500, public_error, "").await;
            let _ = s
                .finish_action(&run.subject, a.name(), Some(public_error))
                .await;
        })
    }
}
