//! The fake driver: VMs are records in memory that follow the same power-state table as the
//! QEMU driver ([`crate::rules`]: pause needs a running VM, resume a suspended one...) and
//! refuse the same specs, so workflow tests mean something, and cost nothing, so scale
//! tests can run hundreds of servers on two cores. A per-call delay imitates a slower
//! hypervisor, and a failure can be armed for one call kind. A running VM's serial console
//! is a Unix socket that greets with a login prompt and echoes what it is sent.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::rules::{self, Action, Op};
use crate::{
    BoxFut, DiskSpec, HostResources, HvError, Hypervisor, HypervisorInfo, PowerState, VmSpec,
    VmStatus,
};

struct FakeVm {
    spec: VmSpec,
    state: PowerState,
    console: String,
}

pub struct FakeDriver {
    resources: HostResources,
    vms: Mutex<HashMap<String, FakeVm>>,
    delay: Mutex<Duration>,
    /// Calls named here fail (e.g. `create`), for tests of the unwinding paths.
    failing: Mutex<Vec<String>>,
    /// The spec a resized VM had before, kept until the resize is confirmed or reverted.
    resized_from: Mutex<HashMap<String, VmSpec>>,
    /// The rescue disk of each rescued VM.
    rescued: Mutex<HashMap<String, DiskSpec>>,
    /// The serial console socket of each VM asked for one, and the task serving it.
    serials: Mutex<HashMap<String, (PathBuf, tokio::task::JoinHandle<()>)>>,
}

impl FakeDriver {
    pub fn new(resources: HostResources) -> FakeDriver {
        FakeDriver {
            resources,
            vms: Mutex::new(HashMap::new()),
            delay: Mutex::new(Duration::ZERO),
            failing: Mutex::new(Vec::new()),
            resized_from: Mutex::new(HashMap::new()),
            rescued: Mutex::new(HashMap::new()),
            serials: Mutex::new(HashMap::new()),
        }
    }

