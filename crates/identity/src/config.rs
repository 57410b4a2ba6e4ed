//! Identity settings: token lifetime, password hashing cost, the key repository, and the
//! security-compliance rules Keystone calls `[security_compliance]`.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Token lifetime in seconds (Keystone: `[token] expiration`).
    pub token_expiration: i64,
    /// bcrypt cost (Keystone's default hasher is bcrypt at cost 12).
    pub password_hash_rounds: u32,
    /// Longest password accepted, in bytes (Keystone: `max_password_length`).
    pub max_password_length: usize,
    /// Fernet keys kept active (staged + primary + secondaries).
    pub max_active_keys: usize,
    /// Largest request body accepted, in bytes (Keystone: `max_request_body_size`).
    pub max_request_body_size: usize,
    /// Most items a list returns before it says `truncated` (Keystone: `list_limit`).
    pub list_limit: Option<usize>,
    pub security_compliance: SecurityCompliance,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            token_expiration: 3600,
            password_hash_rounds: 12,
            max_password_length: 4096,
            max_active_keys: 3,
            max_request_body_size: 114_688,
            list_limit: None,
            security_compliance: SecurityCompliance::default(),
        }
    }
}

/// Keystone's `[security_compliance]` options, all off by default as in Keystone.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityCompliance {
    pub lockout_failure_attempts: Option<u32>,
    /// Seconds an account stays locked (Keystone default 1800 when lockout is on).
    pub lockout_duration: Option<i64>,
    pub password_expires_days: Option<i64>,
    pub unique_last_password_count: Option<u32>,
    pub minimum_password_age: Option<i64>,
    pub password_regex: Option<String>,
    pub password_regex_description: Option<String>,
    pub change_password_upon_first_use: bool,
    pub disable_user_account_days_inactive: Option<i64>,
}
