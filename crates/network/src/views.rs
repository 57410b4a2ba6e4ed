//! Each resource as Neutron shows it. Attributes an unprivileged caller may not see (the
//! provider attributes, a port's binding details) are removed afterwards by the service,
//! by policy, so these views always carry everything.

use ferrostack_common::time::iso_seconds;
use serde_json::{json, Value};

use crate::model::*;

/// A network; `scopes` are the address scopes of its subnets' pools (`address-scope`).
pub fn network(
    n: &Network,
    subnets: &[String],
    scopes: &NetworkScopes,
    availability_zone: &str,
) -> Value {
    json!({
        "id": n.id,
        "name": n.name,
        "description": n.description,
        "project_id": n.project_id,
        "tenant_id": n.project_id,
        "admin_state_up": n.admin_state_up,
        "status": "ACTIVE",
        "subnets": subnets,
        "shared": n.shared,
        "router:external": n.external,
        "mtu": n.mtu,
        "port_security_enabled": n.port_security_enabled,
        "availability_zone_hints": [],
        "availability_zones": [availability_zone],
        "provider:network_type": n.network_type,
        "provider:physical_network": n.physical_network,
        "provider:segmentation_id": n.segmentation_id,
        "is_default": n.is_default,
        "dns_domain": n.dns_domain,
        "ipv4_address_scope": scopes.ipv4,
        "ipv6_address_scope": scopes.ipv6,
        "l2_adjacency": true,
        "tags": n.tags,
        "created_at": iso_seconds(n.created_at),
        "updated_at": iso_seconds(n.updated_at),
        "revision_number": n.revision_number,
    })
}

/// A subnet; `external` is its network's `router:external` (`subnet-external-network`).
pub fn subnet(s: &Subnet, external: bool) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "network_id": s.network_id,
        "project_id": s.project_id,
        "tenant_id": s.project_id,
        "ip_version": s.ip_version,
        "cidr": s.cidr,
        "gateway_ip": s.gateway_ip,
        "allocation_pools": s.allocation_pools,
        "dns_nameservers": s.dns_nameservers,
        "host_routes": s.host_routes,
        "enable_dhcp": s.enable_dhcp,
        "ipv6_ra_mode": s.ipv6_ra_mode,
        "ipv6_address_mode": s.ipv6_address_mode,
        "subnetpool_id": s.subnetpool_id,
        "segment_id": null,
        "service_types": s.service_types,
        "dns_publish_fixed_ip": false,
        "router:external": external,
        "tags": s.tags,
        "created_at": iso_seconds(s.created_at),
        "updated_at": iso_seconds(s.updated_at),
        "revision_number": s.revision_number,
    })
}

/// `binding:vif_details` as ML2/OVN fills it for an OVS-bound port.
pub fn vif_details(p: &Port) -> Value {
    if p.host.is_empty() {
        json!({})
    } else {
        json!({"port_filter": true, "connectivity": "l2", "bridge_name": "br-int", "datapath_type": "system", "bound_drivers": {"0": "ovn"}})
    }
}

pub fn port(p: &Port) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "network_id": p.network_id,
        "project_id": p.project_id,
        "tenant_id": p.project_id,
        "admin_state_up": p.admin_state_up,
        "mac_address": p.mac_address,
        "fixed_ips": p.fixed_ips,
        "device_id": p.device_id,
        "device_owner": p.device_owner,
        "status": p.status,
        "binding:host_id": p.host,
        "binding:vif_type": p.vif_type(),
        "binding:vnic_type": p.vnic_type,
        "binding:profile": p.profile,
        "binding:vif_details": vif_details(p),
        "allowed_address_pairs": p.allowed_address_pairs,
        "port_security_enabled": p.port_security_enabled,
        "security_groups": p.security_groups,
        "extra_dhcp_opts": p.extra_dhcp_opts,
        "dns_name": p.dns_name,
        "ip_allocation": "immediate",
        "tags": p.tags,
        "created_at": iso_seconds(p.created_at),
        "updated_at": iso_seconds(p.updated_at),
        "revision_number": p.revision_number,
    })
}

pub fn rule(r: &Rule) -> Value {
    json!({
        "id": r.id,
        "security_group_id": r.security_group_id,
        "project_id": r.project_id,
        "tenant_id": r.project_id,
        "direction": r.direction,
        "ethertype": r.ethertype,
        "protocol": r.protocol,
        "port_range_min": r.port_range_min,
        "port_range_max": r.port_range_max,
        "remote_ip_prefix": r.remote_ip_prefix,
        "normalized_cidr": r.remote_ip_prefix.as_deref().map(crate::model::normalized),
        "remote_group_id": r.remote_group_id,
        "remote_address_group_id": null,
        "description": r.description,
        "created_at": iso_seconds(r.created_at),
        "updated_at": iso_seconds(r.updated_at),
        "revision_number": r.revision_number,
    })
}

pub fn security_group(g: &SecurityGroup, rules: &[Rule]) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "project_id": g.project_id,
        "tenant_id": g.project_id,
        "stateful": g.stateful,
        "shared": false,
        "security_group_rules": rules.iter().map(rule).collect::<Vec<_>>(),
        "tags": g.tags,
        "created_at": iso_seconds(g.created_at),
        "updated_at": iso_seconds(g.updated_at),
        "revision_number": g.revision_number,
    })
}