    /// Serves a fake guest's serial port at a new socket: a login prompt, then an echo.
    fn serve_serial(uuid: &str) -> Result<(PathBuf, tokio::task::JoinHandle<()>), HvError> {
        let path = std::env::temp_dir().join(format!(
            "fs-fake-serial-{}-{}.sock",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let listener = tokio::net::UnixListener::bind(&path)
            .map_err(|e| HvError::Failed(format!("serial socket for {uuid}: {e}")))?;
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    if conn.write_all(b"fake-guest login: ").await.is_err() {
                        return;
                    }
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = conn.read(&mut buf).await {
                        if n == 0 || conn.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Ok((path, task))
    }

    fn drop_serial(&self, uuid: &str) {
        if let Some((path, task)) = self
            .serials
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uuid)
        {
            task.abort();
            let _ = std::fs::remove_file(path);
        }
    }

    pub fn set_delay(&self, d: Duration) {
        *self.delay.lock().unwrap_or_else(|e| e.into_inner()) = d;
    }

    /// Makes every call of `op` (`create`, `destroy`, `power_off`, ...) fail until cleared.
    pub fn fail(&self, op: &str, on: bool) {
        let mut f = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        f.retain(|o| o != op);
        if on {
            f.push(op.to_string());
        }
    }

    /// Simulates a guest that shut itself down (or a VM process that died).
    pub fn guest_shutdown(&self, uuid: &str) {
        if let Some(vm) = self.lock().get_mut(uuid) {
            vm.state = PowerState::Shutdown;
        }
    }

    /// Whether a VM exists and runs (for tests).
    pub async fn status_is_running(&self, uuid: &str) -> bool {
        self.lock()
            .get(uuid)
            .is_some_and(|vm| vm.state == PowerState::Running)
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// The disk a rescued VM boots from (for tests).
    pub fn rescue_disk_of(&self, uuid: &str) -> Option<DiskSpec> {
        self.rescued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uuid)
            .cloned()
    }

    /// The spec a VM was created with (for tests: which image, how much memory).
    pub fn spec_of(&self, uuid: &str) -> Option<VmSpec> {
        self.lock().get(uuid).map(|vm| vm.spec.clone())
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<String, VmSpec>> {
        self.resized_from.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, FakeVm>> {
        self.vms.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn enter(&self, op: &str) -> Result<(), HvError> {
        let d = *self.delay.lock().unwrap_or_else(|e| e.into_inner());
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
        if self
            .failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|o| o == op)
        {
            return Err(HvError::Failed(format!("fake {op} failure")));
        }
        Ok(())
    }

    /// Carries out `op` by the rules table: the record moves to the step's state, and a
    /// step that boots the guest leaves the guest's ready line on the console.
    fn apply(&self, uuid: &str, op: Op) -> Result<(), HvError> {
        let mut vms = self.lock();
        let vm = vms
            .get_mut(uuid)
            .ok_or_else(|| HvError::NotFound(uuid.to_string()))?;
        let step = rules::plan(op, vm.state)?;
        if matches!(
            step.action,
            Action::Boot | Action::Reset | Action::AcpiReboot
        ) {
            vm.console.push_str(&format!(
                "ferrostack-guest ready: hostname={} ip=none\n",
                vm.spec.name
            ));
        }
        vm.state = step.to;
        Ok(())
    }

    async fn run(&self, name: &str, uuid: &str, op: Op) -> Result<(), HvError> {
        self.enter(name).await?;
        self.apply(uuid, op)
    }
}

impl Hypervisor for FakeDriver {
    fn info(&self) -> HypervisorInfo {
        HypervisorInfo {
            hypervisor_type: "fake".into(),
            accel: "fake".into(),
            version: 1000,
            hostname: String::new(),
        }
    }

    fn host_resources(&self) -> HostResources {
        self.resources.clone()
    }

    fn create<'a>(&'a self, spec: &'a VmSpec) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            self.enter("create").await?;
            crate::check_spec(spec)?;
            self.lock()
                .entry(spec.uuid.clone())
                .or_insert_with(|| FakeVm {
                    spec: spec.clone(),
                    state: PowerState::Shutdown,
                    console: String::new(),
                });
            self.apply(&spec.uuid, Op::Create)
        })
    }

    fn destroy<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            self.enter("destroy").await?;
            self.lock().remove(uuid);
            self.drop_serial(uuid);
            self.kept().remove(uuid);
            self.rescued
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(uuid);
            Ok(())
        })
    }

    fn serial_socket<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<PathBuf, HvError>> {
        Box::pin(async move {
            self.enter("serial_socket").await?;
            match self.lock().get(uuid) {
                None => return Err(HvError::NotFound(uuid.to_string())),
                Some(vm) if vm.state != PowerState::Running => {
                    return Err(HvError::InvalidState(format!("VM {uuid} is not running")))
                }
                Some(_) => {}
            }
            let mut serials = self.serials.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((path, _)) = serials.get(uuid) {
                return Ok(path.clone());
            }
            let (path, task) = Self::serve_serial(uuid)?;
            serials.insert(uuid.to_string(), (path.clone(), task));
            Ok(path)
        })
    }

    fn attach_nic<'a>(
        &'a self,
        uuid: &'a str,
        nic: &'a crate::NicSpec,
    ) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            self.enter("attach_nic").await?;
            crate::check_nic(nic)?;
            let mut vms = self.lock();
            let vm = vms
                .get_mut(uuid)
                .ok_or_else(|| HvError::NotFound(uuid.to_string()))?;
            if vm.state == PowerState::Suspended {
                return Err(HvError::InvalidState(format!("VM {uuid} is suspended")));
            }
            if !vm.spec.nics.iter().any(|n| n.port_id == nic.port_id) {
                vm.spec.nics.push(nic.clone());
            }
            Ok(())
        })
    }

    fn detach_nic<'a>(
        &'a self,
        uuid: &'a str,
        port_id: &'a str,
    ) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            self.enter("detach_nic").await?;
            let mut vms = self.lock();
            let vm = vms
                .get_mut(uuid)
                .ok_or_else(|| HvError::NotFound(uuid.to_string()))?;
            vm.spec.nics.retain(|n| n.port_id != port_id);
            Ok(())
        })
    }

    fn resize<'a>(&'a self, spec: &'a VmSpec) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            self.enter("resize").await?;
            let mut vms = self.lock();
            let vm = vms
                .get_mut(&spec.uuid)
                .ok_or_else(|| HvError::NotFound(spec.uuid.clone()))?;
            if vm.state == PowerState::Running {
                return Err(HvError::InvalidState("resize needs a stopped VM".into()));
            }
            self.kept()
                .entry(spec.uuid.clone())
                .or_insert_with(|| vm.spec.clone());
            vm.spec = spec.clone();
            Ok(())
        })
    }

    fn rescue<'a>(
        &'a self,
        uuid: &'a str,
        disk: &'a DiskSpec,
        _config_drive: Option<&'a Path>,
    ) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            self.enter("rescue").await?;
            let mut vms = self.lock();
            let vm = vms
                .get_mut(uuid)
                .ok_or_else(|| HvError::NotFound(uuid.to_string()))?;
            let mut rescued = self.rescued.lock().unwrap_or_else(|e| e.into_inner());
            if !rescued.contains_key(uuid) {
                rescued.insert(uuid.to_string(), disk.clone());
                vm.console
                    .push_str("ferrostack-guest ready: rescue system\n");
            }
            vm.state = PowerState::Running;
            Ok(())
        })
    }

    fn unrescue<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            self.enter("unrescue").await?;
            let mut vms = self.lock();
            let vm = vms
                .get_mut(uuid)
                .ok_or_else(|| HvError::NotFound(uuid.to_string()))?;
            let mut rescued = self.rescued.lock().unwrap_or_else(|e| e.into_inner());
            rescued.remove(uuid);
            vm.state = PowerState::Running;
            Ok(())
        })
    }

    fn confirm_resize<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            self.enter("confirm_resize").await?;
            self.kept().remove(uuid);
            Ok(())
        })
    }

    fn revert_resize<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            self.enter("revert_resize").await?;
            let Some(old) = self.kept().remove(uuid) else {
                return Ok(());
            };
            let mut vms = self.lock();
            let vm = vms
                .get_mut(uuid)
                .ok_or_else(|| HvError::NotFound(uuid.to_string()))?;
            if vm.state == PowerState::Running {
                self.kept().insert(uuid.to_string(), old);
                return Err(HvError::InvalidState("revert needs a stopped VM".into()));
            }
            vm.spec = old;
            Ok(())
        })
    }

    fn power_on<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(self.run("power_on", uuid, Op::PowerOn))
    }

    fn power_off<'a>(
        &'a self,
        uuid: &'a str,
        _timeout: Duration,
    ) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(self.run("power_off", uuid, Op::PowerOff))
    }

    fn reboot<'a>(&'a self, uuid: &'a str, hard: bool) -> BoxFut<'a, Result<(), HvError>> {
        let op = if hard { Op::RebootHard } else { Op::RebootSoft };
        Box::pin(self.run("reboot", uuid, op))
    }

    fn pause<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(self.run("pause", uuid, Op::Pause))
    }

    fn unpause<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(self.run("unpause", uuid, Op::Unpause))
    }

    fn suspend<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(self.run("suspend", uuid, Op::Suspend))
    }

    fn resume<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(self.run("resume", uuid, Op::Resume))
    }

    fn status<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<Option<VmStatus>, HvError>> {
        Box::pin(async move {
            Ok(self.lock().get(uuid).map(|vm| VmStatus {
                power_state: vm.state,
                pid: None,
            }))
        })
    }

    fn list<'a>(&'a self) -> BoxFut<'a, Result<Vec<String>, HvError>> {
        Box::pin(async move { Ok(self.lock().keys().cloned().collect()) })
    }

    fn console_log<'a>(
        &'a self,
        uuid: &'a str,
        max_bytes: usize,
    ) -> BoxFut<'a, Result<String, HvError>> {
        Box::pin(async move {
            let vms = self.lock();
            let vm = vms
                .get(uuid)
                .ok_or_else(|| HvError::NotFound(uuid.to_string()))?;
            let c = &vm.console;
            let mut start = c.len().saturating_sub(max_bytes);
            while !c.is_char_boundary(start) {
                start += 1;
            }
            Ok(c[start..].to_string())
        })
    }

    fn snapshot<'a>(&'a self, uuid: &'a str, dest: &'a Path) -> BoxFut<'a, Result<(), HvError>> {
        Box::pin(async move {
            self.enter("snapshot").await?;
            let base = {
                let vms = self.lock();
                let vm = vms
                    .get(uuid)
                    .ok_or_else(|| HvError::NotFound(uuid.to_string()))?;
                vm.spec.root_disk.base_image.clone()
            };
            std::fs::copy(&base, dest)
                .map_err(|e| HvError::Failed(format!("fake snapshot: {e}")))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BootSource, DiskSpec};

    fn spec(uuid: &str) -> VmSpec {
        VmSpec {
            uuid: uuid.into(),
            name: "instance-00000001".into(),
            vcpus: 1,
            memory_mb: 128,
            root_disk: DiskSpec {
                base_image: "/nonexistent".into(),
                base_format: "qcow2".into(),
                size_gb: 1,
            },
            config_drive: None,
            nics: vec![],
            iothreads: 1,
            boot: BootSource::Disk,
            rescue: None,
        }
    }

    fn driver() -> FakeDriver {
        FakeDriver::new(HostResources {
            vcpus: 2,
            memory_mb: 4096,
            disk_gb: 10,
            cpu_model: "fake".into(),
        })
    }

    async fn power(d: &FakeDriver, uuid: &str) -> PowerState {
        d.status(uuid).await.unwrap().unwrap().power_state
    }

    fn refused(r: Result<(), HvError>) -> bool {
        matches!(r, Err(HvError::InvalidState(_)))
    }

    #[tokio::test]
    async fn follows_the_state_rules() {
        let d = driver();
        d.create(&spec("a")).await.unwrap();
        d.create(&spec("a")).await.unwrap();
        assert_eq!(d.count(), 1);
        d.unpause("a").await.unwrap(); // running: nothing to do
        d.resume("a").await.unwrap(); // likewise
        assert_eq!(power(&d, "a").await, PowerState::Running);
        d.pause("a").await.unwrap();
        assert_eq!(power(&d, "a").await, PowerState::Paused);
        assert!(refused(d.resume("a").await));
        assert!(refused(d.power_on("a").await));
        d.unpause("a").await.unwrap();
        d.power_off("a", Duration::ZERO).await.unwrap();
        d.power_off("a", Duration::ZERO).await.unwrap();
        assert!(refused(d.pause("a").await));
        d.power_on("a").await.unwrap();
        d.suspend("a").await.unwrap();
        assert!(refused(d.power_on("a").await));
        assert!(refused(d.power_off("a", Duration::ZERO).await));
        d.resume("a").await.unwrap();
        assert!(d
            .console_log("a", 1000)
            .await
            .unwrap()
            .contains("ferrostack-guest ready"));
        d.fail("destroy", true);
        assert!(d.destroy("a").await.is_err());
        d.fail("destroy", false);
        d.destroy("a").await.unwrap();
        d.destroy("a").await.unwrap();
        assert!(d.status("a").await.unwrap().is_none());
        assert!(matches!(d.pause("a").await, Err(HvError::NotFound(_))));
    }

    #[tokio::test]
    async fn create_brings_any_state_back_to_running() {
        let d = driver();
        d.create(&spec("a")).await.unwrap();
        let boots = |log: String| log.matches("ferrostack-guest ready").count();
        d.suspend("a").await.unwrap();
        d.create(&spec("a")).await.unwrap();
        assert_eq!(power(&d, "a").await, PowerState::Running);
        d.pause("a").await.unwrap();
        d.create(&spec("a")).await.unwrap();
        assert_eq!(power(&d, "a").await, PowerState::Running);
        // Resumed and continued, not booted again: the guest kept its memory.
        assert_eq!(boots(d.console_log("a", 1 << 16).await.unwrap()), 1);
        d.pause("a").await.unwrap();
        d.reboot("a", false).await.unwrap();
        assert_eq!(power(&d, "a").await, PowerState::Running);
        assert_eq!(boots(d.console_log("a", 1 << 16).await.unwrap()), 2);
    }

    #[tokio::test]
    async fn a_nic_without_a_valid_mac_is_refused_before_anything_is_made() {
        let d = driver();
        let mut s = spec("a");
        s.nics.push(crate::NicSpec {
            port_id: "p0".into(),
            mac: "fa:16:3e:00:01".into(),
            backend: crate::NicBackend::Tap {
                bridge: "br-int".into(),
            },
            mtu: None,
            hotplug_slot: None,
        });
        assert!(matches!(
            d.create(&s).await,
            Err(HvError::Unsupported(m)) if m.contains("p0")
        ));
        assert_eq!(d.count(), 0);
    }
}
