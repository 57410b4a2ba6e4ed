//! Nova's interface attachments (`os-interface`): a server's ports as attachments, and
//! attaching or detaching one while the server runs (or is paused or stopped).
//!
//! Both are workflows, so a crash at any point leaves no orphan: attaching makes (or binds)
//! the port on the server's host, has the host hot-plug it, and refreshes the server's
//! network info cache; a failure unplugs it and gives back the port it made (a user's own
//! port is unbound, never deleted). Detaching unplugs the NIC, deletes the port when
//! Compute made it (unbinds the user's), and refreshes the cache. As in Nova the API
//! answers an attachment once it is done (the call waits for its workflow), a detachment at
//! once (202).

use std::sync::{Arc, Weak};
use std::time::Duration;

use ferrostack_common::AuthContext;
use ferrostack_workflow::{BoxFut, Handler, Run, StepError};
use serde_json::{json, Value};

use super::networking::{merge_network_info, step_error};
use super::workflows::{agent_error, agent_of, fail, guest_spec, load, retry, service};
use super::ComputeService;
use crate::error::{ComputeError, Result};
use crate::model::Instance;
use crate::network::{NetError, NicRequest, Vif};
use crate::states::{vm, Action};

pub const ATTACH: &str = "server_attach_interface";
pub const DETACH: &str = "server_detach_interface";

/// How long `POST os-interface` waits for its workflow (Nova's RPC call timeout is 60 s; a
/// hot-plug into a busy guest may take longer).
const ATTACH_WAIT: Duration = Duration::from_secs(300);

/// A refusal of the Networking service as the attach API answers it.
fn api_error(e: NetError) -> ComputeError {
    match e {
        NetError::NotFound(m) => ComputeError::not_found(m),
        NetError::Bad(m) => ComputeError::bad(m),
        NetError::Conflict(m) => ComputeError::conflict(m),
        NetError::Transient(m) => ComputeError::internal(m),
    }
}

/// The HTTP status a refusal of the Networking service stands for, kept in the run's data
/// for the API that waits for it.
fn net_status(e: &NetError) -> u16 {
    match e {
        NetError::NotFound(_) => 404,
        NetError::Bad(_) => 400,
        NetError::Conflict(_) => 409,
        NetError::Transient(_) => 500,
    }
}

/// The server as its host should see it with `network_info` as its NICs.
fn with_nics(inst: &Instance, network_info: Vec<Vif>) -> crate::host::GuestSpec {
    let mut inst = inst.clone();
    inst.network_info = network_info;
    // The host uses the NICs (and the project, for the metadata proxy) only.
    guest_spec(&inst, "qcow2", None)
}

