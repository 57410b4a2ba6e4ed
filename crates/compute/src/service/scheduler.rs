//! The scheduler, as Nova's filter scheduler does it: ask Placement for allocation
//! candidates that fit the flavor, keep the hosts that pass the filters (compute service up
//! and enabled, availability zone, a requested host, and the hard server-group policies:
//! affinity, and anti-affinity with at most `max_server_per_host` members per host), order
//! them by the weighers, and claim the best; a claim that loses a race to another boot tries
//! the next candidate.
//!
//! The weighers are Nova's: free RAM, free vCPU, free disk, and for a member of a group with
//! a soft policy the number of the group's other members on the host (more is better for
//! soft-affinity, fewer for soft-anti-affinity). Each weigher's values are normalised over the
//! candidates to 0..1 (all equal: 0 for everyone), multiplied by its multiplier (Nova's
//! defaults: 1.0 each) and summed. So the soft policies never exclude a host, and they weigh
//! as much as one resource weigher: with the defaults, soft-anti-affinity spreads (the free
//! room agrees with it), while soft-affinity packs only where the hosts' free room is even
//! or its multiplier is raised, as in Nova.

use std::collections::BTreeMap;

use ferrostack_placement::service::allocations::{CandidateAllocation, ConsumerAllocations};

use super::ComputeService;
use crate::error::{ComputeError, Result};
use crate::model::Instance;

/// Where a server was placed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Placed {
    pub host: String,
    pub node: String,
    pub allocations: BTreeMap<String, BTreeMap<String, i64>>,
}

/// The weighers' multipliers (Nova's `[filter_scheduler] *_weight_multiplier`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Multipliers {
    pub ram: f64,
    pub cpu: f64,
    pub disk: f64,
    pub soft_affinity: f64,
    pub soft_anti_affinity: f64,
}

impl Default for Multipliers {
    fn default() -> Self {
        Multipliers {
            ram: 1.0,
            cpu: 1.0,
            disk: 1.0,
            soft_affinity: 1.0,
            soft_anti_affinity: 1.0,
        }
    }
}

/// A server group as the scheduler sees it when placing one of its members.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupState {
    pub policy: String,
    /// How many members one host may hold under anti-affinity (1 unless a rule says).
    pub max_server_per_host: i64,
    /// How many of the group's other members each host holds (hosts with none are absent).
    pub members_on_host: BTreeMap<String, i64>,
}

impl GroupState {
    fn members_on(&self, host: &str) -> i64 {
        self.members_on_host.get(host).copied().unwrap_or(0)
    }

    /// Whether the group's hard policy lets the member go to `host` (Nova's
    /// ServerGroupAffinityFilter and ServerGroupAntiAffinityFilter). The soft policies let
    /// every host pass.
    pub fn admits(&self, host: &str) -> bool {
        match self.policy.as_str() {
            "affinity" => self.members_on_host.is_empty() || self.members_on(host) > 0,
            "anti-affinity" => self.members_on(host) < self.max_server_per_host,
            _ => true,
        }
    }

    /// The soft-policy weigher's raw weight of `host` and its multiplier, if the policy is
    /// a soft one (Nova's ServerGroupSoftAffinityWeigher and SoftAntiAffinityWeigher).
    fn soft_weight(&self, host: &str, m: &Multipliers) -> Option<(f64, f64)> {
        let n = self.members_on(host) as f64;
        match self.policy.as_str() {
            "soft-affinity" => Some((n, m.soft_affinity)),
            "soft-anti-affinity" => Some((-n, m.soft_anti_affinity)),
            _ => None,
        }
    }
}

/// What the filters and weighers need to know besides the candidates.
#[derive(Debug, Default, Clone)]
pub struct Constraints {
    /// Hosts with a compute service that is up and enabled, and their zones.
    pub hosts: BTreeMap<String, String>,
    pub zone: Option<String>,
    pub requested_host: Option<String>,
    /// The server's group, when it is in one.
    pub group: Option<GroupState>,
    pub multipliers: Multipliers,
}

