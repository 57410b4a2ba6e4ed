//! All SQL of the Networking service. Functions take a connection so the service decides
//! what runs in one transaction; reads that need no transaction borrow one from the pool.

use ferrostack_db::sqlx::{self, any::AnyRow, AnyConnection, Row};
use ferrostack_db::RowExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::*;

type R<T> = Result<T, sqlx::Error>;

fn js<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn pj<T: DeserializeOwned + Default>(r: &AnyRow, col: &str) -> T {
    r.try_get::<String, _>(col)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn network(r: AnyRow) -> Network {
    Network {
        id: r.get("id"),
        project_id: r.get("project_id"),
        name: r.get("name"),
        description: r.get("description"),
        admin_state_up: r.flag("admin_state_up"),
        shared: r.flag("shared"),
        external: r.flag("external"),
        mtu: r.get("mtu"),
        port_security_enabled: r.flag("port_security_enabled"),
        network_type: r.get("network_type"),
        physical_network: r.get("physical_network"),
        segmentation_id: r.get("segmentation_id"),
        is_default: r.flag("is_default"),
        dns_domain: r.get("dns_domain"),
        tags: pj(&r, "tags"),
        revision_number: r.get("revision_number"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        shared_with: Vec::new(),
    }
}

fn subnet(r: AnyRow) -> Subnet {
    Subnet {
        id: r.get("id"),
        network_id: r.get("network_id"),
        project_id: r.get("project_id"),
        name: r.get("name"),
        description: r.get("description"),
        ip_version: r.get("ip_version"),
        cidr: r.get("cidr"),
        gateway_ip: r.get("gateway_ip"),
        allocation_pools: pj(&r, "allocation_pools"),
        dns_nameservers: pj(&r, "dns_nameservers"),
        host_routes: pj(&r, "host_routes"),
        enable_dhcp: r.flag("enable_dhcp"),
        ipv6_ra_mode: r.get("ipv6_ra_mode"),
        ipv6_address_mode: r.get("ipv6_address_mode"),
        service_types: pj(&r, "service_types"),
        subnetpool_id: r.try_get("subnetpool_id").ok().flatten(),
        tags: pj(&r, "tags"),
        revision_number: r.get("revision_number"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

fn port(r: AnyRow) -> Port {
    Port {
        id: r.get("id"),
        network_id: r.get("network_id"),
        project_id: r.get("project_id"),
        name: r.get("name"),
        description: r.get("description"),
        admin_state_up: r.flag("admin_state_up"),
        mac_address: r.get("mac_address"),
        device_id: r.get("device_id"),
        device_owner: r.get("device_owner"),
        status: r.get("status"),
        fixed_ips: Vec::new(),
        host: r.get("host"),
        vnic_type: r.get("vnic_type"),
        profile: r
            .try_get::<String, _>("profile")
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| serde_json::json!({})),
        allowed_address_pairs: pj(&r, "allowed_address_pairs"),
        port_security_enabled: r.flag("port_security_enabled"),
        security_groups: Vec::new(),
        extra_dhcp_opts: pj(&r, "extra_dhcp_opts"),
        dns_name: r.get("dns_name"),
        tags: pj(&r, "tags"),
        revision_number: r.get("revision_number"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

fn group(r: AnyRow) -> SecurityGroup {
    SecurityGroup {
        id: r.get("id"),
        project_id: r.get("project_id"),
        name: r.get("name"),
        description: r.get("description"),
        stateful: r.flag("stateful"),
        tags: pj(&r, "tags"),
        revision_number: r.get("revision_number"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

fn rule(r: AnyRow) -> Rule {
    Rule {
        id: r.get("id"),
        security_group_id: r.get("security_group_id"),
        project_id: r.get("project_id"),
        direction: r.get("direction"),
        ethertype: r.get("ethertype"),
        protocol: r.get("protocol"),
        port_range_min: r.get("port_range_min"),
        port_range_max: r.get("port_range_max"),
        remote_ip_prefix: r.get("remote_ip_prefix"),
        remote_group_id: r.get("remote_group_id"),
        description: r.get("description"),
        revision_number: r.get("revision_number"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

/// The segment a network occupies, unique across networks.
pub fn segment_key(n: &Network) -> Option<String> {
    match (
        n.network_type.as_str(),
        n.segmentation_id,
        &n.physical_network,
    ) {
        ("flat", _, Some(p)) => Some(format!("flat:{p}")),
        (t, Some(id), _) => Some(format!("{t}:{id}")),
        _ => None,
    }
}

// ---------------------------------------------------------------- networks

pub async fn insert_network(c: &mut AnyConnection, n: &Network) -> R<()> {
    sqlx::query(
        "INSERT INTO network_networks (id, project_id, name, description, admin_state_up, shared, external, mtu, port_security_enabled, network_type, physical_network, segmentation_id, segment_key, is_default, dns_domain, tags, revision_number, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19)",
    )
    .bind(&n.id).bind(&n.project_id).bind(&n.name).bind(&n.description).bind(n.admin_state_up).bind(n.shared).bind(n.external)
    .bind(n.mtu).bind(n.port_security_enabled).bind(&n.network_type).bind(&n.physical_network).bind(n.segmentation_id)
    .bind(segment_key(n)).bind(n.is_default).bind(&n.dns_domain).bind(js(&n.tags)).bind(n.revision_number).bind(n.created_at).bind(n.updated_at)
    .execute(c).await.map(drop)
}

/// Saves every mutable attribute of `n` (the caller has bumped its revision).
pub async fn update_network(c: &mut AnyConnection, n: &Network) -> R<()> {
    sqlx::query(
        "UPDATE network_networks SET name=$2, description=$3, admin_state_up=$4, shared=$5, external=$6, mtu=$7, port_security_enabled=$8, is_default=$9, dns_domain=$10, tags=$11, revision_number=$12, updated_at=$13 WHERE id=$1",
    )
    .bind(&n.id).bind(&n.name).bind(&n.description).bind(n.admin_state_up).bind(n.shared).bind(n.external).bind(n.mtu)
    .bind(n.port_security_enabled).bind(n.is_default).bind(&n.dns_domain).bind(js(&n.tags)).bind(n.revision_number).bind(n.updated_at)
    .execute(c).await.map(drop)
}

/// Bumps a network's revision (its subnets changed), as Neutron does.
pub async fn touch_network(c: &mut AnyConnection, id: &str, now: i64) -> R<()> {
    sqlx::query("UPDATE network_networks SET revision_number = revision_number + 1, updated_at=$2 WHERE id=$1")
        .bind(id)
        .bind(now)
        .execute(c)
        .await
        .map(drop)
}

pub async fn get_network(c: &mut AnyConnection, id: &str) -> R<Option<Network>> {
    let Some(mut n) = sqlx::query("SELECT * FROM network_networks WHERE id=$1")
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .map(network)
    else {
        return Ok(None);
    };
    n.shared_with = sqlx::query("SELECT target_project FROM network_rbac_policies WHERE object_type='network' AND object_id=$1 AND action=$2 AND target_project<>'*' ORDER BY target_project")
        .bind(id)
        .bind(ACCESS_SHARED)
        .fetch_all(c)
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(Some(n))
}

/// The part of a WHERE clause for networks `$1` may see through an RBAC policy.
const RBAC_SHARED_TO: &str = "IN (SELECT object_id FROM network_rbac_policies WHERE object_type='network' AND action='access_as_shared' AND target_project=$1)";

/// Networks `project` may see (its own, shared, external and those shared to it by an
/// RBAC policy); `None`: all.
pub async fn list_networks(c: &mut AnyConnection, project: Option<&str>) -> R<Vec<Network>> {
    let rows = match project {
        None => sqlx::query("SELECT * FROM network_networks ORDER BY created_at, id").fetch_all(&mut *c).await?,
        Some(p) => sqlx::query(&format!("SELECT * FROM network_networks WHERE project_id=$1 OR shared=$2 OR external=$2 OR id {RBAC_SHARED_TO} ORDER BY created_at, id"))
            .bind(p).bind(true).fetch_all(&mut *c).await?,
    };
    let mut out: Vec<Network> = rows.into_iter().map(network).collect();
    let grants = sqlx::query("SELECT object_id, target_project FROM network_rbac_policies WHERE object_type='network' AND action=$1 AND target_project<>'*' ORDER BY target_project")
        .bind(ACCESS_SHARED)
        .fetch_all(c)
        .await?;
    if !grants.is_empty() {
        let mut by_net: std::collections::HashMap<String, Vec<String>> = Default::default();
        for g in grants {
            by_net.entry(g.get(0)).or_default().push(g.get(1));
        }
        for n in &mut out {
            if let Some(v) = by_net.remove(&n.id) {
                n.shared_with = v;
            }
        }
    }
    Ok(out)
}

pub async fn delete_network(c: &mut AnyConnection, id: &str) -> R<()> {
    sqlx::query("DELETE FROM network_networks WHERE id=$1")
        .bind(id)
        .execute(c)
        .await
        .map(drop)
}

pub async fn used_segmentation_ids(c: &mut AnyConnection, network_type: &str) -> R<Vec<i64>> {
    Ok(sqlx::query("SELECT segmentation_id FROM network_networks WHERE network_type=$1 AND segmentation_id IS NOT NULL")
        .bind(network_type)
        .fetch_all(c)
        .await?
        .iter()
        .map(|r| r.get::<i64, _>(0))
        .collect())
}

/// How many of `table`'s rows `project` owns (for quotas).
pub async fn count_owned(c: &mut AnyConnection, table: &str, project: &str) -> R<i64> {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE project_id=$1");
    Ok(sqlx::query(&sql).bind(project).fetch_one(c).await?.get(0))
}

// ---------------------------------------------------------------- subnets

pub async fn insert_subnet(c: &mut AnyConnection, s: &Subnet) -> R<()> {
    sqlx::query(
        "INSERT INTO network_subnets (id, network_id, project_id, name, description, ip_version, cidr, gateway_ip, allocation_pools, dns_nameservers, host_routes, enable_dhcp, ipv6_ra_mode, ipv6_address_mode, service_types, tags, revision_number, created_at, updated_at, subnetpool_id) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20)",
    )
    .bind(&s.id).bind(&s.network_id).bind(&s.project_id).bind(&s.name).bind(&s.description).bind(s.ip_version).bind(&s.cidr)
    .bind(&s.gateway_ip).bind(js(&s.allocation_pools)).bind(js(&s.dns_nameservers)).bind(js(&s.host_routes)).bind(s.enable_dhcp)
    .bind(&s.ipv6_ra_mode).bind(&s.ipv6_address_mode).bind(js(&s.service_types)).bind(js(&s.tags)).bind(s.revision_number)
    .bind(s.created_at).bind(s.updated_at).bind(&s.subnetpool_id)
    .execute(c).await.map(drop)
}

pub async fn update_subnet(c: &mut AnyConnection, s: &Subnet) -> R<()> {
    sqlx::query(
        "UPDATE network_subnets SET name=$2, description=$3, gateway_ip=$4, allocation_pools=$5, dns_nameservers=$6, host_routes=$7, enable_dhcp=$8, service_types=$9, tags=$10, revision_number=$11, updated_at=$12 WHERE id=$1",
    )
    .bind(&s.id).bind(&s.name).bind(&s.description).bind(&s.gateway_ip).bind(js(&s.allocation_pools)).bind(js(&s.dns_nameservers))
    .bind(js(&s.host_routes)).bind(s.enable_dhcp).bind(js(&s.service_types)).bind(js(&s.tags)).bind(s.revision_number).bind(s.updated_at)
    .execute(c).await.map(drop)
}

pub async fn get_subnet(c: &mut AnyConnection, id: &str) -> R<Option<Subnet>> {
    Ok(sqlx::query("SELECT * FROM network_subnets WHERE id=$1")
        .bind(id)
        .fetch_optional(c)
        .await?
        .map(subnet))
}

pub async fn subnets_of_network(c: &mut AnyConnection, network_id: &str) -> R<Vec<Subnet>> {
    Ok(
        sqlx::query("SELECT * FROM network_subnets WHERE network_id=$1 ORDER BY created_at, id")
            .bind(network_id)
            .fetch_all(c)
            .await?
            .into_iter()
            .map(subnet)
            .collect(),
    )
}

/// Subnets `project` may see (its own and those of networks it may see); `None`: all.
pub async fn list_subnets(c: &mut AnyConnection, project: Option<&str>) -> R<Vec<Subnet>> {
    let rows =
        match project {
            None => {
                sqlx::query("SELECT * FROM network_subnets ORDER BY created_at, id")
                    .fetch_all(c)
                    .await?
            }
            Some(p) => sqlx::query(
                "SELECT s.* FROM network_subnets s JOIN network_networks n ON n.id = s.network_id \
             WHERE s.project_id=$1 OR n.shared=$2 OR n.external=$2 OR n.id IN (SELECT object_id FROM network_rbac_policies WHERE object_type='network' AND action='access_as_shared' AND target_project=$1) ORDER BY s.created_at, s.id",
            )
            .bind(p)
            .bind(true)
            .fetch_all(c)
            .await?,
        };
    Ok(rows.into_iter().map(subnet).collect())
}

pub async fn delete_subnet(c: &mut AnyConnection, id: &str) -> R<()> {
    sqlx::query("DELETE FROM network_subnets WHERE id=$1")
        .bind(id)
        .execute(c)
        .await
        .map(drop)
}

// ---------------------------------------------------------------- ports

pub async fn insert_port(c: &mut AnyConnection, p: &Port) -> R<()> {
    sqlx::query(
        "INSERT INTO network_ports (id, network_id, project_id, name, description, admin_state_up, mac_address, device_id, device_owner, status, host, vnic_type, profile, allowed_address_pairs, port_security_enabled, extra_dhcp_opts, dns_name, tags, revision_number, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21)",
    )
    .bind(&p.id).bind(&p.network_id).bind(&p.project_id).bind(&p.name).bind(&p.description).bind(p.admin_state_up).bind(&p.mac_address)
    .bind(&p.device_id).bind(&p.device_owner).bind(&p.status).bind(&p.host).bind(&p.vnic_type).bind(js(&p.profile))
    .bind(js(&p.allowed_address_pairs)).bind(p.port_security_enabled).bind(js(&p.extra_dhcp_opts)).bind(&p.dns_name).bind(js(&p.tags))
    .bind(p.revision_number).bind(p.created_at).bind(p.updated_at)
    .execute(&mut *c).await?;
    set_port_ips(c, p).await?;
    set_port_groups(c, &p.id, &p.security_groups).await
}

/// Saves the port's row (not its addresses or groups).
pub async fn update_port_row(c: &mut AnyConnection, p: &Port) -> R<()> {
    sqlx::query(
        "UPDATE network_ports SET name=$2, description=$3, admin_state_up=$4, mac_address=$5, device_id=$6, device_owner=$7, status=$8, host=$9, vnic_type=$10, profile=$11, allowed_address_pairs=$12, port_security_enabled=$13, extra_dhcp_opts=$14, dns_name=$15, tags=$16, revision_number=$17, updated_at=$18 WHERE id=$1",
    )
    .bind(&p.id).bind(&p.name).bind(&p.description).bind(p.admin_state_up).bind(&p.mac_address).bind(&p.device_id).bind(&p.device_owner)
    .bind(&p.status).bind(&p.host).bind(&p.vnic_type).bind(js(&p.profile)).bind(js(&p.allowed_address_pairs)).bind(p.port_security_enabled)
    .bind(js(&p.extra_dhcp_opts)).bind(&p.dns_name).bind(js(&p.tags)).bind(p.revision_number).bind(p.updated_at)
    .execute(c).await.map(drop)
}

/// Replaces the port's addresses. The (subnet, address) key makes a concurrent claim of
/// the same address fail here with a unique violation.
pub async fn set_port_ips(c: &mut AnyConnection, p: &Port) -> R<()> {
    sqlx::query("DELETE FROM network_ip_allocations WHERE port_id=$1")
        .bind(&p.id)
        .execute(&mut *c)
        .await?;
    for (i, ip) in p.fixed_ips.iter().enumerate() {
        sqlx::query("INSERT INTO network_ip_allocations (subnet_id, ip_address, network_id, port_id, position) VALUES ($1,$2,$3,$4,$5)")
            .bind(&ip.subnet_id)
            .bind(&ip.ip_address)
            .bind(&p.network_id)
            .bind(&p.id)
            .bind(i as i64)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

pub async fn set_port_groups(c: &mut AnyConnection, port_id: &str, groups: &[String]) -> R<()> {
    sqlx::query("DELETE FROM network_port_security_groups WHERE port_id=$1")
        .bind(port_id)
        .execute(&mut *c)
        .await?;
    for g in groups {
        sqlx::query(
            "INSERT INTO network_port_security_groups (port_id, security_group_id) VALUES ($1,$2)",
        )
        .bind(port_id)
        .bind(g)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

/// Ports chosen by `clause` (over `network_ports p`, one `$1` parameter, or none when
/// `arg` is `None`) with their addresses and groups.
async fn fetch_rows(c: &mut AnyConnection, sql: &str, arg: Option<&str>) -> R<Vec<AnyRow>> {
    let mut q = sqlx::query(sql);
    if let Some(a) = arg {
        q = q.bind(a);
    }
    q.fetch_all(c).await
}

/// Ports chosen by `clause` (over `network_ports p`, one `$1` parameter, or none when
/// `arg` is `None`) with their addresses and groups.
async fn ports_where(c: &mut AnyConnection, clause: &str, arg: Option<&str>) -> R<Vec<Port>> {
    let sql = format!("SELECT p.* FROM network_ports p WHERE {clause} ORDER BY p.created_at, p.id");
    let mut ports: Vec<Port> = fetch_rows(&mut *c, &sql, arg)
        .await?
        .into_iter()
        .map(port)
        .collect();
    if ports.is_empty() {
        return Ok(ports);
    }
    let index: std::collections::HashMap<String, usize> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.clone(), i))
        .collect();
    let sql = format!(
        "SELECT a.port_id, a.subnet_id, a.ip_address FROM network_ip_allocations a JOIN network_ports p ON p.id = a.port_id WHERE {clause} ORDER BY a.position"
    );
    for r in fetch_rows(&mut *c, &sql, arg).await? {
        if let Some(i) = index.get(&r.get::<String, _>(0)) {
            ports[*i].fixed_ips.push(FixedIp {
                subnet_id: r.get(1),
                ip_address: r.get(2),
            });
        }
    }
    let sql = format!(
        "SELECT g.port_id, g.security_group_id FROM network_port_security_groups g JOIN network_ports p ON p.id = g.port_id WHERE {clause} ORDER BY g.security_group_id"
    );
    for r in fetch_rows(&mut *c, &sql, arg).await? {
        if let Some(i) = index.get(&r.get::<String, _>(0)) {
            ports[*i].security_groups.push(r.get(1));
        }
    }
    Ok(ports)
}

pub async fn get_port(c: &mut AnyConnection, id: &str) -> R<Option<Port>> {
    Ok(ports_where(c, "p.id = $1", Some(id)).await?.pop())
}

/// Ports `project` may see (its own and those on networks it owns); `None`: all.
pub async fn list_ports(c: &mut AnyConnection, project: Option<&str>) -> R<Vec<Port>> {
    match project {
        None => ports_where(c, "1 = 1", None).await,
        Some(p) => {
            ports_where(
                c,
                "(p.project_id = $1 OR p.network_id IN (SELECT id FROM network_networks WHERE project_id = $1))",
                Some(p),
            )
            .await
        }
    }
}

pub async fn ports_of_network(c: &mut AnyConnection, network_id: &str) -> R<Vec<Port>> {
    ports_where(c, "p.network_id = $1", Some(network_id)).await
}

pub async fn ports_of_device(c: &mut AnyConnection, device_id: &str) -> R<Vec<Port>> {
    ports_where(c, "p.device_id = $1", Some(device_id)).await
}

pub async fn ports_of_subnet(c: &mut AnyConnection, subnet_id: &str) -> R<Vec<Port>> {
    ports_where(
        c,
        "p.id IN (SELECT port_id FROM network_ip_allocations WHERE subnet_id = $1)",
        Some(subnet_id),
    )
    .await
}

pub async fn ports_of_group(c: &mut AnyConnection, group_id: &str) -> R<Vec<Port>> {
    ports_where(
        c,
        "p.id IN (SELECT port_id FROM network_port_security_groups WHERE security_group_id = $1)",
        Some(group_id),
    )
    .await
}

pub async fn delete_port(c: &mut AnyConnection, id: &str) -> R<()> {
    for sql in [
        "DELETE FROM network_ip_allocations WHERE port_id=$1",
        "DELETE FROM network_port_security_groups WHERE port_id=$1",
        "DELETE FROM network_ports WHERE id=$1",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *c).await?;
    }
    Ok(())
}

/// The addresses of `subnet_id` in use.
pub async fn taken_addresses(c: &mut AnyConnection, subnet_id: &str) -> R<Vec<String>> {
    Ok(
        sqlx::query("SELECT ip_address FROM network_ip_allocations WHERE subnet_id=$1")
            .bind(subnet_id)
            .fetch_all(c)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect(),
    )
}

/// How many addresses each subnet has allocated (subnets with none are absent).
pub async fn ip_allocation_counts(c: &mut AnyConnection) -> R<Vec<(String, i64)>> {
    Ok(sqlx::query(
        "SELECT subnet_id, COUNT(*) AS used FROM network_ip_allocations GROUP BY subnet_id",
    )
    .fetch_all(c)
    .await?
    .iter()
    .map(|r| (r.get("subnet_id"), r.get("used")))
    .collect())
}

pub async fn mac_in_use(c: &mut AnyConnection, network_id: &str, mac: &str) -> R<bool> {
    Ok(
        sqlx::query("SELECT 1 FROM network_ports WHERE network_id=$1 AND mac_address=$2")
            .bind(network_id)
            .bind(mac)
            .fetch_optional(c)
            .await?
            .is_some(),
    )
}

// ---------------------------------------------------------------- security groups

pub async fn insert_group(c: &mut AnyConnection, g: &SecurityGroup) -> R<()> {
    sqlx::query(
        "INSERT INTO network_security_groups (id, project_id, name, description, stateful, tags, revision_number, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
    )
    .bind(&g.id).bind(&g.project_id).bind(&g.name).bind(&g.description).bind(g.stateful).bind(js(&g.tags))
    .bind(g.revision_number).bind(g.created_at).bind(g.updated_at)
    .execute(c).await.map(drop)
}

pub async fn update_group(c: &mut AnyConnection, g: &SecurityGroup) -> R<()> {
    sqlx::query("UPDATE network_security_groups SET name=$2, description=$3, stateful=$4, tags=$5, revision_number=$6, updated_at=$7 WHERE id=$1")
        .bind(&g.id).bind(&g.name).bind(&g.description).bind(g.stateful).bind(js(&g.tags)).bind(g.revision_number).bind(g.updated_at)
        .execute(c).await.map(drop)
}

/// A group's rules changed: its revision moves, as Neutron's does.
pub async fn touch_group(c: &mut AnyConnection, id: &str, now: i64) -> R<()> {
    sqlx::query("UPDATE network_security_groups SET revision_number = revision_number + 1, updated_at=$2 WHERE id=$1")
        .bind(id)
        .bind(now)
        .execute(c)
        .await
        .map(drop)
}

pub async fn get_group(c: &mut AnyConnection, id: &str) -> R<Option<SecurityGroup>> {
    Ok(
        sqlx::query("SELECT * FROM network_security_groups WHERE id=$1")
            .bind(id)
            .fetch_optional(c)
            .await?
            .map(group),
    )
}

pub async fn list_groups(c: &mut AnyConnection, project: Option<&str>) -> R<Vec<SecurityGroup>> {
    let rows =
        match project {
            None => {
                sqlx::query("SELECT * FROM network_security_groups ORDER BY created_at, id")
                    .fetch_all(c)
                    .await?
            }
            Some(p) => sqlx::query(
                "SELECT * FROM network_security_groups WHERE project_id=$1 ORDER BY created_at, id",
            )
            .bind(p)
            .fetch_all(c)
            .await?,
        };
    Ok(rows.into_iter().map(group).collect())
}

pub async fn groups_named(
    c: &mut AnyConnection,
    project: &str,
    name: &str,
) -> R<Vec<SecurityGroup>> {
    Ok(
        sqlx::query("SELECT * FROM network_security_groups WHERE project_id=$1 AND name=$2")
            .bind(project)
            .bind(name)
            .fetch_all(c)
            .await?
            .into_iter()
            .map(group)
            .collect(),
    )
}

pub async fn delete_group(c: &mut AnyConnection, id: &str) -> R<()> {
    for sql in [
        "DELETE FROM network_security_group_rules WHERE security_group_id=$1",
        "DELETE FROM network_default_security_groups WHERE security_group_id=$1",
        "DELETE FROM network_security_groups WHERE id=$1",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *c).await?;
    }
    Ok(())
}

pub async fn default_group_id(c: &mut AnyConnection, project: &str) -> R<Option<String>> {
    Ok(sqlx::query(
        "SELECT security_group_id FROM network_default_security_groups WHERE project_id=$1",
    )
    .bind(project)
    .fetch_optional(c)
    .await?
    .map(|r| r.get(0)))
}

/// Which of the groups are their projects' default groups.
pub async fn default_group_ids(c: &mut AnyConnection) -> R<std::collections::HashSet<String>> {
    Ok(
        sqlx::query("SELECT security_group_id FROM network_default_security_groups")
            .fetch_all(c)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect(),
    )
}

pub async fn insert_default_group(c: &mut AnyConnection, project: &str, group_id: &str) -> R<()> {
    sqlx::query("INSERT INTO network_default_security_groups (project_id, security_group_id) VALUES ($1,$2)")
        .bind(project)
        .bind(group_id)
        .execute(c)
        .await
        .map(drop)
}

pub async fn insert_rule(c: &mut AnyConnection, r: &Rule) -> R<()> {
    sqlx::query(
        "INSERT INTO network_security_group_rules (id, security_group_id, project_id, direction, ethertype, protocol, port_range_min, port_range_max, remote_ip_prefix, remote_group_id, description, revision_number, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)",
    )
    .bind(&r.id).bind(&r.security_group_id).bind(&r.project_id).bind(&r.direction).bind(&r.ethertype).bind(&r.protocol)
    .bind(r.port_range_min).bind(r.port_range_max).bind(&r.remote_ip_prefix).bind(&r.remote_group_id).bind(&r.description)
    .bind(r.revision_number).bind(r.created_at).bind(r.updated_at)
    .execute(c).await.map(drop)
}

pub async fn update_rule(c: &mut AnyConnection, r: &Rule) -> R<()> {
    sqlx::query("UPDATE network_security_group_rules SET description=$2, revision_number=$3, updated_at=$4 WHERE id=$1")
        .bind(&r.id)
        .bind(&r.description)
        .bind(r.revision_number)
        .bind(r.updated_at)
        .execute(c)
        .await
        .map(drop)
}

pub async fn get_rule(c: &mut AnyConnection, id: &str) -> R<Option<Rule>> {
    Ok(
        sqlx::query("SELECT * FROM network_security_group_rules WHERE id=$1")
            .bind(id)
            .fetch_optional(c)
            .await?
            .map(rule),
    )
}

pub async fn rules_of_group(c: &mut AnyConnection, group_id: &str) -> R<Vec<Rule>> {
    Ok(sqlx::query("SELECT * FROM network_security_group_rules WHERE security_group_id=$1 ORDER BY created_at, id")
        .bind(group_id)
        .fetch_all(c)
        .await?
        .into_iter()
        .map(rule)
        .collect())
}

/// Rules `project` may see: those of its groups and those it owns; `None`: all.
pub async fn list_rules(c: &mut AnyConnection, project: Option<&str>) -> R<Vec<Rule>> {
    let rows = match project {
        None => sqlx::query("SELECT * FROM network_security_group_rules ORDER BY created_at, id").fetch_all(c).await?,
        Some(p) => sqlx::query(
            "SELECT * FROM network_security_group_rules WHERE project_id=$1 OR security_group_id IN (SELECT id FROM network_security_groups WHERE project_id=$1) ORDER BY created_at, id",
        )
        .bind(p).fetch_all(c).await?,
    };
    Ok(rows.into_iter().map(rule).collect())
}

pub async fn delete_rule(c: &mut AnyConnection, id: &str) -> R<()> {
    sqlx::query("DELETE FROM network_security_group_rules WHERE id=$1")
        .bind(id)
        .execute(c)
        .await
        .map(drop)
}

// ---------------------------------------------------------------- quotas

pub async fn quota_overrides(c: &mut AnyConnection, project: &str) -> R<Vec<(String, i64)>> {
    Ok(
        sqlx::query("SELECT resource, hard_limit FROM network_quotas WHERE project_id=$1")
            .bind(project)
            .fetch_all(c)
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect(),
    )
}

pub async fn quota_projects(c: &mut AnyConnection) -> R<Vec<String>> {
    Ok(
        sqlx::query("SELECT DISTINCT project_id FROM network_quotas ORDER BY project_id")
            .fetch_all(c)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect(),
    )
}

pub async fn set_quota(c: &mut AnyConnection, project: &str, resource: &str, limit: i64) -> R<()> {
    sqlx::query("DELETE FROM network_quotas WHERE project_id=$1 AND resource=$2")
        .bind(project)
        .bind(resource)
        .execute(&mut *c)
        .await?;
    sqlx::query("INSERT INTO network_quotas (project_id, resource, hard_limit) VALUES ($1,$2,$3)")
        .bind(project)
        .bind(resource)
        .bind(limit)
        .execute(c)
        .await
        .map(drop)
}

pub async fn delete_quotas(c: &mut AnyConnection, project: &str) -> R<()> {
    sqlx::query("DELETE FROM network_quotas WHERE project_id=$1")
        .bind(project)
        .execute(c)
        .await
        .map(drop)
}

// ---------------------------------------------------------------- routers

fn router(r: AnyRow) -> Router {
    Router {
        id: r.get("id"),
        project_id: r.get("project_id"),
        name: r.get("name"),
        description: r.get("description"),
        admin_state_up: r.flag("admin_state_up"),
        gateway_network_id: r.get("gateway_network_id"),
        gateway_port_id: r.get("gateway_port_id"),
        enable_snat: r.flag("enable_snat"),
        routes: pj(&r, "routes"),
        tags: pj(&r, "tags"),
        revision_number: r.get("revision_number"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

fn floating_ip(r: AnyRow) -> FloatingIp {
    FloatingIp {
        id: r.get("id"),
        project_id: r.get("project_id"),
        floating_network_id: r.get("floating_network_id"),
        floating_ip_address: r.get("floating_ip_address"),
        floating_port_id: r.get("floating_port_id"),
        port_id: r.get("port_id"),
        fixed_ip_address: r.get("fixed_ip_address"),
        router_id: r.get("router_id"),
        description: r.get("description"),
        tags: pj(&r, "tags"),
        revision_number: r.get("revision_number"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

pub async fn insert_router(c: &mut AnyConnection, r: &Router) -> R<()> {
    sqlx::query(
        "INSERT INTO network_routers (id, project_id, name, description, admin_state_up, gateway_network_id, gateway_port_id, enable_snat, routes, tags, revision_number, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)",
    )
    .bind(&r.id).bind(&r.project_id).bind(&r.name).bind(&r.description).bind(r.admin_state_up).bind(&r.gateway_network_id)
    .bind(&r.gateway_port_id).bind(r.enable_snat).bind(js(&r.routes)).bind(js(&r.tags)).bind(r.revision_number).bind(r.created_at).bind(r.updated_at)
    .execute(c).await.map(drop)
}

pub async fn update_router(c: &mut AnyConnection, r: &Router) -> R<()> {
    sqlx::query(
        "UPDATE network_routers SET name=$2, description=$3, admin_state_up=$4, gateway_network_id=$5, gateway_port_id=$6, enable_snat=$7, routes=$8, tags=$9, revision_number=$10, updated_at=$11 WHERE id=$1",
    )
    .bind(&r.id).bind(&r.name).bind(&r.description).bind(r.admin_state_up).bind(&r.gateway_network_id).bind(&r.gateway_port_id)
    .bind(r.enable_snat).bind(js(&r.routes)).bind(js(&r.tags)).bind(r.revision_number).bind(r.updated_at)
    .execute(c).await.map(drop)
}

pub async fn touch_router(c: &mut AnyConnection, id: &str, now: i64) -> R<()> {
    sqlx::query("UPDATE network_routers SET revision_number = revision_number + 1, updated_at=$2 WHERE id=$1")
        .bind(id)
        .bind(now)
        .execute(c)
        .await
        .map(drop)
}

pub async fn get_router(c: &mut AnyConnection, id: &str) -> R<Option<Router>> {
    Ok(sqlx::query("SELECT * FROM network_routers WHERE id=$1")
        .bind(id)
        .fetch_optional(c)
        .await?
        .map(router))
}

pub async fn list_routers(c: &mut AnyConnection, project: Option<&str>) -> R<Vec<Router>> {
    let rows = match project {
        None => {
            sqlx::query("SELECT * FROM network_routers ORDER BY created_at, id")
                .fetch_all(c)
                .await?
        }
        Some(p) => {
            sqlx::query("SELECT * FROM network_routers WHERE project_id=$1 ORDER BY created_at, id")
                .bind(p)
                .fetch_all(c)
                .await?
        }
    };
    Ok(rows.into_iter().map(router).collect())
}

pub async fn delete_router(c: &mut AnyConnection, id: &str) -> R<()> {
    sqlx::query("DELETE FROM network_routers WHERE id=$1")
        .bind(id)
        .execute(c)
        .await
        .map(drop)
}

// ---------------------------------------------------------------- floating IPs

pub async fn insert_floating_ip(c: &mut AnyConnection, f: &FloatingIp) -> R<()> {
    sqlx::query(
        "INSERT INTO network_floatingips (id, project_id, floating_network_id, floating_ip_address, floating_port_id, port_id, fixed_ip_address, router_id, description, tags, revision_number, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)",
    )
    .bind(&f.id).bind(&f.project_id).bind(&f.floating_network_id).bind(&f.floating_ip_address).bind(&f.floating_port_id).bind(&f.port_id)
    .bind(&f.fixed_ip_address).bind(&f.router_id).bind(&f.description).bind(js(&f.tags)).bind(f.revision_number).bind(f.created_at).bind(f.updated_at)
    .execute(c).await.map(drop)
}

pub async fn update_floating_ip(c: &mut AnyConnection, f: &FloatingIp) -> R<()> {
    sqlx::query(
        "UPDATE network_floatingips SET port_id=$2, fixed_ip_address=$3, router_id=$4, description=$5, tags=$6, revision_number=$7, updated_at=$8 WHERE id=$1",
    )
    .bind(&f.id).bind(&f.port_id).bind(&f.fixed_ip_address).bind(&f.router_id).bind(&f.description).bind(js(&f.tags))
    .bind(f.revision_number).bind(f.updated_at)
    .execute(c).await.map(drop)
}

pub async fn get_floating_ip(c: &mut AnyConnection, id: &str) -> R<Option<FloatingIp>> {
    Ok(sqlx::query("SELECT * FROM network_floatingips WHERE id=$1")
        .bind(id)
        .fetch_optional(c)
        .await?
        .map(floating_ip))
}

pub async fn list_floating_ips(c: &mut AnyConnection, project: Option<&str>) -> R<Vec<FloatingIp>> {
    let rows = match project {
        None => {
            sqlx::query("SELECT * FROM network_floatingips ORDER BY created_at, id")
                .fetch_all(c)
                .await?
        }
        Some(p) => {
            sqlx::query(
                "SELECT * FROM network_floatingips WHERE project_id=$1 ORDER BY created_at, id",
            )
            .bind(p)
            .fetch_all(c)
            .await?
        }
    };
    Ok(rows.into_iter().map(floating_ip).collect())
}

/// Floating IPs translated to an address of `port_id`.
pub async fn floating_ips_of_port(c: &mut AnyConnection, port_id: &str) -> R<Vec<FloatingIp>> {
    Ok(
        sqlx::query("SELECT * FROM network_floatingips WHERE port_id=$1")
            .bind(port_id)
            .fetch_all(c)
            .await?
            .into_iter()
            .map(floating_ip)
            .collect(),
    )
}

pub async fn floating_ips_of_router(c: &mut AnyConnection, router_id: &str) -> R<Vec<FloatingIp>> {
    Ok(
        sqlx::query("SELECT * FROM network_floatingips WHERE router_id=$1")
            .bind(router_id)
            .fetch_all(c)
            .await?
            .into_iter()
            .map(floating_ip)
            .collect(),
    )
}

pub async fn delete_floating_ip(c: &mut AnyConnection, id: &str) -> R<()> {
    sqlx::query("DELETE FROM network_floatingips WHERE id=$1")
        .bind(id)
        .execute(c)
        .await
        .map(drop)
}

// ---------------------------------------------------------------- subnet pools

fn subnet_pool(r: AnyRow) -> SubnetPool {
    SubnetPool {
        id: r.get("id"),
        project_id: r.get("project_id"),
        name: r.get("name"),
        description: r.get("description"),
        prefixes: pj(&r, "prefixes"),
        ip_version: r.get("ip_version"),
        default_prefixlen: r.get("default_prefixlen"),
        min_prefixlen: r.get("min_prefixlen"),
        max_prefixlen: r.get("max_prefixlen"),
        default_quota: r.get("default_quota"),
        shared: r.flag("shared"),
        is_default: r.flag("is_default"),
        address_scope_id: r.try_get("address_scope_id").ok().flatten(),
        tags: pj(&r, "tags"),
        revision_number: r.get("revision_number"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

pub async fn insert_subnet_pool(c: &mut AnyConnection, p: &SubnetPool) -> R<()> {
    sqlx::query(
        "INSERT INTO network_subnetpools (id, project_id, name, description, prefixes, ip_version, default_prefixlen, min_prefixlen, max_prefixlen, default_quota, shared, is_default, tags, revision_number, created_at, updated_at, address_scope_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)",
    )
    .bind(&p.id).bind(&p.project_id).bind(&p.name).bind(&p.description).bind(js(&p.prefixes)).bind(p.ip_version).bind(p.default_prefixlen)
    .bind(p.min_prefixlen).bind(p.max_prefixlen).bind(p.default_quota).bind(p.shared).bind(p.is_default).bind(js(&p.tags))
    .bind(p.revision_number).bind(p.created_at).bind(p.updated_at).bind(&p.address_scope_id)
    .execute(c).await.map(drop)
}

pub async fn update_subnet_pool(c: &mut AnyConnection, p: &SubnetPool) -> R<()> {
    sqlx::query(
        "UPDATE network_subnetpools SET name=$2, description=$3, prefixes=$4, default_prefixlen=$5, min_prefixlen=$6, max_prefixlen=$7, default_quota=$8, is_default=$9, tags=$10, revision_number=$11, updated_at=$12, address_scope_id=$13 WHERE id=$1",
    )
    .bind(&p.id).bind(&p.name).bind(&p.description).bind(js(&p.prefixes)).bind(p.default_prefixlen).bind(p.min_prefixlen)
    .bind(p.max_prefixlen).bind(p.default_quota).bind(p.is_default).bind(js(&p.tags)).bind(p.revision_number).bind(p.updated_at)
    .bind(&p.address_scope_id)
    .execute(c).await.map(drop)
}

pub async fn get_subnet_pool(c: &mut AnyConnection, id: &str) -> R<Option<SubnetPool>> {
    Ok(sqlx::query("SELECT * FROM network_subnetpools WHERE id=$1")
        .bind(id)
        .fetch_optional(c)
        .await?
        .map(subnet_pool))
}

/// Pools `project` may see (its own and shared ones); `None`: all.
pub async fn list_subnet_pools(c: &mut AnyConnection, project: Option<&str>) -> R<Vec<SubnetPool>> {
    let rows = match project {
        None => sqlx::query("SELECT * FROM network_subnetpools ORDER BY created_at, id").fetch_all(c).await?,
        Some(p) => sqlx::query("SELECT * FROM network_subnetpools WHERE project_id=$1 OR shared=$2 ORDER BY created_at, id")
            .bind(p).bind(true).fetch_all(c).await?,
    };
    Ok(rows.into_iter().map(subnet_pool).collect())
}

pub async fn subnets_of_pool(c: &mut AnyConnection, pool_id: &str) -> R<Vec<Subnet>> {
    Ok(
        sqlx::query("SELECT * FROM network_subnets WHERE subnetpool_id=$1")
            .bind(pool_id)
            .fetch_all(c)
            .await?
            .into_iter()
            .map(subnet)
            .collect(),
    )
}

pub async fn delete_subnet_pool(c: &mut AnyConnection, id: &str) -> R<()> {
    sqlx::query("DELETE FROM network_subnetpools WHERE id=$1")
        .bind(id)
        .execute(c)
        .await
        .map(drop)
}

/// The pools of an address scope.
pub async fn pools_of_scope(c: &mut AnyConnection, scope_id: &str) -> R<Vec<SubnetPool>> {
    Ok(sqlx::query(
        "SELECT * FROM network_subnetpools WHERE address_scope_id=$1 ORDER BY created_at, id",
    )
    .bind(scope_id)
    .fetch_all(c)
    .await?
    .into_iter()
    .map(subnet_pool)
    .collect())
}

// ---------------------------------------------------------------- address scopes

fn address_scope(r: AnyRow) -> AddressScope {
    AddressScope {
        id: r.get("id"),
        project_id: r.get("project_id"),
        name: r.get("name"),
        shared: r.flag("shared"),
        ip_version: r.get("ip_version"),
    }
}

pub async fn insert_address_scope(c: &mut AnyConnection, s: &AddressScope) -> R<()> {
    sqlx::query("INSERT INTO network_address_scopes (id, project_id, name, shared, ip_version) VALUES ($1,$2,$3,$4,$5)")
        .bind(&s.id).bind(&s.project_id).bind(&s.name).bind(s.shared).bind(s.ip_version)
        .execute(c).await.map(drop)
}

pub async fn update_address_scope(c: &mut AnyConnection, s: &AddressScope) -> R<()> {
    sqlx::query("UPDATE network_address_scopes SET name=$2, shared=$3 WHERE id=$1")
        .bind(&s.id)
        .bind(&s.name)
        .bind(s.shared)
        .execute(c)
        .await
        .map(drop)
}

/// Takes the scope's row lock until the transaction ends (a no-op write; SQLite's write
/// transactions are serialized already), so on PostgreSQL two writers checking the scope's
/// pools for overlaps, or a pool joining while the scope is deleted, go one after the
/// other. False when the scope does not exist.
pub async fn lock_address_scope(c: &mut AnyConnection, id: &str) -> R<bool> {
    Ok(
        sqlx::query("UPDATE network_address_scopes SET shared=shared WHERE id=$1")
            .bind(id)
            .execute(c)
            .await?
            .rows_affected()
            > 0,
    )
}

pub async fn get_address_scope(c: &mut AnyConnection, id: &str) -> R<Option<AddressScope>> {
    Ok(
        sqlx::query("SELECT * FROM network_address_scopes WHERE id=$1")
            .bind(id)
            .fetch_optional(c)
            .await?
            .map(address_scope),
    )
}

/// Scopes `project` may see (its own and shared ones); `None`: all.
pub async fn list_address_scopes(
    c: &mut AnyConnection,
    project: Option<&str>,
) -> R<Vec<AddressScope>> {
    let rows =
        match project {
            None => {
                sqlx::query("SELECT * FROM network_address_scopes ORDER BY id")
                    .fetch_all(c)
                    .await?
            }
            Some(p) => sqlx::query(
                "SELECT * FROM network_address_scopes WHERE project_id=$1 OR shared=$2 ORDER BY id",
            )
            .bind(p)
            .bind(true)
            .fetch_all(c)
            .await?,
        };
    Ok(rows.into_iter().map(address_scope).collect())
}

pub async fn delete_address_scope(c: &mut AnyConnection, id: &str) -> R<()> {
    sqlx::query("DELETE FROM network_address_scopes WHERE id=$1")
        .bind(id)
        .execute(c)
        .await
        .map(drop)
}

/// The address scopes of networks (`network`: of that one only; `None`: of all), by
/// network id: the scopes of the pools their subnets came from.
pub async fn network_scopes(
    c: &mut AnyConnection,
    network: Option<&str>,
) -> R<std::collections::HashMap<String, NetworkScopes>> {
    let sql = "SELECT DISTINCT s.network_id, p.ip_version, p.address_scope_id FROM network_subnets s \
               JOIN network_subnetpools p ON p.id = s.subnetpool_id WHERE p.address_scope_id IS NOT NULL";
    let rows = match network {
        None => sqlx::query(sql).fetch_all(c).await?,
        Some(n) => {
            sqlx::query(&format!("{sql} AND s.network_id=$1"))
                .bind(n)
                .fetch_all(c)
                .await?
        }
    };
    let mut out: std::collections::HashMap<String, NetworkScopes> = Default::default();
    for r in rows {
        let entry = out.entry(r.get::<String, _>(0)).or_default();
        let scope: String = r.get(2);
        match r.get::<i64, _>(1) {
            4 => entry.ipv4 = Some(scope),
            _ => entry.ipv6 = Some(scope),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- default rules template

fn default_rule(r: AnyRow) -> DefaultRule {
    DefaultRule {
        id: r.get("id"),
        direction: r.get("direction"),
        ethertype: r.get("ethertype"),
        protocol: r.get("protocol"),
        port_range_min: r.get("port_range_min"),
        port_range_max: r.get("port_range_max"),
        remote_ip_prefix: r.get("remote_ip_prefix"),
        remote_group_id: r.get("remote_group_id"),
        description: r.get("description"),
        used_in_default_sg: r.flag("used_in_default_sg"),
        used_in_non_default_sg: r.flag("used_in_non_default_sg"),
    }
}

pub async fn list_default_rules(c: &mut AnyConnection) -> R<Vec<DefaultRule>> {
    Ok(
        sqlx::query("SELECT * FROM network_default_sg_rules ORDER BY position, id")
            .fetch_all(c)
            .await?
            .into_iter()
            .map(default_rule)
            .collect(),
    )
}

pub async fn insert_default_rule(c: &mut AnyConnection, r: &DefaultRule) -> R<()> {
    sqlx::query(
        "INSERT INTO network_default_sg_rules (id, direction, ethertype, protocol, port_range_min, port_range_max, remote_ip_prefix, remote_group_id, description, used_in_default_sg, used_in_non_default_sg, position) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,(SELECT COALESCE(MAX(position), 0) + 1 FROM network_default_sg_rules))",
    )
    .bind(&r.id).bind(&r.direction).bind(&r.ethertype).bind(&r.protocol).bind(r.port_range_min).bind(r.port_range_max)
    .bind(&r.remote_ip_prefix).bind(&r.remote_group_id).bind(&r.description).bind(r.used_in_default_sg).bind(r.used_in_non_default_sg)
    .execute(c).await.map(drop)
}

pub async fn delete_default_rule(c: &mut AnyConnection, id: &str) -> R<()> {
    sqlx::query("DELETE FROM network_default_sg_rules WHERE id=$1")
        .bind(id)
        .execute(c)
        .await
        .map(drop)
}

// ---------------------------------------------------------------- RBAC policies

fn rbac_policy(r: AnyRow) -> RbacPolicy {
    RbacPolicy {
        id: r.get("id"),
        project_id: r.get("project_id"),
        object_type: r.get("object_type"),
        object_id: r.get("object_id"),
        action: r.get("action"),
        target_project: r.get("target_project"),
    }
}

pub async fn insert_rbac_policy(c: &mut AnyConnection, p: &RbacPolicy) -> R<()> {
    sqlx::query("INSERT INTO network_rbac_policies (id, project_id, object_type, object_id, action, target_project) VALUES ($1,$2,$3,$4,$5,$6)")
        .bind(&p.id).bind(&p.project_id).bind(&p.object_type).bind(&p.object_id).bind(&p.action).bind(&p.target_project)
        .execute(c).await.map(drop)
}

pub async fn update_rbac_target(c: &mut AnyConnection, id: &str, target: &str) -> R<()> {
    sqlx::query("UPDATE network_rbac_policies SET target_project=$2 WHERE id=$1")
        .bind(id)
        .bind(target)
        .execute(c)
        .await
        .map(drop)
}

pub async fn get_rbac_policy(c: &mut AnyConnection, id: &str) -> R<Option<RbacPolicy>> {
    Ok(
        sqlx::query("SELECT * FROM network_rbac_policies WHERE id=$1")
            .bind(id)
            .fetch_optional(c)
            .await?
            .map(rbac_policy),
    )
}

/// Policies owned by `project`; `None`: all.
pub async fn list_rbac_policies(
    c: &mut AnyConnection,
    project: Option<&str>,
) -> R<Vec<RbacPolicy>> {
    let rows = match project {
        None => {
            sqlx::query("SELECT * FROM network_rbac_policies ORDER BY id")
                .fetch_all(c)
                .await?
        }
        Some(p) => {
            sqlx::query("SELECT * FROM network_rbac_policies WHERE project_id=$1 ORDER BY id")
                .bind(p)
                .fetch_all(c)
                .await?
        }
    };
    Ok(rows.into_iter().map(rbac_policy).collect())
}

pub async fn rbac_policies_of(
    c: &mut AnyConnection,
    object_type: &str,
    object_id: &str,
) -> R<Vec<RbacPolicy>> {
    Ok(sqlx::query(
        "SELECT * FROM network_rbac_policies WHERE object_type=$1 AND object_id=$2 ORDER BY id",
    )
    .bind(object_type)
    .bind(object_id)
    .fetch_all(c)
    .await?
    .into_iter()
    .map(rbac_policy)
    .collect())
}

pub async fn delete_rbac_policy(c: &mut AnyConnection, id: &str) -> R<()> {
    sqlx::query("DELETE FROM network_rbac_policies WHERE id=$1")
        .bind(id)
        .execute(c)
        .await
        .map(drop)
}

/// Removes the policies on an object (`action`: only those), e.g. with a deleted network.
pub async fn delete_rbac_policies_of(
    c: &mut AnyConnection,
    object_type: &str,
    object_id: &str,
    action: Option<&str>,
) -> R<()> {
    match action {
        Some(a) => sqlx::query(
            "DELETE FROM network_rbac_policies WHERE object_type=$1 AND object_id=$2 AND action=$3",
        )
        .bind(object_type)
        .bind(object_id)
        .bind(a)
        .execute(c)
        .await
        .map(drop),
        None => {
            sqlx::query("DELETE FROM network_rbac_policies WHERE object_type=$1 AND object_id=$2")
                .bind(object_type)
                .bind(object_id)
                .execute(c)
                .await
                .map(drop)
        }
    }
}

/// Writes the wildcard policies of shared and external networks that have none (networks
/// made before RBAC policies existed). Idempotent.
pub async fn backfill_network_rbac(c: &mut AnyConnection) -> R<()> {
    for n in list_networks(&mut *c, None).await? {
        for (on, action) in [(n.shared, ACCESS_SHARED), (n.external, ACCESS_EXTERNAL)] {
            if !on {
                continue;
            }
            let have = rbac_policies_of(&mut *c, "network", &n.id)
                .await?
                .iter()
                .any(|p| {
                    p.action == action && (p.target_project == "*" || action == ACCESS_EXTERNAL)
                });
            if !have {
                insert_rbac_policy(
                    &mut *c,
                    &RbacPolicy {
                        id: uuid::Uuid::new_v4().to_string(),
                        project_id: n.project_id.clone(),
                        object_type: "network".into(),
                        object_id: n.id.clone(),
                        action: action.into(),
                        target_project: "*".into(),
                    },
                )
                .await?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- port forwardings

fn port_forwarding(r: AnyRow) -> PortForwarding {
    PortForwarding {
        id: r.get("id"),
        floatingip_id: r.get("floatingip_id"),
        project_id: r.get("project_id"),
        protocol: r.get("protocol"),
        internal_ip_address: r.get("internal_ip_address"),
        internal_port: r.get("internal_port"),
        external_port: r.get("external_port"),
        internal_port_id: r.get("internal_port_id"),
        description: r.get("description"),
    }
}

pub async fn insert_port_forwarding(c: &mut AnyConnection, p: &PortForwarding) -> R<()> {
    sqlx::query(
        "INSERT INTO network_port_forwardings (id, floatingip_id, project_id, protocol, internal_ip_address, internal_port, external_port, internal_port_id, description) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
    )
    .bind(&p.id).bind(&p.floatingip_id).bind(&p.project_id).bind(&p.protocol).bind(&p.internal_ip_address)
    .bind(p.internal_port).bind(p.external_port).bind(&p.internal_port_id).bind(&p.description)
    .execute(c).await.map(drop)
}

pub async fn update_port_forwarding(c: &mut AnyConnection, p: &PortForwarding) -> R<()> {
    sqlx::query(
        "UPDATE network_port_forwardings SET protocol=$2, internal_ip_address=$3, internal_port=$4, external_port=$5, internal_port_id=$6, description=$7 WHERE id=$1",
    )
    .bind(&p.id).bind(&p.protocol).bind(&p.internal_ip_address).bind(p.internal_port).bind(p.external_port)
    .bind(&p.internal_port_id).bind(&p.description)
    .execute(c).await.map(drop)
}

pub async fn port_forwardings_of_fip(
    c: &mut AnyConnection,
    fip_id: &str,
) -> R<Vec<PortForwarding>> {
    Ok(sqlx::query("SELECT * FROM network_port_forwardings WHERE floatingip_id=$1 ORDER BY protocol, external_port")
        .bind(fip_id)
        .fetch_all(c)
        .await?
        .into_iter()
        .map(port_forwarding)
        .collect())
}

pub async fn port_forwardings_of_port(
    c: &mut AnyConnection,
    port_id: &str,
) -> R<Vec<PortForwarding>> {
    Ok(
        sqlx::query("SELECT * FROM network_port_forwardings WHERE internal_port_id=$1")
            .bind(port_id)
            .fetch_all(c)
            .await?
            .into_iter()
            .map(port_forwarding)
            .collect(),
    )
}

pub async fn delete_port_forwarding(c: &mut AnyConnection, id: &str) -> R<()> {
    sqlx::query("DELETE FROM network_port_forwardings WHERE id=$1")
        .bind(id)
        .execute(c)
        .await
        .map(drop)
}

pub async fn delete_port_forwardings_of_fip(c: &mut AnyConnection, fip_id: &str) -> R<()> {
    sqlx::query("DELETE FROM network_port_forwardings WHERE floatingip_id=$1")
        .bind(fip_id)
        .execute(c)
        .await
        .map(drop)
}
