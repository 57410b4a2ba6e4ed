//! What the control plane does for its compute agents ([`ControlPlane`]): the same
//! operations serve the agent inside `ferrostack up` ([`LocalControlPlane`], direct calls)
//! and remote agents (the routes of [`crate::http::agents_api`]).

use std::path::Path;
use std::sync::{Arc, Weak};

use ferrostack_db::sqlx;

use super::ComputeService;
use crate::error::Result;
use crate::host::{AgentError, BoxFut, ControlPlane, HostReport};

impl ComputeService {
    /// Registers a host as [`ComputeService::register_host`] does and records where its
    /// agent listens (`None`: in this process), so any control node can reach it.
    pub async fn register_agent(&self, report: &HostReport, agent_url: Option<&str>) -> Result<()> {
        self.register_host(report).await?;
        sqlx::query("UPDATE compute_nodes SET agent_url = $1 WHERE host = $2")
            .bind(agent_url)
            .bind(&report.host)
            .execute(self.db.pool())
            .await?;
        if let (Some(url), Some(secret)) = (agent_url, self.config.agent_secret.as_deref()) {
            // A new URL (the agent moved or restarted on another port) replaces the old one.
            self.attach_agent(
                &report.host,
                Arc::new(crate::host_http::HttpHostAgent::new(url, secret)),
            );
        }
        Ok(())
    }

    /// The servers of `host`, by uuid.
    pub async fn server_ids_on_host(&self, host: &str) -> Result<Vec<String>> {
        Ok(self
            .servers_on_host(host)
            .await?
            .into_iter()
            .map(|s| s.uuid)
            .collect())
    }

    /// Whether a workflow still runs for the server.
    pub async fn server_busy(&self, uuid: &str) -> Result<bool> {
        Ok(!self
            .engine
            .active_for_subject(uuid)
            .await
            .map_err(|e| crate::error::ComputeError::internal(e.to_string()))?
            .is_empty())
    }

    /// Where an image's data is, when it has any.
    pub fn image_data_path(&self, image_id: &str) -> Option<std::path::PathBuf> {
        // Ids become paths: only uuids.
        uuid::Uuid::parse_str(image_id).ok()?;
        let path = self.image.data_path(image_id);
        path.exists().then_some(path)
    }

    /// Uploads the file at `file` as the data of the queued image `image_id` (a snapshot);
    /// an image already active is left alone.
    pub async fn upload_image_file(&self, image_id: &str, file: &Path) -> Result<()> {
        self.image
            .upload_local_file(image_id, file)
            .await
            .map(|_| ())
            .map_err(|e| crate::error::ComputeError::internal(e.to_string()))
    }
}

fn transient(e: impl std::fmt::Display) -> AgentError {
    AgentError::Transient(e.to_string())
}

/// The control plane of the agent inside `ferrostack up`: the Compute service itself. It
/// holds the service weakly, so an agent never keeps a dropped service alive.
pub struct LocalControlPlane {
    compute: Weak<ComputeService>,
}

impl LocalControlPlane {
    pub fn new(compute: &Arc<ComputeService>) -> Arc<LocalControlPlane> {
        Arc::new(LocalControlPlane {
            compute: Arc::downgrade(compute),
        })
    }

    fn compute(&self) -> Result<Arc<ComputeService>, AgentError> {
        self.compute
            .upgrade()
            .ok_or_else(|| AgentError::Transient("the Compute service has stopped".into()))
    }
}

impl ControlPlane for LocalControlPlane {
    fn register<'a>(
        &'a self,
        report: &'a HostReport,
        agent_url: Option<&'a str>,
    ) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move {
            self.compute()?
                .register_agent(report, agent_url)
                .await
                .map_err(transient)
        })
    }

    fn heartbeat<'a>(&'a self, host: &'a str) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move { self.compute()?.heartbeat(host).await.map_err(transient) })
    }

    fn servers_on_host<'a>(&'a self, host: &'a str) -> BoxFut<'a, Result<Vec<String>, AgentError>> {
        Box::pin(async move {
            self.compute()?
                .server_ids_on_host(host)
                .await
                .map_err(transient)
        })
    }

    fn observe_power_state<'a>(
        &'a self,
        uuid: &'a str,
        power_state: i64,
    ) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move {
            self.compute()?
                .observe_power_state(uuid, power_state)
                .await
                .map_err(transient)
        })
    }

    fn busy<'a>(&'a self, uuid: &'a str) -> BoxFut<'a, Result<bool, AgentError>> {
        Box::pin(async move { self.compute()?.server_busy(uuid).await.map_err(transient) })
    }

    fn fetch_image<'a>(
        &'a self,
        image_id: &'a str,
        dest: &'a Path,
    ) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move {
            let source = self
                .compute()?
                .image_data_path(image_id)
                .ok_or_else(|| AgentError::Failed(format!("image {image_id} has no data")))?;
            let (dest, id) = (dest.to_path_buf(), image_id.to_string());
            // A hard link shares the Image service's file (a deleted image keeps its data
            // while servers use it); a copy where they are on different file systems. The
            // copy can be gigabytes, so it runs off the async runtime.
            tokio::task::spawn_blocking(move || {
                if std::fs::hard_link(&source, &dest).is_err() {
                    std::fs::copy(&source, &dest)
                        .map_err(|e| transient(format!("caching image {id}: {e}")))?;
                }
                Ok(())
            })
            .await
            .map_err(transient)?
        })
    }

    fn upload_image<'a>(
        &'a self,
        image_id: &'a str,
        file: &'a Path,
    ) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async move {
            self.compute()?
                .upload_image_file(image_id, file)
                .await
                .map_err(|e| AgentError::Failed(e.to_string()))
        })
    }

    fn alive(&self) -> bool {
        self.compute.strong_count() > 0
    }
}
