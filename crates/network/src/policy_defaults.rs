//! Neutron's default policy (secure RBAC personas) in oslo.policy syntax. Targets carry
//! the resource's `project_id`, its network's owner as `network:project_id`, and whether
//! that network is `shared` or `router:external`. A rule named `<action>:<attribute>` is
//! checked when a request sets (or a reply would show) that attribute, as in Neutron.

const ADMIN: &str = "rule:admin_only";
const MEMBER_OWNER: &str = "rule:admin_only or (role:member and project_id:%(project_id)s)";
const READER_OWNER: &str = "rule:admin_only or (role:reader and project_id:%(project_id)s)";
const NETWORK_MEMBER: &str = "rule:admin_only or (role:member and rule:network_owner)";
const ADMIN_OR_NETWORK_OWNER: &str = "rule:admin_only or rule:network_owner";

pub const RULES: &[(&str, &str)] = &[
    ("context_is_admin", "role:admin"),
    ("admin_only", "rule:context_is_admin"),
    ("network_owner", "project_id:%(network:project_id)s"),
    ("shared", "'True':%(shared)s"),
    ("external", "'True':%(router:external)s"),
    ("default", ADMIN),
    // networks
    ("create_network", MEMBER_OWNER),
    ("create_network:shared", ADMIN),
    ("create_network:router:external", ADMIN),
    ("create_network:is_default", ADMIN),
    ("create_network:provider:network_type", ADMIN),
    ("create_network:provider:physical_network", ADMIN),
    ("create_network:provider:segmentation_id", ADMIN),
    ("get_network", "rule:admin_only or (role:reader and project_id:%(project_id)s) or rule:shared or rule:external"),
    ("get_network:provider:network_type", ADMIN),
    ("get_network:provider:physical_network", ADMIN),
    ("get_network:provider:segmentation_id", ADMIN),
    ("update_network", MEMBER_OWNER),
    ("update_network:shared", ADMIN),
    ("update_network:router:external", ADMIN),
    ("update_network:is_default", ADMIN),
    ("update_network:provider:network_type", ADMIN),
    ("update_network:provider:physical_network", ADMIN),
    ("update_network:provider:segmentation_id", ADMIN),
    ("delete_network", MEMBER_OWNER),
    // subnets
    ("create_subnet", NETWORK_MEMBER),
    ("get_subnet", "rule:admin_only or (role:reader and project_id:%(project_id)s) or rule:shared or rule:external"),
    ("update_subnet", NETWORK_MEMBER),
    ("delete_subnet", NETWORK_MEMBER),
    // ports
    ("create_port", "rule:admin_only or (role:member and project_id:%(project_id)s) or (role:member and rule:network_owner)"),
    ("create_port:mac_address", ADMIN_OR_NETWORK_OWNER),
    ("create_port:device_owner", ADMIN_OR_NETWORK_OWNER),
    ("create_port:fixed_ips:ip_address", ADMIN_OR_NETWORK_OWNER),
    ("create_port:fixed_ips:subnet_id", "rule:admin_only or rule:network_owner or rule:shared"),
    ("create_port:port_security_enabled", ADMIN_OR_NETWORK_OWNER),
    ("create_port:binding:host_id", ADMIN),
    ("create_port:binding:profile", ADMIN),
    ("get_port", "rule:admin_only or (role:reader and project_id:%(project_id)s) or (role:reader and rule:network_owner)"),
    ("get_port:binding:vif_type", ADMIN),
    ("get_port:binding:vif_details", ADMIN),
    ("get_port:binding:host_id", ADMIN),
    ("get_port:binding:profile", ADMIN),
    ("update_port", "rule:admin_only or (role:member and project_id:%(project_id)s) or (role:member and rule:network_owner)"),
    ("update_port:mac_address", ADMIN),
    ("update_port:device_owner", ADMIN_OR_NETWORK_OWNER),
    ("update_port:fixed_ips:ip_address", ADMIN_OR_NETWORK_OWNER),
    ("update_port:port_security_enabled", ADMIN_OR_NETWORK_OWNER),
    ("update_port:binding:host_id", ADMIN),
    ("update_port:binding:profile", ADMIN),
    ("delete_port", "rule:admin_only or (role:member and project_id:%(project_id)s) or (role:member and rule:network_owner)"),
    // security groups
    ("create_security_group", MEMBER_OWNER),
    ("get_security_group", READER_OWNER),
    ("update_security_group", MEMBER_OWNER),
    ("delete_security_group", MEMBER_OWNER),
    ("create_security_group_rule", MEMBER_OWNER),
    ("get_security_group_rule", READER_OWNER),
    ("update_security_group_rule", MEMBER_OWNER),
    ("delete_security_group_rule", MEMBER_OWNER),
    // routers
    ("create_router", MEMBER_OWNER),
    ("create_router:external_gateway_info:enable_snat", ADMIN),
    ("create_router:external_gateway_info:external_fixed_ips", ADMIN),
    ("create_router:distributed", ADMIN),
    ("create_router:ha", ADMIN),
    ("get_router", READER_OWNER),
    ("get_router:distributed", ADMIN),
    ("get_router:ha", ADMIN),
    ("update_router", MEMBER_OWNER),
    ("update_router:external_gateway_info:enable_snat", ADMIN),
    ("update_router:external_gateway_info:external_fixed_ips", ADMIN),
    ("update_router:distributed", ADMIN),
    ("update_router:ha", ADMIN),
    ("delete_router", MEMBER_OWNER),
    ("add_router_interface", MEMBER_OWNER),
    ("remove_router_interface", MEMBER_OWNER),
    // floating IPs
    ("create_floatingip", MEMBER_OWNER),
    ("create_floatingip:floating_ip_address", ADMIN),
    ("get_floatingip", READER_OWNER),
    ("update_floatingip", MEMBER_OWNER),
    ("delete_floatingip", MEMBER_OWNER),
    // floating IP port forwardings (the floating IP's project owns them)
    ("create_floatingip_port_forwarding", MEMBER_OWNER),
    ("get_floatingip_port_forwarding", READER_OWNER),
    ("update_floatingip_port_forwarding", MEMBER_OWNER),
    ("delete_floatingip_port_forwarding", MEMBER_OWNER),
    // subnet pools
    ("create_subnetpool", MEMBER_OWNER),
    ("create_subnetpool:shared", ADMIN),
    ("create_subnetpool:is_default", ADMIN),
    ("get_subnetpool", "rule:admin_only or (role:reader and project_id:%(project_id)s) or rule:shared"),
    ("update_subnetpool", MEMBER_OWNER),
    ("update_subnetpool:is_default", ADMIN),
    ("delete_subnetpool", MEMBER_OWNER),
    // address scopes
    ("create_address_scope", MEMBER_OWNER),
    ("create_address_scope:shared", ADMIN),
    ("get_address_scope", "rule:admin_only or (role:reader and project_id:%(project_id)s) or rule:shared"),
    ("update_address_scope", MEMBER_OWNER),
    ("update_address_scope:shared", ADMIN),
    ("delete_address_scope", MEMBER_OWNER),
    // the default security group rules template
    ("get_default_security_group_rule", "rule:admin_only or role:reader"),
    ("create_default_security_group_rule", ADMIN),
    ("delete_default_security_group_rule", ADMIN),
    // agents (ML2/OVN's are the chassis)
    ("get_agent", ADMIN),
    ("update_agent", ADMIN),
    ("delete_agent", ADMIN),
    // RBAC policies (`:target_tenant` is checked when the target is `*`)
    ("create_rbac_policy", MEMBER_OWNER),
    ("create_rbac_policy:target_tenant", ADMIN),
    ("get_rbac_policy", READER_OWNER),
    ("update_rbac_policy", MEMBER_OWNER),
    ("update_rbac_policy:target_tenant", ADMIN),
    ("delete_rbac_policy", MEMBER_OWNER),
    // availability zones
    ("get_availability_zone", "rule:admin_only or role:reader"),
    // IP availability
    ("get_network_ip_availability", ADMIN),
    // quotas
    ("get_quota", READER_OWNER),
    ("update_quota", ADMIN),
    ("delete_quota", ADMIN),
];
