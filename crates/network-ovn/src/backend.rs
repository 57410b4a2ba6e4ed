//! The OVN backend: writes [`crate::mapping`]'s rows to the Northbound database through
//! `ferrostack-ovsdb`, reading what is there from a monitored replica so every call is a
//! diff (insert what is missing, update what differs) and so idempotent. Writes are
//! serialized in this process; another writer's change shows up as drift that `full_sync`
//! repairs. Routers and floating IPs are in [`crate::routing`].

use std::collections::{BTreeMap, BTreeSet};

use ferrostack_network::backend::*;
use ferrostack_network::model::{OWNER_FLOATINGIP, OWNER_ROUTER_GATEWAY};
use ferrostack_ovsdb::{
    Client, Columns, Cond, Mutation, Op, Replica, Row, TableSpec, Until, Value,
};
use tokio::sync::Mutex;

use crate::mapping::*;
use crate::router_rows::router_switch_port_options;
use crate::routing::{GW_CHASSIS, LR, LRP, NAT, ROUTE};

const NB: &str = "OVN_Northbound";
const LS: &str = "Logical_Switch";
const LSP: &str = "Logical_Switch_Port";
const PG: &str = "Port_Group";
const DHCP: &str = "DHCP_Options";
pub(crate) const CHASSIS: &str = "Chassis";
pub(crate) const CHASSIS_PRIVATE: &str = "Chassis_Private";

pub struct OvnBackend {
    client: Client,
    pub(crate) replica: Replica,
    /// The Southbound `Chassis` table (which chassis may host router gateways), when the
    /// backend was told where the Southbound database is.
    pub(crate) southbound: Option<(Client, Replica)>,
    writing: Mutex<()>,
    /// What the agents list has seen of each chassis (see [`crate::agents`]).
    pub(crate) agent_clock: std::sync::Mutex<crate::agents::AgentClock>,
    pub(crate) agent_down_time: std::time::Duration,
}

pub(crate) fn err(e: impl std::fmt::Display) -> BackendError {
    BackendError(format!("OVN Northbound: {e}"))
}

pub(crate) fn map(m: BTreeMap<String, String>) -> Value {
    Value::map(m)
}

pub(crate) fn strings(items: Vec<String>) -> Value {
    Value::set(items)
}

impl OvnBackend {
    /// Connects to the Northbound database (`unix:...` or `tcp:...`) and monitors the
    /// tables the backend writes.
    pub async fn connect(endpoint: &str) -> Result<OvnBackend, BackendError> {
        let client = Client::connect(endpoint).await.map_err(err)?;
        let replica = client
            .monitor(
                NB,
                &[
                    TableSpec::all(LS),
                    TableSpec::all(LSP),
                    TableSpec::all(PG),
                    TableSpec::all(DHCP),
                    TableSpec::all(LR),
                    TableSpec::all(LRP),
                    TableSpec::all(NAT),
                    TableSpec::all(ROUTE),
                    TableSpec::all(GW_CHASSIS),
                    TableSpec::all(crate::forwarding::LB),
                    TableSpec::new("NB_Global", &["nb_cfg"]),
                ],
            )
            .await
            .map_err(err)?;
        Ok(OvnBackend {
            client,
            replica,
            southbound: None,
            writing: Mutex::new(()),
            agent_clock: Default::default(),
            agent_down_time: crate::agents::AGENT_DOWN_TIME,
        })
    }

    /// Also reads the Southbound database's chassis (`unix:...` or `tcp:...`): router
    /// gateway ports are pinned to the chassis that offer `enable-chassis-as-gw`, as
    /// ML2/OVN schedules them.
    pub async fn with_southbound(mut self, endpoint: &str) -> Result<OvnBackend, BackendError> {
        let client = Client::connect(endpoint).await.map_err(err)?;
        let replica = client
            .monitor(
                "OVN_Southbound",
                &[
                    TableSpec::new(
                        CHASSIS,
                        &["name", "hostname", "other_config", "external_ids"],
                    ),
                    TableSpec::all(CHASSIS_PRIVATE),
                ],
            )
            .await
            .map_err(err)?;
        self.southbound = Some((client, replica));
        Ok(self)
    }

