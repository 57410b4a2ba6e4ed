//! Network IP availability (`network-ip-availability`): per network and per subnet, how
//! many addresses there are and how many ports hold, counted as Neutron counts them. The
//! total of a subnet is the size of its allocation pools (the whole CIDR when it has none);
//! the used count is every allocated address, service ports (DHCP, metadata, router
//! interfaces) included. Administrators only by default; to another caller the list is
//! empty and a network not found, as Neutron hides what `get_network_ip_availability`
//! refuses. The availability zones list is here too.

use std::collections::HashMap;

use ferrostack_common::AuthContext;
use serde_json::{json, Value};

use super::NetworkService;
use crate::error::{NetworkError, Result};
use crate::ipam::{self, Cidr};
use crate::model::*;
use crate::store;

/// A count as JSON: exact while it fits 64 bits (an IPv6 /64 pool does), beyond that a
/// float (serde_json has no bigger integers without `arbitrary_precision`).
fn count(n: u128) -> Value {
    match u64::try_from(n) {
        Ok(v) => json!(v),
        Err(_) => json!(n as f64),
    }
}

/// Addresses in the subnet's pools, or in its CIDR when it has no pools.
fn total_ips(s: &Subnet) -> u128 {
    let Ok(cidr) = Cidr::parse(&s.cidr, false) else {
        return 0;
    };
    if s.allocation_pools.is_empty() {
        return cidr.size();
    }
    s.allocation_pools
        .iter()
        .filter_map(|p| ipam::pool_range(&cidr, p).ok())
        .map(|(first, last)| last - first + 1)
        .sum()
}

impl NetworkService {
    /// The availability of every network (with `network_id` only that one), keeping only
    /// subnets of `ip_versions` when given (and then only networks with such a subnet,
    /// as Neutron's filtered join drops them).
    async fn ip_availabilities(
        &self,
        network_id: Option<&str>,
        ip_versions: &[i64],
    ) -> Result<Vec<Value>> {
        let mut c = self.conn().await?;
        let networks: Vec<Network> = match network_id {
            Some(id) => store::get_network(&mut c, id).await?.into_iter().collect(),
            None => store::list_networks(&mut c, None).await?,
        };
        let subnets = store::list_subnets(&mut c, None).await?;
        let used: HashMap<String, i64> = store::ip_allocation_counts(&mut c)
            .await?
            .into_iter()
            .collect();
        let mut out = Vec::new();
        for n in &networks {
            let mut total: u128 = 0;
            let mut used_sum: u128 = 0;
            let mut per_subnet = Vec::new();
            for s in subnets.iter().filter(|s| s.network_id == n.id) {
                if !ip_versions.is_empty() && !ip_versions.contains(&s.ip_version) {
                    continue;
                }
                let t = total_ips(s);
                let u = used.get(&s.id).copied().unwrap_or(0).max(0) as u128;
                total += t;
                used_sum += u;
                per_subnet.push(json!({
                    "subnet_id": s.id,
                    "subnet_name": s.name,
                    "ip_version": s.ip_version,
                    "cidr": s.cidr,
                    "total_ips": count(t),
                    "used_ips": count(u),
                }));
            }
            if !ip_versions.is_empty() && per_subnet.is_empty() {
                continue;
            }
            out.push(json!({
                "network_id": n.id,
                "network_name": n.name,
                "project_id": n.project_id,
                "tenant_id": n.project_id,
                "total_ips": count(total),
                "used_ips": count(used_sum),
                "subnet_ip_availability": per_subnet,
            }));
        }
        Ok(out)
    }

    pub async fn list_network_ip_availabilities(
        &self,
        ctx: &AuthContext,
        ip_versions: &[i64],
    ) -> Result<Vec<Value>> {
        if !self.allowed(ctx, "get_network_ip_availability", &json!({})) {
            return Ok(Vec::new());
        }
        self.ip_availabilities(None, ip_versions).await
    }

    pub async fn show_network_ip_availability(
        &self,
        ctx: &AuthContext,
        network_id: &str,
    ) -> Result<Value> {
        if !self.allowed(ctx, "get_network_ip_availability", &json!({})) {
            return Err(NetworkError::network_not_found(network_id));
        }
        self.ip_availabilities(Some(network_id), &[])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| NetworkError::network_not_found(network_id))
    }
}

impl NetworkService {
    /// Availability zones (`GET /v2.0/availability_zones`): the one configured zone, for
    /// networks and routers, always available. ML2/OVN reads them from the chassis'
    /// `availability-zones` option; every resource here reports `availability_zone`.
    pub async fn list_availability_zones(&self, ctx: &AuthContext) -> Result<Vec<Value>> {
        if !self.allowed(ctx, "get_availability_zone", &json!({})) {
            return Ok(Vec::new());
        }
        Ok(["network", "router"]
            .iter()
            .map(|r| {
                json!({"name": self.config.availability_zone, "resource": r, "state": "available"})
            })
            .collect())
    }
}
