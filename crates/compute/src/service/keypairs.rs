//! Key pairs: SSH public keys stored per user (not per project, as in Nova), put into
//! servers through the metadata service and config drive. A key pair created without a
//! public key (before 2.92) is generated with `ssh-keygen` and its private half returned once.

use base64::Engine as _;
use ferrostack_common::AuthContext;
use ferrostack_db::sqlx;
use md5::Digest;

use super::{now, ComputeService};
use crate::error::{ComputeError, Result};
use crate::model::Keypair;

/// A new key pair, and its private key when it was generated here.
pub struct CreatedKeypair {
    pub keypair: Keypair,
    pub private_key: Option<String>,
}

pub fn not_found(name: &str, user: &str) -> ComputeError {
    ComputeError::not_found(format!("Keypair {name} not found for user {user}"))
}

/// Nova's fingerprint of an OpenSSH public key: MD5 of the decoded key blob, hex pairs
/// joined by colons.
pub fn ssh_fingerprint(public_key: &str) -> Option<String> {
    let mut words = public_key.split_whitespace();
    let kind = words.next()?;
    if !(kind.starts_with("ssh-") || kind.starts_with("ecdsa-") || kind.starts_with("sk-")) {
        return None;
    }
    let blob = base64::engine::general_purpose::STANDARD
        .decode(words.next()?)
        .ok()?;
    // The blob starts with the key type again, length-prefixed.
    if blob.len() < 4 {
        return None;
    }
    let n = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    if blob.get(4..4 + n) != Some(kind.as_bytes()) {
        return None;
    }
    let digest = md5::Md5::digest(&blob);
    Some(
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// Key pair names: Nova's pattern (letters, digits, `_- ` and, from 2.92, `@.`).
pub fn valid_name(name: &str, allow_extended: bool) -> bool {
    !name.is_empty()
        && name.chars().count() <= 255
        && name.trim() == name
        && name.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '-' | ' ')
                || (allow_extended && matches!(c, '@' | '.'))
        })
}

impl ComputeService {
    /// The user whose key pairs a request is about: the caller, or (admins, 2.10+) another.
    fn keypair_owner(
        &self,
        ctx: &AuthContext,
        user_id: Option<&str>,
        rule: &str,
    ) -> Result<String> {
        let user = user_id.unwrap_or(&ctx.user_id).to_string();
        let project = ctx.project_id().unwrap_or_default().to_string();
        self.authorize_on(ctx, rule, &project, &user)?;
        Ok(user)
    }

    pub async fn list_keypairs(
        &self,
        ctx: &AuthContext,
        user_id: Option<&str>,
        marker: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<Keypair>> {
        let user = self.keypair_owner(ctx, user_id, "os_compute_api:os-keypairs:index")?;
        let rows = sqlx::query("SELECT * FROM compute_keypairs WHERE user_id = $1 ORDER BY name")
            .bind(&user)
            .fetch_all(self.db.pool())
            .await?;
        let mut out: Vec<Keypair> = rows.iter().map(Keypair::from_row).collect();
        if let Some(m) = marker {
            let pos = out
                .iter()
                .position(|k| k.name == m)
                .ok_or_else(|| ComputeError::bad(format!("Marker {m} could not be found.")))?;
            out.drain(..=pos);
        }
        if let Some(l) = limit {
            out.truncate(l);
        }
        Ok(out)
    }

    pub async fn get_keypair(
        &self,
        ctx: &AuthContext,
        name: &str,
        user_id: Option<&str>,
    ) -> Result<Keypair> {
        let user = self.keypair_owner(ctx, user_id, "os_compute_api:os-keypairs:show")?;
        self.keypair_of(&user, name)
            .await?
            .ok_or_else(|| not_found(name, &user))
    }

    pub(crate) async fn keypair_of(&self, user: &str, name: &str) -> Result<Option<Keypair>> {
        let row = sqlx::query("SELECT * FROM compute_keypairs WHERE user_id = $1 AND name = $2")
            .bind(user)
            .bind(name)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.as_ref().map(Keypair::from_row))
    }

