//! All SQL of the Identity service. Methods map rows to [`crate::model`] records and back;
//! they do no validation and no policy (the service layer does), and report database errors
//! as they are so the service can tell a duplicate (409) from a failure (500).

use ferrostack_db::sqlx::{self, any::AnyRow, Row};
use ferrostack_db::{Db, RowExt};

use crate::model::*;

mod domain_configs;
pub mod ep_filter;
mod oauth_consumers;

type R<T> = Result<T, sqlx::Error>;

fn map(s: String) -> Extra {
    serde_json::from_str(&s).unwrap_or_default()
}

fn strings(s: String) -> Vec<String> {
    serde_json::from_str(&s).unwrap_or_default()
}

fn text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

fn domain(r: AnyRow) -> Domain {
    Domain {
        id: r.get("id"),
        name: r.get("name"),
        description: r.get("description"),
        enabled: r.flag("enabled"),
        tags: strings(r.get("tags")),
        options: map(r.get("options")),
        extra: map(r.get("extra")),
    }
}

fn project(r: AnyRow) -> Project {
    Project {
        id: r.get("id"),
        name: r.get("name"),
        domain_id: r.get("domain_id"),
        parent_id: r.get("parent_id"),
        description: r.get("description"),
        enabled: r.flag("enabled"),
        tags: strings(r.get("tags")),
        options: map(r.get("options")),
        extra: map(r.get("extra")),
    }
}

fn user(r: AnyRow) -> User {
    User {
        id: r.get("id"),
        name: r.get("name"),
        domain_id: r.get("domain_id"),
        enabled: r.flag("enabled"),
        default_project_id: r.get("default_project_id"),
        options: map(r.get("options")),
        extra: map(r.get("extra")),
        created_at: r.get("created_at"),
        last_active_at: r.get("last_active_at"),
        failed_auth_count: r.get("failed_auth_count"),
        failed_auth_at: r.get("failed_auth_at"),
        password_hash: r.get("password_hash"),
        password_created_at: r.get("password_created_at"),
        password_expires_at: r.get("password_expires_at"),
        password_self_service: r.flag("password_self_service"),
    }
}

fn group(r: AnyRow) -> Group {
    Group {
        id: r.get("id"),
        name: r.get("name"),
        domain_id: r.get("domain_id"),
        description: r.get("description"),
        extra: map(r.get("extra")),
    }
}

fn role(r: AnyRow) -> Role {
    let domain_id: String = r.get("domain_id");
    Role {
        id: r.get("id"),
        name: r.get("name"),
        domain_id: (!domain_id.is_empty()).then_some(domain_id),
        description: r.get("description"),
        options: map(r.get("options")),
        extra: map(r.get("extra")),
    }
}

fn assignment(r: AnyRow) -> Assignment {
    let actor: String = r.get("actor_type");
    let target: String = r.get("target_type");
    Assignment {
        actor_type: if actor == "group" {
            ActorType::Group
        } else {
            ActorType::User
        },
        actor_id: r.get("actor_id"),
        target_type: match target.as_str() {
            "domain" => TargetType::Domain,
            "system" => TargetType::System,
            _ => TargetType::Project,
        },
        target_id: r.get("target_id"),
        role_id: r.get("role_id"),
        inherited: r.flag("inherited"),
    }
}

fn region(r: AnyRow) -> Region {
    Region {
        id: r.get("id"),
        description: r.get("description"),
        parent_region_id: r.get("parent_region_id"),
        extra: map(r.get("extra")),
    }
}

fn service(r: AnyRow) -> Service {
    Service {
        id: r.get("id"),
        service_type: r.get("type"),
        name: r.get("name"),
        description: r.get("description"),
        enabled: r.flag("enabled"),
        extra: map(r.get("extra")),
    }
}

fn endpoint(r: AnyRow) -> Endpoint {
    Endpoint {
        id: r.get("id"),
        service_id: r.get("service_id"),
        interface: r.get("interface"),
        region_id: r.get("region_id"),
        url: r.get("url"),
        enabled: r.flag("enabled"),
        extra: map(r.get("extra")),
    }
}

fn endpoint_group(r: AnyRow) -> EndpointGroup {
    EndpointGroup {
        id: r.get("id"),
        name: r.get("name"),
        description: r.get("description"),
        filters: map(r.get("filters")),
    }
}

fn policy_blob(r: AnyRow) -> PolicyBlob {
    PolicyBlob {
        id: r.get("id"),
        policy_type: r.get("type"),
        blob: r.get("blob"),
        extra: map(r.get("extra")),
    }
}

fn app_cred(r: AnyRow) -> AppCred {
    AppCred {
        id: r.get("id"),
        name: r.get("name"),
        user_id: r.get("user_id"),
        project_id: r.get("project_id"),
        secret_hash: r.get("secret_hash"),
        description: r.get("description"),
        expires_at: r.get("expires_at"),
        unrestricted: r.flag("unrestricted"),
        roles: strings(r.get("roles")),
        access_rules: serde_json::from_str(&r.get::<String, _>("access_rules")).unwrap_or_default(),
    }
}

fn trust(r: AnyRow) -> Trust {
    Trust {
        id: r.get("id"),
        trustor_user_id: r.get("trustor_user_id"),
        trustee_user_id: r.get("trustee_user_id"),
        project_id: r.get("project_id"),
        impersonation: r.flag("impersonation"),
        expires_at: r.get("expires_at"),
        remaining_uses: r.get("remaining_uses"),
        roles: strings(r.get("roles")),
        redelegation_count: r.get("redelegation_count"),
        extra: map(r.get("extra")),
    }
}

