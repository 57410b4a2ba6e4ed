//! Floating IP port forwardings as ML2/OVN writes them: one OVN `Load_Balancer` per
//! floating IP and protocol, named `pf-floatingip-<fip id>-<protocol>`, whose VIPs map
//! `<floating address>:<external port>` to `<internal address>:<internal port>`, attached
//! to the floating IP's router. OVN answers ARP for the VIP on the router's gateway and
//! DNATs (and un-DNATs the replies) on the gateway chassis.
//!
//! Load balancers are root rows referenced weakly by routers: deleting the row is what
//! removes it, and the router's reference goes with it.

use std::collections::{BTreeMap, BTreeSet};

use ferrostack_network::backend::{BackendError, FloatingIpState, Snapshot};
use ferrostack_ovsdb::{Columns, Cond, Mutation, Op, Row, Value};

use crate::backend::{err, map, OvnBackend};
use crate::mapping::router_name;
use crate::routing::LR;

pub(crate) const LB: &str = "Load_Balancer";
const OWNER: &str = "port_forwarding_plugin";

/// One load balancer a floating IP's forwardings need.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardingLb {
    pub name: String,
    pub protocol: String,
    pub router: String,
    pub vips: BTreeMap<String, String>,
    pub external_ids: BTreeMap<String, String>,
}

pub fn lb_name(fip_id: &str, protocol: &str) -> String {
    format!("pf-floatingip-{fip_id}-{protocol}")
}

/// The load balancers of a floating IP's forwardings (none without a router).
pub fn forwarding_lbs(f: &FloatingIpState) -> Vec<ForwardingLb> {
    let fip = &f.floating_ip;
    let Some(router_id) = &fip.router_id else {
        return Vec::new();
    };
    let mut by_protocol: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
    for pf in &f.port_forwardings {
        by_protocol.entry(pf.protocol.as_str()).or_default().insert(
            format!("{}:{}", fip.floating_ip_address, pf.external_port),
            format!("{}:{}", pf.internal_ip_address, pf.internal_port),
        );
    }
    by_protocol
        .into_iter()
        .map(|(protocol, vips)| ForwardingLb {
            name: lb_name(&fip.id, protocol),
            protocol: protocol.to_string(),
            router: router_name(router_id),
            vips,
            external_ids: BTreeMap::from([
                ("neutron:device_owner".into(), OWNER.into()),
                ("neutron:fip_id".into(), fip.id.clone()),
                ("neutron:router_name".into(), router_name(router_id)),
            ]),
        })
        .collect()
}

/// The floating IP whose forwardings a load balancer carries (`None`: not a forwarding's).
fn forwarding_fip(lb: &Row) -> Option<String> {
    let ids = lb.map("external_ids");
    if ids.get("neutron:device_owner").map(String::as_str) != Some(OWNER) {
        return None;
    }
    Some(ids.get("neutron:fip_id").cloned().unwrap_or_default())
}

impl OvnBackend {
    /// The forwarding load balancers OVN has for a floating IP.
    fn forwarding_rows(&self, fip_id: &str) -> Vec<Row> {
        self.replica
            .table(LB)
            .into_values()
            .filter(|lb| forwarding_fip(lb).as_deref() == Some(fip_id))
            .collect()
    }

    /// The ops that make OVN's load balancers of `f` match its forwardings.
    pub(crate) fn forwarding_ops(&self, f: &FloatingIpState) -> Result<Vec<Op>, BackendError> {
        let wanted = forwarding_lbs(f);
        let wanted_names: BTreeSet<&str> = wanted.iter().map(|l| l.name.as_str()).collect();
        let existing = self.forwarding_rows(&f.floating_ip.id);
        let routers: Vec<Row> = self.replica.table(LR).into_values().collect();
        let mut ops = Vec::new();
        for lb in &existing {
            if !wanted_names.contains(lb.str("name").unwrap_or_default()) {
                ops.push(Op::delete(LB, vec![Cond::uuid(lb.uuid())]));
            }
        }
        for (i, w) in wanted.iter().enumerate() {
            let columns = Columns::new()
                .with("name", w.name.as_str())
                .with("protocol", w.protocol.as_str())
                .with("vips", map(w.vips.clone()))
                .with("external_ids", map(w.external_ids.clone()));
            let router = routers
                .iter()
                .find(|lr| lr.str("name") == Some(w.router.as_str()))
                .ok_or_else(|| {
                    err(format!(
                        "router {} of floating IP {} is not in OVN yet; the reconciler will add its port forwardings",
                        w.router, f.floating_ip.id
                    ))
                })?;
            match existing
                .iter()
                .find(|lb| lb.str("name") == Some(w.name.as_str()))
            {
                Some(lb) => {
                    ops.push(Op::update(LB, vec![Cond::uuid(lb.uuid())], columns));
                    for lr in &routers {
                        let holds = lr.uuid_set("load_balancer").contains(&lb.uuid());
                        let should = lr.uuid() == router.uuid();
                        if holds != should {
                            let m = if should {
                                Mutation::insert("load_balancer", Value::uuid(lb.uuid()))
                            } else {
                                Mutation::delete("load_balancer", Value::uuid(lb.uuid()))
                            };
                            ops.push(Op::mutate(LR, vec![Cond::uuid(lr.uuid())], vec![m]));
                        }
                    }
                }
                None => {
                    let named = format!("pflb{i}");
                    ops.push(Op::insert(LB, columns, Some(&named)));
                    ops.push(Op::mutate(
                        LR,
                        vec![Cond::uuid(router.uuid())],
                        vec![Mutation::insert("load_balancer", Value::named_uuid(named))],
                    ));
                }
            }
        }
        Ok(ops)
    }

    /// Deletes a floating IP's forwarding load balancers.
    pub(crate) fn forwarding_delete_ops(&self, fip_id: &str) -> Vec<Op> {
        self.forwarding_rows(fip_id)
            .iter()
            .map(|lb| Op::delete(LB, vec![Cond::uuid(lb.uuid())]))
            .collect()
    }

    /// Deletes the forwarding load balancers of floating IPs the snapshot does not hold.
    pub(crate) fn stale_forwarding_ops(&self, snapshot: &Snapshot) -> Vec<Op> {
        let fips: BTreeSet<&str> = snapshot
            .floating_ips
            .iter()
            .map(|f| f.floating_ip.id.as_str())
            .collect();
        self.replica
            .table(LB)
            .into_values()
            .filter(|lb| forwarding_fip(lb).is_some_and(|id| !fips.contains(id.as_str())))
            .map(|lb| Op::delete(LB, vec![Cond::uuid(lb.uuid())]))
            .collect()
    }
}
