//! The Compute schema. Instances keep a JSON copy of their flavor (as Nova's
//! `instance_extra.flavor` does), so editing or deleting a flavor never changes a running
//! server. Rows are soft-deleted (`deleted`, `deleted_at`) because Nova's API shows deleted
//! servers to `changes-since` and admin queries. Timestamps are microseconds.
//!
//! Version 2 adds the migration records `GET /os-migrations` lists (one row per resize, cold
//! or live migration, with Nova's columns, the live-migration progress counters included) and
//! the `details` of instance action events (microversion 2.84). Version 3 adds a server's
//! system metadata (Nova's `instance_system_metadata`): what the service remembers about it
//! that users do not see, such as the image a shelved server was saved to. Version 4 adds
//! where a remote compute agent listens (`compute_nodes.agent_url`), so every control node
//! can reach it. Version 5 adds remote console tokens (Nova's `console_auth_tokens`: only
//! a hash of the token is kept).

use ferrostack_db::Migration;

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "compute",
        sql: r#"
CREATE TABLE compute_flavors (flavorid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, memory_mb BIGINT NOT NULL, vcpus BIGINT NOT NULL, root_gb BIGINT NOT NULL, ephemeral_gb BIGINT NOT NULL, swap BIGINT NOT NULL, rxtx_factor DOUBLE PRECISION NOT NULL, is_public BOOLEAN NOT NULL, disabled BOOLEAN NOT NULL, description TEXT, created_at BIGINT NOT NULL, updated_at BIGINT);
CREATE TABLE compute_flavor_extra_specs (flavorid TEXT NOT NULL REFERENCES compute_flavors(flavorid) ON DELETE CASCADE, spec_key TEXT NOT NULL, spec_value TEXT NOT NULL, PRIMARY KEY (flavorid, spec_key));
CREATE TABLE compute_flavor_projects (flavorid TEXT NOT NULL REFERENCES compute_flavors(flavorid) ON DELETE CASCADE, project_id TEXT NOT NULL, PRIMARY KEY (flavorid, project_id));
CREATE TABLE compute_keypairs (user_id TEXT NOT NULL, name TEXT NOT NULL, key_type TEXT NOT NULL, fingerprint TEXT NOT NULL, public_key TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (user_id, name));
CREATE TABLE compute_instances (uuid TEXT PRIMARY KEY, id BIGINT NOT NULL UNIQUE, display_name TEXT NOT NULL, project_id TEXT NOT NULL, user_id TEXT NOT NULL, image_ref TEXT NOT NULL, flavor TEXT NOT NULL, vm_state TEXT NOT NULL, task_state TEXT, power_state BIGINT NOT NULL, host TEXT, node TEXT, availability_zone TEXT, key_name TEXT, key_data TEXT, user_data TEXT, config_drive BOOLEAN NOT NULL, access_ipv4 TEXT, access_ipv6 TEXT, locked_by TEXT, locked_reason TEXT, description TEXT, hostname TEXT NOT NULL, reservation_id TEXT NOT NULL, launch_index BIGINT NOT NULL, request TEXT NOT NULL, launched_at BIGINT, terminated_at BIGINT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, deleted BOOLEAN NOT NULL, deleted_at BIGINT);
CREATE INDEX compute_instances_project ON compute_instances (project_id, deleted);
CREATE INDEX compute_instances_host ON compute_instances (host);
CREATE INDEX compute_instances_updated ON compute_instances (updated_at);
CREATE TABLE compute_instance_metadata (instance_uuid TEXT NOT NULL REFERENCES compute_instances(uuid) ON DELETE CASCADE, meta_key TEXT NOT NULL, meta_value TEXT NOT NULL, PRIMARY KEY (instance_uuid, meta_key));
CREATE TABLE compute_instance_tags (instance_uuid TEXT NOT NULL REFERENCES compute_instances(uuid) ON DELETE CASCADE, tag TEXT NOT NULL, PRIMARY KEY (instance_uuid, tag));
CREATE TABLE compute_instance_faults (instance_uuid TEXT NOT NULL REFERENCES compute_instances(uuid) ON DELETE CASCADE, code BIGINT NOT NULL, message TEXT NOT NULL, details TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE INDEX compute_instance_faults_instance ON compute_instance_faults (instance_uuid, created_at);
CREATE TABLE compute_instance_actions (id TEXT PRIMARY KEY, instance_uuid TEXT NOT NULL REFERENCES compute_instances(uuid) ON DELETE CASCADE, action TEXT NOT NULL, request_id TEXT NOT NULL, user_id TEXT NOT NULL, project_id TEXT NOT NULL, start_time BIGINT NOT NULL, finish_time BIGINT, message TEXT, updated_at BIGINT NOT NULL);
CREATE INDEX compute_instance_actions_instance ON compute_instance_actions (instance_uuid, start_time);
CREATE TABLE compute_instance_action_events (action_id TEXT NOT NULL REFERENCES compute_instance_actions(id) ON DELETE CASCADE, event TEXT NOT NULL, start_time BIGINT NOT NULL, finish_time BIGINT, result TEXT, traceback TEXT, host TEXT, PRIMARY KEY (action_id, event));
CREATE TABLE compute_server_groups (uuid TEXT PRIMARY KEY, name TEXT NOT NULL, project_id TEXT NOT NULL, user_id TEXT NOT NULL, policy TEXT NOT NULL, rules TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE compute_server_group_members (group_uuid TEXT NOT NULL REFERENCES compute_server_groups(uuid) ON DELETE CASCADE, instance_uuid TEXT NOT NULL, PRIMARY KEY (group_uuid, instance_uuid));
CREATE TABLE compute_services (id TEXT PRIMARY KEY, host TEXT NOT NULL, binary_name TEXT NOT NULL, topic TEXT NOT NULL, zone TEXT NOT NULL, disabled BOOLEAN NOT NULL, disabled_reason TEXT, forced_down BOOLEAN NOT NULL, last_seen_up BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, UNIQUE (host, binary_name));
CREATE TABLE compute_nodes (uuid TEXT PRIMARY KEY, host TEXT NOT NULL UNIQUE, hypervisor_hostname TEXT NOT NULL, hypervisor_type TEXT NOT NULL, hypervisor_version BIGINT NOT NULL, accel TEXT NOT NULL, vcpus BIGINT NOT NULL, memory_mb BIGINT NOT NULL, local_gb BIGINT NOT NULL, cpu_info TEXT NOT NULL, host_ip TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE TABLE compute_counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO compute_counters (name, value) VALUES ('instance_id', 0);
"#,
        postgres: None,
    },
    Migration {
        version: 2,
        name: "migration records and action event details",
        sql: r#"
CREATE TABLE compute_migrations (id BIGINT PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, instance_uuid TEXT NOT NULL, migration_type TEXT NOT NULL, status TEXT NOT NULL, source_compute TEXT, source_node TEXT, dest_compute TEXT, dest_node TEXT, dest_host TEXT, old_instance_type_id TEXT, new_instance_type_id TEXT, hidden BOOLEAN NOT NULL, memory_total BIGINT, memory_processed BIGINT, memory_remaining BIGINT, disk_total BIGINT, disk_processed BIGINT, disk_remaining BIGINT, user_id TEXT, project_id TEXT, created_at BIGINT NOT NULL, updated_at BIGINT);
CREATE INDEX compute_migrations_instance ON compute_migrations (instance_uuid);
CREATE INDEX compute_migrations_created ON compute_migrations (created_at, id);
INSERT INTO compute_counters (name, value) VALUES ('migration_id', 0);
ALTER TABLE compute_instance_action_events ADD COLUMN details TEXT;
"#,
        postgres: None,
    },
    Migration {
        version: 3,
        name: "system_metadata",
        sql: r#"
CREATE TABLE compute_instance_system_metadata (instance_uuid TEXT NOT NULL REFERENCES compute_instances(uuid) ON DELETE CASCADE, meta_key TEXT NOT NULL, meta_value TEXT NOT NULL, PRIMARY KEY (instance_uuid, meta_key));
"#,
        postgres: None,
    },
    Migration {
        version: 4,
        name: "remote agents",
        sql: r#"
ALTER TABLE compute_nodes ADD COLUMN agent_url TEXT;
"#,
        postgres: None,
    },
    Migration {
        version: 5,
        name: "console auth tokens",
        sql: r#"
CREATE TABLE compute_console_auth_tokens (token_hash TEXT PRIMARY KEY, console_type TEXT NOT NULL, instance_uuid TEXT NOT NULL, host TEXT NOT NULL, expires BIGINT NOT NULL, created_at BIGINT NOT NULL);
CREATE INDEX compute_console_auth_tokens_instance ON compute_console_auth_tokens (instance_uuid);
"#,
        postgres: None,
    },
    Migration {
        version: 6,
        name: "network info cache",
        sql: r#"
ALTER TABLE compute_instances ADD COLUMN network_info TEXT;
"#,
        postgres: None,
    },
];
