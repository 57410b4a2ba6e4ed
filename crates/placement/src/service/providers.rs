//! Resource providers and what hangs off them: the tree (parent, root, re-parenting from
//! 1.37), inventories, traits and aggregates. Every change to a provider's inventories,
//! traits or aggregates needs the generation the caller last saw and bumps it, so two
//! agents updating one provider cannot overwrite each other unnoticed.

use std::collections::{BTreeMap, BTreeSet};

use ferrostack_db::sqlx;

use super::{now, PlacementService, Write};
use crate::error::{code, PlacementError, Result};
use crate::model::{Inventory, Provider};
use crate::store;

/// The largest value Placement takes for integer inventory fields.
pub const MAX_INT: i64 = 2_147_483_647;

/// What a caller asks to set on a provider when creating or updating it.
pub struct ProviderSpec {
    pub name: String,
    pub uuid: Option<String>,
    /// `Some(None)` un-parents (from 1.37); `None` leaves the parent alone.
    pub parent_uuid: Option<Option<String>>,
}

impl PlacementService {
    /// The provider with `uuid`, or Placement's 404.
    pub fn provider(&self, uuid: &str) -> Result<Provider> {
        self.snapshot().by_uuid(uuid).cloned().ok_or_else(|| {
            PlacementError::new(
                axum::http::StatusCode::NOT_FOUND,
                code::PROVIDER_NOT_FOUND,
                format!("No resource provider with uuid {uuid} found"),
            )
        })
    }

    /// Uuid of the provider with database id `id` (for views of parents and roots).
    pub fn provider_uuid(&self, id: i64) -> Option<String> {
        self.snapshot().get(id).map(|p| p.uuid.clone())
    }

    pub async fn create_provider(&self, spec: ProviderSpec) -> Result<Provider> {
        let uuid = spec
            .uuid
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let unable = |why: &str| {
            PlacementError::bad(format!(
                "Unable to create resource provider \"{}\", {uuid}: {why}",
                spec.name
            ))
        };
        if spec.parent_uuid.as_ref().and_then(Option::as_deref) == Some(uuid.as_str()) {
            return Err(unable("parent provider UUID cannot be same as UUID. Please modify the parent provider UUID or UUID and try again."));
        }
        let parent = match spec.parent_uuid.clone().flatten() {
            Some(p) => Some(
                self.snapshot()
                    .by_uuid(&p)
                    .map(|p| (p.id, p.root))
                    .ok_or_else(|| unable("parent provider UUID does not exist."))?,
            ),
            None => None,
        };
        let mut w = self.begin().await?;
        self.check_unique(&mut w, &spec.name, &uuid, None).await?;
        let id = store::next_provider_id(&mut w.tx).await?;
        let t = now();
        sqlx::query(
            "INSERT INTO resource_providers (id, uuid, name, generation, parent_id, root_id, created_at, updated_at) \
             VALUES ($1, $2, $3, 0, $4, $5, $6, $6)",
        )
        .bind(id)
        .bind(&uuid)
        .bind(&spec.name)
        .bind(parent.map(|p| p.0))
        .bind(parent.map(|p| p.1).unwrap_or(id))
        .bind(t)
        .execute(&mut *w.tx)
        .await?;
        w.touch(id);
        self.commit(w).await?;
        self.provider(&uuid)
    }

    async fn check_unique(
        &self,
        w: &mut Write<'_>,
        name: &str,
        uuid: &str,
        except: Option<i64>,
    ) -> Result<()> {
        use ferrostack_db::sqlx::Row;
        let rows = sqlx::query(
            "SELECT id, uuid, name FROM resource_providers WHERE name = $1 OR uuid = $2",
        )
        .bind(name)
        .bind(uuid)
        .fetch_all(&mut *w.tx)
        .await?;
        for r in rows {
            if Some(r.get::<i64, _>("id")) == except {
                continue;
            }
            let what = if r.get::<String, _>("uuid") == uuid {
                format!("Conflicting resource provider uuid: {uuid} already exists.")
            } else {
                format!("Conflicting resource provider name: {name} already exists.")
            };
            return Err(PlacementError::conflict(code::DUPLICATE_NAME, what));
        }
        Ok(())
    }

