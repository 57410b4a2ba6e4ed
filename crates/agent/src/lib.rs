//! The compute agent: runs on each compute host (inside `ferrostack up`, or alone as
//! `ferrostack compute-agent`). It registers the host with the Compute service (a
//! `nova-compute` service, a compute node, and its resource provider in Placement with the
//! real inventory), heartbeats, carries out what the server workflows ask of the host
//! ([`ferrostack_compute::host::HostAgent`]) through a [`Hypervisor`] driver, and keeps the
//! control plane's view true: a periodic sync reports VMs that stopped by themselves and
//! removes VMs no server owns any more (left by a crash between a VM's start and the
//! record of its server's deletion). It reaches the control plane through a
//! [`ControlPlane`]: the Compute service itself inside `ferrostack up`
//! ([`Agent::start_local`]), its HTTP API for a remote agent, which then serves the host
//! calls over HTTP as well ([`ferrostack_compute::host_http`]).
//!
//! Base images are cached in `_base/` (inside `ferrostack up`, hard links to the Image
//! service's files: the image may be deleted while servers still run on it, the link keeps
//! the data; a remote agent downloads them once), and config drives are
//! ISO9660 images labelled `config-2` built with genisoimage, as Nova builds them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferrostack_compute::host::{
    AgentError, BoxFut, ControlPlane, GuestSpec, HostAgent, HostReport, PowerOp, SerialStream,
};
use ferrostack_compute::service::agents::LocalControlPlane;
use ferrostack_compute::ComputeService;
use ferrostack_hypervisor::{BootSource, DiskSpec, HvError, Hypervisor, VmSpec};

pub mod metadata;

/// Operator settings of an agent.
#[derive(Clone, serde::Deserialize)]
#[serde(default)]
pub struct AgentConfig {
    /// The host's name in the Compute service (default: the machine's hostname).
    pub host: String,
    /// Where base images and config drives are kept.
    pub state_dir: PathBuf,
    /// Memory kept for the host itself (Nova's `reserved_host_memory_mb`).
    pub reserved_host_memory_mb: i64,
    pub cpu_allocation_ratio: f64,
    pub ram_allocation_ratio: f64,
    pub disk_allocation_ratio: f64,
    /// Seconds an ACPI shutdown may take before the VM is stopped hard.
    pub shutdown_timeout: u64,
    /// Seconds between heartbeats and power-state syncs.
    pub sync_interval: u64,
    /// The Open vSwitch bridge ovn-controller watches, where VMs' NICs are plugged.
    pub integration_bridge: String,
    /// The Open vSwitch database (`ovs-vsctl --db`); the metadata namespaces are plugged
    /// through it. Without it (or without the two settings below) guests get no metadata
    /// proxy on this host.
    pub ovs_db: Option<String>,
    /// The network namespace ovs-vswitchd runs in, when not this process's.
    pub ovs_netns: Option<String>,
    /// The Compute metadata service the proxies forward to (`<control plane>/metadata`).
    pub metadata_url: Option<String>,
    /// The secret the proxies sign server ids with (`[compute]
    /// metadata_proxy_shared_secret` of the control plane).
    pub metadata_secret: Option<String>,
}

/// Everything but the metadata secret, which must not reach a log.
impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentConfig")
            .field("host", &self.host)
            .field("state_dir", &self.state_dir)
            .field("reserved_host_memory_mb", &self.reserved_host_memory_mb)
            .field("cpu_allocation_ratio", &self.cpu_allocation_ratio)
            .field("ram_allocation_ratio", &self.ram_allocation_ratio)
            .field("disk_allocation_ratio", &self.disk_allocation_ratio)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("sync_interval", &self.sync_interval)
            .field("integration_bridge", &self.integration_bridge)
            .field("ovs_db", &self.ovs_db)
            .field("ovs_netns", &self.ovs_netns)
            .field("metadata_url", &self.metadata_url)
            .field(
                "metadata_secret",
                &self.metadata_secret.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            host: hostname(),
            state_dir: PathBuf::from("compute"),
            reserved_host_memory_mb: 512,
            // Nova's initial allocation ratios.
            cpu_allocation_ratio: 4.0,
            ram_allocation_ratio: 1.0,
            disk_allocation_ratio: 1.0,
            shutdown_timeout: 60,
            sync_interval: 10,
            integration_bridge: "br-int".into(),
            ovs_db: None,
            ovs_netns: None,
            metadata_url: None,
            metadata_secret: None,
        }
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