/// Nova's `normalize`: the values scaled to 0..1 over their range; all equal gives zeros.
fn normalize(values: &[f64]) -> Vec<f64> {
    let (lo, hi) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    values
        .iter()
        .map(|v| if hi > lo { (v - lo) / (hi - lo) } else { 0.0 })
        .collect()
}

/// The candidates that pass the filters, best first (ties keep Placement's order).
/// `node_host` maps a candidate's root provider (the compute node uuid) to its host.
pub fn filter_and_weigh<'a>(
    candidates: &'a [CandidateAllocation],
    node_host: &BTreeMap<String, String>,
    c: &Constraints,
) -> Vec<(&'a CandidateAllocation, String)> {
    let kept: Vec<(&CandidateAllocation, String)> = candidates
        .iter()
        .filter_map(|cand| {
            let host = node_host.get(&cand.root)?;
            let zone = c.hosts.get(host)?;
            if c.zone.as_ref().is_some_and(|z| z != zone) {
                return None;
            }
            if c.requested_host.as_ref().is_some_and(|h| h != host) {
                return None;
            }
            if c.group.as_ref().is_some_and(|g| !g.admits(host)) {
                return None;
            }
            Some((cand, host.clone()))
        })
        .collect();
    // Free amount of a class on the root provider.
    let free = |cand: &CandidateAllocation, class: &str| -> f64 {
        let (cap, used) = cand
            .capacity
            .get(&cand.root)
            .and_then(|m| m.get(class))
            .copied()
            .unwrap_or((0, 0));
        (cap - used) as f64
    };
    let m = &c.multipliers;
    let mut weighers: Vec<(f64, Vec<f64>)> =
        [("MEMORY_MB", m.ram), ("VCPU", m.cpu), ("DISK_GB", m.disk)]
            .into_iter()
            .map(|(class, multiplier)| {
                let values = kept.iter().map(|(cand, _)| free(cand, class)).collect();
                (multiplier, values)
            })
            .collect();
    if let Some(g) = &c.group {
        let soft: Option<Vec<(f64, f64)>> = kept
            .iter()
            .map(|(_, host)| g.soft_weight(host, m))
            .collect();
        if let Some(soft) = soft.filter(|s| !s.is_empty()) {
            let multiplier = soft[0].1;
            weighers.push((multiplier, soft.into_iter().map(|(w, _)| w).collect()));
        }
    }
    let mut scores = vec![0.0f64; kept.len()];
    for (multiplier, values) in &weighers {
        for (score, w) in scores.iter_mut().zip(normalize(values)) {
            *score += multiplier * w;
        }
    }
    let mut order: Vec<usize> = (0..kept.len()).collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b)));
    order.into_iter().map(|i| kept[i].clone()).collect()
}

impl ComputeService {
    /// The query Placement gets for a server's flavor.
    pub fn resource_query(inst: &Instance, limit: usize) -> Vec<(String, String)> {
        let f = &inst.flavor;
        let mut resources = vec![format!("VCPU:{}", f.vcpus), format!("MEMORY_MB:{}", f.ram)];
        let disk = f.disk + f.ephemeral + (f.swap + 1023) / 1024;
        if disk > 0 {
            resources.push(format!("DISK_GB:{disk}"));
        }
        vec![
            ("resources".to_string(), resources.join(",")),
            ("limit".to_string(), limit.to_string()),
        ]
    }