    /// `PUT /resource_providers/{uuid}`: name and, from 1.14, parent (re-parenting and
    /// un-parenting only from 1.37).
    pub async fn update_provider(
        &self,
        uuid: &str,
        spec: ProviderSpec,
        allow_reparent: bool,
    ) -> Result<Provider> {
        let current = self.provider(uuid)?;
        let unable = |why: &str| {
            PlacementError::bad(format!("Unable to save resource provider {uuid}: {why}"))
        };
        // (A provider made its own parent is caught below as a loop, as upstream words it.)
        let new_parent: Option<i64> = match &spec.parent_uuid {
            None => current.parent,
            Some(None) => None,
            Some(Some(p)) => Some(
                self.snapshot()
                    .by_uuid(p)
                    .map(|p| p.id)
                    .ok_or_else(|| unable("parent provider UUID does not exist."))?,
            ),
        };
        if new_parent != current.parent {
            if !allow_reparent && current.parent.is_some() {
                let detail = if new_parent.is_none() {
                    "un-parenting a provider is not currently allowed."
                } else {
                    "re-parenting a provider is not currently allowed."
                };
                return Err(unable(detail));
            }
            if let Some(p) = new_parent {
                if self.snapshot().is_ancestor_or_self(current.id, p) {
                    return Err(PlacementError::bad(
                        "creating loop in the provider tree is not allowed.",
                    ));
                }
            }
        }
        let mut w = self.begin().await?;
        self.check_unique(&mut w, &spec.name, uuid, Some(current.id))
            .await?;
        let t = now();
        sqlx::query("UPDATE resource_providers SET name = $1, parent_id = $2, updated_at = $3 WHERE id = $4")
            .bind(&spec.name)
            .bind(new_parent)
            .bind(t)
            .bind(current.id)
            .execute(&mut *w.tx)
            .await?;
        w.touch(current.id);
        if new_parent != current.parent {
            // The whole subtree moves to the new root.
            let root = match new_parent {
                Some(p) => self.snapshot().get(p).map(|p| p.root).unwrap_or(p),
                None => current.id,
            };
            let subtree = self.snapshot().subtree(current.id);
            sqlx::query(&format!(
                "UPDATE resource_providers SET root_id = $1 WHERE id IN {}",
                store::id_list(&subtree)
            ))
            .bind(root)
            .execute(&mut *w.tx)
            .await?;
            w.touch_all(subtree);
        }
        self.commit(w).await?;
        self.provider(uuid)
    }

    pub async fn delete_provider(&self, uuid: &str) -> Result<()> {
        let p = self.provider(uuid).map_err(|mut e| {
            e.detail = format!("No resource provider with uuid {uuid} found for delete");
            e
        })?;
        let mut w = self.begin().await?;
        let has_allocations =
            sqlx::query("SELECT 1 FROM allocations WHERE provider_id = $1 LIMIT 1")
                .bind(p.id)
                .fetch_optional(&mut *w.tx)
                .await?
                .is_some();
        if has_allocations {
            return Err(PlacementError::conflict(
                code::PROVIDER_IN_USE,
                format!(
                    "Unable to delete resource provider {uuid}: Resource provider has allocations."
                ),
            ));
        }
        let has_children =
            sqlx::query("SELECT 1 FROM resource_providers WHERE parent_id = $1 LIMIT 1")
                .bind(p.id)
                .fetch_optional(&mut *w.tx)
                .await?
                .is_some();
        if has_children {
            return Err(PlacementError::conflict(
                code::PROVIDER_CANNOT_DELETE_PARENT,
                format!("Unable to delete parent resource provider {uuid}: It has child resource providers."),
            ));
        }
        for table in ["inventories", "provider_traits", "provider_aggregates"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE provider_id = $1"))
                .bind(p.id)
                .execute(&mut *w.tx)
                .await?;
        }
        sqlx::query("DELETE FROM resource_providers WHERE id = $1")
            .bind(p.id)
            .execute(&mut *w.tx)
            .await?;
        w.touch(p.id);
        self.commit(w).await
    }

