//! Authentication and tokens: `POST /v3/auth/tokens` (password, token and
//! application_credential methods; unscoped, project, domain and system scope), validation
//! with caching, revocation, and the self-service password change.
//!
//! Order of checks for a password follows Keystone: the user exists, is not locked out, the
//! password matches (a miss is counted toward lockout), the account is enabled, the password
//! has not expired; then the failure counter resets. Every authentication failure is a 401
//! whose message reveals no more than Keystone's does.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ferrostack_common::time::now_micros;
use ferrostack_common::{AuthContext, Scope};
use serde_json::Value;

use crate::error::{IdentityError, Result};
use crate::model::{AppCred, Revocation, Role, Trust, User};
use crate::service::assignments::RoleTarget;
use crate::service::trusts::trust_alive;
use crate::service::{now_secs, passwords, Identity};
use crate::token::{new_audit_id, TokenPayload, TokenScope};

/// How a request names a user, a project or a domain: by id, or by name within a domain.
#[derive(Debug, Clone)]
pub enum NamedRef {
    Id(String),
    Name {
        name: String,
        domain: Box<NamedRef>,
    },
    /// A domain by name (domains have no parent to qualify them).
    DomainName(String),
}

#[derive(Debug, Clone)]
pub enum ScopeRequest {
    Default,
    Unscoped,
    Project(NamedRef),
    Domain(NamedRef),
    System,
    /// `{"OS-TRUST:trust": {"id": ...}}`: the trustee asks for the trust's delegated roles.
    Trust(String),
}

/// A parsed `auth` block.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub methods: Vec<String>,
    pub password: Option<(NamedRef, String)>,
    pub token: Option<String>,
    pub app_cred: Option<AppCredRef>,
    pub scope: ScopeRequest,
}

#[derive(Debug, Clone)]
pub enum AppCredRef {
    Id {
        id: String,
        secret: String,
    },
    Name {
        name: String,
        user: NamedRef,
        secret: String,
    },
}

/// A validated token: the payload and everything the token body shows.
#[derive(Debug, Clone)]
pub struct ValidatedToken {
    pub payload: TokenPayload,
    pub ctx: AuthContext,
    pub password_expires_at: Option<i64>,
    pub roles: Vec<Role>,
    pub app_cred: Option<AppCred>,
    pub trust: Option<Trust>,
}

pub struct IssuedToken {
    pub id: String,
    pub token: Arc<ValidatedToken>,
}

fn bad_field(path: &str) -> IdentityError {
    IdentityError::bad(format!(
        "Invalid input for field '{path}': expected an object with the documented keys."
    ))
}

fn str_at<'v>(v: &'v Value, key: &str, path: &str) -> Result<Option<&'v str>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(IdentityError::bad(format!(
            "Invalid input for field '{path}.{key}': not a string."
        ))),
    }
}

fn domain_ref(v: &Value, path: &str) -> Result<NamedRef> {
    if let Some(id) = str_at(v, "id", path)? {
        return Ok(NamedRef::Id(id.to_string()));
    }
    if let Some(name) = str_at(v, "name", path)? {
        return Ok(NamedRef::DomainName(name.to_string()));
    }
    Err(IdentityError::bad(format!(
        "Expecting to find id or name in {path}."
    )))
}

/// A user or project: `{"id"}` or `{"name", "domain": {"id"|"name"}}`.
fn named_ref(v: &Value, path: &str) -> Result<NamedRef> {
    if !v.is_object() {
        return Err(bad_field(path));
    }
    if let Some(id) = str_at(v, "id", path)? {
        return Ok(NamedRef::Id(id.to_string()));
    }
    let Some(name) = str_at(v, "name", path)? else {
        return Err(IdentityError::bad(format!(
            "Expecting to find id or name in {path}."
        )));
    };
    let Some(domain) = v.get("domain") else {
        return Err(IdentityError::bad(format!(
            "Expecting to find domain in {path}."
        )));
    };
    Ok(NamedRef::Name {
        name: name.to_string(),
        domain: Box::new(domain_ref(domain, &format!("{path}.domain"))?),
    })
}

