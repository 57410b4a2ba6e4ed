//! Resize and rescue for the QEMU driver: the operations that change what a VM boots
//! from rather than its power state.
//!
//! Both keep the VM's files crash-safe the way create does: every file that replaces
//! another is written next to it and renamed, and `spec.json` is the commit point. A
//! resize keeps the old disk and spec beside the new ones (`*.pre-resize`) until a
//! confirm deletes them or a revert renames them back; a repeated resize keeps the first
//! backup, so a retry after a crash never overwrites the original with a half-resized
//! copy. A rescue boots a fresh overlay on the rescue image first and the VM's own disk
//! second; the spec records it, so a crash after the spec is written resumes into the
//! rescue system and an unrescue always finds what to remove.

use std::path::Path;

use super::{io_err, process, remove_if_there, Op, QemuDriver, REBOOT_SHUTDOWN};
use crate::{DiskSpec, HvError, RescueSpec, VmSpec};

/// The rescue system's disk, an overlay on the rescue image, in the VM's directory.
pub(super) const RESCUE_DISK: &str = "rescue.qcow2";
/// The root disk and spec a resize replaced, kept for a revert.
const DISK_BEFORE_RESIZE: &str = "disk.qcow2.pre-resize";
const SPEC_BEFORE_RESIZE: &str = "spec.json.pre-resize";

/// Writes `spec` as the VM's description: to a temp file, then renamed over.
pub(super) fn write_spec(dir: &Path, spec: &VmSpec) -> Result<(), HvError> {
    let text = serde_json::to_string_pretty(spec).map_err(|e| HvError::Failed(e.to_string()))?;
    let tmp = dir.join("spec.json.tmp");
    std::fs::write(&tmp, text).map_err(io_err(&tmp))?;
    let path = dir.join("spec.json");
    std::fs::rename(&tmp, &path).map_err(io_err(&path))
}

/// Copies `from` to `to` through a temp file, unless `to` is already there.
fn keep_copy(from: &Path, to: &Path) -> Result<(), HvError> {
    if to.exists() {
        return Ok(());
    }
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).map_err(io_err(&tmp))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, to).map_err(io_err(to))
}

/// Renames `from` back to `to` when it is there (a revert done twice finds nothing).
fn put_back(from: &Path, to: &Path) -> Result<(), HvError> {
    if !from.exists() {
        return Ok(());
    }
    std::fs::rename(from, to).map_err(io_err(to))
}

impl QemuDriver {
    pub(super) async fn resize_vm(&self, spec: &VmSpec) -> Result<(), HvError> {
        let lock = self.lock(&spec.uuid);
        let _held = lock.lock().await;
        let dir = self.dir_checked(&spec.uuid)?;
        let seen = self.settle(&dir, &spec.uuid).await?;
        if seen.pid.is_some() || seen.saved {
            return Err(HvError::InvalidState("resize needs a stopped VM".into()));
        }
        // Checked before anything changes: a spec QEMU cannot run is refused untouched.
        super::command_line(spec, &dir, &self.host, false)?;
        keep_copy(&dir.join("disk.qcow2"), &dir.join(DISK_BEFORE_RESIZE))?;
        keep_copy(&dir.join("spec.json"), &dir.join(SPEC_BEFORE_RESIZE))?;
        super::disk::grow(&dir.join("disk.qcow2"), spec.root_disk.size_gb).await?;
        let mut spec = spec.clone();
        // A resize never changes what the VM boots from.
        spec.rescue = self.spec_of(&dir)?.rescue;
        write_spec(&dir, &spec)
    }

    pub(super) async fn confirm_resize_vm(&self, uuid: &str) -> Result<(), HvError> {
        let lock = self.lock(uuid);
        let _held = lock.lock().await;
        let dir = self.dir_checked(uuid)?;
        remove_if_there(&dir.join(DISK_BEFORE_RESIZE))?;
        remove_if_there(&dir.join(SPEC_BEFORE_RESIZE))
    }

    pub(super) async fn revert_resize_vm(&self, uuid: &str) -> Result<(), HvError> {
        let lock = self.lock(uuid);
        let _held = lock.lock().await;
        let dir = self.dir_checked(uuid)?;
        let seen = self.settle(&dir, uuid).await?;
        if let Some(pid) = seen.pid {
            // The guest ran on the new disk; the old one is what the caller wants back.
            self.hard_stop(&dir, uuid, pid).await?;
        }
        remove_if_there(&dir.join(super::state::SAVED))?;
        // Each rename is whole, so a crash between them is finished by the next revert.
        put_back(&dir.join(DISK_BEFORE_RESIZE), &dir.join("disk.qcow2"))?;
        put_back(&dir.join(SPEC_BEFORE_RESIZE), &dir.join("spec.json"))
    }

    pub(super) async fn rescue_vm(
        &self,
        uuid: &str,
        disk: &DiskSpec,
        config_drive: Option<&Path>,
    ) -> Result<(), HvError> {
        let lock = self.lock(uuid);
        let _held = lock.lock().await;
        let dir = self.dir_checked(uuid)?;
        let mut spec = self.spec_of(&dir)?;
        if spec.rescue.is_some() {
            // Already rescued (a retry): make sure it runs.
            return self
                .operate_locked(&dir, uuid, Op::Create, REBOOT_SHUTDOWN)
                .await;
        }
        spec.rescue = Some(RescueSpec {
            disk: disk.clone(),
            config_drive: config_drive.map(Path::to_path_buf),
        });
        super::command_line(&spec, &dir, &self.host, false)?;
        let seen = self.settle(&dir, uuid).await?;
        if let Some(pid) = seen.pid {
            self.hard_stop(&dir, uuid, pid).await?;
        }
        let rescue_disk = dir.join(RESCUE_DISK);
        remove_if_there(&rescue_disk)?;
        super::disk::create_overlay_at(&rescue_disk, disk).await?;
        write_spec(&dir, &spec)?;
        self.boot(&dir, uuid, None).await
    }

    pub(super) async fn unrescue_vm(&self, uuid: &str) -> Result<(), HvError> {
        let lock = self.lock(uuid);
        let _held = lock.lock().await;
        let dir = self.dir_checked(uuid)?;
        let mut spec = self.spec_of(&dir)?;
        if spec.rescue.is_none() {
            // Not rescued, or a retry after the spec was written: finish and make sure the
            // VM runs from its own disk, as an unrescue leaves it.
            remove_if_there(&dir.join(RESCUE_DISK))?;
            return self
                .operate_locked(&dir, uuid, Op::Create, REBOOT_SHUTDOWN)
                .await;
        }
        if let Some(pid) = process::live_pid(&dir, uuid) {
            self.hard_stop(&dir, uuid, pid).await?;
        }
        spec.rescue = None;
        write_spec(&dir, &spec)?;
        remove_if_there(&dir.join(RESCUE_DISK))?;
        self.boot(&dir, uuid, None).await
    }
}