/// A router; `gateway_ips` are the addresses of its gateway port.
pub fn router(r: &Router, gateway_ips: &[FixedIp], availability_zone: &str) -> Value {
    let gateway = match &r.gateway_network_id {
        Some(net) => {
            json!({"network_id": net, "enable_snat": r.enable_snat, "external_fixed_ips": gateway_ips})
        }
        None => Value::Null,
    };
    json!({
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "project_id": r.project_id,
        "tenant_id": r.project_id,
        "admin_state_up": r.admin_state_up,
        "status": "ACTIVE",
        "external_gateway_info": gateway,
        "routes": r.routes,
        "distributed": false,
        "ha": false,
        "availability_zone_hints": [],
        "availability_zones": [availability_zone],
        "flavor_id": null,
        "tags": r.tags,
        "created_at": iso_seconds(r.created_at),
        "updated_at": iso_seconds(r.updated_at),
        "revision_number": r.revision_number,
    })
}

/// A floating IP; `port` is the associated port, for `port_details`.
pub fn port_forwarding(p: &PortForwarding) -> Value {
    json!({
        "id": p.id,
        "protocol": p.protocol,
        "internal_ip_address": p.internal_ip_address,
        "internal_port": p.internal_port,
        "internal_port_id": p.internal_port_id,
        "external_port": p.external_port,
        "description": p.description,
    })
}

pub fn floating_ip(f: &FloatingIp, port: Option<&Port>, forwardings: &[PortForwarding]) -> Value {
    let details = port.map(|p| {
        json!({"name": p.name, "network_id": p.network_id, "mac_address": p.mac_address, "admin_state_up": p.admin_state_up, "status": p.status, "device_id": p.device_id, "device_owner": p.device_owner})
    });
    json!({
        "id": f.id,
        "floating_ip_address": f.floating_ip_address,
        "floating_network_id": f.floating_network_id,
        "router_id": f.router_id,
        "port_id": f.port_id,
        "fixed_ip_address": f.fixed_ip_address,
        "status": if f.port_id.is_some() || !forwardings.is_empty() { "ACTIVE" } else { "DOWN" },
        "project_id": f.project_id,
        "tenant_id": f.project_id,
        "description": f.description,
        "port_details": details,
        "port_forwardings": crate::service::port_forwardings::summary(forwardings),
        "qos_policy_id": null,
        "tags": f.tags,
        "created_at": iso_seconds(f.created_at),
        "updated_at": iso_seconds(f.updated_at),
        "revision_number": f.revision_number,
    })
}

pub fn subnet_pool(p: &SubnetPool) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "project_id": p.project_id,
        "tenant_id": p.project_id,
        "prefixes": p.prefixes,
        "ip_version": p.ip_version,
        "default_prefixlen": p.default_prefixlen,
        "min_prefixlen": p.min_prefixlen,
        "max_prefixlen": p.max_prefixlen,
        "default_quota": p.default_quota,
        "shared": p.shared,
        "is_default": p.is_default,
        "address_scope_id": p.address_scope_id,
        "tags": p.tags,
        "created_at": iso_seconds(p.created_at),
        "updated_at": iso_seconds(p.updated_at),
        "revision_number": p.revision_number,
    })
}

/// An address scope: Neutron shows exactly these attributes (no standard attributes).
pub fn address_scope(s: &AddressScope) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "project_id": s.project_id,
        "tenant_id": s.project_id,
        "shared": s.shared,
        "ip_version": s.ip_version,
    })
}

pub fn default_rule(r: &DefaultRule) -> Value {
    json!({
        "id": r.id,
        "direction": r.direction,
        "ethertype": r.ethertype,
        "protocol": r.protocol,
        "port_range_min": r.port_range_min,
        "port_range_max": r.port_range_max,
        "remote_ip_prefix": r.remote_ip_prefix,
        "remote_group_id": r.remote_group_id,
        "remote_address_group_id": null,
        "description": r.description,
        "used_in_default_sg": r.used_in_default_sg,
        "used_in_non_default_sg": r.used_in_non_default_sg,
    })
}

/// An agent as Neutron shows it; its times as Neutron's agent API writes them
/// (`2024-05-01 10:00:00`, UTC, no zone).
pub fn agent(a: &crate::backend::Agent) -> Value {
    let time = |micros: i64| {
        iso_seconds(micros)
            .replace('T', " ")
            .trim_end_matches('Z')
            .to_string()
    };
    json!({
        "id": a.id,
        "agent_type": a.agent_type,
        "binary": a.binary,
        "host": a.host,
        "topic": a.topic,
        "availability_zone": a.availability_zone,
        "description": a.description,
        "configurations": a.configurations,
        "alive": a.alive,
        "admin_state_up": a.admin_state_up,
        "created_at": time(a.created_at),
        "started_at": time(a.started_at),
        "heartbeat_timestamp": time(a.heartbeat_timestamp),
    })
}
