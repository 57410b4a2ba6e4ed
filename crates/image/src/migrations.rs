//! The Image schema. Deleted images keep their row (status `deleted`) so an id is never
//! reused, as in Glance. Timestamps are microseconds; custom properties and tags are JSON.
//!
//! Migration 3 keeps the tasks that record each import (`GET /v2/images/{id}/tasks`,
//! `/v2/tasks`); input and result are JSON text.
//!
//! Migration 2 holds the metadata definitions catalog (`/v2/metadefs`): namespaces and, keyed
//! by the namespace's id (so a rename touches one row), their objects, properties, tags and
//! resource type associations. Property and object schemas are JSON text. The resource types
//! Glance's catalog files use are seeded, as `glance-manage db_load_metadefs` would.

use ferrostack_db::Migration;

/// Tables of the metadefs catalog; the seed rows differ by engine only in how "now" is read.
macro_rules! metadef_tables {
    () => {
        r#"
CREATE TABLE metadef_namespaces (id TEXT PRIMARY KEY, namespace TEXT NOT NULL UNIQUE, display_name TEXT, description TEXT, visibility TEXT NOT NULL, protected BOOLEAN NOT NULL, owner TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE TABLE metadef_objects (id TEXT PRIMARY KEY, namespace_id TEXT NOT NULL REFERENCES metadef_namespaces(id) ON DELETE CASCADE, name TEXT NOT NULL, description TEXT, required TEXT NOT NULL, properties TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, UNIQUE (namespace_id, name));
CREATE TABLE metadef_properties (id TEXT PRIMARY KEY, namespace_id TEXT NOT NULL REFERENCES metadef_namespaces(id) ON DELETE CASCADE, name TEXT NOT NULL, json_schema TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, UNIQUE (namespace_id, name));
CREATE TABLE metadef_tags (id TEXT PRIMARY KEY, namespace_id TEXT NOT NULL REFERENCES metadef_namespaces(id) ON DELETE CASCADE, name TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, UNIQUE (namespace_id, name));
CREATE TABLE metadef_resource_types (name TEXT PRIMARY KEY, protected BOOLEAN NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE TABLE metadef_namespace_resource_types (namespace_id TEXT NOT NULL REFERENCES metadef_namespaces(id) ON DELETE CASCADE, resource_type TEXT NOT NULL REFERENCES metadef_resource_types(name), prefix TEXT, properties_target TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (namespace_id, resource_type));
CREATE INDEX metadef_assoc_type ON metadef_namespace_resource_types (resource_type);
"#
    };
}

/// The resource types named by Glance's shipped catalog, as `(name, now)` rows.
macro_rules! metadef_seed {
    ($now:literal) => {
        concat!(
            "INSERT INTO metadef_resource_types (name, protected, created_at, updated_at) SELECT v.name, TRUE, ", $now, ", ", $now,
            " FROM (SELECT 'OS::Glance::Image' AS name UNION ALL SELECT 'OS::Cinder::Volume' UNION ALL SELECT 'OS::Nova::Flavor' \
             UNION ALL SELECT 'OS::Nova::Aggregate' UNION ALL SELECT 'OS::Nova::Server' UNION ALL SELECT 'OS::Trove::Instance' \
             UNION ALL SELECT 'OS::Glance::Snapshot') v;\n"
        )
    };
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "images and members",
        sql: r#"
CREATE TABLE images (id TEXT PRIMARY KEY, name TEXT, status TEXT NOT NULL, visibility TEXT NOT NULL, protected BOOLEAN NOT NULL, os_hidden BOOLEAN NOT NULL, owner TEXT, disk_format TEXT, container_format TEXT, min_disk BIGINT NOT NULL, min_ram BIGINT NOT NULL, size BIGINT, virtual_size BIGINT, checksum TEXT, os_hash_algo TEXT, os_hash_value TEXT, properties TEXT NOT NULL, tags TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, deleted_at BIGINT);
CREATE INDEX images_owner ON images (owner);
CREATE INDEX images_status ON images (status);
CREATE TABLE image_members (image_id TEXT NOT NULL REFERENCES images(id), member_id TEXT NOT NULL, status TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (image_id, member_id));
CREATE INDEX image_members_member ON image_members (member_id);
"#,
        postgres: None,
    },
    Migration {
        version: 2,
        name: "metadata definitions",
        sql: concat!(
            metadef_tables!(),
            metadef_seed!("CAST(strftime('%s', 'now') AS BIGINT) * 1000000")
        ),
        postgres: Some(concat!(
            metadef_tables!(),
            metadef_seed!("CAST(EXTRACT(EPOCH FROM now()) * 1000000 AS BIGINT)")
        )),
    },
    Migration {
        version: 3,
        name: "image tasks",
        sql: r#"
CREATE TABLE image_tasks (id TEXT PRIMARY KEY, type TEXT NOT NULL, status TEXT NOT NULL, owner TEXT, image_id TEXT, request_id TEXT, user_id TEXT, input TEXT NOT NULL, result TEXT, message TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, expires_at BIGINT);
CREATE INDEX image_tasks_image ON image_tasks (image_id);
"#,
        postgres: None,
    },
];
