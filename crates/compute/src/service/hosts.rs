//! Compute hosts as the control plane knows them: a `nova-compute` service row (heartbeat,
//! enabled/disabled, forced down), a compute node (what the hypervisor is and has) and, in
//! Placement, a resource provider with the node's uuid carrying its inventory and traits,
//! as nova-compute's resource tracker reports them.

use std::collections::{BTreeMap, BTreeSet};

use ferrostack_common::AuthContext;
use ferrostack_db::sqlx;
use ferrostack_placement::model::Inventory;
use ferrostack_placement::service::providers::ProviderSpec;

use super::{now, ComputeService};
use crate::error::{ComputeError, Result};
use crate::host::HostReport;
use crate::model::{ComputeNode, Service};

/// Services the control plane itself shows in `os-services` (Nova's scheduler and
/// conductor live inside the control process here).
pub const CONTROL_BINARIES: &[&str] = &["nova-scheduler", "nova-conductor"];

impl ComputeService {
    /// Records (or refreshes) a host and its provider; returns the compute node. Called by
    /// the agent at start and whenever its resources change.
    pub async fn register_host(&self, report: &HostReport) -> Result<ComputeNode> {
        let t = now();
        let existing = sqlx::query("SELECT * FROM compute_nodes WHERE host = $1")
            .bind(&report.host)
            .fetch_optional(self.db.pool())
            .await?;
        let uuid = match &existing {
            Some(r) => ComputeNode::from_row(r).uuid,
            None => uuid::Uuid::new_v4().to_string(),
        };
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM compute_nodes WHERE host = $1")
            .bind(&report.host)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO compute_nodes (uuid, host, hypervisor_hostname, hypervisor_type, \
             hypervisor_version, accel, vcpus, memory_mb, local_gb, cpu_info, host_ip, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
        )
        .bind(&uuid)
        .bind(&report.host)
        .bind(&report.host)
        .bind(&report.hypervisor_type)
        .bind(report.hypervisor_version)
        .bind(&report.accel)
        .bind(report.vcpus)
        .bind(report.memory_mb)
        .bind(report.disk_gb)
        .bind(&report.cpu_info)
        .bind(&report.host_ip)
        .bind(t)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.upsert_service(
            &report.host,
            "nova-compute",
            "compute",
            &self.config.default_availability_zone,
        )
        .await?;
        self.sync_provider(&uuid, report).await?;
        let row = sqlx::query("SELECT * FROM compute_nodes WHERE uuid = $1")
            .bind(&uuid)
            .fetch_one(self.db.pool())
            .await?;
        Ok(ComputeNode::from_row(&row))
    }

    /// Creates or refreshes a service row and its heartbeat.
    pub async fn upsert_service(
        &self,
        host: &str,
        binary: &str,
        topic: &str,
        zone: &str,
    ) -> Result<()> {
        let t = now();
        let done = sqlx::query(
            "UPDATE compute_services SET last_seen_up = $1, updated_at = $1 WHERE host = $2 AND binary_name = $3",
        )
        .bind(t)
        .bind(host)
        .bind(binary)
        .execute(self.db.pool())
        .await?;
        if done.rows_affected() == 0 {
            let r = sqlx::query(
                "INSERT INTO compute_services (id, host, binary_name, topic, zone, disabled, forced_down, \
                 last_seen_up, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, FALSE, FALSE, $6, $6, $6)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(host)
            .bind(binary)
            .bind(topic)
            .bind(zone)
            .bind(t)
            .execute(self.db.pool())
            .await;
            match r {
                Ok(_) => {}
                // Another node (or a concurrent heartbeat) inserted it first.
                Err(e) if ferrostack_db::is_unique_violation(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The agent's periodic "I am alive".
    pub async fn heartbeat(&self, host: &str) -> Result<()> {
        self.upsert_service(
            host,
            "nova-compute",
            "compute",
            &self.config.default_availability_zone,
        )
        .await
    }

    /// The node's provider in Placement, with the inventory and traits of `report`.
    async fn sync_provider(&self, uuid: &str, report: &HostReport) -> Result<()> {
        let pl = &self.placement;
        let provider = match pl.provider(uuid) {
            Ok(p) => p,
            Err(_) => pl
                .create_provider(ProviderSpec {
                    name: report.host.clone(),
                    uuid: Some(uuid.to_string()),
                    parent_uuid: None,
                })
                .await
                .map_err(|e| ComputeError::internal(format!("creating provider: {e}")))?,
        };
        let inv = |total: i64, reserved: i64, ratio: f64| Inventory {
            total,
            reserved,
            min_unit: 1,
            max_unit: total,
            step_size: 1,
            allocation_ratio: ratio,
        };
        let wanted: BTreeMap<String, Inventory> = [
            (
                "VCPU".to_string(),
                inv(report.vcpus, 0, report.cpu_allocation_ratio),
            ),
            (
                "MEMORY_MB".to_string(),
                inv(
                    report.memory_mb,
                    report.reserved_host_memory_mb,
                    report.ram_allocation_ratio,
                ),
            ),
            (
                "DISK_GB".to_string(),
                inv(report.disk_gb, 0, report.disk_allocation_ratio),
            ),
        ]
        .into_iter()
        .collect();
        let provider = if provider.inventories != wanted {
            pl.set_inventories(uuid, provider.generation, wanted)
                .await
                .map_err(|e| ComputeError::internal(format!("setting inventory: {e}")))?
        } else {
            provider
        };
        let traits: BTreeSet<String> = report.traits.iter().cloned().collect();
        if provider.traits != traits {
            for t in traits.iter().filter(|t| t.starts_with("CUSTOM_")) {
                pl.ensure_trait(t)
                    .await
                    .map_err(|e| ComputeError::internal(format!("trait {t}: {e}")))?;
            }
            pl.set_traits(uuid, Some(provider.generation), traits)
                .await
                .map_err(|e| ComputeError::internal(format!("setting traits: {e}")))?;
        }
        Ok(())
    }

    pub async fn compute_nodes(&self) -> Result<Vec<ComputeNode>> {
        let rows = sqlx::query("SELECT * FROM compute_nodes ORDER BY created_at, uuid")
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows.iter().map(ComputeNode::from_row).collect())
    }

    pub async fn compute_node_by_host(&self, host: &str) -> Result<Option<ComputeNode>> {
        let row = sqlx::query("SELECT * FROM compute_nodes WHERE host = $1")
            .bind(host)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.as_ref().map(ComputeNode::from_row))
    }

    pub async fn services(&self) -> Result<Vec<Service>> {
        let rows = sqlx::query("SELECT * FROM compute_services ORDER BY created_at, id")
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows.iter().map(Service::from_row).collect())
    }

    pub async fn list_services(&self, ctx: &AuthContext) -> Result<Vec<Service>> {
        self.authorize(ctx, "os_compute_api:os-services:list")?;
        self.services().await
    }

    /// Whether a service's heartbeat is recent enough (and it is not forced down).
    pub fn service_is_up(&self, s: &Service) -> bool {
        !s.forced_down && now() - s.last_seen_up <= self.config.service_down_time * 1_000_000
    }

    /// Hosts that may take new servers: an enabled, up `nova-compute` service.
    pub async fn schedulable_hosts(&self) -> Result<BTreeSet<String>> {
        Ok(self
            .services()
            .await?
            .into_iter()
            .filter(|s| s.binary == "nova-compute" && !s.disabled && self.service_is_up(s))
            .map(|s| s.host)
            .collect())
    }
}
