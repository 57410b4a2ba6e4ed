//! Server groups (`os-server-groups`): a project's named set of servers with a placement
//! policy (affinity, anti-affinity, and the soft variants of 2.15) and, for anti-affinity,
//! the rule `max_server_per_host` (2.64). A group belongs to the project that made it; other
//! projects neither see it nor can name it as the `group` scheduler hint. Group counts and
//! members per group are limited by the unified limits `server_groups` and
//! `server_group_members`, as Nova's unified-limits driver counts them.

use ferrostack_common::AuthContext;
use ferrostack_db::sqlx::{self, AnyConnection, Row};
use serde_json::{Map, Value};

use super::scheduler::GroupState;
use super::{now, ComputeService};
use crate::error::{ComputeError, Result};

/// The policies a group may have; the soft ones exist from microversion 2.15.
pub const POLICIES: &[&str] = &["anti-affinity", "affinity"];
pub const SOFT_POLICIES: &[&str] = &["soft-anti-affinity", "soft-affinity"];

#[derive(Debug, Clone, PartialEq)]
pub struct ServerGroup {
    pub uuid: String,
    pub name: String,
    pub project_id: String,
    pub user_id: String,
    pub policy: String,
    /// `{"max_server_per_host": n}` or `{}`.
    pub rules: Map<String, Value>,
    /// Servers of the group that are not deleted.
    pub members: Vec<String>,
}

impl ServerGroup {
    fn from_row(r: &ferrostack_db::DbRow) -> ServerGroup {
        let rules: String = r.get("rules");
        ServerGroup {
            uuid: r.get("uuid"),
            name: r.get("name"),
            project_id: r.get("project_id"),
            user_id: r.get("user_id"),
            policy: r.get("policy"),
            rules: serde_json::from_str(&rules).unwrap_or_default(),
            members: Vec::new(),
        }
    }

    /// How many members an anti-affinity group allows on one host (1 unless a rule says).
    pub fn max_server_per_host(&self) -> i64 {
        self.rules
            .get("max_server_per_host")
            .and_then(Value::as_i64)
            .unwrap_or(1)
    }
}

pub fn group_not_found(uuid: &str) -> ComputeError {
    ComputeError::not_found(format!("Instance group {uuid} could not be found."))
}

impl ComputeService {
    async fn group_row(&self, uuid: &str) -> Result<Option<ServerGroup>> {
        let row = sqlx::query("SELECT * FROM compute_server_groups WHERE uuid = $1")
            .bind(uuid)
            .fetch_optional(self.db.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut g = ServerGroup::from_row(&row);
        g.members = self.group_members(&g.uuid).await?;
        Ok(Some(g))
    }

    /// The group's servers that are not deleted, oldest first.
    async fn group_members(&self, group: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT m.instance_uuid FROM compute_server_group_members m \
             JOIN compute_instances i ON i.uuid = m.instance_uuid \
             WHERE m.group_uuid = $1 AND i.deleted = FALSE ORDER BY i.created_at, i.id",
        )
        .bind(group)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
    }

    /// A group the caller may see under `rule`: another project's group does not exist for
    /// it (404), its own project's group without the role is a 403.
    pub async fn get_server_group(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        rule: &str,
    ) -> Result<ServerGroup> {
        let g = self
            .group_row(uuid)
            .await?
            .ok_or_else(|| group_not_found(uuid))?;
        if !self.allowed(ctx, rule, &g.project_id, &g.user_id) {
            if ctx.project_id() != Some(g.project_id.as_str()) && !self.is_admin(ctx) {
                return Err(group_not_found(uuid));
            }
            return Err(ComputeError::forbidden(format!(
                "Policy doesn't allow {rule} to be performed."
            )));
        }
        Ok(g)
    }

