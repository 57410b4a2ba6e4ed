//! The backend's router and floating IP writes: [`crate::router_rows`] diffed against the
//! replica. A router's ports, SNAT rows and static routes are owned by its Logical_Router
//! (strong references), so deleting the router takes them along; floating IPs are NAT rows
//! on the router too, which the router's own sync leaves alone (they have their own sync).

use std::collections::{BTreeMap, BTreeSet};

use ferrostack_network::backend::{BackendError, FloatingIpState, RouterState, Snapshot};
use ferrostack_ovsdb::{Columns, Cond, Mutation, Op, Row, Until, Value};

use crate::backend::{err, map, strings, OvnBackend};
use crate::mapping::router_name;
use crate::router_rows::*;

pub(crate) const LR: &str = "Logical_Router";
pub(crate) const LRP: &str = "Logical_Router_Port";
pub(crate) const NAT: &str = "NAT";
pub(crate) const ROUTE: &str = "Logical_Router_Static_Route";
pub(crate) const GW_CHASSIS: &str = "Gateway_Chassis";

fn nat_columns(n: &NatRow) -> Columns {
    Columns::new()
        .with("type", n.kind)
        .with("external_ip", n.external_ip.as_str())
        .with("logical_ip", n.logical_ip.as_str())
        .with("external_ids", map(n.external_ids.clone()))
}

fn nat_key(r: &Row) -> (String, String, String) {
    (
        r.str("type").unwrap_or_default().to_string(),
        r.str("external_ip").unwrap_or_default().to_string(),
        r.str("logical_ip").unwrap_or_default().to_string(),
    )
}

impl OvnBackend {
    fn router(&self, router_id: &str) -> Option<Row> {
        self.replica.find_str(LR, "name", &router_name(router_id))
    }

    /// The Gateway_Chassis rows a gateway port should have: `(chassis, priority)`.
    fn gateway_chassis_for(&self) -> Vec<(String, i64)> {
        let names = self.gateway_chassis();
        let n = names.len() as i64;
        names
            .into_iter()
            .enumerate()
            .map(|(i, c)| (c, n - i as i64))
            .collect()
    }

