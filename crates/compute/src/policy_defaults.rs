//! Nova's default policy (2026.1 defaults with scope checks in project scope): readers read,
//! members act on their project's servers, admins do everything and see every project.
//! Rule names are upstream's, so a policy.yaml written for OpenStack works.

const ADMIN: &str = "rule:context_is_admin";
const PROJECT_READER_OR_ADMIN: &str = "rule:project_reader_api or rule:context_is_admin";
const PROJECT_MEMBER_OR_ADMIN: &str = "rule:project_member_api or rule:context_is_admin";
const PROJECT_MANAGER_OR_ADMIN: &str = "rule:project_manager_api or rule:context_is_admin";
const ANY: &str = "";

pub const RULES: &[(&str, &str)] = &[
    ("context_is_admin", "role:admin"),
    ("admin_api", "role:admin"),
    (
        "project_member_api",
        "role:member and project_id:%(project_id)s",
    ),
    (
        "project_reader_api",
        "role:reader and project_id:%(project_id)s",
    ),
    (
        "project_manager_api",
        "role:manager and project_id:%(project_id)s",
    ),
    ("project_manager_or_admin", PROJECT_MANAGER_OR_ADMIN),
    ("project_member_or_admin", PROJECT_MEMBER_OR_ADMIN),
    ("project_reader_or_admin", PROJECT_READER_OR_ADMIN),
    (
        "admin_or_owner",
        "is_admin:True or project_id:%(project_id)s",
    ),
    ("os_compute_api:servers:index", PROJECT_READER_OR_ADMIN),
    ("os_compute_api:servers:detail", PROJECT_READER_OR_ADMIN),
    ("os_compute_api:servers:index:get_all_tenants", ADMIN),
    ("os_compute_api:servers:detail:get_all_tenants", ADMIN),
    ("os_compute_api:servers:allow_all_filters", ADMIN),
    ("os_compute_api:servers:show", PROJECT_READER_OR_ADMIN),
    ("os_compute_api:servers:show:host_status", ADMIN),
    ("os_compute_api:servers:create", PROJECT_MEMBER_OR_ADMIN),
    ("os_compute_api:servers:create:forced_host", ADMIN),
    (
        "os_compute_api:servers:create:attach_network",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    ("os_compute_api:servers:update", PROJECT_MEMBER_OR_ADMIN),
    ("os_compute_api:servers:delete", PROJECT_MEMBER_OR_ADMIN),
    ("os_compute_api:servers:start", PROJECT_MEMBER_OR_ADMIN),
    ("os_compute_api:servers:stop", PROJECT_MEMBER_OR_ADMIN),
    ("os_compute_api:servers:reboot", PROJECT_MEMBER_OR_ADMIN),
    (
        "os_compute_api:servers:create_image",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    ("os_compute_api:servers:rebuild", PROJECT_MEMBER_OR_ADMIN),
    (
        "os_compute_api:servers:rebuild:trusted_certs",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    ("os_compute_api:servers:resize", PROJECT_MEMBER_OR_ADMIN),
    (
        "os_compute_api:servers:confirm_resize",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:servers:revert_resize",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    ("os_compute_api:os-shelve:shelve", PROJECT_MEMBER_OR_ADMIN),
    ("os_compute_api:os-shelve:shelve_offload", ADMIN),
    ("os_compute_api:os-shelve:unshelve", PROJECT_MEMBER_OR_ADMIN),
    ("os_compute_api:os-shelve:unshelve_to_host", ADMIN),
    ("os_compute_api:os-rescue", PROJECT_MEMBER_OR_ADMIN),
    (
        "os_compute_api:os-attach-interfaces:list",
        PROJECT_READER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-attach-interfaces:show",
        PROJECT_READER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-attach-interfaces:create",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-attach-interfaces:delete",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    ("os_compute_api:os-unrescue", PROJECT_MEMBER_OR_ADMIN),
    ("os_compute_api:os-extended-server-attributes", ADMIN),
    (
        "os_compute_api:os-pause-server:pause",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-pause-server:unpause",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-suspend-server:suspend",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-suspend-server:resume",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-lock-server:lock",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-lock-server:unlock",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-lock-server:unlock:unlock_override",
        ADMIN,
    ),
    ("os_compute_api:os-console-output", PROJECT_MEMBER_OR_ADMIN),
    ("os_compute_api:os-remote-consoles", PROJECT_MEMBER_OR_ADMIN),
    ("os_compute_api:os-console-auth-tokens", ADMIN),
    (
        "os_compute_api:os-instance-actions:list",
        PROJECT_READER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-instance-actions:show",
        PROJECT_READER_OR_ADMIN,
    ),
    ("os_compute_api:os-instance-actions:events", ADMIN),
    (
        "os_compute_api:server-metadata:index",
        PROJECT_READER_OR_ADMIN,
    ),
    (
        "os_compute_api:server-metadata:show",
        PROJECT_READER_OR_ADMIN,
    ),
    (
        "os_compute_api:server-metadata:create",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:server-metadata:update",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:server-metadata:update_all",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:server-metadata:delete",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    ("os_compute_api:os-flavor-manage:create", ADMIN),
    ("os_compute_api:os-flavor-manage:update", ADMIN),
    ("os_compute_api:os-flavor-manage:delete", ADMIN),
    (
        "os_compute_api:os-flavor-extra-specs:index",
        PROJECT_READER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-flavor-extra-specs:show",
        PROJECT_READER_OR_ADMIN,
    ),
    ("os_compute_api:os-flavor-extra-specs:create", ADMIN),
    ("os_compute_api:os-flavor-extra-specs:update", ADMIN),
    ("os_compute_api:os-flavor-extra-specs:delete", ADMIN),
    ("os_compute_api:os-flavor-access", ADMIN),
    ("os_compute_api:os-flavor-access:add_tenant_access", ADMIN),
    (
        "os_compute_api:os-flavor-access:remove_tenant_access",
        ADMIN,
    ),
    (
        "os_compute_api:os-keypairs:index",
        "(rule:context_is_admin) or user_id:%(user_id)s",
    ),
    (
        "os_compute_api:os-keypairs:create",
        "(rule:context_is_admin) or user_id:%(user_id)s",
    ),
    (
        "os_compute_api:os-keypairs:show",
        "(rule:context_is_admin) or user_id:%(user_id)s",
    ),
    (
        "os_compute_api:os-keypairs:delete",
        "(rule:context_is_admin) or user_id:%(user_id)s",
    ),
    ("os_compute_api:os-availability-zone:list", ANY),
    ("os_compute_api:os-availability-zone:detail", ADMIN),
    ("os_compute_api:os-hypervisors:list", ADMIN),
    ("os_compute_api:os-hypervisors:list-detail", ADMIN),
    ("os_compute_api:os-hypervisors:show", ADMIN),
    ("os_compute_api:os-hypervisors:statistics", ADMIN),
    ("os_compute_api:os-hypervisors:servers", ADMIN),
    ("os_compute_api:os-services:list", ADMIN),
    ("os_compute_api:os-services:update", ADMIN),
    ("os_compute_api:os-services:delete", ADMIN),
    ("os_compute_api:limits", ANY),
    (
        "os_compute_api:os-server-tags:index",
        PROJECT_READER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-server-tags:show",
        PROJECT_READER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-server-tags:update",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-server-tags:update_all",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-server-tags:delete",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-server-tags:delete_all",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    ("os_compute_api:os-quota-sets:show", PROJECT_READER_OR_ADMIN),
    ("os_compute_api:os-quota-sets:defaults", ANY),
    (
        "os_compute_api:os-quota-sets:detail",
        PROJECT_READER_OR_ADMIN,
    ),
    ("os_compute_api:limits:other_project", ADMIN),
    ("os_compute_api:os-instance-actions:events:details", ADMIN),
    (
        "os_compute_api:os-server-groups:create",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-server-groups:delete",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-server-groups:index",
        PROJECT_READER_OR_ADMIN,
    ),
    ("os_compute_api:os-server-groups:index:all_projects", ADMIN),
    (
        "os_compute_api:os-server-groups:show",
        PROJECT_READER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-simple-tenant-usage:show",
        PROJECT_READER_OR_ADMIN,
    ),
    ("os_compute_api:os-simple-tenant-usage:list", ADMIN),
    // The security group proxy and a server's groups (Nova checks the caller's project for
    // the proxy, the server's for the server calls).
    (
        "os_compute_api:os-security-groups:get",
        PROJECT_READER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-security-groups:show",
        PROJECT_READER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-security-groups:create",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-security-groups:update",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-security-groups:delete",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-security-groups:rule:create",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-security-groups:rule:delete",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-security-groups:list",
        PROJECT_READER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-security-groups:add",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    (
        "os_compute_api:os-security-groups:remove",
        PROJECT_MEMBER_OR_ADMIN,
    ),
    ("os_compute_api:ips:index", PROJECT_READER_OR_ADMIN),
    ("os_compute_api:ips:show", PROJECT_READER_OR_ADMIN),
    // Project managers list their own project's migrations, without host names.
    (
        "os_compute_api:os-migrations:index",
        PROJECT_MANAGER_OR_ADMIN,
    ),
    ("os_compute_api:os-migrations:index:all_projects", ADMIN),
    ("os_compute_api:os-migrations:index:host", ADMIN),
];
