//! The SQL of the Placement service: loading providers into the snapshot, the writes each
//! API call makes, and the revision counter. Functions take a transaction for writes (the
//! service decides where transactions begin and end) or the pool for reads.
//!
//! Provider ids come from a counter in `placement_revision` rather than an auto-increment
//! column, so the same SQL creates them on SQLite and PostgreSQL.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ferrostack_db::sqlx::{self, Row};
use ferrostack_db::{Db, DbRow, Tx};

use crate::model::{Inventory, Provider};

pub type SqlResult<T> = std::result::Result<T, sqlx::Error>;

/// `IN (...)` over integer ids (inlined: integers cannot carry SQL).
pub fn id_list(ids: &[i64]) -> String {
    let mut s = String::from("(");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&id.to_string());
    }
    if ids.is_empty() {
        s.push_str("NULL");
    }
    s.push(')');
    s
}

/// Loads providers (all of them when `ids` is `None`) with inventories, usage, traits and
/// aggregates.
pub async fn load_providers(db: &Db, ids: Option<&[i64]>) -> SqlResult<Vec<Provider>> {
    let filter = |col: &str| match ids {
        Some(ids) => format!(" WHERE {col} IN {}", id_list(ids)),
        None => String::new(),
    };
    let pool = db.pool();
    let rows = sqlx::query(&format!(
        "SELECT id, uuid, name, generation, parent_id, root_id FROM resource_providers{}",
        filter("id")
    ))
    .fetch_all(pool)
    .await?;
    let mut providers: BTreeMap<i64, Provider> = BTreeMap::new();
    for r in rows {
        let id: i64 = r.try_get("id")?;
        providers.insert(
            id,
            Provider {
                id,
                uuid: r.try_get("uuid")?,
                name: r.try_get("name")?,
                generation: r.try_get("generation")?,
                parent: r.try_get("parent_id")?,
                root: r.try_get("root_id")?,
                inventories: BTreeMap::new(),
                used: BTreeMap::new(),
                traits: BTreeSet::new(),
                aggregates: BTreeSet::new(),
            },
        );
    }
    for r in sqlx::query(&format!(
        "SELECT provider_id, resource_class, total, reserved, min_unit, max_unit, step_size, \
         allocation_ratio FROM inventories{}",
        filter("provider_id")
    ))
    .fetch_all(pool)
    .await?
    {
        if let Some(p) = providers.get_mut(&r.try_get::<i64, _>("provider_id")?) {
            p.inventories
                .insert(r.try_get("resource_class")?, inventory_from_row(&r)?);
        }
    }
    for r in sqlx::query(&format!(
        "SELECT provider_id, resource_class, CAST(SUM(used) AS BIGINT) AS used FROM allocations{} \
         GROUP BY provider_id, resource_class",
        filter("provider_id")
    ))
    .fetch_all(pool)
    .await?
    {
        if let Some(p) = providers.get_mut(&r.try_get::<i64, _>("provider_id")?) {
            p.used
                .insert(r.try_get("resource_class")?, r.try_get("used")?);
        }
    }
    for r in sqlx::query(&format!(
        "SELECT provider_id, trait FROM provider_traits{}",
        filter("provider_id")
    ))
    .fetch_all(pool)
    .await?
    {
        if let Some(p) = providers.get_mut(&r.try_get::<i64, _>("provider_id")?) {
            p.traits.insert(r.try_get("trait")?);
        }
    }
    for r in sqlx::query(&format!(
        "SELECT provider_id, aggregate FROM provider_aggregates{}",
        filter("provider_id")
    ))
    .fetch_all(pool)
    .await?
    {
        if let Some(p) = providers.get_mut(&r.try_get::<i64, _>("provider_id")?) {
            p.aggregates.insert(r.try_get("aggregate")?);
        }
    }
    Ok(providers.into_values().collect())
}

fn inventory_from_row(r: &DbRow) -> SqlResult<Inventory> {
    Ok(Inventory {
        total: r.try_get("total")?,
        reserved: r.try_get("reserved")?,
        min_unit: r.try_get("min_unit")?,
        max_unit: r.try_get("max_unit")?,
        step_size: r.try_get("step_size")?,
        allocation_ratio: r.try_get("allocation_ratio")?,
    })
}

