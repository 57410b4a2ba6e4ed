//! A server's NICs: checking a boot's `networks` against the Networking service, making the
//! ports once the server has a host (the boot workflow's `network` step, with undo), keeping
//! Nova's network info cache on the instance row, and giving the ports back on delete.

use ferrostack_db::sqlx;
use ferrostack_workflow::StepError;

use super::workflows::{fail, retry};
use super::ComputeService;
use crate::error::{ComputeError, Result};
use crate::model::Instance;
use crate::network::{NetError, NetworkRequest, Vif};

/// A refusal of the Networking service as Nova's API answers it.
fn api_error(e: NetError) -> ComputeError {
    match e {
        NetError::NotFound(m) | NetError::Bad(m) => ComputeError::bad(m),
        NetError::Conflict(m) => ComputeError::conflict(m),
        NetError::Transient(m) => ComputeError::internal(m),
    }
}

/// A refusal of the Networking service inside a workflow step.
pub(super) fn step_error(e: NetError) -> StepError {
    match e {
        NetError::Transient(m) => retry(m),
        other => fail(
            format!("Networking refused the server's NICs: {other}"),
            &other,
        ),
    }
}

impl ComputeService {
    /// Checks a boot's `networks` (and security groups) before anything is written, as
    /// Nova's API does; answers how many NICs each server will get.
    pub(crate) async fn check_networks(
        &self,
        project_id: &str,
        request: &NetworkRequest,
        security_groups: &[String],
    ) -> Result<usize> {
        match self.networking() {
            Some(n) => n
                .check_request(project_id, request, security_groups)
                .await
                .map_err(api_error),
            None => match request {
                NetworkRequest::Nics(list) if !list.is_empty() => Err(ComputeError::bad(
                    "Networks and ports cannot be requested: this cloud runs without a Networking service; use networks \"none\" or \"auto\".",
                )),
                _ => Ok(0),
            },
        }
    }

    /// The boot workflow's `network` step: the server's ports on its host, remembered in the
    /// network info cache. Running it again finds the ports it made.
    pub(super) async fn allocate_network(&self, inst: &Instance) -> Result<(), StepError> {
        let Some(networking) = self.networking() else {
            return Ok(());
        };
        let host = inst
            .host
            .as_deref()
            .ok_or_else(|| fail("The server has no host.", &inst.uuid))?;
        let request = NetworkRequest::from_stored(&inst.request.networks);
        let vifs = networking
            .allocate(
                &inst.project_id,
                &inst.uuid,
                host,
                &request,
                &inst.request.security_groups,
            )
            .await
            .map_err(step_error)?;
        self.set_network_info(&inst.uuid, &vifs)
            .await
            .map_err(retry)
    }

    /// Gives the server's ports back (deletes those Compute made, unbinds the user's own)
    /// and empties the cache; fine when there are none.
    pub(super) async fn deallocate_network(&self, uuid: &str) -> Result<(), StepError> {
        if let Some(networking) = self.networking() {
            // The user's ports of the boot, and those attached since.
            let user_ports = match self.instance(uuid).await.map_err(retry)? {
                Some(inst) => {
                    let mut ports =
                        NetworkRequest::from_stored(&inst.request.networks).user_ports();
                    ports.extend(
                        inst.network_info
                            .iter()
                            .filter(|v| v.preserve_on_delete && !ports.contains(&v.port_id))
                            .map(|v| v.port_id.clone())
                            .collect::<Vec<_>>(),
                    );
                    ports
                }
                None => Vec::new(),
            };
            networking
                .deallocate(uuid, &user_ports)
                .await
                .map_err(step_error)?;
        }
        self.set_network_info(uuid, &[]).await.map_err(retry)
    }

    /// Rewrites the network info cache of a server.
    pub(crate) async fn set_network_info(&self, uuid: &str, vifs: &[Vif]) -> Result<()> {
        let json = if vifs.is_empty() {
            None
        } else {
            Some(serde_json::to_string(vifs).map_err(ComputeError::internal)?)
        };
        sqlx::query("UPDATE compute_instances SET network_info = $1 WHERE uuid = $2")
            .bind(json)
            .bind(uuid)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Waits until every port of the server is `ACTIVE` in the Networking service (its tap
    /// plugged and bound by the data plane), as Nova waits for `network-vif-plugged`
    /// events, for at most `vif_plugging_timeout` seconds; then fails the step when
    /// `vif_plugging_is_fatal`. Safe to run again after a crash.
    pub(crate) async fn wait_for_vifs(&self, uuid: &str) -> Result<(), StepError> {
        let Some(networking) = self.networking() else {
            return Ok(());
        };
        if !networking.reports_port_status() || self.config.vif_plugging_timeout == 0 {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let limit = std::time::Duration::from_secs(self.config.vif_plugging_timeout);
        loop {
            let vifs = networking
                .vifs(uuid)
                .await
                .map_err(|e| retry(e.to_string()))?;
            let down: Vec<&str> = vifs
                .iter()
                .filter(|v| v.status != "ACTIVE")
                .map(|v| v.port_id.as_str())
                .collect();
            if down.is_empty() {
                if !vifs.is_empty() {
                    let cached = match self.instance(uuid).await.map_err(retry)? {
                        Some(inst) => inst.network_info,
                        None => Vec::new(),
                    };
                    let vifs = merge_network_info(&cached, vifs);
                    self.set_network_info(uuid, &vifs).await.map_err(retry)?;
                }
                return Ok(());
            }
            if started.elapsed() >= limit {
                let message = format!(
                    "Virtual Interface creation failed: port(s) {} not up after {} s",
                    down.join(", "),
                    limit.as_secs()
                );
                if self.config.vif_plugging_is_fatal {
                    return Err(fail(message.clone(), message));
                }
                tracing::warn!(server = %uuid, "{message}; going ACTIVE anyway (vif_plugging_is_fatal = false)");
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Refreshes the cache from the Networking service (a port's status or a floating IP
    /// changed there); the cached copy stays when the service cannot answer.
    pub async fn refresh_network_info(&self, uuid: &str) -> Result<Vec<Vif>> {
        let Some(networking) = self.networking() else {
            return Ok(Vec::new());
        };
        let fresh = networking.vifs(uuid).await.map_err(api_error)?;
        let cached = match self.instance(uuid).await? {
            Some(inst) => inst.network_info,
            None => Vec::new(),
        };
        let vifs = merge_network_info(&cached, fresh);
        self.set_network_info(uuid, &vifs).await?;
        Ok(vifs)
    }
}

/// The cache from what the Networking service answers now (`fresh`), in the cache's order
/// (NICs new to it last), keeping what only Compute knows of a NIC: its tag, and that the
/// port is the user's own (kept when the server goes).
pub(crate) fn merge_network_info(cached: &[Vif], mut fresh: Vec<Vif>) -> Vec<Vif> {
    let mut out = Vec::with_capacity(fresh.len());
    for old in cached {
        if let Some(i) = fresh.iter().position(|v| v.port_id == old.port_id) {
            let mut v = fresh.remove(i);
            v.preserve_on_delete |= old.preserve_on_delete;
            if v.tag.is_none() {
                v.tag = old.tag.clone();
            }
            out.push(v);
        }
    }
    out.extend(fresh);
    out
}