pub struct Agent {
    pub config: AgentConfig,
    pub hv: Arc<dyn Hypervisor>,
    control: Arc<dyn ControlPlane>,
    /// The guests' metadata path ([`metadata`]), when the host has OVS and a secret.
    pub metadata: Option<Arc<metadata::MetadataAgent>>,
}

fn hv_error(e: HvError) -> AgentError {
    match e {
        HvError::NotFound(m) => AgentError::NotFound(m),
        HvError::InvalidState(m) => AgentError::Failed(m),
        HvError::Unsupported(m) => AgentError::Failed(format!("unsupported: {m}")),
        // A QEMU that refused to start (bad image, bad device) will refuse again.
        HvError::Failed(m) => AgentError::Failed(m),
    }
}

impl Agent {
    pub fn new(
        config: AgentConfig,
        hv: Arc<dyn Hypervisor>,
        control: Arc<dyn ControlPlane>,
    ) -> Arc<Agent> {
        let metadata = match (
            &config.ovs_db,
            &config.metadata_url,
            &config.metadata_secret,
        ) {
            (Some(db), Some(url), Some(secret)) if !secret.is_empty() => {
                Some(metadata::MetadataAgent::new(metadata::MetadataConfig {
                    url: url.clone(),
                    secret: secret.clone(),
                    bridge: config.integration_bridge.clone(),
                    ovs_db: db.clone(),
                    ovs_netns: config.ovs_netns.clone(),
                    state_dir: config.state_dir.join("metadata"),
                    port: 80,
                }))
            }
            _ => None,
        };
        Arc::new(Agent {
            config,
            hv,
            control,
            metadata,
        })
    }

    /// Before a guest's NICs are plugged: its networks' metadata namespaces and proxies. A
    /// failure is logged, not fatal: the guest still boots, and has its config drive.
    async fn metadata_up(&self, spec: &GuestSpec) {
        if let Some(m) = &self.metadata {
            if let Err(e) = m.guest_up(spec).await {
                tracing::error!(server = %spec.uuid, error = %e, "could not set up the metadata proxy");
            }
        }
    }

    /// After a guest left: removes the metadata namespaces no guest needs any more.
    async fn metadata_gone(&self, uuid: &str) {
        if let Some(m) = &self.metadata {
            if let Err(e) = m.guest_gone(uuid).await {
                tracing::warn!(server = %uuid, error = %e, "could not remove a metadata namespace");
            }
        }
    }

    /// The agent of `ferrostack up`: in the control plane's process, attached to `compute`
    /// directly. Returns once the host is registered.
    pub async fn start_local(
        config: AgentConfig,
        hv: Arc<dyn Hypervisor>,
        compute: &Arc<ComputeService>,
    ) -> anyhow::Result<Arc<Agent>> {
        let agent = Agent::new(config, hv, LocalControlPlane::new(compute));
        compute.attach_agent(&agent.config.host, agent.clone());
        agent.start(None).await?;
        Ok(agent)
    }

