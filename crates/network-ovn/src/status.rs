//! Port status from OVN: ovn-controller binds a VM's switch port when the tap carrying its
//! `iface-id` appears on its chassis, and northd then sets `Logical_Switch_Port.up`. This
//! task watches that column in the backend's replica and reports each change to the
//! Networking service (`ACTIVE` / `DOWN`), as ML2/OVN's "port up" events do; Compute
//! waits for `ACTIVE` before it calls a server ready.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferrostack_network::NetworkService;
use ferrostack_ovsdb::Replica;

/// VM ports' `up`, by port id (switch ports of type `""` named by a Neutron id).
fn vm_ports_up(replica: &Replica) -> BTreeMap<String, bool> {
    replica.read(|v| {
        v.rows("Logical_Switch_Port")
            .filter(|r| r.str("type").unwrap_or_default().is_empty())
            .filter(|r| r.map("external_ids").contains_key("neutron:device_owner"))
            .filter_map(|r| {
                let name = r.str("name")?.to_string();
                Some((name, r.bool("up").unwrap_or(false)))
            })
            .collect()
    })
}

/// Reports every VM port's state once (the database may be behind after a restart), then
/// each change, for the life of the process.
pub fn spawn_port_status(
    replica: Replica,
    service: Arc<NetworkService>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut rx = replica.subscribe();
        let mut known: BTreeMap<String, bool> = BTreeMap::new();
        loop {
            rx.borrow_and_update();
            if replica.read(|v| v.is_synced()) {
                let mut now = vm_ports_up(&replica);
                let mut failed = Vec::new();
                for (port, up) in &now {
                    if known.get(port) == Some(up) {
                        continue;
                    }
                    match service.set_port_status(port, *up).await {
                        Ok(()) => tracing::debug!(%port, up, "port status from OVN"),
                        // A port deleted meanwhile, or a row another tool made.
                        Err(e) if e.status.as_u16() == 404 => {}
                        Err(e) => {
                            tracing::warn!(%port, error = %e, "port status not recorded; trying again at the next change");
                            failed.push(port.clone());
                        }
                    }
                }
                for port in failed {
                    now.remove(&port);
                }
                known = now;
            }
            if rx.changed().await.is_err() {
                return;
            }
            // Let a burst of updates (a thousand ports bound at once) settle into one pass.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}
