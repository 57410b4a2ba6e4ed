//! The Placement schema. Resource classes and traits are keyed by name (the standard ones
//! are seeded at start-up from [`crate::standard`]); providers carry their tree as parent and
//! root ids; allocations are rows per (consumer, provider, class). `placement_revision` is
//! bumped by every write, so a control node can tell that another one changed the data and
//! reload its in-memory snapshot. Timestamps are microseconds.

use ferrostack_db::Migration;

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "placement",
    sql: r#"
CREATE TABLE resource_classes (name TEXT PRIMARY KEY, standard BOOLEAN NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT);
CREATE TABLE traits (name TEXT PRIMARY KEY, standard BOOLEAN NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT);
CREATE TABLE resource_providers (id BIGINT PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, name TEXT NOT NULL UNIQUE, generation BIGINT NOT NULL, parent_id BIGINT, root_id BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX resource_providers_parent ON resource_providers (parent_id);
CREATE INDEX resource_providers_root ON resource_providers (root_id);
CREATE TABLE inventories (provider_id BIGINT NOT NULL REFERENCES resource_providers(id) ON DELETE CASCADE, resource_class TEXT NOT NULL, total BIGINT NOT NULL, reserved BIGINT NOT NULL, min_unit BIGINT NOT NULL, max_unit BIGINT NOT NULL, step_size BIGINT NOT NULL, allocation_ratio DOUBLE PRECISION NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (provider_id, resource_class));
CREATE TABLE provider_traits (provider_id BIGINT NOT NULL REFERENCES resource_providers(id) ON DELETE CASCADE, trait TEXT NOT NULL, PRIMARY KEY (provider_id, trait));
CREATE TABLE provider_aggregates (provider_id BIGINT NOT NULL REFERENCES resource_providers(id) ON DELETE CASCADE, aggregate TEXT NOT NULL, PRIMARY KEY (provider_id, aggregate));
CREATE INDEX provider_aggregates_aggregate ON provider_aggregates (aggregate);
CREATE TABLE consumer_types (name TEXT PRIMARY KEY, created_at BIGINT NOT NULL);
CREATE TABLE consumers (uuid TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT NOT NULL, generation BIGINT NOT NULL, consumer_type TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX consumers_project ON consumers (project_id, user_id);
CREATE TABLE allocations (consumer TEXT NOT NULL, provider_id BIGINT NOT NULL REFERENCES resource_providers(id), resource_class TEXT NOT NULL, used BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (consumer, provider_id, resource_class));
CREATE INDEX allocations_provider ON allocations (provider_id, resource_class);
CREATE TABLE placement_revision (id INTEGER PRIMARY KEY, revision BIGINT NOT NULL, next_provider_id BIGINT NOT NULL);
INSERT INTO placement_revision (id, revision, next_provider_id) VALUES (1, 0, 1);
"#,
    postgres: None,
}];