    /// What this host has, for the Compute service and Placement.
    pub fn report(&self) -> HostReport {
        let info = self.hv.info();
        let res = self.hv.host_resources();
        let mut traits = vec![
            "COMPUTE_NET_ATTACH_INTERFACE".to_string(),
            "COMPUTE_VOLUME_ATTACH".to_string(),
        ];
        if info.accel == "kvm" {
            traits.push("HW_CPU_X86_VMX".to_string());
        }
        traits.sort();
        HostReport {
            host: self.config.host.clone(),
            hypervisor_type: info.hypervisor_type.clone(),
            hypervisor_version: info.version as i64,
            accel: info.accel.clone(),
            vcpus: res.vcpus as i64,
            memory_mb: res.memory_mb as i64,
            reserved_host_memory_mb: self.config.reserved_host_memory_mb,
            disk_gb: res.disk_gb as i64,
            cpu_allocation_ratio: self.config.cpu_allocation_ratio,
            ram_allocation_ratio: self.config.ram_allocation_ratio,
            disk_allocation_ratio: self.config.disk_allocation_ratio,
            cpu_info: serde_json::json!({"model": res.cpu_model, "accel": info.accel, "arch": "x86_64", "vendor": ""}).to_string(),
            host_ip: "127.0.0.1".into(),
            traits,
        }
    }