    /// How long an agent whose chassis stopped following the Northbound configuration is
    /// still called alive (Neutron's `agent_down_time`, 75 s by default).
    pub fn with_agent_down_time(mut self, down: std::time::Duration) -> OvnBackend {
        self.agent_down_time = down;
        self
    }

    /// The Southbound replica (chassis and their liveness), when connected.
    pub fn southbound(&self) -> Option<&Replica> {
        self.southbound.as_ref().map(|(_, r)| r)
    }

    /// The chassis that may host router gateway ports, by name: those whose
    /// `ovn-cms-options` say `enable-chassis-as-gw`, or every chassis when none does (a
    /// single all-in-one node).
    pub fn gateway_chassis(&self) -> Vec<String> {
        let Some(sb) = self.southbound() else {
            return Vec::new();
        };
        let all: Vec<Row> = sb.table(CHASSIS).into_values().collect();
        let is_gw = |c: &Row| {
            [c.map("other_config"), c.map("external_ids")]
                .iter()
                .any(|m| {
                    m.get("ovn-cms-options")
                        .is_some_and(|o| o.split(',').any(|x| x == "enable-chassis-as-gw"))
                })
        };
        let mut names: Vec<String> = all
            .iter()
            .filter(|c| is_gw(c))
            .filter_map(|c| c.str("name").map(str::to_string))
            .collect();
        if names.is_empty() {
            names = all
                .iter()
                .filter_map(|c| c.str("name").map(str::to_string))
                .collect();
        }
        names.sort();
        names
    }

