//! Unified limits: registered limits (a service's default for a resource, per region) and
//! limits (a project's or domain's override), with Keystone's flat enforcement model.
//!
//! Creation takes a list and is all-or-nothing: every entry is validated first (the service
//! and region exist, the project or domain exists, a limit has a registered limit to
//! override) and a duplicate is a 409 naming it. A registered limit that limits refer to
//! cannot be deleted nor have its service, region or resource changed (403), as in Keystone.

use serde_json::Value;

use crate::error::{IdentityError, Result};
use crate::model::{Limit, RegisteredLimit};
use crate::service::resources::{conflict, Input};
use crate::service::{new_id, Identity};

const MAX_LIMIT: i64 = 0x7FFF_FFFF;

fn list_of<'v>(body: &'v Value, key: &str) -> Result<&'v Vec<Value>> {
    match body.get(key) {
        Some(Value::Array(items)) if !items.is_empty() => Ok(items),
        Some(Value::Array(_)) => Err(IdentityError::bad(format!(
            "Invalid input for field '{key}': the list must not be empty."
        ))),
        _ => Err(IdentityError::bad(format!(
            "Expecting to find {key} in request body as a list."
        ))),
    }
}

fn amount(i: &Input, key: &str) -> Result<Option<i64>> {
    match i.raw(key) {
        None => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if v.is_i64() && (-1..=MAX_LIMIT).contains(&n) => Ok(Some(n)),
            _ => Err(IdentityError::bad(format!(
                "Invalid input for field '{key}': expected an integer from -1 to {MAX_LIMIT}."
            ))),
        },
    }
}

fn wrap(v: &Value, key: &'static str) -> Value {
    serde_json::json!({ key: v })
}

impl Identity {
    async fn check_service_region(&self, service_id: &str, region_id: Option<&str>) -> Result<()> {
        if self.store.service(service_id).await?.is_none() {
            return Err(IdentityError::bad(format!(
                "Invalid input for field 'service_id': service {service_id} does not exist."
            )));
        }
        if let Some(r) = region_id {
            if self.store.region(r).await?.is_none() {
                return Err(IdentityError::bad(format!(
                    "Invalid input for field 'region_id': region {r} does not exist."
                )));
            }
        }
        Ok(())
    }

    fn parse_registered_limit(v: &Value) -> Result<RegisteredLimit> {
        let body = wrap(v, "registered_limit");
        let i = Input::from_body(&body, "registered_limit")?;
        i.only(&[
            "service_id",
            "region_id",
            "resource_name",
            "default_limit",
            "description",
        ])?;
        Ok(RegisteredLimit {
            id: new_id(),
            service_id: i.required("service_id", 64)?,
            region_id: i.string("region_id", 255)?,
            resource_name: i.required("resource_name", 255)?,
            default_limit: amount(&i, "default_limit")?.ok_or_else(|| {
                IdentityError::bad("Expecting to find default_limit in registered_limit.")
            })?,
            description: i.string("description", 65_535)?,
        })
    }

    /// `POST /v3/registered_limits`: all entries or none.
    pub async fn create_registered_limits(&self, body: &Value) -> Result<Vec<RegisteredLimit>> {
        let items = list_of(body, "registered_limits")?;
        let mut new = Vec::new();
        for item in items {
            let l = Self::parse_registered_limit(item)?;
            self.check_service_region(&l.service_id, l.region_id.as_deref())
                .await?;
            new.push(l);
        }
        let existing = self.store.registered_limits().await?;
        for (n, l) in new.iter().enumerate() {
            let same = |o: &RegisteredLimit| {
                o.service_id == l.service_id
                    && o.region_id == l.region_id
                    && o.resource_name == l.resource_name
            };
            if existing.iter().any(same) || new[..n].iter().any(same) {
                return Err(IdentityError::Conflict {
                    kind: "registered_limit",
                    detail: format!(
                        "Duplicate entry for service {}, region {}, resource {}",
                        l.service_id,
                        l.region_id.as_deref().unwrap_or("(none)"),
                        l.resource_name
                    ),
                });
            }
        }
        let mut tx_done: Vec<String> = Vec::new();
        for l in &new {
            if let Err(e) = self.store.insert_registered_limit(l).await {
                // Undo this request's inserts so a lost race leaves nothing behind.
                for id in &tx_done {
                    self.store.delete_registered_limit(id).await?;
                }
                return Err(conflict(
                    "registered_limit",
                    format!("Duplicate entry for resource {}", l.resource_name),
                )(e));
            }
            tx_done.push(l.id.clone());
        }
        self.changed().await?;
        Ok(new)
    }

    pub async fn existing_registered_limit(&self, id: &str) -> Result<RegisteredLimit> {
        self.store
            .registered_limit(id)
            .await?
            .ok_or_else(|| IdentityError::not_found("registered limit", id))
    }

    async fn referenced(&self, r: &RegisteredLimit) -> Result<bool> {
        Ok(self.store.limits().await?.iter().any(|l| {
            l.service_id == r.service_id
                && l.region_id == r.region_id
                && l.resource_name == r.resource_name
        }))
    }