    /// Registers the host (`agent_url`: where a remote control plane reaches this agent),
    /// and starts the heartbeat and power-state sync. Returns once the host is registered.
    pub async fn start(self: &Arc<Self>, agent_url: Option<&str>) -> anyhow::Result<()> {
        std::fs::create_dir_all(self.base_dir())?;
        std::fs::create_dir_all(self.drive_dir())?;
        let _ = std::fs::remove_dir_all(self.snapshot_dir());
        match &self.metadata {
            Some(m) => {
                let running = self.hv.list().await.unwrap_or_default();
                if let Err(e) = m.restore(&running).await {
                    tracing::error!(error = %e, "could not restore the metadata proxies");
                }
            }
            None => tracing::info!(
                "no metadata proxy on this host (it needs [compute_agent] ovs_db and [compute] metadata_proxy_shared_secret)"
            ),
        }
        let report = self.report();
        self.control
            .register(&report, agent_url)
            .await
            .map_err(|e| anyhow::anyhow!("registering host {}: {e}", report.host))?;
        tracing::info!(host = %report.host, hypervisor = %report.hypervisor_type, accel = %report.accel,
            vcpus = report.vcpus, memory_mb = report.memory_mb, disk_gb = report.disk_gb, "compute host registered");
        let agent = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(interval) = agent.upgrade().map(|a| a.config.sync_interval.max(1)) else {
                    return;
                };
                tokio::time::sleep(Duration::from_secs(interval)).await;
                let Some(agent) = agent.upgrade() else {
                    return;
                };
                if !agent.control.alive() {
                    return;
                }
                if let Err(e) = agent.control.heartbeat(&agent.config.host).await {
                    tracing::warn!(error = %e, "heartbeat failed");
                }
                if let Err(e) = agent.sync().await {
                    tracing::warn!(error = %e, "power-state sync failed");
                }
            }
        });
        Ok(())
    }

    /// One pass of the periodic sync: power states of this host's servers, and VMs that no
    /// server owns any more.
    pub async fn sync(&self) -> Result<(), AgentError> {
        let servers = self.control.servers_on_host(&self.config.host).await?;
        let owned: std::collections::HashSet<&str> = servers.iter().map(String::as_str).collect();
        for uuid in &servers {
            if let Ok(Some(status)) = self.hv.status(uuid).await {
                self.control
                    .observe_power_state(uuid, status.power_state.code())
                    .await?;
            }
        }
        for uuid in self.hv.list().await.map_err(hv_error)? {
            if owned.contains(uuid.as_str()) {
                continue;
            }
            // Not on this host in the database: a server that was deleted (or whose boot
            // unwound) while this VM was being made. A workflow still running for it owns it.
            if !self.control.busy(&uuid).await? {
                tracing::warn!(server = %uuid, "removing a VM that no server owns");
                self.hv.destroy(&uuid).await.map_err(hv_error)?;
                let _ = std::fs::remove_file(self.drive_path(&uuid));
                self.metadata_gone(&uuid).await;
            }
        }
        Ok(())
    }

    fn base_dir(&self) -> PathBuf {
        self.config.state_dir.join("_base")
    }

    /// Snapshots on their way to the Image service; emptied at start (what is left there
    /// belongs to an attempt a crash interrupted, which its workflow runs again).
    fn snapshot_dir(&self) -> PathBuf {
        self.config.state_dir.join("snapshots")
    }

    fn drive_dir(&self) -> PathBuf {
        self.config.state_dir.join("config-drives")
    }

    fn drive_path(&self, uuid: &str) -> PathBuf {
        self.drive_dir().join(format!("{uuid}.iso"))
    }

    /// The cached base of an image, fetched once from the control plane (in `ferrostack up`
    /// a hard link to the Image service's file) to a temp name and renamed into place.
    async fn base_image(&self, image_id: &str) -> Result<PathBuf, AgentError> {
        let base = self.base_dir().join(image_id);
        if base.exists() {
            return Ok(base);
        }
        std::fs::create_dir_all(self.base_dir())
            .map_err(|e| AgentError::Transient(e.to_string()))?;
        let tmp = self
            .base_dir()
            .join(format!(".tmp-{image_id}-{}", uuid::Uuid::new_v4()));
        let fetched = self.control.fetch_image(image_id, &tmp).await;
        let placed = fetched.and_then(|()| {
            std::fs::rename(&tmp, &base).map_err(|e| AgentError::Transient(e.to_string()))
        });
        if placed.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        placed.map(|()| base)
    }

    /// Builds the config drive ISO (atomically: a crash leaves no half-written drive).
    async fn config_drive(&self, spec: &GuestSpec) -> Result<Option<PathBuf>, AgentError> {
        self.config_drive_at(spec, self.drive_path(&spec.uuid))
            .await
    }

    /// The config drive of a rescue system, apart from the server's own.
    fn rescue_drive_path(&self, uuid: &str) -> PathBuf {
        self.drive_dir().join(format!("{uuid}-rescue.iso"))
    }

    async fn config_drive_at(
        &self,
        spec: &GuestSpec,
        out: PathBuf,
    ) -> Result<Option<PathBuf>, AgentError> {
        let Some(files) = &spec.config_drive else {
            return Ok(None);
        };
        if out.exists() {
            return Ok(Some(out));
        }
        let scratch = self
            .drive_dir()
            .join(format!(".tmp-{}-{}", spec.uuid, uuid::Uuid::new_v4()));
        let result = build_iso(&scratch, files, &out).await;
        let _ = std::fs::remove_dir_all(&scratch);
        result.map(|_| Some(out))
    }

    /// The hypervisor's NIC for the guest's NIC of `port_id`.
    fn nic_spec(&self, spec: &GuestSpec, port_id: &str) -> Option<ferrostack_hypervisor::NicSpec> {
        let n = spec.nics.iter().find(|n| n.port_id == port_id)?;
        Some(ferrostack_hypervisor::NicSpec {
            port_id: n.port_id.clone(),
            mac: n.mac.clone(),
            backend: ferrostack_hypervisor::NicBackend::Tap {
                bridge: self.config.integration_bridge.clone(),
            },
            mtu: n.mtu,
            hotplug_slot: None,
        })
    }

    fn vm_spec(&self, spec: &GuestSpec, base: PathBuf, drive: Option<PathBuf>) -> VmSpec {
        let format = if spec.image_disk_format == "raw" {
            "raw"
        } else {
            "qcow2"
        };
        VmSpec {
            uuid: spec.uuid.clone(),
            name: spec.name.clone(),
            vcpus: spec.vcpus,
            memory_mb: spec.memory_mb,
            root_disk: DiskSpec {
                base_image: base,
                base_format: format.into(),
                size_gb: spec.root_gb,
            },
            config_drive: drive,
            nics: spec
                .nics
                .iter()
                .filter_map(|n| self.nic_spec(spec, &n.port_id))
                .collect(),
            iothreads: 1,
            boot: BootSource::Disk,
            rescue: None,
        }
    }
}

