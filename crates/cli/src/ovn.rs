//! The all-in-one cloud's own OVN: with `[network] backend = "ovn"` and no
//! `ovn_nb_connection`, `ferrostack up` starts Open vSwitch and OVN (ovsdb-servers,
//! ovs-vswitchd with the userspace datapath, ovn-northd, ovn-controller) with every file
//! under `<data dir>/ovn`, makes `br-int` and `br-ex` (172.24.4.1/24, as DevStack), and
//! points the Networking backend and the compute agent at their sockets.
//!
//! The start logic is `scripts/ovn.sh` (also used by the tests), carried inside the binary
//! so the binary stays the one thing to install besides the distribution's packages. It
//! is idempotent: a second `up` finds the daemons running (they outlive `up`, as QEMU does,
//! so VMs keep their network across a control plane restart) and only checks them.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

const SCRIPT: &str = include_str!("../../../scripts/ovn.sh");

pub struct ManagedOvn {
    pub dir: PathBuf,
}

impl ManagedOvn {
    /// Starts (or checks) the stack under `dir`, with `system_id` as the chassis name (the
    /// compute host's name: ports are bound to the chassis of their `binding:host_id`).
    pub fn start(dir: &Path, system_id: &str) -> anyhow::Result<ManagedOvn> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let script = dir.join("ovn.sh");
        std::fs::write(&script, SCRIPT).with_context(|| format!("writing {}", script.display()))?;
        let out = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(dir)
            .arg("--system-id")
            .arg(system_id)
            .output()
            .context("running bash to start OVN")?;
        if !out.status.success() {
            anyhow::bail!(
                "starting Open vSwitch and OVN under {} failed (are they installed? scripts/install-ovn.sh):\n{}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(ManagedOvn {
            dir: dir.to_path_buf(),
        })
    }

    fn socket(&self, name: &str) -> String {
        format!("unix:{}", self.dir.join("run").join(name).display())
    }

    pub fn northbound(&self) -> String {
        self.socket("ovnnb_db.sock")
    }

    pub fn southbound(&self) -> String {
        self.socket("ovnsb_db.sock")
    }

    /// The Open vSwitch database the compute agent plugs taps through.
    pub fn ovs_db(&self) -> String {
        self.socket("db.sock")
    }

    /// The line that points an operator's `ovn-nbctl`, `ovn-sbctl`, `ovs-vsctl` at it.
    pub fn env_hint(&self) -> String {
        format!(
            "eval \"$(bash {} env {})\"",
            self.dir.join("ovn.sh").display(),
            self.dir.display()
        )
    }
}
