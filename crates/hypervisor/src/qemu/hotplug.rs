//! NICs added to and taken from a VM after its start. QEMU starts every VM with
//! [`SLOTS`] spare PCIe root ports (`hotplug0`, `hotplug1`; q35 cannot hot-plug onto its
//! root bus). A NIC attached to a running (or paused) VM is plugged into a free one with
//! QMP `netdev_add` and `device_add`, with the options its command line would have had, and
//! `spec.json` records it with its slot: a later start puts it on the same root port, so a
//! restart keeps it and a saved memory finds the devices where it left them. A stopped VM
//! only gets its description changed. Detaching asks the guest to let the device go
//! (`device_del`), waits until it is gone from `query-pci`, removes the backend and unplugs
//! the tap.
//!
//! Every NIC's QEMU ids come from its port id (`netdev-<tap suffix>`, `nic-<tap suffix>`),
//! so a NIC is found again whatever was attached or detached around it.
//!
//! The order makes a repeat after a crash safe: attach records the NIC first, then plugs
//! what is not there yet; detach unplugs first and forgets the NIC last.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{reshape, state, tap, QemuDriver};
use crate::{HvError, NicBackend, NicSpec, PowerState, VmSpec};

/// Spare root ports on every VM's command line.
pub(super) const SLOTS: u32 = 2;

/// How long the guest gets to release a NIC being detached.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(60);

pub(super) fn root_port(slot: u32) -> String {
    format!("hotplug{slot}")
}

fn suffix(nic: &NicSpec) -> String {
    tap::tap_name(&nic.port_id)[3..].to_string()
}

pub(super) fn netdev_id(nic: &NicSpec) -> String {
    format!("netdev-{}", suffix(nic))
}

pub(super) fn device_id(nic: &NicSpec) -> String {
    format!("nic-{}", suffix(nic))
}

/// The `-netdev` of a NIC. No vhost (the host may have no /dev/vhost-net) and no offloads
/// (see [`tap`]).
pub(super) fn netdev_arg(nic: &NicSpec) -> String {
    let id = netdev_id(nic);
    match &nic.backend {
        NicBackend::User { ssh_forward_port } => {
            let mut n = format!("user,id={id},restrict=on");
            if let Some(port) = ssh_forward_port {
                n.push_str(&format!(",hostfwd=tcp:127.0.0.1:{port}-:22"));
            }
            n
        }
        NicBackend::Tap { .. } => format!(
            "tap,id={id},ifname={},script=no,downscript=no,vhost=off,vnet_hdr=off",
            tap::tap_name(&nic.port_id)
        ),
    }
}

/// The `-device` of a NIC (without its bus).
pub(super) fn device_arg(nic: &NicSpec) -> String {
    let mut dev = format!(
        "virtio-net-pci,id={},netdev={},mac={},romfile=",
        device_id(nic),
        netdev_id(nic),
        nic.mac
    );
    if let Some(mtu) = nic.mtu {
        dev.push_str(&format!(",host_mtu={mtu}"));
    }
    dev
}

/// The same backend as [`netdev_arg`], as `netdev_add` takes it.
fn netdev_qmp(nic: &NicSpec) -> Value {
    let id = netdev_id(nic);
    match &nic.backend {
        NicBackend::User { ssh_forward_port } => {
            let mut v = json!({"type": "user", "id": id, "restrict": true});
            if let Some(port) = ssh_forward_port {
                v["hostfwd"] = json!([{"str": format!("tcp:127.0.0.1:{port}-:22")}]);
            }
            v
        }
        NicBackend::Tap { .. } => json!({
            "type": "tap", "id": id, "ifname": tap::tap_name(&nic.port_id),
            "script": "no", "downscript": "no", "vhost": false, "vnet_hdr": false,
        }),
    }
}

/// Whether a device with QEMU id `id` is on any PCI bus of `query-pci`'s answer.
pub fn pci_has(tree: &Value, id: &str) -> bool {
    match tree {
        Value::Object(map) => {
            map.get("qdev_id").and_then(Value::as_str) == Some(id)
                || map.values().any(|v| pci_has(v, id))
        }
        Value::Array(list) => list.iter().any(|v| pci_has(v, id)),
        _ => false,
    }
}

impl QemuDriver {
    fn live_state(&self, seen: &state::Seen) -> Result<bool, HvError> {
        match state::power_state(seen) {
            PowerState::Running | PowerState::Paused => Ok(true),
            PowerState::Suspended => Err(HvError::InvalidState(
                "a suspended VM's NICs cannot change".into(),
            )),
            _ => Ok(false),
        }
    }

    async fn has_device(&self, dir: &Path, id: &str) -> Result<bool, HvError> {
        let tree = self.qmp(dir, "query-pci", None).await?;
        Ok(pci_has(&tree, id))
    }

