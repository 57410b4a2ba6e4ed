//! A VM's root disk: the qcow2 overlay on the cached base image, and the host cache mode
//! QEMU opens it with.
//!
//! `cache=none` (O_DIRECT) keeps guest writes out of the host's page cache, as Nova does,
//! but on a file system without O_DIRECT (ramfs, tmpfs before Linux 6.6, some FUSE and
//! network file systems) QEMU fails to open the disk at all. The driver probes the
//! instances directory once and falls back to `cache=writeback` there.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde_json::Value;

use crate::{DiskSpec, HvError, VmSpec};

/// The `cache=` QEMU opens root disks with in `dir`.
pub fn cache_mode(dir: &Path) -> &'static str {
    if direct_io_works(dir) {
        "none"
    } else {
        "writeback"
    }
}

/// Whether a file in `dir` can be opened with O_DIRECT and written through it (some file
/// systems accept the flag and fail the write).
pub fn direct_io_works(dir: &Path) -> bool {
    let probe = dir.join(format!(".direct-io-probe-{}", uuid::Uuid::new_v4()));
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(&probe);
    let works = opened.is_ok_and(|mut f| {
        // O_DIRECT wants a buffer aligned to the logical block size; 4 KiB fits all.
        let buf = vec![0u8; 8192];
        let at = buf.as_ptr().align_offset(4096);
        f.write_all(&buf[at..at + 4096]).is_ok()
    });
    let _ = std::fs::remove_file(&probe);
    works
}

/// Creates `disk.qcow2` in `dir`: an overlay on the base image, grown to the flavor's
/// root size when that is larger than the image.
pub async fn create_overlay(dir: &Path, spec: &VmSpec) -> Result<(), HvError> {
    create_overlay_at(&dir.join("disk.qcow2"), &spec.root_disk).await
}

/// Creates the qcow2 overlay `path` on `disk`'s base, grown to its size.
pub async fn create_overlay_at(path: &Path, disk: &DiskSpec) -> Result<(), HvError> {
    let base = &disk.base_image;
    let virtual_size = image_size(base).await?;
    let wanted = disk.size_gb << 30;
    let mut cmd = tokio::process::Command::new("qemu-img");
    cmd.args(["create", "-q", "-f", "qcow2", "-F", &disk.base_format, "-b"])
        .arg(base)
        .arg(path);
    if wanted > virtual_size {
        cmd.arg(wanted.to_string());
    }
    let out = cmd
        .output()
        .await
        .map_err(|e| HvError::Failed(format!("qemu-img: {e}")))?;
    if !out.status.success() {
        return Err(HvError::Failed(format!(
            "creating the disk: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Grows the qcow2 `path` to `size_gb` when it is smaller (disks never shrink).
pub async fn grow(path: &Path, size_gb: u64) -> Result<(), HvError> {
    let wanted = size_gb << 30;
    if wanted <= image_size(path).await? {
        return Ok(());
    }
    let out = tokio::process::Command::new("qemu-img")
        .args(["resize", "-q"])
        .arg(path)
        .arg(wanted.to_string())
        .output()
        .await
        .map_err(|e| HvError::Failed(format!("qemu-img: {e}")))?;
    if !out.status.success() {
        return Err(HvError::Failed(format!(
            "growing the disk: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

async fn image_size(image: &Path) -> Result<u64, HvError> {
    let info = tokio::process::Command::new("qemu-img")
        .args(["info", "--output=json", "-U"])
        .arg(image)
        .output()
        .await
        .map_err(|e| HvError::Failed(format!("qemu-img: {e}")))?;
    serde_json::from_slice::<Value>(&info.stdout)
        .ok()
        .and_then(|v| v.get("virtual-size").and_then(Value::as_u64))
        .ok_or_else(|| HvError::Failed(format!("cannot read base image {}", image.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fs_type(path: &Path) -> i64 {
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: statfs fills the struct we pass; the path is a valid C string.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::statfs(c.as_ptr(), &mut st) }, 0);
        st.f_type as i64
    }

    /// Runs `f` on a fresh ramfs (a file system without O_DIRECT) mounted at `dir` in a
    /// mount namespace of this thread alone, so nothing is mounted for anyone else and the
    /// mount goes with the thread.
    fn on_ramfs<T: Send + 'static>(dir: PathBuf, f: fn(&Path) -> T) -> T {
        std::thread::spawn(move || {
            let c = |s: &str| std::ffi::CString::new(s).unwrap();
            let (root, target, ramfs) = (c("/"), c(dir.to_str().unwrap()), c("ramfs"));
            // SAFETY: plain syscalls on valid C strings; they change this thread's mount
            // namespace only (unshare(CLONE_NEWNS) gives the calling thread its own).
            unsafe {
                assert_eq!(
                    libc::unshare(libc::CLONE_NEWNS),
                    0,
                    "unshare(CLONE_NEWNS) needs root: {}",
                    std::io::Error::last_os_error()
                );
                let private = libc::MS_REC | libc::MS_PRIVATE;
                assert_eq!(
                    libc::mount(
                        std::ptr::null(),
                        root.as_ptr(),
                        std::ptr::null(),
                        private,
                        std::ptr::null()
                    ),
                    0
                );
                assert_eq!(
                    libc::mount(
                        ramfs.as_ptr(),
                        target.as_ptr(),
                        ramfs.as_ptr(),
                        0,
                        std::ptr::null()
                    ),
                    0,
                    "mounting ramfs: {}",
                    std::io::Error::last_os_error()
                );
            }
            // RAMFS_MAGIC (libc does not name it).
            assert_eq!(fs_type(&dir), 0x8584_58f6);
            f(&dir)
        })
        .join()
        .unwrap()
    }

    #[test]
    fn a_file_system_without_o_direct_falls_back_to_writeback() {
        let dir = std::env::temp_dir().join(format!("fs-cache-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let (mode, left) = on_ramfs(dir.clone(), |d| {
            (cache_mode(d), std::fs::read_dir(d).unwrap().count())
        });
        std::fs::remove_dir(&dir).unwrap();
        assert_eq!(mode, "writeback");
        assert_eq!(left, 0, "the probe left its file behind");
    }

    #[test]
    fn a_disk_file_system_keeps_cache_none() {
        // The source tree is on a disk file system (ext4, xfs...), all of which do O_DIRECT.
        // Read at run time: a cached test binary may have been built in another checkout.
        let dir =
            std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo"));
        assert_eq!(cache_mode(&dir), "none");
    }
}