async fn build_iso(
    scratch: &Path,
    files: &[ferrostack_compute::host::DriveFile],
    out: &Path,
) -> Result<(), AgentError> {
    let tree = scratch.join("tree");
    for f in files {
        // Paths come from the control plane's own metadata builder; refuse anything that
        // would leave the tree all the same.
        if f.path.split('/').any(|p| p == ".." || p.is_empty()) {
            return Err(AgentError::Failed(format!(
                "bad config drive path {}",
                f.path
            )));
        }
        let p = tree.join(&f.path);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).map_err(|e| AgentError::Transient(e.to_string()))?;
        }
        std::fs::write(&p, &f.content).map_err(|e| AgentError::Transient(e.to_string()))?;
    }
    let iso = scratch.join("drive.iso");
    let status = tokio::process::Command::new("genisoimage")
        .args(["-quiet", "-J", "-r", "-V", "config-2", "-o"])
        .arg(&iso)
        .arg(&tree)
        .status()
        .await
        .map_err(|e| AgentError::Failed(format!("running genisoimage: {e}")))?;
    if !status.success() {
        return Err(AgentError::Failed(format!("genisoimage failed: {status}")));
    }
    std::fs::rename(&iso, out).map_err(|e| AgentError::Transient(e.to_string()))?;
    Ok(())
}

