//! `os-simple-tenant-usage`: what servers a project ran during a period, as Nova reckons it.
//! A server counts from its launch to its termination (or the end of the period), clipped
//! to the period; its usage is those hours times its flavor's vCPUs, RAM and disk (root +
//! ephemeral), summed per project. Servers that never launched cost nothing and are left
//! out, as in Nova's window query.

use std::collections::BTreeMap;

use ferrostack_common::AuthContext;
use ferrostack_db::sqlx;

use super::{now, ComputeService};
use crate::error::{ComputeError, Result};
use crate::model::Instance;

/// One server's share of a period.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerUsage {
    pub instance_id: String,
    pub name: String,
    pub tenant_id: String,
    pub flavor: String,
    pub hours: f64,
    pub memory_mb: i64,
    pub local_gb: i64,
    pub vcpus: i64,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    /// `terminated` once ended, else the server's vm_state.
    pub state: String,
    /// Seconds from launch to termination (or now).
    pub uptime: i64,
}

/// A project's totals over the period.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantUsage {
    pub tenant_id: String,
    pub start: i64,
    pub stop: i64,
    pub total_hours: f64,
    pub total_memory_mb_usage: f64,
    pub total_vcpus_usage: f64,
    pub total_local_gb_usage: f64,
    pub server_usages: Vec<ServerUsage>,
}

/// What to report: a period, one project or all, and a page of servers.
#[derive(Debug, Clone)]
pub struct UsageQuery {
    pub start: i64,
    pub end: i64,
    pub project: Option<String>,
    pub limit: usize,
    pub marker: Option<String>,
}

const MICROS_PER_HOUR: f64 = 3_600_000_000.0;

/// Hours of `[launched, terminated)` inside `[start, stop]`; 0 when it never launched.
pub fn hours_in(launched: Option<i64>, terminated: Option<i64>, start: i64, stop: i64) -> f64 {
    let Some(launched) = launched else { return 0.0 };
    if terminated.is_some_and(|t| t < start) || launched > stop {
        return 0.0;
    }
    let from = launched.max(start);
    let to = terminated.map_or(stop, |t| t.min(stop));
    (to - from) as f64 / MICROS_PER_HOUR
}

fn server_usage(i: &Instance, start: i64, stop: i64, at: i64) -> ServerUsage {
    let started = i.launched_at.unwrap_or(i.created_at);
    ServerUsage {
        instance_id: i.uuid.clone(),
        name: i.name.clone(),
        tenant_id: i.project_id.clone(),
        flavor: i.flavor.name.clone(),
        hours: hours_in(i.launched_at, i.terminated_at, start, stop),
        memory_mb: i.flavor.ram,
        local_gb: i.flavor.disk + i.flavor.ephemeral,
        vcpus: i.flavor.vcpus,
        started_at: started,
        ended_at: i.terminated_at,
        state: if i.terminated_at.is_some() {
            "terminated".to_string()
        } else {
            i.vm_state.clone()
        },
        uptime: (i.terminated_at.unwrap_or(at) - started) / 1_000_000,
    }
}

/// Per-project totals of `usages`, in the order the projects first appear.
pub fn summarize(usages: &[ServerUsage], start: i64, stop: i64) -> Vec<TenantUsage> {
    let mut order: Vec<String> = Vec::new();
    let mut by_project: BTreeMap<String, TenantUsage> = BTreeMap::new();
    for u in usages {
        let t = by_project.entry(u.tenant_id.clone()).or_insert_with(|| {
            order.push(u.tenant_id.clone());
            TenantUsage {
                tenant_id: u.tenant_id.clone(),
                start,
                stop,
                total_hours: 0.0,
                total_memory_mb_usage: 0.0,
                total_vcpus_usage: 0.0,
                total_local_gb_usage: 0.0,
                server_usages: Vec::new(),
            }
        });
        t.total_hours += u.hours;
        t.total_memory_mb_usage += u.memory_mb as f64 * u.hours;
        t.total_vcpus_usage += u.vcpus as f64 * u.hours;
        t.total_local_gb_usage += u.local_gb as f64 * u.hours;
        t.server_usages.push(u.clone());
    }
    order
        .into_iter()
        .filter_map(|p| by_project.remove(&p))
        .collect()
}

