//! A VM's NICs on the host: one persistent tap device per port, named as Nova names it
//! (`tap` + the port id's first 11 characters), plugged into the integration bridge of
//! Open vSwitch with `external_ids:iface-id=<port id>`, which is how ovn-controller learns
//! that the logical port lives on this chassis and binds it. QEMU opens the tap by name.
//!
//! Plugging is idempotent (the tap and the OVS port are made only when missing), so it runs
//! before every start of QEMU: that also heals a vswitchd restart that lost the port.
//! Offloads stay off (`vnet_hdr=off` on QEMU's side): the userspace datapath forwards packets
//! with partial checksums unfixed, and TCP between guests would then never connect.

use std::path::PathBuf;
use std::time::Duration;

use crate::{HvError, NicBackend, NicSpec};

/// How this host reaches Open vSwitch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvsConfig {
    /// The OVS database, as `ovs-vsctl --db` takes it (`unix:/run/openvswitch/db.sock`).
    pub db: String,
    /// Default: `ovs-vsctl` on the PATH.
    pub vsctl: Option<PathBuf>,
}

const OVS_TIMEOUT: Duration = Duration::from_secs(20);

/// The tap device of a port (15 characters at most, a Linux interface name's limit).
pub fn tap_name(port_id: &str) -> String {
    format!("tap{}", &port_id[..port_id.len().min(11)])
}

/// The bridge of a tap NIC, `None` for other kinds.
pub fn bridge_of(nic: &NicSpec) -> Option<&str> {
    match &nic.backend {
        NicBackend::Tap { bridge } => Some(bridge),
        NicBackend::User { .. } => None,
    }
}

async fn run(program: &str, args: &[String]) -> Result<String, HvError> {
    let out = tokio::time::timeout(
        OVS_TIMEOUT,
        tokio::process::Command::new(program)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| HvError::Failed(format!("{program} {} timed out", args.join(" "))))?
    .map_err(|e| HvError::Failed(format!("running {program}: {e}")))?;
    if !out.status.success() {
        return Err(HvError::Failed(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn exists(dev: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(dev).exists()
}

impl OvsConfig {
    fn vsctl(&self) -> String {
        self.vsctl
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "ovs-vsctl".into())
    }

    async fn ovs(&self, args: &[&str]) -> Result<String, HvError> {
        let mut all = vec![
            format!("--db={}", self.db),
            format!("--timeout={}", OVS_TIMEOUT.as_secs()),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        run(&self.vsctl(), &all).await
    }

    /// Makes the NIC's tap (when missing), sets its MTU, brings it up and plugs it into its
    /// bridge for the VM `vm_uuid`.
    pub async fn plug(&self, nic: &NicSpec, vm_uuid: &str) -> Result<(), HvError> {
        let Some(bridge) = bridge_of(nic) else {
            return Ok(());
        };
        let tap = tap_name(&nic.port_id);
        if !exists(&tap) {
            let add = ["tuntap", "add", "dev", &tap, "mode", "tap"].map(String::from);
            if let Err(e) = run("ip", &add).await {
                // Another plug may have raced us to it.
                if !exists(&tap) {
                    return Err(e);
                }
            }
        }
        let mut up = vec!["link", "set", "dev", &tap, "up"];
        let mtu = nic.mtu.map(|m| m.to_string());
        if let Some(m) = &mtu {
            up.extend(["mtu", m.as_str()]);
        }
        run("ip", &up.iter().map(|s| s.to_string()).collect::<Vec<_>>()).await?;
        let iface_id = format!("external_ids:iface-id={}", nic.port_id);
        let mac = format!("external_ids:attached-mac={}", nic.mac);
        let vm = format!("external_ids:vm-uuid={vm_uuid}");
        self.ovs(&[
            "--may-exist",
            "add-port",
            bridge,
            &tap,
            "--",
            "set",
            "Interface",
            &tap,
            &iface_id,
            &mac,
            &vm,
            "external_ids:iface-status=active",
        ])
        .await?;
        Ok(())
    }

    /// Takes the NIC's port off its bridge and deletes its tap; fine when either is gone.
    pub async fn unplug(&self, nic: &NicSpec) -> Result<(), HvError> {
        if bridge_of(nic).is_none() {
            return Ok(());
        }
        let tap = tap_name(&nic.port_id);
        self.ovs(&["--if-exists", "del-port", &tap]).await?;
        if exists(&tap) {
            let del = ["link", "del", "dev", &tap].map(String::from);
            if let Err(e) = run("ip", &del).await {
                if exists(&tap) {
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_names_fit_in_an_interface_name() {
        let t = tap_name("3c5b8a2e-91d4-4f7e-b0a1-2d3e4f5a6b7c");
        assert_eq!(t, "tap3c5b8a2e-91");
        assert!(t.len() <= 15);
    }
}
