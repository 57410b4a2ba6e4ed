//! How the control plane reaches a compute host: [`HostAgent`], implemented by the compute
//! agent (in this process for `ferrostack up`, over HTTP for a remote host). Every call is
//! idempotent, because a workflow step that crashed half-way runs again: `ensure` with the
//! full [`GuestSpec`] creates or leaves alone, `destroy` of an unknown server is fine.
//!
//! The other way, [`ControlPlane`] is what an agent needs from the control plane. Between
//! processes both travel over HTTP (the clients and the agent's side in [`crate::host_http`], the control
//! plane's side in [`crate::http::agents_api`]), authenticated by a shared secret.

use std::pin::Pin;

use serde::{Deserialize, Serialize};

pub type BoxFut<'a, T> = Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Everything a host needs to run a server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GuestSpec {
    pub uuid: String,
    /// `instance-0000002a`.
    pub name: String,
    pub hostname: String,
    pub vcpus: u32,
    pub memory_mb: u64,
    pub root_gb: u64,
    pub image_id: String,
    pub image_disk_format: String,
    /// Files of the config drive (`openstack/latest/meta_data.json` ...), when it has one.
    pub config_drive: Option<Vec<DriveFile>>,
    /// The server's NICs, in order: each a port the host plugs into its integration bridge.
    #[serde(default)]
    pub nics: Vec<GuestNic>,
    /// The server's project, which the metadata proxy sends along as `X-Tenant-ID`.
    #[serde(default)]
    pub project_id: String,
}

/// One NIC of a guest: the Networking service's port, its MAC and MTU, and what the host's
/// metadata proxy needs to answer it: the network, the NIC's addresses (a request's source
/// tells the proxy which server asks) and the network's metadata port.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GuestNic {
    pub port_id: String,
    pub mac: String,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub network_id: String,
    /// The NIC's addresses (without prefix length).
    #[serde(default)]
    pub fixed_ips: Vec<String>,
    #[serde(default)]
    pub metadata_port: Option<crate::network::MetadataPort>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DriveFile {
    pub path: String,
    pub content: String,
}

/// A power operation on a running host's server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PowerOp {
    Start,
    Stop,
    RebootSoft,
    RebootHard,
    Pause,
    Unpause,
    Suspend,
    Resume,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Worth retrying: the host is busy or briefly unreachable.
    #[error("{0}")]
    Transient(String),
    /// Will not get better by retrying.
    #[error("{0}")]
    Failed(String),
    #[error("no server {0} on this host")]
    NotFound(String),
}

/// What a host reports when it (re)registers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostReport {
    pub host: String,
    pub hypervisor_type: String,
    pub hypervisor_version: i64,
    pub accel: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub reserved_host_memory_mb: i64,
    pub disk_gb: i64,
    pub cpu_allocation_ratio: f64,
    pub ram_allocation_ratio: f64,
    pub disk_allocation_ratio: f64,
    pub cpu_info: String,
    pub host_ip: String,
    pub traits: Vec<String>,
}