impl AuthRequest {
    /// Parses the body of `POST /v3/auth/tokens`; malformed input is a 400 naming the field.
    pub fn parse(body: &Value) -> Result<AuthRequest> {
        let auth = body
            .get("auth")
            .filter(|a| a.is_object())
            .ok_or_else(|| IdentityError::bad("Expecting to find auth in request body."))?;
        let identity = auth
            .get("identity")
            .filter(|a| a.is_object())
            .ok_or_else(|| IdentityError::bad("Expecting to find identity in auth."))?;
        let methods: Vec<String> = match identity.get("methods") {
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|m| {
                    m.as_str().map(str::to_string).ok_or_else(|| {
                        IdentityError::bad(
                            "Invalid input for field 'identity.methods': items must be strings.",
                        )
                    })
                })
                .collect::<Result<_>>()?,
            _ => return Err(IdentityError::bad("Expecting to find methods in identity.")),
        };
        let mut req = AuthRequest {
            methods: methods.clone(),
            password: None,
            token: None,
            app_cred: None,
            scope: ScopeRequest::Default,
        };
        for method in &methods {
            let block = identity.get(method.as_str()).ok_or_else(|| {
                IdentityError::bad(format!("Expecting to find {method} in identity."))
            })?;
            match method.as_str() {
                "password" => {
                    let user = block
                        .get("user")
                        .ok_or_else(|| IdentityError::bad("Expecting to find user in password."))?;
                    let password = str_at(user, "password", "password.user")?
                        .ok_or_else(|| IdentityError::bad("Expecting to find password in user."))?;
                    req.password = Some((named_ref(user, "password.user")?, password.to_string()));
                }
                "token" => {
                    let id = str_at(block, "id", "token")?
                        .ok_or_else(|| IdentityError::bad("Expecting to find id in token."))?;
                    req.token = Some(id.to_string());
                }
                "application_credential" => {
                    let secret = str_at(block, "secret", "application_credential")?
                        .ok_or_else(|| {
                            IdentityError::bad(
                                "Expecting to find secret in application_credential.",
                            )
                        })?
                        .to_string();
                    req.app_cred = Some(
                        if let Some(id) = str_at(block, "id", "application_credential")? {
                            AppCredRef::Id {
                                id: id.to_string(),
                                secret,
                            }
                        } else {
                            let name = str_at(block, "name", "application_credential")?
                                .ok_or_else(|| {
                                    IdentityError::bad(
                                        "Expecting to find id or name in application_credential.",
                                    )
                                })?;
                            let user = block.get("user").ok_or_else(|| {
                                IdentityError::bad(
                                    "Expecting to find user in application_credential.",
                                )
                            })?;
                            AppCredRef::Name {
                                name: name.to_string(),
                                user: named_ref(user, "application_credential.user")?,
                                secret,
                            }
                        },
                    );
                }
                other => {
                    return Err(IdentityError::Unauthorized(format!(
                        "Attempted to authenticate with an unsupported method: {other}."
                    )))
                }
            }
        }
        req.scope = match auth.get("scope") {
            None | Some(Value::Null) => ScopeRequest::Default,
            Some(Value::String(s)) if s == "unscoped" => ScopeRequest::Unscoped,
            Some(scope @ Value::Object(_)) => {
                if let Some(p) = scope.get("project") {
                    ScopeRequest::Project(named_ref(p, "scope.project")?)
                } else if let Some(d) = scope.get("domain") {
                    ScopeRequest::Domain(domain_ref(d, "scope.domain")?)
                } else if let Some(s) = scope.get("system") {
                    if s.get("all").and_then(Value::as_bool) != Some(true) {
                        return Err(IdentityError::bad("Invalid input for field 'scope.system': only {\"all\": true} is supported."));
                    }
                    ScopeRequest::System
                } else if let Some(t) = scope.get("OS-TRUST:trust") {
                    let id = str_at(t, "id", "scope.OS-TRUST:trust")?.ok_or_else(|| {
                        IdentityError::bad("Expecting to find id in scope.OS-TRUST:trust.")
                    })?;
                    ScopeRequest::Trust(id.to_string())
                } else {
                    return Err(IdentityError::bad(
                        "Invalid input for field 'scope': expected project, domain or system.",
                    ));
                }
            }
            Some(_) => {
                return Err(IdentityError::bad(
                    "Invalid input for field 'scope': not an object.",
                ))
            }
        };
        Ok(req)
    }
}

