//! Flavors: the sizes servers come in, their extra specs and, for private flavors, the
//! projects allowed to use them. Non-admins see public flavors plus the private ones their
//! project was given; admins see public ones unless they ask `is_public=none` or `false`.

use ferrostack_common::AuthContext;
use ferrostack_db::sqlx;
use ferrostack_db::sqlx::Row;
use serde_json::Value;

use super::{now, ComputeService};
use crate::error::{ComputeError, Result};
use crate::model::Flavor;

/// `GET /flavors` filters.
#[derive(Debug, Default, Clone)]
pub struct FlavorQuery {
    /// `Some(true)`: public only (the default); `Some(false)`: private only; `None`: all.
    pub is_public: Option<bool>,
    pub min_ram: Option<i64>,
    pub min_disk: Option<i64>,
    pub sort_key: String,
    pub sort_desc: bool,
    pub limit: Option<usize>,
    pub marker: Option<String>,
}

/// A validated `POST /flavors` body.
#[derive(Debug, Clone)]
pub struct NewFlavor {
    pub id: Option<String>,
    pub flavor: Flavor,
}

pub fn not_found(id: &str) -> ComputeError {
    ComputeError::not_found(format!("Flavor {id} could not be found."))
}

impl ComputeService {
    async fn flavor_row(&self, id: &str) -> Result<Option<Flavor>> {
        let row = sqlx::query("SELECT * FROM compute_flavors WHERE flavorid = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut f = Flavor::from_row(&row);
        f.extra_specs = self.extra_specs_of(id).await?;
        Ok(Some(f))
    }

    async fn extra_specs_of(&self, id: &str) -> Result<std::collections::BTreeMap<String, String>> {
        let rows = sqlx::query(
            "SELECT spec_key, spec_value FROM compute_flavor_extra_specs WHERE flavorid = $1",
        )
        .bind(id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
            .collect())
    }

    async fn has_access(&self, flavor: &Flavor, project: Option<&str>) -> Result<bool> {
        if flavor.is_public {
            return Ok(true);
        }
        let Some(project) = project else {
            return Ok(false);
        };
        let row = sqlx::query(
            "SELECT 1 FROM compute_flavor_projects WHERE flavorid = $1 AND project_id = $2",
        )
        .bind(&flavor.id)
        .bind(project)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.is_some())
    }

    /// A flavor the caller may see (admins see every flavor; others, public ones and those
    /// shared with their project).
    pub async fn get_flavor(&self, ctx: &AuthContext, id: &str) -> Result<Flavor> {
        let flavor = self.flavor_row(id).await?.ok_or_else(|| not_found(id))?;
        if self.is_admin(ctx) || self.has_access(&flavor, ctx.project_id()).await? {
            Ok(flavor)
        } else {
            Err(not_found(id))
        }
    }

    pub async fn list_flavors(&self, ctx: &AuthContext, q: &FlavorQuery) -> Result<Vec<Flavor>> {
        let admin = self.is_admin(ctx);
        let rows = sqlx::query("SELECT * FROM compute_flavors")
            .fetch_all(self.db.pool())
            .await?;
        let shared: std::collections::HashSet<String> = match ctx.project_id() {
            Some(p) => {
                sqlx::query("SELECT flavorid FROM compute_flavor_projects WHERE project_id = $1")
                    .bind(p)
                    .fetch_all(self.db.pool())
                    .await?
                    .iter()
                    .map(|r| r.get::<String, _>(0))
                    .collect()
            }
            None => Default::default(),
        };
        let mut out: Vec<Flavor> = rows
            .iter()
            .map(Flavor::from_row)
            .filter(|f| {
                if admin {
                    match q.is_public {
                        Some(p) => f.is_public == p,
                        None => true,
                    }
                } else {
                    !f.disabled && (f.is_public || shared.contains(&f.id))
                }
            })
            .filter(|f| q.min_ram.is_none_or(|m| f.ram >= m))
            .filter(|f| q.min_disk.is_none_or(|m| f.disk >= m))
            .collect();
        let key = q.sort_key.as_str();
        out.sort_by(|a, b| {
            let o = match key {
                "name" => a.name.cmp(&b.name),
                "memory_mb" => a.ram.cmp(&b.ram),
                "vcpus" => a.vcpus.cmp(&b.vcpus),
                "root_gb" => a.disk.cmp(&b.disk),
                "swap" => a.swap.cmp(&b.swap),
                "ephemeral_gb" => a.ephemeral.cmp(&b.ephemeral),
                "rxtx_factor" => a.rxtx_factor.total_cmp(&b.rxtx_factor),
                _ => a.id.cmp(&b.id),
            };
            let o = o.then_with(|| a.id.cmp(&b.id));
            if q.sort_desc {
                o.reverse()
            } else {
                o
            }
        });
        if let Some(marker) = &q.marker {
            let pos = out
                .iter()
                .position(|f| &f.id == marker)
                .ok_or_else(|| ComputeError::bad(format!("Marker {marker} could not be found.")))?;
            out.drain(..=pos);
        }
        if let Some(limit) = q.limit {
            out.truncate(limit);
        }
        for f in &mut out {
            f.extra_specs = self.extra_specs_of(&f.id).await?;
        }
        Ok(out)
    }

