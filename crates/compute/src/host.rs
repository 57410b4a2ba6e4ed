//! How the control plane reaches a compute host: [`HostAgent`], implemented by the compute
//! agent (in this process for `ferrostack up`, over HTTP for a remote host). Every call is
//! idempotent, because a workflow step that crashed half-way runs again: `ensure` with the
//! full [`GuestSpec`] creates or leaves alone, `destroy` of an unknown server is fine.

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
    /// Every server the host has (running or not), to find orphans.
    fn servers<'a>(&'a self) -> BoxFut<'a, Result<Vec<String>, AgentError>>;
}
