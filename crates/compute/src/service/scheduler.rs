//! The scheduler, as Nova's filter scheduler does it with its default settings: ask
//! Placement for allocation candidates that fit the flavor, keep the hosts that pass the
//! filters (compute service up and enabled, availability zone, server-group affinity and
//! anti-affinity, a requested host), order them by the weighers (free RAM, free vCPU, free
//! disk: each normalised over the candidates to 0..1, all with multiplier 1.0), and claim the
//! best; a claim that loses a race to another boot tries the next candidate.

use std::collections::{BTreeMap, BTreeSet};

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

/// What the filters need to know besides the candidates.
#[derive(Debug, Default, Clone)]
pub struct Constraints {
    /// Hosts with a compute service that is up and enabled, and their zones.
    pub hosts: BTreeMap<String, String>,
    pub zone: Option<String>,
    pub requested_host: Option<String>,
    /// Hosts the server must (affinity) or must not (anti-affinity) share.
    pub same_host_as: Option<BTreeSet<String>>,
    pub different_host_from: BTreeSet<String>,
}

/// The candidates that pass the filters, best first. `node_host` maps a candidate's root
/// provider (the compute node uuid) to its host.
pub fn filter_and_weigh<'a>(
    candidates: &'a [CandidateAllocation],
    node_host: &BTreeMap<String, String>,
    c: &Constraints,
) -> Vec<(&'a CandidateAllocation, String)> {
    let mut kept: Vec<(&CandidateAllocation, String)> = candidates
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
            if let Some(same) = &c.same_host_as {
                if !same.is_empty() && !same.contains(host) {
                    return None;
                }
            }
            if c.different_host_from.contains(host) {
                return None;
            }
            Some((cand, host.clone()))
        })
        .collect();
    // Free amount of a class on the root provider, after this claim.
    let free = |cand: &CandidateAllocation, class: &str| -> f64 {
        let (cap, used) = cand
            .capacity
            .get(&cand.root)
            .and_then(|m| m.get(class))
            .copied()
            .unwrap_or((0, 0));
        (cap - used) as f64
    };
    let classes = ["MEMORY_MB", "VCPU", "DISK_GB"];
    let mut scores = vec![0.0f64; kept.len()];
    for class in classes {
        let values: Vec<f64> = kept.iter().map(|(cand, _)| free(cand, class)).collect();
        let (lo, hi) = values
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        for (i, v) in values.iter().enumerate() {
            // Nova's normalisation: all equal means every host scores 0 for this weigher.
            if hi > lo {
                scores[i] += (v - lo) / (hi - lo);
            }
        }
    }
    let mut order: Vec<usize> = (0..kept.len()).collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b)));
    let mut sorted = Vec::with_capacity(kept.len());
    for i in order {
        sorted.push(kept[i].clone());
    }
    kept.clear();
    sorted
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

    #[test]
    fn filters_down_hosts_zones_and_groups() {
        let cands = vec![cand("n-a", 1, 1), cand("n-b", 1, 1), cand("n-x", 1, 1)];
        let (nh, mut c) = hosts(&["a", "b"]);
        // n-x has no up service: never chosen.
        assert_eq!(filter_and_weigh(&cands, &nh, &c).len(), 2);
        c.different_host_from.insert("a".into());
        let only: Vec<_> = filter_and_weigh(&cands, &nh, &c)
            .into_iter()
            .map(|(_, h)| h)
            .collect();
        assert_eq!(only, vec!["b"]);
        c.different_host_from.clear();
        c.same_host_as = Some(["a".to_string()].into_iter().collect());
        let only: Vec<_> = filter_and_weigh(&cands, &nh, &c)
            .into_iter()
            .map(|(_, h)| h)
            .collect();
        assert_eq!(only, vec!["a"]);
        c.same_host_as = None;
        c.zone = Some("elsewhere".into());
        assert!(filter_and_weigh(&cands, &nh, &c).is_empty());
    }
}