impl Identity {
    async fn resolve_domain_id(&self, r: &NamedRef) -> Result<Option<String>> {
        Ok(match r {
            NamedRef::Id(id) => self.store.domain(id).await?.map(|d| d.id),
            NamedRef::DomainName(n) => self.store.domain_by_name(n).await?.map(|d| d.id),
            NamedRef::Name { .. } => None,
        })
    }

    async fn resolve_user(&self, r: &NamedRef) -> Result<Option<User>> {
        Ok(match r {
            NamedRef::Id(id) => self.store.user(id).await?,
            NamedRef::Name { name, domain } => match self.resolve_domain_id(domain).await? {
                Some(d) => self.store.user_by_name(&d, name).await?,
                None => None,
            },
            NamedRef::DomainName(_) => None,
        })
    }

    async fn resolve_project_id(&self, r: &NamedRef) -> Result<Option<String>> {
        Ok(match r {
            NamedRef::Id(id) => self.store.project(id).await?.map(|p| p.id),
            NamedRef::Name { name, domain } => match self.resolve_domain_id(domain).await? {
                Some(d) => self.store.project_by_name(&d, name).await?.map(|p| p.id),
                None => None,
            },
            NamedRef::DomainName(_) => None,
        })
    }

    /// Checks a password for `user` with lockout bookkeeping; the user on success.
    async fn check_password(&self, user: User, password: &str) -> Result<User> {
        let now = now_micros();
        if self.is_locked(&user, now) {
            return Err(IdentityError::Unauthorized(format!(
                "The account is locked for user: {}.",
                user.id
            )));
        }
        let ok = match &user.password_hash {
            Some(h) => passwords::verify(password, h).await,
            None => false,
        };
        if !ok {
            // An expired lock window starts counting afresh.
            if self
                .config
                .security_compliance
                .lockout_failure_attempts
                .is_some()
                && user.failed_auth_at.is_some()
                && !self.is_locked(&user, now)
                && user.failed_auth_count
                    >= i64::from(
                        self.config
                            .security_compliance
                            .lockout_failure_attempts
                            .unwrap_or(0),
                    )
            {
                self.store
                    .record_auth_success(&user.id, user.last_active_at.unwrap_or(now))
                    .await?;
            }
            self.store.record_auth_failure(&user.id, now).await?;
            return Err(IdentityError::unauthenticated());
        }
        self.check_account_usable(&user, now).await?;
        self.store.record_auth_success(&user.id, now).await?;
        Ok(user)
    }

    async fn check_account_usable(&self, user: &User, now: i64) -> Result<()> {
        if !user.enabled {
            return Err(IdentityError::Unauthorized(format!(
                "The account is disabled for user: {}.",
                user.id
            )));
        }
        if user.password_expires_at.is_some_and(|e| e <= now) {
            return Err(IdentityError::Unauthorized(format!(
                "The password is expired and needs to be changed for user: {}.",
                user.id
            )));
        }
        if self
            .config
            .security_compliance
            .change_password_upon_first_use
            && !user.password_self_service
            && user
                .options
                .get("ignore_change_password_upon_first_use")
                .and_then(Value::as_bool)
                != Some(true)
            && user.password_hash.is_some()
        {
            return Err(IdentityError::Unauthorized(format!(
                "The password is expired and needs to be changed for user: {}.",
                user.id
            )));
        }
        match self.store.domain(&user.domain_id).await? {
            Some(d) if d.enabled => Ok(()),
            _ => Err(IdentityError::unauthenticated()),
        }
    }

