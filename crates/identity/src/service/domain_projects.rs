//! Projects acting as domains (`is_domain: true`), as Keystone presents them: a domain is
//! also a project with the same id and name, no parent and no domain. `POST /v3/projects`
//! with `is_domain: true` creates a domain; `/v3/projects/{id}` reads, updates and deletes a
//! domain through its project face. The domain row is the only record: nothing is copied.

use serde_json::{Map, Value};

use crate::error::{IdentityError, Result};
use crate::model::Domain;
use crate::service::resources::Input;
use crate::service::Identity;

/// Attributes a project body may carry that have no meaning for the domain itself.
const PROJECT_ONLY: &[&str] = &["is_domain", "domain_id", "parent_id"];

/// A project body's attributes that must be null (or absent) for a domain.
fn refuse_placement(i: &Input) -> Result<()> {
    for key in ["domain_id", "parent_id"] {
        if i.string(key, 64)?.is_some() {
            return Err(IdentityError::bad(format!(
                "Invalid input for field '{key}': a project acting as a domain has no {key}."
            )));
        }
    }
    Ok(())
}

/// The body with the project-only attributes dropped, under `domain`.
fn as_domain_body(obj: &Map<String, Value>) -> Value {
    let rest: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| !PROJECT_ONLY.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(Map::from_iter([(
        "domain".to_string(),
        Value::Object(rest),
    )]))
}

fn project_object(body: &Value) -> Map<String, Value> {
    body.get("project")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

impl Identity {
    /// Whether a create-project body asks for a project acting as a domain.
    pub fn wants_domain_project(&self, body: &Value) -> Result<bool> {
        let i = Input::from_body(body, "project")?;
        Ok(i.boolean("is_domain")? == Some(true))
    }

    /// Validates a create-project body with `is_domain: true` and builds the domain (nothing
    /// written): no parent, no domain; name, description, enabled and tags as for a domain.
    pub fn prepare_domain_project(&self, body: &Value) -> Result<Domain> {
        let i = Input::from_body(body, "project")?;
        refuse_placement(&i)?;
        // A project body cannot choose the id (Keystone's explicit_domain_id is domain-only).
        if i.has("explicit_domain_id") {
            return Err(IdentityError::bad(
                "Invalid input for field 'explicit_domain_id': not a project attribute.",
            ));
        }
        self.prepare_domain(&as_domain_body(&project_object(body)))
    }

    /// Updates a domain through `PATCH /v3/projects/{id}`; `is_domain` cannot change.
    pub async fn update_domain_project(&self, id: &str, body: &Value) -> Result<Domain> {
        let i = Input::from_body(body, "project")?;
        if i.has("is_domain") && i.boolean("is_domain")? != Some(true) {
            return Err(IdentityError::bad("Update of `is_domain` is not allowed."));
        }
        refuse_placement(&i)?;
        self.update_domain(id, &as_domain_body(&project_object(body)))
            .await
    }

    /// Deletes a domain through `DELETE /v3/projects/{id}`: like Keystone, an enabled one is
    /// refused with 400 (disable it first).
    pub async fn delete_domain_project(&self, d: &Domain) -> Result<()> {
        if d.enabled {
            return Err(IdentityError::bad(format!(
                "Cannot delete an enabled project acting as a domain. Please disable the project {} first.",
                d.id
            )));
        }
        self.delete_domain(&d.id).await
    }
}