fn string(run: &Run, key: &str) -> Option<String> {
    run.data
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn known_ports(run: &Run) -> Vec<String> {
    run.data
        .get("known")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl ComputeService {
    /// The server's ports (the caller may read the server), with the tags Compute keeps.
    pub async fn list_interfaces(&self, ctx: &AuthContext, uuid: &str) -> Result<Vec<Vif>> {
        let inst = self
            .get_server(ctx, uuid, "os_compute_api:os-attach-interfaces:list")
            .await?;
        self.current_vifs(&inst).await
    }

    async fn current_vifs(&self, inst: &Instance) -> Result<Vec<Vif>> {
        match self.networking() {
            Some(n) => {
                let fresh = n.vifs(&inst.uuid).await.map_err(api_error)?;
                Ok(merge_network_info(&inst.network_info, fresh))
            }
            None => Ok(inst.network_info.clone()),
        }
    }

    pub async fn show_interface(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        port_id: &str,
    ) -> Result<Vif> {
        let inst = self
            .get_server(ctx, uuid, "os_compute_api:os-attach-interfaces:show")
            .await?;
        self.current_vifs(&inst)
            .await?
            .into_iter()
            .find(|v| v.port_id == port_id)
            .ok_or_else(|| {
                ComputeError::not_found(format!(
                    "Instance {uuid} does not have a port with id {port_id}"
                ))
            })
    }

    /// Attaches a NIC (`nic`: a network, optionally with a fixed IP, or the user's port)
    /// and answers it once the server has it.
    pub async fn attach_interface(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        nic: NicRequest,
        request_id: &str,
    ) -> Result<Vif> {
        let inst = self
            .get_server(ctx, uuid, "os_compute_api:os-attach-interfaces:create")
            .await?;
        self.check_lock(ctx, &inst)?;
        self.check_state(&inst, Action::AttachInterface)?;
        let Some(networking) = self.networking() else {
            return Err(ComputeError::bad(
                "Failed to attach network adapter device: this cloud runs without a Networking service.",
            ));
        };
        if inst.host.is_none() {
            return Err(ComputeError::conflict(format!(
                "Cannot 'attach_interface' instance {uuid}: it has no host"
            )));
        }
        // What Nova's Neutron client checks before it makes anything: the network or port
        // exists for the project, the port is free.
        let request = crate::network::NetworkRequest::Nics(vec![nic.clone()]);
        networking
            .check_request(&inst.project_id, &request, &[])
            .await
            .map_err(api_error)?;
        let known: Vec<&str> = inst
            .network_info
            .iter()
            .map(|v| v.port_id.as_str())
            .collect();
        let data = json!({"nic": nic, "known": known, "from_vm_state": inst.vm_state});
        let mut tx = self.db.begin_write().await?;
        let run = self
            .begin_task(
                &mut tx,
                ctx,
                &inst,
                Action::AttachInterface,
                ATTACH,
                data,
                request_id,
            )
            .await?;
        tx.commit().await?;
        self.engine.kick(&run);
        let rec = self
            .engine
            .wait(&run, ATTACH_WAIT)
            .await
            .map_err(ComputeError::internal)?;
        if rec.succeeded() {
            let vif: Vif =
                serde_json::from_value(rec.data["vif"].clone()).map_err(ComputeError::internal)?;
            // The port as it is now (its status changed when the data plane bound it).
            return Ok(self
                .current_vifs(&self.instance(uuid).await?.unwrap_or(inst))
                .await?
                .into_iter()
                .find(|v| v.port_id == vif.port_id)
                .unwrap_or(vif));
        }
        let message = rec
            .error
            .unwrap_or_else(|| format!("Failed to attach network adapter device to {uuid}"));
        let status = rec
            .data
            .get("status")
            .and_then(Value::as_u64)
            .unwrap_or(500);
        Err(match status {
            404 => ComputeError::not_found(message),
            400 => ComputeError::bad(message),
            409 => ComputeError::conflict(message),
            _ => ComputeError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, message),
        })
    }

    /// Starts detaching the NIC of `port_id` (202: the workflow goes on alone).
    pub async fn detach_interface(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        port_id: &str,
        request_id: &str,
    ) -> Result<()> {
        let inst = self
            .get_server(ctx, uuid, "os_compute_api:os-attach-interfaces:delete")
            .await?;
        self.check_lock(ctx, &inst)?;
        self.check_state(&inst, Action::DetachInterface)?;
        let Some(vif) = inst.network_info.iter().find(|v| v.port_id == port_id) else {
            return Err(ComputeError::not_found(format!(
                "Port {port_id} is not attached"
            )));
        };
        let data = json!({
            "port_id": port_id,
            "preserve": vif.preserve_on_delete,
            "from_vm_state": inst.vm_state,
        });
        let mut tx = self.db.begin_write().await?;
        let run = self
            .begin_task(
                &mut tx,
                ctx,
                &inst,
                Action::DetachInterface,
                DETACH,
                data,
                request_id,
            )
            .await?;
        tx.commit().await?;
        self.engine.kick(&run);
        Ok(())
    }

    /// The last step of both: the cache from the Networking service (keeping what only
    /// Compute knows), and the task over.
    async fn finish_interfaces(
        &self,
        inst: &Instance,
        action: Action,
        cached: Vec<Vif>,
        run: &Run,
    ) -> Result<(), StepError> {
        let networking = self
            .networking()
            .ok_or_else(|| fail("This cloud runs without a Networking service.", "none"))?;
        let fresh = networking.vifs(&inst.uuid).await.map_err(step_error)?;
        let vifs = merge_network_info(&cached, fresh);
        self.set_network_info(&inst.uuid, &vifs)
            .await
            .map_err(retry)?;
        let from = string(run, "from_vm_state").unwrap_or_else(|| inst.vm_state.clone());
        self.set_state(
            &inst.uuid,
            Some(action.task_state()),
            crate::states::vm_state_named(&from).unwrap_or(vm::ACTIVE),
            None,
            None,
        )
        .await
        .map_err(retry)?;
        Ok(())
    }

    /// After a failed attachment or detachment: the cache as the Networking service has it,
    /// and the server back to its state with no task.
    async fn interfaces_failed(&self, run: &Run, action: Action, public_error: &str) {
        if let Ok(Some(inst)) = self.instance(&run.subject).await {
            if let Some(n) = self.networking() {
                if let Ok(fresh) = n.vifs(&inst.uuid).await {
                    let vifs = merge_network_info(&inst.network_info, fresh);
                    let _ = self.set_network_info(&inst.uuid, &vifs).await;
                }
            }
            let from = string(run, "from_vm_state").unwrap_or_else(|| inst.vm_state.clone());
            let _ = self
                .set_state(
                    &run.subject,
                    Some(action.task_state()),
                    crate::states::vm_state_named(&from).unwrap_or(vm::ERROR),
                    None,
                    None,
                )
                .await;
        }
        let _ = self
            .finish_action(&run.subject, action.name(), Some(public_error))
            .await;
    }
}

pub fn register(service: &Arc<ComputeService>) {
    use super::workflow_events::recorded;
    let weak = Arc::downgrade(service);
    service
        .engine
        .register(recorded(service, Attach(weak.clone())));
    service.engine.register(recorded(service, Detach(weak)));
}

struct Attach(Weak<ComputeService>);

impl Attach {
    /// The port the attachment made or bound: recorded by its first step, or (after a crash
    /// inside that step) the user's port it names, or a port Compute made for the server
    /// on the network that it did not have before.
    async fn port(s: &ComputeService, run: &Run) -> Result<Option<(String, bool)>, StepError> {
        if let Some(p) = string(run, "port_id") {
            let preserve = run.data["vif"]["preserve_on_delete"]
                .as_bool()
                .unwrap_or(false);
            return Ok(Some((p, preserve)));
        }
        let nic: NicRequest = serde_json::from_value(run.data["nic"].clone())
            .map_err(|e| fail("The attachment request is unreadable.", e))?;
        if let Some(p) = nic.port_id {
            return Ok(Some((p, true)));
        }
        let Some(networking) = s.networking() else {
            return Ok(None);
        };
        let known = known_ports(run);
        let made = networking
            .vifs(&run.subject)
            .await
            .map_err(step_error)?
            .into_iter()
            .find(|v| {
                !known.contains(&v.port_id)
                    && Some(&v.network_id) == nic.network_id.as_ref()
                    && !v.preserve_on_delete
            });
        Ok(made.map(|v| (v.port_id, false)))
    }
}

impl Handler for Attach {
    fn kind(&self) -> &'static str {
        ATTACH
    }
    fn steps(&self) -> &'static [&'static str] {
        &["allocate", "plug", "refresh"]
    }
    fn run_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        Box::pin(async move {
            let s = service(&self.0)?;
            let inst = load(&s, &run.subject).await?;
            match step {
                0 => {
                    let networking = s.networking().ok_or_else(|| {
                        fail("This cloud runs without a Networking service.", "none")
                    })?;
                    let nic: NicRequest = serde_json::from_value(run.data["nic"].clone())
                        .map_err(|e| fail("The attachment request is unreadable.", e))?;
                    let host = inst
                        .host
                        .clone()
                        .ok_or_else(|| fail("The server has no host.", &inst.uuid))?;
                    let known = known_ports(run);
                    match networking
                        .attach_port(&inst.project_id, &inst.uuid, &host, &nic, &known)
                        .await
                    {
                        Ok(vif) => {
                            run.data["port_id"] = json!(vif.port_id);
                            run.data["vif"] = json!(vif);
                            Ok(())
                        }
                        Err(e) => {
                            run.data["status"] = json!(net_status(&e));
                            Err(match e {
                                NetError::Transient(m) => retry(m),
                                other => fail(other.to_string(), &other),
                            })
                        }
                    }
                }
                1 => {
                    let vif: Vif = serde_json::from_value(run.data["vif"].clone())
                        .map_err(|e| fail("The new port is unknown.", e))?;
                    let mut nics = inst.network_info.clone();
                    nics.retain(|v| v.port_id != vif.port_id);
                    nics.push(vif.clone());
                    let spec = with_nics(&inst, nics);
                    agent_of(&s, &inst)
                        .await?
                        .attach_nic(&spec, &vif.port_id)
                        .await
                        .map_err(agent_error("attach a network adapter to"))
                }
                _ => {
                    let vif: Vif = serde_json::from_value(run.data["vif"].clone())
                        .map_err(|e| fail("The new port is unknown.", e))?;
                    let mut cached = inst.network_info.clone();
                    cached.retain(|v| v.port_id != vif.port_id);
                    cached.push(vif);
                    s.finish_interfaces(&inst, Action::AttachInterface, cached, run)
                        .await
                }
            }
        })
    }
    fn undo_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        Box::pin(async move {
            let s = service(&self.0)?;
            match step {
                0 => {
                    let (Some(networking), Some((port, preserve))) =
                        (s.networking(), Attach::port(&s, run).await?)
                    else {
                        return Ok(());
                    };
                    networking
                        .detach_port(&run.subject, &port, preserve)
                        .await
                        .map_err(step_error)
                }
                1 => {
                    let Some(port) = string(run, "port_id") else {
                        return Ok(());
                    };
                    let inst = load(&s, &run.subject).await?;
                    let mut nics = inst.network_info.clone();
                    nics.retain(|v| v.port_id != port);
                    let spec = with_nics(&inst, nics);
                    match agent_of(&s, &inst).await?.detach_nic(&spec, &port).await {
                        Err(crate::host::AgentError::NotFound(_)) => Ok(()),
                        r => r.map_err(agent_error("detach a network adapter from")),
                    }
                }
                _ => Ok(()),
            }
        })
    }
    fn on_done<'a>(&'a self, run: &'a Run) -> BoxFut<'a, ()> {
        Box::pin(async move {
            if let Some(s) = self.0.upgrade() {
                let _ = s
                    .finish_action(&run.subject, Action::AttachInterface.name(), None)
                    .await;
            }
        })
    }
    fn on_failed<'a>(&'a self, run: &'a Run, public_error: &'a str) -> BoxFut<'a, ()> {
        Box::pin(async move {
            if let Some(s) = self.0.upgrade() {
                s.interfaces_failed(run, Action::AttachInterface, public_error)
                    .await;
            }
        })
    }
}

