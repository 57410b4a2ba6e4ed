//! Policies (`/v3/policies`): Keystone's store of opaque policy blobs with a MIME `type`, kept
//! for other services; nothing here interprets them. Extra attributes are kept as Keystone
//! keeps them.

use serde_json::Value;

use crate::error::{IdentityError, Result};
use crate::model::PolicyBlob;
use crate::service::resources::Input;
use crate::service::{new_id, Identity};

const KNOWN: &[&str] = &["id", "type", "blob"];

impl Identity {
    pub async fn create_policy(&self, body: &Value) -> Result<PolicyBlob> {
        let i = Input::from_body(body, "policy")?;
        let p = PolicyBlob {
            id: new_id(),
            policy_type: i.required("type", 255)?,
            blob: i
                .string("blob", 65_535)?
                .ok_or_else(|| IdentityError::bad("Expecting to find blob in policy."))?,
            extra: i.extra(KNOWN),
        };
        self.store.upsert_policy(&p, true).await?;
        self.changed().await?;
        Ok(p)
    }

    pub async fn existing_policy(&self, id: &str) -> Result<PolicyBlob> {
        self.store
            .policy(id)
            .await?
            .ok_or_else(|| IdentityError::not_found("policy", id))
    }

    pub async fn update_policy(&self, id: &str, body: &Value) -> Result<PolicyBlob> {
        let mut p = self.existing_policy(id).await?;
        let i = Input::from_body(body, "policy")?;
        if i.has("type") {
            p.policy_type = i.required("type", 255)?;
        }
        if let Some(b) = i.string("blob", 65_535)? {
            p.blob = b;
        }
        p.extra.extend(i.extra(KNOWN));
        self.store.upsert_policy(&p, false).await?;
        self.changed().await?;
        Ok(p)
    }

    pub async fn delete_policy(&self, id: &str) -> Result<()> {
        if !self.store.delete_policy(id).await? {
            return Err(IdentityError::not_found("policy", id));
        }
        self.changed().await
    }
}
