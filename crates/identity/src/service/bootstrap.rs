//! `ferrostack admin bootstrap`: what `keystone-manage bootstrap` does, idempotently. The
//! Default domain, the persona roles with their implication chain (admin → manager → member →
//! reader, plus service), an admin project and user holding admin on the project and the
//! system, a region, and the catalog entries of the services this process serves.

use ferrostack_common::time::now_micros;

use crate::error::Result;
use crate::model::*;
use crate::service::{new_id, passwords, Identity};

pub const DEFAULT_DOMAIN_ID: &str = "default";

/// What to create.
pub struct BootstrapSpec {
    pub admin_user: String,
    pub admin_password: String,
    pub admin_project: String,
    pub region: String,
    /// (service type, service name, public URL) for every service in the catalog.
    pub services: Vec<(String, String, String)>,
}

/// A user with a role on a project (the demo account `ferrostack up` makes).
pub struct ProjectMember<'a> {
    pub user: &'a str,
    pub password: &'a str,
    pub project: &'a str,
    pub role: &'a str,
}

impl Identity {
    async fn ensure_role(&self, name: &str) -> Result<Role> {
        if let Some(r) = self.store.role_by_name(name, None).await? {
            return Ok(r);
        }
        let r = Role {
            id: new_id(),
            name: name.into(),
            domain_id: None,
            description: String::new(),
            options: Extra::new(),
            extra: Extra::new(),
        };
        self.store.insert_role(&r).await?;
        Ok(r)
    }

    async fn ensure_project(&self, name: &str) -> Result<Project> {
        if let Some(p) = self.store.project_by_name(DEFAULT_DOMAIN_ID, name).await? {
            return Ok(p);
        }
        let p = Project {
            id: new_id(),
            name: name.into(),
            domain_id: DEFAULT_DOMAIN_ID.into(),
            parent_id: None,
            description: format!("Bootstrap project {name}"),
            enabled: true,
            tags: vec![],
            options: Extra::new(),
            extra: Extra::new(),
        };
        self.store.insert_project(&p).await?;
        Ok(p)
    }

    /// Creates the user, or resets its password to `password` when it exists (so re-running
    /// bootstrap recovers a lost admin password, as keystone-manage does).
    async fn ensure_user(&self, name: &str, password: &str) -> Result<User> {
        let now = now_micros();
        let hash = passwords::hash(password, self.config.password_hash_rounds).await?;
        if let Some(u) = self.store.user_by_name(DEFAULT_DOMAIN_ID, name).await? {
            let current_ok = match &u.password_hash {
                Some(h) => passwords::verify(password, h).await,
                None => false,
            };
            if !current_ok {
                self.store
                    .set_password(&u.id, &hash, now, None, false)
                    .await?;
            }
            self.store.record_auth_success(&u.id, now).await?;
            return Ok(u);
        }
        let u = User {
            id: new_id(),
            name: name.into(),
            domain_id: DEFAULT_DOMAIN_ID.into(),
            enabled: true,
            default_project_id: None,
            // Bootstrap accounts are operators' keys: never expire or lock them out.
            options: [
                ("ignore_password_expiry".to_string(), true.into()),
                ("ignore_lockout_failure_attempts".to_string(), true.into()),
                (
                    "ignore_change_password_upon_first_use".to_string(),
                    true.into(),
                ),
            ]
            .into_iter()
            .collect(),
            extra: Extra::new(),
            created_at: now,
            last_active_at: None,
            failed_auth_count: 0,
            failed_auth_at: None,
            password_hash: Some(hash),
            password_created_at: Some(now),
            password_expires_at: None,
            password_self_service: false,
        };
        self.store.insert_user(&u).await?;
        Ok(u)
    }