    pub async fn create_keypair(
        &self,
        ctx: &AuthContext,
        name: &str,
        key_type: &str,
        public_key: Option<&str>,
        user_id: Option<&str>,
    ) -> Result<CreatedKeypair> {
        let user = self.keypair_owner(ctx, user_id, "os_compute_api:os-keypairs:create")?;
        let x509 = key_type == "x509";
        let (public_key, private_key) = match (public_key, x509) {
            (Some(k), _) => (k.trim().to_string(), None),
            (None, false) => {
                let (public, private) = generate_ssh_key(name).await?;
                (public, Some(private))
            }
            (None, true) => {
                let (cert, private) = generate_x509(name).await?;
                (cert, Some(private))
            }
        };
        let fingerprint = if x509 {
            x509_fingerprint(&public_key).await
        } else {
            ssh_fingerprint(&public_key)
        }
        .ok_or_else(|| {
            ComputeError::bad("Keypair data is invalid: failed to generate fingerprint")
        })?;
        let keypair = Keypair {
            user_id: user,
            name: name.to_string(),
            key_type: key_type.to_string(),
            fingerprint,
            public_key,
            created_at: now(),
        };
        let r = sqlx::query(
            "INSERT INTO compute_keypairs (user_id, name, key_type, fingerprint, public_key, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&keypair.user_id)
        .bind(&keypair.name)
        .bind(&keypair.key_type)
        .bind(&keypair.fingerprint)
        .bind(&keypair.public_key)
        .bind(keypair.created_at)
        .execute(self.db.pool())
        .await;
        match r {
            Ok(_) => Ok(CreatedKeypair {
                keypair,
                private_key,
            }),
            Err(e) if ferrostack_db::is_unique_violation(&e) => Err(ComputeError::conflict(
                format!("Key pair '{name}' already exists."),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete_keypair(
        &self,
        ctx: &AuthContext,
        name: &str,
        user_id: Option<&str>,
    ) -> Result<()> {
        let user = self.keypair_owner(ctx, user_id, "os_compute_api:os-keypairs:delete")?;
        let done = sqlx::query("DELETE FROM compute_keypairs WHERE user_id = $1 AND name = $2")
            .bind(&user)
            .bind(name)
            .execute(self.db.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(name, &user));
        }
        Ok(())
    }
}

/// Nova's fingerprint of an X.509 certificate: SHA-1 of its DER form, lower-case hex pairs
/// joined by colons (read with `openssl x509`, which also rejects what is not a certificate).
async fn x509_fingerprint(pem: &str) -> Option<String> {
    let dir = std::env::temp_dir().join(format!("fs-x509-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).ok()?;
    let file = dir.join("cert.pem");
    std::fs::write(&file, pem).ok()?;
    let out = tokio::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha1", "-in"])
        .arg(&file)
        .output()
        .await;
    let _ = std::fs::remove_dir_all(&dir);
    let out = out.ok().filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.trim().rsplit('=').next()?.to_ascii_lowercase())
}

/// A self-signed certificate and its RSA key (PEM), as Nova generates x509 key pairs.
async fn generate_x509(name: &str) -> Result<(String, String)> {
    let dir = std::env::temp_dir().join(format!("fs-x509gen-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).map_err(ComputeError::internal)?;
    let cn: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let out = tokio::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-sha256", "-subj",
        ])
        .arg(format!("/CN={}", if cn.is_empty() { "nova" } else { &cn }))
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .await;
    let result = match out {
        Ok(o) if o.status.success() => {
            let cert =
                std::fs::read_to_string(dir.join("cert.pem")).map_err(ComputeError::internal);
            let key = std::fs::read_to_string(dir.join("key.pem")).map_err(ComputeError::internal);
            match (cert, key) {
                (Ok(c), Ok(k)) => Ok((c, k)),
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        }
        Ok(o) => Err(ComputeError::internal(format!(
            "openssl req failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ))),
        Err(e) => Err(ComputeError::internal(format!("running openssl: {e}"))),
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// An RSA key pair from `ssh-keygen` (the private key in PEM, as Nova returns it).
async fn generate_ssh_key(name: &str) -> Result<(String, String)> {
    let dir = std::env::temp_dir().join(format!("fs-keygen-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).map_err(ComputeError::internal)?;
    let path = dir.join("key");
    let out = tokio::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-C"])
        .arg(format!("Generated-by-Nova {name}"))
        .arg("-f")
        .arg(&path)
        .output()
        .await;
    let result = match out {
        Ok(o) if o.status.success() => {
            let private = std::fs::read_to_string(&path).map_err(ComputeError::internal);
            let public =
                std::fs::read_to_string(path.with_extension("pub")).map_err(ComputeError::internal);
            match (public, private) {
                (Ok(p), Ok(k)) => Ok((p.trim().to_string(), k)),
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        }
        Ok(o) => Err(ComputeError::internal(format!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ))),
        Err(e) => Err(ComputeError::internal(format!("running ssh-keygen: {e}"))),
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fingerprints_match_ssh_keygen() {
        let (public, private) = generate_ssh_key("t").await.unwrap();
        assert!(private.contains("BEGIN RSA PRIVATE KEY"));
        let dir = std::env::temp_dir().join(format!("fs-fp-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("k.pub");
        std::fs::write(&file, &public).unwrap();
        let out = std::process::Command::new("ssh-keygen")
            .args(["-l", "-E", "md5", "-f"])
            .arg(&file)
            .output()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let theirs = text
            .split_whitespace()
            .nth(1)
            .unwrap()
            .trim_start_matches("MD5:");
        assert_eq!(ssh_fingerprint(&public).as_deref(), Some(theirs));
        assert!(ssh_fingerprint("ssh-rsa not-base64!").is_none());
        assert!(ssh_fingerprint("hello world").is_none());
    }

    #[tokio::test]
    async fn x509_key_pairs_are_generated_and_fingerprinted() {
        let (cert, key) = generate_x509("my-cert").await.unwrap();
        assert!(cert.contains("BEGIN CERTIFICATE") && key.contains("PRIVATE KEY"));
        let fp = x509_fingerprint(&cert).await.unwrap();
        assert_eq!(fp.split(':').count(), 20, "{fp}");
        assert!(x509_fingerprint("not a certificate").await.is_none());
    }

    #[test]
    fn key_pair_names() {
        assert!(valid_name("my key_1-a", false));
        assert!(!valid_name("a@b", false));
        assert!(valid_name("a@b.c", true));
        assert!(!valid_name("", false));
        assert!(!valid_name(" lead", false));
    }
}