    /// Locks the provider row and checks the caller's generation, then bumps it.
    async fn claim_generation(&self, w: &mut Write<'_>, p: &Provider, expected: i64) -> Result<()> {
        let current = store::lock_generations(&mut w.tx, &[p.id], self.postgres()).await?;
        let matches = current.get(&p.id) == Some(&expected)
            && store::bump_generation(&mut w.tx, p.id, expected, now()).await?;
        if !matches {
            return Err(PlacementError::concurrent(format!(
                "resource provider generation conflict: the provider {} changed since generation {expected}; refresh and try again",
                p.uuid
            )));
        }
        w.touch(p.id);
        Ok(())
    }

    /// Replaces all inventories of a provider (`PUT .../inventories`); `None` deletes all.
    pub async fn set_inventories(
        &self,
        uuid: &str,
        generation: i64,
        inventories: BTreeMap<String, Inventory>,
    ) -> Result<Provider> {
        let p = self.provider(uuid)?;
        for class in inventories.keys() {
            if !self.resource_class_exists(class).await? {
                return Err(PlacementError::bad(format!(
                    "Unknown resource class in inventory for resource provider {uuid}: {class}"
                )));
            }
        }
        let mut w = self.begin().await?;
        self.claim_generation(&mut w, &p, generation).await?;
        let existing: BTreeSet<String> = p.inventories.keys().cloned().collect();
        for gone in existing.iter().filter(|c| !inventories.contains_key(*c)) {
            if store::class_in_use_on(&mut w.tx, p.id, gone).await? {
                return Err(PlacementError::conflict(
                    code::INVENTORY_INUSE,
                    format!("update conflict: Inventory for '{gone}' on resource provider '{uuid}' in use."),
                ));
            }
        }
        sqlx::query("DELETE FROM inventories WHERE provider_id = $1")
            .bind(p.id)
            .execute(&mut *w.tx)
            .await?;
        let t = now();
        for (class, inv) in &inventories {
            insert_inventory(&mut w, p.id, class, inv, t).await?;
        }
        self.commit(w).await?;
        self.provider(uuid)
    }

    /// Adds or replaces one inventory (`POST .../inventories`, `PUT .../inventories/{rc}`).
    pub async fn set_inventory(
        &self,
        uuid: &str,
        generation: i64,
        class: &str,
        inv: Inventory,
        must_be_new: bool,
        must_exist: bool,
    ) -> Result<Provider> {
        let p = self.provider(uuid)?;
        if !self.resource_class_exists(class).await? {
            let verb = if must_be_new { "create" } else { "update" };
            return Err(PlacementError::bad(format!(
                "Unable to {verb} inventory for resource provider {uuid}: No such resource class {class}."
            )));
        }
        if must_be_new && p.inventories.contains_key(class) {
            return Err(PlacementError::conflict(
                code::DEFAULT,
                format!("Update conflict: Inventory for '{class}' on resource provider '{uuid}' already exists."),
            ));
        }
        if must_exist && !p.inventories.contains_key(class) {
            return Err(PlacementError::bad(format!(
                "No inventory record with resource class for resource provider {uuid}: {class}"
            )));
        }
        let mut w = self.begin().await?;
        self.claim_generation(&mut w, &p, generation).await?;
        sqlx::query("DELETE FROM inventories WHERE provider_id = $1 AND resource_class = $2")
            .bind(p.id)
            .bind(class)
            .execute(&mut *w.tx)
            .await?;
        insert_inventory(&mut w, p.id, class, &inv, now()).await?;
        self.commit(w).await?;
        self.provider(uuid)
    }

