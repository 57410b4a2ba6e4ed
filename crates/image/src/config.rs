//! Image settings.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageConfig {
    /// Largest image accepted, in bytes (Glance: `image_size_cap`, 1 TiB).
    pub image_size_cap: u64,
    /// Default and largest page of image lists (Glance: `limit_param_default`, `api_limit_max`).
    pub limit_param_default: usize,
    pub api_limit_max: usize,
    /// Most custom properties and tags an image may carry (Glance: `image_property_quota`, `image_tag_quota`).
    pub image_property_quota: usize,
    pub image_tag_quota: usize,
    /// The algorithm of the multihash every image gets (`os_hash_algo`, `os_hash_value`;
    /// Glance: `hashing_algorithm`, default sha512). Clients verify downloads with it.
    pub hashing_algorithm: HashingAlgorithm,
    /// Whether images also get the legacy MD5 `checksum`, as Glance still fills it. Glance
    /// deprecated it (clients verify with the multihash, and FIPS hosts have no MD5);
    /// turning it off spares every upload a full MD5 pass, the costliest step of an upload
    /// on most CPUs. Off, `checksum` stays null.
    pub md5_checksum: bool,
}

/// The multihash algorithms an operator may choose. SHA-256 is the cheapest by far on CPUs
/// with SHA extensions (several times SHA-512's speed); SHA-512 is Glance's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashingAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl HashingAlgorithm {
    /// The name Glance shows in `os_hash_algo` (Python's hashlib name).
    pub fn name(self) -> &'static str {
        match self {
            HashingAlgorithm::Sha256 => "sha256",
            HashingAlgorithm::Sha384 => "sha384",
            HashingAlgorithm::Sha512 => "sha512",
        }
    }
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            image_size_cap: 1 << 40,
            limit_param_default: 25,
            api_limit_max: 1000,
            image_property_quota: 128,
            image_tag_quota: 128,
            hashing_algorithm: HashingAlgorithm::Sha512,
            md5_checksum: true,
        }
    }
}