    pub async fn create_flavor(&self, ctx: &AuthContext, new: NewFlavor) -> Result<Flavor> {
        self.authorize(ctx, "os_compute_api:os-flavor-manage:create")?;
        let mut flavor = new.flavor;
        flavor.id = new.id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        self.insert_flavor(&flavor).await?;
        Ok(flavor)
    }

    /// Inserts `flavor` as it is (also used to seed the default flavors).
    pub async fn insert_flavor(&self, flavor: &Flavor) -> Result<()> {
        let dup_name = sqlx::query("SELECT 1 FROM compute_flavors WHERE name = $1")
            .bind(&flavor.name)
            .fetch_optional(self.db.pool())
            .await?;
        if dup_name.is_some() {
            return Err(ComputeError::conflict(format!(
                "Flavor with name {} already exists.",
                flavor.name
            )));
        }
        let r = sqlx::query(
            "INSERT INTO compute_flavors (flavorid, name, memory_mb, vcpus, root_gb, ephemeral_gb, \
             swap, rxtx_factor, is_public, disabled, description, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&flavor.id)
        .bind(&flavor.name)
        .bind(flavor.ram)
        .bind(flavor.vcpus)
        .bind(flavor.disk)
        .bind(flavor.ephemeral)
        .bind(flavor.swap)
        .bind(flavor.rxtx_factor)
        .bind(flavor.is_public)
        .bind(flavor.disabled)
        .bind(&flavor.description)
        .bind(now())
        .execute(self.db.pool())
        .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if ferrostack_db::is_unique_violation(&e) => Err(ComputeError::conflict(
                format!("Flavor with ID {} already exists.", flavor.id),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// `PUT /flavors/{id}` (2.55): only the description changes.
    pub async fn update_flavor(
        &self,
        ctx: &AuthContext,
        id: &str,
        description: Option<String>,
    ) -> Result<Flavor> {
        self.authorize(ctx, "os_compute_api:os-flavor-manage:update")?;
        let done = sqlx::query(
            "UPDATE compute_flavors SET description = $1, updated_at = $2 WHERE flavorid = $3",
        )
        .bind(&description)
        .bind(now())
        .bind(id)
        .execute(self.db.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(id));
        }
        self.get_flavor(ctx, id).await
    }

    pub async fn delete_flavor(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        self.authorize(ctx, "os_compute_api:os-flavor-manage:delete")?;
        let done = sqlx::query("DELETE FROM compute_flavors WHERE flavorid = $1")
            .bind(id)
            .execute(self.db.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(id));
        }
        Ok(())
    }

    pub async fn flavor_extra_specs(
        &self,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<std::collections::BTreeMap<String, String>> {
        self.authorize(ctx, "os_compute_api:os-flavor-extra-specs:index")?;
        Ok(self.get_flavor(ctx, id).await?.extra_specs)
    }

    pub async fn flavor_extra_spec(
        &self,
        ctx: &AuthContext,
        id: &str,
        key: &str,
    ) -> Result<String> {
        self.authorize(ctx, "os_compute_api:os-flavor-extra-specs:show")?;
        let f = self.get_flavor(ctx, id).await?;
        f.extra_specs.get(key).cloned().ok_or_else(|| {
            ComputeError::not_found(format!("Flavor {id} has no extra specs with key {key}."))
        })
    }

    /// Sets (creates or replaces) extra specs.
    pub async fn set_flavor_extra_specs(
        &self,
        ctx: &AuthContext,
        id: &str,
        specs: &serde_json::Map<String, Value>,
        rule: &str,
    ) -> Result<()> {
        self.authorize(ctx, rule)?;
        self.flavor_row(id).await?.ok_or_else(|| not_found(id))?;
        let mut tx = self.db.begin_write().await?;
        for (k, v) in specs {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => unreachable_spec(k)?,
            };
            sqlx::query(
                "DELETE FROM compute_flavor_extra_specs WHERE flavorid = $1 AND spec_key = $2",
            )
            .bind(id)
            .bind(k)
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO compute_flavor_extra_specs (flavorid, spec_key, spec_value) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(k)
                .bind(&value)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_flavor_extra_spec(
        &self,
        ctx: &AuthContext,
        id: &str,
        key: &str,
    ) -> Result<()> {
        self.authorize(ctx, "os_compute_api:os-flavor-extra-specs:delete")?;
        self.flavor_row(id).await?.ok_or_else(|| not_found(id))?;
        let done = sqlx::query(
            "DELETE FROM compute_flavor_extra_specs WHERE flavorid = $1 AND spec_key = $2",
        )
        .bind(id)
        .bind(key)
        .execute(self.db.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(ComputeError::not_found(format!(
                "Flavor {id} has no extra specs with key {key}."
            )));
        }
        Ok(())
    }

    pub async fn flavor_access(&self, ctx: &AuthContext, id: &str) -> Result<Vec<String>> {
        self.authorize(ctx, "os_compute_api:os-flavor-access")?;
        let f = self.flavor_row(id).await?.ok_or_else(|| not_found(id))?;
        if f.is_public {
            return Err(ComputeError::not_found(
                "Access list not available for public flavors.",
            ));
        }
        let rows = sqlx::query(
            "SELECT project_id FROM compute_flavor_projects WHERE flavorid = $1 ORDER BY project_id",
        )
        .bind(id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
    }

    pub async fn add_flavor_access(
        &self,
        ctx: &AuthContext,
        id: &str,
        project: &str,
    ) -> Result<Vec<String>> {
        self.authorize(ctx, "os_compute_api:os-flavor-access:add_tenant_access")?;
        let f = self.flavor_row(id).await?.ok_or_else(|| not_found(id))?;
        if f.is_public {
            return Err(ComputeError::conflict(
                "Can not add access to a public flavor.",
            ));
        }
        let r = sqlx::query(
            "INSERT INTO compute_flavor_projects (flavorid, project_id) VALUES ($1, $2)",
        )
        .bind(id)
        .bind(project)
        .execute(self.db.pool())
        .await;
        match r {
            Ok(_) => {}
            Err(e) if ferrostack_db::is_unique_violation(&e) => {
                return Err(ComputeError::conflict(format!(
                    "Flavor access already exists for flavor {id} and project {project} combination."
                )))
            }
            Err(e) => return Err(e.into()),
        }
        self.flavor_access(ctx, id).await
    }

    pub async fn remove_flavor_access(
        &self,
        ctx: &AuthContext,
        id: &str,
        project: &str,
    ) -> Result<Vec<String>> {
        self.authorize(ctx, "os_compute_api:os-flavor-access:remove_tenant_access")?;
        self.flavor_row(id).await?.ok_or_else(|| not_found(id))?;
        let done = sqlx::query(
            "DELETE FROM compute_flavor_projects WHERE flavorid = $1 AND project_id = $2",
        )
        .bind(id)
        .bind(project)
        .execute(self.db.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(ComputeError::not_found(format!(
                "Flavor access not found for {id} / {project} combination."
            )));
        }
        self.flavor_access(ctx, id).await
    }
}

fn unreachable_spec<T>(key: &str) -> Result<T> {
    Err(ComputeError::bad(format!(
        "Invalid input for field/attribute {key}. Value must be a string or a number."
    )))
}
