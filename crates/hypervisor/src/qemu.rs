//! The QEMU driver: each VM is a `qemu-system-x86_64` process, started daemonized so it
//! outlives the agent (a restarted agent re-adopts it by its recorded pid), and controlled
//! over its QMP socket. Its files live in `<instances_dir>/<uuid>/`: `disk.qcow2` (an
//! overlay on the cached base image), `console.log` (the serial port, appended across power
//! cycles), `qmp.sock`, `qemu.pid` (QEMU's) and `process.pid` (the driver's, see
//! [`process`]), `spec.json` (what to start it with again) and, while suspended,
//! `memory.state` (the guest's RAM, saved by migrating to a file).
//!
//! The accelerator is KVM where `/dev/kvm` works, and TCG otherwise: on hosts whose KVM is
//! `kvm_pvm` (nested, no VMX/SVM) stock kernels cannot boot, so it counts as absent.

mod disk;
mod process;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{
    qmp, BootSource, BoxFut, HostResources, HvError, Hypervisor, HypervisorInfo, NicBackend,
    PowerState, VmSpec, VmStatus,
};

pub use disk::direct_io_works;
pub use process::resident_kib;

#[derive(Debug, Clone, Default)]
pub struct QemuConfig {
    pub instances_dir: PathBuf,
    /// Default: `qemu-system-x86_64` on the PATH.
    pub qemu_binary: Option<PathBuf>,
    /// `kvm` or `tcg`; default: chosen from what the host can do.
    pub accel: Option<String>,
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
    /// Serializes operations per VM (a reboot and a status poll must not interleave).
    locks:
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

const QMP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long QEMU may take to start and answer QMP before it is killed.
const START_TIMEOUT: Duration = Duration::from_secs(60);

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

/// The QEMU command line of a VM (without the binary), as a pure function of its spec.
pub fn command_line(spec: &VmSpec, dir: &Path, host: &HostSetup, incoming: bool) -> Vec<String> {
    let p = |name: &str| dir.join(name).display().to_string();
    let accel = host.accel.as_str();
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    push(&["-name", &format!("guest={},debug-threads=on", spec.name)]);
    push(&["-uuid", &spec.uuid]);
    push(&[
        "-accel",
        accel,
        "-machine",
        "q35",
        "-cpu",
        if accel == "kvm" { "host" } else { "max" },
    ]);
    push(&[
        "-m",
        &spec.memory_mb.to_string(),
        "-smp",
        &spec.vcpus.max(1).to_string(),
    ]);
    push(&["-nodefaults", "-no-user-config", "-display", "none", "-S"]);
    push(&["-daemonize", "-pidfile", &p(process::QEMU_PIDFILE)]);
    push(&[
        "-qmp",
        &format!("unix:{},server=on,wait=off", p("qmp.sock")),
    ]);
    push(&[
        "-chardev",
        &format!("file,id=serial0,path={},append=on", p("console.log")),
        "-serial",
        "chardev:serial0",
    ]);
    // Root ports for later hot-plug (q35 cannot hot-plug onto the root bus).
    push(&[
        "-device",
        "pcie-root-port,id=hotplug0,chassis=1",
        "-device",
        "pcie-root-port,id=hotplug1,chassis=2",
    ]);
    let threads = spec.iothreads.max(1);
    for i in 0..threads {
        push(&["-object", &format!("iothread,id=iothread{i}")]);
    }
    push(&[
        "-drive",
        &format!(
            "file={},if=none,id=disk0,format=qcow2,cache={},aio=threads",
            p("disk.qcow2"),
            host.disk_cache
        ),
    ]);
    let boot_index = match spec.boot {
        BootSource::Disk => ",bootindex=0",
        BootSource::Kernel { .. } => "",
    };
    push(&[
        "-device",
        &format!("virtio-blk-pci,drive=disk0,iothread=iothread0,serial=root{boot_index}"),
    ]);
    if let Some(cd) = &spec.config_drive {
        push(&[
            "-drive",
            &format!(
                "file={},if=none,id=config0,format=raw,readonly=on",
                cd.display()
            ),
        ]);
        push(&[
            "-device",
            &format!(
                "virtio-blk-pci,drive=config0,iothread=iothread{}",
                (threads - 1).min(1)
            ),
        ]);
    }
    for (i, nic) in spec.nics.iter().enumerate() {
        let netdev = match &nic.backend {
            NicBackend::User { ssh_forward_port } => {
                let mut n = format!("user,id=net{i},restrict=on");
                if let Some(port) = ssh_forward_port {
                    n.push_str(&format!(",hostfwd=tcp:127.0.0.1:{port}-:22"));
                }
                n
            }
            NicBackend::Tap { .. } => format!(
                "tap,id=net{i},ifname=tap{},script=no,downscript=no",
                &nic.port_id.chars().take(11).collect::<String>()
            ),
        };
        push(&["-netdev", &netdev]);
        push(&[
            "-device",
            &format!("virtio-net-pci,netdev=net{i},mac={},romfile=", nic.mac),
        ]);
    }
    push(&["-device", "virtio-rng-pci"]);
    if let BootSource::Kernel {
        kernel,
        initrd,
        cmdline,
    } = &spec.boot
    {
        push(&["-kernel", &kernel.display().to_string(), "-append", cmdline]);
        if let Some(i) = initrd {
            push(&["-initrd", &i.display().to_string()]);
        }
    }
    if incoming {
        push(&["-incoming", "defer"]);
    }
    a
}

impl QemuDriver {
    pub fn new(config: QemuConfig) -> Result<QemuDriver, HvError> {
        std::fs::create_dir_all(&config.instances_dir)
            .map_err(|e| HvError::Failed(format!("{}: {e}", config.instances_dir.display())))?;
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
        tracing::info!(accel = %host.accel, disk_cache = %host.disk_cache, qemu_version = version, kvm_pvm = Path::new("/sys/module/kvm_pvm").exists(), "QEMU driver ready");
        Ok(QemuDriver {
            dir: config.instances_dir,
            binary,
            host,
            version,
            start_timeout: START_TIMEOUT,
            locks: Default::default(),
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

    fn lock(&self, uuid: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(uuid.to_string())
            .or_default()
            .clone()
    }

    /// The VM's live QEMU (not merely a pidfile: see [`process`]).
    fn pid(&self, dir: &Path, uuid: &str) -> Option<u32> {
        process::live_pid(dir, uuid)
    }

    fn spec_of(&self, dir: &Path) -> Result<VmSpec, HvError> {
        let text = std::fs::read_to_string(dir.join("spec.json"))
            .map_err(|_| HvError::NotFound(dir.display().to_string()))?;
        serde_json::from_str(&text).map_err(|e| HvError::Failed(format!("bad spec.json: {e}")))
    }

    async fn qmp(&self, dir: &Path, command: &str, args: Option<Value>) -> Result<Value, HvError> {
        qmp::execute(&dir.join("qmp.sock"), command, args, QMP_TIMEOUT).await
    }

    async fn run_status(&self, dir: &Path) -> Result<String, HvError> {
        let st = self.qmp(dir, "query-status", None).await?;
        Ok(st
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string())
    }

    async fn status_is(&self, dir: &Path, status: &str) -> bool {
        self.run_status(dir).await.is_ok_and(|s| s == status)
    }

    async fn state(&self, uuid: &str) -> Result<Option<VmStatus>, HvError> {
        let dir = self.vm_dir(uuid)?;
        if !dir.join("spec.json").exists() {
            return Ok(None);
        }
        let Some(pid) = self.pid(&dir, uuid) else {
            let ps = if dir.join("memory.state").exists() {
                PowerState::Suspended
            } else {
                PowerState::Shutdown
            };
            return Ok(Some(VmStatus {
                power_state: ps,
                pid: None,
            }));
        };
        let ps = match self.run_status(&dir).await.as_deref() {
            Ok("running") => PowerState::Running,
            Ok("paused") | Ok("prelaunch") | Ok("suspended") | Ok("inmigrate")
            | Ok("restore-vm") | Ok("save-vm") | Ok("debug") => PowerState::Paused,
            Ok("postmigrate") => PowerState::Suspended,
            Ok("shutdown") => PowerState::Shutdown,
            Ok("guest-panicked") | Ok("internal-error") | Ok("io-error") => PowerState::Crashed,
            Ok(_) | Err(_) => PowerState::NoState,
        };
        Ok(Some(VmStatus {
            power_state: ps,
            pid: Some(pid),
        }))
    }

    /// Starts the VM's QEMU (paused), then continues it unless `incoming` (resume does that
    /// once the memory is loaded).
    async fn start(&self, dir: &Path, spec: &VmSpec, incoming: bool) -> Result<(), HvError> {
        let args = command_line(spec, dir, &self.host, incoming);
        process::launch(&self.binary, &args, dir, &spec.uuid, self.start_timeout).await?;
        if !incoming {
            self.qmp(dir, "cont", None).await?;
        }
        Ok(())
    }

    /// Gives the VM's process `timeout` to end, then kills it; returns once it is gone (not
    /// merely its pidfile, so the disk's lock is free for the next start).
    async fn wait_exit(&self, dir: &Path, uuid: &str, timeout: Duration) -> Result<(), HvError> {
        match self.pid(dir, uuid) {
            Some(pid) => process::end(pid, uuid, timeout).await,
            None => Ok(()),
        }
    }

    async fn hard_stop(&self, dir: &Path, uuid: &str) -> Result<(), HvError> {
        if self.pid(dir, uuid).is_some() {
            let _ = self.qmp(dir, "quit", None).await;
            self.wait_exit(dir, uuid, Duration::from_secs(5)).await?;
        }
        Ok(())
    }

    async fn create_locked(&self, spec: &VmSpec) -> Result<(), HvError> {
        let dir = self.vm_dir(&spec.uuid)?;
        let new = !dir.join("spec.json").exists();
        let result = self.create_in(&dir, spec, new).await;
        if result.is_err() && new && dir.exists() {
            // A VM that never ran is not left behind for the caller to clean up.
            let _ = self.wait_exit(&dir, &spec.uuid, Duration::ZERO).await;
            let _ = std::fs::remove_dir_all(&dir);
        }
        result
    }

    async fn create_in(&self, dir: &Path, spec: &VmSpec, new: bool) -> Result<(), HvError> {
        let dir = dir.to_path_buf();
        if new {
            // Built next to its place and renamed: a crash leaves a temp dir, never a
            // half-made VM that `list` would report.
            let tmp = self
                .dir
                .join(format!(".tmp-{}-{}", spec.uuid, uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&tmp).map_err(|e| HvError::Failed(e.to_string()))?;
            let made = async {
                disk::create_overlay(&tmp, spec).await?;
                let text = serde_json::to_string_pretty(spec)
                    .map_err(|e| HvError::Failed(e.to_string()))?;
                std::fs::write(tmp.join("spec.json"), text)
                    .map_err(|e| HvError::Failed(e.to_string()))?;
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::rename(&tmp, &dir).map_err(|e| HvError::Failed(e.to_string()))
            }
            .await;
            if made.is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            made?;
        }
        match self.state(&spec.uuid).await? {
            Some(VmStatus {
                pid: Some(_),
                power_state,
            }) => {
                if power_state == PowerState::Paused && self.status_is(&dir, "prelaunch").await {
                    // Started but never continued (crash during create).
                    self.qmp(&dir, "cont", None).await?;
                }
                Ok(())
            }
            _ => {
                let stored = self.spec_of(&dir)?;
                self.start(&dir, &stored, false).await
            }
        }
    }

    fn dir_checked(&self, uuid: &str) -> Result<PathBuf, HvError> {
        let dir = self.vm_dir(uuid)?;
        if !dir.join("spec.json").exists() {
            return Err(HvError::NotFound(uuid.to_string()));
        }
        Ok(dir)
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
            let _g = lock.lock().await;
            self.create_locked(spec).await
        })
    }

    fn destroy<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            let lock = self.lock(uuid);
            let _g = lock.lock().await;
            let dir = self.vm_dir(uuid)?;
            if !dir.exists() {
                return Ok(());
            }
            self.wait_exit(&dir, uuid, Duration::ZERO).await?;
            std::fs::remove_dir_all(&dir)
                .map_err(|e| HvError::Failed(format!("removing {}: {e}", dir.display())))
        })
    }

