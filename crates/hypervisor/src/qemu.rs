//! The QEMU driver: each VM is a `qemu-system-x86_64` process, started daemonized so it
//! outlives the agent (a restarted agent re-adopts it by its recorded pid), and controlled
//! over its QMP socket. Its files live in `<instances_dir>/<uuid>/`: `disk.qcow2` (an
//! overlay on the cached base image), `console.log` (the serial port, appended across power
//! cycles), `qmp.sock`, `qemu.pid` (QEMU's) and `process.pid` (the driver's, see
//! [`process`]), `spec.json` (what to start it with again) and, while suspended,
//! `memory.state` (the guest's RAM, saved by migrating to a file; see [`state`]).
//!
//! Every power operation takes the VM's lock, finishes what an interrupted operation left
//! (a crash mid-suspend, say), reads the power state, and asks the shared rules table
//! ([`crate::rules`]) what to do; the fake driver follows the same table.
//!
//! The accelerator is KVM where `/dev/kvm` works, and TCG otherwise: on hosts whose KVM is
//! `kvm_pvm` (nested, no VMX/SVM) stock kernels cannot boot, so it counts as absent.

mod disk;
mod hotplug;
mod process;
mod reshape;
mod state;
pub mod tap;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::rules::{self, Action, Op};
use crate::{
    qmp, BootSource, BoxFut, DiskSpec, HostResources, HvError, Hypervisor, HypervisorInfo, NicSpec,
    VmSpec, VmStatus,
};
use state::{Repair, Seen, SAVED, SAVING};

pub use disk::direct_io_works;
pub use hotplug::pci_has;
pub use process::resident_kib;

#[derive(Debug, Clone, Default)]
pub struct QemuConfig {
    pub instances_dir: PathBuf,
    /// Default: `qemu-system-x86_64` on the PATH.
    pub qemu_binary: Option<PathBuf>,
    /// `kvm` or `tcg`; default: chosen from what the host can do.
    pub accel: Option<String>,
    /// Open vSwitch, for NICs on tap devices; without it such NICs are refused.
    pub ovs: Option<tap::OvsConfig>,
}

/// How this host runs every VM, decided once when the driver starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSetup {
    /// `kvm` or `tcg`.
    pub accel: String,
    /// The root disk's `cache=`: `none` where the instances directory does O_DIRECT,
    /// else `writeback`.
    pub disk_cache: String,
}

pub struct QemuDriver {
    dir: PathBuf,
    binary: PathBuf,
    host: HostSetup,
    version: u64,
    start_timeout: Duration,
    ovs: Option<tap::OvsConfig>,
    /// Serializes operations per VM (a reboot and a pause must not interleave).
    locks:
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

/// The serial console's socket in the VM's directory (a name no longer than `qmp.sock`:
/// socket paths must fit in 108 bytes).
const SERIAL_SOCKET: &str = "tty.sock";
const QMP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long QEMU may take to start and answer QMP before it is killed.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a soft reboot waits for the guest to shut down before it is stopped hard.
const REBOOT_SHUTDOWN: Duration = Duration::from_secs(60);
/// How long QEMU gets to exit after `quit` before SIGKILL.
const QUIT_GRACE: Duration = Duration::from_secs(5);
/// Saving or loading the guest's memory longer than this counts as failed.
const MEMORY_TIMEOUT: Duration = Duration::from_secs(300);
/// A save still running after this has a guest that dirties memory faster than the file
/// takes it: the guest is paused so that the last pass can finish.
const SAVE_CONVERGE: Duration = Duration::from_secs(10);
/// Migration bandwidth for saving to a local file: no cap (QEMU's default cap of 128 MiB/s
/// is meant for networks).
const FILE_BANDWIDTH: u64 = 100 << 30;
/// The guest pause QEMU may take for the last pass of a save, in ms.
const SAVE_DOWNTIME_MS: u64 = 2000;

/// Which accelerator to use: `/dev/kvm` present and usable, and not `kvm_pvm`.
pub fn choose_accel(kvm_usable: bool, kvm_pvm_loaded: bool) -> &'static str {
    if kvm_usable && !kvm_pvm_loaded {
        "kvm"
    } else {
        "tcg"
    }
}

fn detect_accel() -> &'static str {
    let usable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    let pvm = Path::new("/sys/module/kvm_pvm").exists();
    choose_accel(usable, pvm)
}

/// Nova's version number of `QEMU emulator version 10.0.2 (...)`: 10000002.
pub fn parse_version(text: &str) -> u64 {
    let Some(rest) = text.split("version ").nth(1) else {
        return 0;
    };
    let v: Vec<u64> = rest
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .next()
        .unwrap_or("")
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect();
    v.first().copied().unwrap_or(0) * 1_000_000
        + v.get(1).copied().unwrap_or(0) * 1000
        + v.get(2).copied().unwrap_or(0)
}

/// A command line under construction.
#[derive(Default)]
struct Args(Vec<String>);

impl Args {
    fn push(&mut self, items: &[&str]) {
        self.0.extend(items.iter().map(|s| s.to_string()));
    }
}

