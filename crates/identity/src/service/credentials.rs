//! Credentials (`/v3/credentials`) and the EC2 view of them (`/v3/users/{id}/credentials/OS-EC2`).
//!
//! A credential is an opaque `blob` of a `type` owned by a user. As in Keystone, an `ec2`
//! credential's blob is JSON with an `access` key, its id is the SHA-256 of that access key (so
//! the EC2 token middleware can find it from the access key alone) and it must name a project.
//! Blobs are secrets: they are encrypted at rest with a dedicated Fernet key repository
//! (`<token key dir>-credential`, separate from the token keys as Keystone separates them) and
//! never logged. A blob stored before encryption existed is read as it is.

use ferrostack_common::AuthContext;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{IdentityError, Result};
use crate::fernet::FernetKey;
use crate::model::Credential;
use crate::service::resources::{conflict, Input};
use crate::service::{new_id, now_secs, Identity};

const SEALED_PREFIX: &str = "fernet:";

/// Encrypts a blob with the primary credential key.
pub fn seal_blob(keys: &[FernetKey], blob: &str) -> String {
    format!(
        "{SEALED_PREFIX}{}",
        keys[0].encrypt(blob.as_bytes(), now_secs().max(0) as u64)
    )
}

/// Decrypts a stored blob; `None` when no current key opens it.
pub fn open_blob(keys: &[FernetKey], stored: &str) -> Option<String> {
    match stored.strip_prefix(SEALED_PREFIX) {
        Some(token) => keys
            .iter()
            .find_map(|k| k.decrypt(token))
            .and_then(|b| String::from_utf8(b).ok()),
        None => Some(stored.to_string()),
    }
}

