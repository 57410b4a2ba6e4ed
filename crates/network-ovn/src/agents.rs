//! Neutron's agents as ML2/OVN derives them from the Southbound database: for every
//! `Chassis` an OVN Controller agent (an "OVN Controller Gateway agent" when the chassis
//! offers `enable-chassis-as-gw` in `ovn-cms-options`), binary `ovn-controller`, id the
//! chassis name; and an OVN Metadata agent, binary `neutron-ovn-metadata-agent`, whose id
//! is the one Neutron's metadata agent registers (`neutron:ovn-metadata-id` in the
//! `Chassis_Private` external ids), or, when none has registered, the id it would register:
//! `uuid5(uuid5(namespace, chassis) or the chassis name read as a UUID, "metadata_agent")`.
//!
//! Liveness follows ML2/OVN: an agent is alive when its chassis' `Chassis_Private.nb_cfg`
//! is at most one behind `NB_Global.nb_cfg` (ovn-controller has applied the Northbound
//! configuration), or when it last moved less than `agent_down_time` (75 s) ago. Listing
//! bumps `NB_Global.nb_cfg` at most every `agent_down_time / 2`, as ML2/OVN's
//! `ping_all_chassis` does, so a stopped ovn-controller falls behind and shows dead. The
//! metadata agent is alive when its controller is (and, if a Neutron metadata agent has
//! registered its `neutron:ovn-metadata-sb-cfg`, when that is in step too).
//! Descriptions live where ML2/OVN keeps them, in `Chassis_Private.external_ids`.
//! `created_at` and `started_at` are when this process first saw the chassis (OVN records
//! no such time); `heartbeat_timestamp` is now while the chassis is in step, else the last
//! time it was seen to move.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferrostack_network::backend::{Agent, BackendError};
use ferrostack_ovsdb::{Cond, Mutation, Mutator, Op, Row, Value};
use serde_json::json;
use sha1::{Digest, Sha1};

use crate::backend::{OvnBackend, CHASSIS, CHASSIS_PRIVATE};

pub const CONTROLLER_AGENT: &str = "OVN Controller agent";
pub const CONTROLLER_GW_AGENT: &str = "OVN Controller Gateway agent";
pub const METADATA_AGENT: &str = "OVN Metadata agent";
const DESC_KEY: &str = "neutron:description";
const METADATA_DESC_KEY: &str = "neutron:description-metadata";
const METADATA_ID_KEY: &str = "neutron:ovn-metadata-id";
const METADATA_SB_CFG_KEY: &str = "neutron:ovn-metadata-sb-cfg";
/// Neutron's metadata agent's namespace for chassis names that are not UUIDs.
const METADATA_NAMESPACE: &str = "d34bf9f6-da32-4871-9af8-15a4626b41ab";
/// Neutron's `agent_down_time` default.
pub const AGENT_DOWN_TIME: Duration = Duration::from_secs(75);

/// What this process has seen of one chassis.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    first: i64,
    nb_cfg: i64,
    moved: i64,
}

#[derive(Debug, Default)]
pub(crate) struct AgentClock {
    seen: BTreeMap<String, Seen>,
    last_ping: Option<Instant>,
}