    pub(crate) async fn sync_router_locked(&self, r: &RouterState) -> Result<(), BackendError> {
        let name = router_name(&r.router.id);
        let mut ops = Vec::new();
        let lr_row = Columns::new()
            .with("name", name.as_str())
            .with("enabled", r.router.admin_state_up)
            .with("external_ids", map(router_external_ids(r)))
            .with("options", map(router_options()));
        let existing = self.router(&r.router.id);
        let lr_cond = match &existing {
            Some(lr) => vec![Cond::uuid(lr.uuid())],
            None => vec![Cond::eq("name", name.as_str())],
        };
        // Router names are not unique in OVN: refuse to make a second one.
        if existing.is_none() {
            ops.push(Op::wait(
                LR,
                vec![Cond::eq("name", name.as_str())],
                &["name"],
                Until::Equal,
                vec![],
            ));
            ops.push(Op::insert(LR, lr_row, None));
        } else {
            ops.push(Op::update(LR, lr_cond.clone(), lr_row));
        }
        let owned = |column: &str| -> BTreeSet<uuid::Uuid> {
            existing
                .as_ref()
                .map(|lr| lr.uuid_set(column))
                .unwrap_or_default()
        };

        // Router ports.
        let wanted = router_ports(r);
        let wanted_names: BTreeSet<&str> = wanted.iter().map(|p| p.name.as_str()).collect();
        let chassis = self.gateway_chassis_for();
        for (i, p) in wanted.iter().enumerate() {
            let mut row = Columns::new()
                .with("name", p.name.as_str())
                .with("mac", p.mac.as_str())
                .with("networks", strings(p.networks.clone()))
                .with("external_ids", map(p.external_ids.clone()));
            let current = self.replica.find_str(LRP, "name", &p.name);
            let current_chassis: BTreeSet<(String, i64)> = current
                .as_ref()
                .map(|c| {
                    c.uuid_set("gateway_chassis")
                        .into_iter()
                        .filter_map(|u| self.replica.get(GW_CHASSIS, u))
                        .map(|g| {
                            (
                                g.str("chassis_name").unwrap_or_default().to_string(),
                                g.int("priority").unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let wanted_chassis: BTreeSet<(String, i64)> = if p.gateway {
                chassis.iter().cloned().collect()
            } else {
                BTreeSet::new()
            };
            if current.is_none() || current_chassis != wanted_chassis {
                let mut refs = Vec::new();
                for (j, (c, prio)) in wanted_chassis.iter().enumerate() {
                    let named = format!("gwc{i}_{j}");
                    ops.push(Op::insert(
                        GW_CHASSIS,
                        Columns::new()
                            .with("name", format!("{}_{c}", p.name))
                            .with("chassis_name", c.as_str())
                            .with("priority", *prio),
                        Some(&named),
                    ));
                    refs.push(Value::named_uuid(named));
                }
                row.set(
                    "gateway_chassis",
                    Value::set(refs.iter().filter_map(|v| v.single().cloned())),
                );
            }
            match &current {
                Some(c) => {
                    ops.push(Op::update(LRP, vec![Cond::uuid(c.uuid())], row));
                    if !owned("ports").contains(&c.uuid()) {
                        ops.push(Op::mutate(
                            LR,
                            lr_cond.clone(),
                            vec![Mutation::insert("ports", Value::uuid(c.uuid()))],
                        ));
                    }
                }
                None => {
                    let named = format!("lrp{i}");
                    ops.push(Op::insert(LRP, row, Some(&named)));
                    ops.push(Op::mutate(
                        LR,
                        lr_cond.clone(),
                        vec![Mutation::insert("ports", Value::named_uuid(named))],
                    ));
                }
            }
        }
        for u in owned("ports") {
            let stale = self
                .replica
                .get(LRP, u)
                .is_none_or(|p| !wanted_names.contains(p.str("name").unwrap_or_default()));
            if stale {
                ops.push(Op::mutate(
                    LR,
                    lr_cond.clone(),
                    vec![Mutation::delete("ports", Value::uuid(u))],
                ));
            }
        }

        // SNAT rows (floating IPs' dnat_and_snat rows are not this sync's business).
        let snat = snat_rows(r);
        let have: BTreeMap<(String, String, String), uuid::Uuid> = owned("nat")
            .into_iter()
            .filter_map(|u| self.replica.get(NAT, u))
            .filter(|n| n.str("type") == Some("snat"))
            .map(|n| (nat_key(&n), n.uuid()))
            .collect();
        let want_keys: BTreeSet<(String, String, String)> = snat
            .iter()
            .map(|n| (n.kind.into(), n.external_ip.clone(), n.logical_ip.clone()))
            .collect();
        for (i, n) in snat.iter().enumerate() {
            let key = (
                n.kind.to_string(),
                n.external_ip.clone(),
                n.logical_ip.clone(),
            );
            if !have.contains_key(&key) {
                let named = format!("snat{i}");
                ops.push(Op::insert(NAT, nat_columns(n), Some(&named)));
                ops.push(Op::mutate(
                    LR,
                    lr_cond.clone(),
                    vec![Mutation::insert("nat", Value::named_uuid(named))],
                ));
            }
        }
        for (key, u) in &have {
            if !want_keys.contains(key) {
                ops.push(Op::mutate(
                    LR,
                    lr_cond.clone(),
                    vec![Mutation::delete("nat", Value::uuid(*u))],
                ));
            }
        }

        // Static routes.
        let routes = static_routes(r);
        let have: BTreeMap<(String, String), uuid::Uuid> = owned("static_routes")
            .into_iter()
            .filter_map(|u| self.replica.get(ROUTE, u))
            .map(|rt| {
                (
                    (
                        rt.str("ip_prefix").unwrap_or_default().to_string(),
                        rt.str("nexthop").unwrap_or_default().to_string(),
                    ),
                    rt.uuid(),
                )
            })
            .collect();
        let want_keys: BTreeSet<(String, String)> = routes
            .iter()
            .map(|rt| (rt.ip_prefix.clone(), rt.nexthop.clone()))
            .collect();
        for (i, rt) in routes.iter().enumerate() {
            if !have.contains_key(&(rt.ip_prefix.clone(), rt.nexthop.clone())) {
                let named = format!("route{i}");
                ops.push(Op::insert(
                    ROUTE,
                    Columns::new()
                        .with("ip_prefix", rt.ip_prefix.as_str())
                        .with("nexthop", rt.nexthop.as_str())
                        .with("external_ids", map(rt.external_ids.clone())),
                    Some(&named),
                ));
                ops.push(Op::mutate(
                    LR,
                    lr_cond.clone(),
                    vec![Mutation::insert("static_routes", Value::named_uuid(named))],
                ));
            }
        }
        for (key, u) in &have {
            if !want_keys.contains(key) {
                ops.push(Op::mutate(
                    LR,
                    lr_cond.clone(),
                    vec![Mutation::delete("static_routes", Value::uuid(*u))],
                ));
            }
        }
        if wanted.iter().any(|p| p.gateway) && chassis.is_empty() {
            tracing::warn!(router = %r.router.id, "no chassis can host the router's gateway (none registered with enable-chassis-as-gw): its SNAT and floating IPs do not work yet");
        }
        self.transact(ops).await
    }

    pub(crate) async fn delete_router_locked(&self, router_id: &str) -> Result<(), BackendError> {
        // The router's ports, NAT rows and routes are its children: they go with it.
        self.transact(vec![Op::delete(
            LR,
            vec![Cond::eq("name", router_name(router_id).as_str())],
        )])
        .await
    }

    /// The NAT rows of a floating IP, with the router holding each.
    fn fip_rows(&self, fip_id: &str) -> Vec<(Row, Option<Row>)> {
        let routers: Vec<Row> = self.replica.table(LR).into_values().collect();
        self.replica
            .table(NAT)
            .into_values()
            .filter(|n| {
                n.map("external_ids")
                    .get("neutron:fip_id")
                    .map(String::as_str)
                    == Some(fip_id)
            })
            .map(|n| {
                let owner = routers
                    .iter()
                    .find(|lr| lr.uuid_set("nat").contains(&n.uuid()))
                    .cloned();
                (n, owner)
            })
            .collect()
    }

    pub(crate) async fn sync_fip_locked(&self, f: &FloatingIpState) -> Result<(), BackendError> {
        let wanted = floating_ip_nat(&f.floating_ip);
        let mut ops = Vec::new();
        let mut keep = None;
        for (nat, owner) in self.fip_rows(&f.floating_ip.id) {
            let same = match (&wanted, &owner) {
                (Some((router, row)), Some(lr)) => {
                    lr.str("name") == Some(router.as_str())
                        && nat_key(&nat)
                            == (
                                row.kind.into(),
                                row.external_ip.clone(),
                                row.logical_ip.clone(),
                            )
                }
                _ => false,
            };
            if same && keep.is_none() {
                keep = Some(nat.uuid());
                continue;
            }
            match owner {
                Some(lr) => ops.push(Op::mutate(
                    LR,
                    vec![Cond::uuid(lr.uuid())],
                    vec![Mutation::delete("nat", Value::uuid(nat.uuid()))],
                )),
                None => ops.push(Op::delete(NAT, vec![Cond::uuid(nat.uuid())])),
            }
        }
        if let Some((router, row)) = &wanted {
            match keep {
                Some(u) => ops.push(Op::update(
                    NAT,
                    vec![Cond::uuid(u)],
                    Columns::new().with("external_ids", map(row.external_ids.clone())),
                )),
                None => {
                    let lr = self.replica.find_str(LR, "name", router).ok_or_else(|| {
                        err(format!(
                            "router {router} of floating IP {} is not in OVN yet; the reconciler will add it",
                            f.floating_ip.id
                        ))
                    })?;
                    ops.push(Op::insert(NAT, nat_columns(row), Some("fip")));
                    ops.push(Op::mutate(
                        LR,
                        vec![Cond::uuid(lr.uuid())],
                        vec![Mutation::insert("nat", Value::named_uuid("fip"))],
                    ));
                }
            }
        }
        ops.extend(self.forwarding_ops(f)?);
        self.transact(ops).await
    }

    pub(crate) async fn delete_fip_locked(&self, fip_id: &str) -> Result<(), BackendError> {
        let mut ops: Vec<Op> = self
            .fip_rows(fip_id)
            .into_iter()
            .map(|(nat, owner)| match owner {
                Some(lr) => Op::mutate(
                    LR,
                    vec![Cond::uuid(lr.uuid())],
                    vec![Mutation::delete("nat", Value::uuid(nat.uuid()))],
                ),
                None => Op::delete(NAT, vec![Cond::uuid(nat.uuid())]),
            })
            .collect();
        ops.extend(self.forwarding_delete_ops(fip_id));
        self.transact(ops).await
    }

    /// Syncs the snapshot's routers and floating IPs, then drops the Neutron routers and
    /// floating IP rows it does not hold.
    pub(crate) async fn full_sync_routing(&self, snapshot: &Snapshot) -> Result<(), BackendError> {
        for r in &snapshot.routers {
            self.sync_router_locked(r).await?;
        }
        for f in &snapshot.floating_ips {
            self.sync_fip_locked(f).await?;
        }
        let routers: BTreeSet<String> = snapshot
            .routers
            .iter()
            .map(|r| router_name(&r.router.id))
            .collect();
        let fips: BTreeSet<&str> = snapshot
            .floating_ips
            .iter()
            .map(|f| f.floating_ip.id.as_str())
            .collect();
        let mut ops = self.stale_forwarding_ops(snapshot);
        for lr in self.replica.table(LR).values() {
            let name = lr.str("name").unwrap_or_default();
            if name.starts_with("neutron-") && !routers.contains(name) {
                ops.push(Op::delete(LR, vec![Cond::uuid(lr.uuid())]));
                continue;
            }
            for u in lr.uuid_set("nat") {
                let stale = self.replica.get(NAT, u).is_some_and(|n| {
                    n.map("external_ids")
                        .get("neutron:fip_id")
                        .is_some_and(|id| !fips.contains(id.as_str()))
                });
                if stale {
                    ops.push(Op::mutate(
                        LR,
                        vec![Cond::uuid(lr.uuid())],
                        vec![Mutation::delete("nat", Value::uuid(u))],
                    ));
                }
            }
        }
        self.transact(ops).await
    }
}
