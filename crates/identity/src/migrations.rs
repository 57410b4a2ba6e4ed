//! The Identity schema, numbered migrations shared by SQLite and PostgreSQL.
//!
//! Timestamps are BIGINT microseconds since the epoch. Free-form attributes that Keystone lets
//! clients add to users, projects and others live in an `extra` JSON text column. A role with
//! no domain stores `''` as its domain so that the unique (domain_id, name) constraint works
//! the same on both engines (NULLs never collide in a unique index).

use ferrostack_db::Migration;

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "identity core",
        sql: r#"
CREATE TABLE domains (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '', enabled BOOLEAN NOT NULL, tags TEXT NOT NULL DEFAULT '[]', options TEXT NOT NULL DEFAULT '{}', extra TEXT NOT NULL DEFAULT '{}', created_at BIGINT NOT NULL);
CREATE TABLE projects (id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL REFERENCES domains(id), parent_id TEXT, description TEXT NOT NULL DEFAULT '', enabled BOOLEAN NOT NULL, tags TEXT NOT NULL DEFAULT '[]', options TEXT NOT NULL DEFAULT '{}', extra TEXT NOT NULL DEFAULT '{}', created_at BIGINT NOT NULL, UNIQUE (domain_id, name));
CREATE INDEX projects_parent ON projects (parent_id);
CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL REFERENCES domains(id), enabled BOOLEAN NOT NULL, default_project_id TEXT, options TEXT NOT NULL DEFAULT '{}', extra TEXT NOT NULL DEFAULT '{}', created_at BIGINT NOT NULL, last_active_at BIGINT, failed_auth_count BIGINT NOT NULL DEFAULT 0, failed_auth_at BIGINT, password_hash TEXT, password_created_at BIGINT, password_expires_at BIGINT, password_self_service BOOLEAN NOT NULL DEFAULT FALSE, UNIQUE (domain_id, name));
CREATE TABLE password_history (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, password_hash TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE INDEX password_history_user ON password_history (user_id, created_at);
CREATE TABLE user_groups (id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL REFERENCES domains(id), description TEXT NOT NULL DEFAULT '', extra TEXT NOT NULL DEFAULT '{}', UNIQUE (domain_id, name));
CREATE TABLE group_members (group_id TEXT NOT NULL REFERENCES user_groups(id) ON DELETE CASCADE, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, PRIMARY KEY (group_id, user_id));
CREATE INDEX group_members_user ON group_members (user_id);
CREATE TABLE roles (id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '', options TEXT NOT NULL DEFAULT '{}', extra TEXT NOT NULL DEFAULT '{}', UNIQUE (domain_id, name));
CREATE TABLE implied_roles (prior_role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE, implied_role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE, PRIMARY KEY (prior_role_id, implied_role_id));
CREATE TABLE assignments (actor_type TEXT NOT NULL, actor_id TEXT NOT NULL, target_type TEXT NOT NULL, target_id TEXT NOT NULL, role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE, inherited BOOLEAN NOT NULL, PRIMARY KEY (actor_type, actor_id, target_type, target_id, role_id, inherited));
CREATE INDEX assignments_target ON assignments (target_type, target_id);
CREATE INDEX assignments_role ON assignments (role_id);
CREATE TABLE regions (id TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', parent_region_id TEXT, extra TEXT NOT NULL DEFAULT '{}');
CREATE TABLE services (id TEXT PRIMARY KEY, type TEXT NOT NULL, name TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '', enabled BOOLEAN NOT NULL, extra TEXT NOT NULL DEFAULT '{}');
CREATE TABLE endpoints (id TEXT PRIMARY KEY, service_id TEXT NOT NULL REFERENCES services(id) ON DELETE CASCADE, interface TEXT NOT NULL, region_id TEXT, url TEXT NOT NULL, enabled BOOLEAN NOT NULL, extra TEXT NOT NULL DEFAULT '{}');
CREATE TABLE app_creds (id TEXT PRIMARY KEY, name TEXT NOT NULL, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, project_id TEXT NOT NULL, secret_hash TEXT NOT NULL, description TEXT, expires_at BIGINT, unrestricted BOOLEAN NOT NULL, roles TEXT NOT NULL, access_rules TEXT NOT NULL DEFAULT '[]', created_at BIGINT NOT NULL, UNIQUE (user_id, name));
CREATE TABLE trusts (id TEXT PRIMARY KEY, trustor_user_id TEXT NOT NULL, trustee_user_id TEXT NOT NULL, project_id TEXT, impersonation BOOLEAN NOT NULL, expires_at BIGINT, remaining_uses BIGINT, roles TEXT NOT NULL, redelegation_count BIGINT NOT NULL DEFAULT 0, extra TEXT NOT NULL DEFAULT '{}', created_at BIGINT NOT NULL, deleted_at BIGINT);
CREATE TABLE credentials (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, project_id TEXT, type TEXT NOT NULL, blob TEXT NOT NULL, extra TEXT NOT NULL DEFAULT '{}');
CREATE INDEX credentials_user ON credentials (user_id);
CREATE TABLE registered_limits (id TEXT PRIMARY KEY, service_id TEXT NOT NULL, region_id TEXT NOT NULL DEFAULT '', resource_name TEXT NOT NULL, default_limit BIGINT NOT NULL, description TEXT, UNIQUE (service_id, region_id, resource_name));
CREATE TABLE limits (id TEXT PRIMARY KEY, project_id TEXT, domain_id TEXT, service_id TEXT NOT NULL, region_id TEXT NOT NULL DEFAULT '', resource_name TEXT NOT NULL, resource_limit BIGINT NOT NULL, description TEXT, UNIQUE (project_id, domain_id, service_id, region_id, resource_name));
CREATE TABLE revocations (id TEXT PRIMARY KEY, user_id TEXT, project_id TEXT, domain_id TEXT, audit_id TEXT, app_cred_id TEXT, trust_id TEXT, issued_before BIGINT NOT NULL, expires_at BIGINT NOT NULL);
CREATE INDEX revocations_expiry ON revocations (expires_at);
CREATE TABLE revision (id BIGINT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO revision (id, value) VALUES (1, 1);
"#,
        postgres: None,
    },
    // Access rules of application credentials outlive the credentials that use them (as in
    // Keystone): a user's identical rules are one row, shared by id. The limits index makes
    // duplicates collide although one of project_id/domain_id is always NULL.
    Migration {
        version: 2,
        name: "access rules",
        sql: r#"
CREATE TABLE access_rules (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, service TEXT NOT NULL, path TEXT NOT NULL, method TEXT NOT NULL, UNIQUE (user_id, service, path, method));
CREATE UNIQUE INDEX limits_unique_target ON limits (COALESCE(project_id, ''), COALESCE(domain_id, ''), service_id, region_id, resource_name);
"#,
        postgres: None,
    },
    // Endpoint groups (OS-EP-FILTER): a named filter over the catalog's endpoints.
    Migration {
        version: 3,
        name: "endpoint groups",
        sql: r#"
CREATE TABLE endpoint_groups (id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '', filters TEXT NOT NULL DEFAULT '{}');
"#,
        postgres: None,
    },
    // Policies (`/v3/policies`): opaque blobs Keystone stores for other services.
    Migration {
        version: 4,
        name: "policies",
        sql: r#"
CREATE TABLE policies (id TEXT PRIMARY KEY, type TEXT NOT NULL, blob TEXT NOT NULL, extra TEXT NOT NULL DEFAULT '{}');
"#,
        postgres: None,
    },
    // Domain-specific configuration (`/v3/domains/{id}/config`): one row per option, its
    // value as JSON text. `sensitive` options (the LDAP password) are stored, never shown.
    Migration {
        version: 5,
        name: "domain configuration",
        sql: r#"
CREATE TABLE domain_configs (domain_id TEXT NOT NULL, config_group TEXT NOT NULL, config_option TEXT NOT NULL, value TEXT NOT NULL, sensitive BOOLEAN NOT NULL, PRIMARY KEY (domain_id, config_group, config_option));
"#,
        postgres: None,
    },
    // OAuth1 consumers (`/v3/OS-OAUTH1/consumers`). The secret signs OAuth1 requests, so it is
    // kept (sealed with the credential keys), not hashed.
    Migration {
        version: 6,
        name: "oauth1 consumers",
        sql: r#"
CREATE TABLE oauth_consumers (id TEXT PRIMARY KEY, description TEXT, secret TEXT NOT NULL, extra TEXT NOT NULL DEFAULT '{}', created_at BIGINT NOT NULL);
"#,
        postgres: None,
    },
    // OS-EP-FILTER associations: endpoints and endpoint groups a project's catalog shows.
    Migration {
        version: 7,
        name: "endpoint filter associations",
        sql: r#"
CREATE TABLE project_endpoints (project_id TEXT NOT NULL, endpoint_id TEXT NOT NULL, PRIMARY KEY (project_id, endpoint_id));
CREATE INDEX project_endpoints_endpoint ON project_endpoints (endpoint_id);
CREATE TABLE project_endpoint_groups (endpoint_group_id TEXT NOT NULL, project_id TEXT NOT NULL, PRIMARY KEY (endpoint_group_id, project_id));
CREATE INDEX project_endpoint_groups_project ON project_endpoint_groups (project_id);
"#,
        postgres: None,
    },
];