    pub async fn bootstrap(&self, spec: &BootstrapSpec) -> Result<()> {
        if self.store.domain(DEFAULT_DOMAIN_ID).await?.is_none() {
            self.store
                .insert_domain(&Domain {
                    id: DEFAULT_DOMAIN_ID.into(),
                    name: "Default".into(),
                    description: "The default domain".into(),
                    enabled: true,
                    tags: vec![],
                    options: Extra::new(),
                    extra: Extra::new(),
                })
                .await?;
        }
        let admin = self.ensure_role("admin").await?;
        let manager = self.ensure_role("manager").await?;
        let member = self.ensure_role("member").await?;
        let reader = self.ensure_role("reader").await?;
        self.ensure_role("service").await?;
        let existing = self.store.implied_roles().await?;
        for (prior, implied) in [(&admin, &manager), (&manager, &member), (&member, &reader)] {
            if !existing
                .iter()
                .any(|(p, i)| p == &prior.id && i == &implied.id)
            {
                self.store.add_implied_role(&prior.id, &implied.id).await?;
            }
        }
        let project = self.ensure_project(&spec.admin_project).await?;
        let user = self
            .ensure_user(&spec.admin_user, &spec.admin_password)
            .await?;
        for (tt, tid) in [
            (TargetType::Project, project.id.clone()),
            (TargetType::System, "all".to_string()),
        ] {
            self.store
                .grant(&Assignment {
                    actor_type: ActorType::User,
                    actor_id: user.id.clone(),
                    target_type: tt,
                    target_id: tid,
                    role_id: admin.id.clone(),
                    inherited: false,
                })
                .await?;
        }
        if self.store.region(&spec.region).await?.is_none() {
            self.store
                .insert_region(&Region {
                    id: spec.region.clone(),
                    description: String::new(),
                    parent_region_id: None,
                    extra: Extra::new(),
                })
                .await?;
        }
        self.register_services(&spec.region, &spec.services).await?;
        self.changed().await
    }

    /// Makes the catalog list exactly these URLs for these services (public, internal and
    /// admin interfaces alike, as a single-listener deployment has one URL per service).
    pub async fn register_services(
        &self,
        region: &str,
        services: &[(String, String, String)],
    ) -> Result<()> {
        let existing = self.store.services().await?;
        let endpoints = self.store.endpoints().await?;
        for (stype, name, url) in services {
            let service = match existing.iter().find(|s| &s.service_type == stype) {
                Some(s) => s.clone(),
                None => {
                    let s = Service {
                        id: new_id(),
                        service_type: stype.clone(),
                        name: name.clone(),
                        description: String::new(),
                        enabled: true,
                        extra: Extra::new(),
                    };
                    self.store.insert_service(&s).await?;
                    s
                }
            };
            for interface in ["public", "internal", "admin"] {
                match endpoints.iter().find(|e| {
                    e.service_id == service.id
                        && e.interface == interface
                        && e.region_id.as_deref() == Some(region)
                }) {
                    Some(e) if &e.url == url => {}
                    Some(e) => {
                        let mut e = e.clone();
                        e.url = url.clone();
                        self.store.update_endpoint(&e).await?;
                    }
                    None => {
                        self.store
                            .insert_endpoint(&Endpoint {
                                id: new_id(),
                                service_id: service.id.clone(),
                                interface: interface.into(),
                                region_id: Some(region.into()),
                                url: url.clone(),
                                enabled: true,
                                extra: Extra::new(),
                            })
                            .await?;
                    }
                }
            }
        }
        self.changed().await
    }

    /// Ensures `user` exists with `password` and holds `role` on `project` (all in Default).
    pub async fn ensure_member(&self, m: &ProjectMember<'_>) -> Result<(User, Project)> {
        let project = self.ensure_project(m.project).await?;
        let user = self.ensure_user(m.user, m.password).await?;
        let role = self.ensure_role(m.role).await?;
        self.store
            .grant(&Assignment {
                actor_type: ActorType::User,
                actor_id: user.id.clone(),
                target_type: TargetType::Project,
                target_id: project.id.clone(),
                role_id: role.id,
                inherited: false,
            })
            .await?;
        self.changed().await?;
        Ok((user, project))
    }
}