    pub(super) async fn attach_locked(
        &self,
        dir: &Path,
        uuid: &str,
        nic: &NicSpec,
    ) -> Result<(), HvError> {
        if tap::bridge_of(nic).is_some() {
            self.ovs_config()?;
        }
        let seen = self.settle(dir, uuid).await?;
        let live = self.live_state(&seen)?;
        let mut spec = self.spec_of(dir)?;
        let recorded = match spec.nics.iter().find(|n| n.port_id == nic.port_id) {
            Some(known) => known.clone(),
            None => {
                let mut new = nic.clone();
                new.hotplug_slot = if live {
                    Some(free_slot(&spec).ok_or_else(|| {
                        HvError::Failed(format!(
                            "VM {uuid} has no free hot-plug slot (it takes {SLOTS} NICs after its start)"
                        ))
                    })?)
                } else {
                    None
                };
                spec.nics.push(new.clone());
                reshape::write_spec(dir, &spec)?;
                new
            }
        };
        if !live {
            return Ok(());
        }
        let Some(slot) = recorded.hotplug_slot else {
            // On the root bus: a NIC of the start, or one recorded while the VM was stopped
            // and started since. Either way the VM has it.
            return Ok(());
        };
        let plugged = async {
            if tap::bridge_of(&recorded).is_some() {
                self.ovs_config()?.plug(&recorded, uuid).await?;
            }
            if self.has_device(dir, &device_id(&recorded)).await? {
                return Ok(());
            }
            // A backend left by an attempt that stopped before the device was added.
            let _ = self
                .qmp(dir, "netdev_del", Some(json!({"id": netdev_id(&recorded)})))
                .await;
            self.qmp(dir, "netdev_add", Some(netdev_qmp(&recorded)))
                .await?;
            let mut dev = json!({
                "driver": "virtio-net-pci",
                "id": device_id(&recorded),
                "netdev": netdev_id(&recorded),
                "mac": recorded.mac,
                "romfile": "",
                "bus": root_port(slot),
            });
            if let Some(mtu) = recorded.mtu {
                dev["host_mtu"] = json!(mtu);
            }
            self.qmp(dir, "device_add", Some(dev)).await.map(|_| ())
        }
        .await;
        if let Err(e) = plugged {
            // Nothing half-made is left: the caller sees the NIC absent.
            let _ = self.detach_locked(dir, uuid, &recorded.port_id).await;
            return Err(e);
        }
        Ok(())
    }

    pub(super) async fn detach_locked(
        &self,
        dir: &Path,
        uuid: &str,
        port_id: &str,
    ) -> Result<(), HvError> {
        let seen = self.settle(dir, uuid).await?;
        let live = self.live_state(&seen)?;
        let mut spec = self.spec_of(dir)?;
        let Some(nic) = spec.nics.iter().find(|n| n.port_id == port_id).cloned() else {
            return Ok(());
        };
        if live {
            let id = device_id(&nic);
            if self.has_device(dir, &id).await? {
                self.qmp(dir, "device_del", Some(json!({"id": id})))
                    .await
                    .or_else(|e| match e {
                        // Asked already (a repeat): waiting is what is left to do.
                        HvError::Failed(m) if m.contains("already in the process") => {
                            Ok(Value::Null)
                        }
                        e => Err(e),
                    })?;
                let started = Instant::now();
                while self.has_device(dir, &id).await? {
                    if started.elapsed() > RELEASE_TIMEOUT {
                        return Err(HvError::Failed(format!(
                            "the guest of VM {uuid} did not release NIC {port_id} within {} s",
                            RELEASE_TIMEOUT.as_secs()
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            // Gone already when the device took it along, or never made.
            let _ = self
                .qmp(dir, "netdev_del", Some(json!({"id": netdev_id(&nic)})))
                .await;
        }
        if tap::bridge_of(&nic).is_some() {
            if let Some(ovs) = &self.ovs {
                ovs.unplug(&nic).await?;
            }
        }
        spec.nics.retain(|n| n.port_id != port_id);
        reshape::write_spec(dir, &spec)
    }
}

fn free_slot(spec: &VmSpec) -> Option<u32> {
    (0..SLOTS).find(|s| !spec.nics.iter().any(|n| n.hotplug_slot == Some(*s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_device_behind_a_root_port() {
        let tree = json!([{"bus": 0, "devices": [
            {"qdev_id": "", "pci_bridge": {"bus": {}, "devices": [{"qdev_id": "nic-3c5b8a2e-91"}]}},
        ]}]);
        assert!(pci_has(&tree, "nic-3c5b8a2e-91"));
        assert!(!pci_has(&tree, "nic-other"));
    }
}
