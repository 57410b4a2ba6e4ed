//! A VM's QEMU process: finding it, waiting for it to end, and launching it within a
//! deadline.
//!
//! QEMU removes its own pidfile (`qemu.pid`) as it exits, before it has closed the disk
//! image and dropped its lock on it; a new QEMU started in that gap fails with "failed to
//! get write lock". So the driver keeps its own record of the pid (`process.pid`), which
//! QEMU never touches, and a VM counts as stopped only when that process is gone.
//!
//! A launch that hangs (QEMU stuck before it daemonizes, or a QMP socket that never
//! answers) is killed at the deadline, its runtime files removed, and what QEMU wrote to
//! stderr is kept in the error, since that is usually the only clue.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::{qmp, HvError};

/// QEMU's own pidfile, removed by QEMU as it exits.
pub const QEMU_PIDFILE: &str = "qemu.pid";
/// The driver's record of the pid, kept until the next launch.
pub const PIDFILE: &str = "process.pid";
/// What QEMU writes to stderr while it starts (it goes to /dev/null once daemonized).
const START_LOG: &str = "qemu-start.log";

const POLL: Duration = Duration::from_millis(20);
/// How long a process may take to die after SIGKILL before it counts as stuck.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Whether `pid` is a live (not zombie) process whose command line names `uuid`. The
/// command line check keeps a recycled pid from passing for the VM.
pub fn process_of(pid: u32, uuid: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name.
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or("");
    if state == "Z" || state == "X" {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(uuid))
        .unwrap_or(false)
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The VM's live QEMU: the driver's record first, then QEMU's pidfile (a VM started by a
/// driver that kept no record of its own).
pub fn live_pid(dir: &Path, uuid: &str) -> Option<u32> {
    [PIDFILE, QEMU_PIDFILE]
        .iter()
        .filter_map(|f| read_pid(&dir.join(f)))
        .find(|&pid| process_of(pid, uuid))
}

/// Waits until `pid` is no longer the VM's process; false when `timeout` passed first.
pub async fn wait_gone(pid: u32, uuid: &str, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if !process_of(pid, uuid) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Gives the process `grace` to end by itself, then kills it; returns once it is gone.
pub async fn end(pid: u32, uuid: &str, grace: Duration) -> Result<(), HvError> {
    if wait_gone(pid, uuid, grace).await {
        return Ok(());
    }
    kill(pid);
    if wait_gone(pid, uuid, KILL_WAIT).await {
        Ok(())
    } else {
        Err(HvError::Failed(format!(
            "QEMU process {pid} of {uuid} does not die"
        )))
    }
}

fn kill(pid: u32) {
    // SAFETY: kill(2) has no memory effects; callers pass a pid they checked is the VM's.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
}

/// Resident memory of a process in KiB (`VmRSS` of /proc/<pid>/status).
pub fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Every process (but this one) whose command line contains `needle`.
fn processes_naming(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && process_of(pid, needle))
        .collect()
}

/// Starts QEMU (`-daemonize`) and waits until its QMP socket answers. Returns the pid.
/// Past `timeout`, or on any failure, every process of this launch is killed and the
/// runtime files it made are removed.
pub async fn launch(
    binary: &Path,
    args: &[String],
    dir: &Path,
    uuid: &str,
    timeout: Duration,
) -> Result<u32, HvError> {
    clear_runtime_files(dir);
    let deadline = Instant::now() + timeout;
    let started = daemonize(binary, args, dir, uuid, deadline).await;
    let result = match started {
        Ok(pid) => wait_for_qmp(dir, deadline).await.map(|()| pid),
        Err(e) => Err(e),
    };
    let log = std::fs::read_to_string(dir.join(START_LOG)).unwrap_or_default();
    let _ = std::fs::remove_file(dir.join(START_LOG));
    match result {
        Ok(pid) => Ok(pid),
        Err(e) => {
            kill_launch(dir, uuid).await;
            clear_runtime_files(dir);
            Err(with_stderr(e, &log))
        }
    }
}

/// Runs the QEMU command until its first process exits (once the daemon is set up), and
/// records the daemon's pid.
async fn daemonize(
    binary: &Path,
    args: &[String],
    dir: &Path,
    uuid: &str,
    deadline: Instant,
) -> Result<u32, HvError> {
    let log = std::fs::File::create(dir.join(START_LOG))
        .map_err(|e| HvError::Failed(format!("{}: {e}", dir.join(START_LOG).display())))?;
    let mut child = tokio::process::Command::new(binary)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| HvError::Failed(format!("starting QEMU: {e}")))?;
    let waited = tokio::time::timeout_at(deadline.into(), child.wait()).await;
    let status = match waited {
        Ok(status) => status.map_err(|e| HvError::Failed(format!("waiting for QEMU: {e}")))?,
        Err(_) => {
            let _ = child.kill().await;
            return Err(HvError::Failed("QEMU did not start in time".into()));
        }
    };
    if !status.success() {
        return Err(HvError::Failed(format!("QEMU did not start ({status})")));
    }
    let pid = live_pid(dir, uuid)
        .ok_or_else(|| HvError::Failed("QEMU exited right after starting".into()))?;
    std::fs::write(dir.join(PIDFILE), pid.to_string())
        .map_err(|e| HvError::Failed(format!("recording the QEMU pid: {e}")))?;
    Ok(pid)
}