    /// Issues a token for a parsed `auth` request.
    pub async fn issue_token(&self, req: AuthRequest) -> Result<IssuedToken> {
        let now = now_micros();
        let mut methods: BTreeSet<String> = BTreeSet::new();
        let mut user: Option<User> = None;
        let mut expires_at = now_secs() + self.config.token_expiration;
        let mut audit_ids = vec![new_audit_id()];
        let mut inherited_scope: Option<TokenScope> = None;
        let mut app_cred: Option<AppCred> = None;

        if let Some(token) = &req.token {
            let parent = self.validate(token).await?;
            if parent.payload.app_cred_id.is_some() || parent.payload.trust_id.is_some() {
                return Err(IdentityError::Forbidden("identity:rescope_token".into()));
            }
            methods.extend(parent.payload.methods.iter().cloned());
            methods.insert("token".into());
            expires_at = parent.payload.expires_at;
            audit_ids.push(parent.payload.audit_ids[0].clone());
            inherited_scope = Some(parent.payload.scope.clone());
            user = self.store.user(&parent.payload.user_id).await?;
        }
        if let Some((who, password)) = &req.password {
            let found = self
                .resolve_user(who)
                .await?
                .ok_or_else(IdentityError::unauthenticated)?;
            if user.as_ref().is_some_and(|u| u.id != found.id) {
                return Err(IdentityError::unauthenticated());
            }
            user = Some(self.check_password(found, password).await?);
            methods.insert("password".into());
        }
        if let Some(cred_ref) = &req.app_cred {
            let (cred, secret) = match cred_ref {
                AppCredRef::Id { id, secret } => (self.store.app_cred(id).await?, secret),
                AppCredRef::Name {
                    name,
                    user: who,
                    secret,
                } => {
                    let owner = self
                        .resolve_user(who)
                        .await?
                        .ok_or_else(IdentityError::unauthenticated)?;
                    let cred = self
                        .store
                        .app_creds(&owner.id)
                        .await?
                        .into_iter()
                        .find(|c| &c.name == name);
                    (cred, secret)
                }
            };
            let cred = cred.ok_or_else(IdentityError::unauthenticated)?;
            if cred.expires_at.is_some_and(|e| e <= now)
                || !passwords::verify(secret, &cred.secret_hash).await
            {
                return Err(IdentityError::unauthenticated());
            }
            let owner = self
                .store
                .user(&cred.user_id)
                .await?
                .ok_or_else(IdentityError::unauthenticated)?;
            if !owner.enabled {
                return Err(IdentityError::Unauthorized(format!(
                    "The account is disabled for user: {}.",
                    owner.id
                )));
            }
            if let Some(e) = cred.expires_at {
                expires_at = expires_at.min(e / 1_000_000);
            }
            user = Some(owner);
            methods.insert("application_credential".into());
            app_cred = Some(cred);
        }
        let user = user.ok_or_else(IdentityError::unauthenticated)?;

        let mut trust_id = None;
        let scope = match (&app_cred, &req.scope) {
            (Some(cred), ScopeRequest::Default) => TokenScope::Project(cred.project_id.clone()),
            (Some(cred), ScopeRequest::Project(p)) => {
                if self.resolve_project_id(p).await?.as_deref() != Some(cred.project_id.as_str()) {
                    return Err(IdentityError::unauthenticated());
                }
                TokenScope::Project(cred.project_id.clone())
            }
            (Some(_), _) => return Err(IdentityError::unauthenticated()),
            (None, ScopeRequest::Trust(id)) => {
                let trust = self.existing_trust(id).await?;
                if trust.trustee_user_id != user.id {
                    return Err(IdentityError::ForbiddenMessage(format!(
                        "User {} is not the trustee of trust {id}.",
                        user.id
                    )));
                }
                if trust.remaining_uses.is_some() && !self.store.consume_trust_use(id).await? {
                    return Err(IdentityError::ForbiddenMessage(format!(
                        "Trust {id} has no uses left."
                    )));
                }
                if let Some(e) = trust.expires_at {
                    expires_at = expires_at.min(e / 1_000_000);
                }
                trust_id = Some(trust.id.clone());
                match trust.project_id {
                    Some(p) => TokenScope::Project(p),
                    None => TokenScope::Unscoped,
                }
            }
            (None, ScopeRequest::Unscoped) => TokenScope::Unscoped,
            (None, ScopeRequest::System) => TokenScope::System,
            (None, ScopeRequest::Project(p)) => TokenScope::Project(
                self.resolve_project_id(p)
                    .await?
                    .ok_or_else(IdentityError::unauthenticated)?,
            ),
            (None, ScopeRequest::Domain(d)) => TokenScope::Domain(
                self.resolve_domain_id(d)
                    .await?
                    .ok_or_else(IdentityError::unauthenticated)?,
            ),
            (None, ScopeRequest::Default) => match inherited_scope {
                Some(s) => s,
                None => self.default_scope(&user).await?,
            },
        };

        let payload = TokenPayload {
            user_id: user.id.clone(),
            methods: methods.into_iter().collect(),
            scope,
            issued_at: now,
            expires_at,
            audit_ids,
            app_cred_id: app_cred.map(|c| c.id),
            trust_id,
        };
        let id = payload.seal(&self.keys()[0]);
        // Building the answer through validation guarantees GET /auth/tokens shows the same.
        let token = self.build_validated(payload).await.map_err(|e| match e {
            IdentityError::NotFound { .. } => IdentityError::unauthenticated(),
            other => other,
        })?;
        let revision = self.revision.load(Ordering::SeqCst);
        let token = Arc::new(token);
        self.remember(&id, token.clone(), revision);
        Ok(IssuedToken { id, token })
    }