struct Detach(Weak<ComputeService>);

impl Handler for Detach {
    fn kind(&self) -> &'static str {
        DETACH
    }
    fn steps(&self) -> &'static [&'static str] {
        &["unplug", "release", "refresh"]
    }
    fn run_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        Box::pin(async move {
            let s = service(&self.0)?;
            let inst = load(&s, &run.subject).await?;
            let port = string(run, "port_id")
                .ok_or_else(|| fail("The port to detach is unknown.", "no port_id"))?;
            let mut rest = inst.network_info.clone();
            rest.retain(|v| v.port_id != port);
            match step {
                0 => {
                    let spec = with_nics(&inst, rest);
                    agent_of(&s, &inst)
                        .await?
                        .detach_nic(&spec, &port)
                        .await
                        .map_err(agent_error("detach a network adapter from"))
                }
                1 => {
                    let Some(networking) = s.networking() else {
                        return Ok(());
                    };
                    let preserve = run.data["preserve"].as_bool().unwrap_or(false);
                    networking
                        .detach_port(&inst.uuid, &port, preserve)
                        .await
                        .map_err(step_error)
                }
                _ => {
                    s.finish_interfaces(&inst, Action::DetachInterface, rest, run)
                        .await
                }
            }
        })
    }
    fn undo_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        Box::pin(async move {
            // A NIC the guest would not let go stays the server's: plugged back where the
            // host has it half-removed.
            if step == 0 {
                let s = service(&self.0)?;
                let inst = load(&s, &run.subject).await?;
                let Some(port) = string(run, "port_id") else {
                    return Ok(());
                };
                if !inst.network_info.iter().any(|v| v.port_id == port) {
                    return Ok(());
                }
                let spec = with_nics(&inst, inst.network_info.clone());
                agent_of(&s, &inst)
                    .await?
                    .attach_nic(&spec, &port)
                    .await
                    .map_err(agent_error("attach a network adapter to"))?;
            }
            Ok(())
        })
    }
    fn on_done<'a>(&'a self, run: &'a Run) -> BoxFut<'a, ()> {
        Box::pin(async move {
            if let Some(s) = self.0.upgrade() {
                let _ = s
                    .finish_action(&run.subject, Action::DetachInterface.name(), None)
                    .await;
            }
        })
    }
    fn on_failed<'a>(&'a self, run: &'a Run, public_error: &'a str) -> BoxFut<'a, ()> {
        Box::pin(async move {
            if let Some(s) = self.0.upgrade() {
                s.interfaces_failed(run, Action::DetachInterface, public_error)
                    .await;
            }
        })
    }
}
