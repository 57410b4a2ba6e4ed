//! Creating, changing and deleting identity resources, with Keystone's input rules.
//!
//! Each write has two halves so that the HTTP layer can authorize in between, against the
//! resource as it will be: `prepare_*` validates the request body and builds the record
//! (400/404 on bad input, nothing written), `create_*`/`save_*` commit it and bump the
//! revision (409 on a duplicate). Unknown attributes on users, projects, domains, groups,
//! roles, regions, services and endpoints are kept as `extra`, as Keystone keeps them.

use ferrostack_common::time::{now_micros, parse_iso};
use ferrostack_common::AuthContext;
use serde_json::{Map, Value};

use crate::error::{IdentityError, Result};
use crate::model::*;
use crate::service::{new_id, passwords, Identity};

/// Validation of one JSON object from a request body.
pub struct Input<'a> {
    obj: &'a Map<String, Value>,
    kind: &'static str,
}

impl<'a> Input<'a> {
    /// The object under `key` in the body (`{"user": {...}}`).
    pub fn from_body(body: &'a Value, key: &'static str) -> Result<Input<'a>> {
        match body.get(key) {
            Some(Value::Object(obj)) => Ok(Input { obj, kind: key }),
            Some(_) => Err(IdentityError::bad(format!(
                "Invalid input for field '{key}': not an object."
            ))),
            None => Err(IdentityError::bad(format!(
                "Expecting to find {key} in request body."
            ))),
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.obj.contains_key(key)
    }

    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key)
    }

    fn type_error(&self, key: &str, what: &str) -> IdentityError {
        IdentityError::bad(format!(
            "Invalid input for field '{key}': expected {what} in {}.",
            self.kind
        ))
    }

    /// A string of 1..=max characters (`None` when absent or null).
    pub fn string(&self, key: &str, max: usize) -> Result<Option<String>> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
            Some(Value::String(_)) => Err(IdentityError::bad(format!(
                "Invalid input for field '{key}': longer than {max} characters."
            ))),
            Some(_) => Err(self.type_error(key, "a string")),
        }
    }

    pub fn required(&self, key: &str, max: usize) -> Result<String> {
        let s = self.string(key, max)?.ok_or_else(|| {
            IdentityError::bad(format!("Expecting to find {key} in {}.", self.kind))
        })?;
        if s.trim().is_empty() {
            return Err(IdentityError::bad(format!(
                "Invalid input for field '{key}': must not be empty."
            )));
        }
        Ok(s)
    }

    /// Strict booleans: Keystone's schemas reject "true" strings and integers.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>> {
        match self.obj.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.type_error(key, "a boolean")),
        }
    }

    pub fn object(&self, key: &str) -> Result<Option<Map<String, Value>>> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o.clone())),
            Some(_) => Err(self.type_error(key, "an object")),
        }
    }

    /// Every attribute not in `known`: Keystone stores those as extra attributes.
    pub fn extra(&self, known: &[&str]) -> Extra {
        self.obj
            .iter()
            .filter(|(k, _)| !known.contains(&k.as_str()) && k.as_str() != "links")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Refuses attributes outside `allowed` (where Keystone's schema has no extra properties).
    pub fn only(&self, allowed: &[&str]) -> Result<()> {
        match self.obj.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(IdentityError::bad(format!(
                "Additional properties are not allowed ('{k}' was unexpected) in {}.",
                self.kind
            ))),
            None => Ok(()),
        }
    }
}

const USER_OPTIONS: &[&str] = &[
    "ignore_change_password_upon_first_use",
    "ignore_password_expiry",
    "ignore_lockout_failure_attempts",
    "lock_password",
    "ignore_user_inactivity",
    "multi_factor_auth_enabled",
    "multi_factor_auth_rules",
];

fn merge_options(
    current: &mut Extra,
    given: Option<Map<String, Value>>,
    allowed: &[&str],
) -> Result<()> {
    for (k, v) in given.unwrap_or_default() {
        if !allowed.contains(&k.as_str()) {
            return Err(IdentityError::bad(format!(
                "Invalid input for field 'options': unknown option '{k}'."
            )));
        }
        // null removes an option, as in Keystone.
        if v.is_null() {
            current.remove(&k);
        } else {
            current.insert(k, v);
        }
    }
    Ok(())
}