/// The QEMU command line of a VM (without the binary), as a pure function of its spec.
/// Refuses (`Unsupported`) what this driver cannot run.
pub fn command_line(
    spec: &VmSpec,
    dir: &Path,
    host: &HostSetup,
    incoming: bool,
) -> Result<Vec<String>, HvError> {
    let mut a = Args::default();
    machine_args(&mut a, spec, dir, host);
    disk_args(&mut a, spec, dir, host);
    for nic in &spec.nics {
        nic_args(&mut a, nic)?;
    }
    a.push(&["-device", "virtio-rng-pci"]);
    boot_args(&mut a, spec);
    if incoming {
        a.push(&["-incoming", "defer"]);
    }
    Ok(a.0)
}

fn machine_args(a: &mut Args, spec: &VmSpec, dir: &Path, host: &HostSetup) {
    let p = |name: &str| dir.join(name).display().to_string();
    let accel = host.accel.as_str();
    a.push(&["-name", &format!("guest={},debug-threads=on", spec.name)]);
    a.push(&["-uuid", &spec.uuid]);
    let cpu = if accel == "kvm" { "host" } else { "max" };
    a.push(&["-accel", accel, "-machine", "q35", "-cpu", cpu]);
    let (mem, cpus) = (spec.memory_mb.to_string(), spec.vcpus.max(1).to_string());
    a.push(&["-m", &mem, "-smp", &cpus]);
    a.push(&["-nodefaults", "-no-user-config", "-display", "none", "-S"]);
    a.push(&["-daemonize", "-pidfile", &p(process::QEMU_PIDFILE)]);
    a.push(&[
        "-qmp",
        &format!("unix:{},server=on,wait=off", p("qmp.sock")),
    ]);
    // The serial port is a socket for the interactive console, logged to console.log
    // whether or not anyone is connected (QEMU drops output nobody reads from the socket).
    let serial = format!(
        "socket,id=serial0,path={},server=on,wait=off,logfile={},logappend=on",
        p(SERIAL_SOCKET),
        p("console.log")
    );
    a.push(&["-chardev", &serial, "-serial", "chardev:serial0"]);
    // Root ports for later hot-plug (q35 cannot hot-plug onto the root bus).
    for slot in 0..hotplug::SLOTS {
        let port = format!(
            "pcie-root-port,id={},chassis={}",
            hotplug::root_port(slot),
            slot + 1
        );
        a.push(&["-device", &port]);
    }
    for i in 0..spec.iothreads.max(1) {
        a.push(&["-object", &format!("iothread,id=iothread{i}")]);
    }
}

fn disk_args(a: &mut Args, spec: &VmSpec, dir: &Path, host: &HostSetup) {
    // A rescued VM boots from the rescue disk; its own disk follows, as Nova attaches it.
    let (first, second) = match &spec.rescue {
        Some(_) => (reshape::RESCUE_DISK, Some("disk.qcow2")),
        None => ("disk.qcow2", None),
    };
    let root = dir.join(first).display().to_string();
    let drive = format!(
        "file={root},if=none,id=disk0,format=qcow2,cache={},aio=threads",
        host.disk_cache
    );
    a.push(&["-drive", &drive]);
    let boot_index = match spec.boot {
        BootSource::Disk => ",bootindex=0",
        BootSource::Kernel { .. } => "",
    };
    let dev = format!("virtio-blk-pci,drive=disk0,iothread=iothread0,serial=root{boot_index}");
    a.push(&["-device", &dev]);
    if let Some(own) = second {
        let own = dir.join(own).display().to_string();
        let drive = format!(
            "file={own},if=none,id=disk1,format=qcow2,cache={},aio=threads",
            host.disk_cache
        );
        let dev = "virtio-blk-pci,drive=disk1,iothread=iothread0,serial=rescued";
        a.push(&["-drive", &drive, "-device", dev]);
    }
    let config_drive = match &spec.rescue {
        Some(r) => &r.config_drive,
        None => &spec.config_drive,
    };
    if let Some(cd) = config_drive {
        let drive = format!(
            "file={},if=none,id=config0,format=raw,readonly=on",
            cd.display()
        );
        // The second IOThread when there is one, so the root disk keeps the first alone.
        let thread = (spec.iothreads.max(1) - 1).min(1);
        let dev = format!("virtio-blk-pci,drive=config0,iothread=iothread{thread}");
        a.push(&["-drive", &drive, "-device", &dev]);
    }
}

fn nic_args(a: &mut Args, nic: &NicSpec) -> Result<(), HvError> {
    crate::check_nic(nic)?;
    let netdev = hotplug::netdev_arg(nic);
    let mut dev = hotplug::device_arg(nic);
    if let Some(slot) = nic.hotplug_slot {
        dev.push_str(&format!(",bus={}", hotplug::root_port(slot)));
    }
    a.push(&["-netdev", &netdev, "-device", &dev]);
    Ok(())
}

fn boot_args(a: &mut Args, spec: &VmSpec) {
    if let BootSource::Kernel {
        kernel,
        initrd,
        cmdline,
    } = &spec.boot
    {
        a.push(&["-kernel", &kernel.display().to_string(), "-append", cmdline]);
        if let Some(i) = initrd {
            a.push(&["-initrd", &i.display().to_string()]);
        }
    }
}

