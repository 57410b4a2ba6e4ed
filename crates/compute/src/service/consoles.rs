//! Remote consoles: a serial console reached through the serial proxy, as Nova's
//! `nova-serialproxy` serves it. A user asks for a console (`POST /servers/{id}/remote-consoles`
//! from 2.6, `os-getSerialConsole` before) and gets the proxy's URL with a one-off token;
//! the proxy (`crate::http::serial_proxy`) takes the token, finds the server's host and
//! joins the user's websocket to the guest's serial port through the host's agent.
//!
//! A token is random (256 bits), valid for `console_token_ttl` seconds, and only its
//! SHA-256 is stored, as Nova does; it names one server and stops working when the server
//! is deleted. Only serial consoles exist: QEMU runs without a display here, so VNC, SPICE,
//! RDP and MKS are unavailable console types (Nova's 400), not unimplemented ones.

use ferrostack_common::AuthContext;
use ferrostack_db::sqlx::{self, Row};
use sha2::Digest;

use super::{now, ComputeService};
use crate::error::{ComputeError, Result};
use crate::states::vm;

/// What a valid token opens.
#[derive(Debug, Clone)]
pub struct ConsoleTarget {
    pub instance_uuid: String,
    pub host: String,
    pub console_type: String,
}

fn token_hash(token: &str) -> String {
    let d = sha2::Sha256::digest(token.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

impl ComputeService {
    /// A serial console's URL for the server: checks the protocol and type Nova would,
    /// that the server runs on a host, and stores a new token.
    pub async fn create_remote_console(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        protocol: &str,
        console_type: &str,
    ) -> Result<String> {
        let inst = self
            .get_server(ctx, uuid, "os_compute_api:os-remote-consoles")
            .await?;
        if protocol != "serial" || console_type != "serial" {
            return Err(ComputeError::bad(format!(
                "Unavailable console type {console_type}."
            )));
        }
        let Some(base) = self.config.serial_proxy_url.as_deref() else {
            return Err(ComputeError::bad(format!(
                "Unavailable console type {console_type}."
            )));
        };
        let host = match (&inst.host, inst.vm_state.as_str()) {
            (Some(h), vm::ACTIVE | vm::RESCUED | vm::PAUSED) => h.clone(),
            _ => {
                return Err(ComputeError::conflict(format!(
                    "Instance {uuid} is not ready"
                )))
            }
        };
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let t = now();
        let expires = t + (self.config.console_token_ttl.max(1) as i64) * 1_000_000;
        // Expired tokens go when new ones come: the table stays as small as the live ones.
        sqlx::query("DELETE FROM compute_console_auth_tokens WHERE expires < $1")
            .bind(t)
            .execute(self.db.pool())
            .await?;
        sqlx::query(
            "INSERT INTO compute_console_auth_tokens (token_hash, console_type, instance_uuid, host, expires, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash(&token))
        .bind(console_type)
        .bind(uuid)
        .bind(&host)
        .bind(expires)
        .bind(t)
        .execute(self.db.pool())
        .await?;
        let sep = if base.contains('?') { '&' } else { '?' };
        Ok(format!("{base}{sep}token={token}"))
    }

    /// What `token` opens, if it is valid, unexpired, and its server still exists.
    pub async fn console_target(&self, token: &str) -> Result<Option<ConsoleTarget>> {
        let row = sqlx::query(
            "SELECT t.console_type, t.instance_uuid, t.host FROM compute_console_auth_tokens t \
             JOIN compute_instances i ON i.uuid = t.instance_uuid \
             WHERE t.token_hash = $1 AND t.expires >= $2 AND i.deleted = FALSE",
        )
        .bind(token_hash(token))
        .bind(now())
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(|r| ConsoleTarget {
            console_type: r.get("console_type"),
            instance_uuid: r.get("instance_uuid"),
            host: r.get("host"),
        }))
    }

    /// `GET /os-console-auth-tokens/{token}` (admins): where the token leads.
    pub async fn show_console_token(
        &self,
        ctx: &AuthContext,
        token: &str,
        serial_visible: bool,
    ) -> Result<ConsoleTarget> {
        if !self.allowed(ctx, "os_compute_api:os-console-auth-tokens", "", "") {
            return Err(ComputeError::forbidden(
                "Policy doesn't allow os_compute_api:os-console-auth-tokens to be performed.",
            ));
        }
        let target = self
            .console_target(token)
            .await?
            .ok_or_else(|| ComputeError::not_found("The token is invalid or has expired."))?;
        if !serial_visible {
            // Before 2.31 only RDP consoles could be looked up.
            return Err(ComputeError::bad(
                "The requested console type details are not accessible",
            ));
        }
        Ok(target)
    }

    /// A byte stream to the serial console `target` names, through its host's agent.
    pub async fn open_serial_console(
        &self,
        target: &ConsoleTarget,
    ) -> Result<crate::host::SerialStream> {
        let agent = self.agent(&target.host).await?.ok_or_else(|| {
            ComputeError::conflict(format!(
                "The host of instance {} is not reachable",
                target.instance_uuid
            ))
        })?;
        agent
            .serial_console(&target.instance_uuid)
            .await
            .map_err(|e| {
                tracing::warn!(server = %target.instance_uuid, error = %e, "opening a serial console");
                ComputeError::conflict(format!(
                    "Instance {} is not ready",
                    target.instance_uuid
                ))
            })
    }
}