    /// The replica of the Northbound tables the backend writes (for `Logical_Switch_Port.up`).
    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    pub(crate) async fn transact(&self, ops: Vec<Op>) -> Result<(), BackendError> {
        if ops.is_empty() {
            return Ok(());
        }
        let revision = self.replica.revision();
        self.client.transact(NB, ops).await.map_err(err)?;
        // The next call diffs against the replica: give the server's update a moment to
        // arrive (it normally does within a millisecond). A transaction that changed
        // nothing sends no update, so the wait is bounded rather than certain; a diff made
        // on a stale replica is repaired by the next call or the reconciler.
        let mut rx = self.replica.subscribe();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(100);
        while *rx.borrow() == revision {
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                break;
            }
        }
        Ok(())
    }

    fn switch(&self, network_id: &str) -> Option<Row> {
        self.replica.find_str(LS, "name", &switch_name(network_id))
    }

    fn dhcp_rows(&self) -> Vec<Row> {
        self.replica.table(DHCP).into_values().collect()
    }

    async fn sync_network_locked(&self, s: &NetworkState) -> Result<(), BackendError> {
        let name = switch_name(&s.network.id);
        let mut ops = Vec::new();
        let existing_dhcp = self.dhcp_rows();
        let wanted: BTreeSet<&str> = s
            .subnets
            .iter()
            .filter(|sub| sub.enable_dhcp && sub.ip_version == 4)
            .map(|sub| sub.id.as_str())
            .collect();
        for sub in s.subnets.iter().filter(|x| wanted.contains(x.id.as_str())) {
            let row = Columns::new()
                .with("cidr", sub.cidr.as_str())
                .with(
                    "options",
                    map(dhcpv4_options(sub, s.network.mtu, metadata_ip(s, &sub.id))),
                )
                .with(
                    "external_ids",
                    map(BTreeMap::from([
                        ("subnet_id".to_string(), sub.id.clone()),
                        ("neutron:network_id".to_string(), s.network.id.clone()),
                        (
                            "neutron:revision_number".to_string(),
                            sub.revision_number.to_string(),
                        ),
                    ])),
                );
            match existing_dhcp
                .iter()
                .find(|r| r.map("external_ids").get("subnet_id") == Some(&sub.id))
            {
                Some(r) => ops.push(Op::update(DHCP, vec![Cond::uuid(r.uuid())], row)),
                None => ops.push(Op::insert(DHCP, row, None)),
            }
        }
        for r in &existing_dhcp {
            let ids = r.map("external_ids");
            let stale = ids.get("neutron:network_id") == Some(&s.network.id)
                && !ids
                    .get("subnet_id")
                    .is_some_and(|id| wanted.contains(id.as_str()));
            if stale {
                ops.push(Op::delete(DHCP, vec![Cond::uuid(r.uuid())]));
            }
        }
        let row = Columns::new()
            .with("name", name.as_str())
            .with("external_ids", map(switch_external_ids(s)))
            .with("other_config", map(switch_other_config(s)));
        let localnet = localnet_port(s);
        match self.switch(&s.network.id) {
            Some(ls) => {
                ops.push(Op::update(LS, vec![Cond::uuid(ls.uuid())], row));
                if let Some((port, options)) = &localnet {
                    if self.replica.find_str(LSP, "name", port).is_none() {
                        ops.push(localnet_insert(port, options));
                        ops.push(Op::mutate(
                            LS,
                            vec![Cond::uuid(ls.uuid())],
                            vec![Mutation::insert("ports", Value::named_uuid("localnet"))],
                        ));
                    }
                }
            }
            None => {
                // Switch names are not unique in OVN: refuse to make a second one.
                ops.push(Op::wait(
                    LS,
                    vec![Cond::eq("name", name.as_str())],
                    &["name"],
                    Until::Equal,
                    vec![],
                ));
                let mut row = row;
                if let Some((port, options)) = &localnet {
                    ops.push(localnet_insert(port, options));
                    row.set("ports", Value::named_uuid("localnet"));
                }
                ops.push(Op::insert(LS, row, None));
            }
        }
        self.transact(ops).await
    }

    fn port_group(&self, name: &str) -> Option<Row> {
        self.replica.find_str(PG, "name", name)
    }

    async fn sync_port_locked(&self, p: &PortState) -> Result<(), BackendError> {
        let port = &p.port;
        if port.device_owner == OWNER_FLOATINGIP {
            // A floating IP's port only holds its address: it is a NAT row, not a switch
            // port (as in ML2/OVN).
            return self.delete_port_locked(&port.id).await;
        }
        let ls = self.switch(&port.network_id).ok_or_else(|| {
            err(format!(
                "network {} has no switch yet; the reconciler will add port {}",
                port.network_id, port.id
            ))
        })?;
        let dhcp = p
            .addresses
            .iter()
            .find(|a| a.ip_version == 4 && a.enable_dhcp)
            .and_then(|a| {
                self.dhcp_rows()
                    .into_iter()
                    .find(|r| r.map("external_ids").get("subnet_id") == Some(&a.subnet_id))
            });
        let mut options = BTreeMap::new();
        if !port.host.is_empty() && port_type(p).is_empty() {
            options.insert("requested-chassis".to_string(), port.host.clone());
        }
        if port_type(p) == "router" {
            options =
                router_switch_port_options(&port.id, port.device_owner == OWNER_ROUTER_GATEWAY);
        }
        let row = Columns::new()
            .with("name", port.id.as_str())
            .with("addresses", strings(port_addresses(p)))
            .with("port_security", strings(port_security(p)))
            .with("type", port_type(p))
            .with("external_ids", map(port_external_ids(p)))
            .with("options", map(options))
            .with("enabled", port.admin_state_up)
            .with(
                "dhcpv4_options",
                match &dhcp {
                    Some(d) => Value::set([d.uuid()]),
                    None => Value::empty_set(),
                },
            );
        let mut ops = Vec::new();
        let existing = self.replica.find_str(LSP, "name", &port.id);
        let lsp_ref = match &existing {
            Some(r) => {
                ops.push(Op::update(LSP, vec![Cond::uuid(r.uuid())], row));
                Value::uuid(r.uuid())
            }
            None => {
                ops.push(Op::insert(LSP, row, Some("lsp")));
                ops.push(Op::mutate(
                    LS,
                    vec![Cond::uuid(ls.uuid())],
                    vec![Mutation::insert("ports", Value::named_uuid("lsp"))],
                ));
                Value::named_uuid("lsp")
            }
        };
        // Group membership: the port's groups, plus the drop group while port security is on.
        let mut groups: BTreeSet<String> = p
            .security_group_ids
            .iter()
            .map(|g| port_group_name(g))
            .collect();
        let secured = port.port_security_enabled && port_type(p).is_empty();
        if secured {
            groups.insert(DROP_PORT_GROUP.to_string());
        }
        for (i, g) in groups.iter().enumerate() {
            match self.port_group(g) {
                Some(pg) => {
                    let member = existing
                        .as_ref()
                        .is_some_and(|r| pg.uuid_set("ports").contains(&r.uuid()));
                    if !member {
                        ops.push(Op::mutate(
                            PG,
                            vec![Cond::uuid(pg.uuid())],
                            vec![Mutation::insert("ports", lsp_ref.clone())],
                        ));
                    }
                }
                None => ops.extend(port_group_insert(g, Some(lsp_ref.clone()), i)),
            }
        }
        if let Some(r) = &existing {
            for pg in self.replica.table(PG).values() {
                let name = pg.str("name").unwrap_or_default();
                if pg.uuid_set("ports").contains(&r.uuid()) && !groups.contains(name) {
                    ops.push(Op::mutate(
                        PG,
                        vec![Cond::uuid(pg.uuid())],
                        vec![Mutation::delete("ports", Value::uuid(r.uuid()))],
                    ));
                }
            }
        }
        self.transact(ops).await
    }

    async fn delete_port_locked(&self, port_id: &str) -> Result<(), BackendError> {
        let Some(lsp) = self.replica.find_str(LSP, "name", port_id) else {
            return Ok(());
        };
        // The switch's reference is the strong one: dropping it deletes the port, and the
        // port groups' weak references go with it.
        let ops = self
            .replica
            .table(LS)
            .values()
            .filter(|ls| ls.uuid_set("ports").contains(&lsp.uuid()))
            .map(|ls| {
                Op::mutate(
                    LS,
                    vec![Cond::uuid(ls.uuid())],
                    vec![Mutation::delete("ports", Value::uuid(lsp.uuid()))],
                )
            })
            .collect();
        self.transact(ops).await
    }

    async fn sync_group_locked(&self, s: &SecurityGroupState) -> Result<(), BackendError> {
        let name = port_group_name(&s.group.id);
        let mut ops = Vec::new();
        let mut acl_refs = Vec::new();
        for (i, rule) in s.rules.iter().enumerate() {
            let acl = rule_acl(rule, s.group.stateful);
            let named = format!("acl{i}");
            ops.push(acl_insert(
                &acl,
                BTreeMap::from([(
                    "neutron:security_group_rule_id".to_string(),
                    rule.id.clone(),
                )]),
                &named,
            ));
            acl_refs.push(Value::named_uuid(named));
        }
        let acls = Value::set(acl_refs.iter().filter_map(|v| v.single().cloned()));
        let ids = map(BTreeMap::from([(
            "neutron:security_group_id".to_string(),
            s.group.id.clone(),
        )]));
        match self.port_group(&name) {
            // The ACLs are replaced whole; the old ones, unreferenced, are collected.
            Some(pg) => ops.push(Op::update(
                PG,
                vec![Cond::uuid(pg.uuid())],
                Columns::new().with("acls", acls).with("external_ids", ids),
            )),
            None => ops.push(Op::insert(
                PG,
                Columns::new()
                    .with("name", name.as_str())
                    .with("acls", acls)
                    .with("external_ids", ids),
                None,
            )),
        }
        self.transact(ops).await
    }
}