    /// Keystone scopes a token without an explicit scope to the user's default project, when
    /// the user still has a role there.
    async fn default_scope(&self, user: &User) -> Result<TokenScope> {
        if let Some(p) = &user.default_project_id {
            if let Some(project) = self.store.project(p).await? {
                if project.enabled
                    && !self
                        .effective_roles(&user.id, &RoleTarget::Project(p.clone()))
                        .await?
                        .is_empty()
                {
                    return Ok(TokenScope::Project(p.clone()));
                }
            }
        }
        Ok(TokenScope::Unscoped)
    }

    /// Validates a token; any failure (forged, expired, revoked, user or scope gone) is a 404
    /// "Could not find token", as Keystone reports it for `X-Subject-Token`.
    pub async fn validate(&self, token: &str) -> Result<Arc<ValidatedToken>> {
        let not_found =
            || IdentityError::not_found("token", token.chars().take(64).collect::<String>());
        if let Some(v) = self.cached(token) {
            if v.payload.expires_at > now_secs() {
                return Ok(v);
            }
            return Err(not_found());
        }
        let revision = self.revision.load(Ordering::SeqCst);
        let payload = TokenPayload::open(token, &self.keys()).ok_or_else(not_found)?;
        if payload.expires_at <= now_secs() || self.is_revoked(&payload) {
            return Err(not_found());
        }
        let validated = Arc::new(self.build_validated(payload).await.map_err(|e| match e {
            IdentityError::NotFound { .. } => not_found(),
            other => other,
        })?);
        self.remember(token, validated.clone(), revision);
        Ok(validated)
    }

