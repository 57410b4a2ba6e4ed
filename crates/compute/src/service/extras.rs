//! A server's sub-resources: tags (2.26), metadata, and its instance actions with their
//! events; and the quota view (`os-quota-sets`) of the unified limits.

use ferrostack_common::AuthContext;
use ferrostack_db::sqlx::{self, Row};

use super::{now, ComputeService};
use crate::error::{ComputeError, Result};

/// Nova's tag rules: at most 50 per server, 1-60 characters, no `/` or `,`.
pub fn valid_tag(t: &str) -> bool {
    !t.is_empty() && t.chars().count() <= 60 && !t.contains('/') && !t.contains(',')
}

pub const MAX_TAGS: usize = 50;

#[derive(Debug, Clone)]
pub struct InstanceAction {
    pub id: String,
    pub instance_uuid: String,
    pub action: String,
    pub request_id: String,
    pub user_id: String,
    pub project_id: String,
    pub start_time: i64,
    pub finish_time: Option<i64>,
    pub message: Option<String>,
    pub updated_at: i64,
}

impl ComputeService {
    pub async fn server_tags(&self, ctx: &AuthContext, uuid: &str) -> Result<Vec<String>> {
        Ok(self
            .get_server(ctx, uuid, "os_compute_api:os-server-tags:index")
            .await?
            .tags)
    }

