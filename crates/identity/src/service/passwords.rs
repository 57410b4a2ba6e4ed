//! Password hashing and Keystone's security-compliance rules for passwords and lockout.
//! bcrypt is deliberately slow, so hashing and verifying run on the blocking pool, never on
//! the async workers that serve other requests.

use crate::error::{IdentityError, Result};
use crate::model::User;
use crate::service::Identity;

pub async fn hash(password: &str, cost: u32) -> Result<String> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || bcrypt::hash(password, cost))
        .await
        .map_err(|e| IdentityError::Internal(e.into()))?
        .map_err(|e| IdentityError::Internal(e.into()))
}

pub async fn verify(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_string(), hash.to_string());
    tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
        .await
        .unwrap_or(false)
}

impl Identity {
    /// Length and regex rules a new password must meet.
    pub fn check_password_rules(&self, password: &str) -> Result<()> {
        if password.len() > self.config.max_password_length {
            return Err(IdentityError::ForbiddenMessage(format!(
                "The password length must be less than or equal to {}.",
                self.config.max_password_length
            )));
        }
        let sc = &self.config.security_compliance;
        if let Some(pattern) = &sc.password_regex {
            let re = regex::Regex::new(pattern).map_err(|e| IdentityError::Internal(e.into()))?;
            if !re.is_match(password) {
                let detail = sc
                    .password_regex_description
                    .clone()
                    .unwrap_or_else(|| "see the password policy".into());
                return Err(IdentityError::bad(format!(
                    "The password does not match the requirements: {detail}."
                )));
            }
        }
        Ok(())
    }

    /// Whether `user` is locked out right now; clears an expired lock window.
    pub fn is_locked(&self, user: &User, now_micros: i64) -> bool {
        let sc = &self.config.security_compliance;
        let Some(max) = sc.lockout_failure_attempts else {
            return false;
        };
        if user
            .options
            .get("ignore_lockout_failure_attempts")
            .and_then(|v| v.as_bool())
            == Some(true)
        {
            return false;
        }
        if user.failed_auth_count < i64::from(max) {
            return false;
        }
        match (sc.lockout_duration, user.failed_auth_at) {
            (Some(d), Some(at)) if d > 0 => at + d * 1_000_000 > now_micros,
            _ => true,
        }
    }

    /// Refuses a new password equal to any of the last N, the current one included (with N = 2
    /// neither the current nor the previous password may be set again), as Keystone does.
    pub async fn check_password_history(&self, user_id: &str, new_password: &str) -> Result<()> {
        let Some(count) = self.config.security_compliance.unique_last_password_count else {
            return Ok(());
        };
        if count <= 1 {
            return Ok(());
        }
        for old in self
            .store
            .password_history(user_id, i64::from(count))
            .await?
        {
            if verify(new_password, &old).await {
                return Err(IdentityError::bad(format!(
                    "Password validation error: The new password cannot be identical to a previous password. The total number which includes the new password must be unique is {count}."
                )));
            }
        }
        Ok(())
    }

    /// When a password set now expires (None when expiry is off or the user is exempt).
    pub fn password_expiry(&self, user: &User, now_micros: i64) -> Option<i64> {
        let days = self.config.security_compliance.password_expires_days?;
        if user
            .options
            .get("ignore_password_expiry")
            .and_then(|v| v.as_bool())
            == Some(true)
        {
            return None;
        }
        Some(now_micros + days * 86_400 * 1_000_000)
    }
}