/// Bumps the revision other nodes watch; returns the new value.
pub async fn bump_revision(tx: &mut Tx<'static>) -> SqlResult<i64> {
    sqlx::query(
        "UPDATE placement_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision",
    )
    .fetch_one(&mut **tx)
    .await?
    .try_get("revision")
}

pub async fn revision(db: &Db) -> SqlResult<i64> {
    sqlx::query("SELECT revision FROM placement_revision WHERE id = 1")
        .fetch_one(db.pool())
        .await?
        .try_get("revision")
}

pub async fn next_provider_id(tx: &mut Tx<'static>) -> SqlResult<i64> {
    let next: i64 = sqlx::query(
        "UPDATE placement_revision SET next_provider_id = next_provider_id + 1 WHERE id = 1 \
         RETURNING next_provider_id",
    )
    .fetch_one(&mut **tx)
    .await?
    .try_get("next_provider_id")?;
    Ok(next - 1)
}

/// Compare-and-swap of a provider's generation: false when someone else changed it first.
pub async fn bump_generation(
    tx: &mut Tx<'static>,
    id: i64,
    expected: i64,
    now: i64,
) -> SqlResult<bool> {
    let done = sqlx::query(
        "UPDATE resource_providers SET generation = generation + 1, updated_at = $1 \
         WHERE id = $2 AND generation = $3",
    )
    .bind(now)
    .bind(id)
    .bind(expected)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Current generations of `ids`, locking the rows on PostgreSQL (in id order, so two claims
/// never deadlock); SQLite writers are already serialized by the service.
pub async fn lock_generations(
    tx: &mut Tx<'static>,
    ids: &[i64],
    postgres: bool,
) -> SqlResult<HashMap<i64, i64>> {
    let lock = if postgres {
        " ORDER BY id FOR UPDATE"
    } else {
        ""
    };
    let rows = sqlx::query(&format!(
        "SELECT id, generation FROM resource_providers WHERE id IN {}{lock}",
        id_list(ids)
    ))
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("generation")?)))
        .collect()
}

/// Inventories of `ids` as the transaction sees them.
pub async fn inventories_tx(
    tx: &mut Tx<'static>,
    ids: &[i64],
) -> SqlResult<HashMap<(i64, String), Inventory>> {
    let rows = sqlx::query(&format!(
        "SELECT provider_id, resource_class, total, reserved, min_unit, max_unit, step_size, \
         allocation_ratio FROM inventories WHERE provider_id IN {}",
        id_list(ids)
    ))
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                (r.try_get("provider_id")?, r.try_get("resource_class")?),
                inventory_from_row(r)?,
            ))
        })
        .collect()
}

/// Units used per (provider, class) among `ids`, as the transaction sees them.
pub async fn usage_tx(tx: &mut Tx<'static>, ids: &[i64]) -> SqlResult<HashMap<(i64, String), i64>> {
    let rows = sqlx::query(&format!(
        "SELECT provider_id, resource_class, CAST(SUM(used) AS BIGINT) AS used FROM allocations \
         WHERE provider_id IN {} GROUP BY provider_id, resource_class",
        id_list(ids)
    ))
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                (r.try_get("provider_id")?, r.try_get("resource_class")?),
                r.try_get("used")?,
            ))
        })
        .collect()
}

/// One consumer's record.
#[derive(Debug, Clone)]
pub struct Consumer {
    pub uuid: String,
    pub project_id: String,
    pub user_id: String,
    pub generation: i64,
    pub consumer_type: Option<String>,
    pub updated_at: i64,
}

pub async fn consumer_tx(tx: &mut Tx<'static>, uuid: &str) -> SqlResult<Option<Consumer>> {
    let row = sqlx::query(
        "SELECT uuid, project_id, user_id, generation, consumer_type, updated_at FROM consumers WHERE uuid = $1",
    )
    .bind(uuid)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| consumer_from_row(&r)).transpose()
}