fn localnet_insert(port: &str, options: &BTreeMap<String, String>) -> Op {
    Op::insert(
        LSP,
        Columns::new()
            .with("name", port)
            .with("type", "localnet")
            .with("addresses", strings(vec!["unknown".into()]))
            .with("options", map(options.clone())),
        Some("localnet"),
    )
}

fn acl_insert(acl: &Acl, external_ids: BTreeMap<String, String>, named: &str) -> Op {
    Op::insert(
        "ACL",
        Columns::new()
            .with("direction", acl.direction)
            .with("priority", acl.priority)
            .with("match", acl.matches.as_str())
            .with("action", acl.action)
            .with("external_ids", map(external_ids)),
        Some(named),
    )
}

/// Inserts a port group (with the drop ACLs when it is the drop group, none otherwise: a
/// security group's rules come with its own sync), optionally with a first port.
fn port_group_insert(name: &str, port: Option<Value>, i: usize) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut acls = Vec::new();
    if name == DROP_PORT_GROUP {
        for (j, acl) in drop_acls().iter().enumerate() {
            let named = format!("drop{i}_{j}");
            ops.push(acl_insert(acl, BTreeMap::new(), &named));
            acls.push(Value::named_uuid(named));
        }
    }
    let mut row = Columns::new().with("name", name).with(
        "acls",
        Value::set(acls.iter().filter_map(|v| v.single().cloned())),
    );
    if let Some(p) = port {
        row.set("ports", p);
    }
    ops.push(Op::insert(PG, row, None));
    ops
}

