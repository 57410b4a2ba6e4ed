//! Access rules of application credentials (`/v3/users/{id}/access_rules`).
//!
//! A rule says which request an application credential may make: a `method` on a `path`
//! (with `*` and `**` wildcards) of a `service` type. As in Keystone, rules belong to the user,
//! not to one credential: identical rules are stored once and shared by id, a new credential
//! may name an existing rule by its id alone, the rules outlive the credentials that used
//! them, and a rule still used by a credential cannot be deleted. Each credential also keeps
//! a copy of its rules (its `access_rules` column), which is what tokens enforce.

use serde_json::{json, Value};

use crate::error::{IdentityError, Result};
use crate::model::AccessRule;
use crate::service::{new_id, Identity};

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

fn invalid(what: &str) -> IdentityError {
    IdentityError::bad(format!("Invalid input for field 'access_rules': {what}."))
}

fn rule_json(r: &AccessRule) -> Value {
    json!({"id": r.id, "service": r.service, "path": r.path, "method": r.method})
}

impl Identity {
    /// Turns the `access_rules` of a create request into stored rules (new or reused), as the
    /// credential records them.
    pub async fn resolve_access_rules(
        &self,
        user_id: &str,
        given: Option<&Value>,
    ) -> Result<Vec<Value>> {
        let items = match given {
            None | Some(Value::Null) => return Ok(vec![]),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(invalid("expected a list")),
        };
        let mut out = Vec::new();
        for item in items {
            let obj = item
                .as_object()
                .ok_or_else(|| invalid("expected objects"))?;
            let field = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
            if let Some(k) = obj
                .keys()
                .find(|k| !["id", "service", "path", "method"].contains(&k.as_str()))
            {
                return Err(invalid(&format!("unexpected key '{k}'")));
            }
            let (service, path, method) = (field("service"), field("path"), field("method"));
            let rule = match (service, path, method) {
                (None, None, None) => {
                    let id = field("id").ok_or_else(|| {
                        invalid("each rule needs an id or a service, path and method")
                    })?;
                    self.access_rule(user_id, &id).await?
                }
                (Some(service), Some(path), Some(method)) => {
                    if !METHODS.contains(&method.as_str()) {
                        return Err(invalid(&format!(
                            "method must be one of {}",
                            METHODS.join(", ")
                        )));
                    }
                    if service.is_empty() || service.len() > 255 || path.len() > 1024 {
                        return Err(invalid("service or path out of range"));
                    }
                    let mut rule = AccessRule {
                        id: new_id(),
                        user_id: user_id.to_string(),
                        service,
                        path,
                        method,
                    };
                    rule.id = self.store.ensure_access_rule(&rule).await?;
                    rule
                }
                _ => return Err(invalid("each rule needs a string service, path and method")),
            };
            let v = rule_json(&rule);
            if !out.contains(&v) {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// The user's rules, including any recorded only inside credentials made before rules had
    /// a table of their own.
    pub async fn list_access_rules(&self, user_id: &str) -> Result<Vec<AccessRule>> {
        let mut rules = self.store.access_rules(user_id).await?;
        for cred in self.store.app_creds(user_id).await? {
            for r in &cred.access_rules {
                let get = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
                if !rules.iter().any(|x| x.id == get("id")) {
                    rules.push(AccessRule {
                        id: get("id").to_string(),
                        user_id: user_id.to_string(),
                        service: get("service").to_string(),
                        path: get("path").to_string(),
                        method: get("method").to_string(),
                    });
                }
            }
        }
        Ok(rules)
    }

    pub async fn access_rule(&self, user_id: &str, id: &str) -> Result<AccessRule> {
        self.list_access_rules(user_id)
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| IdentityError::not_found("access rule", id))
    }

    /// Deletes a rule no credential uses any more (403 while one does).
    pub async fn delete_access_rule(&self, user_id: &str, id: &str) -> Result<()> {
        self.access_rule(user_id, id).await?;
        let in_use = self.store.app_creds(user_id).await?.into_iter().find(|c| {
            c.access_rules
                .iter()
                .any(|r| r.get("id").and_then(Value::as_str) == Some(id))
        });
        if let Some(c) = in_use {
            return Err(IdentityError::ForbiddenMessage(format!(
                "Cannot delete access rule {id}: application credential {} still uses it.",
                c.id
            )));
        }
        self.store.delete_access_rule(id).await?;
        self.changed().await
    }
}
