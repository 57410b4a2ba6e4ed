//! The API extensions this service implements, as `GET /v2.0/extensions` lists them.
//! Clients (the openstack CLI, Tempest, Nova) decide what to send by these aliases, so only
//! behaviour that exists is listed. Aliases, names and dates are Neutron's, and so are the
//! descriptions but that of `address-scope`, which says the same in other words.

pub struct Extension {
    pub alias: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub updated: &'static str,
}

const fn ext(
    alias: &'static str,
    name: &'static str,
    description: &'static str,
    updated: &'static str,
) -> Extension {
    Extension {
        alias,
        name,
        description,
        updated,
    }
}

pub const EXTENSIONS: &[Extension] = &[
    ext("address-scope", "Address scope", "Address scopes: sets of subnet pools whose prefixes never overlap.", "2015-07-26T10:00:00-00:00"),
    ext("agent", "agent", "The agent management extension.", "2013-02-03T10:00:00-00:00"),
    ext("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs", "2013-07-23T10:00:00-00:00"),
    ext("availability_zone", "Availability Zone", "The availability zone extension.", "2015-01-01T10:00:00-00:00"),
    ext("availability_zone_filter", "Availability Zone Filter Extension", "Add filter parameters to AvailabilityZone resource", "2018-06-22T10:00:00-00:00"),
    ext("binding", "Port Binding", "Expose port bindings of a virtual port to external application", "2014-02-03T10:00:00-00:00"),
    ext("external-net", "Neutron external network", "Adds external network attribute to network resource.", "2013-01-14T10:00:00-00:00"),
    ext("ext-gw-mode", "Neutron L3 Configurable external gateway mode", "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway", "2013-03-28T10:00:00-00:00"),
    ext("extra_dhcp_opt", "Neutron Extra DHCP options", "Extra options configuration for DHCP. For example PXE boot options to DHCP clients can be specified (e.g. tftp-server, server-ip-address, bootfile-name)", "2013-03-17T12:00:00-00:00"),
    ext("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router", "2013-02-01T10:00:00-00:00"),
    ext("expose-port-forwarding-in-fip", "Expose port forwarding in floating IP", "Shows a floating IP's port forwardings in its port_forwardings attribute", "2019-04-13T10:00:00-00:00"),
    ext("floating-ip-port-forwarding", "Floating IP Port Forwarding", "Forwards TCP or UDP ports of a floating IP to fixed addresses and ports behind the router", "2018-05-01T10:00:00-00:00"),
    ext("floating-ip-port-forwarding-description", "Floating IP Port Forwarding description", "A description for floating IP port forwardings", "2019-11-01T10:00:00-00:00"),
    ext("fip-port-details", "Floating IP Port Details Extension", "Add port_details attribute to Floating IP resource", "2018-04-09T10:00:00-00:00"),
    ext("ip-substring-filtering", "IP address substring filtering", "Provides IP address substring filtering when listing ports", "2017-11-28T09:00:00-00:00"),
    ext("ip_allocation", "IP Allocation", "IP allocation extension.", "2016-06-10T23:00:00-00:00"),
    ext("net-mtu", "Network MTU", "Provides MTU attribute for a network resource.", "2015-03-25T10:00:00-00:00"),
    ext("net-mtu-writable", "Network MTU (writable)", "Provides a writable MTU attribute for a network resource.", "2017-07-12T00:00:00-00:00"),
    ext("network_availability_zone", "Network Availability Zone", "Availability zone support for network.", "2015-01-01T10:00:00-00:00"),
    ext("network-ip-availability", "Network IP Availability", "Provides IP availability data for each network and subnet.", "2015-09-24T00:00:00-00:00"),
    ext("pagination", "Pagination support", "Extension that indicates that pagination is enabled.", "2016-06-12T00:00:00-00:00"),
    ext("port-security", "Port Security", "Provides port security", "2012-07-23T10:00:00-00:00"),
    ext("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled.", "2016-09-09T09:09:09-09:09"),
    ext("provider", "Provider Network", "Expose mapping of virtual networks to physical networks", "2012-09-07T10:00:00-00:00"),
    ext("quota_details", "Quota details management support", "Expose functions for quotas usage statistics per project", "2017-02-10T10:00:00-00:00"),
    ext("quotas", "Quota management support", "Expose functions for quotas management per tenant", "2012-07-29T10:00:00-00:00"),
    ext("rbac-policies", "RBAC Policies", "Allows creation and modification of policies that control project access to resources.", "2015-06-17T12:15:12-00:00"),
    ext("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway.", "2012-07-20T10:00:00-00:00"),
    ext("security-group", "security-group", "The security groups extension.", "2012-10-05T10:00:00-00:00"),
    ext("security-groups-default-rules", "Default rules for security groups", "Configure set of security group rules used as default rules for every new security group", "2022-12-19T10:00:00-00:00"),
    ext("security-groups-normalized-cidr", "Normalized CIDR field for security group rules", "Add new field with normalized remote_ip_prefix cidr in SG rule", "2020-03-05T10:00:00-00:00"),
    ext("sorting", "Sorting support", "Extension that indicates that sorting is enabled.", "2016-06-12T00:00:00-00:00"),
    ext("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes", "2016-02-10T10:00:00-00:00"),
    ext("standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number of neutron resources.", "2016-04-11T10:00:00-00:00"),
    ext("standard-attr-tag", "Tag support for resources with standard attribute: subnet, network, port, subnetpool, security_group, router, floatingip", "Enables to set tag on resources with standard attribute.", "2017-01-01T00:00:00-00:00"),
    ext("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.", "2016-09-12T10:00:00-00:00"),
    ext("stateful-security-group", "Stateful security group", "Indicates if the security group is stateful or not", "2019-11-26T09:00:00-00:00"),
    ext("subnet_allocation", "Subnet Allocation", "Enables allocation of subnets from a subnet pool", "2015-03-30T10:00:00-00:00"),
    ext("subnet-external-network", "Subnet belongs to an external network", "Informs if the subnet belongs to an external network", "2024-02-05T18:00:00-00:00"),
    ext("subnet-service-types", "Subnet service types", "Provides ability to set the subnet service_types field", "2016-03-15T18:00:00-00:00"),
];

pub fn find(alias: &str) -> Option<&'static Extension> {
    EXTENSIONS.iter().find(|e| e.alias == alias)
}