    /// `DELETE .../inventories/{rc}`: refused while allocations use it.
    pub async fn delete_inventory(&self, uuid: &str, class: &str) -> Result<()> {
        let p = self.provider(uuid)?;
        if !p.inventories.contains_key(class) {
            return Err(PlacementError::not_found(format!(
                "No inventory of class {class} found for delete"
            )));
        }
        let mut w = self.begin().await?;
        self.claim_generation(&mut w, &p, p.generation).await?;
        if store::class_in_use_on(&mut w.tx, p.id, class).await? {
            return Err(PlacementError::conflict(
                code::INVENTORY_INUSE,
                format!("Inventory for '{class}' on resource provider '{uuid}' in use."),
            ));
        }
        sqlx::query("DELETE FROM inventories WHERE provider_id = $1 AND resource_class = $2")
            .bind(p.id)
            .bind(class)
            .execute(&mut *w.tx)
            .await?;
        self.commit(w).await
    }

    /// Replaces a provider's traits (`PUT .../traits`); `generation` None for the DELETE.
    pub async fn set_traits(
        &self,
        uuid: &str,
        generation: Option<i64>,
        traits: BTreeSet<String>,
    ) -> Result<Provider> {
        let p = self.provider(uuid)?;
        let names: Vec<String> = traits.iter().cloned().collect();
        let unknown = self.unknown_traits(&names).await?;
        if !unknown.is_empty() {
            return Err(PlacementError::bad(format!(
                "No such trait(s): {}",
                unknown.join(", ")
            )));
        }
        let mut w = self.begin().await?;
        self.claim_generation(&mut w, &p, generation.unwrap_or(p.generation))
            .await
            .map_err(generation_changed)?;
        sqlx::query("DELETE FROM provider_traits WHERE provider_id = $1")
            .bind(p.id)
            .execute(&mut *w.tx)
            .await?;
        for t in &traits {
            sqlx::query("INSERT INTO provider_traits (provider_id, trait) VALUES ($1, $2)")
                .bind(p.id)
                .bind(t)
                .execute(&mut *w.tx)
                .await?;
        }
        self.commit(w).await?;
        self.provider(uuid)
    }

    /// Replaces a provider's aggregates (`PUT .../aggregates`); before 1.19 no generation
    /// is given, and the current one is used.
    pub async fn set_aggregates(
        &self,
        uuid: &str,
        generation: Option<i64>,
        aggregates: BTreeSet<String>,
    ) -> Result<Provider> {
        let p = self.provider(uuid)?;
        let mut w = self.begin().await?;
        self.claim_generation(&mut w, &p, generation.unwrap_or(p.generation))
            .await
            .map_err(generation_changed)?;
        sqlx::query("DELETE FROM provider_aggregates WHERE provider_id = $1")
            .bind(p.id)
            .execute(&mut *w.tx)
            .await?;
        for a in &aggregates {
            sqlx::query("INSERT INTO provider_aggregates (provider_id, aggregate) VALUES ($1, $2)")
                .bind(p.id)
                .bind(a)
                .execute(&mut *w.tx)
                .await?;
        }
        self.commit(w).await?;
        self.provider(uuid)
    }
}

async fn insert_inventory(
    w: &mut Write<'_>,
    provider: i64,
    class: &str,
    inv: &Inventory,
    t: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO inventories (provider_id, resource_class, total, reserved, min_unit, max_unit, step_size, allocation_ratio, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(provider)
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
    Ok(())
}

/// Upstream's wording of a lost generation race on a provider's traits or aggregates.
fn generation_changed(mut e: PlacementError) -> PlacementError {
    if e.code == code::CONCURRENT_UPDATE {
        e.detail = "Resource provider's generation already changed. Please update the generation and try again.".into();
    }
    e
}