/// The pid an action on a live VM needs; the rules only pick such actions for states that
/// come from a live process.
fn live(seen: &Seen) -> Result<u32, HvError> {
    seen.pid
        .ok_or_else(|| HvError::Failed("the VM's QEMU process is gone".into()))
}

fn io_err(what: &Path) -> impl Fn(std::io::Error) -> HvError + '_ {
    move |e| HvError::Failed(format!("{}: {e}", what.display()))
}

/// Makes a finished save durable, then puts it in place: the rename is what turns a file
/// being written into the suspended guest.
async fn finish_save(dir: &Path) -> Result<(), HvError> {
    let (tmp, saved, dir) = (dir.join(SAVING), dir.join(SAVED), dir.to_path_buf());
    tokio::task::spawn_blocking(move || -> Result<(), HvError> {
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &saved).map_err(io_err(&saved))?;
        std::fs::File::open(&dir)
            .and_then(|f| f.sync_all())
            .map_err(io_err(&dir))
    })
    .await
    .map_err(|e| HvError::Failed(format!("saving memory: {e}")))?
}

/// How a save to the file ended.
enum SaveEnd {
    Saved,
    Failed(String),
}

impl QemuDriver {
    pub fn new(config: QemuConfig) -> Result<QemuDriver, HvError> {
        std::fs::create_dir_all(&config.instances_dir).map_err(io_err(&config.instances_dir))?;
        let binary = config
            .qemu_binary
            .clone()
            .unwrap_or_else(|| PathBuf::from("qemu-system-x86_64"));
        let out = std::process::Command::new(&binary)
            .arg("--version")
            .output()
            .map_err(|e| {
                HvError::Failed(format!(
                    "cannot run {}: {e} (install qemu-system-x86)",
                    binary.display()
                ))
            })?;
        let version = parse_version(&String::from_utf8_lossy(&out.stdout));
        let host = HostSetup {
            accel: config
                .accel
                .clone()
                .unwrap_or_else(|| detect_accel().to_string()),
            disk_cache: disk::cache_mode(&config.instances_dir).to_string(),
        };
        tracing::info!(accel = %host.accel, disk_cache = %host.disk_cache, qemu_version = version,
            kvm_pvm = Path::new("/sys/module/kvm_pvm").exists(), "QEMU driver ready");
        Ok(QemuDriver {
            dir: config.instances_dir,
            binary,
            host,
            version,
            start_timeout: START_TIMEOUT,
            locks: Default::default(),
            ovs: config.ovs,
        })
    }

    /// How long QEMU may take to start and answer QMP (default 60 s) before it is killed.
    pub fn with_start_timeout(mut self, timeout: Duration) -> QemuDriver {
        self.start_timeout = timeout;
        self
    }

    pub fn host_setup(&self) -> &HostSetup {
        &self.host
    }