    pub async fn create_server_group(
        &self,
        ctx: &AuthContext,
        name: &str,
        policy: &str,
        rules: &Map<String, Value>,
    ) -> Result<ServerGroup> {
        self.authorize(ctx, "os_compute_api:os-server-groups:create")?;
        let project = ctx
            .project_id()
            .ok_or_else(|| ComputeError::forbidden("A project-scoped token is required."))?
            .to_string();
        self.check_group_quota(&project).await?;
        let g = ServerGroup {
            uuid: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            project_id: project,
            user_id: ctx.user_id.clone(),
            policy: policy.to_string(),
            rules: rules.clone(),
            members: Vec::new(),
        };
        sqlx::query(
            "INSERT INTO compute_server_groups (uuid, name, project_id, user_id, policy, rules, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&g.uuid)
        .bind(&g.name)
        .bind(&g.project_id)
        .bind(&g.user_id)
        .bind(&g.policy)
        .bind(Value::Object(g.rules.clone()).to_string())
        .bind(now())
        .execute(self.db.pool())
        .await?;
        Ok(g)
    }

    /// `server_groups` counts a project's groups; the limit is checked before the insert
    /// (a race may let one extra group through, as Nova's unified limits allow).
    async fn check_group_quota(&self, project: &str) -> Result<()> {
        let Some(limit) = self.limit_of(project, "server_groups").await else {
            return Ok(());
        };
        if self.server_group_count(project).await? + 1 > limit {
            return Err(ComputeError::over_limit(
                "Quota exceeded, too many server groups.",
            ));
        }
        Ok(())
    }

    pub async fn server_group_count(&self, project: &str) -> Result<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) FROM compute_server_groups WHERE project_id = $1")
                .bind(project)
                .fetch_one(self.db.pool())
                .await?
                .get::<i64, _>(0),
        )
    }

    /// The caller's project's groups, or every project's for an admin asking for
    /// `all_projects`; `offset` and `limit` slice the list as Nova's `limited` does.
    pub async fn list_server_groups(
        &self,
        ctx: &AuthContext,
        all_projects: bool,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<ServerGroup>> {
        self.authorize(ctx, "os_compute_api:os-server-groups:index")?;
        // Nova ignores `all_projects` from non-admins (they get their own groups), and
        // only then asks the finer rule.
        let every = all_projects && self.is_admin(ctx);
        if every {
            self.authorize(ctx, "os_compute_api:os-server-groups:index:all_projects")?;
        }
        let rows = if every {
            sqlx::query("SELECT * FROM compute_server_groups ORDER BY created_at, uuid")
                .fetch_all(self.db.pool())
                .await?
        } else {
            sqlx::query(
                "SELECT * FROM compute_server_groups WHERE project_id = $1 ORDER BY created_at, uuid",
            )
            .bind(ctx.project_id().unwrap_or_default())
            .fetch_all(self.db.pool())
            .await?
        };
        let mut out = Vec::new();
        for r in rows.iter().skip(offset).take(limit) {
            let mut g = ServerGroup::from_row(r);
            g.members = self.group_members(&g.uuid).await?;
            out.push(g);
        }
        Ok(out)
    }

    pub async fn delete_server_group(&self, ctx: &AuthContext, uuid: &str) -> Result<()> {
        let g = self
            .get_server_group(ctx, uuid, "os_compute_api:os-server-groups:delete")
            .await?;
        // Members leave with the group (the foreign key cascades), as Nova's destroy does.
        let done = sqlx::query("DELETE FROM compute_server_groups WHERE uuid = $1")
            .bind(&g.uuid)
            .execute(self.db.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(group_not_found(uuid));
        }
        Ok(())
    }

    /// Checks the `group` scheduler hint of a server create: the group must exist and be
    /// the caller's project's (else Nova's 400), and `adding` more members must fit the
    /// `server_group_members` limit (else 403).
    pub async fn check_group_hint(
        &self,
        ctx: &AuthContext,
        group: &str,
        adding: i64,
    ) -> Result<()> {
        let missing = || ComputeError::bad(format!("Instance group {group} could not be found."));
        let g = self.group_row(group).await?.ok_or_else(missing)?;
        let visible = ctx.project_id() == Some(g.project_id.as_str()) || self.is_admin(ctx);
        if !visible {
            return Err(missing());
        }
        let Some(limit) = self.limit_of(&g.project_id, "server_group_members").await else {
            return Ok(());
        };
        let members: i64 =
            sqlx::query("SELECT COUNT(*) FROM compute_server_group_members WHERE group_uuid = $1")
                .bind(&g.uuid)
                .fetch_one(self.db.pool())
                .await?
                .get(0);
        if members + adding > limit {
            return Err(ComputeError::over_limit(
                "Quota exceeded, too many servers in group",
            ));
        }
        Ok(())
    }

    /// The group `group` as the scheduler sees it when placing its member `member`: the
    /// policy, `max_server_per_host`, and how many of the other members each host holds.
    /// `None` when the group is gone. Runs on `conn`, so [`Self::place_in`] can read it in
    /// the transaction that records the member's host.
    ///
    /// [`Self::place_in`]: ComputeService::place_in
    pub(crate) async fn group_state(
        conn: &mut AnyConnection,
        group: &str,
        member: &str,
    ) -> Result<Option<GroupState>> {
        let Some(row) = sqlx::query("SELECT * FROM compute_server_groups WHERE uuid = $1")
            .bind(group)
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        let g = ServerGroup::from_row(&row);
        let rows = sqlx::query(
            "SELECT i.host, COUNT(*) FROM compute_server_group_members m \
             JOIN compute_instances i ON i.uuid = m.instance_uuid \
             WHERE m.group_uuid = $1 AND m.instance_uuid <> $2 AND i.deleted = FALSE \
             AND i.host IS NOT NULL GROUP BY i.host",
        )
        .bind(group)
        .bind(member)
        .fetch_all(&mut *conn)
        .await?;
        Ok(Some(GroupState {
            max_server_per_host: g.max_server_per_host(),
            policy: g.policy,
            members_on_host: rows
                .iter()
                .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
                .collect(),
        }))
    }

    /// The groups `uuid` is a member of (at most one, as in Nova), for the `server_groups`
    /// field of a server from microversion 2.71.
    pub async fn groups_of_server(&self, uuid: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT group_uuid FROM compute_server_group_members WHERE instance_uuid = $1 \
             ORDER BY group_uuid",
        )
        .bind(uuid)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
    }
}