/// The id Keystone gives an EC2 credential: the hex SHA-256 of its access key.
pub fn ec2_id(access: &str) -> String {
    hex(&Sha256::digest(access.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ec2_blob(blob: &str) -> Result<Map<String, Value>> {
    let parsed: Value = serde_json::from_str(blob)
        .map_err(|_| IdentityError::bad("Invalid blob in credential: an ec2 blob must be JSON."))?;
    let Value::Object(obj) = parsed else {
        return Err(IdentityError::bad(
            "Invalid input for field 'blob': an ec2 blob must be a JSON object.",
        ));
    };
    if !obj.get("access").is_some_and(Value::is_string) {
        return Err(IdentityError::bad(
            "Invalid input for field 'blob': an ec2 blob needs a string 'access'.",
        ));
    }
    Ok(obj)
}

impl Identity {
    /// The credential with its blob in clear.
    fn opened(&self, mut c: Credential) -> Result<Credential> {
        c.blob = open_blob(&self.credential_keys, &c.blob).ok_or_else(|| {
            IdentityError::Internal(anyhow::anyhow!(
                "credential {} cannot be decrypted with the current credential keys",
                c.id
            ))
        })?;
        Ok(c)
    }

    async fn store_credential(&self, c: &Credential, update: bool) -> Result<()> {
        let mut sealed = c.clone();
        sealed.blob = seal_blob(&self.credential_keys, &c.blob);
        if update {
            self.store.update_credential(&sealed).await?;
        } else {
            self.store
                .insert_credential(&sealed)
                .await
                .map_err(conflict("credential", format!("Duplicate ID, {}", c.id)))?;
        }
        self.changed().await
    }

    /// Validates a `{"credential": {...}}` create body into a record (nothing written).
    pub async fn prepare_credential(&self, ctx: &AuthContext, body: &Value) -> Result<Credential> {
        let i = Input::from_body(body, "credential")?;
        let user_id = i.required("user_id", 64)?;
        let credential_type = i.required("type", 255)?;
        let blob = i
            .string("blob", 65_535)?
            .ok_or_else(|| IdentityError::bad("Expecting to find blob in credential."))?;
        let project_id = i.string("project_id", 64)?;
        let mut id = new_id();
        let mut blob = blob;
        if credential_type == "ec2" {
            let Some(p) = &project_id else {
                return Err(IdentityError::bad(
                    "Invalid input for field 'project_id': an ec2 credential needs a project.",
                ));
            };
            self.existing_project(p).await?;
            let mut obj = ec2_blob(&blob)?;
            id = ec2_id(obj["access"].as_str().unwrap_or_default());
            // A credential made with a trust- or app-credential-scoped token stays bound to it.
            if let Some(t) = &ctx.trust_id {
                obj.insert("trust_id".into(), json!(t));
                blob = Value::Object(obj).to_string();
            } else if let Some(a) = &ctx.application_credential_id {
                obj.insert("app_cred_id".into(), json!(a));
                blob = Value::Object(obj).to_string();
            }
        }
        Ok(Credential {
            id,
            user_id,
            project_id,
            credential_type,
            blob,
            extra: i.extra(&["id", "user_id", "project_id", "type", "blob"]),
        })
    }

    pub async fn create_credential(&self, c: &Credential) -> Result<()> {
        self.existing_user(&c.user_id).await?;
        self.store_credential(c, false).await
    }

    pub async fn existing_credential(&self, id: &str) -> Result<Credential> {
        let c = self
            .store
            .credential(id)
            .await?
            .ok_or_else(|| IdentityError::not_found("credential", id))?;
        self.opened(c)
    }

    /// Every credential, blobs in clear, optionally only one user's.
    pub async fn list_credentials(&self, user_id: Option<&str>) -> Result<Vec<Credential>> {
        self.store
            .credentials()
            .await?
            .into_iter()
            .filter(|c| user_id.is_none_or(|u| c.user_id == u))
            .map(|c| self.opened(c))
            .collect()
    }

    /// Applies a `{"credential": {...}}` update. The id never changes; an ec2 blob keeps its
    /// trust and application credential binding, as Keystone requires.
    pub async fn update_credential(&self, mut c: Credential, body: &Value) -> Result<Credential> {
        let i = Input::from_body(body, "credential")?;
        if let Some(t) = i.string("type", 255)? {
            c.credential_type = t;
        }
        if i.has("project_id") {
            c.project_id = i.string("project_id", 64)?;
        }
        if let Some(u) = i.string("user_id", 64)? {
            self.existing_user(&u).await?;
            c.user_id = u;
        }
        if let Some(b) = i.string("blob", 65_535)? {
            if c.credential_type == "ec2" {
                let new = ec2_blob(&b)?;
                let old: Value = serde_json::from_str(&c.blob).unwrap_or(Value::Null);
                for bound in ["trust_id", "app_cred_id", "access_token_id"] {
                    if new.get(bound) != old.get(bound).filter(|v| !v.is_null()) {
                        return Err(IdentityError::bad(format!(
                            "Invalid input for field 'blob': {bound} cannot be changed."
                        )));
                    }
                }
            }
            c.blob = b;
        }
        if c.credential_type == "ec2" {
            let Some(p) = &c.project_id else {
                return Err(IdentityError::bad(
                    "Invalid input for field 'project_id': an ec2 credential needs a project.",
                ));
            };
            self.existing_project(p).await?;
            ec2_blob(&c.blob)?;
        }
        for (k, v) in i.extra(&["id", "user_id", "project_id", "type", "blob"]) {
            c.extra.insert(k, v);
        }
        self.store_credential(&c, true).await?;
        Ok(c)
    }

    pub async fn delete_credential(&self, id: &str) -> Result<()> {
        if !self.store.delete_credential(id).await? {
            return Err(IdentityError::not_found("credential", id));
        }
        self.changed().await
    }

    // ---- OS-EC2 ----

    /// `POST /v3/users/{id}/credentials/OS-EC2`: a fresh access/secret pair on a project.
    pub async fn create_ec2_credential(
        &self,
        ctx: &AuthContext,
        user_id: &str,
        body: &Value,
    ) -> Result<Credential> {
        let project_id = match body.get("tenant_id").or_else(|| body.get("project_id")) {
            Some(Value::String(p)) if !p.is_empty() => p.clone(),
            _ => {
                return Err(IdentityError::bad(
                    "Expecting to find tenant_id in request body.",
                ))
            }
        };
        self.existing_user(user_id).await?;
        self.existing_project(&project_id).await?;
        let access = new_id();
        let blob = json!({
            "access": access,
            "secret": new_id(),
            "trust_id": ctx.trust_id,
            "app_cred_id": ctx.application_credential_id,
            "access_token_id": null,
        });
        let c = Credential {
            id: ec2_id(&access),
            user_id: user_id.to_string(),
            project_id: Some(project_id),
            credential_type: "ec2".into(),
            blob: blob.to_string(),
            extra: Map::new(),
        };
        self.store_credential(&c, false).await?;
        Ok(c)
    }

    /// A user's EC2 credential by access key; 404 when it is someone else's.
    pub async fn ec2_credential(&self, user_id: &str, access: &str) -> Result<Credential> {
        self.store
            .credential(&ec2_id(access))
            .await?
            .filter(|c| c.user_id == user_id && c.credential_type == "ec2")
            .ok_or_else(|| IdentityError::not_found("credential", access))
            .and_then(|c| self.opened(c))
    }

    pub async fn ec2_credentials(&self, user_id: &str) -> Result<Vec<Credential>> {
        Ok(self
            .list_credentials(Some(user_id))
            .await?
            .into_iter()
            .filter(|c| c.credential_type == "ec2")
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_sealed_and_opened() {
        let keys = vec![FernetKey::generate()];
        let sealed = seal_blob(&keys, "{\"secret\": \"s\"}");
        assert!(!sealed.contains("secret"));
        assert_eq!(
            open_blob(&keys, &sealed).as_deref(),
            Some("{\"secret\": \"s\"}")
        );
        assert_eq!(open_blob(&[FernetKey::generate()], &sealed), None);
        assert_eq!(open_blob(&keys, "legacy").as_deref(), Some("legacy"));
    }

    #[test]
    fn ec2_id_is_sha256_of_access() {
        assert_eq!(
            ec2_id("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
