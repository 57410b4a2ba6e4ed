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
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            image_size_cap: 1 << 40,
            limit_param_default: 25,
            api_limit_max: 1000,
            image_property_quota: 128,
            image_tag_quota: 128,
        }
    }
}