fn credential(r: AnyRow) -> Credential {
    Credential {
        id: r.get("id"),
        user_id: r.get("user_id"),
        project_id: r.get("project_id"),
        credential_type: r.get("type"),
        blob: r.get("blob"),
        extra: map(r.get("extra")),
    }
}

fn access_rule(r: AnyRow) -> AccessRule {
    AccessRule {
        id: r.get("id"),
        user_id: r.get("user_id"),
        service: r.get("service"),
        path: r.get("path"),
        method: r.get("method"),
    }
}

fn nonempty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn registered_limit(r: AnyRow) -> RegisteredLimit {
    RegisteredLimit {
        id: r.get("id"),
        service_id: r.get("service_id"),
        region_id: nonempty(r.get("region_id")),
        resource_name: r.get("resource_name"),
        default_limit: r.get("default_limit"),
        description: r.get("description"),
    }
}

fn limit(r: AnyRow) -> Limit {
    Limit {
        id: r.get("id"),
        project_id: r.get("project_id"),
        domain_id: r.get("domain_id"),
        service_id: r.get("service_id"),
        region_id: nonempty(r.get("region_id")),
        resource_name: r.get("resource_name"),
        resource_limit: r.get("resource_limit"),
        description: r.get("description"),
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    pub db: Db,
}

impl Store {
    pub fn new(db: Db) -> Store {
        Store { db }
    }

    fn pool(&self) -> &ferrostack_db::sqlx::AnyPool {
        self.db.pool()
    }

    // ---- revision: a counter every write bumps, so caches know when to drop entries ----

    pub async fn bump_revision(&self) -> R<i64> {
        sqlx::query("UPDATE revision SET value = value + 1 WHERE id = 1")
            .execute(self.pool())
            .await?;
        self.revision().await
    }

    pub async fn revision(&self) -> R<i64> {
        sqlx::query("SELECT value FROM revision WHERE id = 1")
            .fetch_one(self.pool())
            .await
            .map(|r| r.get(0))
    }

    // ---- domains ----

    pub async fn insert_domain(&self, d: &Domain) -> R<()> {
        sqlx::query("INSERT INTO domains (id, name, description, enabled, tags, options, extra, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)")
            .bind(&d.id).bind(&d.name).bind(&d.description).bind(d.enabled).bind(text(&d.tags)).bind(text(&d.options)).bind(text(&d.extra)).bind(ferrostack_common::time::now_micros())
            .execute(self.pool()).await.map(drop)
    }

    pub async fn update_domain(&self, d: &Domain) -> R<()> {
        sqlx::query("UPDATE domains SET name=$2, description=$3, enabled=$4, tags=$5, options=$6, extra=$7 WHERE id=$1")
            .bind(&d.id).bind(&d.name).bind(&d.description).bind(d.enabled).bind(text(&d.tags)).bind(text(&d.options)).bind(text(&d.extra))
            .execute(self.pool()).await.map(drop)
    }

    pub async fn domain(&self, id: &str) -> R<Option<Domain>> {
        Ok(sqlx::query("SELECT * FROM domains WHERE id=$1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(domain))
    }

    pub async fn domain_by_name(&self, name: &str) -> R<Option<Domain>> {
        Ok(sqlx::query("SELECT * FROM domains WHERE name=$1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?
            .map(domain))
    }

    pub async fn domains(&self) -> R<Vec<Domain>> {
        Ok(sqlx::query("SELECT * FROM domains ORDER BY name")
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(domain)
            .collect())
    }

    /// Deletes a domain and everything that lives in it.
    pub async fn delete_domain(&self, id: &str) -> R<bool> {
        let mut tx = self.pool().begin().await?;
        for sql in [
            "DELETE FROM assignments WHERE target_type='domain' AND target_id=$1",
            "DELETE FROM assignments WHERE target_type='project' AND target_id IN (SELECT id FROM projects WHERE domain_id=$1)",
            "DELETE FROM assignments WHERE actor_type='user' AND actor_id IN (SELECT id FROM users WHERE domain_id=$1)",
            "DELETE FROM assignments WHERE actor_type='group' AND actor_id IN (SELECT id FROM user_groups WHERE domain_id=$1)",
            "DELETE FROM project_endpoints WHERE project_id IN (SELECT id FROM projects WHERE domain_id=$1)",
            "DELETE FROM project_endpoint_groups WHERE project_id IN (SELECT id FROM projects WHERE domain_id=$1)",
            "DELETE FROM projects WHERE domain_id=$1",
            "DELETE FROM users WHERE domain_id=$1",
            "DELETE FROM user_groups WHERE domain_id=$1",
            "DELETE FROM roles WHERE domain_id=$1",
            "DELETE FROM domain_configs WHERE domain_id=$1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        let n = sqlx::query("DELETE FROM domains WHERE id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    // ---- projects ----

    pub async fn insert_project(&self, p: &Project) -> R<()> {
        sqlx::query("INSERT INTO projects (id, name, domain_id, parent_id, description, enabled, tags, options, extra, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)")
            .bind(&p.id).bind(&p.name).bind(&p.domain_id).bind(&p.parent_id).bind(&p.description).bind(p.enabled).bind(text(&p.tags)).bind(text(&p.options)).bind(text(&p.extra)).bind(ferrostack_common::time::now_micros())
            .execute(self.pool()).await.map(drop)
    }

    pub async fn update_project(&self, p: &Project) -> R<()> {
        sqlx::query("UPDATE projects SET name=$2, description=$3, enabled=$4, tags=$5, options=$6, extra=$7 WHERE id=$1")
            .bind(&p.id).bind(&p.name).bind(&p.description).bind(p.enabled).bind(text(&p.tags)).bind(text(&p.options)).bind(text(&p.extra))
            .execute(self.pool()).await.map(drop)
    }

    pub async fn project(&self, id: &str) -> R<Option<Project>> {
        Ok(sqlx::query("SELECT * FROM projects WHERE id=$1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(project))
    }

    pub async fn project_by_name(&self, domain_id: &str, name: &str) -> R<Option<Project>> {
        Ok(
            sqlx::query("SELECT * FROM projects WHERE domain_id=$1 AND name=$2")
                .bind(domain_id)
                .bind(name)
                .fetch_optional(self.pool())
                .await?
                .map(project),
        )
    }

    pub async fn projects(&self, domain_id: Option<&str>) -> R<Vec<Project>> {
        let rows = match domain_id {
            Some(d) => {
                sqlx::query("SELECT * FROM projects WHERE domain_id=$1 ORDER BY name")
                    .bind(d)
                    .fetch_all(self.pool())
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM projects ORDER BY name")
                    .fetch_all(self.pool())
                    .await?
            }
        };
        Ok(rows.into_iter().map(project).collect())
    }

    pub async fn child_projects(&self, parent_id: &str) -> R<Vec<Project>> {
        Ok(
            sqlx::query("SELECT * FROM projects WHERE parent_id=$1 ORDER BY name")
                .bind(parent_id)
                .fetch_all(self.pool())
                .await?
                .into_iter()
                .map(project)
                .collect(),
        )
    }

    pub async fn delete_project(&self, id: &str) -> R<bool> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM assignments WHERE target_type='project' AND target_id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM app_creds WHERE project_id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for sql in [
            "DELETE FROM limits WHERE project_id=$1",
            "DELETE FROM project_endpoints WHERE project_id=$1",
            "DELETE FROM project_endpoint_groups WHERE project_id=$1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE users SET default_project_id=NULL WHERE default_project_id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM projects WHERE id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    // ---- users ----

    pub async fn insert_user(&self, u: &User) -> R<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("INSERT INTO users (id, name, domain_id, enabled, default_project_id, options, extra, created_at, password_hash, password_created_at, password_expires_at, password_self_service) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)")
            .bind(&u.id).bind(&u.name).bind(&u.domain_id).bind(u.enabled).bind(&u.default_project_id).bind(text(&u.options)).bind(text(&u.extra)).bind(u.created_at)
            .bind(&u.password_hash).bind(u.password_created_at).bind(u.password_expires_at).bind(u.password_self_service)
            .execute(&mut *tx).await?;
        if let Some(hash) = &u.password_hash {
            insert_history(
                &mut tx,
                &u.id,
                hash,
                u.password_created_at.unwrap_or(u.created_at),
            )
            .await?;
        }
        tx.commit().await
    }

    pub async fn update_user(&self, u: &User) -> R<()> {
        sqlx::query("UPDATE users SET name=$2, enabled=$3, default_project_id=$4, options=$5, extra=$6 WHERE id=$1")
            .bind(&u.id).bind(&u.name).bind(u.enabled).bind(&u.default_project_id).bind(text(&u.options)).bind(text(&u.extra))
            .execute(self.pool()).await.map(drop)
    }

    /// Replaces the password and records it in the history, atomically.
    pub async fn set_password(
        &self,
        user_id: &str,
        hash: &str,
        now: i64,
        expires_at: Option<i64>,
        self_service: bool,
    ) -> R<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE users SET password_hash=$2, password_created_at=$3, password_expires_at=$4, password_self_service=$5, failed_auth_count=0, failed_auth_at=NULL WHERE id=$1")
            .bind(user_id).bind(hash).bind(now).bind(expires_at).bind(self_service)
            .execute(&mut *tx).await?;
        insert_history(&mut tx, user_id, hash, now).await?;
        tx.commit().await
    }

    /// The most recent `n` password hashes, newest first (the current one included).
    pub async fn password_history(&self, user_id: &str, n: i64) -> R<Vec<String>> {
        Ok(sqlx::query("SELECT password_hash FROM password_history WHERE user_id=$1 ORDER BY created_at DESC, id DESC LIMIT $2")
            .bind(user_id).bind(n).fetch_all(self.pool()).await?.into_iter().map(|r| r.get(0)).collect())
    }

    pub async fn record_auth_failure(&self, user_id: &str, now: i64) -> R<()> {
        sqlx::query("UPDATE users SET failed_auth_count = failed_auth_count + 1, failed_auth_at=$2 WHERE id=$1")
            .bind(user_id).bind(now).execute(self.pool()).await.map(drop)
    }

    pub async fn record_auth_success(&self, user_id: &str, now: i64) -> R<()> {
        sqlx::query("UPDATE users SET failed_auth_count=0, failed_auth_at=NULL, last_active_at=$2 WHERE id=$1")
            .bind(user_id).bind(now).execute(self.pool()).await.map(drop)
    }

    pub async fn user(&self, id: &str) -> R<Option<User>> {
        Ok(sqlx::query("SELECT * FROM users WHERE id=$1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(user))
    }

    pub async fn user_by_name(&self, domain_id: &str, name: &str) -> R<Option<User>> {
        Ok(
            sqlx::query("SELECT * FROM users WHERE domain_id=$1 AND name=$2")
                .bind(domain_id)
                .bind(name)
                .fetch_optional(self.pool())
                .await?
                .map(user),
        )
    }

    pub async fn users(&self, domain_id: Option<&str>) -> R<Vec<User>> {
        let rows = match domain_id {
            Some(d) => {
                sqlx::query("SELECT * FROM users WHERE domain_id=$1 ORDER BY name")
                    .bind(d)
                    .fetch_all(self.pool())
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM users ORDER BY name")
                    .fetch_all(self.pool())
                    .await?
            }
        };
        Ok(rows.into_iter().map(user).collect())
    }

    pub async fn delete_user(&self, id: &str) -> R<bool> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM assignments WHERE actor_type='user' AND actor_id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM credentials WHERE user_id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM access_rules WHERE user_id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM trusts WHERE trustor_user_id=$1 OR trustee_user_id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM users WHERE id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    // ---- groups ----

    pub async fn insert_group(&self, g: &Group) -> R<()> {
        sqlx::query("INSERT INTO user_groups (id, name, domain_id, description, extra) VALUES ($1,$2,$3,$4,$5)")
            .bind(&g.id).bind(&g.name).bind(&g.domain_id).bind(&g.description).bind(text(&g.extra))
            .execute(self.pool()).await.map(drop)
    }

    pub async fn update_group(&self, g: &Group) -> R<()> {
        sqlx::query("UPDATE user_groups SET name=$2, description=$3, extra=$4 WHERE id=$1")
            .bind(&g.id)
            .bind(&g.name)
            .bind(&g.description)
            .bind(text(&g.extra))
            .execute(self.pool())
            .await
            .map(drop)
    }

    pub async fn group(&self, id: &str) -> R<Option<Group>> {
        Ok(sqlx::query("SELECT * FROM user_groups WHERE id=$1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(group))
    }

    pub async fn groups(&self, domain_id: Option<&str>) -> R<Vec<Group>> {
        let rows = match domain_id {
            Some(d) => {
                sqlx::query("SELECT * FROM user_groups WHERE domain_id=$1 ORDER BY name")
                    .bind(d)
                    .fetch_all(self.pool())
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM user_groups ORDER BY name")
                    .fetch_all(self.pool())
                    .await?
            }
        };
        Ok(rows.into_iter().map(group).collect())
    }

    pub async fn delete_group(&self, id: &str) -> R<bool> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM assignments WHERE actor_type='group' AND actor_id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM group_members WHERE group_id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM user_groups WHERE id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    pub async fn add_member(&self, group_id: &str, user_id: &str) -> R<()> {
        let exists = sqlx::query("SELECT 1 FROM group_members WHERE group_id=$1 AND user_id=$2")
            .bind(group_id)
            .bind(user_id)
            .fetch_optional(self.pool())
            .await?;
        if exists.is_none() {
            sqlx::query("INSERT INTO group_members (group_id, user_id) VALUES ($1,$2)")
                .bind(group_id)
                .bind(user_id)
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    pub async fn remove_member(&self, group_id: &str, user_id: &str) -> R<bool> {
        Ok(
            sqlx::query("DELETE FROM group_members WHERE group_id=$1 AND user_id=$2")
                .bind(group_id)
                .bind(user_id)
                .execute(self.pool())
                .await?
                .rows_affected()
                > 0,
        )
    }

    pub async fn is_member(&self, group_id: &str, user_id: &str) -> R<bool> {
        Ok(
            sqlx::query("SELECT 1 FROM group_members WHERE group_id=$1 AND user_id=$2")
                .bind(group_id)
                .bind(user_id)
                .fetch_optional(self.pool())
                .await?
                .is_some(),
        )
    }

    pub async fn group_members(&self, group_id: &str) -> R<Vec<User>> {
        Ok(sqlx::query("SELECT u.* FROM users u JOIN group_members m ON m.user_id = u.id WHERE m.group_id=$1 ORDER BY u.name")
            .bind(group_id).fetch_all(self.pool()).await?.into_iter().map(user).collect())
    }

    pub async fn user_groups(&self, user_id: &str) -> R<Vec<Group>> {
        Ok(sqlx::query("SELECT g.* FROM user_groups g JOIN group_members m ON m.group_id = g.id WHERE m.user_id=$1 ORDER BY g.name")
            .bind(user_id).fetch_all(self.pool()).await?.into_iter().map(group).collect())
    }

    // ---- roles ----

    pub async fn insert_role(&self, r: &Role) -> R<()> {
        sqlx::query("INSERT INTO roles (id, name, domain_id, description, options, extra) VALUES ($1,$2,$3,$4,$5,$6)")
            .bind(&r.id).bind(&r.name).bind(r.domain_id.clone().unwrap_or_default()).bind(&r.description).bind(text(&r.options)).bind(text(&r.extra))
            .execute(self.pool()).await.map(drop)
    }

    pub async fn update_role(&self, r: &Role) -> R<()> {
        sqlx::query("UPDATE roles SET name=$2, description=$3, options=$4, extra=$5 WHERE id=$1")
            .bind(&r.id)
            .bind(&r.name)
            .bind(&r.description)
            .bind(text(&r.options))
            .bind(text(&r.extra))
            .execute(self.pool())
            .await
            .map(drop)
    }

    pub async fn role(&self, id: &str) -> R<Option<Role>> {
        Ok(sqlx::query("SELECT * FROM roles WHERE id=$1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(role))
    }

    pub async fn role_by_name(&self, name: &str, domain_id: Option<&str>) -> R<Option<Role>> {
        Ok(
            sqlx::query("SELECT * FROM roles WHERE name=$1 AND domain_id=$2")
                .bind(name)
                .bind(domain_id.unwrap_or(""))
                .fetch_optional(self.pool())
                .await?
                .map(role),
        )
    }

    pub async fn roles(&self) -> R<Vec<Role>> {
        Ok(sqlx::query("SELECT * FROM roles ORDER BY name")
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(role)
            .collect())
    }

    pub async fn delete_role(&self, id: &str) -> R<bool> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM assignments WHERE role_id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM implied_roles WHERE prior_role_id=$1 OR implied_role_id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM roles WHERE id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    pub async fn implied_roles(&self) -> R<Vec<(String, String)>> {
        Ok(sqlx::query("SELECT prior_role_id, implied_role_id FROM implied_roles ORDER BY prior_role_id, implied_role_id")
            .fetch_all(self.pool()).await?.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub async fn add_implied_role(&self, prior: &str, implied: &str) -> R<()> {
        sqlx::query("INSERT INTO implied_roles (prior_role_id, implied_role_id) VALUES ($1,$2)")
            .bind(prior)
            .bind(implied)
            .execute(self.pool())
            .await
            .map(drop)
    }

    pub async fn delete_implied_role(&self, prior: &str, implied: &str) -> R<bool> {
        Ok(
            sqlx::query("DELETE FROM implied_roles WHERE prior_role_id=$1 AND implied_role_id=$2")
                .bind(prior)
                .bind(implied)
                .execute(self.pool())
                .await?
                .rows_affected()
                > 0,
        )
    }

    // ---- assignments ----

    pub async fn grant(&self, a: &Assignment) -> R<()> {
        if self.has_assignment(a).await? {
            return Ok(());
        }
        sqlx::query("INSERT INTO assignments (actor_type, actor_id, target_type, target_id, role_id, inherited) VALUES ($1,$2,$3,$4,$5,$6)")
            .bind(a.actor_type.as_str()).bind(&a.actor_id).bind(a.target_type.as_str()).bind(&a.target_id).bind(&a.role_id).bind(a.inherited)
            .execute(self.pool()).await.map(drop)
    }

    pub async fn has_assignment(&self, a: &Assignment) -> R<bool> {
        Ok(sqlx::query("SELECT 1 FROM assignments WHERE actor_type=$1 AND actor_id=$2 AND target_type=$3 AND target_id=$4 AND role_id=$5 AND inherited=$6")
            .bind(a.actor_type.as_str()).bind(&a.actor_id).bind(a.target_type.as_str()).bind(&a.target_id).bind(&a.role_id).bind(a.inherited)
            .fetch_optional(self.pool()).await?.is_some())
    }

    pub async fn revoke(&self, a: &Assignment) -> R<bool> {
        Ok(sqlx::query("DELETE FROM assignments WHERE actor_type=$1 AND actor_id=$2 AND target_type=$3 AND target_id=$4 AND role_id=$5 AND inherited=$6")
            .bind(a.actor_type.as_str()).bind(&a.actor_id).bind(a.target_type.as_str()).bind(&a.target_id).bind(&a.role_id).bind(a.inherited)
            .execute(self.pool()).await?.rows_affected() > 0)
    }

    /// Assignments of any of `actors` (user and group ids), any target.
    pub async fn assignments_of(&self, actor_ids: &[String]) -> R<Vec<Assignment>> {
        let mut out = Vec::new();
        for id in actor_ids {
            let rows = sqlx::query("SELECT * FROM assignments WHERE actor_id=$1")
                .bind(id)
                .fetch_all(self.pool())
                .await?;
            out.extend(rows.into_iter().map(assignment));
        }
        Ok(out)
    }

    pub async fn all_assignments(&self) -> R<Vec<Assignment>> {
        Ok(sqlx::query("SELECT * FROM assignments ORDER BY actor_type, actor_id, target_type, target_id, role_id")
            .fetch_all(self.pool()).await?.into_iter().map(assignment).collect())
    }

    // ---- catalog ----

    pub async fn insert_region(&self, r: &Region) -> R<()> {
        sqlx::query(
            "INSERT INTO regions (id, description, parent_region_id, extra) VALUES ($1,$2,$3,$4)",
        )
        .bind(&r.id)
        .bind(&r.description)
        .bind(&r.parent_region_id)
        .bind(text(&r.extra))
        .execute(self.pool())
        .await
        .map(drop)
    }

    pub async fn update_region(&self, r: &Region) -> R<()> {
        sqlx::query("UPDATE regions SET description=$2, parent_region_id=$3, extra=$4 WHERE id=$1")
            .bind(&r.id)
            .bind(&r.description)
            .bind(&r.parent_region_id)
            .bind(text(&r.extra))
            .execute(self.pool())
            .await
            .map(drop)
    }

    pub async fn region(&self, id: &str) -> R<Option<Region>> {
        Ok(sqlx::query("SELECT * FROM regions WHERE id=$1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(region))
    }

    pub async fn regions(&self) -> R<Vec<Region>> {
        Ok(sqlx::query("SELECT * FROM regions ORDER BY id")
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(region)
            .collect())
    }

    pub async fn delete_region(&self, id: &str) -> R<bool> {
        Ok(sqlx::query("DELETE FROM regions WHERE id=$1")
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected()
            > 0)
    }

    pub async fn insert_service(&self, s: &Service) -> R<()> {
        sqlx::query("INSERT INTO services (id, type, name, description, enabled, extra) VALUES ($1,$2,$3,$4,$5,$6)")
            .bind(&s.id).bind(&s.service_type).bind(&s.name).bind(&s.description).bind(s.enabled).bind(text(&s.extra)).execute(self.pool()).await.map(drop)
    }

    pub async fn update_service(&self, s: &Service) -> R<()> {
        sqlx::query("UPDATE services SET type=$2, name=$3, description=$4, enabled=$5, extra=$6 WHERE id=$1")
            .bind(&s.id).bind(&s.service_type).bind(&s.name).bind(&s.description).bind(s.enabled).bind(text(&s.extra)).execute(self.pool()).await.map(drop)
    }

    pub async fn service(&self, id: &str) -> R<Option<Service>> {
        Ok(sqlx::query("SELECT * FROM services WHERE id=$1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(service))
    }

    pub async fn services(&self) -> R<Vec<Service>> {
        Ok(sqlx::query("SELECT * FROM services ORDER BY type, name")
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(service)
            .collect())
    }

    pub async fn delete_service(&self, id: &str) -> R<bool> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM project_endpoints WHERE endpoint_id IN (SELECT id FROM endpoints WHERE service_id=$1)")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM endpoints WHERE service_id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM services WHERE id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    pub async fn insert_endpoint(&self, e: &Endpoint) -> R<()> {
        sqlx::query("INSERT INTO endpoints (id, service_id, interface, region_id, url, enabled, extra) VALUES ($1,$2,$3,$4,$5,$6,$7)")
            .bind(&e.id).bind(&e.service_id).bind(&e.interface).bind(&e.region_id).bind(&e.url).bind(e.enabled).bind(text(&e.extra)).execute(self.pool()).await.map(drop)
    }

    pub async fn update_endpoint(&self, e: &Endpoint) -> R<()> {
        sqlx::query("UPDATE endpoints SET service_id=$2, interface=$3, region_id=$4, url=$5, enabled=$6, extra=$7 WHERE id=$1")
            .bind(&e.id).bind(&e.service_id).bind(&e.interface).bind(&e.region_id).bind(&e.url).bind(e.enabled).bind(text(&e.extra)).execute(self.pool()).await.map(drop)
    }

    pub async fn endpoint(&self, id: &str) -> R<Option<Endpoint>> {
        Ok(sqlx::query("SELECT * FROM endpoints WHERE id=$1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(endpoint))
    }

    pub async fn endpoints(&self) -> R<Vec<Endpoint>> {
        Ok(
            sqlx::query("SELECT * FROM endpoints ORDER BY service_id, interface")
                .fetch_all(self.pool())
                .await?
                .into_iter()
                .map(endpoint)
                .collect(),
        )
    }

    pub async fn delete_endpoint(&self, id: &str) -> R<bool> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM project_endpoints WHERE endpoint_id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM endpoints WHERE id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    // ---- endpoint groups ----

    pub async fn upsert_endpoint_group(&self, g: &EndpointGroup, new: bool) -> R<()> {
        let sql = if new {
            "INSERT INTO endpoint_groups (id, name, description, filters) VALUES ($1,$2,$3,$4)"
        } else {
            "UPDATE endpoint_groups SET name=$2, description=$3, filters=$4 WHERE id=$1"
        };
        sqlx::query(sql)
            .bind(&g.id)
            .bind(&g.name)
            .bind(&g.description)
            .bind(text(&g.filters))
            .execute(self.pool())
            .await
            .map(drop)
    }

    pub async fn endpoint_group(&self, id: &str) -> R<Option<EndpointGroup>> {
        Ok(sqlx::query("SELECT * FROM endpoint_groups WHERE id=$1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(endpoint_group))
    }

    pub async fn endpoint_groups(&self) -> R<Vec<EndpointGroup>> {
        Ok(
            sqlx::query("SELECT * FROM endpoint_groups ORDER BY name, id")
                .fetch_all(self.pool())
                .await?
                .into_iter()
                .map(endpoint_group)
                .collect(),
        )
    }

    pub async fn delete_endpoint_group(&self, id: &str) -> R<bool> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM project_endpoint_groups WHERE endpoint_group_id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM endpoint_groups WHERE id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    // ---- policies ----

    pub async fn upsert_policy(&self, p: &PolicyBlob, new: bool) -> R<()> {
        let sql = if new {
            "INSERT INTO policies (id, type, blob, extra) VALUES ($1,$2,$3,$4)"
        } else {
            "UPDATE policies SET type=$2, blob=$3, extra=$4 WHERE id=$1"
        };
        sqlx::query(sql)
            .bind(&p.id)
            .bind(&p.policy_type)
            .bind(&p.blob)
            .bind(text(&p.extra))
            .execute(self.pool())
            .await
            .map(drop)
    }

    pub async fn policy(&self, id: &str) -> R<Option<PolicyBlob>> {
        Ok(sqlx::query("SELECT * FROM policies WHERE id=$1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(policy_blob))
    }

    pub async fn policies(&self) -> R<Vec<PolicyBlob>> {
        Ok(sqlx::query("SELECT * FROM policies ORDER BY id")
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(policy_blob)
            .collect())
    }

    pub async fn delete_policy(&self, id: &str) -> R<bool> {
        Ok(sqlx::query("DELETE FROM policies WHERE id=$1")
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected()
            > 0)
    }

    // ---- application credentials ----

    pub async fn insert_app_cred(&self, c: &AppCred) -> R<()> {
        sqlx::query("INSERT INTO app_creds (id, name, user_id, project_id, secret_hash, description, expires_at, unrestricted, roles, access_rules, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)")
            .bind(&c.id).bind(&c.name).bind(&c.user_id).bind(&c.project_id).bind(&c.secret_hash).bind(&c.description).bind(c.expires_at).bind(c.unrestricted)
            .bind(text(&c.roles)).bind(text(&c.access_rules)).bind(ferrostack_common::time::now_micros())
            .execute(self.pool()).await.map(drop)
    }

    pub async fn app_cred(&self, id: &str) -> R<Option<AppCred>> {
        Ok(sqlx::query("SELECT * FROM app_creds WHERE id=$1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(app_cred))
    }

    pub async fn app_creds(&self, user_id: &str) -> R<Vec<AppCred>> {
        Ok(
            sqlx::query("SELECT * FROM app_creds WHERE user_id=$1 ORDER BY name")
                .bind(user_id)
                .fetch_all(self.pool())
                .await?
                .into_iter()
                .map(app_cred)
                .collect(),
        )
    }

    pub async fn delete_app_cred(&self, id: &str) -> R<bool> {
        Ok(sqlx::query("DELETE FROM app_creds WHERE id=$1")
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected()
            > 0)
    }

    // ---- access rules ----

    /// The id of the user's rule with these fields, creating it when new.
    pub async fn ensure_access_rule(&self, r: &AccessRule) -> R<String> {
        let find = || {
            sqlx::query("SELECT id FROM access_rules WHERE user_id=$1 AND service=$2 AND path=$3 AND method=$4")
                .bind(&r.user_id).bind(&r.service).bind(&r.path).bind(&r.method)
        };
        if let Some(row) = find().fetch_optional(self.pool()).await? {
            return Ok(row.get(0));
        }
        let inserted = sqlx::query(
            "INSERT INTO access_rules (id, user_id, service, path, method) VALUES ($1,$2,$3,$4,$5)",
        )
        .bind(&r.id)
        .bind(&r.user_id)
        .bind(&r.service)
        .bind(&r.path)
        .bind(&r.method)
        .execute(self.pool())
        .await;
        match inserted {
            Ok(_) => Ok(r.id.clone()),
            // Lost a race with an identical insert: use the winner's row.
            Err(e) if ferrostack_db::is_unique_violation(&e) => {
                Ok(find().fetch_one(self.pool()).await?.get(0))
            }
            Err(e) => Err(e),
        }
    }

    pub async fn access_rules(&self, user_id: &str) -> R<Vec<AccessRule>> {
        Ok(sqlx::query(
            "SELECT * FROM access_rules WHERE user_id=$1 ORDER BY service, path, method",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(access_rule)
        .collect())
    }

    pub async fn delete_access_rule(&self, id: &str) -> R<bool> {
        Ok(sqlx::query("DELETE FROM access_rules WHERE id=$1")
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected()
            > 0)
    }

    // ---- trusts ----

    pub async fn insert_trust(&self, t: &Trust) -> R<()> {
        sqlx::query("INSERT INTO trusts (id, trustor_user_id, trustee_user_id, project_id, impersonation, expires_at, remaining_uses, roles, redelegation_count, extra, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)")
            .bind(&t.id).bind(&t.trustor_user_id).bind(&t.trustee_user_id).bind(&t.project_id).bind(t.impersonation).bind(t.expires_at).bind(t.remaining_uses)
            .bind(text(&t.roles)).bind(t.redelegation_count).bind(text(&t.extra)).bind(ferrostack_common::time::now_micros())
            .execute(self.pool()).await.map(drop)
    }

    pub async fn trust(&self, id: &str) -> R<Option<Trust>> {
        Ok(
            sqlx::query("SELECT * FROM trusts WHERE id=$1 AND deleted_at IS NULL")
                .bind(id)
                .fetch_optional(self.pool())
                .await?
                .map(trust),
        )
    }

    pub async fn trusts(&self) -> R<Vec<Trust>> {
        Ok(
            sqlx::query("SELECT * FROM trusts WHERE deleted_at IS NULL ORDER BY created_at")
                .fetch_all(self.pool())
                .await?
                .into_iter()
                .map(trust)
                .collect(),
        )
    }

    pub async fn delete_trust(&self, id: &str) -> R<bool> {
        Ok(
            sqlx::query("UPDATE trusts SET deleted_at=$2 WHERE id=$1 AND deleted_at IS NULL")
                .bind(id)
                .bind(ferrostack_common::time::now_micros())
                .execute(self.pool())
                .await?
                .rows_affected()
                > 0,
        )
    }

    /// Spends one use of a limited trust; false when none are left (a race lost is a use denied).
    pub async fn consume_trust_use(&self, id: &str) -> R<bool> {
        let n = sqlx::query("UPDATE trusts SET remaining_uses = remaining_uses - 1 WHERE id=$1 AND remaining_uses > 0").bind(id).execute(self.pool()).await?.rows_affected();
        Ok(n > 0)
    }

    // ---- credentials ----

    pub async fn insert_credential(&self, c: &Credential) -> R<()> {
        sqlx::query("INSERT INTO credentials (id, user_id, project_id, type, blob, extra) VALUES ($1,$2,$3,$4,$5,$6)")
            .bind(&c.id).bind(&c.user_id).bind(&c.project_id).bind(&c.credential_type).bind(&c.blob).bind(text(&c.extra)).execute(self.pool()).await.map(drop)
    }

    pub async fn update_credential(&self, c: &Credential) -> R<()> {
        sqlx::query("UPDATE credentials SET user_id=$2, project_id=$3, type=$4, blob=$5, extra=$6 WHERE id=$1")
            .bind(&c.id).bind(&c.user_id).bind(&c.project_id).bind(&c.credential_type).bind(&c.blob).bind(text(&c.extra)).execute(self.pool()).await.map(drop)
    }

    pub async fn credential(&self, id: &str) -> R<Option<Credential>> {
        Ok(sqlx::query("SELECT * FROM credentials WHERE id=$1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(credential))
    }

    pub async fn credentials(&self) -> R<Vec<Credential>> {
        Ok(sqlx::query("SELECT * FROM credentials ORDER BY id")
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(credential)
            .collect())
    }

    pub async fn delete_credential(&self, id: &str) -> R<bool> {
        Ok(sqlx::query("DELETE FROM credentials WHERE id=$1")
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected()
            > 0)
    }

    // ---- unified limits ----

    pub async fn insert_registered_limit(&self, l: &RegisteredLimit) -> R<()> {
        sqlx::query("INSERT INTO registered_limits (id, service_id, region_id, resource_name, default_limit, description) VALUES ($1,$2,$3,$4,$5,$6)")
            .bind(&l.id).bind(&l.service_id).bind(l.region_id.clone().unwrap_or_default()).bind(&l.resource_name).bind(l.default_limit).bind(&l.description)
            .execute(self.pool()).await.map(drop)
    }

    pub async fn update_registered_limit(&self, l: &RegisteredLimit) -> R<()> {
        sqlx::query("UPDATE registered_limits SET service_id=$2, region_id=$3, resource_name=$4, default_limit=$5, description=$6 WHERE id=$1")
            .bind(&l.id).bind(&l.service_id).bind(l.region_id.clone().unwrap_or_default()).bind(&l.resource_name).bind(l.default_limit).bind(&l.description)
            .execute(self.pool()).await.map(drop)
    }

    pub async fn registered_limit(&self, id: &str) -> R<Option<RegisteredLimit>> {
        Ok(sqlx::query("SELECT * FROM registered_limits WHERE id=$1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(registered_limit))
    }

    pub async fn registered_limits(&self) -> R<Vec<RegisteredLimit>> {
        Ok(
            sqlx::query("SELECT * FROM registered_limits ORDER BY service_id, resource_name")
                .fetch_all(self.pool())
                .await?
                .into_iter()
                .map(registered_limit)
                .collect(),
        )
    }

    pub async fn delete_registered_limit(&self, id: &str) -> R<bool> {
        Ok(sqlx::query("DELETE FROM registered_limits WHERE id=$1")
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected()
            > 0)
    }

    pub async fn insert_limit(&self, l: &Limit) -> R<()> {
        sqlx::query("INSERT INTO limits (id, project_id, domain_id, service_id, region_id, resource_name, resource_limit, description) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)")
            .bind(&l.id).bind(&l.project_id).bind(&l.domain_id).bind(&l.service_id).bind(l.region_id.clone().unwrap_or_default()).bind(&l.resource_name).bind(l.resource_limit).bind(&l.description)
            .execute(self.pool()).await.map(drop)
    }

    pub async fn update_limit(&self, l: &Limit) -> R<()> {
        sqlx::query("UPDATE limits SET resource_limit=$2, description=$3 WHERE id=$1")
            .bind(&l.id)
            .bind(l.resource_limit)
            .bind(&l.description)
            .execute(self.pool())
            .await
            .map(drop)
    }

    pub async fn limit(&self, id: &str) -> R<Option<Limit>> {
        Ok(sqlx::query("SELECT * FROM limits WHERE id=$1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(limit))
    }

    pub async fn limits(&self) -> R<Vec<Limit>> {
        Ok(
            sqlx::query("SELECT * FROM limits ORDER BY service_id, resource_name")
                .fetch_all(self.pool())
                .await?
                .into_iter()
                .map(limit)
                .collect(),
        )
    }

    pub async fn delete_limit(&self, id: &str) -> R<bool> {
        Ok(sqlx::query("DELETE FROM limits WHERE id=$1")
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected()
            > 0)
    }

    // ---- revocations ----

    pub async fn insert_revocation(&self, r: &Revocation, keep_until: i64) -> R<()> {
        sqlx::query("INSERT INTO revocations (id, user_id, project_id, domain_id, audit_id, app_cred_id, trust_id, issued_before, expires_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)")
            .bind(uuid::Uuid::new_v4().simple().to_string()).bind(&r.user_id).bind(&r.project_id).bind(&r.domain_id).bind(&r.audit_id)
            .bind(&r.app_cred_id).bind(&r.trust_id).bind(r.issued_before).bind(keep_until)
            .execute(self.pool()).await.map(drop)
    }

    /// Events that can still match a live token; older ones are pruned.
    pub async fn revocations(&self, now: i64) -> R<Vec<Revocation>> {
        sqlx::query("DELETE FROM revocations WHERE expires_at < $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(sqlx::query("SELECT * FROM revocations")
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(|r| Revocation {
                user_id: r.get("user_id"),
                project_id: r.get("project_id"),
                domain_id: r.get("domain_id"),
                audit_id: r.get("audit_id"),
                app_cred_id: r.get("app_cred_id"),
                trust_id: r.get("trust_id"),
                issued_before: r.get("issued_before"),
            })
            .collect())
    }
}

async fn insert_history(
    tx: &mut ferrostack_db::Tx<'_>,
    user_id: &str,
    hash: &str,
    at: i64,
) -> R<()> {
    sqlx::query("INSERT INTO password_history (id, user_id, password_hash, created_at) VALUES ($1,$2,$3,$4)")
        .bind(uuid::Uuid::new_v4().simple().to_string()).bind(user_id).bind(hash).bind(at)
        .execute(&mut **tx).await.map(drop)
}