pub trait HostAgent: Send + Sync + 'static {
    fn ensure<'a>(&'a self, spec: &'a GuestSpec) -> BoxFut<'a, Result<(), AgentError>>;
    fn destroy<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), AgentError>>;
    fn power<'a>(&'a self, uuid: &'a str, op: PowerOp) -> BoxFut<'a, Result<(), AgentError>>;
    /// Nova's power_state code, or `None` when the host has no such server.
    fn power_state<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<Option<i64>, AgentError>>;
    fn console<'a>(
        &'a self,
        uuid: &'a str,
        max_bytes: usize,
    ) -> BoxFut<'a, Result<String, AgentError>>;
    /// Takes a standalone qcow2 of the server's root disk and uploads it as the data of the
    /// queued image `image_id` (as Nova's compute uploads a snapshot to Glance). An image
    /// already active is left alone, so a step running again after a crash does no harm.
    fn snapshot<'a>(
        &'a self,
        uuid: &'a str,
        image_id: &'a str,
    ) -> BoxFut<'a, Result<(), AgentError>>;
    /// Gives the server the size `spec` describes (vCPUs, memory, a root disk grown to its
    /// size): stops it, keeps its disk and description for a revert, and starts it again
    /// when `start`. Running it again keeps the first kept copy, so a retry after a crash
    /// never keeps a half-resized disk as the original.
    fn resize<'a>(&'a self, spec: &'a GuestSpec, start: bool)
        -> BoxFut<'a, Result<(), AgentError>>;
    /// Forgets what `resize` kept (the resize is confirmed); fine when nothing is kept.
    fn confirm_resize<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), AgentError>>;
    /// Stops the server, puts back the disk and description `resize` kept, and starts it
    /// again when `start`; fine when nothing is kept (reverted already).
    fn revert_resize<'a>(
        &'a self,
        uuid: &'a str,
        start: bool,
    ) -> BoxFut<'a, Result<(), AgentError>>;
    /// Restarts the server from `rescue` (a spec naming the rescue image, whose config drive
    /// carries the rescue password), with the server's own disk attached as the second
    /// disk. Running it again on a rescued server leaves it so.
    fn rescue<'a>(&'a self, rescue: &'a GuestSpec) -> BoxFut<'a, Result<(), AgentError>>;
    /// Restarts a rescued server from its own disk and drops the rescue disk; fine when the
    /// server is not rescued.
    fn unrescue<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), AgentError>>;
    /// Adds the NIC of `port_id` to the server: `spec` is the server with that NIC among its
    /// NICs (the host's metadata proxy learns its network). A running or paused server gets
    /// it hot-plugged, a stopped one at its next start; a restart keeps it. Running it
    /// again on a server that has the NIC leaves it alone.
    fn attach_nic<'a>(
        &'a self,
        spec: &'a GuestSpec,
        port_id: &'a str,
    ) -> BoxFut<'a, Result<(), AgentError>>;
    /// Takes the NIC of `port_id` off the server (hot-unplugged from a running one) and
    /// unplugs its tap; `spec` is the server without it. Fine when the server has no such
    /// NIC.
    fn detach_nic<'a>(
        &'a self,
        spec: &'a GuestSpec,
        port_id: &'a str,
    ) -> BoxFut<'a, Result<(), AgentError>>;
    /// Every server the host has (running or not), to find orphans.
    fn servers<'a>(&'a self) -> BoxFut<'a, Result<Vec<String>, AgentError>>;
    /// A byte stream to the running server's serial console (the guest's first serial
    /// port); `NotFound` for an unknown server, `Failed` for one that does not run.
    fn serial_console<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<SerialStream, AgentError>> {
        let _ = uuid;
        Box::pin(async {
            Err(AgentError::Failed(
                "this host has no serial consoles".into(),
            ))
        })
    }
}

/// Both directions of a serial console.
pub trait SerialIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> SerialIo for T {}
pub type SerialStream = Box<dyn SerialIo>;

/// What an agent needs from the control plane: the Compute service itself for the agent
/// inside `ferrostack up`, its HTTP API for a remote `ferrostack compute-agent`. Every call
/// is idempotent.
pub trait ControlPlane: Send + Sync + 'static {
    /// Records the host, its compute service and its resource provider; `agent_url` is where
    /// the control plane reaches a remote agent (`None` for one in the same process).
    fn register<'a>(
        &'a self,
        report: &'a HostReport,
        agent_url: Option<&'a str>,
    ) -> BoxFut<'a, Result<(), AgentError>>;
    fn heartbeat<'a>(&'a self, host: &'a str) -> BoxFut<'a, Result<(), AgentError>>;
    /// The servers the control plane has on `host`.
    fn servers_on_host<'a>(&'a self, host: &'a str) -> BoxFut<'a, Result<Vec<String>, AgentError>>;
    /// Reports a power state the host saw (a VM that stopped by itself).
    fn observe_power_state<'a>(
        &'a self,
        uuid: &'a str,
        power_state: i64,
    ) -> BoxFut<'a, Result<(), AgentError>>;
    /// Whether a workflow still runs for the server (its VM may be in the making).
    fn busy<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<bool, AgentError>>;
    /// Puts the image's data at `dest` (a new file the caller renames into place).
    fn fetch_image<'a>(
        &'a self,
        image_id: &'a str,
        dest: &'a std::path::Path,
    ) -> BoxFut<'a, Result<(), AgentError>>;
    /// Uploads `file` as the data of the queued image `image_id`; an image already active
    /// is left alone.
    fn upload_image<'a>(
        &'a self,
        image_id: &'a str,
        file: &'a std::path::Path,
    ) -> BoxFut<'a, Result<(), AgentError>>;
    /// False once the control plane is gone (an agent in a process whose service was
    /// dropped, as in tests): the agent's periodic tasks then end.
    fn alive(&self) -> bool {
        true
    }
}