impl NetworkBackend for OvnBackend {
    fn name(&self) -> &'static str {
        "ovn"
    }
    /// ovn-controller binds a port when its VM's tap appears; `status::spawn_port_status`
    /// turns that into `ACTIVE`.
    fn reports_port_status(&self) -> bool {
        true
    }
    fn sync_network<'a>(&'a self, state: &'a NetworkState) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let _w = self.writing.lock().await;
            self.sync_network_locked(state).await
        })
    }
    fn delete_network<'a>(&'a self, network_id: &'a str) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let _w = self.writing.lock().await;
            let mut ops: Vec<Op> = self
                .dhcp_rows()
                .iter()
                .filter(|r| {
                    r.map("external_ids")
                        .get("neutron:network_id")
                        .map(String::as_str)
                        == Some(network_id)
                })
                .map(|r| Op::delete(DHCP, vec![Cond::uuid(r.uuid())]))
                .collect();
            ops.push(Op::delete(
                LS,
                vec![Cond::eq("name", switch_name(network_id).as_str())],
            ));
            self.transact(ops).await
        })
    }
    fn sync_port<'a>(&'a self, state: &'a PortState) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let _w = self.writing.lock().await;
            self.sync_port_locked(state).await
        })
    }
    fn delete_port<'a>(&'a self, state: &'a PortState) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let _w = self.writing.lock().await;
            self.delete_port_locked(&state.port.id).await
        })
    }
    fn sync_security_group<'a>(
        &'a self,
        state: &'a SecurityGroupState,
    ) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let _w = self.writing.lock().await;
            self.sync_group_locked(state).await
        })
    }
    fn delete_security_group<'a>(
        &'a self,
        group_id: &'a str,
    ) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let _w = self.writing.lock().await;
            let name = port_group_name(group_id);
            self.transact(vec![Op::delete(PG, vec![Cond::eq("name", name.as_str())])])
                .await
        })
    }
    fn sync_router<'a>(&'a self, state: &'a RouterState) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let _w = self.writing.lock().await;
            self.sync_router_locked(state).await
        })
    }
    fn delete_router<'a>(&'a self, router_id: &'a str) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let _w = self.writing.lock().await;
            self.delete_router_locked(router_id).await
        })
    }
    fn sync_floating_ip<'a>(
        &'a self,
        state: &'a FloatingIpState,
    ) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let _w = self.writing.lock().await;
            self.sync_fip_locked(state).await
        })
    }
    fn delete_floating_ip<'a>(
        &'a self,
        floating_ip_id: &'a str,
    ) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let _w = self.writing.lock().await;
            self.delete_fip_locked(floating_ip_id).await
        })
    }
    /// Syncs everything the snapshot holds (groups first: ports join them), then removes
    /// the Neutron-named switches, ports and groups it does not hold.
    fn list_agents(&self) -> BoxFut<'_, Result<Vec<Agent>, BackendError>> {
        Box::pin(self.agents())
    }

    fn set_agent_description<'a>(
        &'a self,
        agent_id: &'a str,
        description: &'a str,
    ) -> BoxFut<'a, Result<bool, BackendError>> {
        Box::pin(self.set_description(agent_id, description))
    }

    fn delete_agent<'a>(&'a self, agent_id: &'a str) -> BoxFut<'a, Result<bool, BackendError>> {
        Box::pin(self.remove_agent(agent_id))
    }

    fn full_sync<'a>(&'a self, snapshot: &'a Snapshot) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let _w = self.writing.lock().await;
            for g in &snapshot.security_groups {
                self.sync_group_locked(g).await?;
            }
            for n in &snapshot.networks {
                self.sync_network_locked(n).await?;
            }
            for p in &snapshot.ports {
                self.sync_port_locked(p).await?;
            }
            let nets: BTreeSet<String> = snapshot
                .networks
                .iter()
                .map(|n| switch_name(&n.network.id))
                .collect();
            let ports: BTreeSet<&str> = snapshot.ports.iter().map(|p| p.port.id.as_str()).collect();
            let groups: BTreeSet<String> = snapshot
                .security_groups
                .iter()
                .map(|g| port_group_name(&g.group.id))
                .collect();
            let mut ops = Vec::new();
            for ls in self.replica.table(LS).values() {
                let name = ls.str("name").unwrap_or_default();
                if !name.starts_with("neutron-") {
                    continue;
                }
                if !nets.contains(name) {
                    ops.push(Op::delete(LS, vec![Cond::uuid(ls.uuid())]));
                    continue;
                }
                for uuid in ls.uuid_set("ports") {
                    let Some(lsp) = self.replica.get(LSP, uuid) else {
                        continue;
                    };
                    let lsp_name = lsp.str("name").unwrap_or_default();
                    if !lsp_name.starts_with("provnet-") && !ports.contains(lsp_name) {
                        ops.push(Op::mutate(
                            LS,
                            vec![Cond::uuid(ls.uuid())],
                            vec![Mutation::delete("ports", Value::uuid(uuid))],
                        ));
                    }
                }
            }
            let net_ids: BTreeSet<&str> = snapshot
                .networks
                .iter()
                .map(|n| n.network.id.as_str())
                .collect();
            for d in self.dhcp_rows() {
                let ids = d.map("external_ids");
                if ids
                    .get("neutron:network_id")
                    .is_some_and(|n| !net_ids.contains(n.as_str()))
                {
                    ops.push(Op::delete(DHCP, vec![Cond::uuid(d.uuid())]));
                }
            }
            for pg in self.replica.table(PG).values() {
                let name = pg.str("name").unwrap_or_default();
                if name.starts_with("pg_") && !groups.contains(name) {
                    ops.push(Op::delete(PG, vec![Cond::uuid(pg.uuid())]));
                }
            }
            self.transact(ops).await?;
            self.full_sync_routing(snapshot).await
        })
    }
}