pub async fn consumer(db: &Db, uuid: &str) -> SqlResult<Option<Consumer>> {
    let row = sqlx::query(
        "SELECT uuid, project_id, user_id, generation, consumer_type, updated_at FROM consumers WHERE uuid = $1",
    )
    .bind(uuid)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| consumer_from_row(&r)).transpose()
}

fn consumer_from_row(r: &DbRow) -> SqlResult<Consumer> {
    Ok(Consumer {
        uuid: r.try_get("uuid")?,
        project_id: r.try_get("project_id")?,
        user_id: r.try_get("user_id")?,
        generation: r.try_get("generation")?,
        consumer_type: r.try_get("consumer_type")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// One allocation row with its provider's uuid.
#[derive(Debug, Clone)]
pub struct AllocationRow {
    pub consumer: String,
    pub provider_id: i64,
    pub provider_uuid: String,
    pub provider_generation: i64,
    pub resource_class: String,
    pub used: i64,
}

const ALLOCATION_SELECT: &str = "SELECT a.consumer, a.provider_id, p.uuid AS provider_uuid, \
     p.generation AS provider_generation, a.resource_class, a.used FROM allocations a \
     JOIN resource_providers p ON p.id = a.provider_id";

fn allocation_from_row(r: &DbRow) -> SqlResult<AllocationRow> {
    Ok(AllocationRow {
        consumer: r.try_get("consumer")?,
        provider_id: r.try_get("provider_id")?,
        provider_uuid: r.try_get("provider_uuid")?,
        provider_generation: r.try_get("provider_generation")?,
        resource_class: r.try_get("resource_class")?,
        used: r.try_get("used")?,
    })
}

pub async fn allocations_of_consumer(db: &Db, consumer: &str) -> SqlResult<Vec<AllocationRow>> {
    sqlx::query(&format!(
        "{ALLOCATION_SELECT} WHERE a.consumer = $1 ORDER BY p.uuid, a.resource_class"
    ))
    .bind(consumer)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(allocation_from_row)
    .collect()
}

pub async fn allocations_of_consumer_tx(
    tx: &mut Tx<'static>,
    consumer: &str,
) -> SqlResult<Vec<AllocationRow>> {
    sqlx::query(&format!("{ALLOCATION_SELECT} WHERE a.consumer = $1"))
        .bind(consumer)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(allocation_from_row)
        .collect()
}

pub async fn allocations_on_provider(db: &Db, provider: i64) -> SqlResult<Vec<AllocationRow>> {
    sqlx::query(&format!(
        "{ALLOCATION_SELECT} WHERE a.provider_id = $1 ORDER BY a.consumer, a.resource_class"
    ))
    .bind(provider)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(allocation_from_row)
    .collect()
}

/// Generations of the consumers named.
pub async fn consumer_generations(db: &Db, uuids: &[String]) -> SqlResult<HashMap<String, i64>> {
    let mut out = HashMap::new();
    for u in uuids {
        if let Some(c) = consumer(db, u).await? {
            out.insert(u.clone(), c.generation);
        }
    }
    Ok(out)
}

/// Writes one consumer's allocation rows `(provider, class, amount)` in one statement.
pub async fn insert_allocations(
    tx: &mut Tx<'static>,
    consumer: &str,
    rows: &[(i64, &str, i64)],
    now: i64,
) -> SqlResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut sql = String::from(
        "INSERT INTO allocations (consumer, provider_id, resource_class, used, created_at, updated_at) VALUES ",
    );
    for i in 0..rows.len() {
        let b = i * 3;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("($1, ${}, ${}, ${}, $2, $2)", b + 3, b + 4, b + 5));
    }
    let mut q = sqlx::query(&sql).bind(consumer).bind(now);
    for (pid, class, amount) in rows {
        q = q.bind(*pid).bind(*class).bind(*amount);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// Whether any allocation uses `class` on `provider` (an inventory then cannot go).
pub async fn class_in_use_on(tx: &mut Tx<'static>, provider: i64, class: &str) -> SqlResult<bool> {
    Ok(sqlx::query(
        "SELECT 1 FROM allocations WHERE provider_id = $1 AND resource_class = $2 LIMIT 1",
    )
    .bind(provider)
    .bind(class)
    .fetch_optional(&mut **tx)
    .await?
    .is_some())
}