impl ComputeService {
    /// Usage over `q`'s period: every project's (`os-simple-tenant-usage:list`, admins) or
    /// one project's (`:show`). Returns the per-project totals and the page of servers they
    /// were summed from (for the next link). The period ends now at the latest.
    pub async fn tenant_usage(
        &self,
        ctx: &AuthContext,
        q: &UsageQuery,
    ) -> Result<(Vec<TenantUsage>, Vec<ServerUsage>)> {
        match &q.project {
            Some(p) => self.authorize_on(
                ctx,
                "os_compute_api:os-simple-tenant-usage:show",
                p,
                &ctx.user_id,
            )?,
            None => self.authorize(ctx, "os_compute_api:os-simple-tenant-usage:list")?,
        }
        let at = now();
        let stop = q.end.min(at);
        let instances = self.instances_active_in(q, stop).await?;
        let usages: Vec<ServerUsage> = instances
            .iter()
            .map(|i| server_usage(i, q.start, stop, at))
            .collect();
        Ok((summarize(&usages, q.start, stop), usages))
    }

    /// Servers that ran some time in `[q.start, stop)`, by project then uuid, one page.
    async fn instances_active_in(&self, q: &UsageQuery, stop: i64) -> Result<Vec<Instance>> {
        let mut sql = String::from(
            "SELECT * FROM compute_instances WHERE (terminated_at IS NULL OR terminated_at > $1) \
             AND launched_at < $2",
        );
        if q.project.is_some() {
            sql.push_str(" AND project_id = $3");
        }
        let mut query = sqlx::query(&sql).bind(q.start).bind(stop);
        if let Some(p) = &q.project {
            query = query.bind(p);
        }
        let rows = query.fetch_all(self.db.pool()).await?;
        let mut list: Vec<Instance> = rows.iter().map(Instance::from_row).collect();
        // Sorted here rather than in SQL: the database's collation may not order text the
        // way the marker comparison below does.
        list.sort_by(|a, b| (&a.project_id, &a.uuid).cmp(&(&b.project_id, &b.uuid)));
        if let Some(m) = &q.marker {
            // The marker is any server (deleted ones too); the page starts after its place
            // in the (project, uuid) order.
            let marker = self
                .instance(m)
                .await?
                .ok_or_else(|| ComputeError::bad(format!("Marker {m} could not be found.")))?;
            let key = (marker.project_id, marker.uuid);
            list.retain(|i| (&i.project_id, &i.uuid) > (&key.0, &key.1));
        }
        list.truncate(q.limit);
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000;

    #[test]
    fn hours_are_clipped_to_the_period() {
        // Ran the whole period.
        assert_eq!(hours_in(Some(0), None, H, 3 * H), 2.0);
        // Launched inside, still running.
        assert_eq!(hours_in(Some(2 * H), None, H, 3 * H), 1.0);
        // Terminated inside.
        assert_eq!(hours_in(Some(0), Some(H + H / 2), H, 3 * H), 0.5);
        // Before, after, never launched.
        assert_eq!(hours_in(Some(0), Some(H / 2), H, 3 * H), 0.0);
        assert_eq!(hours_in(Some(4 * H), None, H, 3 * H), 0.0);
        assert_eq!(hours_in(None, None, H, 3 * H), 0.0);
    }

    fn usage(project: &str, hours: f64, vcpus: i64) -> ServerUsage {
        ServerUsage {
            instance_id: format!("{project}-{hours}"),
            name: "s".into(),
            tenant_id: project.into(),
            flavor: "tiny".into(),
            hours,
            memory_mb: 512,
            local_gb: 2,
            vcpus,
            started_at: 0,
            ended_at: None,
            state: "active".into(),
            uptime: 0,
        }
    }

    #[test]
    fn totals_are_per_project_and_weighted_by_hours() {
        let list = [usage("b", 2.0, 2), usage("a", 1.0, 1), usage("b", 0.5, 4)];
        let t = summarize(&list, 0, H);
        assert_eq!(
            t.iter().map(|u| u.tenant_id.as_str()).collect::<Vec<_>>(),
            ["b", "a"]
        );
        assert_eq!(t[0].total_hours, 2.5);
        assert_eq!(t[0].total_vcpus_usage, 2.0 * 2.0 + 0.5 * 4.0);
        assert_eq!(t[0].total_memory_mb_usage, 512.0 * 2.5);
        assert_eq!(t[0].total_local_gb_usage, 5.0);
        assert_eq!(t[0].server_usages.len(), 2);
        assert_eq!(t[1].total_hours, 1.0);
    }
}
