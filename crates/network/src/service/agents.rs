//! Agents, as ML2/OVN shows them: the backend reports them (the OVN backend derives them
//! from the Southbound chassis; the fake one has none), nothing is stored here. Only
//! administrators see them; another caller's list is empty (Neutron filters the rows the
//! `get_agent` rule hides) and a single agent is not found.

use ferrostack_common::AuthContext;
use serde_json::{json, Value};

use super::body;
use super::NetworkService;
use crate::backend::Agent;
use crate::error::{NetworkError, Result};
use crate::views;

const WRITABLE: &[&str] = &["admin_state_up", "description"];
const READ_ONLY: &[&str] = &[
    "id",
    "agent_type",
    "binary",
    "topic",
    "host",
    "availability_zone",
    "configurations",
    "alive",
    "created_at",
    "started_at",
    "heartbeat_timestamp",
    "resources_synced",
];

impl NetworkService {
    async fn agents(&self) -> Result<Vec<Agent>> {
        self.backend
            .list_agents()
            .await
            .map_err(|e| NetworkError::internal(e.to_string()))
    }

    /// The agent, if the caller may see it and it exists.
    async fn visible_agent(&self, ctx: &AuthContext, id: &str) -> Result<Agent> {
        if !self.allowed(ctx, "get_agent", &json!({})) {
            return Err(NetworkError::agent_not_found(id));
        }
        self.agents()
            .await?
            .into_iter()
            .find(|a| a.id == id)
            .ok_or_else(|| NetworkError::agent_not_found(id))
    }

    pub async fn list_agents(&self, ctx: &AuthContext) -> Result<Vec<Value>> {
        if !self.allowed(ctx, "get_agent", &json!({})) {
            return Ok(Vec::new());
        }
        Ok(self.agents().await?.iter().map(views::agent).collect())
    }

    pub async fn show_agent(&self, ctx: &AuthContext, id: &str) -> Result<Value> {
        Ok(views::agent(&self.visible_agent(ctx, id).await?))
    }

    /// Sets the description. `admin_state_up` may only be left `true`: as in ML2/OVN, an
    /// OVN agent cannot be disabled.
    pub async fn update_agent(&self, ctx: &AuthContext, id: &str, b: &Value) -> Result<Value> {
        let attrs = body::resource(b, "agent")?;
        body::check(&attrs, WRITABLE, READ_ONLY, false)?;
        self.visible_agent(ctx, id).await?;
        self.authorize(ctx, "update_agent", &json!({}))?;
        if body::boolean(&attrs, "admin_state_up")? == Some(false) {
            return Err(NetworkError::bad(
                "BadRequest",
                "Bad agent request: OVN agent status cannot be updated.",
            ));
        }
        if let Some(d) = body::string(&attrs, "description", body::DESCRIPTION_MAX)? {
            let found = self
                .backend
                .set_agent_description(id, &d)
                .await
                .map_err(|e| NetworkError::internal(e.to_string()))?;
            if !found {
                return Err(NetworkError::agent_not_found(id));
            }
        }
        self.show_agent(ctx, id).await
    }

    /// Forgets the agent; for OVN its chassis is removed from the Southbound database (an
    /// ovn-controller still running there registers it again).
    pub async fn delete_agent(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        self.visible_agent(ctx, id).await?;
        self.authorize(ctx, "delete_agent", &json!({}))?;
        let found = self
            .backend
            .delete_agent(id)
            .await
            .map_err(|e| NetworkError::internal(e.to_string()))?;
        if found {
            Ok(())
        } else {
            Err(NetworkError::agent_not_found(id))
        }
    }
}
