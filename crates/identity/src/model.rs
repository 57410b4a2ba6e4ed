//! The Identity service's records, as stored and as the service logic uses them.
//! Views (the JSON clients see) are built from these in `http::views`.

use serde_json::{Map, Value};

pub type Extra = Map<String, Value>;

#[derive(Debug, Clone)]
pub struct Domain {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub tags: Vec<String>,
    pub options: Extra,
    pub extra: Extra,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    /// `None` for a top-level project (its parent, in Keystone's view, is the domain).
    pub parent_id: Option<String>,
    pub description: String,
    pub enabled: bool,
    pub tags: Vec<String>,
    pub options: Extra,
    pub extra: Extra,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub enabled: bool,
    pub default_project_id: Option<String>,
    pub options: Extra,
    pub extra: Extra,
    pub created_at: i64,
    pub last_active_at: Option<i64>,
    pub failed_auth_count: i64,
    pub failed_auth_at: Option<i64>,
    pub password_hash: Option<String>,
    pub password_created_at: Option<i64>,
    pub password_expires_at: Option<i64>,
    pub password_self_service: bool,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: String,
    pub extra: Extra,
}

#[derive(Debug, Clone)]
pub struct Role {
    pub id: String,
    pub name: String,
    /// `None` for a global role.
    pub domain_id: Option<String>,
    pub description: String,
    pub options: Extra,
    pub extra: Extra,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorType {
    User,
    Group,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetType {
    Project,
    Domain,
    System,
}

impl ActorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorType::User => "user",
            ActorType::Group => "group",
        }
    }
}

impl TargetType {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Project => "project",
            TargetType::Domain => "domain",
            TargetType::System => "system",
        }
    }
}

/// One role grant. For system grants the target id is `all`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Assignment {
    pub actor_type: ActorType,
    pub actor_id: String,
    pub target_type: TargetType,
    pub target_id: String,
    pub role_id: String,
    pub inherited: bool,
}

#[derive(Debug, Clone)]
pub struct Region {
    pub id: String,
    pub description: String,
    pub parent_region_id: Option<String>,
    pub extra: Extra,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub id: String,
    pub service_type: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub extra: Extra,
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: String,
    pub service_id: String,
    pub interface: String,
    pub region_id: Option<String>,
    pub url: String,
    pub enabled: bool,
    pub extra: Extra,
}

/// A named filter (`interface`, `service_id`, `region_id`) selecting catalog endpoints.
#[derive(Debug, Clone)]
pub struct EndpointGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    pub filters: Extra,
}

/// One option of a domain's specific configuration (`[group] option = value`).
#[derive(Debug, Clone, PartialEq)]
pub struct DomainConfigOption {
    pub group: String,
    pub option: String,
    pub value: Value,
    /// Stored but never shown (Keystone's `sensitive_options`: the LDAP password).
    pub sensitive: bool,
}

/// An OAuth1 consumer: a client that may ask users to delegate roles to it.
#[derive(Debug, Clone)]
pub struct OauthConsumer {
    pub id: String,
    pub description: Option<String>,
    /// Sealed with the credential keys at rest; in clear only in the create response.
    pub secret: String,
    pub extra: Extra,
}

/// A policy blob of some MIME `type`, stored for other services (Keystone does not read it).
#[derive(Debug, Clone)]
pub struct PolicyBlob {
    pub id: String,
    pub policy_type: String,
    pub blob: String,
    pub extra: Extra,
}

#[derive(Debug, Clone)]
pub struct AppCred {
    pub id: String,
    pub name: String,
    pub user_id: String,
    pub project_id: String,
    pub secret_hash: String,
    pub description: Option<String>,
    pub expires_at: Option<i64>,
    pub unrestricted: bool,
    /// Role ids delegated to the credential.
    pub roles: Vec<String>,
    pub access_rules: Vec<Value>,
}

/// What an application credential may call: a method on a path of a service type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    pub id: String,
    pub user_id: String,
    pub service: String,
    pub path: String,
    pub method: String,
}

#[derive(Debug, Clone)]
pub struct Trust {
    pub id: String,
    pub trustor_user_id: String,
    pub trustee_user_id: String,
    pub project_id: Option<String>,
    pub impersonation: bool,
    pub expires_at: Option<i64>,
    pub remaining_uses: Option<i64>,
    pub roles: Vec<String>,
    pub redelegation_count: i64,
    pub extra: Extra,
}

#[derive(Debug, Clone)]
pub struct Credential {
    pub id: String,
    pub user_id: String,
    pub project_id: Option<String>,
    pub credential_type: String,
    pub blob: String,
    pub extra: Extra,
}

#[derive(Debug, Clone)]
pub struct RegisteredLimit {
    pub id: String,
    pub service_id: String,
    pub region_id: Option<String>,
    pub resource_name: String,
    pub default_limit: i64,
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Limit {
    pub id: String,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
    pub service_id: String,
    pub region_id: Option<String>,
    pub resource_name: String,
    pub resource_limit: i64,
    pub description: Option<String>,
}

/// A revocation event: tokens matching every set field and issued at or before
/// `issued_before` are invalid.
#[derive(Debug, Clone, Default)]
pub struct Revocation {
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
    pub audit_id: Option<String>,
    pub app_cred_id: Option<String>,
    pub trust_id: Option<String>,
    /// Seconds since the epoch.
    pub issued_before: i64,
}