    pub async fn update_registered_limit(
        &self,
        mut r: RegisteredLimit,
        body: &Value,
    ) -> Result<RegisteredLimit> {
        let i = Input::from_body(body, "registered_limit")?;
        i.only(&[
            "service_id",
            "region_id",
            "resource_name",
            "default_limit",
            "description",
        ])?;
        let before = r.clone();
        if let Some(s) = i.string("service_id", 64)? {
            r.service_id = s;
        }
        if i.has("region_id") {
            r.region_id = i.string("region_id", 255)?;
        }
        if let Some(n) = i.string("resource_name", 255)? {
            r.resource_name = n;
        }
        if let Some(d) = amount(&i, "default_limit")? {
            r.default_limit = d;
        }
        if i.has("description") {
            r.description = i.string("description", 65_535)?;
        }
        self.check_service_region(&r.service_id, r.region_id.as_deref())
            .await?;
        let moved = r.service_id != before.service_id
            || r.region_id != before.region_id
            || r.resource_name != before.resource_name;
        if moved && self.referenced(&before).await? {
            return Err(IdentityError::ForbiddenMessage(format!(
                "Unable to update registered limit {}: project limits refer to it.",
                r.id
            )));
        }
        self.store
            .update_registered_limit(&r)
            .await
            .map_err(conflict(
                "registered_limit",
                format!("Duplicate entry for resource {}", r.resource_name),
            ))?;
        self.changed().await?;
        Ok(r)
    }

    pub async fn delete_registered_limit(&self, r: &RegisteredLimit) -> Result<()> {
        if self.referenced(r).await? {
            return Err(IdentityError::ForbiddenMessage(format!(
                "Unable to delete registered limit {}: project limits refer to it.",
                r.id
            )));
        }
        self.store.delete_registered_limit(&r.id).await?;
        self.changed().await
    }

    // ---- limits ----

    async fn parse_limit(&self, v: &Value) -> Result<Limit> {
        let body = wrap(v, "limit");
        let i = Input::from_body(&body, "limit")?;
        i.only(&[
            "project_id",
            "domain_id",
            "service_id",
            "region_id",
            "resource_name",
            "resource_limit",
            "description",
        ])?;
        let l = Limit {
            id: new_id(),
            project_id: i.string("project_id", 64)?,
            domain_id: i.string("domain_id", 64)?,
            service_id: i.required("service_id", 64)?,
            region_id: i.string("region_id", 255)?,
            resource_name: i.required("resource_name", 255)?,
            resource_limit: amount(&i, "resource_limit")?
                .ok_or_else(|| IdentityError::bad("Expecting to find resource_limit in limit."))?,
            description: i.string("description", 65_535)?,
        };
        match (&l.project_id, &l.domain_id) {
            (Some(p), None) => {
                if self.store.project(p).await?.is_none() {
                    return Err(IdentityError::bad(format!(
                        "Invalid input for field 'project_id': project {p} does not exist."
                    )));
                }
            }
            (None, Some(d)) => {
                if self.store.domain(d).await?.is_none() {
                    return Err(IdentityError::bad(format!(
                        "Invalid input for field 'domain_id': domain {d} does not exist."
                    )));
                }
            }
            _ => return Err(IdentityError::bad(
                "Invalid input for field 'limit': give exactly one of project_id and domain_id.",
            )),
        }
        self.check_service_region(&l.service_id, l.region_id.as_deref())
            .await?;
        let registered = self.store.registered_limits().await?.into_iter().any(|r| {
            r.service_id == l.service_id
                && r.region_id == l.region_id
                && r.resource_name == l.resource_name
        });
        if !registered {
            return Err(IdentityError::ForbiddenMessage(format!(
                "No registered limit for service {}, region {}, resource {}: register one first.",
                l.service_id,
                l.region_id.as_deref().unwrap_or("(none)"),
                l.resource_name
            )));
        }
        Ok(l)
    }

    /// `POST /v3/limits`: all entries or none.
    pub async fn create_limits(&self, body: &Value) -> Result<Vec<Limit>> {
        let items = list_of(body, "limits")?;
        let mut new = Vec::new();
        for item in items {
            new.push(self.parse_limit(item).await?);
        }
        let existing = self.store.limits().await?;
        for (n, l) in new.iter().enumerate() {
            let same = |o: &Limit| {
                o.project_id == l.project_id
                    && o.domain_id == l.domain_id
                    && o.service_id == l.service_id
                    && o.region_id == l.region_id
                    && o.resource_name == l.resource_name
            };
            if existing.iter().any(same) || new[..n].iter().any(same) {
                return Err(IdentityError::Conflict {
                    kind: "limit",
                    detail: format!(
                        "Duplicate entry for {} {}, resource {}",
                        if l.project_id.is_some() {
                            "project"
                        } else {
                            "domain"
                        },
                        l.project_id
                            .as_deref()
                            .or(l.domain_id.as_deref())
                            .unwrap_or_default(),
                        l.resource_name
                    ),
                });
            }
        }
        let mut done: Vec<String> = Vec::new();
        for l in &new {
            if let Err(e) = self.store.insert_limit(l).await {
                for id in &done {
                    self.store.delete_limit(id).await?;
                }
                return Err(conflict(
                    "limit",
                    format!("Duplicate entry for resource {}", l.resource_name),
                )(e));
            }
            done.push(l.id.clone());
        }
        self.changed().await?;
        Ok(new)
    }

    pub async fn existing_limit(&self, id: &str) -> Result<Limit> {
        self.store
            .limit(id)
            .await?
            .ok_or_else(|| IdentityError::not_found("limit", id))
    }

    /// Only the amount and the description of a limit change.
    pub async fn update_limit(&self, mut l: Limit, body: &Value) -> Result<Limit> {
        let i = Input::from_body(body, "limit")?;
        i.only(&["resource_limit", "description"])?;
        if let Some(n) = amount(&i, "resource_limit")? {
            l.resource_limit = n;
        }
        if i.has("description") {
            l.description = i.string("description", 65_535)?;
        }
        self.store.update_limit(&l).await?;
        self.changed().await?;
        Ok(l)
    }

    pub async fn delete_limit(&self, id: &str) -> Result<()> {
        self.store.delete_limit(id).await?;
        self.changed().await
    }
}
