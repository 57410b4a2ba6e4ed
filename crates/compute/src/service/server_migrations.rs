//! Migration records: one row per resize, cold migration, live migration or evacuation of a
//! server, with Nova's columns, and the `GET /os-migrations` query over them (filters,
//! newest-first paging from 2.59, `changes-since`/`changes-before`). A resize records its
//! row with the request ([`insert_migration`]) and its workflows move the status on; cold
//! and live migration will add theirs the same way.

use ferrostack_common::AuthContext;
use ferrostack_db::sqlx::{self, AnyConnection, Row};
use ferrostack_db::{RowExt, Tx};

use super::{now, ComputeService};
use crate::error::{ComputeError, Result};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MigrationRecord {
    pub id: i64,
    pub uuid: String,
    pub instance_uuid: String,
    /// `migration`, `resize`, `live-migration` or `evacuation`.
    pub migration_type: String,
    pub status: String,
    pub source_compute: Option<String>,
    pub source_node: Option<String>,
    pub dest_compute: Option<String>,
    pub dest_node: Option<String>,
    pub dest_host: Option<String>,
    /// The flavors before and after (Nova shows its integer flavor ids).
    pub old_instance_type_id: Option<String>,
    pub new_instance_type_id: Option<String>,
    /// Hidden records (e.g. the source half of a cross-cell move) are never listed.
    pub hidden: bool,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

impl MigrationRecord {
    fn from_row(r: &ferrostack_db::DbRow) -> MigrationRecord {
        MigrationRecord {
            id: r.get("id"),
            uuid: r.get("uuid"),
            instance_uuid: r.get("instance_uuid"),
            migration_type: r.get("migration_type"),
            status: r.get("status"),
            source_compute: r.get("source_compute"),
            source_node: r.get("source_node"),
            dest_compute: r.get("dest_compute"),
            dest_node: r.get("dest_node"),
            dest_host: r.get("dest_host"),
            old_instance_type_id: r.get("old_instance_type_id"),
            new_instance_type_id: r.get("new_instance_type_id"),
            hidden: r.flag("hidden"),
            user_id: r.get("user_id"),
            project_id: r.get("project_id"),
            created_at: r.get("created_at"),
            updated_at: r.get("updated_at"),
        }
    }
}

/// `GET /os-migrations` filters, as the microversion allows them.
#[derive(Debug, Clone, Default)]
pub struct MigrationQuery {
    pub status: Option<String>,
    /// Source or destination host.
    pub host: Option<String>,
    pub source_compute: Option<String>,
    pub instance_uuid: Option<String>,
    pub migration_type: Option<String>,
    pub hidden: Option<bool>,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub changes_since: Option<i64>,
    pub changes_before: Option<i64>,
    /// From 2.59: newest first, then the page after `marker` (a migration uuid).
    pub paged: bool,
    pub limit: Option<usize>,
    pub marker: Option<String>,
}

impl MigrationQuery {
    fn matches(&self, m: &MigrationRecord) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        let host_ok = match &self.host {
            Some(h) => {
                m.source_compute.as_deref() == Some(h) || m.dest_compute.as_deref() == Some(h)
            }
            None => eq(&self.source_compute, m.source_compute.as_deref()),
        };
        let changed = m.updated_at.unwrap_or(m.created_at);
        !m.hidden
            && host_ok
            && eq(&self.status, Some(&m.status))
            && eq(&self.instance_uuid, Some(&m.instance_uuid))
            && eq(&self.migration_type, Some(&m.migration_type))
            && eq(&self.user_id, m.user_id.as_deref())
            && eq(&self.project_id, m.project_id.as_deref())
            && self.hidden.is_none_or(|h| h == m.hidden)
            && self.changes_since.is_none_or(|t| changed >= t)
            && self.changes_before.is_none_or(|t| changed <= t)
    }
}

/// Keeps the page of `list` (already in order) after `marker`, at most `limit` long.
fn page(
    mut list: Vec<MigrationRecord>,
    marker: Option<&str>,
    limit: Option<usize>,
) -> Result<Vec<MigrationRecord>> {
    if let Some(m) = marker {
        let at = list
            .iter()
            .position(|r| r.uuid == m)
            .ok_or_else(|| ComputeError::bad(format!("Marker {m} could not be found.")))?;
        list.drain(..=at);
    }
    if let Some(l) = limit {
        list.truncate(l);
    }
    Ok(list)
}

impl ComputeService {
    /// The migrations the caller may list. Listing needs `os-migrations:index`; asking for
    /// no project or another project than the caller's also needs `index:all_projects`, as
    /// in Nova.
    pub async fn list_migrations(
        &self,
        ctx: &AuthContext,
        q: &MigrationQuery,
    ) -> Result<Vec<MigrationRecord>> {
        self.authorize(ctx, "os_compute_api:os-migrations:index")?;
        if q.project_id.is_none() || q.project_id.as_deref() != ctx.project_id() {
            self.authorize(ctx, "os_compute_api:os-migrations:index:all_projects")?;
        }
        let rows = sqlx::query("SELECT * FROM compute_migrations")
            .fetch_all(self.db.pool())
            .await?;
        let mut list: Vec<MigrationRecord> = rows
            .iter()
            .map(MigrationRecord::from_row)
            .filter(|m| q.matches(m))
            .collect();
        if !q.paged {
            list.sort_by_key(|m| m.id);
            return Ok(list);
        }
        list.sort_by_key(|m| std::cmp::Reverse((m.created_at, m.id)));
        page(list, q.marker.as_deref(), q.limit)
    }

