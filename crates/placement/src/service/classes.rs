//! Resource classes and traits: the standard names seeded at start-up, `CUSTOM_*` names
//! created and deleted by the API, and the checks that keep a name in use from going away.

use std::collections::{BTreeSet, HashSet};

use axum::http::StatusCode;
use ferrostack_db::sqlx::{self, Row};
use ferrostack_db::RowExt;

use super::{now, PlacementService};
use crate::error::{code, PlacementError, Result};
use crate::standard;

/// `[A-Z0-9_]+`, at most 255 characters: the shape of class and trait names.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

pub fn is_custom(name: &str) -> bool {
    name.starts_with("CUSTOM_") && name.len() > "CUSTOM_".len()
}

/// Class and trait names seen to exist. Custom names created on another node are found on
/// a miss; a name deleted elsewhere may linger until restart, which only delays the 400 a
/// request naming it would get (the claim and the inventory writes check the database).
#[derive(Debug, Default)]
pub struct KnownNames {
    classes: HashSet<String>,
    traits: HashSet<String>,
}

/// What `created` means for an idempotent PUT: 201 when new, 204 when it existed.
pub enum Ensured {
    Created,
    Existed,
}

impl PlacementService {
    /// Inserts the standard classes and traits this release knows (idempotent).
    pub(super) async fn seed_standard(&self) -> Result<()> {
        let pool = self.db.pool();
        let known: std::collections::HashSet<String> =
            sqlx::query("SELECT name FROM resource_classes WHERE standard = TRUE")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| r.get::<String, _>("name"))
                .chain(
                    sqlx::query("SELECT name FROM traits WHERE standard = TRUE")
                        .fetch_all(pool)
                        .await?
                        .iter()
                        .map(|r| format!("trait:{}", r.get::<String, _>("name"))),
                )
                .collect();
        let mut tx = self.db.begin().await?;
        let t = now();
        for rc in standard::RESOURCE_CLASSES {
            if !known.contains(*rc) {
                sqlx::query("INSERT INTO resource_classes (name, standard, created_at) VALUES ($1, TRUE, $2) ON CONFLICT (name) DO NOTHING")
                    .bind(*rc)
                    .bind(t)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for tr in standard::TRAITS {
            if !known.contains(&format!("trait:{tr}")) {
                sqlx::query("INSERT INTO traits (name, standard, created_at) VALUES ($1, TRUE, $2) ON CONFLICT (name) DO NOTHING")
                    .bind(*tr)
                    .bind(t)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        let classes: HashSet<String> = sqlx::query("SELECT name FROM resource_classes")
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| r.get("name"))
            .collect();
        let traits: HashSet<String> = sqlx::query("SELECT name FROM traits")
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| r.get("name"))
            .collect();
        *self.names.write().unwrap_or_else(|e| e.into_inner()) = KnownNames { classes, traits };
        Ok(())
    }

    /// Of `classes` and `traits`, the names that exist.
    pub async fn existing_names<'a>(
        &self,
        classes: impl IntoIterator<Item = &'a str>,
        traits: impl IntoIterator<Item = &'a str>,
    ) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
        let (mut found_c, mut found_t, mut miss_c, mut miss_t) =
            (BTreeSet::new(), BTreeSet::new(), Vec::new(), Vec::new());
        {
            let names = self.names.read().unwrap_or_else(|e| e.into_inner());
            for c in classes {
                if names.classes.contains(c) {
                    found_c.insert(c.to_string());
                } else {
                    miss_c.push(c.to_string());
                }
            }
            for t in traits {
                if names.traits.contains(t) {
                    found_t.insert(t.to_string());
                } else {
                    miss_t.push(t.to_string());
                }
            }
        }
        for c in miss_c {
            if self.resource_class_exists(&c).await? {
                self.remember(Some(&c), None);
                found_c.insert(c);
            }
        }
        for t in miss_t {
            if self.trait_exists(&t).await? {
                self.remember(None, Some(&t));
                found_t.insert(t);
            }
        }
        Ok((found_c, found_t))
    }

    fn remember(&self, class: Option<&str>, name: Option<&str>) {
        let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = class {
            names.classes.insert(c.to_string());
        }
        if let Some(t) = name {
            names.traits.insert(t.to_string());
        }
    }

    fn forget(&self, class: Option<&str>, name: Option<&str>) {
        let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = class {
            names.classes.remove(c);
        }
        if let Some(t) = name {
            names.traits.remove(t);
        }
    }

    pub async fn list_resource_classes(&self) -> Result<Vec<String>> {
        Ok(
            sqlx::query("SELECT name FROM resource_classes ORDER BY standard DESC, name")
                .fetch_all(self.db.pool())
                .await?
                .iter()
                .map(|r| r.get("name"))
                .collect(),
        )
    }

    pub async fn resource_class_exists(&self, name: &str) -> Result<bool> {
        Ok(
            sqlx::query("SELECT 1 FROM resource_classes WHERE name = $1")
                .bind(name)
                .fetch_optional(self.db.pool())
                .await?
                .is_some(),
        )
    }

    pub async fn show_resource_class(&self, name: &str) -> Result<()> {
        if self.resource_class_exists(name).await? {
            Ok(())
        } else {
            Err(PlacementError::not_found(format!(
                "No such resource class {name}."
            )))
        }
    }

    fn check_custom_class(name: &str) -> Result<()> {
        if !valid_name(name) || !is_custom(name) {
            return Err(PlacementError::bad(format!(
                "JSON does not validate: '{name}' does not match '^CUSTOM_[A-Z0-9_]+$'"
            )));
        }
        Ok(())
    }

    /// `POST /resource_classes`: 409 when the name exists.
    pub async fn create_resource_class(&self, name: &str) -> Result<()> {
        Self::check_custom_class(name)?;
        match self.ensure_resource_class(name).await? {
            Ensured::Created => Ok(()),
            Ensured::Existed => Err(PlacementError::conflict(
                code::DUPLICATE_NAME,
                format!("Conflicting resource class already exists: {name}"),
            )),
        }
    }

    /// `PUT /resource_classes/{name}` from 1.7: create unless it exists.
    pub async fn ensure_resource_class(&self, name: &str) -> Result<Ensured> {
        Self::check_custom_class(name)?;
        let done = sqlx::query("INSERT INTO resource_classes (name, standard, created_at) VALUES ($1, FALSE, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(now())
            .execute(self.db.pool())
            .await?;
        Ok(if done.rows_affected() == 1 {
            Ensured::Created
        } else {
            Ensured::Existed
        })
    }

    /// `PUT /resource_classes/{name}` before 1.7: rename a custom class.
    pub async fn rename_resource_class(&self, name: &str, new_name: &str) -> Result<()> {
        if standard::RESOURCE_CLASSES.contains(&name) {
            return Err(PlacementError::bad(format!(
                "Cannot update standard resource class {name}"
            )));
        }
        self.show_resource_class(name).await?;
        Self::check_custom_class(new_name)?;
        if self.resource_class_exists(new_name).await? {
            return Err(PlacementError::conflict(
                code::DUPLICATE_NAME,
                format!("Resource class already exists: {new_name}"),
            ));
        }
        let mut w = self.begin().await?;
        let in_use = sqlx::query("SELECT provider_id FROM inventories WHERE resource_class = $1 UNION SELECT provider_id FROM allocations WHERE resource_class = $1")
            .bind(name)
            .fetch_all(&mut *w.tx)
            .await?;
        if !in_use.is_empty() {
            return Err(PlacementError::conflict(
                code::DEFAULT,
                format!("Cannot update resource class {name}: it is in use"),
            ));
        }
        sqlx::query("UPDATE resource_classes SET name = $1, updated_at = $2 WHERE name = $3")
            .bind(new_name)
            .bind(now())
            .bind(name)
            .execute(&mut *w.tx)
            .await?;
        self.commit(w).await?;
        self.forget(Some(name), None);
        Ok(())
    }

    pub async fn delete_resource_class(&self, name: &str) -> Result<()> {
        if standard::RESOURCE_CLASSES.contains(&name) {
            return Err(PlacementError::bad(format!(
                "Cannot delete standard resource class {name}"
            )));
        }
        let mut w = self.begin().await?;
        let in_use = sqlx::query("SELECT 1 FROM inventories WHERE resource_class = $1 LIMIT 1")
            .bind(name)
            .fetch_optional(&mut *w.tx)
            .await?
            .is_some();
        if in_use {
            return Err(PlacementError::conflict(
                code::DEFAULT,
                format!("Error in delete resource class: Cannot delete resource class {name}. Class is in use in inventory."),
            ));
        }
        let done = sqlx::query("DELETE FROM resource_classes WHERE name = $1 AND standard = FALSE")
            .bind(name)
            .execute(&mut *w.tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(PlacementError::not_found(format!(
                "No such resource class {name}."
            )));
        }
        self.commit(w).await?;
        self.forget(Some(name), None);
        Ok(())
    }

    /// `GET /traits?name=in:A,B|startswith:X&associated=true|false`.
    pub async fn list_traits(
        &self,
        name: Option<&str>,
        associated: Option<bool>,
    ) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM traits ORDER BY name")
            .fetch_all(self.db.pool())
            .await?;
        let mut names: Vec<String> = rows.iter().map(|r| r.get("name")).collect();
        if let Some(filter) = name {
            if let Some(list) = filter.strip_prefix("in:") {
                let wanted: std::collections::BTreeSet<&str> =
                    list.split(',').map(str::trim).collect();
                names.retain(|n| wanted.contains(n.as_str()));
            } else if let Some(prefix) = filter.strip_prefix("startswith:") {
                names.retain(|n| n.starts_with(prefix));
            } else {
                return Err(PlacementError::bad(format!(
                    "Badly formatted name parameter. Expected name query string parameter in form: ?name=[in|startswith]:[name1,name2|prefix]. Got: \"{filter}\""
                )));
            }
        }
        if let Some(assoc) = associated {
            let snap = self.snapshot();
            let used: std::collections::BTreeSet<&str> = snap
                .providers
                .values()
                .flat_map(|p| p.traits.iter().map(String::as_str))
                .collect();
            names.retain(|n| used.contains(n.as_str()) == assoc);
        }
        Ok(names)
    }

    pub async fn trait_exists(&self, name: &str) -> Result<bool> {
        Ok(sqlx::query("SELECT 1 FROM traits WHERE name = $1")
            .bind(name)
            .fetch_optional(self.db.pool())
            .await?
            .is_some())
    }

    pub async fn ensure_trait(&self, name: &str) -> Result<Ensured> {
        if !valid_name(name) || !is_custom(name) {
            return Err(PlacementError::bad(
                "The trait is invalid. A valid trait must be no longer than 255 characters, start with the prefix \"CUSTOM_\" and use following characters: \"A\"-\"Z\", \"0\"-\"9\" and \"_\""
            ));
        }
        let done = sqlx::query("INSERT INTO traits (name, standard, created_at) VALUES ($1, FALSE, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(now())
            .execute(self.db.pool())
            .await?;
        Ok(if done.rows_affected() == 1 {
            Ensured::Created
        } else {
            Ensured::Existed
        })
    }

    pub async fn delete_trait(&self, name: &str) -> Result<()> {
        let row = sqlx::query("SELECT standard FROM traits WHERE name = $1")
            .bind(name)
            .fetch_optional(self.db.pool())
            .await?;
        let Some(row) = row else {
            return Err(PlacementError::not_found(format!(
                "No such trait(s): {name}"
            )));
        };
        if row.flag("standard") {
            return Err(PlacementError::bad(format!(
                "Cannot delete standard trait {name}."
            )));
        }
        let mut w = self.begin().await?;
        let in_use = sqlx::query("SELECT 1 FROM provider_traits WHERE trait = $1 LIMIT 1")
            .bind(name)
            .fetch_optional(&mut *w.tx)
            .await?
            .is_some();
        if in_use {
            return Err(PlacementError::new(
                StatusCode::CONFLICT,
                code::DEFAULT,
                format!("The trait {name} is in use by a resource provider."),
            ));
        }
        sqlx::query("DELETE FROM traits WHERE name = $1")
            .bind(name)
            .execute(&mut *w.tx)
            .await?;
        self.commit(w).await?;
        self.forget(None, Some(name));
        Ok(())
    }

    /// Which of `names` are not known traits.
    pub async fn unknown_traits(&self, names: &[String]) -> Result<Vec<String>> {
        let mut missing = Vec::new();
        for n in names {
            if !self.trait_exists(n).await? {
                missing.push(n.clone());
            }
        }
        Ok(missing)
    }
}