    /// Picks a host for `inst` and claims its resources in Placement (consumer = the
    /// server's uuid). Idempotent: a server that already holds allocations keeps them.
    pub async fn schedule(&self, inst: &Instance, c: &Constraints) -> Result<Placed> {
        let node_host: BTreeMap<String, String> = self
            .compute_nodes()
            .await?
            .into_iter()
            .map(|n| (n.uuid, n.host))
            .collect();
        if let Ok(existing) = self.placement.consumer_allocations(&inst.uuid).await {
            if !existing.rows.is_empty() {
                let mut allocations: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
                let mut node = None;
                for row in &existing.rows {
                    let uuid = row.provider_uuid.clone();
                    if node_host.contains_key(&uuid) {
                        node = Some(uuid.clone());
                    }
                    allocations
                        .entry(uuid)
                        .or_default()
                        .insert(row.resource_class.clone(), row.used);
                }
                if let Some(node) = node {
                    return Ok(Placed {
                        host: node_host[&node].clone(),
                        node,
                        allocations,
                    });
                }
            }
        }
        let query = Self::resource_query(inst, self.config.max_placement_results);
        let candidates = self
            .placement
            .candidate_allocations(&query)
            .await
            .map_err(|e| ComputeError::internal(format!("allocation candidates: {e}")))?;
        let ordered = filter_and_weigh(&candidates, &node_host, c);
        for (cand, host) in ordered {
            let claim = ConsumerAllocations {
                consumer: inst.uuid.clone(),
                allocations: cand.allocations.clone(),
                project_id: inst.project_id.clone(),
                user_id: inst.user_id.clone(),
                generation: Some(None),
                consumer_type: Some("INSTANCE".into()),
            };
            match self.placement.set_allocations(vec![claim]).await {
                Ok(()) => {
                    return Ok(Placed {
                        host,
                        node: cand.root.clone(),
                        allocations: cand.allocations.clone(),
                    })
                }
                // Another boot took the room first: the next candidate may still fit.
                Err(e) if e.status.as_u16() == 409 => {
                    tracing::debug!(server = %inst.uuid, %host, error = %e, "claim lost a race");
                    continue;
                }
                Err(e) => return Err(ComputeError::internal(format!("claim: {e}"))),
            }
        }
        Err(ComputeError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "No valid host was found. There are not enough hosts available.",
        ))
    }

    /// Gives back what a server holds in Placement (idempotent).
    pub async fn release(&self, uuid: &str) -> Result<()> {
        match self.placement.delete_allocations(uuid).await {
            Ok(()) => Ok(()),
            Err(e) if e.status.as_u16() == 404 => Ok(()),
            Err(e) => Err(ComputeError::internal(format!(
                "releasing allocations: {e}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(root: &str, free_ram: i64, free_cpu: i64) -> CandidateAllocation {
        let mut cap = BTreeMap::new();
        cap.insert("MEMORY_MB".to_string(), (free_ram, 0));
        cap.insert("VCPU".to_string(), (free_cpu, 0));
        CandidateAllocation {
            root: root.into(),
            allocations: BTreeMap::new(),
            capacity: [(root.to_string(), cap)].into_iter().collect(),
        }
    }

    fn hosts(names: &[&str]) -> (BTreeMap<String, String>, Constraints) {
        let node_host = names
            .iter()
            .map(|n| (format!("n-{n}"), n.to_string()))
            .collect();
        let c = Constraints {
            hosts: names
                .iter()
                .map(|n| (n.to_string(), "nova".to_string()))
                .collect(),
            ..Default::default()
        };
        (node_host, c)
    }

    #[test]
    fn spreads_to_the_host_with_most_free_memory() {
        let cands = vec![
            cand("n-a", 1000, 4),
            cand("n-b", 4000, 4),
            cand("n-c", 2000, 8),
        ];
        let (nh, c) = hosts(&["a", "b", "c"]);
        let order: Vec<String> = filter_and_weigh(&cands, &nh, &c)
            .into_iter()
            .map(|(_, h)| h)
            .collect();
        // b: ram 1.0 + cpu 0; c: ram 0.33 + cpu 1.0; a: 0.
        assert_eq!(order, vec!["c", "b", "a"]);
    }

    fn hosts_of(
        cands: &[CandidateAllocation],
        nh: &BTreeMap<String, String>,
        c: &Constraints,
    ) -> Vec<String> {
        filter_and_weigh(cands, nh, c)
            .into_iter()
            .map(|(_, h)| h)
            .collect()
    }

    fn group(policy: &str, max: i64, members: &[(&str, i64)]) -> Option<GroupState> {
        Some(GroupState {
            policy: policy.into(),
            max_server_per_host: max,
            members_on_host: members.iter().map(|(h, n)| (h.to_string(), *n)).collect(),
        })
    }

    #[test]
    fn filters_down_hosts_zones_and_groups() {
        let cands = vec![cand("n-a", 1, 1), cand("n-b", 1, 1), cand("n-x", 1, 1)];
        let (nh, mut c) = hosts(&["a", "b"]);
        // n-x has no up service: never chosen.
        assert_eq!(filter_and_weigh(&cands, &nh, &c).len(), 2);
        c.group = group("anti-affinity", 1, &[("a", 1)]);
        assert_eq!(hosts_of(&cands, &nh, &c), vec!["b"]);
        c.group = group("affinity", 1, &[("a", 1)]);
        assert_eq!(hosts_of(&cands, &nh, &c), vec!["a"]);
        // The first member of an affinity group may go anywhere.
        c.group = group("affinity", 1, &[]);
        assert_eq!(hosts_of(&cands, &nh, &c).len(), 2);
        c.group = None;
        c.zone = Some("elsewhere".into());
        assert!(filter_and_weigh(&cands, &nh, &c).is_empty());
    }

    #[test]
    fn anti_affinity_allows_max_server_per_host_members() {
        let cands = vec![cand("n-a", 1, 1), cand("n-b", 1, 1)];
        let (nh, mut c) = hosts(&["a", "b"]);
        c.group = group("anti-affinity", 2, &[("a", 1)]);
        assert_eq!(hosts_of(&cands, &nh, &c).len(), 2);
        c.group = group("anti-affinity", 2, &[("a", 2), ("b", 1)]);
        assert_eq!(hosts_of(&cands, &nh, &c), vec!["b"]);
        c.group = group("anti-affinity", 2, &[("a", 2), ("b", 2)]);
        assert!(hosts_of(&cands, &nh, &c).is_empty());
    }

    #[test]
    fn soft_policies_weigh_and_never_filter() {
        // Even free room: the soft weigher decides.
        let even = vec![
            cand("n-a", 1000, 4),
            cand("n-b", 1000, 4),
            cand("n-c", 1000, 4),
        ];
        let (nh, mut c) = hosts(&["a", "b", "c"]);
        c.group = group("soft-affinity", 1, &[("b", 2), ("c", 1)]);
        assert_eq!(hosts_of(&even, &nh, &c), vec!["b", "c", "a"]);
        c.group = group("soft-anti-affinity", 1, &[("a", 3), ("b", 1)]);
        assert_eq!(hosts_of(&even, &nh, &c), vec!["c", "b", "a"]);
        // Every host full of members still passes.
        c.group = group("soft-anti-affinity", 1, &[("a", 5), ("b", 5), ("c", 5)]);
        assert_eq!(hosts_of(&even, &nh, &c).len(), 3);

        // Uneven room: with Nova's multipliers the member's host has less room, and the
        // resource weighers outweigh soft-affinity; raising its multiplier packs.
        let uneven = vec![cand("n-a", 900, 3), cand("n-b", 1000, 4)];
        let (nh, mut c) = hosts(&["a", "b"]);
        c.group = group("soft-affinity", 1, &[("a", 1)]);
        assert_eq!(hosts_of(&uneven, &nh, &c), vec!["b", "a"]);
        c.multipliers.soft_affinity = 10.0;
        assert_eq!(hosts_of(&uneven, &nh, &c), vec!["a", "b"]);
        // Soft-anti-affinity and the free room agree.
        c.group = group("soft-anti-affinity", 1, &[("a", 1)]);
        assert_eq!(hosts_of(&uneven, &nh, &c), vec!["b", "a"]);
    }

    #[test]
    fn multipliers_scale_and_zero_weighers() {
        let cands = vec![cand("n-a", 4000, 1), cand("n-b", 1000, 8)];
        let (nh, mut c) = hosts(&["a", "b"]);
        // RAM and vCPU cancel out; the first candidate wins the tie.
        assert_eq!(hosts_of(&cands, &nh, &c), vec!["a", "b"]);
        c.multipliers.cpu = 2.0;
        assert_eq!(hosts_of(&cands, &nh, &c), vec!["b", "a"]);
        c.multipliers = Multipliers {
            ram: 1.0,
            cpu: 0.0,
            ..Default::default()
        };
        assert_eq!(hosts_of(&cands, &nh, &c), vec!["a", "b"]);
        assert_eq!(normalize(&[2.0, 2.0]), vec![0.0, 0.0]);
        assert_eq!(normalize(&[-3.0, -1.0, -2.0]), vec![0.0, 1.0, 0.5]);
    }
}