    fn power_on<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            let lock = self.lock(uuid);
            let _g = lock.lock().await;
            let dir = self.dir_checked(uuid)?;
            if self.pid(&dir, uuid).is_some() {
                return Ok(());
            }
            let _ = std::fs::remove_file(dir.join("memory.state"));
            let spec = self.spec_of(&dir)?;
            self.start(&dir, &spec, false).await
        })
    }

    fn power_off<'a>(
        &'a self,
        uuid: &'a str,
        timeout: Duration,
    ) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            let lock = self.lock(uuid);
            let _g = lock.lock().await;
            let dir = self.dir_checked(uuid)?;
            if self.pid(&dir, uuid).is_none() {
                return Ok(());
            }
            // A paused guest cannot see the power button.
            if self.status_is(&dir, "running").await {
                let _ = self.qmp(&dir, "system_powerdown", None).await;
                self.wait_exit(&dir, uuid, timeout).await?;
            }
            self.hard_stop(&dir, uuid).await
        })
    }

    fn reboot<'a>(&'a self, uuid: &'a str, hard: bool) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            let lock = self.lock(uuid);
            let _g = lock.lock().await;
            let dir = self.dir_checked(uuid)?;
            if self.pid(&dir, uuid).is_some() {
                if hard {
                    self.qmp(&dir, "system_reset", None).await?;
                    if !self.status_is(&dir, "running").await {
                        self.qmp(&dir, "cont", None).await?;
                    }
                    return Ok(());
                }
                let _ = self.qmp(&dir, "system_powerdown", None).await;
                self.wait_exit(&dir, uuid, Duration::from_secs(60)).await?;
            }
            let _ = std::fs::remove_file(dir.join("memory.state"));
            let spec = self.spec_of(&dir)?;
            self.start(&dir, &spec, false).await
        })
    }

    fn pause<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            let dir = self.dir_checked(uuid)?;
            if self.pid(&dir, uuid).is_none() {
                return Err(HvError::InvalidState(format!("{uuid} is not running")));
            }
            self.qmp(&dir, "stop", None).await.map(|_| ())
        })
    }

    fn unpause<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            let dir = self.dir_checked(uuid)?;
            if self.pid(&dir, uuid).is_none() {
                return Err(HvError::InvalidState(format!("{uuid} is not running")));
            }
            self.qmp(&dir, "cont", None).await.map(|_| ())
        })
    }

    fn suspend<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            let lock = self.lock(uuid);
            let _g = lock.lock().await;
            let dir = self.dir_checked(uuid)?;
            if self.pid(&dir, uuid).is_none() {
                return if dir.join("memory.state").exists() {
                    Ok(())
                } else {
                    Err(HvError::InvalidState(format!("{uuid} is not running")))
                };
            }
            let state = dir.join("memory.state");
            let tmp = dir.join("memory.state.tmp");
            let _ = std::fs::remove_file(&tmp);
            self.qmp(&dir, "stop", None).await?;
            self.qmp(
                &dir,
                "migrate",
                Some(json!({"uri": format!("file:{}", tmp.display())})),
            )
            .await?;
            let end = Instant::now() + Duration::from_secs(300);
            loop {
                let m = self.qmp(&dir, "query-migrate", None).await?;
                match m.get("status").and_then(Value::as_str) {
                    Some("completed") => break,
                    Some("failed") | Some("cancelled") => {
                        let _ = self.qmp(&dir, "cont", None).await;
                        return Err(HvError::Failed(format!(
                            "saving memory failed: {}",
                            m.get("error-desc").and_then(Value::as_str).unwrap_or("")
                        )));
                    }
                    _ if Instant::now() > end => {
                        return Err(HvError::Failed("saving memory timed out".into()))
                    }
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            std::fs::rename(&tmp, &state).map_err(|e| HvError::Failed(e.to_string()))?;
            self.hard_stop(&dir, uuid).await
        })
    }

    fn resume<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            let lock = self.lock(uuid);
            let _g = lock.lock().await;
            let dir = self.dir_checked(uuid)?;
            let state = dir.join("memory.state");
            if self.pid(&dir, uuid).is_some() {
                if self.status_is(&dir, "running").await {
                    return Ok(());
                }
                // A resume interrupted after the memory was loaded.
                if !state.exists() {
                    return self.qmp(&dir, "cont", None).await.map(|_| ());
                }
                self.hard_stop(&dir, uuid).await?;
            }
            if !state.exists() {
                return Err(HvError::InvalidState(format!("{uuid} is not suspended")));
            }
            let spec = self.spec_of(&dir)?;
            self.start(&dir, &spec, true).await?;
            self.qmp(
                &dir,
                "migrate-incoming",
                Some(json!({"uri": format!("file:{}", state.display())})),
            )
            .await?;
            let end = Instant::now() + Duration::from_secs(300);
            loop {
                match self.run_status(&dir).await?.as_str() {
                    "inmigrate" if Instant::now() < end => {
                        tokio::time::sleep(Duration::from_millis(50)).await
                    }
                    "inmigrate" => return Err(HvError::Failed("loading memory timed out".into())),
                    _ => break,
                }
            }
            self.qmp(&dir, "cont", None).await?;
            let _ = std::fs::remove_file(&state);
            Ok(())
        })
    }

    fn status<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<Option<VmStatus>, HvError>> {
        Box::pin(async move { self.state(uuid).await })
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

    fn snapshot<'a>(&'a self, uuid: &'a str, dest: &'a Path) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            let lock = self.lock(uuid);
            let _g = lock.lock().await;
            let dir = self.dir_checked(uuid)?;
            // A paused guest writes nothing: the copy is consistent.
            let was_running =
                self.pid(&dir, uuid).is_some() && self.status_is(&dir, "running").await;
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
    use crate::{DiskSpec, NicSpec};

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
            }],
            iothreads: 1,
            boot: BootSource::Disk,
        }
    }

    #[test]
    fn command_line_has_the_devices_nova_would_give() {
        let a = command_line(&spec(), Path::new("/vm"), &host("tcg"), false).join(" ");
        for needle in [
            "-accel tcg",
            "-cpu max",
            "-uuid 6f1c3a2e-0000-4000-8000-000000000001",
            "-object iothread,id=iothread0",
            "virtio-blk-pci,drive=disk0,iothread=iothread0,serial=root,bootindex=0",
            "file=/d/config.iso,if=none,id=config0,format=raw,readonly=on",
            "hostfwd=tcp:127.0.0.1:2222-:22",
            "mac=fa:16:3e:00:00:01,romfile=",
            "-daemonize -pidfile /vm/qemu.pid",
            "path=/vm/console.log,append=on",
            "-S",
        ] {
            assert!(a.contains(needle), "missing {needle} in {a}");
        }
        assert!(!a.contains("-incoming"));
        let kvm = command_line(&spec(), Path::new("/vm"), &host("kvm"), true).join(" ");
        assert!(kvm.contains("-cpu host") && kvm.contains("-incoming defer"));
        let no_direct_io = HostSetup {
            disk_cache: "writeback".into(),
            ..host("tcg")
        };
        let a = command_line(&spec(), Path::new("/vm"), &no_direct_io, false).join(" ");
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