    fn is_revoked(&self, p: &TokenPayload) -> bool {
        let events = self
            .revocations
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (project, domain) = match &p.scope {
            TokenScope::Project(id) => (Some(id.as_str()), None),
            TokenScope::Domain(id) => (None, Some(id.as_str())),
            _ => (None, None),
        };
        events.iter().any(|e| {
            p.issued_at <= e.issued_before
                && e.user_id.as_deref().is_none_or(|u| u == p.user_id)
                && e.project_id.as_deref().is_none_or(|x| Some(x) == project)
                && e.domain_id.as_deref().is_none_or(|x| Some(x) == domain)
                && e.audit_id
                    .as_deref()
                    .is_none_or(|a| p.audit_ids.first().map(String::as_str) == Some(a))
                && e.app_cred_id
                    .as_deref()
                    .is_none_or(|c| p.app_cred_id.as_deref() == Some(c))
                && e.trust_id
                    .as_deref()
                    .is_none_or(|t| p.trust_id.as_deref() == Some(t))
        })
    }

    /// Resolves a payload against current data into the caller's full context.
    async fn build_validated(&self, payload: TokenPayload) -> Result<ValidatedToken> {
        let nf = || IdentityError::not_found("token", "");
        let mut user = self.store.user(&payload.user_id).await?.ok_or_else(nf)?;
        let trustee_domain = self.store.domain(&user.domain_id).await?.ok_or_else(nf)?;
        if !user.enabled || !trustee_domain.enabled {
            return Err(nf());
        }
        // A trust token acts with the trustor's roles (and shows the trustor as its user when
        // the trust impersonates); both users must still be usable.
        let (trust, role_holder) = match &payload.trust_id {
            Some(id) => {
                let t = self
                    .store
                    .trust(id)
                    .await?
                    .filter(|t| trust_alive(t) && t.trustee_user_id == user.id)
                    .ok_or_else(nf)?;
                let trustor = self
                    .store
                    .user(&t.trustor_user_id)
                    .await?
                    .filter(|u| u.enabled)
                    .ok_or_else(nf)?;
                let holder = trustor.id.clone();
                if t.impersonation {
                    user = trustor;
                }
                (Some(t), holder)
            }
            None => (None, user.id.clone()),
        };
        let user_domain = if user.domain_id == trustee_domain.id {
            trustee_domain
        } else {
            self.store
                .domain(&user.domain_id)
                .await?
                .filter(|d| d.enabled)
                .ok_or_else(nf)?
        };
        let app_cred = match &payload.app_cred_id {
            Some(id) => {
                let c = self.store.app_cred(id).await?.ok_or_else(nf)?;
                if c.expires_at.is_some_and(|e| e <= now_micros()) {
                    return Err(nf());
                }
                Some(c)
            }
            None => None,
        };
        let (scope, target) = match &payload.scope {
            TokenScope::Unscoped => (Scope::Unscoped, None),
            TokenScope::System => (Scope::System, Some(RoleTarget::System)),
            TokenScope::Domain(id) => {
                let d = self
                    .store
                    .domain(id)
                    .await?
                    .filter(|d| d.enabled)
                    .ok_or_else(nf)?;
                (
                    Scope::Domain {
                        id: d.id.clone(),
                        name: d.name,
                    },
                    Some(RoleTarget::Domain(d.id)),
                )
            }
            TokenScope::Project(id) => {
                let p = self
                    .store
                    .project(id)
                    .await?
                    .filter(|p| p.enabled)
                    .ok_or_else(nf)?;
                let d = self
                    .store
                    .domain(&p.domain_id)
                    .await?
                    .filter(|d| d.enabled)
                    .ok_or_else(nf)?;
                (
                    Scope::Project {
                        id: p.id.clone(),
                        name: p.name,
                        domain_id: d.id,
                        domain_name: d.name,
                    },
                    Some(RoleTarget::Project(p.id)),
                )
            }
        };
        let mut roles = match &target {
            Some(t) => self.effective_roles(&role_holder, t).await?,
            None => Vec::new(),
        };
        if let Some(t) = &trust {
            let delegated = self
                .expand_implied(t.roles.iter().cloned().collect())
                .await?;
            roles.retain(|r| delegated.contains(&r.id));
        }
        if let Some(c) = &app_cred {
            // A credential never carries more than its owner holds today.
            let delegated = self
                .expand_implied(c.roles.iter().cloned().collect())
                .await?;
            roles.retain(|r| delegated.contains(&r.id));
        }
        if target.is_some() && roles.is_empty() {
            return Err(nf());
        }
        let ctx = AuthContext {
            user_id: user.id.clone(),
            user_name: user.name.clone(),
            user_domain_id: user_domain.id.clone(),
            user_domain_name: user_domain.name.clone(),
            scope,
            roles: roles.iter().map(|r| r.name.to_lowercase()).collect(),
            role_ids: roles.iter().map(|r| r.id.clone()).collect(),
            methods: payload.methods.clone(),
            audit_ids: payload.audit_ids.clone(),
            expires_at: payload.expires_at,
            application_credential_id: payload.app_cred_id.clone(),
            trust_id: payload.trust_id.clone(),
            is_admin_project: false,
        };
        Ok(ValidatedToken {
            password_expires_at: user.password_expires_at,
            payload,
            ctx,
            roles,
            app_cred,
            trust,
        })
    }