/// Waits for the QMP socket to answer a `query-status`.
async fn wait_for_qmp(dir: &Path, deadline: Instant) -> Result<(), HvError> {
    let sock = dir.join("qmp.sock");
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HvError::Failed("QEMU's QMP did not answer in time".into()));
        }
        let tries = qmp::execute(
            &sock,
            "query-status",
            None,
            left.min(Duration::from_secs(5)),
        );
        if tries.await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100).min(left)).await;
    }
}

/// Kills whatever a failed launch left: the daemon (by its pidfile, or, when it hung
/// before writing one, by its QMP socket's path on its command line).
async fn kill_launch(dir: &Path, uuid: &str) {
    let marker = dir.join("qmp.sock").display().to_string();
    let mut pids = processes_naming(&marker);
    pids.extend(live_pid(dir, uuid));
    for pid in pids {
        kill(pid);
        wait_gone(pid, uuid, KILL_WAIT).await;
    }
}

/// The files a running QEMU has; gone once it is stopped for good or failed to start.
fn clear_runtime_files(dir: &Path) {
    for f in ["qmp.sock", QEMU_PIDFILE, PIDFILE] {
        let _ = std::fs::remove_file(dir.join(f));
    }
}

fn with_stderr(e: HvError, log: &str) -> HvError {
    let log = log.trim();
    match e {
        HvError::Failed(m) if !log.is_empty() => HvError::Failed(format!("{m}; QEMU said: {log}")),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fs-proc-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A process whose command line names `tag`, exiting after about `ticks` tenths of a
    /// second (short sleeps, so that killing it leaves no long-lived child behind).
    fn sleeper(tag: &str, ticks: u32) -> std::process::Child {
        let script =
            format!("i=0; while [ $i -lt {ticks} ]; do sleep 0.1; i=$((i+1)); done; : {tag}");
        let child = std::process::Command::new("sh")
            .args(["-c", &script])
            .spawn()
            .unwrap();
        // spawn returns once exec has begun; the new command line shows a moment later.
        let end = Instant::now() + Duration::from_secs(5);
        while !process_of(child.id(), tag) {
            assert!(
                Instant::now() < end,
                "the sleeper never showed its command line"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        child
    }

    #[tokio::test]
    async fn a_vm_counts_as_stopped_only_once_its_process_is_gone() {
        let dir = scratch();
        let uuid = uuid::Uuid::new_v4().to_string();
        let mut child = sleeper(&uuid, 6);
        // QEMU's pidfile is already gone (as while it exits); the driver's record remains.
        std::fs::write(dir.join(PIDFILE), child.id().to_string()).unwrap();
        assert_eq!(live_pid(&dir, &uuid), Some(child.id()));
        let t = Instant::now();
        assert!(wait_gone(child.id(), &uuid, Duration::from_secs(10)).await);
        assert!(
            t.elapsed() >= Duration::from_millis(400),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(live_pid(&dir, &uuid), None);
        // A recycled pid (any process not naming the VM) is not the VM's.
        assert!(!process_of(
            std::process::id(),
            &uuid::Uuid::new_v4().to_string()
        ));
        child.wait().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn end_kills_a_process_that_outlives_its_grace() {
        let uuid = uuid::Uuid::new_v4().to_string();
        let mut child = sleeper(&uuid, 600);
        let t = Instant::now();
        end(child.id(), &uuid, Duration::from_millis(200))
            .await
            .unwrap();
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(!child.wait().unwrap().success());
        assert!(resident_kib(std::process::id()).unwrap() > 0);
    }
}