/// RFC 4122 name-based UUID (version 5, SHA-1).
pub fn uuid5(namespace: &uuid::Uuid, name: &str) -> uuid::Uuid {
    let mut h = Sha1::new();
    h.update(namespace.as_bytes());
    h.update(name.as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

/// The id Neutron's OVN metadata agent registers for a chassis.
pub fn metadata_agent_id(chassis_name: &str) -> String {
    let chassis_id = uuid::Uuid::parse_str(chassis_name).unwrap_or_else(|_| {
        uuid5(
            &uuid::Uuid::parse_str(METADATA_NAMESPACE).expect("a UUID"),
            chassis_name,
        )
    });
    uuid5(&chassis_id, "metadata_agent").to_string()
}

/// `ovn-cms-options` of a chassis (other_config, or external_ids before OVN 22.09).
fn cms_options(c: &Row) -> Vec<String> {
    [c.map("other_config"), c.map("external_ids")]
        .iter()
        .find_map(|m| m.get("ovn-cms-options").cloned())
        .map(|o| o.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default()
}

fn chassis_setting(c: &Row, key: &str) -> String {
    [c.map("other_config"), c.map("external_ids")]
        .iter()
        .find_map(|m| m.get(key).cloned())
        .unwrap_or_default()
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn sb_err(e: impl std::fmt::Display) -> BackendError {
    BackendError(format!("OVN Southbound: {e}"))
}

impl OvnBackend {
    /// The agents of the Southbound chassis, as ML2/OVN lists them.
    pub async fn agents(&self) -> Result<Vec<Agent>, BackendError> {
        let Some(sb) = self.southbound() else {
            return Ok(Vec::new());
        };
        self.ping_chassis().await;
        let nb_global_cfg = self.replica.read(|v| {
            v.rows("NB_Global")
                .next()
                .and_then(|r| r.int("nb_cfg"))
                .unwrap_or(0)
        });
        let (chassis, private): (Vec<Row>, Vec<Row>) = sb.read(|v| {
            (
                v.rows(CHASSIS).cloned().collect(),
                v.rows(CHASSIS_PRIVATE).cloned().collect(),
            )
        });
        let now = now_micros();
        let down = self.agent_down_time.as_micros() as i64;
        let mut clock = self.agent_clock.lock().unwrap_or_else(|p| p.into_inner());
        let mut agents = Vec::new();
        for c in &chassis {
            let Some(name) = c.str("name").map(str::to_string) else {
                continue;
            };
            let cp = private
                .iter()
                .find(|p| p.str("name") == Some(name.as_str()));
            let cp_ids = cp.map(|p| p.map("external_ids")).unwrap_or_default();
            let nb_cfg = cp.and_then(|p| p.int("nb_cfg")).unwrap_or(0);
            let stamp = cp
                .and_then(|p| p.int("nb_cfg_timestamp"))
                .unwrap_or(0)
                .saturating_mul(1000);
            let seen = clock.seen.entry(name.clone()).or_insert(Seen {
                first: now,
                nb_cfg,
                moved: now,
            });
            if seen.nb_cfg != nb_cfg {
                seen.nb_cfg = nb_cfg;
                seen.moved = now;
            }
            let moved = seen.moved.max(stamp);
            let first = seen.first;
            let in_step = |cfg: i64| nb_global_cfg - cfg <= 1;
            let controller_alive = in_step(nb_cfg) || now - moved < down;
            let heartbeat = if in_step(nb_cfg) { now } else { moved };
            let cms = cms_options(c);
            let configurations = json!({
                "chassis_name": name,
                "bridge-mappings": chassis_setting(c, "ovn-bridge-mappings"),
            });
            let az = cms
                .iter()
                .find_map(|o| o.strip_prefix("availability-zones="))
                .map(|z| {
                    let mut zs: Vec<&str> = z.split(':').filter(|s| !s.is_empty()).collect();
                    zs.sort();
                    zs.join(", ")
                })
                .unwrap_or_default();
            let host = c.str("hostname").unwrap_or_default().to_string();
            let agent =
                |id: String, agent_type: &str, binary: &str, desc: &str, alive: bool| Agent {
                    id,
                    agent_type: agent_type.to_string(),
                    binary: binary.to_string(),
                    host: host.clone(),
                    topic: "n/a".to_string(),
                    availability_zone: az.clone(),
                    description: cp_ids.get(desc).cloned().unwrap_or_default(),
                    configurations: configurations.clone(),
                    alive,
                    admin_state_up: true,
                    created_at: first,
                    started_at: first,
                    heartbeat_timestamp: heartbeat,
                };
            let gateway = cms.iter().any(|o| o == "enable-chassis-as-gw");
            agents.push(agent(
                name.clone(),
                if gateway {
                    CONTROLLER_GW_AGENT
                } else {
                    CONTROLLER_AGENT
                },
                "ovn-controller",
                DESC_KEY,
                controller_alive,
            ));
            let metadata_alive = controller_alive
                && match cp_ids.get(METADATA_SB_CFG_KEY).and_then(|v| v.parse().ok()) {
                    Some(cfg) => in_step(cfg) || now - moved < down,
                    None => true,
                };
            agents.push(agent(
                cp_ids
                    .get(METADATA_ID_KEY)
                    .cloned()
                    .unwrap_or_else(|| metadata_agent_id(&name)),
                METADATA_AGENT,
                "neutron-ovn-metadata-agent",
                METADATA_DESC_KEY,
                metadata_alive,
            ));
        }
        let names: Vec<String> = chassis
            .iter()
            .filter_map(|c| c.str("name").map(str::to_string))
            .collect();
        clock.seen.retain(|k, _| names.contains(k));
        Ok(agents)
    }

    /// Bumps `NB_Global.nb_cfg` when it was not bumped for half of `agent_down_time`, so
    /// live chassis answer and dead ones fall behind (ML2/OVN's `ping_all_chassis`).
    async fn ping_chassis(&self) {
        {
            let mut clock = self.agent_clock.lock().unwrap_or_else(|p| p.into_inner());
            if clock
                .last_ping
                .is_some_and(|t| t.elapsed() < self.agent_down_time / 2)
            {
                return;
            }
            clock.last_ping = Some(Instant::now());
        }
        let op = Op::mutate(
            "NB_Global",
            vec![],
            vec![Mutation::new("nb_cfg", Mutator::Add, Value::from(1i64))],
        );
        if let Err(e) = self.transact(vec![op]).await {
            tracing::warn!(error = %e, "could not bump NB_Global.nb_cfg to check the chassis");
        }
    }

    /// The chassis an agent id belongs to, and whether it is the metadata agent.
    async fn agent_chassis(&self, agent_id: &str) -> Result<Option<(String, bool)>, BackendError> {
        Ok(self
            .agents()
            .await?
            .into_iter()
            .find(|a| a.id == agent_id)
            .map(|a| {
                (
                    a.configurations["chassis_name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    a.agent_type == METADATA_AGENT,
                )
            }))
    }

    pub async fn set_description(
        &self,
        agent_id: &str,
        description: &str,
    ) -> Result<bool, BackendError> {
        let Some((chassis, metadata)) = self.agent_chassis(agent_id).await? else {
            return Ok(false);
        };
        let key = if metadata {
            METADATA_DESC_KEY
        } else {
            DESC_KEY
        };
        let op = Op::mutate(
            CHASSIS_PRIVATE,
            vec![Cond::eq("name", chassis.as_str())],
            Mutation::map_set("external_ids", key, description).to_vec(),
        );
        self.sb_transact(vec![op]).await?;
        Ok(true)
    }

    /// Removes the agent's chassis (`Chassis` and `Chassis_Private`), as ML2/OVN does.
    pub async fn remove_agent(&self, agent_id: &str) -> Result<bool, BackendError> {
        let Some((chassis, _)) = self.agent_chassis(agent_id).await? else {
            return Ok(false);
        };
        self.sb_transact(vec![
            Op::delete(CHASSIS_PRIVATE, vec![Cond::eq("name", chassis.as_str())]),
            Op::delete(CHASSIS, vec![Cond::eq("name", chassis.as_str())]),
        ])
        .await?;
        Ok(true)
    }

    /// One Southbound transaction; returns once the replica has it (or shortly after).
    async fn sb_transact(&self, ops: Vec<Op>) -> Result<(), BackendError> {
        let Some((client, replica)) = self.southbound.as_ref() else {
            return Err(sb_err("not connected"));
        };
        let revision = replica.revision();
        client
            .transact("OVN_Southbound", ops)
            .await
            .map_err(sb_err)?;
        let mut rx = replica.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
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
}