    /// `DELETE /v3/auth/tokens`: the token stops working at once, everywhere in this process.
    pub async fn revoke_token(&self, token: &str) -> Result<()> {
        let v = self.validate(token).await?;
        self.add_revocation(Revocation {
            audit_id: v.payload.audit_ids.first().cloned(),
            issued_before: now_micros(),
            ..Default::default()
        })
        .await
    }

    /// Revokes every token of a user (password change, disable, delete).
    pub async fn revoke_user_tokens(&self, user_id: &str) -> Result<()> {
        self.add_revocation(Revocation {
            user_id: Some(user_id.to_string()),
            issued_before: now_micros(),
            ..Default::default()
        })
        .await
    }

    /// `POST /v3/users/{id}/password`: the user changes their own password.
    pub async fn change_own_password(
        &self,
        user_id: &str,
        original: &str,
        new: &str,
    ) -> Result<()> {
        let user = self
            .store
            .user(user_id)
            .await?
            .ok_or_else(IdentityError::unauthenticated)?;
        let now = now_micros();
        if self.is_locked(&user, now) {
            return Err(IdentityError::Unauthorized(format!(
                "The account is locked for user: {}.",
                user.id
            )));
        }
        let ok = match &user.password_hash {
            Some(h) => passwords::verify(original, h).await,
            None => false,
        };
        if !ok {
            self.store.record_auth_failure(&user.id, now).await?;
            return Err(IdentityError::unauthenticated());
        }
        if user.options.get("lock_password").and_then(Value::as_bool) == Some(true) {
            return Err(IdentityError::bad("You cannot change your password at this time due to password policy disallowing password changes. Please contact your administrator to reset your password."));
        }
        if let (Some(days), Some(changed), true) = (
            self.config.security_compliance.minimum_password_age,
            user.password_created_at,
            user.password_self_service,
        ) {
            if days > 0 && changed + days * 86_400 * 1_000_000 > now {
                return Err(IdentityError::bad(format!(
                    "You cannot change your password at this time due to the minimum password age. Once you change your password, it must be used for {days} day(s) before it can be changed. Please try again in a few days or contact your administrator to reset your password."
                )));
            }
        }
        self.check_password_rules(new)?;
        self.check_password_history(&user.id, new).await?;
        let hash = passwords::hash(new, self.config.password_hash_rounds).await?;
        self.store
            .set_password(&user.id, &hash, now, self.password_expiry(&user, now), true)
            .await?;
        self.revoke_user_tokens(&user.id).await
    }
}
