//! Trusts (OS-TRUST): a trustor delegates some of their roles on a project to a trustee, who
//! can then get trust-scoped tokens carrying exactly those roles.
//!
//! As in Keystone: only the trustor may create a trust, the trustee must exist, the trustor
//! must hold every delegated role on the project (implied roles count), `remaining_uses` limits
//! how many tokens the trust can issue, an expired, used-up or deleted trust can no longer be
//! read or used, and deleting a trust revokes the tokens issued from it. Redelegation is not
//! offered: a trust-scoped or application-credential token cannot create trusts.

use std::collections::BTreeSet;

use ferrostack_common::time::{now_micros, parse_iso};
use ferrostack_common::AuthContext;
use serde_json::Value;

use crate::error::{IdentityError, Result};
use crate::model::{Revocation, Role, Trust};
use crate::service::assignments::RoleTarget;
use crate::service::resources::Input;
use crate::service::{new_id, Identity};

impl Identity {
    /// Validates a `{"trust": {...}}` body into a record (nothing written). Policy is checked
    /// by the caller against the result's trustor.
    pub async fn prepare_trust(&self, ctx: &AuthContext, body: &Value) -> Result<Trust> {
        let i = Input::from_body(body, "trust")?;
        let trustor = i.required("trustor_user_id", 64)?;
        let trustee = i.required("trustee_user_id", 64)?;
        let impersonation = i
            .boolean("impersonation")?
            .ok_or_else(|| IdentityError::bad("Expecting to find impersonation in trust."))?;
        let project_id = i.string("project_id", 64)?;
        let expires_at = match i.string("expires_at", 64)? {
            Some(t) => Some(parse_iso(&t).ok_or_else(|| {
                IdentityError::bad(format!(
                    "Invalid input for field 'expires_at': '{t}' is not a date-time."
                ))
            })?),
            None => None,
        };
        let remaining_uses = match i.raw("remaining_uses") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_i64() {
                Some(n) if n >= 1 && v.is_i64() => Some(n),
                _ => {
                    return Err(IdentityError::bad(
                        "Invalid input for field 'remaining_uses': expected a positive integer or null.",
                    ))
                }
            },
        };
        if i.boolean("allow_redelegation")? == Some(true) {
            return Err(IdentityError::ForbiddenMessage(
                "Trust redelegation is not supported.".into(),
            ));
        }
        if ctx.trust_id.is_some() {
            return Err(IdentityError::ForbiddenMessage(
                "A trust-scoped token cannot create trusts (redelegation is not supported).".into(),
            ));
        }
        if ctx.application_credential_id.is_some() {
            return Err(IdentityError::ForbiddenMessage(
                "Using method 'application_credential' is not allowed for managing trusts.".into(),
            ));
        }
        let mut roles: Vec<String> = Vec::new();
        match i.raw("roles") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let role = match (
                        item.get("id").and_then(Value::as_str),
                        item.get("name").and_then(Value::as_str),
                    ) {
                        (Some(id), _) => self.store.role(id).await?,
                        (None, Some(name)) => {
                            self.store
                                .role_by_name(name, item.get("domain_id").and_then(Value::as_str))
                                .await?
                        }
                        _ => {
                            return Err(IdentityError::bad(
                                "Invalid input for field 'roles': each role needs an id or a name.",
                            ))
                        }
                    };
                    let role =
                        role.ok_or_else(|| IdentityError::not_found("role", item.to_string()))?;
                    if !roles.contains(&role.id) {
                        roles.push(role.id);
                    }
                }
            }
            Some(_) => {
                return Err(IdentityError::bad(
                    "Invalid input for field 'roles': expected a list.",
                ))
            }
        }
        if project_id.is_some() && roles.is_empty() {
            return Err(IdentityError::bad("At least one role should be specified."));
        }
        Ok(Trust {
            id: new_id(),
            trustor_user_id: trustor,
            trustee_user_id: trustee,
            project_id,
            impersonation,
            expires_at,
            remaining_uses,
            roles,
            redelegation_count: 0,
            extra: Default::default(),
        })
    }

    /// Stores a prepared trust after checking the users, the project and the trustor's roles.
    pub async fn create_trust(&self, t: &Trust) -> Result<()> {
        self.existing_user(&t.trustor_user_id).await?;
        self.existing_user(&t.trustee_user_id).await?;
        if let Some(p) = &t.project_id {
            self.existing_project(p).await?;
            let held: BTreeSet<String> = self
                .effective_roles(&t.trustor_user_id, &RoleTarget::Project(p.clone()))
                .await?
                .into_iter()
                .map(|r| r.id)
                .collect();
            if let Some(missing) = t.roles.iter().find(|r| !held.contains(*r)) {
                return Err(IdentityError::not_found("role", missing));
            }
        }
        self.store.insert_trust(t).await?;
        self.changed().await
    }

    /// A trust that can still be read and used: not deleted, not expired, uses left.
    pub async fn existing_trust(&self, id: &str) -> Result<Trust> {
        self.store
            .trust(id)
            .await?
            .filter(|t| trust_alive(t) && t.remaining_uses.is_none_or(|n| n > 0))
            .ok_or_else(|| IdentityError::not_found("trust", id))
    }

    /// Trusts still alive, optionally only those of a trustor and/or a trustee.
    pub async fn list_trusts(
        &self,
        trustor: Option<&str>,
        trustee: Option<&str>,
    ) -> Result<Vec<Trust>> {
        Ok(self
            .store
            .trusts()
            .await?
            .into_iter()
            .filter(|t| trust_alive(t) && t.remaining_uses.is_none_or(|n| n > 0))
            .filter(|t| trustor.is_none_or(|u| t.trustor_user_id == u))
            .filter(|t| trustee.is_none_or(|u| t.trustee_user_id == u))
            .collect())
    }

    /// The delegated roles, as role records (roles deleted since are left out).
    pub async fn trust_roles(&self, t: &Trust) -> Result<Vec<Role>> {
        let mut out = Vec::new();
        for id in &t.roles {
            if let Some(r) = self.store.role(id).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Deletes a trust and revokes every token issued from it.
    pub async fn delete_trust(&self, id: &str) -> Result<()> {
        if !self.store.delete_trust(id).await? {
            return Err(IdentityError::not_found("trust", id));
        }
        self.add_revocation(Revocation {
            trust_id: Some(id.to_string()),
            issued_before: now_micros(),
            ..Default::default()
        })
        .await
    }
}

/// Not deleted (the store hides those) and not expired.
pub fn trust_alive(t: &Trust) -> bool {
    t.expires_at.is_none_or(|e| e > now_micros())
}