fn validate_tags(tags: &Value) -> Result<Vec<String>> {
    let items = tags.as_array().ok_or_else(|| {
        IdentityError::bad("Invalid input for field 'tags': expected a list of strings.")
    })?;
    if items.len() > 80 {
        return Err(IdentityError::bad(
            "Invalid input for field 'tags': at most 80 tags.",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for t in items {
        let t = t.as_str().ok_or_else(|| {
            IdentityError::bad("Invalid input for field 'tags': expected a list of strings.")
        })?;
        validate_tag(t)?;
        if !out.iter().any(|x| x == t) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

pub fn validate_tag(t: &str) -> Result<()> {
    if t.is_empty() || t.chars().count() > 255 || t.contains('/') || t.contains(',') {
        return Err(IdentityError::bad(format!(
            "Invalid project tag '{t}': 1 to 255 characters, without '/' or ','."
        )));
    }
    Ok(())
}

/// Maps a failed insert to 409 when it hit a unique constraint.
pub(crate) fn conflict(
    kind: &'static str,
    detail: String,
) -> impl FnOnce(ferrostack_db::sqlx::Error) -> IdentityError {
    move |e| {
        if ferrostack_db::is_unique_violation(&e) {
            IdentityError::Conflict { kind, detail }
        } else {
            e.into()
        }
    }
}

impl Identity {
    /// The domain a new resource lands in when the request names none: the caller's.
    fn default_domain_of(&self, ctx: &AuthContext) -> String {
        match &ctx.scope {
            ferrostack_common::Scope::Project { domain_id, .. } => domain_id.clone(),
            ferrostack_common::Scope::Domain { id, .. } => id.clone(),
            _ => ctx.user_domain_id.clone(),
        }
    }

    async fn existing_domain(&self, id: &str) -> Result<Domain> {
        self.store
            .domain(id)
            .await?
            .ok_or_else(|| IdentityError::not_found("domain", id))
    }

    // ---- domains ----

    pub fn prepare_domain(&self, body: &Value) -> Result<Domain> {
        let i = Input::from_body(body, "domain")?;
        let tags = match i.raw("tags") {
            Some(t) => validate_tags(t)?,
            None => vec![],
        };
        let mut options = Extra::new();
        merge_options(&mut options, i.object("options")?, &[])?;
        Ok(Domain {
            id: match i.string("explicit_domain_id", 64)? {
                Some(id) => id,
                None => new_id(),
            },
            name: i.required("name", 64)?,
            description: i.string("description", 65535)?.unwrap_or_default(),
            enabled: i.boolean("enabled")?.unwrap_or(true),
            tags,
            options,
            extra: i.extra(&[
                "id",
                "name",
                "description",
                "enabled",
                "tags",
                "options",
                "explicit_domain_id",
            ]),
        })
    }

    pub async fn create_domain(&self, d: &Domain) -> Result<()> {
        self.store.insert_domain(d).await.map_err(conflict(
            "domain",
            format!("Duplicate entry found with name {}", d.name),
        ))?;
        self.changed().await
    }

    pub async fn update_domain(&self, id: &str, body: &Value) -> Result<Domain> {
        let mut d = self.existing_domain(id).await?;
        let i = Input::from_body(body, "domain")?;
        if let Some(name) = i.string("name", 64)? {
            d.name = name;
        }
        if let Some(desc) = i.string("description", 65535)? {
            d.description = desc;
        }
        let was_enabled = d.enabled;
        if let Some(e) = i.boolean("enabled")? {
            d.enabled = e;
        }
        if let Some(t) = i.raw("tags") {
            d.tags = validate_tags(t)?;
        }
        merge_options(&mut d.options, i.object("options")?, &[])?;
        d.extra
            .extend(i.extra(&["id", "name", "description", "enabled", "tags", "options"]));
        self.store.update_domain(&d).await.map_err(conflict(
            "domain",
            format!("Duplicate entry found with name {}", d.name),
        ))?;
        if was_enabled && !d.enabled {
            self.add_revocation(Revocation {
                domain_id: Some(d.id.clone()),
                issued_before: now_micros(),
                ..Default::default()
            })
            .await?;
        }
        self.changed().await?;
        Ok(d)
    }

    pub async fn delete_domain(&self, id: &str) -> Result<()> {
        let d = self.existing_domain(id).await?;
        if d.enabled {
            return Err(IdentityError::ForbiddenMessage(
                "Cannot delete a domain that is enabled, please disable it first.".into(),
            ));
        }
        self.store.delete_domain(id).await?;
        self.changed().await
    }

    // ---- projects ----

    pub async fn prepare_project(&self, ctx: &AuthContext, body: &Value) -> Result<Project> {
        let i = Input::from_body(body, "project")?;
        if i.boolean("is_domain")? == Some(true) {
            // The HTTP layer sends these to `prepare_domain_project`.
            return Err(IdentityError::bad(
                "A project acting as a domain is created as a domain.",
            ));
        }
        let parent_id = i.string("parent_id", 64)?;
        let mut domain_id = i.string("domain_id", 64)?;
        if let Some(pid) = &parent_id {
            // A domain id given as parent means "top-level project in that domain".
            if self.store.domain(pid).await?.is_some() {
                domain_id.get_or_insert(pid.clone());
            } else {
                let parent = self
                    .store
                    .project(pid)
                    .await?
                    .ok_or_else(|| IdentityError::not_found("project", pid))?;
                if domain_id.as_deref().is_some_and(|d| d != parent.domain_id) {
                    return Err(IdentityError::bad(
                        "Cannot create project, the parent project is in a different domain.",
                    ));
                }
                domain_id = Some(parent.domain_id);
            }
        }
        let domain_id = domain_id.unwrap_or_else(|| self.default_domain_of(ctx));
        self.existing_domain(&domain_id).await?;
        let tags = match i.raw("tags") {
            Some(t) => validate_tags(t)?,
            None => vec![],
        };
        let mut options = Extra::new();
        merge_options(&mut options, i.object("options")?, &["immutable"])?;
        let parent_id = parent_id.filter(|p| p != &domain_id);
        Ok(Project {
            id: new_id(),
            name: i.required("name", 64)?,
            domain_id,
            parent_id,
            description: i.string("description", 65535)?.unwrap_or_default(),
            enabled: i.boolean("enabled")?.unwrap_or(true),
            tags,
            options,
            extra: i.extra(&[
                "id",
                "name",
                "domain_id",
                "parent_id",
                "description",
                "enabled",
                "tags",
                "options",
                "is_domain",
            ]),
        })
    }

    pub async fn create_project(&self, p: &Project) -> Result<()> {
        self.store.insert_project(p).await.map_err(conflict(
            "project",
            format!(
                "Duplicate entry found with name {} in domain {}",
                p.name, p.domain_id
            ),
        ))?;
        self.changed().await
    }

    pub async fn existing_project(&self, id: &str) -> Result<Project> {
        self.store
            .project(id)
            .await?
            .ok_or_else(|| IdentityError::not_found("project", id))
    }

    pub async fn update_project(&self, mut p: Project, body: &Value) -> Result<Project> {
        let i = Input::from_body(body, "project")?;
        if i.has("domain_id") && i.string("domain_id", 64)?.as_deref() != Some(p.domain_id.as_str())
        {
            return Err(IdentityError::bad("Update of `domain_id` is not allowed."));
        }
        if i.has("parent_id")
            && i.string("parent_id", 64)? != p.parent_id
            && i.string("parent_id", 64)?.as_deref() != Some(p.domain_id.as_str())
        {
            return Err(IdentityError::ForbiddenMessage(
                "Update of `parent_id` is not allowed.".into(),
            ));
        }
        if i.has("is_domain") && i.boolean("is_domain")? != Some(false) {
            return Err(IdentityError::bad("Update of `is_domain` is not allowed."));
        }
        if let Some(name) = i.string("name", 64)? {
            p.name = name;
        }
        if let Some(desc) = i.string("description", 65535)? {
            p.description = desc;
        }
        let was_enabled = p.enabled;
        if let Some(e) = i.boolean("enabled")? {
            p.enabled = e;
        }
        if let Some(t) = i.raw("tags") {
            p.tags = validate_tags(t)?;
        }
        merge_options(&mut p.options, i.object("options")?, &["immutable"])?;
        p.extra.extend(i.extra(&[
            "id",
            "name",
            "domain_id",
            "parent_id",
            "description",
            "enabled",
            "tags",
            "options",
            "is_domain",
        ]));
        self.save_project(&p).await?;
        if was_enabled && !p.enabled {
            self.add_revocation(Revocation {
                project_id: Some(p.id.clone()),
                issued_before: now_micros(),
                ..Default::default()
            })
            .await?;
        }
        Ok(p)
    }

    pub async fn save_project(&self, p: &Project) -> Result<()> {
        self.store.update_project(p).await.map_err(conflict(
            "project",
            format!(
                "Duplicate entry found with name {} in domain {}",
                p.name, p.domain_id
            ),
        ))?;
        self.changed().await
    }

    pub async fn delete_project(&self, p: &Project) -> Result<()> {
        if !self.store.child_projects(&p.id).await?.is_empty() {
            return Err(IdentityError::ForbiddenMessage(format!(
                "Cannot delete the project {} since it is not a leaf in the hierarchy.",
                p.id
            )));
        }
        self.store.delete_project(&p.id).await?;
        self.add_revocation(Revocation {
            project_id: Some(p.id.clone()),
            issued_before: now_micros(),
            ..Default::default()
        })
        .await
    }

    // ---- users ----

    pub async fn prepare_user(
        &self,
        ctx: &AuthContext,
        body: &Value,
    ) -> Result<(User, Option<String>)> {
        let i = Input::from_body(body, "user")?;
        let domain_id = i
            .string("domain_id", 64)?
            .unwrap_or_else(|| self.default_domain_of(ctx));
        self.existing_domain(&domain_id).await?;
        let mut options = Extra::new();
        merge_options(&mut options, i.object("options")?, USER_OPTIONS)?;
        let password = i.string("password", self.config.max_password_length + 1)?;
        if let Some(pw) = &password {
            self.check_password_rules(pw)?;
        }
        let default_project_id = i.string("default_project_id", 64)?;
        if let Some(p) = &default_project_id {
            let project = self.existing_project(p).await?;
            if project.domain_id != domain_id && self.store.domain(p).await?.is_some() {
                return Err(IdentityError::bad("Default project cannot be a domain."));
            }
        }
        let now = now_micros();
        let user = User {
            id: new_id(),
            name: i.required("name", 255)?,
            domain_id,
            enabled: i.boolean("enabled")?.unwrap_or(true),
            default_project_id,
            options,
            extra: i.extra(&[
                "id",
                "name",
                "domain_id",
                "enabled",
                "default_project_id",
                "options",
                "password",
                "password_expires_at",
            ]),
            created_at: now,
            last_active_at: None,
            failed_auth_count: 0,
            failed_auth_at: None,
            password_hash: None,
            password_created_at: None,
            password_expires_at: None,
            password_self_service: false,
        };
        Ok((user, password))
    }

    pub async fn create_user(&self, mut user: User, password: Option<String>) -> Result<User> {
        if let Some(pw) = password {
            let now = now_micros();
            user.password_hash =
                Some(passwords::hash(&pw, self.config.password_hash_rounds).await?);
            user.password_created_at = Some(now);
            user.password_expires_at = self.password_expiry(&user, now);
        }
        self.store.insert_user(&user).await.map_err(conflict(
            "user",
            format!(
                "Duplicate entry found with name {} at domain ID {}",
                user.name, user.domain_id
            ),
        ))?;
        self.changed().await?;
        Ok(user)
    }

    pub async fn existing_user(&self, id: &str) -> Result<User> {
        self.store
            .user(id)
            .await?
            .ok_or_else(|| IdentityError::not_found("user", id))
    }

    pub async fn update_user(&self, mut u: User, body: &Value) -> Result<User> {
        let i = Input::from_body(body, "user")?;
        if i.has("domain_id") && i.string("domain_id", 64)?.as_deref() != Some(u.domain_id.as_str())
        {
            return Err(IdentityError::bad("Update of `domain_id` is not allowed."));
        }
        if let Some(name) = i.string("name", 255)? {
            u.name = name;
        }
        let was_enabled = u.enabled;
        if let Some(e) = i.boolean("enabled")? {
            u.enabled = e;
        }
        if i.has("default_project_id") {
            u.default_project_id = i.string("default_project_id", 64)?;
            if let Some(p) = &u.default_project_id {
                self.existing_project(p).await?;
            }
        }
        merge_options(&mut u.options, i.object("options")?, USER_OPTIONS)?;
        for (k, v) in i.extra(&[
            "id",
            "name",
            "domain_id",
            "enabled",
            "default_project_id",
            "options",
            "password",
            "password_expires_at",
        ]) {
            u.extra.insert(k, v);
        }
        let password = i.string("password", self.config.max_password_length + 1)?;
        if let Some(pw) = &password {
            self.check_password_rules(pw)?;
            // An administrator's reset is not held to the history rule (Keystone neither).
        }
        self.store.update_user(&u).await.map_err(conflict(
            "user",
            format!(
                "Duplicate entry found with name {} at domain ID {}",
                u.name, u.domain_id
            ),
        ))?;
        if let Some(pw) = password {
            let now = now_micros();
            let hash = passwords::hash(&pw, self.config.password_hash_rounds).await?;
            self.store
                .set_password(&u.id, &hash, now, self.password_expiry(&u, now), false)
                .await?;
            self.revoke_user_tokens(&u.id).await?;
        } else if was_enabled && !u.enabled {
            self.revoke_user_tokens(&u.id).await?;
        }
        self.changed().await?;
        self.existing_user(&u.id).await
    }

    pub async fn delete_user(&self, id: &str) -> Result<()> {
        self.store.delete_user(id).await?;
        self.revoke_user_tokens(id).await
    }

    // ---- groups ----

    pub async fn prepare_group(&self, ctx: &AuthContext, body: &Value) -> Result<Group> {
        let i = Input::from_body(body, "group")?;
        let domain_id = i
            .string("domain_id", 64)?
            .unwrap_or_else(|| self.default_domain_of(ctx));
        self.existing_domain(&domain_id).await?;
        Ok(Group {
            id: new_id(),
            name: i.required("name", 64)?,
            domain_id,
            description: i.string("description", 65535)?.unwrap_or_default(),
            extra: i.extra(&["id", "name", "domain_id", "description"]),
        })
    }

    pub async fn create_group(&self, g: &Group) -> Result<()> {
        self.store.insert_group(g).await.map_err(conflict(
            "group",
            format!(
                "Duplicate entry found with name {} at domain ID {}",
                g.name, g.domain_id
            ),
        ))?;
        self.changed().await
    }

    pub async fn existing_group(&self, id: &str) -> Result<Group> {
        self.store
            .group(id)
            .await?
            .ok_or_else(|| IdentityError::not_found("group", id))
    }

    pub async fn update_group(&self, mut g: Group, body: &Value) -> Result<Group> {
        let i = Input::from_body(body, "group")?;
        if i.has("domain_id") && i.string("domain_id", 64)?.as_deref() != Some(g.domain_id.as_str())
        {
            return Err(IdentityError::bad("Update of `domain_id` is not allowed."));
        }
        if let Some(n) = i.string("name", 64)? {
            g.name = n;
        }
        if let Some(d) = i.string("description", 65535)? {
            g.description = d;
        }
        g.extra
            .extend(i.extra(&["id", "name", "domain_id", "description"]));
        self.store.update_group(&g).await.map_err(conflict(
            "group",
            format!("Duplicate entry found with name {}", g.name),
        ))?;
        self.changed().await?;
        Ok(g)
    }

    pub async fn delete_group(&self, id: &str) -> Result<()> {
        self.store.delete_group(id).await?;
        self.changed().await
    }

    pub async fn add_user_to_group(&self, group_id: &str, user_id: &str) -> Result<()> {
        self.store.add_member(group_id, user_id).await?;
        self.changed().await
    }

    pub async fn remove_user_from_group(&self, group_id: &str, user_id: &str) -> Result<()> {
        if !self.store.remove_member(group_id, user_id).await? {
            return Err(IdentityError::not_found(
                "user in group",
                format!("{user_id} in {group_id}"),
            ));
        }
        self.changed().await
    }

    // ---- roles ----

    pub async fn prepare_role(&self, body: &Value) -> Result<Role> {
        let i = Input::from_body(body, "role")?;
        let domain_id = i.string("domain_id", 64)?;
        if let Some(d) = &domain_id {
            self.existing_domain(d).await?;
        }
        let mut options = Extra::new();
        merge_options(&mut options, i.object("options")?, &["immutable"])?;
        Ok(Role {
            id: new_id(),
            name: i.required("name", 255)?,
            domain_id,
            description: i.string("description", 255)?.unwrap_or_default(),
            options,
            extra: i.extra(&["id", "name", "domain_id", "description", "options"]),
        })
    }

    pub async fn create_role(&self, r: &Role) -> Result<()> {
        self.store.insert_role(r).await.map_err(conflict(
            "role",
            format!("Duplicate entry found with name {}", r.name),
        ))?;
        self.changed().await
    }

    pub async fn existing_role(&self, id: &str) -> Result<Role> {
        self.store
            .role(id)
            .await?
            .ok_or_else(|| IdentityError::not_found("role", id))
    }

    fn immutable(options: &Extra) -> bool {
        options.get("immutable").and_then(Value::as_bool) == Some(true)
    }

    pub async fn update_role(&self, mut r: Role, body: &Value) -> Result<Role> {
        let i = Input::from_body(body, "role")?;
        let mut new_options = r.options.clone();
        merge_options(&mut new_options, i.object("options")?, &["immutable"])?;
        if Self::immutable(&r.options) && Self::immutable(&new_options) {
            return Err(IdentityError::ForbiddenMessage(format!(
                "Role {} is immutable.",
                r.id
            )));
        }
        if i.has("domain_id") && i.string("domain_id", 64)? != r.domain_id {
            return Err(IdentityError::bad("Update of `domain_id` is not allowed."));
        }
        if let Some(n) = i.string("name", 255)? {
            r.name = n;
        }
        if let Some(d) = i.string("description", 255)? {
            r.description = d;
        }
        r.options = new_options;
        r.extra
            .extend(i.extra(&["id", "name", "domain_id", "description", "options"]));
        self.store.update_role(&r).await.map_err(conflict(
            "role",
            format!("Duplicate entry found with name {}", r.name),
        ))?;
        self.changed().await?;
        Ok(r)
    }

    pub async fn delete_role(&self, r: &Role) -> Result<()> {
        if Self::immutable(&r.options) {
            return Err(IdentityError::ForbiddenMessage(format!(
                "Role {} is immutable.",
                r.id
            )));
        }
        self.store.delete_role(&r.id).await?;
        self.changed().await
    }

    pub async fn create_implied_role(&self, prior: &str, implied: &str) -> Result<()> {
        self.existing_role(prior).await?;
        let implied_role = self.existing_role(implied).await?;
        if prior == implied
            || self
                .expand_implied([implied.to_string()].into())
                .await?
                .contains(prior)
        {
            return Err(IdentityError::ForbiddenMessage(
                "Creating this implied role would create a loop.".into(),
            ));
        }
        if implied_role.name == "admin" {
            return Err(IdentityError::ForbiddenMessage(
                "The admin role cannot be implied.".into(),
            ));
        }
        if !self
            .store
            .implied_roles()
            .await?
            .iter()
            .any(|(p, i)| p == prior && i == implied)
        {
            self.store.add_implied_role(prior, implied).await?;
        }
        self.changed().await
    }

    pub async fn delete_implied_role(&self, prior: &str, implied: &str) -> Result<()> {
        if !self.store.delete_implied_role(prior, implied).await? {
            return Err(IdentityError::not_found(
                "implied role",
                format!("{prior} implies {implied}"),
            ));
        }
        self.changed().await
    }

    // ---- grants ----

    /// Checks that everything an assignment names exists (404 naming the missing piece).
    pub async fn check_assignment_parts(&self, a: &Assignment) -> Result<()> {
        self.existing_role(&a.role_id).await?;
        match a.actor_type {
            ActorType::User => drop(self.existing_user(&a.actor_id).await?),
            ActorType::Group => drop(self.existing_group(&a.actor_id).await?),
        }
        match a.target_type {
            TargetType::Project => drop(self.existing_project(&a.target_id).await?),
            TargetType::Domain => drop(self.existing_domain(&a.target_id).await?),
            TargetType::System => {}
        }
        Ok(())
    }

    pub async fn grant(&self, a: &Assignment) -> Result<()> {
        self.check_assignment_parts(a).await?;
        self.store.grant(a).await?;
        self.changed().await
    }

    pub async fn revoke_grant(&self, a: &Assignment) -> Result<()> {
        self.check_assignment_parts(a).await?;
        if !self.store.revoke(a).await? {
            return Err(IdentityError::not_found(
                "role assignment",
                a.role_id.clone(),
            ));
        }
        self.changed().await
    }

    // ---- catalog ----

    pub fn prepare_region(&self, body: &Value, id_from_path: Option<String>) -> Result<Region> {
        let i = Input::from_body(body, "region")?;
        let id = match (id_from_path, i.string("id", 255)?) {
            (Some(p), Some(b)) if p != b => {
                return Err(IdentityError::bad(
                    "Conflicting region IDs specified: the id in the URL and the body differ.",
                ))
            }
            (Some(p), _) => p,
            (None, Some(b)) => b,
            (None, None) => new_id(),
        };
        Ok(Region {
            id,
            description: i.string("description", 255)?.unwrap_or_default(),
            parent_region_id: i.string("parent_region_id", 255)?,
            extra: i.extra(&["id", "description", "parent_region_id"]),
        })
    }

    pub async fn create_region(&self, r: &Region) -> Result<()> {
        if let Some(parent) = &r.parent_region_id {
            if self.store.region(parent).await?.is_none() {
                return Err(IdentityError::not_found("region", parent));
            }
        }
        self.store
            .insert_region(r)
            .await
            .map_err(conflict("region", format!("Duplicate ID, {}", r.id)))?;
        self.changed().await
    }

    pub async fn update_region(&self, id: &str, body: &Value) -> Result<Region> {
        let mut r = self
            .store
            .region(id)
            .await?
            .ok_or_else(|| IdentityError::not_found("region", id))?;
        let i = Input::from_body(body, "region")?;
        if let Some(d) = i.string("description", 255)? {
            r.description = d;
        }
        if i.has("parent_region_id") {
            r.parent_region_id = i.string("parent_region_id", 255)?;
            if r.parent_region_id.as_deref() == Some(id) {
                return Err(IdentityError::bad("A region cannot be its own parent."));
            }
        }
        r.extra
            .extend(i.extra(&["id", "description", "parent_region_id"]));
        self.store.update_region(&r).await?;
        self.changed().await?;
        Ok(r)
    }

    pub fn prepare_service(&self, body: &Value) -> Result<Service> {
        let i = Input::from_body(body, "service")?;
        Ok(Service {
            id: new_id(),
            service_type: i.required("type", 255)?,
            name: i.string("name", 255)?.unwrap_or_default(),
            description: i.string("description", 65535)?.unwrap_or_default(),
            enabled: i.boolean("enabled")?.unwrap_or(true),
            extra: i.extra(&["id", "type", "name", "description", "enabled"]),
        })
    }

    pub async fn update_service(&self, id: &str, body: &Value) -> Result<Service> {
        let mut s = self
            .store
            .service(id)
            .await?
            .ok_or_else(|| IdentityError::not_found("service", id))?;
        let i = Input::from_body(body, "service")?;
        if let Some(t) = i.string("type", 255)? {
            s.service_type = t;
        }
        if let Some(n) = i.string("name", 255)? {
            s.name = n;
        }
        if let Some(d) = i.string("description", 65535)? {
            s.description = d;
        }
        if let Some(e) = i.boolean("enabled")? {
            s.enabled = e;
        }
        s.extra
            .extend(i.extra(&["id", "type", "name", "description", "enabled"]));
        self.store.update_service(&s).await?;
        self.changed().await?;
        Ok(s)
    }

    pub async fn prepare_endpoint(
        &self,
        body: &Value,
        current: Option<Endpoint>,
    ) -> Result<Endpoint> {
        let i = Input::from_body(body, "endpoint")?;
        let mut e = current.unwrap_or(Endpoint {
            id: new_id(),
            service_id: String::new(),
            interface: String::new(),
            region_id: None,
            url: String::new(),
            enabled: true,
            extra: Extra::new(),
        });
        let creating = e.service_id.is_empty();
        if let Some(s) = if creating {
            Some(i.required("service_id", 64)?)
        } else {
            i.string("service_id", 64)?
        } {
            self.store
                .service(&s)
                .await?
                .ok_or_else(|| IdentityError::not_found("service", &s))?;
            e.service_id = s;
        }
        if let Some(iface) = if creating {
            Some(i.required("interface", 10)?)
        } else {
            i.string("interface", 10)?
        } {
            if !["public", "internal", "admin"].contains(&iface.as_str()) {
                return Err(IdentityError::bad(
                    "Invalid input for field 'interface': must be public, internal or admin.",
                ));
            }
            e.interface = iface;
        }
        if let Some(u) = if creating {
            Some(i.required("url", 225)?)
        } else {
            i.string("url", 225)?
        } {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(IdentityError::bad(
                    "Invalid input for field 'url': must be an http(s) URL.",
                ));
            }
            e.url = u;
        }
        // Strict boolean first: a string "False" is a 400 before anything else happens.
        let enabled = i.boolean("enabled")?;
        // `region` is the deprecated spelling of `region_id`; as in Keystone, a region named
        // that way is created when missing, while an unknown `region_id` is a 400.
        let mut create_region = None;
        if let Some(r) = i.string("region_id", 255)? {
            if self.store.region(&r).await?.is_none() {
                return Err(IdentityError::bad(format!(
                    "Invalid input for field 'region_id': region {r} does not exist."
                )));
            }
            e.region_id = Some(r);
        } else if let Some(r) = i.string("region", 255)? {
            if self.store.region(&r).await?.is_none() {
                create_region = Some(r.clone());
            }
            e.region_id = Some(r);
        } else if i.has("region_id") || i.has("region") {
            e.region_id = None;
        }
        if let Some(en) = enabled {
            e.enabled = en;
        }
        e.extra.extend(i.extra(&[
            "id",
            "service_id",
            "interface",
            "url",
            "region_id",
            "region",
            "enabled",
        ]));
        if let Some(id) = create_region {
            let region = Region {
                id,
                description: String::new(),
                parent_region_id: None,
                extra: Extra::new(),
            };
            if let Err(err) = self.store.insert_region(&region).await {
                // Created meanwhile by another request: just as good.
                if !ferrostack_db::is_unique_violation(&err) {
                    return Err(err.into());
                }
            }
        }
        Ok(e)
    }

    // ---- application credentials ----

    pub async fn create_app_cred(
        &self,
        ctx: &AuthContext,
        user_id: &str,
        body: &Value,
    ) -> Result<(AppCred, String)> {
        let i = Input::from_body(body, "application_credential")?;
        let Some(project_id) = ctx.project_id().map(str::to_string) else {
            return Err(IdentityError::bad(
                "Application credentials can only be created with a project-scoped token.",
            ));
        };
        if ctx.application_credential_id.is_some() {
            if let Some(c) = self
                .store
                .app_cred(ctx.application_credential_id.as_deref().unwrap_or_default())
                .await?
            {
                if !c.unrestricted {
                    return Err(IdentityError::ForbiddenMessage("Using method 'application_credential' is not allowed for managing additional application credentials.".into()));
                }
            }
        }
        let name = i.required("name", 255)?;
        let secret = match i.string("secret", 4096)? {
            Some(s) if !s.is_empty() => s,
            _ => generate_secret(),
        };
        let expires_at = match i.string("expires_at", 64)? {
            Some(t) => Some(parse_iso(&t).ok_or_else(|| {
                IdentityError::bad(format!(
                    "Invalid input for field 'expires_at': '{t}' is not a date-time."
                ))
            })?),
            None => None,
        };
        if expires_at.is_some_and(|e| e <= now_micros()) {
            return Err(IdentityError::bad(
                "Invalid input for field 'expires_at': the expiration time is in the past.",
            ));
        }
        let held = &ctx.role_ids;
        let mut roles = Vec::new();
        match i.raw("roles") {
            None | Some(Value::Null) => roles.extend(held.iter().cloned()),
            Some(Value::Array(items)) if items.is_empty() => roles.extend(held.iter().cloned()),
            Some(Value::Array(items)) => {
                for item in items {
                    let role = match (
                        item.get("id").and_then(Value::as_str),
                        item.get("name").and_then(Value::as_str),
                    ) {
                        (Some(id), _) => self.store.role(id).await?,
                        (None, Some(name)) => {
                            self.store
                                .role_by_name(name, item.get("domain_id").and_then(Value::as_str))
                                .await?
                        }
                        _ => {
                            return Err(IdentityError::bad(
                                "Invalid input for field 'roles': each role needs an id or a name.",
                            ))
                        }
                    };
                    let role =
                        role.ok_or_else(|| IdentityError::not_found("role", item.to_string()))?;
                    if !held.contains(&role.id) {
                        return Err(IdentityError::ForbiddenMessage(format!(
                            "Cannot delegate role {}: the user does not hold it on the project.",
                            role.name
                        )));
                    }
                    if !roles.contains(&role.id) {
                        roles.push(role.id);
                    }
                }
            }
            Some(_) => {
                return Err(IdentityError::bad(
                    "Invalid input for field 'roles': expected a list.",
                ))
            }
        }
        let access_rules = self
            .resolve_access_rules(user_id, i.raw("access_rules"))
            .await?;
        let cred = AppCred {
            id: new_id(),
            name: name.clone(),
            user_id: user_id.to_string(),
            project_id,
            secret_hash: passwords::hash(&secret, self.config.password_hash_rounds).await?,
            description: i.string("description", 65535)?,
            expires_at,
            unrestricted: i.boolean("unrestricted")?.unwrap_or(false),
            roles,
            access_rules,
        };
        self.store.insert_app_cred(&cred).await.map_err(conflict(
            "application_credential",
            format!("Duplicate entry found with name {name}"),
        ))?;
        self.changed().await?;
        Ok((cred, secret))
    }

    pub async fn delete_app_cred(&self, id: &str) -> Result<()> {
        self.store.delete_app_cred(id).await?;
        self.add_revocation(Revocation {
            app_cred_id: Some(id.to_string()),
            issued_before: now_micros(),
            ..Default::default()
        })
        .await
    }
}

/// A random secret for an application credential, as Keystone generates when none is given.
pub fn generate_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut b = [0u8; 48];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}
