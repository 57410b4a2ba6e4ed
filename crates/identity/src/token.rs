//! What a token carries inside its Fernet envelope, and how it is packed.
//!
//! Like Keystone's Fernet tokens, the payload holds only identifiers and times (never names or
//! roles): validation re-reads users, scopes and roles, so a role removed a second ago is gone
//! from every token at once. The payload is compact JSON with one-letter keys; the Fernet layer
//! authenticates and encrypts it.

use serde::{Deserialize, Serialize};

use crate::fernet::FernetKey;

/// The scope a token was issued for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenScope {
    #[serde(rename = "u")]
    Unscoped,
    #[serde(rename = "p")]
    Project(String),
    #[serde(rename = "d")]
    Domain(String),
    #[serde(rename = "s")]
    System,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPayload {
    #[serde(rename = "u")]
    pub user_id: String,
    #[serde(rename = "m")]
    pub methods: Vec<String>,
    #[serde(rename = "s")]
    pub scope: TokenScope,
    /// Seconds since the epoch (Keystone's token times have whole seconds).
    #[serde(rename = "i")]
    pub issued_at: i64,
    #[serde(rename = "e")]
    pub expires_at: i64,
    /// This token's audit id, then the one it was rescoped from, if any.
    #[serde(rename = "a")]
    pub audit_ids: Vec<String>,
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub app_cred_id: Option<String>,
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub trust_id: Option<String>,
}

impl TokenPayload {
    pub fn seal(&self, key: &FernetKey) -> String {
        let bytes = serde_json::to_vec(self).expect("payload serializes");
        key.encrypt(&bytes, self.issued_at.max(0) as u64)
    }

    /// Opens a token with any of the active keys; `None` if none of them made it.
    pub fn open(token: &str, keys: &[FernetKey]) -> Option<TokenPayload> {
        // Tokens are a few hundred bytes; refuse anything absurd before decoding.
        if token.len() > 2048 {
            return None;
        }
        keys.iter()
            .find_map(|k| k.decrypt(token))
            .and_then(|b| serde_json::from_slice(&b).ok())
    }
}

/// A fresh audit id: 16 random bytes, url-safe base64 without padding (22 characters).
pub fn new_audit_id() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seal_and_open() {
        let key = FernetKey::generate();
        let p = TokenPayload {
            user_id: "u".into(),
            methods: vec!["password".into()],
            scope: TokenScope::Project("p".into()),
            issued_at: 10,
            expires_at: 3610,
            audit_ids: vec![new_audit_id()],
            app_cred_id: None,
            trust_id: None,
        };
        let t = p.seal(&key);
        assert_eq!(
            TokenPayload::open(&t, &[FernetKey::generate(), key.clone()]),
            Some(p)
        );
        assert_eq!(TokenPayload::open(&t, &[FernetKey::generate()]), None);
        assert_eq!(new_audit_id().len(), 22);
    }

    proptest! {
        #[test]
        fn open_never_panics(s in "\\PC{0,400}") {
            let _ = TokenPayload::open(&s, &[FernetKey::generate()]);
        }
    }
}
