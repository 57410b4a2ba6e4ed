//! Placement's default policy. Placement is an admin and service API: nova, neutron and
//! cyborg call it with the `service` role, operators with `admin`; project users have no
//! business there. Rule names are upstream's, so a policy.yaml written for OpenStack works.

const ADMIN_OR_SERVICE: &str = "role:admin or role:service";

pub const RULES: &[(&str, &str)] = &[
    ("admin_api", "role:admin"),
    ("service_api", "role:service"),
    ("admin_or_service_api", ADMIN_OR_SERVICE),
    ("placement:resource_providers:list", ADMIN_OR_SERVICE),
    ("placement:resource_providers:create", ADMIN_OR_SERVICE),
    ("placement:resource_providers:show", ADMIN_OR_SERVICE),
    ("placement:resource_providers:update", ADMIN_OR_SERVICE),
    ("placement:resource_providers:delete", ADMIN_OR_SERVICE),
    (
        "placement:resource_providers:inventories:list",
        ADMIN_OR_SERVICE,
    ),
    (
        "placement:resource_providers:inventories:create",
        ADMIN_OR_SERVICE,
    ),
    (
        "placement:resource_providers:inventories:show",
        ADMIN_OR_SERVICE,
    ),
    (
        "placement:resource_providers:inventories:update",
        ADMIN_OR_SERVICE,
    ),
    (
        "placement:resource_providers:inventories:delete",
        ADMIN_OR_SERVICE,
    ),
    (
        "placement:resource_providers:aggregates:list",
        ADMIN_OR_SERVICE,
    ),
    (
        "placement:resource_providers:aggregates:update",
        ADMIN_OR_SERVICE,
    ),
    ("placement:resource_providers:usages", ADMIN_OR_SERVICE),
    ("placement:resource_providers:traits:list", ADMIN_OR_SERVICE),
    (
        "placement:resource_providers:traits:update",
        ADMIN_OR_SERVICE,
    ),
    (
        "placement:resource_providers:traits:delete",
        ADMIN_OR_SERVICE,
    ),
    (
        "placement:resource_providers:allocations:list",
        ADMIN_OR_SERVICE,
    ),
    ("placement:usages", ADMIN_OR_SERVICE),
    ("placement:traits:list", ADMIN_OR_SERVICE),
    ("placement:traits:show", ADMIN_OR_SERVICE),
    ("placement:traits:update", ADMIN_OR_SERVICE),
    ("placement:traits:delete", ADMIN_OR_SERVICE),
    ("placement:resource_classes:list", ADMIN_OR_SERVICE),
    ("placement:resource_classes:create", ADMIN_OR_SERVICE),
    ("placement:resource_classes:show", ADMIN_OR_SERVICE),
    ("placement:resource_classes:update", ADMIN_OR_SERVICE),
    ("placement:resource_classes:delete", ADMIN_OR_SERVICE),
    ("placement:allocations:list", ADMIN_OR_SERVICE),
    ("placement:allocations:manage", ADMIN_OR_SERVICE),
    ("placement:allocations:update", ADMIN_OR_SERVICE),
    ("placement:allocations:delete", ADMIN_OR_SERVICE),
    ("placement:allocation_candidates:list", ADMIN_OR_SERVICE),
    ("placement:reshaper:reshape", ADMIN_OR_SERVICE),
];
