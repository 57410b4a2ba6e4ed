//! Fernet tokens and the key repository behind them.
//!
//! A Fernet token is `version | timestamp | IV | AES-128-CBC(ciphertext) | HMAC-SHA256`, url-safe
//! base64 (the published Fernet spec, the same scheme Keystone uses). Keys live one per file in a
//! directory, named by integers as Keystone lays them out: `0` is the staged key (next to
//! become primary), the highest number is the primary key that signs new tokens, and the rest
//! are secondary keys that still validate older tokens. [`KeyRepository::rotate`] promotes the
//! staged key to primary and stages a new one, so rotation never invalidates a live token as
//! long as `max_active_keys` keeps enough secondaries.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;
type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;
type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 0x80;

/// One Fernet key: 16 bytes to sign, 16 bytes to encrypt.
#[derive(Clone)]
pub struct FernetKey {
    signing: [u8; 16],
    encryption: [u8; 16],
}

impl std::fmt::Debug for FernetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FernetKey(..)")
    }
}

impl FernetKey {
    pub fn generate() -> FernetKey {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        FernetKey::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8; 32]) -> FernetKey {
        let mut signing = [0u8; 16];
        let mut encryption = [0u8; 16];
        signing.copy_from_slice(&bytes[..16]);
        encryption.copy_from_slice(&bytes[16..]);
        FernetKey {
            signing,
            encryption,
        }
    }

    /// Parses the url-safe base64 text of a key file.
    pub fn parse(text: &str) -> Option<FernetKey> {
        let raw = URL_SAFE.decode(text.trim()).ok()?;
        let bytes: [u8; 32] = raw.try_into().ok()?;
        Some(FernetKey::from_bytes(&bytes))
    }

    pub fn encode(&self) -> String {
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(&self.signing);
        bytes[16..].copy_from_slice(&self.encryption);
        URL_SAFE.encode(bytes)
    }

    /// Encrypts `plaintext` into a token; padding `=` is stripped as Keystone does.
    pub fn encrypt(&self, plaintext: &[u8], timestamp: u64) -> String {
        let mut iv = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut iv);
        let ciphertext = Aes128CbcEnc::new(&self.encryption.into(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
        let mut data = Vec::with_capacity(1 + 8 + 16 + ciphertext.len() + 32);
        data.push(VERSION);
        data.extend_from_slice(&timestamp.to_be_bytes());
        data.extend_from_slice(&iv);
        data.extend_from_slice(&ciphertext);
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.signing)
            .expect("any key length works for HMAC");
        mac.update(&data);
        data.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(data)
    }

    /// Verifies and decrypts a token made by [`FernetKey::encrypt`]; `None` for anything
    /// forged, truncated or signed by another key.
    pub fn decrypt(&self, token: &str) -> Option<Vec<u8>> {
        let data = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
        // version + timestamp + iv + at least one block + hmac
        if data.len() < 1 + 8 + 16 + 16 + 32 || data[0] != VERSION || (data.len() - 57) % 16 != 0 {
            return None;
        }
        let (signed, tag) = data.split_at(data.len() - 32);
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.signing).ok()?;
        mac.update(signed);
        mac.verify_slice(tag).ok()?;
        let iv: [u8; 16] = signed[9..25].try_into().ok()?;
        Aes128CbcDec::new(&self.encryption.into(), &iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(&signed[25..])
            .ok()
    }
}