    /// Replaces every tag (`tags = None` deletes all).
    pub async fn set_server_tags(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        tags: Option<&[String]>,
    ) -> Result<Vec<String>> {
        let rule = if tags.is_some() {
            "os_compute_api:os-server-tags:update_all"
        } else {
            "os_compute_api:os-server-tags:delete_all"
        };
        let inst = self.get_server(ctx, uuid, rule).await?;
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM compute_instance_tags WHERE instance_uuid = $1")
            .bind(&inst.uuid)
            .execute(&mut *tx)
            .await?;
        let mut out: Vec<String> = tags.unwrap_or_default().to_vec();
        out.sort();
        out.dedup();
        for t in &out {
            sqlx::query("INSERT INTO compute_instance_tags (instance_uuid, tag) VALUES ($1, $2)")
                .bind(&inst.uuid)
                .bind(t)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE compute_instances SET updated_at = $1 WHERE uuid = $2")
            .bind(now())
            .bind(&inst.uuid)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Adds one tag; true when it was new.
    pub async fn add_server_tag(&self, ctx: &AuthContext, uuid: &str, tag: &str) -> Result<bool> {
        let inst = self
            .get_server(ctx, uuid, "os_compute_api:os-server-tags:update")
            .await?;
        if inst.tags.iter().any(|t| t == tag) {
            return Ok(false);
        }
        if inst.tags.len() >= MAX_TAGS {
            return Err(ComputeError::bad(format!(
                "Instance {uuid} has {} tags; the maximum is {MAX_TAGS}",
                inst.tags.len()
            )));
        }
        let r =
            sqlx::query("INSERT INTO compute_instance_tags (instance_uuid, tag) VALUES ($1, $2)")
                .bind(&inst.uuid)
                .bind(tag)
                .execute(self.db.pool())
                .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if ferrostack_db::is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn has_server_tag(&self, ctx: &AuthContext, uuid: &str, tag: &str) -> Result<()> {
        let inst = self
            .get_server(ctx, uuid, "os_compute_api:os-server-tags:show")
            .await?;
        if inst.tags.iter().any(|t| t == tag) {
            Ok(())
        } else {
            Err(ComputeError::not_found(format!(
                "Instance {uuid} has no tag '{tag}'"
            )))
        }
    }

    pub async fn delete_server_tag(&self, ctx: &AuthContext, uuid: &str, tag: &str) -> Result<()> {
        let inst = self
            .get_server(ctx, uuid, "os_compute_api:os-server-tags:delete")
            .await?;
        let done =
            sqlx::query("DELETE FROM compute_instance_tags WHERE instance_uuid = $1 AND tag = $2")
                .bind(&inst.uuid)
                .bind(tag)
                .execute(self.db.pool())
                .await?;
        if done.rows_affected() == 0 {
            return Err(ComputeError::not_found(format!(
                "Instance {uuid} has no tag '{tag}'"
            )));
        }
        Ok(())
    }

    /// Sets metadata items; `replace` drops the keys not given (PUT of the whole set).
    pub async fn set_server_metadata(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        items: &std::collections::BTreeMap<String, String>,
        replace: bool,
        rule: &str,
    ) -> Result<std::collections::BTreeMap<String, String>> {
        let inst = self.get_server(ctx, uuid, rule).await?;
        let mut merged = if replace {
            Default::default()
        } else {
            inst.metadata.clone()
        };
        merged.extend(items.iter().map(|(k, v)| (k.clone(), v.clone())));
        if merged.len() > 128 {
            return Err(ComputeError::forbidden(
                "Quota exceeded for metadata_items: the maximum is 128",
            ));
        }
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM compute_instance_metadata WHERE instance_uuid = $1")
            .bind(&inst.uuid)
            .execute(&mut *tx)
            .await?;
        for (k, v) in &merged {
            sqlx::query("INSERT INTO compute_instance_metadata (instance_uuid, meta_key, meta_value) VALUES ($1, $2, $3)")
                .bind(&inst.uuid)
                .bind(k)
                .bind(v)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE compute_instances SET updated_at = $1 WHERE uuid = $2")
            .bind(now())
            .bind(&inst.uuid)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(merged)
    }

    pub async fn delete_server_metadata(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        key: &str,
    ) -> Result<()> {
        let inst = self
            .get_server(ctx, uuid, "os_compute_api:server-metadata:delete")
            .await?;
        let done = sqlx::query(
            "DELETE FROM compute_instance_metadata WHERE instance_uuid = $1 AND meta_key = $2",
        )
        .bind(&inst.uuid)
        .bind(key)
        .execute(self.db.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(ComputeError::not_found("Metadata item was not found"));
        }
        Ok(())
    }

    pub async fn instance_actions(
        &self,
        ctx: &AuthContext,
        uuid: &str,
    ) -> Result<Vec<InstanceAction>> {
        let inst = self
            .server_any_state(ctx, uuid, "os_compute_api:os-instance-actions:list")
            .await?;
        let rows = sqlx::query(
            "SELECT * FROM compute_instance_actions WHERE instance_uuid = $1 ORDER BY start_time DESC, id DESC",
        )
        .bind(&inst)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.iter().map(action_from_row).collect())
    }

    pub async fn instance_action(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        request_id: &str,
    ) -> Result<InstanceAction> {
        let inst = self
            .server_any_state(ctx, uuid, "os_compute_api:os-instance-actions:show")
            .await?;
        let row = sqlx::query(
            "SELECT * FROM compute_instance_actions WHERE instance_uuid = $1 AND request_id = $2",
        )
        .bind(&inst)
        .bind(request_id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| {
            ComputeError::not_found(format!(
                "Action for request_id {request_id} on instance {uuid} not found"
            ))
        })?;
        Ok(action_from_row(&row))
    }

    /// Instance actions stay readable after the server is deleted (Nova 2.21).
    async fn server_any_state(&self, ctx: &AuthContext, uuid: &str, rule: &str) -> Result<String> {
        let inst = self
            .instance(uuid)
            .await?
            .ok_or_else(|| super::servers::not_found(uuid))?;
        if !self.allowed(ctx, rule, &inst.project_id, &inst.user_id) {
            return Err(super::servers::not_found(uuid));
        }
        Ok(inst.uuid)
    }

    /// The quota set Nova shows for a project: the unified limits, -1 where none is set.
    pub async fn quota_set(
        &self,
        ctx: &AuthContext,
        project: &str,
        defaults: bool,
    ) -> Result<Vec<(&'static str, i64)>> {
        if defaults {
            self.authorize(ctx, "os_compute_api:os-quota-sets:defaults")?;
        } else {
            self.authorize_on(
                ctx,
                "os_compute_api:os-quota-sets:show",
                project,
                &ctx.user_id,
            )?;
        }
        let mut out = Vec::new();
        for (name, resource) in [
            ("instances", "servers"),
            ("cores", "class:VCPU"),
            ("ram", "class:MEMORY_MB"),
            ("key_pairs", "server_key_pairs"),
            ("metadata_items", "server_metadata_items"),
            ("server_groups", "server_groups"),
            ("server_group_members", "server_group_members"),
        ] {
            let v = match self.limit_of(project, resource).await {
                Some(v) => v,
                None if name == "metadata_items" => 128,
                None => -1,
            };
            out.push((name, v));
        }
        Ok(out)
    }
}

fn action_from_row(r: &ferrostack_db::DbRow) -> InstanceAction {
    InstanceAction {
        id: r.get("id"),
        instance_uuid: r.get("instance_uuid"),
        action: r.get("action"),
        request_id: r.get("request_id"),
        user_id: r.get("user_id"),
        project_id: r.get("project_id"),
        start_time: r.get("start_time"),
        finish_time: r.get("finish_time"),
        message: r.get("message"),
        updated_at: r.get("updated_at"),
    }
}