/// One call of the control plane on a remote agent, as the agent's HTTP API takes it
/// (`POST /v1/host`, one JSON object tagged by `op`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum HostCall {
    Ensure { spec: GuestSpec },
    Destroy { uuid: String },
    Power { uuid: String, action: PowerOp },
    PowerState { uuid: String },
    Console { uuid: String, max_bytes: usize },
    Snapshot { uuid: String, image_id: String },
    Resize { spec: GuestSpec, start: bool },
    ConfirmResize { uuid: String },
    RevertResize { uuid: String, start: bool },
    Rescue { spec: GuestSpec },
    Unrescue { uuid: String },
    AttachNic { spec: GuestSpec, port_id: String },
    DetachNic { spec: GuestSpec, port_id: String },
    Servers,
}

impl HostCall {
    /// Carries the call out on `agent`; the answer is the call's result as JSON.
    pub async fn run(self, agent: &dyn HostAgent) -> Result<serde_json::Value, AgentError> {
        use serde_json::{json, Value};
        let unit = |r: Result<(), AgentError>| r.map(|()| Value::Null);
        match self {
            HostCall::Ensure { spec } => unit(agent.ensure(&spec).await),
            HostCall::Destroy { uuid } => unit(agent.destroy(&uuid).await),
            HostCall::Power { uuid, action } => unit(agent.power(&uuid, action).await),
            HostCall::PowerState { uuid } => Ok(json!(agent.power_state(&uuid).await?)),
            HostCall::Console { uuid, max_bytes } => {
                Ok(json!(agent.console(&uuid, max_bytes).await?))
            }
            HostCall::Snapshot { uuid, image_id } => unit(agent.snapshot(&uuid, &image_id).await),
            HostCall::Resize { spec, start } => unit(agent.resize(&spec, start).await),
            HostCall::ConfirmResize { uuid } => unit(agent.confirm_resize(&uuid).await),
            HostCall::RevertResize { uuid, start } => unit(agent.revert_resize(&uuid, start).await),
            HostCall::Rescue { spec } => unit(agent.rescue(&spec).await),
            HostCall::Unrescue { uuid } => unit(agent.unrescue(&uuid).await),
            HostCall::AttachNic { spec, port_id } => unit(agent.attach_nic(&spec, &port_id).await),
            HostCall::DetachNic { spec, port_id } => unit(agent.detach_nic(&spec, &port_id).await),
            HostCall::Servers => Ok(json!(agent.servers().await?)),
        }
    }
}

/// An [`AgentError`] on the wire: the HTTP status says which kind, the body says what.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireError {
    pub kind: String,
    pub message: String,
}

impl AgentError {
    pub fn to_wire(&self) -> (u16, WireError) {
        let (status, kind, message) = match self {
            AgentError::Transient(m) => (503, "transient", m.clone()),
            AgentError::Failed(m) => (500, "failed", m.clone()),
            AgentError::NotFound(m) => (404, "not_found", m.clone()),
        };
        (
            status,
            WireError {
                kind: kind.into(),
                message,
            },
        )
    }

    pub fn from_wire(status: u16, body: &[u8]) -> AgentError {
        match serde_json::from_slice::<WireError>(body) {
            Ok(w) => match w.kind.as_str() {
                "not_found" => AgentError::NotFound(w.message),
                "failed" => AgentError::Failed(w.message),
                _ => AgentError::Transient(w.message),
            },
            // Not an agent's answer (a proxy, a restart in progress): worth another try,
            // except a refused secret, which will not get better.
            Err(_) if status == 401 || status == 403 => {
                AgentError::Failed(format!("the peer refused the shared secret ({status})"))
            }
            Err(_) => AgentError::Transient(format!(
                "unexpected answer {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )),
        }
    }
}

/// Compares a presented secret with the configured one in constant time.
pub fn secret_matches(presented: &str, configured: &str) -> bool {
    use subtle::ConstantTimeEq;
    !configured.is_empty() && presented.as_bytes().ct_eq(configured.as_bytes()).into()
}

/// The secret a request presents, from `Authorization: Bearer <secret>`.
pub fn presented_secret(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}
