//! Who is calling: the result of validating an `X-Auth-Token`, as every service sees it.
//!
//! The Identity service produces it ([`Authenticator`]); other services only consume it, to
//! scope their queries and to feed the policy engine ([`AuthContext::policy_credentials`]).

use std::sync::Arc;

use serde_json::{json, Value};

/// What a token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Unscoped,
    Project {
        id: String,
        name: String,
        domain_id: String,
        domain_name: String,
    },
    Domain {
        id: String,
        name: String,
    },
    System,
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct AuthContext {
    pub user_id: String,
    pub user_name: String,
    pub user_domain_id: String,
    pub user_domain_name: String,
    pub scope: Scope,
    /// Effective role names (implied roles expanded), lower-case as stored.
    pub roles: Vec<String>,
    pub role_ids: Vec<String>,
    pub methods: Vec<String>,
    pub audit_ids: Vec<String>,
    pub expires_at: i64,
    pub application_credential_id: Option<String>,
    pub trust_id: Option<String>,
    /// The token was issued for the cloud admin project (Keystone's `is_admin_project`).
    pub is_admin_project: bool,
}

impl AuthContext {
    pub fn project_id(&self) -> Option<&str> {
        match &self.scope {
            Scope::Project { id, .. } => Some(id),
            _ => None,
        }
    }

    pub fn domain_id(&self) -> Option<&str> {
        match &self.scope {
            Scope::Domain { id, .. } => Some(id),
            _ => None,
        }
    }

    pub fn is_system(&self) -> bool {
        self.scope == Scope::System
    }

    pub fn has_role(&self, name: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(name))
    }

    /// The credential dictionary oslo.policy rules are written against.
    pub fn policy_credentials(&self) -> Value {
        let (project_id, project_domain) = match &self.scope {
            Scope::Project { id, domain_id, .. } => (Some(id.clone()), Some(domain_id.clone())),
            _ => (None, None),
        };
        json!({
            "user_id": self.user_id,
            "user_domain_id": self.user_domain_id,
            "roles": self.roles,
            "project_id": project_id,
            "project_domain_id": project_domain,
            "domain_id": self.domain_id(),
            "system_scope": if self.is_system() { Some("all") } else { None },
            "is_admin_project": self.is_admin_project,
            "token": {
                "user_id": self.user_id,
                "domain": {"id": self.domain_id()},
                "project": {"id": self.project_id(), "domain": {"id": project_domain}},
                "system": {"all": self.is_system()},
            },
        })
    }
}

/// Turns an `X-Auth-Token` into an [`AuthContext`]; implemented by the Identity service.
pub trait Authenticator: Send + Sync + 'static {
    fn authenticate(
        &self,
        token: &str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Arc<AuthContext>>> + Send + '_>>;
}