/// The keys on disk, primary first.
#[derive(Debug)]
pub struct KeyRepository {
    dir: PathBuf,
    max_active_keys: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("fernet key repository {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
    #[error("fernet key repository {0} has no valid keys; run `ferrostack admin fernet-setup`")]
    Empty(String),
}

impl KeyRepository {
    pub fn new(dir: impl Into<PathBuf>, max_active_keys: usize) -> KeyRepository {
        KeyRepository {
            dir: dir.into(),
            max_active_keys: max_active_keys.max(2),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io(&self, source: std::io::Error) -> KeyError {
        KeyError::Io {
            dir: self.dir.display().to_string(),
            source,
        }
    }

    /// Creates the directory with a staged and a primary key if it has none.
    pub fn setup(&self) -> Result<(), KeyError> {
        fs::create_dir_all(&self.dir).map_err(|e| self.io(e))?;
        restrict_dir(&self.dir);
        if self.indices()?.is_empty() {
            self.write_key(0, &FernetKey::generate())?;
            self.rotate()?;
        }
        Ok(())
    }

    fn indices(&self) -> Result<Vec<u64>, KeyError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| self.io(e))? {
            let entry = entry.map_err(|e| self.io(e))?;
            if let Some(n) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u64>().ok())
            {
                out.push(n);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    fn write_key(&self, index: u64, key: &FernetKey) -> Result<(), KeyError> {
        // Write then rename so a crash never leaves a half-written key that fails to parse.
        let tmp = self.dir.join(format!(".tmp-{index}"));
        let mut f = fs::File::create(&tmp).map_err(|e| self.io(e))?;
        restrict_file(&tmp);
        f.write_all(key.encode().as_bytes())
            .map_err(|e| self.io(e))?;
        f.sync_all().map_err(|e| self.io(e))?;
        fs::rename(&tmp, self.dir.join(index.to_string())).map_err(|e| self.io(e))
    }

    /// Promotes the staged key to primary, stages a fresh key, and drops the oldest
    /// secondaries beyond `max_active_keys`.
    pub fn rotate(&self) -> Result<(), KeyError> {
        let indices = self.indices()?;
        let staged = self.dir.join("0");
        let next = indices.last().copied().unwrap_or(0) + 1;
        if staged.exists() {
            fs::rename(&staged, self.dir.join(next.to_string())).map_err(|e| self.io(e))?;
        } else {
            self.write_key(next, &FernetKey::generate())?;
        }
        self.write_key(0, &FernetKey::generate())?;
        let mut indices = self.indices()?;
        indices.retain(|i| *i != 0);
        // Active keys = staged + primary + secondaries.
        while indices.len() + 1 > self.max_active_keys {
            let oldest = indices.remove(0);
            fs::remove_file(self.dir.join(oldest.to_string())).map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    /// The key file names present: they change with every rotation, so comparing them tells
    /// a running server when to reload (cheaper than reading the keys).
    pub fn generation(&self) -> Result<Vec<u64>, KeyError> {
        self.indices()
    }

    /// All keys, primary first, then the secondaries newest first, then the staged key.
    pub fn load(&self) -> Result<Vec<FernetKey>, KeyError> {
        let mut indices = self.indices()?;
        indices.sort_unstable_by(|a, b| match (*a == 0, *b == 0) {
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ => b.cmp(a),
        });
        let mut keys = Vec::new();
        for i in indices {
            let text = fs::read_to_string(self.dir.join(i.to_string())).map_err(|e| self.io(e))?;
            if let Some(k) = FernetKey::parse(&text) {
                keys.push(k);
            }
        }
        if keys.is_empty() {
            return Err(KeyError::Empty(self.dir.display().to_string()));
        }
        Ok(keys)
    }
}

fn restrict_dir(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
    }
}

fn restrict_file(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_tamper() {
        let k = FernetKey::generate();
        let t = k.encrypt(b"hello", 1);
        assert_eq!(k.decrypt(&t).unwrap(), b"hello");
        assert!(FernetKey::generate().decrypt(&t).is_none());
        let mut bad = t.clone().into_bytes();
        let i = bad.len() / 2;
        bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
        assert!(k.decrypt(std::str::from_utf8(&bad).unwrap()).is_none());
        assert_eq!(
            FernetKey::parse(&k.encode()).unwrap().decrypt(&t).unwrap(),
            b"hello"
        );
    }

    #[test]
    fn rotation_keeps_old_tokens_valid() {
        let dir = std::env::temp_dir().join(format!("fernet-test-{}", uuid::Uuid::new_v4()));
        let repo = KeyRepository::new(&dir, 3);
        repo.setup().unwrap();
        let token = repo.load().unwrap()[0].encrypt(b"x", 0);
        repo.rotate().unwrap();
        let keys = repo.load().unwrap();
        assert_eq!(keys.len(), 3);
        assert!(keys[0].decrypt(&token).is_none(), "new primary differs");
        assert!(
            keys.iter().any(|k| k.decrypt(&token).is_some()),
            "old token still validates"
        );
        repo.rotate().unwrap();
        repo.rotate().unwrap();
        let keys = repo.load().unwrap();
        assert_eq!(keys.len(), 3);
        assert!(
            !keys.iter().any(|k| k.decrypt(&token).is_some()),
            "expired out after enough rotations"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    proptest! {
        #[test]
        fn decrypt_never_panics(s in "\\PC{0,300}") {
            let k = FernetKey::generate();
            let _ = k.decrypt(&s);
        }

        #[test]
        fn decrypt_rejects_mutations(pos in 0usize..200, byte in any::<u8>()) {
            let k = FernetKey::generate();
            let t = k.encrypt(b"payload-of-some-length", 7);
            let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
            let p = pos % raw.len();
            prop_assume!(raw[p] != byte);
            raw[p] = byte;
            prop_assert!(k.decrypt(&URL_SAFE_NO_PAD.encode(raw)).is_none());
        }
    }
}
