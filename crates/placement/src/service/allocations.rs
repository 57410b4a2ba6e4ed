//! Allocations (the claim), consumers, usages and the reshaper.
//!
//! A claim is one transaction: check each consumer's generation, lock the providers
//! involved (PostgreSQL, in id order; SQLite writers are serialized), drop the consumer's
//! old allocations, check every new amount against the inventory's unit rules and the
//! capacity left (`(total - reserved) * allocation_ratio - used`), write, and bump the
//! generations of the consumers and of the providers allocated from (as upstream, a
//! provider only released from keeps its generation). Two schedulers claiming the last unit: the
//! second one waits for the first's row locks, then finds no capacity and gets a 409.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ferrostack_db::sqlx::{self, Row};

use super::{now, PlacementService, Write};
use crate::error::{code, PlacementError, Result};
use crate::model::Inventory;
use crate::store::{self, AllocationRow, Consumer};

/// One consumer's requested allocations (empty removes them all).
#[derive(Debug, Clone)]
pub struct ConsumerAllocations {
    pub consumer: String,
    /// Provider uuid → class → amount.
    pub allocations: BTreeMap<String, BTreeMap<String, i64>>,
    pub project_id: String,
    pub user_id: String,
    /// `None`: not checked (before 1.28); `Some(None)`: the consumer must be new.
    pub generation: Option<Option<i64>>,
    pub consumer_type: Option<String>,
}

/// A consumer's allocations for `GET /allocations/{consumer}`.
pub struct ConsumerView {
    pub rows: Vec<AllocationRow>,
    pub consumer: Option<Consumer>,
}

impl PlacementService {
    pub async fn consumer_allocations(&self, consumer: &str) -> Result<ConsumerView> {
        let rows = store::allocations_of_consumer(&self.db, consumer).await?;
        let consumer = if rows.is_empty() {
            None
        } else {
            store::consumer(&self.db, consumer).await?
        };
        Ok(ConsumerView { rows, consumer })
    }

