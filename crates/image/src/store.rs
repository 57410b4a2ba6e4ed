//! All SQL of the Image service.

use ferrostack_db::sqlx::{self, any::AnyRow, Row};
use ferrostack_db::{Db, RowExt};

use crate::model::{Image, Member, Task};
use serde_json::Value;

type R<T> = Result<T, sqlx::Error>;

fn image(r: AnyRow) -> Image {
    Image {
        id: r.get("id"),
        name: r.get("name"),
        status: r.get("status"),
        visibility: r.get("visibility"),
        protected: r.flag("protected"),
        os_hidden: r.flag("os_hidden"),
        owner: r.get("owner"),
        disk_format: r.get("disk_format"),
        container_format: r.get("container_format"),
        min_disk: r.get("min_disk"),
        min_ram: r.get("min_ram"),
        size: r.get("size"),
        virtual_size: r.get("virtual_size"),
        checksum: r.get("checksum"),
        os_hash_algo: r.get("os_hash_algo"),
        os_hash_value: r.get("os_hash_value"),
        properties: serde_json::from_str(&r.get::<String, _>("properties")).unwrap_or_default(),
        tags: serde_json::from_str(&r.get::<String, _>("tags")).unwrap_or_default(),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

fn member(r: AnyRow) -> Member {
    Member {
        image_id: r.get("image_id"),
        member_id: r.get("member_id"),
        status: r.get("status"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

fn task(r: AnyRow) -> Task {
    let json = |col: &str| {
        r.get::<Option<String>, _>(col)
            .and_then(|t| serde_json::from_str(&t).ok())
    };
    Task {
        id: r.get("id"),
        kind: r.get("type"),
        status: r.get("status"),
        owner: r.get("owner"),
        image_id: r.get("image_id"),
        request_id: r.get("request_id"),
        user_id: r.get("user_id"),
        input: json("input").unwrap_or_default(),
        result: json("result"),
        message: r.get("message"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        expires_at: r.get("expires_at"),
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    pub db: Db,
}

impl Store {
    pub async fn insert(&self, i: &Image) -> R<()> {
        sqlx::query(
            "INSERT INTO images (id, name, status, visibility, protected, os_hidden, owner, disk_format, container_format, min_disk, min_ram, size, virtual_size, checksum, os_hash_algo, os_hash_value, properties, tags, created_at, updated_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20)",
        )
        .bind(&i.id).bind(&i.name).bind(&i.status).bind(&i.visibility).bind(i.protected).bind(i.os_hidden).bind(&i.owner)
        .bind(&i.disk_format).bind(&i.container_format).bind(i.min_disk).bind(i.min_ram).bind(i.size).bind(i.virtual_size)
        .bind(&i.checksum).bind(&i.os_hash_algo).bind(&i.os_hash_value)
        .bind(serde_json::to_string(&i.properties).unwrap_or_default()).bind(serde_json::to_string(&i.tags).unwrap_or_default())
        .bind(i.created_at).bind(i.updated_at)
        .execute(self.db.pool()).await.map(drop)
    }

    /// Saves the client-settable attributes, only while the image is still in `expected_status`.
    pub async fn update_metadata(&self, i: &Image, expected_status: &str) -> R<bool> {
        let n = sqlx::query(
            "UPDATE images SET name=$2, visibility=$3, protected=$4, os_hidden=$5, owner=$6, disk_format=$7, container_format=$8, min_disk=$9, min_ram=$10, properties=$11, tags=$12, updated_at=$13 \
             WHERE id=$1 AND status=$14",
        )
        .bind(&i.id).bind(&i.name).bind(&i.visibility).bind(i.protected).bind(i.os_hidden).bind(&i.owner).bind(&i.disk_format)
        .bind(&i.container_format).bind(i.min_disk).bind(i.min_ram)
        .bind(serde_json::to_string(&i.properties).unwrap_or_default()).bind(serde_json::to_string(&i.tags).unwrap_or_default())
        .bind(i.updated_at).bind(expected_status)
        .execute(self.db.pool()).await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Moves an image from one status to another; false when it was not in `from` (lost race).
    pub async fn transition(&self, id: &str, from: &str, to: &str, now: i64) -> R<bool> {
        let n = sqlx::query("UPDATE images SET status=$3, updated_at=$4 WHERE id=$1 AND status=$2")
            .bind(id)
            .bind(from)
            .bind(to)
            .bind(now)
            .execute(self.db.pool())
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// Records the stored data and makes the image active, if it is still in `from`.
    pub async fn activate(&self, i: &Image, from: &str, now: i64) -> R<bool> {
        let n = sqlx::query(
            "UPDATE images SET status='active', size=$2, virtual_size=$3, checksum=$4, os_hash_algo=$5, os_hash_value=$6, updated_at=$7 WHERE id=$1 AND status=$8",
        )
        .bind(&i.id).bind(i.size).bind(i.virtual_size).bind(&i.checksum).bind(&i.os_hash_algo).bind(&i.os_hash_value).bind(now).bind(from)
        .execute(self.db.pool()).await?.rows_affected();
        Ok(n > 0)
    }

    pub async fn get(&self, id: &str) -> R<Option<Image>> {
        Ok(
            sqlx::query("SELECT * FROM images WHERE id=$1 AND status <> 'deleted'")
                .bind(id)
                .fetch_optional(self.db.pool())
                .await?
                .map(image),
        )
    }

    /// Whether an id was ever used (deleted images keep theirs).
    pub async fn id_taken(&self, id: &str) -> R<bool> {
        Ok(sqlx::query("SELECT 1 FROM images WHERE id=$1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?
            .is_some())
    }

    /// Images `project` may see: its own, public and community ones, and those shared with
    /// it; `None` (an administrator) sees all. Filtering, sorting and paging happen above.
    pub async fn visible(&self, project: Option<&str>) -> R<Vec<Image>> {
        let rows = match project {
            None => sqlx::query("SELECT * FROM images WHERE status <> 'deleted'").fetch_all(self.db.pool()).await?,
            Some(p) => sqlx::query(
                "SELECT * FROM images WHERE status <> 'deleted' AND (owner = $1 OR visibility IN ('public', 'community') \
                 OR (visibility = 'shared' AND id IN (SELECT image_id FROM image_members WHERE member_id = $1)))",
            )
            .bind(p).fetch_all(self.db.pool()).await?,
        };
        Ok(rows.into_iter().map(image).collect())
    }

    pub async fn mark_deleted(&self, id: &str, now: i64) -> R<bool> {
        let n = sqlx::query("UPDATE images SET status='deleted', deleted_at=$2, updated_at=$2 WHERE id=$1 AND status <> 'deleted'")
            .bind(id).bind(now).execute(self.db.pool()).await?.rows_affected();
        Ok(n > 0)
    }

    /// Images in `status` (recovery looks for uploads and imports a crash interrupted).
    pub async fn in_status(&self, status: &str) -> R<Vec<String>> {
        Ok(sqlx::query("SELECT id FROM images WHERE status=$1")
            .bind(status)
            .fetch_all(self.db.pool())
            .await?
            .into_iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// A project's usage: (images not deleted, bytes stored, uploads in flight).
    pub async fn usage(&self, owner: &str) -> R<(i64, i64, i64)> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes, \
             CAST(COALESCE(SUM(CASE WHEN status IN ('saving', 'uploading', 'importing') THEN 1 ELSE 0 END), 0) AS BIGINT) AS busy \
             FROM images WHERE owner = $1 AND status <> 'deleted'",
        )
        .bind(owner)
        .fetch_one(self.db.pool())
        .await?;
        // PostgreSQL sums BIGINT into NUMERIC, which the portable driver cannot read: cast back.
        Ok((
            r.try_get::<i64, _>("n")?,
            r.try_get::<i64, _>("bytes")?,
            r.try_get::<i64, _>("busy")?,
        ))
    }

    pub async fn member(&self, image_id: &str, member_id: &str) -> R<Option<Member>> {
        Ok(
            sqlx::query("SELECT * FROM image_members WHERE image_id=$1 AND member_id=$2")
                .bind(image_id)
                .bind(member_id)
                .fetch_optional(self.db.pool())
                .await?
                .map(member),
        )
    }

    pub async fn members(&self, image_id: &str) -> R<Vec<Member>> {
        Ok(
            sqlx::query("SELECT * FROM image_members WHERE image_id=$1 ORDER BY created_at")
                .bind(image_id)
                .fetch_all(self.db.pool())
                .await?
                .into_iter()
                .map(member)
                .collect(),
        )
    }

    pub async fn memberships(&self, member_id: &str) -> R<Vec<Member>> {
        Ok(
            sqlx::query("SELECT * FROM image_members WHERE member_id=$1")
                .bind(member_id)
                .fetch_all(self.db.pool())
                .await?
                .into_iter()
                .map(member)
                .collect(),
        )
    }

    pub async fn insert_member(&self, m: &Member) -> R<()> {
        sqlx::query("INSERT INTO image_members (image_id, member_id, status, created_at, updated_at) VALUES ($1,$2,$3,$4,$5)")
            .bind(&m.image_id).bind(&m.member_id).bind(&m.status).bind(m.created_at).bind(m.updated_at)
            .execute(self.db.pool()).await.map(drop)
    }

    pub async fn set_member_status(
        &self,
        image_id: &str,
        member_id: &str,
        status: &str,
        now: i64,
    ) -> R<bool> {
        let n = sqlx::query(
            "UPDATE image_members SET status=$3, updated_at=$4 WHERE image_id=$1 AND member_id=$2",
        )
        .bind(image_id)
        .bind(member_id)
        .bind(status)
        .bind(now)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    pub async fn delete_member(&self, image_id: &str, member_id: &str) -> R<bool> {
        let n = sqlx::query("DELETE FROM image_members WHERE image_id=$1 AND member_id=$2")
            .bind(image_id)
            .bind(member_id)
            .execute(self.db.pool())
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    pub async fn insert_task(&self, t: &Task) -> R<()> {
        sqlx::query(
            "INSERT INTO image_tasks (id, type, status, owner, image_id, request_id, user_id, input, result, message, created_at, updated_at, expires_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)",
        )
        .bind(&t.id).bind(&t.kind).bind(&t.status).bind(&t.owner).bind(&t.image_id).bind(&t.request_id).bind(&t.user_id)
        .bind(t.input.to_string()).bind(t.result.as_ref().map(Value::to_string)).bind(&t.message)
        .bind(t.created_at).bind(t.updated_at).bind(t.expires_at)
        .execute(self.db.pool()).await.map(drop)
    }

    /// Ends the image's task still `processing` (there is at most one: an image imports once
    /// at a time) with `status` and `message`.
    pub async fn end_image_task(
        &self,
        image_id: &str,
        status: &str,
        message: &str,
        now: i64,
        expires_at: i64,
    ) -> R<bool> {
        let n = sqlx::query(
            "UPDATE image_tasks SET status=$2, message=$3, updated_at=$4, expires_at=$5 WHERE image_id=$1 AND status='processing'",
        )
        .bind(image_id).bind(status).bind(message).bind(now).bind(expires_at)
        .execute(self.db.pool()).await?.rows_affected();
        Ok(n > 0)
    }

    pub async fn image_tasks(&self, image_id: &str) -> R<Vec<Task>> {
        Ok(
            sqlx::query("SELECT * FROM image_tasks WHERE image_id=$1 ORDER BY created_at, id")
                .bind(image_id)
                .fetch_all(self.db.pool())
                .await?
                .into_iter()
                .map(task)
                .collect(),
        )
    }

    pub async fn task(&self, id: &str) -> R<Option<Task>> {
        Ok(sqlx::query("SELECT * FROM image_tasks WHERE id=$1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?
            .map(task))
    }

    /// Tasks still `processing` (what a restart must settle).
    pub async fn processing_tasks(&self) -> R<Vec<Task>> {
        Ok(
            sqlx::query("SELECT * FROM image_tasks WHERE status = 'processing'")
                .fetch_all(self.db.pool())
                .await?
                .into_iter()
                .map(task)
                .collect(),
        )
    }

    /// All tasks, newest first (the tasks API is for administrators; paging happens above).
    pub async fn tasks(&self) -> R<Vec<Task>> {
        Ok(
            sqlx::query("SELECT * FROM image_tasks ORDER BY created_at DESC, id DESC")
                .fetch_all(self.db.pool())
                .await?
                .into_iter()
                .map(task)
                .collect(),
        )
    }
}