    /// Adds a migration record (its integer id is the next of a counter, as Nova's
    /// autoincrement) and returns it.
    pub async fn record_migration(&self, m: &MigrationRecord) -> Result<MigrationRecord> {
        let mut tx = self.db.begin_write().await?;
        let rec = insert_migration(&mut tx, m).await?;
        tx.commit().await?;
        Ok(rec)
    }

    /// Moves the migration `uuid` on to `status` (Nova's progression for a resize:
    /// `pre-migrating`, `migrating`, `finished`, then `confirming` and `confirmed` or
    /// `reverting` and `reverted`; `error` when it fails). Setting the status it has already
    /// changes nothing, so a step that runs again may set it again.
    pub async fn set_migration_status(&self, uuid: &str, status: &str) -> Result<()> {
        let mut conn = self.db.pool().acquire().await?;
        set_migration_status_on(&mut conn, uuid, status).await
    }
}

/// [`ComputeService::record_migration`] inside the caller's transaction, so a migration is
/// recorded together with the request that starts it.
pub async fn insert_migration(tx: &mut Tx<'_>, m: &MigrationRecord) -> Result<MigrationRecord> {
    let id: i64 = sqlx::query(
        "UPDATE compute_counters SET value = value + 1 WHERE name = 'migration_id' RETURNING value",
    )
    .fetch_one(&mut **tx)
    .await?
    .get(0);
    let mut rec = m.clone();
    rec.id = id;
    if rec.uuid.is_empty() {
        rec.uuid = uuid::Uuid::new_v4().to_string();
    }
    rec.created_at = now();
    sqlx::query(
        "INSERT INTO compute_migrations (id, uuid, instance_uuid, migration_type, status, source_compute, \
         source_node, dest_compute, dest_node, dest_host, old_instance_type_id, new_instance_type_id, \
         hidden, user_id, project_id, created_at, updated_at) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(rec.id)
    .bind(&rec.uuid)
    .bind(&rec.instance_uuid)
    .bind(&rec.migration_type)
    .bind(&rec.status)
    .bind(&rec.source_compute)
    .bind(&rec.source_node)
    .bind(&rec.dest_compute)
    .bind(&rec.dest_node)
    .bind(&rec.dest_host)
    .bind(&rec.old_instance_type_id)
    .bind(&rec.new_instance_type_id)
    .bind(rec.hidden)
    .bind(&rec.user_id)
    .bind(&rec.project_id)
    .bind(rec.created_at)
    .bind(rec.updated_at)
    .execute(&mut **tx)
    .await?;
    Ok(rec)
}

/// [`ComputeService::set_migration_status`] on `conn` (a transaction's, for a request that
/// changes the status as it starts a workflow).
pub async fn set_migration_status_on(
    conn: &mut AnyConnection,
    uuid: &str,
    status: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE compute_migrations SET status = $1, updated_at = $2 WHERE uuid = $3 AND status <> $1",
    )
    .bind(status)
    .bind(now())
    .bind(uuid)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: i64, status: &str, src: &str, dst: &str) -> MigrationRecord {
        MigrationRecord {
            id,
            uuid: format!("u{id}"),
            instance_uuid: "i".into(),
            migration_type: "resize".into(),
            status: status.into(),
            source_compute: Some(src.into()),
            dest_compute: Some(dst.into()),
            created_at: id,
            ..Default::default()
        }
    }

    #[test]
    fn host_matches_either_end_and_hidden_never_shows() {
        let q = MigrationQuery {
            host: Some("b".into()),
            ..Default::default()
        };
        assert!(q.matches(&rec(1, "done", "a", "b")));
        assert!(q.matches(&rec(2, "done", "b", "c")));
        assert!(!q.matches(&rec(3, "done", "a", "c")));
        let mut hidden = rec(4, "done", "b", "c");
        hidden.hidden = true;
        assert!(!q.matches(&hidden));
        let q = MigrationQuery {
            status: Some("error".into()),
            source_compute: Some("a".into()),
            ..Default::default()
        };
        assert!(q.matches(&rec(5, "error", "a", "b")));
        assert!(!q.matches(&rec(6, "done", "a", "b")));
        assert!(!q.matches(&rec(7, "error", "b", "a")));
    }

    #[test]
    fn pages_follow_the_marker() {
        let list = vec![
            rec(3, "x", "a", "b"),
            rec(2, "x", "a", "b"),
            rec(1, "x", "a", "b"),
        ];
        let p = page(list.clone(), Some("u3"), Some(1)).unwrap();
        assert_eq!(p.iter().map(|m| m.id).collect::<Vec<_>>(), [2]);
        assert_eq!(page(list.clone(), None, None).unwrap().len(), 3);
        assert_eq!(page(list, Some("nope"), None).unwrap_err().status, 400);
    }
}