    pub async fn provider_allocations(
        &self,
        uuid: &str,
    ) -> Result<(
        crate::model::Provider,
        Vec<AllocationRow>,
        HashMap<String, i64>,
    )> {
        let p = self.provider(uuid)?;
        let rows = store::allocations_on_provider(&self.db, p.id).await?;
        let consumers: Vec<String> = rows
            .iter()
            .map(|r| r.consumer.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let generations = store::consumer_generations(&self.db, &consumers).await?;
        Ok((p, rows, generations))
    }

    /// `PUT /allocations/{consumer}` and `POST /allocations`: all or nothing.
    pub async fn set_allocations(&self, items: Vec<ConsumerAllocations>) -> Result<()> {
        let mut w = self.begin().await?;
        self.apply_allocations(&mut w, &items, &HashMap::new())
            .await?;
        self.commit(w).await
    }

    /// The heart of a claim, inside `w`. `replaced_inventories` (reshaper) overrides the
    /// inventories of providers whose inventories change in the same transaction.
    pub(super) async fn apply_allocations(
        &self,
        w: &mut Write<'_>,
        items: &[ConsumerAllocations],
        replaced_inventories: &HashMap<i64, BTreeMap<String, Inventory>>,
    ) -> Result<()> {
        // Providers by uuid, from the snapshot (a provider created a moment ago on another
        // node is also looked up in the database).
        let mut ids: HashMap<String, i64> = HashMap::new();
        for item in items {
            for uuid in item.allocations.keys() {
                if ids.contains_key(uuid) {
                    continue;
                }
                let known = self.snapshot().by_uuid(uuid).map(|p| p.id);
                let id = match known {
                    Some(id) => Some(id),
                    None => sqlx::query("SELECT id FROM resource_providers WHERE uuid = $1")
                        .bind(uuid)
                        .fetch_optional(&mut *w.tx)
                        .await?
                        .map(|r| r.get::<i64, _>("id")),
                };
                let id = id.ok_or_else(|| {
                    PlacementError::bad(format!(
                        "Allocation for resource provider '{uuid}' that does not exist."
                    ))
                })?;
                ids.insert(uuid.clone(), id);
            }
        }
        // Consumers and their generations.
        let mut consumers: HashMap<String, Option<Consumer>> = HashMap::new();
        let mut old_rows: Vec<AllocationRow> = Vec::new();
        for item in items {
            let existing = store::consumer_tx(&mut w.tx, &item.consumer).await?;
            if let Some(expected) = item.generation {
                let actual = existing.as_ref().map(|c| c.generation);
                if actual != expected {
                    let show = |g: Option<i64>| g.map_or("None".to_string(), |g| g.to_string());
                    return Err(PlacementError::concurrent(format!(
                        "consumer generation conflict - expected {} but got {}",
                        show(actual),
                        show(expected)
                    )));
                }
            }
            old_rows.extend(store::allocations_of_consumer_tx(&mut w.tx, &item.consumer).await?);
            consumers.insert(item.consumer.clone(), existing);
        }
        // Lock every provider involved, old and new.
        let mut involved: BTreeSet<i64> = ids.values().copied().collect();
        involved.extend(old_rows.iter().map(|r| r.provider_id));
        let involved: Vec<i64> = involved.into_iter().collect();
        let generations = store::lock_generations(&mut w.tx, &involved, self.postgres()).await?;
        // Capacity as it will be once the old allocations are gone.
        let mut inventories = store::inventories_tx(&mut w.tx, &involved).await?;
        for (pid, invs) in replaced_inventories {
            inventories.retain(|(p, _), _| p != pid);
            for (class, inv) in invs {
                inventories.insert((*pid, class.clone()), inv.clone());
            }
        }
        let mut used = store::usage_tx(&mut w.tx, &involved).await?;
        for r in &old_rows {
            if let Some(u) = used.get_mut(&(r.provider_id, r.resource_class.clone())) {
                *u -= r.used;
            }
        }
        let t = now();
        for item in items {
            sqlx::query("DELETE FROM allocations WHERE consumer = $1")
                .bind(&item.consumer)
                .execute(&mut *w.tx)
                .await?;
        }
        let mut rows: Vec<(i64, &str, i64)> = Vec::new();
        for item in items {
            for (uuid, resources) in &item.allocations {
                let pid = ids[uuid];
                for (class, amount) in resources {
                    let key = (pid, class.clone());
                    let Some(inv) = inventories.get(&key) else {
                        // A class that does not exist at all is the client's mistake (400);
                        // one the provider has no inventory of is a conflict (409). Asked
                        // inside the transaction, and only on this error path.
                        let known = sqlx::query("SELECT 1 FROM resource_classes WHERE name = $1")
                            .bind(class)
                            .fetch_optional(&mut *w.tx)
                            .await?
                            .is_some();
                        if !known {
                            return Err(PlacementError::bad(format!(
                                "Unable to allocate inventory for consumer {}: No such resource class {class}.",
                                item.consumer
                            )));
                        }
                        return Err(PlacementError::conflict(
                            code::DEFAULT,
                            format!("Unable to allocate inventory: Inventory for '{class}' on resource provider '{uuid}' invalid."),
                        ));
                    };
                    if *amount < inv.min_unit
                        || *amount > inv.max_unit
                        || *amount % inv.step_size.max(1) != 0
                    {
                        return Err(PlacementError::bad(format!(
                            "Unable to allocate inventory: Allocation for {class} on resource provider {uuid} violates min_unit, max_unit, or step_size. Requested: {amount}, min_unit: {}, max_unit: {}, step_size: {}",
                            inv.min_unit, inv.max_unit, inv.step_size
                        )));
                    }
                    let u = used.entry(key).or_insert(0);
                    if *u + amount > inv.capacity() {
                        return Err(PlacementError::conflict(
                            code::DEFAULT,
                            format!("Unable to allocate inventory: Unable to create allocation for '{class}' on resource provider '{uuid}'. The requested amount would exceed the capacity."),
                        ));
                    }
                    *u += amount;
                    rows.push((pid, class.as_str(), *amount));
                }
            }
            store::insert_allocations(&mut w.tx, &item.consumer, &rows, t).await?;
            rows.clear();
            self.write_consumer(w, item, consumers[&item.consumer].as_ref(), t)
                .await?;
        }
        // As upstream: the providers allocated from get a new generation; those only
        // released from (a consumer's old allocations) keep theirs.
        let allocated: BTreeSet<i64> = ids.values().copied().collect();
        for pid in &involved {
            let Some(g) = generations.get(pid) else {
                // Deleted by someone else since the snapshot was read.
                return Err(PlacementError::concurrent(
                    "resource provider disappeared during the claim; try again",
                ));
            };
            if allocated.contains(pid) && !store::bump_generation(&mut w.tx, *pid, *g, t).await? {
                return Err(PlacementError::concurrent(
                    "resource provider generation changed during the claim; try again",
                ));
            }
        }
        for pid in involved {
            let used = used
                .iter()
                .filter(|((p, _), u)| *p == pid && **u > 0)
                .map(|((_, class), u)| (class.clone(), *u))
                .collect();
            let bumped = i64::from(allocated.contains(&pid));
            w.patch(super::UsagePatch {
                id: pid,
                generation: generations[&pid] + bumped,
                used,
            });
        }
        Ok(())
    }

    /// Creates, updates (project, user, type; generation + 1) or, without allocations left,
    /// deletes the consumer record.
    async fn write_consumer(
        &self,
        w: &mut Write<'_>,
        item: &ConsumerAllocations,
        existing: Option<&Consumer>,
        t: i64,
    ) -> Result<()> {
        if item.allocations.is_empty() {
            sqlx::query("DELETE FROM consumers WHERE uuid = $1")
                .bind(&item.consumer)
                .execute(&mut *w.tx)
                .await?;
            return Ok(());
        }
        match existing {
            None => {
                sqlx::query("INSERT INTO consumers (uuid, project_id, user_id, generation, consumer_type, created_at, updated_at) VALUES ($1, $2, $3, 1, $4, $5, $5)")
                    .bind(&item.consumer)
                    .bind(&item.project_id)
                    .bind(&item.user_id)
                    .bind(&item.consumer_type)
                    .bind(t)
                    .execute(&mut *w.tx)
                    .await?;
            }
            Some(c) => {
                let kind = item
                    .consumer_type
                    .clone()
                    .or_else(|| c.consumer_type.clone());
                let done = sqlx::query("UPDATE consumers SET project_id = $1, user_id = $2, consumer_type = $3, generation = generation + 1, updated_at = $4 WHERE uuid = $5 AND generation = $6")
                    .bind(&item.project_id)
                    .bind(&item.user_id)
                    .bind(kind)
                    .bind(t)
                    .bind(&item.consumer)
                    .bind(c.generation)
                    .execute(&mut *w.tx)
                    .await?;
                if done.rows_affected() != 1 {
                    return Err(PlacementError::concurrent(
                        "consumer generation conflict: the consumer changed during the claim; try again",
                    ));
                }
            }
        }
        Ok(())
    }

    /// `DELETE /allocations/{consumer}`.
    pub async fn delete_allocations(&self, consumer: &str) -> Result<()> {
        let mut w = self.begin().await?;
        let rows = store::allocations_of_consumer_tx(&mut w.tx, consumer).await?;
        if rows.is_empty() {
            return Err(PlacementError::not_found(format!(
                "No allocations for consumer '{consumer}'"
            )));
        }
        let ids: Vec<i64> = rows
            .iter()
            .map(|r| r.provider_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // Locked so a concurrent claim on these providers waits for the freed capacity.
        store::lock_generations(&mut w.tx, &ids, self.postgres()).await?;
        sqlx::query("DELETE FROM allocations WHERE consumer = $1")
            .bind(consumer)
            .execute(&mut *w.tx)
            .await?;
        sqlx::query("DELETE FROM consumers WHERE uuid = $1")
            .bind(consumer)
            .execute(&mut *w.tx)
            .await?;
        // Releasing allocations leaves the providers' generations alone, as upstream's does.
        w.touch_all(ids);
        self.commit(w).await
    }

    /// `GET /usages?project_id=&user_id=&consumer_type=`: class → amount, grouped by
    /// consumer type (from 1.38 the view adds counts per type).
    pub async fn project_usages(
        &self,
        project_id: &str,
        user_id: Option<&str>,
        consumer_type: Option<&str>,
    ) -> Result<BTreeMap<String, (i64, BTreeMap<String, i64>)>> {
        let mut sql = String::from(
            "SELECT COALESCE(c.consumer_type, 'unknown') AS kind, a.resource_class, CAST(SUM(a.used) AS BIGINT) AS used, \
             CAST(COUNT(DISTINCT a.consumer) AS BIGINT) AS consumers FROM allocations a JOIN consumers c ON c.uuid = a.consumer \
             WHERE c.project_id = $1",
        );
        if user_id.is_some() {
            sql.push_str(" AND c.user_id = $2");
        }
        sql.push_str(" GROUP BY COALESCE(c.consumer_type, 'unknown'), a.resource_class");
        let mut q = sqlx::query(&sql).bind(project_id);
        if let Some(u) = user_id {
            q = q.bind(u);
        }
        let rows = q.fetch_all(self.db.pool()).await?;
        let mut out: BTreeMap<String, (i64, BTreeMap<String, i64>)> = BTreeMap::new();
        for r in rows {
            let kind: String = r.get("kind");
            let entry = out.entry(kind).or_default();
            entry.1.insert(r.get("resource_class"), r.get("used"));
        }
        // Consumer counts per type, counted once per consumer.
        let mut count_sql = String::from(
            "SELECT COALESCE(consumer_type, 'unknown') AS kind, CAST(COUNT(*) AS BIGINT) AS n FROM consumers WHERE project_id = $1",
        );
        if user_id.is_some() {
            count_sql.push_str(" AND user_id = $2");
        }
        count_sql.push_str(" GROUP BY COALESCE(consumer_type, 'unknown')");
        let mut q = sqlx::query(&count_sql).bind(project_id);
        if let Some(u) = user_id {
            q = q.bind(u);
        }
        for r in q.fetch_all(self.db.pool()).await? {
            if let Some(e) = out.get_mut(&r.get::<String, _>("kind")) {
                e.0 = r.get("n");
            }
        }
        if let Some(kind) = consumer_type {
            if kind == "all" {
                let mut all = (0, BTreeMap::new());
                for (n, classes) in out.values() {
                    all.0 += n;
                    for (c, u) in classes {
                        *all.1.entry(c.clone()).or_insert(0) += u;
                    }
                }
                out = BTreeMap::from([("all".to_string(), all)]);
            } else {
                out.retain(|k, _| k == kind);
            }
        }
        Ok(out)
    }

    /// `POST /reshaper` (1.30): new inventories for several providers and new allocations
    /// for several consumers, in one transaction.
    pub async fn reshape(
        &self,
        inventories: Vec<(String, i64, BTreeMap<String, Inventory>)>,
        allocations: Vec<ConsumerAllocations>,
    ) -> Result<()> {
        // Checked before the transaction: an in-memory SQLite has a single connection.
        for (uuid, _, invs) in &inventories {
            self.provider(uuid)?;
            for class in invs.keys() {
                if !self.resource_class_exists(class).await? {
                    return Err(PlacementError::bad(format!(
                        "Unknown resource class in inventory for resource provider {uuid}: {class}"
                    )));
                }
            }
        }
        let mut w = self.begin().await?;
        let mut replaced = HashMap::new();
        let t = now();
        for (uuid, generation, invs) in &inventories {
            let p = self.provider(uuid)?;
            let current = store::lock_generations(&mut w.tx, &[p.id], self.postgres()).await?;
            if current.get(&p.id) != Some(generation)
                || !store::bump_generation(&mut w.tx, p.id, *generation, t).await?
            {
                return Err(PlacementError::concurrent(format!(
                    "resource provider generation conflict for {uuid}; refresh and try again"
                )));
            }
            sqlx::query("DELETE FROM inventories WHERE provider_id = $1")
                .bind(p.id)
                .execute(&mut *w.tx)
                .await?;
            for (class, inv) in invs {
                sqlx::query(
                    "INSERT INTO inventories (provider_id, resource_class, total, reserved, min_unit, max_unit, step_size, allocation_ratio, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
                )
                .bind(p.id)
                .bind(class)
                .bind(inv.total)
                .bind(inv.reserved)
                .bind(inv.min_unit)
                .bind(inv.max_unit)
                .bind(inv.step_size)
                .bind(inv.allocation_ratio)
                .bind(t)
                .execute(&mut *w.tx)
                .await?;
            }
            replaced.insert(p.id, invs.clone());
            w.touch(p.id);
        }
        self.apply_allocations(&mut w, &allocations, &replaced)
            .await?;
        // Nothing may be left allocated against an inventory that is gone.
        let orphan = sqlx::query(
            "SELECT a.resource_class, p.uuid FROM allocations a JOIN resource_providers p ON p.id = a.provider_id \
             LEFT JOIN inventories i ON i.provider_id = a.provider_id AND i.resource_class = a.resource_class \
             WHERE i.provider_id IS NULL LIMIT 1",
        )
        .fetch_optional(&mut *w.tx)
        .await?;
        if let Some(r) = orphan {
            return Err(PlacementError::conflict(
                code::INVENTORY_INUSE,
                format!(
                    "update conflict: Inventory for '{}' on resource provider '{}' in use.",
                    r.get::<String, _>("resource_class"),
                    r.get::<String, _>("uuid")
                ),
            ));
        }
        self.commit(w).await
    }
}

/// One allocation candidate as the in-process scheduler reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateAllocation {
    /// The uuid of the tree's root (the compute node).
    pub root: String,
    /// Provider uuid → class → amount.
    pub allocations: BTreeMap<String, BTreeMap<String, i64>>,
    /// Per provider uuid: class → (capacity, used) now, for the weighers.
    pub capacity: BTreeMap<String, BTreeMap<String, (i64, i64)>>,
}

impl PlacementService {
    /// `GET /allocation_candidates` for a scheduler in this process, at the newest
    /// microversion: `query` is the request as query pairs (`resources`, `required`,
    /// `member_of`, `limit`...).
    pub async fn candidate_allocations(
        &self,
        query: &[(String, String)],
    ) -> Result<Vec<CandidateAllocation>> {
        let request = crate::candidates::parse(query, crate::microversion::MAX)?;
        let traits: Vec<&str> = request
            .root_required
            .names()
            .chain(request.groups.iter().flat_map(|g| g.required.names()))
            .map(String::as_str)
            .collect();
        let (classes, traits) = self
            .existing_names(request.requested_classes(), traits)
            .await?;
        request.check_names(|c| classes.contains(c), |t| traits.contains(t))?;
        let snap = self.snapshot();
        let found = crate::candidates::search(&snap, &request);
        let mut out = Vec::with_capacity(found.requests.len());
        for r in &found.requests {
            let uuid_of = |id: i64| snap.get(id).map(|p| p.uuid.clone()).unwrap_or_default();
            let mut allocations: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
            let mut capacity: BTreeMap<String, BTreeMap<String, (i64, i64)>> = BTreeMap::new();
            for &(pid, class, amount) in &r.resources {
                let class = found.classes[class as usize].clone();
                allocations
                    .entry(uuid_of(pid))
                    .or_default()
                    .insert(class.clone(), amount);
                if let Some(p) = snap.get(pid) {
                    let cap = p.inventories.get(&class).map_or(0, |i| i.capacity());
                    capacity
                        .entry(p.uuid.clone())
                        .or_default()
                        .insert(class.clone(), (cap, p.used(&class)));
                }
            }
            out.push(CandidateAllocation {
                root: uuid_of(r.anchor),
                allocations,
                capacity,
            });
        }
        Ok(out)
    }
}