impl HostAgent for Agent {
    fn ensure<'a>(&'a self, spec: &'a GuestSpec) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move {
            let base = self.base_image(&spec.image_id).await?;
            let drive = self.config_drive(spec).await?;
            let vm = self.vm_spec(spec, base, drive);
            self.metadata_up(spec).await;
            self.hv.create(&vm).await.map_err(hv_error)
        })
    }

    fn destroy<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move {
            self.hv.destroy(uuid).await.map_err(hv_error)?;
            for drive in [self.drive_path(uuid), self.rescue_drive_path(uuid)] {
                match std::fs::remove_file(drive) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(AgentError::Transient(e.to_string())),
                }
            }
            self.metadata_gone(uuid).await;
            Ok(())
        })
    }

    fn power<'a>(&'a self, uuid: &'a str, op: PowerOp) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move {
            let timeout = Duration::from_secs(self.config.shutdown_timeout);
            let r = match op {
                PowerOp::Start => self.hv.power_on(uuid).await,
                PowerOp::Stop => self.hv.power_off(uuid, timeout).await,
                PowerOp::RebootSoft => self.hv.reboot(uuid, false).await,
                PowerOp::RebootHard => self.hv.reboot(uuid, true).await,
                PowerOp::Pause => self.hv.pause(uuid).await,
                PowerOp::Unpause => self.hv.unpause(uuid).await,
                PowerOp::Suspend => self.hv.suspend(uuid).await,
                PowerOp::Resume => self.hv.resume(uuid).await,
            };
            r.map_err(hv_error)
        })
    }

    fn power_state<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<Option<i64>, AgentError>> {
        Box::pin(async move {
            Ok(self
                .hv
                .status(uuid)
                .await
                .map_err(hv_error)?
                .map(|s| s.power_state.code()))
        })
    }

    fn console<'a>(
        &'a self,
        uuid: &'a str,
        max_bytes: usize,
    ) -> BoxFut<'a, Result<String, AgentError>> {
        Box::pin(async move { self.hv.console_log(uuid, max_bytes).await.map_err(hv_error) })
    }

    fn snapshot<'a>(
        &'a self,
        uuid: &'a str,
        image_id: &'a str,
    ) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move {
            std::fs::create_dir_all(self.snapshot_dir())
                .map_err(|e| AgentError::Transient(e.to_string()))?;
            // A fresh name per attempt: a crashed attempt's partial file is never uploaded.
            let file = self.snapshot_dir().join(format!(
                "{image_id}-{}.qcow2",
                uuid::Uuid::new_v4().simple()
            ));
            let result = async {
                self.hv.snapshot(uuid, &file).await.map_err(hv_error)?;
                self.control.upload_image(image_id, &file).await
            }
            .await;
            let _ = std::fs::remove_file(&file);
            result
        })
    }

    fn resize<'a>(
        &'a self,
        spec: &'a GuestSpec,
        start: bool,
    ) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move {
            let timeout = Duration::from_secs(self.config.shutdown_timeout);
            self.hv
                .power_off(&spec.uuid, timeout)
                .await
                .map_err(hv_error)?;
            let base = self.base_image(&spec.image_id).await?;
            let drive = self.drive_path(&spec.uuid);
            let vm = self.vm_spec(spec, base, drive.exists().then_some(drive));
            self.metadata_up(spec).await;
            self.hv.resize(&vm).await.map_err(hv_error)?;
            if start {
                self.hv.power_on(&spec.uuid).await.map_err(hv_error)?;
            }
            Ok(())
        })
    }

    fn confirm_resize<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move { self.hv.confirm_resize(uuid).await.map_err(hv_error) })
    }

    fn revert_resize<'a>(
        &'a self,
        uuid: &'a str,
        start: bool,
    ) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move {
            let timeout = Duration::from_secs(self.config.shutdown_timeout);
            self.hv.power_off(uuid, timeout).await.map_err(hv_error)?;
            self.hv.revert_resize(uuid).await.map_err(hv_error)?;
            if start {
                self.hv.power_on(uuid).await.map_err(hv_error)?;
            }
            Ok(())
        })
    }

    fn rescue<'a>(&'a self, rescue: &'a GuestSpec) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move {
            let base = self.base_image(&rescue.image_id).await?;
            let drive = self
                .config_drive_at(rescue, self.rescue_drive_path(&rescue.uuid))
                .await?;
            let disk = self.vm_spec(rescue, base, None).root_disk;
            self.hv
                .rescue(&rescue.uuid, &disk, drive.as_deref())
                .await
                .map_err(hv_error)
        })
    }

    fn unrescue<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move {
            self.hv.unrescue(uuid).await.map_err(hv_error)?;
            match std::fs::remove_file(self.rescue_drive_path(uuid)) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(AgentError::Transient(e.to_string())),
            }
        })
    }

    fn attach_nic<'a>(
        &'a self,
        spec: &'a GuestSpec,
        port_id: &'a str,
    ) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move {
            let nic = self.nic_spec(spec, port_id).ok_or_else(|| {
                AgentError::Failed(format!("port {port_id} is not a NIC of the server"))
            })?;
            // The network's metadata proxy before the guest asks it anything.
            self.metadata_up(spec).await;
            self.hv.attach_nic(&spec.uuid, &nic).await.map_err(hv_error)
        })
    }

    fn detach_nic<'a>(
        &'a self,
        spec: &'a GuestSpec,
        port_id: &'a str,
    ) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move {
            self.hv
                .detach_nic(&spec.uuid, port_id)
                .await
                .map_err(hv_error)?;
            if let Some(m) = &self.metadata {
                if let Err(e) = m.guest_changed(spec).await {
                    tracing::warn!(server = %spec.uuid, error = %e, "could not update the metadata proxy");
                }
            }
            Ok(())
        })
    }

    fn servers<'a>(&'a self) -> BoxFut<'a, Result<Vec<String>, AgentError>> {
        Box::pin(async move { self.hv.list().await.map_err(hv_error) })
    }

    fn serial_console<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<SerialStream, AgentError>> {
        Box::pin(async move {
            let path = self.hv.serial_socket(uuid).await.map_err(hv_error)?;
            let stream = tokio::net::UnixStream::connect(&path)
                .await
                .map_err(|e| AgentError::Transient(format!("serial console of {uuid}: {e}")))?;
            Ok(Box::new(stream) as SerialStream)
        })
    }
}
