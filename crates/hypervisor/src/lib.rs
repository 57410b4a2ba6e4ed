//! Hypervisor drivers: what the compute agent asks of a host's virtualisation, behind the
//! [`Hypervisor`] trait. [`fake::FakeDriver`] keeps VMs as records in memory (workflow and
//! scale tests, hundreds of servers on two cores); the QEMU driver runs real VMs as QEMU
//! processes controlled over QMP (no libvirt).
//!
//! Every call is idempotent where the workflows need it to be (`create` of a VM that exists,
//! `destroy` of one that does not), because a workflow step interrupted by a crash runs again.
//! Which power operation is allowed from which state, and where it leads, is one table
//! ([`rules`]) that every driver follows.

pub mod fake;
pub mod qemu;
pub mod qmp;
pub mod rules;

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub type BoxFut<'a, T> = Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Nova's power states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PowerState {
    NoState,
    Running,
    Paused,
    Shutdown,
    Crashed,
    Suspended,
}

impl PowerState {
    /// The code the Compute API shows (`OS-EXT-STS:power_state`).
    pub fn code(self) -> i64 {
        match self {
            PowerState::NoState => 0,
            PowerState::Running => 1,
            PowerState::Paused => 3,
            PowerState::Shutdown => 4,
            PowerState::Crashed => 6,
            PowerState::Suspended => 7,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VmSpec {
    pub uuid: String,
    pub name: String,
    pub vcpus: u32,
    pub memory_mb: u64,
    pub root_disk: DiskSpec,
    pub config_drive: Option<PathBuf>,
    pub nics: Vec<NicSpec>,
    pub iothreads: u32,
    pub boot: BootSource,
    /// Set while the VM is rescued: it boots from this disk, with its own root disk second.
    #[serde(default)]
    pub rescue: Option<RescueSpec>,
}

/// A rescue system: a disk over the rescue image and its own config drive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RescueSpec {
    pub disk: DiskSpec,
    pub config_drive: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DiskSpec {
    pub base_image: PathBuf,
    /// `qcow2` or `raw`.
    pub base_format: String,
    /// 0: the image's virtual size.
    pub size_gb: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum BootSource {
    Disk,
    Kernel {
        kernel: PathBuf,
        initrd: Option<PathBuf>,
        cmdline: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NicSpec {
    pub port_id: String,
    pub mac: String,
    pub backend: NicBackend,
    /// The network's MTU, told to the guest (virtio-net's `host_mtu`) and set on the tap.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// The spare root port (`0` or `1`, QEMU's `hotplug0`/`hotplug1`) a NIC plugged into a
    /// running VM sits on: it stays there across restarts, so that the device layout a
    /// saved memory expects is the one QEMU starts with. `None` for NICs of the boot (and
    /// for one added to a stopped VM), which sit on the root bus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotplug_slot: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum NicBackend {
    /// A tap device on an OVS bridge, `external_ids:iface-id=<port_id>` (networking service).
    Tap { bridge: String },
    /// QEMU user-mode networking with `restrict=on`, optionally forwarding a loopback port
    /// to the guest's SSH.
    User { ssh_forward_port: Option<u16> },
}

/// Refuses what no driver can run, before anything of the VM is made.
pub fn check_spec(spec: &VmSpec) -> Result<(), HvError> {
    spec.nics.iter().try_for_each(check_nic)
}

/// See [`check_spec`]: a NIC needs a port id (its tap is named after it) and a MAC.
pub fn check_nic(nic: &NicSpec) -> Result<(), HvError> {
    let hex = |p: &str| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit());
    let mac_ok = nic.mac.split(':').count() == 6 && nic.mac.split(':').all(hex);
    if nic.port_id.is_empty() || !mac_ok {
        return Err(HvError::Unsupported(format!(
            "NIC with port {:?} and MAC {:?}: a port id and a MAC address are needed",
            nic.port_id, nic.mac
        )));
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct HypervisorInfo {
    /// `QEMU` or `fake`.
    pub hypervisor_type: String,
    /// `kvm`, `tcg` or `fake`.
    pub accel: String,
    /// Nova's encoding: 10.0.2 is 10000002.
    pub version: u64,
    pub hostname: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostResources {
    pub vcpus: u32,
    pub memory_mb: u64,
    pub disk_gb: u64,
    pub cpu_model: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VmStatus {
    pub power_state: PowerState,
    pub pid: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum HvError {
    #[error("no such VM {0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("{0}")]
    Failed(String),
}

pub trait Hypervisor: Send + Sync + 'static {
    fn info(&self) -> HypervisorInfo;
    fn host_resources(&self) -> HostResources;
    /// Creates the VM's files and makes sure it runs: one that runs is left alone, a stopped
    /// one is started, a paused one continued, a suspended one resumed. A spec the driver
    /// cannot run is refused (`Unsupported`) before any file is made.
    fn create<'a>(&'a self, spec: &'a VmSpec) -> BoxFut<'a, Result<(), HvError>>;
    /// Stops the VM hard and deletes its files; fine when unknown.
    fn destroy<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>>;
    /// Starts a stopped VM; refused for a paused or suspended one.
    fn power_on<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>>;
    /// ACPI power button, then a hard stop after `timeout`; fine when already off. Returns
    /// once the VM's process has ended.
    fn power_off<'a>(&'a self, uuid: &'a str, timeout: Duration)
        -> BoxFut<'a, Result<(), HvError>>;
    fn reboot<'a>(&'a self, uuid: &'a str, hard: bool) -> BoxFut<'a, Result<(), HvError>>;
    fn pause<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>>;
    fn unpause<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>>;
    /// Saves the guest's memory to a file and ends the process.
    fn suspend<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>>;
    fn resume<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>>;
    fn status<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<Option<VmStatus>, HvError>>;
    /// Every VM this host has files for, running or not.
    fn list<'a>(&'a self) -> BoxFut<'a, Result<Vec<String>, HvError>>;
    /// The last `max_bytes` of the serial console.
    fn console_log<'a>(
        &'a self,
        uuid: &'a str,
        max_bytes: usize,
    ) -> BoxFut<'a, Result<String, HvError>>;
    /// Gives a stopped VM the size `spec` describes: keeps its disk and description for a
    /// revert (the first time only: a repeated call keeps the original), grows the root disk
    /// to `spec.root_disk.size_gb` and records `spec`'s vCPUs and memory for the next start.
    fn resize<'a>(&'a self, spec: &'a VmSpec) -> BoxFut<'a, Result<(), HvError>> {
        let _ = spec;
        Box::pin(async { Err(HvError::Unsupported("resize".into())) })
    }
    /// Forgets what `resize` kept; fine when nothing is kept.
    fn confirm_resize<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        let _ = uuid;
        Box::pin(async { Err(HvError::Unsupported("resize".into())) })
    }
    /// Puts back the disk and description `resize` kept on a stopped VM; fine when
    /// nothing is kept.
    fn revert_resize<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        let _ = uuid;
        Box::pin(async { Err(HvError::Unsupported("resize".into())) })
    }
    /// Restarts the VM (hard) from a new disk over `disk`'s base, with its own root disk
    /// as the second disk and `config_drive` in place of its own; a rescued VM is left so.
    fn rescue<'a>(
        &'a self,
        uuid: &'a str,
        disk: &'a DiskSpec,
        config_drive: Option<&'a Path>,
    ) -> BoxFut<'a, Result<(), HvError>> {
        let _ = (uuid, disk, config_drive);
        Box::pin(async { Err(HvError::Unsupported("rescue".into())) })
    }
    /// Restarts a rescued VM from its own disk and deletes the rescue disk; a VM that is
    /// not rescued is only made sure to run.
    fn unrescue<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        let _ = uuid;
        Box::pin(async { Err(HvError::Unsupported("rescue".into())) })
    }
    /// The Unix socket of the running VM's serial console: a client that connects talks to
    /// the guest's first serial port (what it writes is also in the console log).
    fn serial_socket<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<PathBuf, HvError>> {
        let _ = uuid;
        Box::pin(async { Err(HvError::Unsupported("serial console".into())) })
    }
    /// Adds a NIC to the VM: hot-plugged into a running or paused one (on a free spare root
    /// port), recorded for the next start of a stopped one; the VM's description keeps it
    /// either way, so a restart has it too. A VM that has a NIC with the same port already
    /// is left alone.
    fn attach_nic<'a>(
        &'a self,
        uuid: &'a str,
        nic: &'a NicSpec,
    ) -> BoxFut<'a, Result<(), HvError>> {
        let _ = (uuid, nic);
        Box::pin(async { Err(HvError::Unsupported("NIC hot-plug".into())) })
    }
    /// Takes the NIC of `port_id` off the VM (hot-unplugged from a running one, waiting
    /// until the guest let it go) and out of its description; fine when it has no such NIC.
    fn detach_nic<'a>(
        &'a self,
        uuid: &'a str,
        port_id: &'a str,
    ) -> BoxFut<'a, Result<(), HvError>> {
        let _ = (uuid, port_id);
        Box::pin(async { Err(HvError::Unsupported("NIC hot-unplug".into())) })
    }
    /// A standalone qcow2 of the root disk (no backing file) at `dest`.
    fn snapshot<'a>(&'a self, uuid: &'a str, dest: &'a Path) -> BoxFut<'a, Result<(), HvError>>;
}
