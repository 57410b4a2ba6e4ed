//! The Networking schema, the same numbers on SQLite and PostgreSQL. Every table is named
//! `network_*` (the services share one database). Times are microseconds since the epoch;
//! lists that belong to a row are JSON text.
//!
//! Uniqueness the API promises is kept by the database, so concurrent requests cannot
//! both win: a MAC address once per network, an IP address once per subnet
//! (`network_ip_allocations`' key), a segment (`geneve:VNI`, `flat:PHYSNET`) once, one
//! default security group per project.
//!
//! Migration 2 adds routers and floating IPs. A router's interfaces and gateway are ports
//! (found by `device_id`); a fixed address is the target of at most one floating IP.
//!
//! Migration 3 adds subnet pools; a subnet records the pool its CIDR came from.
//!
//! Migration 4 holds the default security group rules template, seeded with Neutron's
//! defaults (ingress from the group itself into `default` groups, egress anywhere into all).
//!
//! Migration 5 makes two subnets created at once on one network unable to give it two
//! metadata ports: the second insert fails and its transaction starts again.
//!
//! Migration 6 adds RBAC policies (`network_rbac_policies`), one row per (object type,
//! object, action, target project). A network's `shared` and `external` columns stay,
//! kept equal to "a `*` access_as_shared policy exists" and "an access_as_external policy
//! exists"; the wildcard rows of networks made before this migration are written at start
//! (`store::backfill_network_rbac`).
//!
//! Migration 7 adds address scopes; a subnet pool names the scope its prefixes belong to
//! (the foreign key keeps a scope with pools from going, whatever the interleaving).
//!
//! Migration 8 adds floating IP port forwardings: an external port of a floating IP per
//! protocol once, and an internal (port, address, port number) per protocol once.

use ferrostack_db::Migration;

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "networks, subnets, ports, security groups, quotas",
        sql: r#"
