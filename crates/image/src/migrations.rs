//! The Image schema. Deleted images keep their row (status `deleted`) so an id is never
//! reused, as in Glance. Timestamps are microseconds; custom properties and tags are JSON.

use ferrostack_db::Migration;

pub const MIGRATIONS: &[Migration] = &[Migration {
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
}];