    fn vm_dir(&self, uuid: &str) -> Result<PathBuf, HvError> {
        // Uuids only: the name becomes a path.
        if uuid.is_empty() || !uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(HvError::Failed(format!("bad VM id {uuid:?}")));
        }
        Ok(self.dir.join(uuid))
    }

    fn dir_checked(&self, uuid: &str) -> Result<PathBuf, HvError> {
        let dir = self.vm_dir(uuid)?;
        if !dir.join("spec.json").exists() {
            return Err(HvError::NotFound(uuid.to_string()));
        }
        Ok(dir)
    }

    fn lock(&self, uuid: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(uuid.to_string())
            .or_default()
            .clone()
    }

    fn spec_of(&self, dir: &Path) -> Result<VmSpec, HvError> {
        let text = std::fs::read_to_string(dir.join("spec.json"))
            .map_err(|_| HvError::NotFound(dir.display().to_string()))?;
        serde_json::from_str(&text).map_err(|e| HvError::Failed(format!("bad spec.json: {e}")))
    }

    async fn qmp(&self, dir: &Path, command: &str, args: Option<Value>) -> Result<Value, HvError> {
        qmp::execute(&dir.join("qmp.sock"), command, args, QMP_TIMEOUT).await
    }

    async fn qmp_unit(&self, dir: &Path, command: &str) -> Result<(), HvError> {
        self.qmp(dir, command, None).await.map(|_| ())
    }

    async fn run_status(&self, dir: &Path) -> Result<String, HvError> {
        let st = self.qmp(dir, "query-status", None).await?;
        Ok(st
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string())
    }

    async fn is_running(&self, dir: &Path) -> bool {
        self.run_status(dir).await.is_ok_and(|s| s == "running")
    }

    /// The VM's process, run status and saved-memory files.
    async fn observe(&self, dir: &Path, uuid: &str) -> Seen {
        let pid = process::live_pid(dir, uuid);
        let run = match pid {
            Some(_) => self.run_status(dir).await.ok(),
            None => None,
        };
        // No answer from a process that has just exited is a stopped VM, not an unknown one.
        let pid = pid.filter(|&p| run.is_some() || process::process_of(p, uuid));
        Seen {
            pid,
            run,
            saved: dir.join(SAVED).exists(),
            saving: dir.join(SAVING).exists(),
        }
    }

    /// Finishes what an interrupted operation left (see [`state::repair`]) and returns the
    /// VM as it then is.
    async fn settle(&self, dir: &Path, uuid: &str) -> Result<Seen, HvError> {
        // Each repair removes its own cause, so a few rounds always suffice.
        for _ in 0..4 {
            let seen = self.observe(dir, uuid).await;
            let Some(repair) = state::repair(&seen) else {
                return Ok(seen);
            };
            tracing::info!(vm = %uuid, ?repair, "finishing an interrupted operation");
            self.repair(dir, uuid, &seen, repair).await?;
        }
        Ok(self.observe(dir, uuid).await)
    }

    async fn repair(
        &self,
        dir: &Path,
        uuid: &str,
        seen: &Seen,
        repair: Repair,
    ) -> Result<(), HvError> {
        match repair {
            Repair::DropPartialSave => remove_if_there(&dir.join(SAVING)),
            Repair::AwaitSave => self.await_save(dir).await.map(|_| ()),
            Repair::FinishSave => finish_save(dir).await,
            Repair::EndSavedProcess => self.hard_stop(dir, uuid, live(seen)?).await,
            Repair::DropStaleSave => remove_if_there(&dir.join(SAVED)),
        }
    }

    /// One power operation, under the VM's lock.
    async fn operate(&self, uuid: &str, op: Op, timeout: Duration) -> Result<(), HvError> {
        let lock = self.lock(uuid);
        let _held = lock.lock().await;
        let dir = self.dir_checked(uuid)?;
        self.operate_locked(&dir, uuid, op, timeout).await
    }

    async fn operate_locked(
        &self,
        dir: &Path,
        uuid: &str,
        op: Op,
        timeout: Duration,
    ) -> Result<(), HvError> {
        let seen = self.settle(dir, uuid).await?;
        let step = rules::plan(op, state::power_state(&seen))?;
        self.carry_out(dir, uuid, &seen, step.action, timeout).await
    }

    /// Does what the rules table said; `timeout` is how long a guest shutdown may take.
    async fn carry_out(
        &self,
        dir: &Path,
        uuid: &str,
        seen: &Seen,
        action: Action,
        timeout: Duration,
    ) -> Result<(), HvError> {
        match action {
            Action::Nothing => Ok(()),
            Action::Boot => self.boot(dir, uuid, seen.pid).await,
            Action::Restore => self.restore(dir, uuid, seen.pid).await,
            Action::Continue => self.qmp_unit(dir, "cont").await,
            Action::Pause => self.qmp_unit(dir, "stop").await,
            Action::Reset => self.reset(dir).await,
            Action::AcpiShutdown => self.shut_down(dir, uuid, live(seen)?, timeout).await,
            Action::AcpiReboot => {
                self.shut_down(dir, uuid, live(seen)?, timeout).await?;
                self.boot(dir, uuid, None).await
            }
            Action::HardStop => self.hard_stop(dir, uuid, live(seen)?).await,
            Action::Save => self.save(dir, uuid, live(seen)?).await,
        }
    }

    /// Starts the VM's QEMU (paused), then continues it unless `incoming` (resume does that
    /// once the memory is loaded).
    async fn start(&self, dir: &Path, spec: &VmSpec, incoming: bool) -> Result<(), HvError> {
        let args = command_line(spec, dir, &self.host, incoming)?;
        self.plug_nics(spec).await?;
        process::launch(&self.binary, &args, dir, &spec.uuid, self.start_timeout).await?;
        if !incoming {
            self.qmp_unit(dir, "cont").await?;
        }
        Ok(())
    }

    /// A cold boot from the disk: any process left is ended, and a saved memory (a hard
    /// reboot of a suspended VM) discarded.
    async fn boot(&self, dir: &Path, uuid: &str, pid: Option<u32>) -> Result<(), HvError> {
        if let Some(pid) = pid {
            self.hard_stop(dir, uuid, pid).await?;
        }
        remove_if_there(&dir.join(SAVED))?;
        let spec = self.spec_of(dir)?;
        self.start(dir, &spec, false).await
    }

    async fn reset(&self, dir: &Path) -> Result<(), HvError> {
        self.qmp_unit(dir, "system_reset").await?;
        // A reset keeps a paused guest paused.
        if !self.is_running(dir).await {
            self.qmp_unit(dir, "cont").await?;
        }
        Ok(())
    }

    /// The ACPI power button, then a hard stop if the guest has not shut down in `timeout`.
    async fn shut_down(
        &self,
        dir: &Path,
        uuid: &str,
        pid: u32,
        timeout: Duration,
    ) -> Result<(), HvError> {
        let _ = self.qmp(dir, "system_powerdown", None).await;
        if process::wait_gone(pid, uuid, timeout).await {
            return Ok(());
        }
        self.hard_stop(dir, uuid, pid).await
    }

    /// `quit`, then SIGKILL; returns once the process is gone (not merely its pidfile, so
    /// the disk's lock is free for the next start).
    async fn hard_stop(&self, dir: &Path, uuid: &str, pid: u32) -> Result<(), HvError> {
        let _ = qmp::execute(&dir.join("qmp.sock"), "quit", None, QUIT_GRACE).await;
        process::end(pid, uuid, QUIT_GRACE).await
    }

    /// Suspend: the guest's memory goes to a file while it runs, and the process ends.
    async fn save(&self, dir: &Path, uuid: &str, pid: u32) -> Result<(), HvError> {
        let was_running = self.is_running(dir).await;
        remove_if_there(&dir.join(SAVING))?;
        let params = json!({"max-bandwidth": FILE_BANDWIDTH, "downtime-limit": SAVE_DOWNTIME_MS});
        self.qmp(dir, "migrate-set-parameters", Some(params))
            .await?;
        let uri = format!("file:{}", dir.join(SAVING).display());
        self.qmp(dir, "migrate", Some(json!({ "uri": uri })))
            .await?;
        match self.await_save(dir).await? {
            SaveEnd::Saved => self.hard_stop(dir, uuid, pid).await,
            SaveEnd::Failed(why) => {
                // The guest may have been paused to converge: give back what it had.
                if was_running && !self.is_running(dir).await {
                    let _ = self.qmp(dir, "cont", None).await;
                }
                Err(HvError::Failed(format!("saving memory failed: {why}")))
            }
        }
    }

    /// Waits for the running save to end. Done: the file is put in place. Failed (or
    /// none running): the partial file is dropped.
    async fn await_save(&self, dir: &Path) -> Result<SaveEnd, HvError> {
        let started = Instant::now();
        let mut forced = false;
        loop {
            let m = self.qmp(dir, "query-migrate", None).await?;
            let status = m.get("status").and_then(Value::as_str).unwrap_or("none");
            let failure = match status {
                "completed" => return finish_save(dir).await.map(|()| SaveEnd::Saved),
                "failed" | "cancelled" | "none" => Some(format!(
                    "{status} {}",
                    m.get("error-desc").and_then(Value::as_str).unwrap_or("")
                )),
                _ if started.elapsed() > MEMORY_TIMEOUT => {
                    let _ = self.qmp(dir, "migrate_cancel", None).await;
                    Some(format!("timed out after {MEMORY_TIMEOUT:?}"))
                }
                _ => None,
            };
            if let Some(why) = failure {
                remove_if_there(&dir.join(SAVING))?;
                return Ok(SaveEnd::Failed(why.trim().to_string()));
            }
            if !forced && started.elapsed() > SAVE_CONVERGE {
                forced = true;
                // Refused only when the migration just reached its own final stop.
                let _ = self.qmp(dir, "stop", None).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resume: a new QEMU loads the saved memory and continues. The file is deleted only
    /// once the guest runs again; until then it is still the guest.
    async fn restore(&self, dir: &Path, uuid: &str, pid: Option<u32>) -> Result<(), HvError> {
        if let Some(pid) = pid {
            self.hard_stop(dir, uuid, pid).await?;
        }
        let spec = self.spec_of(dir)?;
        self.start(dir, &spec, true).await?;
        let loaded = self.load(dir).await;
        if let Err(e) = loaded {
            // Leave a plain suspended VM (file, no process), not a half-loaded one.
            if let Some(pid) = process::live_pid(dir, uuid) {
                let _ = self.hard_stop(dir, uuid, pid).await;
            }
            return Err(e);
        }
        self.qmp_unit(dir, "cont").await?;
        remove_if_there(&dir.join(SAVED))
    }

    async fn load(&self, dir: &Path) -> Result<(), HvError> {
        let uri = format!("file:{}", dir.join(SAVED).display());
        self.qmp(dir, "migrate-incoming", Some(json!({ "uri": uri })))
            .await?;
        let end = Instant::now() + MEMORY_TIMEOUT;
        while self.run_status(dir).await? == "inmigrate" {
            if Instant::now() > end {
                return Err(HvError::Failed("loading memory timed out".into()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Makes the VM's files: built next to their place and renamed, so a crash leaves a
    /// temp dir (removed by `list`), never a half-made VM that `list` would report.
    async fn make_files(&self, dir: &Path, spec: &VmSpec) -> Result<(), HvError> {
        let tmp = self
            .dir
            .join(format!(".tmp-{}-{}", spec.uuid, uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        let made = async {
            disk::create_overlay(&tmp, spec).await?;
            let text =
                serde_json::to_string_pretty(spec).map_err(|e| HvError::Failed(e.to_string()))?;
            std::fs::write(tmp.join("spec.json"), text).map_err(io_err(&tmp))?;
            let _ = std::fs::remove_dir_all(dir);
            std::fs::rename(&tmp, dir).map_err(io_err(dir))
        }
        .await;
        if made.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        made
    }

    /// Plugs the VM's tap NICs into Open vSwitch (idempotent: see [`tap`]).
    async fn plug_nics(&self, spec: &VmSpec) -> Result<(), HvError> {
        for nic in &spec.nics {
            if tap::bridge_of(nic).is_some() {
                self.ovs_config()?.plug(nic, &spec.uuid).await?;
            }
        }
        Ok(())
    }

    fn ovs_config(&self) -> Result<&tap::OvsConfig, HvError> {
        self.ovs.as_ref().ok_or_else(|| {
            HvError::Unsupported(
                "a NIC on a tap device needs Open vSwitch, and this host has none configured"
                    .into(),
            )
        })
    }

    async fn create_locked(&self, spec: &VmSpec) -> Result<(), HvError> {
        let dir = self.vm_dir(&spec.uuid)?;
        // Built before anything is made, so a spec QEMU cannot run leaves no trace.
        command_line(spec, &dir, &self.host, false)?;
        if spec.nics.iter().any(|n| tap::bridge_of(n).is_some()) {
            self.ovs_config()?;
        }
        let new = !dir.join("spec.json").exists();
        if new {
            self.make_files(&dir, spec).await?;
        }
        let result = self
            .operate_locked(&dir, &spec.uuid, Op::Create, REBOOT_SHUTDOWN)
            .await;
        if result.is_err() && new {
            // A VM that never ran is not left behind for the caller to clean up.
            if let Err(e) = self.remove_vm(&dir, &spec.uuid).await {
                tracing::warn!(vm = %spec.uuid, error = %e, "removing a VM that failed to start");
            }
        }
        result
    }

    /// Kills the VM's process (waiting for it to be gone) and deletes its files.
    async fn remove_vm(&self, dir: &Path, uuid: &str) -> Result<(), HvError> {
        if let Some(pid) = process::live_pid(dir, uuid) {
            process::end(pid, uuid, Duration::ZERO).await?;
        }
        // The taps go before the files: the spec is what names them.
        if let Some(ovs) = &self.ovs {
            let spec = std::fs::read_to_string(dir.join("spec.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<VmSpec>(&t).ok());
            for nic in spec.iter().flat_map(|s| &s.nics) {
                ovs.unplug(nic).await?;
            }
        }
        std::fs::remove_dir_all(dir).map_err(io_err(dir))
    }
}

fn remove_if_there(path: &Path) -> Result<(), HvError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path)(e)),
    }
}

impl Hypervisor for QemuDriver {
    fn info(&self) -> HypervisorInfo {
        HypervisorInfo {
            hypervisor_type: "QEMU".into(),
            accel: self.host.accel.clone(),
            version: self.version,
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap_or_default()
                .trim()
                .to_string(),
        }
    }

    fn host_resources(&self) -> HostResources {
        let vcpus = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_mb = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|k| k.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024);
        let disk_gb = {
            let path = std::ffi::CString::new(self.dir.display().to_string()).unwrap_or_default();
            // SAFETY: statvfs fills the struct we pass; the path is a valid C string.
            let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
            if unsafe { libc::statvfs(path.as_ptr(), &mut st) } == 0 {
                (st.f_blocks as u64 * st.f_frsize as u64) >> 30
            } else {
                0
            }
        };
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        HostResources {
            vcpus,
            memory_mb,
            disk_gb,
            cpu_model,
        }
    }

    fn create<'a>(&'a self, spec: &'a VmSpec) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            let lock = self.lock(&spec.uuid);
            let _held = lock.lock().await;
            self.create_locked(spec).await
        })
    }

    fn destroy<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            let lock = self.lock(uuid);
            let _held = lock.lock().await;
            let dir = self.vm_dir(uuid)?;
            if !dir.exists() {
                return Ok(());
            }
            self.remove_vm(&dir, uuid).await
        })
    }

    fn power_on<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(self.operate(uuid, Op::PowerOn, REBOOT_SHUTDOWN))
    }

    fn power_off<'a>(
        &'a self,
        uuid: &'a str,
        timeout: Duration,
    ) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(self.operate(uuid, Op::PowerOff, timeout))
    }

    fn reboot<'a>(&'a self, uuid: &'a str, hard: bool) -> BoxFut<'a, Result<(), HvError>> {
        let op = if hard { Op::RebootHard } else { Op::RebootSoft };
        Box::pin(self.operate(uuid, op, REBOOT_SHUTDOWN))
    }

    fn pause<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(self.operate(uuid, Op::Pause, REBOOT_SHUTDOWN))
    }

    fn unpause<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(self.operate(uuid, Op::Unpause, REBOOT_SHUTDOWN))
    }

    fn suspend<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(self.operate(uuid, Op::Suspend, REBOOT_SHUTDOWN))
    }

    fn resume<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(self.operate(uuid, Op::Resume, REBOOT_SHUTDOWN))
    }

    fn status<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<Option<VmStatus>, HvError>> {
        Box::pin(async move {
            let dir = self.vm_dir(uuid)?;
            if !dir.join("spec.json").exists() {
                return Ok(None);
            }
            let seen = self.observe(&dir, uuid).await;
            Ok(Some(VmStatus {
                power_state: state::power_state(&seen),
                pid: seen.pid,
            }))
        })
    }

    fn list<'a>(&'a self) -> BoxFut<'a, Result<Vec<String>, HvError>> {
        Box::pin(async move {
            let mut out = Vec::new();
            let entries =
                std::fs::read_dir(&self.dir).map_err(|e| HvError::Failed(e.to_string()))?;
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(".tmp-") {
                    // A create that crashed before its rename.
                    let _ = std::fs::remove_dir_all(e.path());
                    continue;
                }
                if e.path().join("spec.json").exists() {
                    out.push(name);
                }
            }
            out.sort();
            Ok(out)
        })
    }

    fn console_log<'a>(
        &'a self,
        uuid: &'a str,
        max_bytes: usize,
    ) -> BoxFut<'a, Result<String, HvError>> {
        Box::pin(async move {
            use std::io::{Read, Seek, SeekFrom};
            let dir = self.dir_checked(uuid)?;
            let Ok(mut f) = std::fs::File::open(dir.join("console.log")) else {
                return Ok(String::new());
            };
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let start = len.saturating_sub(max_bytes as u64);
            f.seek(SeekFrom::Start(start))
                .map_err(|e| HvError::Failed(e.to_string()))?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)
                .map_err(|e| HvError::Failed(e.to_string()))?;
            Ok(String::from_utf8_lossy(&buf).into_owned())
        })
    }

    fn serial_socket<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<PathBuf, HvError>> {
        Box::pin(async move {
            let dir = self.dir_checked(uuid)?;
            if process::live_pid(&dir, uuid).is_none() {
                return Err(HvError::InvalidState(format!("VM {uuid} is not running")));
            }
            Ok(dir.join(SERIAL_SOCKET))
        })
    }

    fn resize<'a>(&'a self, spec: &'a VmSpec) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(self.resize_vm(spec))
    }

    fn confirm_resize<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(self.confirm_resize_vm(uuid))
    }

    fn revert_resize<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(self.revert_resize_vm(uuid))
    }

    fn rescue<'a>(
        &'a self,
        uuid: &'a str,
        disk: &'a DiskSpec,
        config_drive: Option<&'a Path>,
    ) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(self.rescue_vm(uuid, disk, config_drive))
    }

    fn unrescue<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(self.unrescue_vm(uuid))
    }

    fn attach_nic<'a>(
        &'a self,
        uuid: &'a str,
        nic: &'a NicSpec,
    ) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            crate::check_nic(nic)?;
            let lock = self.lock(uuid);
            let _held = lock.lock().await;
            let dir = self.dir_checked(uuid)?;
            self.attach_locked(&dir, uuid, nic).await
        })
    }

    fn detach_nic<'a>(
        &'a self,
        uuid: &'a str,
        port_id: &'a str,
    ) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            let lock = self.lock(uuid);
            let _held = lock.lock().await;
            let dir = self.dir_checked(uuid)?;
            self.detach_locked(&dir, uuid, port_id).await
        })
    }

    fn snapshot<'a>(&'a self, uuid: &'a str, dest: &'a Path) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            let lock = self.lock(uuid);
            let _held = lock.lock().await;
            let dir = self.dir_checked(uuid)?;
            // A paused guest writes nothing: the copy is consistent.
            let was_running =
                process::live_pid(&dir, uuid).is_some() && self.is_running(&dir).await;
            if was_running {
                self.qmp(&dir, "stop", None).await?;
            }
            let out = tokio::process::Command::new("qemu-img")
                .args(["convert", "-U", "-O", "qcow2"])
                .arg(dir.join("disk.qcow2"))
                .arg(dest)
                .output()
                .await;
            if was_running {
                self.qmp(&dir, "cont", None).await?;
            }
            let out = out.map_err(|e| HvError::Failed(format!("qemu-img: {e}")))?;
            if !out.status.success() {
                return Err(HvError::Failed(format!(
                    "snapshot: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DiskSpec, NicBackend, NicSpec};

    fn host(accel: &str) -> HostSetup {
        HostSetup {
            accel: accel.into(),
            disk_cache: "none".into(),
        }
    }

    fn spec() -> VmSpec {
        VmSpec {
            uuid: "6f1c3a2e-0000-4000-8000-000000000001".into(),
            name: "instance-00000001".into(),
            vcpus: 1,
            memory_mb: 128,
            root_disk: DiskSpec {
                base_image: "/b".into(),
                base_format: "qcow2".into(),
                size_gb: 1,
            },
            config_drive: Some("/d/config.iso".into()),
            nics: vec![NicSpec {
                port_id: "p".into(),
                mac: "fa:16:3e:00:00:01".into(),
                backend: NicBackend::User {
                    ssh_forward_port: Some(2222),
                },
                mtu: None,
                hotplug_slot: None,
            }],
            iothreads: 1,
            boot: BootSource::Disk,
            rescue: None,
        }
    }

    #[test]
    fn command_line_has_the_devices_nova_would_give() {
        let a = command_line(&spec(), Path::new("/vm"), &host("tcg"), false)
            .unwrap()
            .join(" ");
        for needle in [
            "-accel tcg",
            "-cpu max",
            "-uuid 6f1c3a2e-0000-4000-8000-000000000001",
            "-object iothread,id=iothread0",
            "virtio-blk-pci,drive=disk0,iothread=iothread0,serial=root,bootindex=0",
            "file=/d/config.iso,if=none,id=config0,format=raw,readonly=on",
            "hostfwd=tcp:127.0.0.1:2222-:22",
            "mac=fa:16:3e:00:00:01,romfile=",
            "user,id=netdev-p,restrict=on",
            "virtio-net-pci,id=nic-p,netdev=netdev-p,",
            "pcie-root-port,id=hotplug1,chassis=2",
            "-daemonize -pidfile /vm/qemu.pid",
            "path=/vm/tty.sock,server=on,wait=off,logfile=/vm/console.log,logappend=on",
            "-S",
        ] {
            assert!(a.contains(needle), "missing {needle} in {a}");
        }
        assert!(!a.contains("-incoming"));
        let kvm = command_line(&spec(), Path::new("/vm"), &host("kvm"), true)
            .unwrap()
            .join(" ");
        assert!(kvm.contains("-cpu host") && kvm.contains("-incoming defer"));
        let no_direct_io = HostSetup {
            disk_cache: "writeback".into(),
            ..host("tcg")
        };
        let a = command_line(&spec(), Path::new("/vm"), &no_direct_io, false)
            .unwrap()
            .join(" ");
        assert!(
            a.contains("format=qcow2,cache=writeback,aio=threads"),
            "{a}"
        );
    }

    /// A scratch directory with a tiny base image and a stand-in for QEMU: a shell script
    /// that answers `--version` and otherwise runs `body`.
    struct Bench {
        work: PathBuf,
        driver: QemuDriver,
        spec: VmSpec,
    }

    impl Bench {
        fn new(body: &str) -> Bench {
            let work = std::env::temp_dir().join(format!("fs-fakeqemu-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&work).unwrap();
            let script = work.join("qemu");
            std::fs::write(
                &script,
                format!(
                    "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'QEMU emulator version 10.0.2 (fake)'; exit 0; fi\n{body}\n"
                ),
            )
            .unwrap();
            std::process::Command::new("chmod")
                .arg("+x")
                .arg(&script)
                .status()
                .unwrap();
            let base = work.join("base.qcow2");
            let made = std::process::Command::new("qemu-img")
                .args(["create", "-q", "-f", "qcow2"])
                .arg(&base)
                .arg("1M")
                .status()
                .expect("qemu-img is missing (scripts/install-qemu.sh installs it)");
            assert!(made.success());
            let driver = QemuDriver::new(QemuConfig {
                instances_dir: work.join("instances"),
                qemu_binary: Some(script),
                accel: Some("tcg".into()),
                ovs: None,
            })
            .unwrap()
            .with_start_timeout(Duration::from_secs(2));
            let mut spec = spec();
            spec.uuid = uuid::Uuid::new_v4().to_string();
            spec.root_disk.base_image = base;
            spec.config_drive = None;
            Bench { work, driver, spec }
        }

        fn instances(&self) -> Vec<String> {
            std::fs::read_dir(self.work.join("instances"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        }
    }

    impl Drop for Bench {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.work);
        }
    }

    #[tokio::test]
    async fn a_tap_nic_is_refused_before_any_file_is_made() {
        let b = Bench::new("exit 1");
        let mut spec = b.spec.clone();
        spec.nics[0].backend = NicBackend::Tap {
            bridge: "br-int".into(),
        };
        let err = b.driver.create(&spec).await.unwrap_err();
        assert!(matches!(err, HvError::Unsupported(_)), "{err}");
        assert!(b.instances().is_empty(), "{:?}", b.instances());
    }

    #[tokio::test]
    async fn a_qemu_that_hangs_while_starting_is_killed_and_cleaned_up() {
        let b =
            Bench::new("echo 'fake qemu: stuck opening the disk' >&2\nwhile :; do sleep 0.1; done");
        let t = Instant::now();
        let err = b.driver.create(&b.spec).await.unwrap_err().to_string();
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert!(err.contains("did not start in time"), "{err}");
        assert!(err.contains("stuck opening the disk"), "stderr lost: {err}");
        assert!(b.instances().is_empty(), "{:?}", b.instances());
    }

    #[tokio::test]
    async fn a_qemu_whose_qmp_never_answers_is_killed_and_cleaned_up() {
        // Daemonizes like QEMU (a child naming the VM's arguments, its pid in -pidfile)
        // but never opens the QMP socket. The pid is also noted beside the script. Like
        // QEMU, it returns only once the daemon runs (a process that has just begun its
        // exec shows an empty command line for a moment).
        let b = Bench::new(
            "for a in \"$@\"; do [ \"$prev\" = -pidfile ] && pidfile=$a; prev=$a; done\n\
             echo 'fake qemu: monitor never answers' >&2\n\
             sh -c 'while :; do sleep 0.1; done' \"$@\" </dev/null >/dev/null 2>&1 &\n\
             echo $! > \"$pidfile\"; echo $! > \"$(dirname \"$0\")/daemon.pid\"\n\
             sleep 0.3",
        );
        let record = b.work.join("daemon.pid");
        let err = b.driver.create(&b.spec).await.unwrap_err().to_string();
        assert!(err.contains("QMP did not answer"), "{err}");
        assert!(err.contains("monitor never answers"), "stderr lost: {err}");
        let pid: u32 = std::fs::read_to_string(&record)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            !process::process_of(pid, &b.spec.uuid),
            "QEMU {pid} left running"
        );
        assert!(b.instances().is_empty(), "{:?}", b.instances());
    }

    #[test]
    fn accelerator_and_version() {
        assert_eq!(choose_accel(true, false), "kvm");
        assert_eq!(choose_accel(true, true), "tcg");
        assert_eq!(choose_accel(false, false), "tcg");
        assert_eq!(
            parse_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)"),
            10_000_002
        );
        assert_eq!(parse_version("garbage"), 0);
    }
}