CREATE TABLE network_networks (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, admin_state_up BOOLEAN NOT NULL, shared BOOLEAN NOT NULL, external BOOLEAN NOT NULL, mtu BIGINT NOT NULL, port_security_enabled BOOLEAN NOT NULL, network_type TEXT NOT NULL, physical_network TEXT, segmentation_id BIGINT, segment_key TEXT UNIQUE, is_default BOOLEAN NOT NULL, dns_domain TEXT NOT NULL, tags TEXT NOT NULL, revision_number BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX network_networks_project ON network_networks (project_id);
CREATE TABLE network_subnets (id TEXT PRIMARY KEY, network_id TEXT NOT NULL REFERENCES network_networks(id), project_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, ip_version BIGINT NOT NULL, cidr TEXT NOT NULL, gateway_ip TEXT, allocation_pools TEXT NOT NULL, dns_nameservers TEXT NOT NULL, host_routes TEXT NOT NULL, enable_dhcp BOOLEAN NOT NULL, ipv6_ra_mode TEXT, ipv6_address_mode TEXT, service_types TEXT NOT NULL, tags TEXT NOT NULL, revision_number BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX network_subnets_network ON network_subnets (network_id);
CREATE TABLE network_ports (id TEXT PRIMARY KEY, network_id TEXT NOT NULL REFERENCES network_networks(id), project_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, admin_state_up BOOLEAN NOT NULL, mac_address TEXT NOT NULL, device_id TEXT NOT NULL, device_owner TEXT NOT NULL, status TEXT NOT NULL, host TEXT NOT NULL, vnic_type TEXT NOT NULL, profile TEXT NOT NULL, allowed_address_pairs TEXT NOT NULL, port_security_enabled BOOLEAN NOT NULL, extra_dhcp_opts TEXT NOT NULL, dns_name TEXT NOT NULL, tags TEXT NOT NULL, revision_number BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, UNIQUE (network_id, mac_address));
CREATE INDEX network_ports_network ON network_ports (network_id);
CREATE INDEX network_ports_project ON network_ports (project_id);
CREATE INDEX network_ports_device ON network_ports (device_id);
CREATE TABLE network_ip_allocations (subnet_id TEXT NOT NULL REFERENCES network_subnets(id), ip_address TEXT NOT NULL, network_id TEXT NOT NULL, port_id TEXT NOT NULL REFERENCES network_ports(id), position BIGINT NOT NULL, PRIMARY KEY (subnet_id, ip_address));
CREATE INDEX network_ip_allocations_port ON network_ip_allocations (port_id);
CREATE TABLE network_security_groups (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, stateful BOOLEAN NOT NULL, tags TEXT NOT NULL, revision_number BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX network_security_groups_project ON network_security_groups (project_id);
CREATE TABLE network_default_security_groups (project_id TEXT PRIMARY KEY, security_group_id TEXT NOT NULL REFERENCES network_security_groups(id));
CREATE TABLE network_security_group_rules (id TEXT PRIMARY KEY, security_group_id TEXT NOT NULL REFERENCES network_security_groups(id), project_id TEXT NOT NULL, direction TEXT NOT NULL, ethertype TEXT NOT NULL, protocol TEXT, port_range_min BIGINT, port_range_max BIGINT, remote_ip_prefix TEXT, remote_group_id TEXT, description TEXT NOT NULL, revision_number BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX network_security_group_rules_group ON network_security_group_rules (security_group_id);
CREATE TABLE network_port_security_groups (port_id TEXT NOT NULL REFERENCES network_ports(id), security_group_id TEXT NOT NULL REFERENCES network_security_groups(id), PRIMARY KEY (port_id, security_group_id));
CREATE INDEX network_port_security_groups_group ON network_port_security_groups (security_group_id);
CREATE TABLE network_quotas (project_id TEXT NOT NULL, resource TEXT NOT NULL, hard_limit BIGINT NOT NULL, PRIMARY KEY (project_id, resource));
"#,
        postgres: None,
    },
    Migration {
        version: 2,
        name: "routers and floating IPs",
        sql: r#"
CREATE TABLE network_routers (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, admin_state_up BOOLEAN NOT NULL, gateway_network_id TEXT, gateway_port_id TEXT, enable_snat BOOLEAN NOT NULL, routes TEXT NOT NULL, tags TEXT NOT NULL, revision_number BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX network_routers_project ON network_routers (project_id);
CREATE TABLE network_floatingips (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, floating_network_id TEXT NOT NULL REFERENCES network_networks(id), floating_ip_address TEXT NOT NULL, floating_port_id TEXT NOT NULL, port_id TEXT, fixed_ip_address TEXT, router_id TEXT, description TEXT NOT NULL, tags TEXT NOT NULL, revision_number BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, UNIQUE (port_id, fixed_ip_address));
CREATE INDEX network_floatingips_project ON network_floatingips (project_id);
CREATE INDEX network_floatingips_router ON network_floatingips (router_id);
"#,
        postgres: None,
    },
    Migration {
        version: 3,
        name: "subnet pools",
        sql: r#"
CREATE TABLE network_subnetpools (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, prefixes TEXT NOT NULL, ip_version BIGINT NOT NULL, default_prefixlen BIGINT NOT NULL, min_prefixlen BIGINT NOT NULL, max_prefixlen BIGINT NOT NULL, default_quota BIGINT, shared BOOLEAN NOT NULL, is_default BOOLEAN NOT NULL, tags TEXT NOT NULL, revision_number BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX network_subnetpools_project ON network_subnetpools (project_id);
ALTER TABLE network_subnets ADD COLUMN subnetpool_id TEXT;
CREATE UNIQUE INDEX network_subnets_pool_cidr ON network_subnets (subnetpool_id, cidr);
"#,
        postgres: None,
    },
    Migration {
        version: 4,
        name: "default security group rules template",
        sql: concat!(
            "CREATE TABLE network_default_sg_rules (id TEXT PRIMARY KEY, direction TEXT NOT NULL, ethertype TEXT NOT NULL, protocol TEXT, port_range_min BIGINT, port_range_max BIGINT, remote_ip_prefix TEXT, remote_group_id TEXT, description TEXT NOT NULL, used_in_default_sg BOOLEAN NOT NULL, used_in_non_default_sg BOOLEAN NOT NULL, position BIGINT NOT NULL);\n",
            "INSERT INTO network_default_sg_rules (id, direction, ethertype, protocol, port_range_min, port_range_max, remote_ip_prefix, remote_group_id, description, used_in_default_sg, used_in_non_default_sg, position) VALUES\n('0d1f5a3e-8c6b-4d2a-9e61-5b7c0a9f1e01', 'ingress', 'IPv4', NULL, NULL, NULL, NULL, 'PARENT', '', TRUE, FALSE, 1),\n('0d1f5a3e-8c6b-4d2a-9e61-5b7c0a9f1e02', 'ingress', 'IPv6', NULL, NULL, NULL, NULL, 'PARENT', '', TRUE, FALSE, 2),\n('0d1f5a3e-8c6b-4d2a-9e61-5b7c0a9f1e03', 'egress', 'IPv4', NULL, NULL, NULL, NULL, NULL, '', TRUE, TRUE, 3),\n('0d1f5a3e-8c6b-4d2a-9e61-5b7c0a9f1e04', 'egress', 'IPv6', NULL, NULL, NULL, NULL, NULL, '', TRUE, TRUE, 4);\n"
        ),
        postgres: None,
    },
    Migration {
        version: 5,
        name: "one metadata port per network",
        sql: "CREATE UNIQUE INDEX network_ports_metadata ON network_ports (network_id) WHERE device_owner = 'network:distributed'",
        postgres: None,
    },
    Migration {
        version: 6,
        name: "RBAC policies",
        sql: r#"
CREATE TABLE network_rbac_policies (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, object_type TEXT NOT NULL, object_id TEXT NOT NULL, action TEXT NOT NULL, target_project TEXT NOT NULL, UNIQUE (object_type, object_id, action, target_project));
CREATE INDEX network_rbac_policies_object ON network_rbac_policies (object_id);
CREATE INDEX network_rbac_policies_target ON network_rbac_policies (target_project);
"#,
        postgres: None,
    },
    Migration {
        version: 7,
        name: "address scopes",
        sql: r#"
CREATE TABLE network_address_scopes (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, shared BOOLEAN NOT NULL, ip_version BIGINT NOT NULL);
CREATE INDEX network_address_scopes_project ON network_address_scopes (project_id);
ALTER TABLE network_subnetpools ADD COLUMN address_scope_id TEXT REFERENCES network_address_scopes(id);
CREATE INDEX network_subnetpools_scope ON network_subnetpools (address_scope_id);
"#,
        postgres: None,
    },
    Migration {
        version: 8,
        name: "floating IP port forwardings",
        sql: r#"
CREATE TABLE network_port_forwardings (id TEXT PRIMARY KEY, floatingip_id TEXT NOT NULL REFERENCES network_floatingips(id), project_id TEXT NOT NULL, protocol TEXT NOT NULL, internal_ip_address TEXT NOT NULL, internal_port BIGINT NOT NULL, external_port BIGINT NOT NULL, internal_port_id TEXT NOT NULL, description TEXT NOT NULL, UNIQUE (floatingip_id, protocol, external_port), UNIQUE (internal_port_id, internal_ip_address, internal_port, protocol));
CREATE INDEX network_port_forwardings_port ON network_port_forwardings (internal_port_id);
"#,
        postgres: None,
    },
];
