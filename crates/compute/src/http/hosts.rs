//! The operator's view of the hosts: `os-services`, `os-hypervisors`,
//! `os-availability-zone`, and the caller's `limits`.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Value};

use super::{reply, views, Ctx, HttpResult, State};
use crate::error::ComputeError;
use crate::model::ComputeNode;

pub fn api() -> Api<State> {
    Api::new()
        .get(
            "/v2.1/os-services",
            op("list_services", "List compute services"),
            services,
        )
        .get(
            "/v2.1/os-hypervisors",
            op("list_hypervisors", "List hypervisors"),
            hypervisors,
        )
        .get(
            "/v2.1/os-hypervisors/detail",
            op("list_hypervisors_detail", "List hypervisors with details"),
            hypervisors_detail,
        )
        .get(
            "/v2.1/os-hypervisors/{id}",
            op("show_hypervisor", "Show a hypervisor"),
            hypervisor,
        )
        .get(
            "/v2.1/os-availability-zone",
            op("list_availability_zones", "List availability zones"),
            zones,
        )
        .get(
            "/v2.1/os-availability-zone/detail",
            op(
                "list_availability_zones_detail",
                "List availability zones with hosts",
            ),
            zones_detail,
        )
        .get(
            "/v2.1/limits",
            op("show_limits", "Show the caller's limits"),
            limits,
        )
}

async fn services(AxState(s): AxState<State>, ctx: Ctx) -> HttpResult {
    let list = s.list_services(&ctx.auth).await?;
    let body: Vec<Value> = list
        .iter()
        .enumerate()
        .map(|(n, sv)| {
            let mut v = json!({
                "id": if ctx.mv.at_least(53) { json!(sv.id) } else { json!(n + 1) },
                "binary": sv.binary,
                "host": sv.host,
                "zone": sv.zone,
                "status": if sv.disabled { "disabled" } else { "enabled" },
                "state": if s.service_is_up(sv) { "up" } else { "down" },
                "updated_at": views::naive(sv.updated_at),
                "disabled_reason": sv.disabled_reason,
            });
            if ctx.mv.at_least(11) {
                v["forced_down"] = json!(sv.forced_down);
            }
            v
        })
        .collect();
    reply(StatusCode::OK, json!({"services": body}))
}

async fn node_state(
    s: &State,
    node: &ComputeNode,
) -> (&'static str, &'static str, Option<crate::model::Service>) {
    let svc = s.services().await.ok().and_then(|l| {
        l.into_iter()
            .find(|sv| sv.host == node.host && sv.binary == "nova-compute")
    });
    let state = if svc.as_ref().is_some_and(|sv| s.service_is_up(sv)) {
        "up"
    } else {
        "down"
    };
    let status = if svc.as_ref().is_some_and(|sv| sv.disabled) {
        "disabled"
    } else {
        "enabled"
    };
    (state, status, svc)
}

async fn hypervisor_view(
    s: &State,
    ctx: &Ctx,
    n: &ComputeNode,
    index: usize,
    detail: bool,
) -> Value {
    let (state, status, svc) = node_state(s, n).await;
    let mut v = json!({
        "id": if ctx.mv.at_least(53) { json!(n.uuid) } else { json!(index + 1) },
        "hypervisor_hostname": n.hypervisor_hostname,
        "state": state,
        "status": status,
    });
    if detail {
        v["hypervisor_type"] = json!(n.hypervisor_type);
        v["hypervisor_version"] = json!(n.hypervisor_version);
        v["host_ip"] = json!(n.host_ip);
        v["service"] = json!({
            "host": n.host,
            "id": svc.as_ref().map(|sv| json!(sv.id)).unwrap_or(Value::Null),
            "disabled_reason": svc.as_ref().and_then(|sv| sv.disabled_reason.clone()),
        });
        if ctx.mv.at_least(28) {
            v["cpu_info"] = serde_json::from_str(&n.cpu_info).unwrap_or(json!({}));
        } else {
            v["cpu_info"] = json!(n.cpu_info);
        }
        if !ctx.mv.at_least(88) {
            // The usage fields Nova dropped in 2.88 (they live in Placement).
            let usage = s.placement.provider(&n.uuid).ok();
            let used = |c: &str| usage.as_ref().map_or(0, |p| p.used(c));
            let running = s
                .servers_on_host(&n.host)
                .await
                .map(|l| l.len())
                .unwrap_or(0);
            v["vcpus"] = json!(n.vcpus);
            v["memory_mb"] = json!(n.memory_mb);
            v["local_gb"] = json!(n.local_gb);
            v["vcpus_used"] = json!(used("VCPU"));
            v["memory_mb_used"] = json!(used("MEMORY_MB"));
            v["local_gb_used"] = json!(used("DISK_GB"));
            v["free_ram_mb"] = json!(n.memory_mb - used("MEMORY_MB"));
            v["free_disk_gb"] = json!(n.local_gb - used("DISK_GB"));
            v["current_workload"] = json!(0);
            v["running_vms"] = json!(running);
            v["disk_available_least"] = json!(n.local_gb - used("DISK_GB"));
        } else {
            v["uptime"] = Value::Null;
        }
    }
    v
}

async fn list_nodes(s: &State, ctx: &Ctx, rule: &str, detail: bool) -> HttpResult {
    s.authorize(&ctx.auth, rule)?;
    let nodes = s.compute_nodes().await?;
    let mut out = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        out.push(hypervisor_view(s, ctx, n, i, detail).await);
    }
    reply(StatusCode::OK, json!({"hypervisors": out}))
}

async fn hypervisors(AxState(s): AxState<State>, ctx: Ctx) -> HttpResult {
    list_nodes(&s, &ctx, "os_compute_api:os-hypervisors:list", false).await
}

async fn hypervisors_detail(AxState(s): AxState<State>, ctx: Ctx) -> HttpResult {
    list_nodes(&s, &ctx, "os_compute_api:os-hypervisors:list-detail", true).await
}

async fn hypervisor(AxState(s): AxState<State>, ctx: Ctx, Path(id): Path<String>) -> HttpResult {
    s.authorize(&ctx.auth, "os_compute_api:os-hypervisors:show")?;
    let nodes = s.compute_nodes().await?;
    let found = nodes
        .iter()
        .enumerate()
        .find(|(i, n)| n.uuid == id || (!ctx.mv.at_least(53) && (i + 1).to_string() == id));
    let Some((i, n)) = found else {
        return Err(ComputeError::not_found(format!(
            "Hypervisor with ID {id} could not be found."
        )));
    };
    let v = hypervisor_view(&s, &ctx, n, i, true).await;
    reply(StatusCode::OK, json!({"hypervisor": v}))
}

async fn zones(AxState(s): AxState<State>, ctx: Ctx) -> HttpResult {
    s.authorize(&ctx.auth, "os_compute_api:os-availability-zone:list")?;
    let mut names: Vec<String> = s
        .services()
        .await?
        .into_iter()
        .filter(|sv| sv.binary == "nova-compute")
        .map(|sv| sv.zone)
        .collect();
    names.sort();
    names.dedup();
    let body: Vec<Value> = names
        .iter()
        .map(|z| json!({"zoneName": z, "zoneState": {"available": true}, "hosts": Value::Null}))
        .collect();
    reply(StatusCode::OK, json!({"availabilityZoneInfo": body}))
}

async fn zones_detail(AxState(s): AxState<State>, ctx: Ctx) -> HttpResult {
    s.authorize(&ctx.auth, "os_compute_api:os-availability-zone:detail")?;
    let services = s.services().await?;
    let mut zones: std::collections::BTreeMap<String, serde_json::Map<String, Value>> =
        Default::default();
    for sv in &services {
        let zone = zones.entry(sv.zone.clone()).or_default();
        let host = zone.entry(sv.host.clone()).or_insert_with(|| json!({}));
        host[&sv.binary] = json!({
            "available": s.service_is_up(sv),
            "active": !sv.disabled,
            "updated_at": views::naive(sv.updated_at),
        });
    }
    let body: Vec<Value> = zones
        .into_iter()
        .map(|(z, hosts)| json!({"zoneName": z, "zoneState": {"available": true}, "hosts": hosts}))
        .collect();
    reply(StatusCode::OK, json!({"availabilityZoneInfo": body}))
}

async fn limits(AxState(s): AxState<State>, ctx: Ctx) -> HttpResult {
    s.authorize(&ctx.auth, "os_compute_api:limits")?;
    let project = ctx.auth.project_id().unwrap_or_default().to_string();
    let usage = s.project_usage(&project).await?;
    let limit = |resource: &'static str| {
        let s = s.clone();
        let project = project.clone();
        async move {
            match s.limit_of(&project, resource).await {
                Some(v) => json!(v),
                None => json!(-1),
            }
        }
    };
    let mut absolute = json!({
        "maxTotalInstances": limit("servers").await,
        "maxTotalCores": limit("class:VCPU").await,
        "maxTotalRAMSize": limit("class:MEMORY_MB").await,
        "maxServerMeta": 128,
        "maxTotalKeypairs": limit("server_key_pairs").await,
        "maxServerGroups": limit("server_groups").await,
        "maxServerGroupMembers": limit("server_group_members").await,
        "totalInstancesUsed": usage.0,
        "totalCoresUsed": usage.1,
        "totalRAMUsed": usage.2,
        "totalServerGroupsUsed": s.server_group_count(&project).await?,
    });
    if !ctx.mv.at_least(57) {
        absolute["maxPersonality"] = json!(5);
        absolute["maxPersonalitySize"] = json!(10240);
    }
    if !ctx.mv.at_least(36) {
        for k in [
            "maxTotalFloatingIps",
            "maxSecurityGroups",
            "maxSecurityGroupRules",
            "totalFloatingIpsUsed",
            "totalSecurityGroupsUsed",
        ] {
            absolute[k] = json!(if k.starts_with("max") { -1 } else { 0 });
        }
    }
    reply(
        StatusCode::OK,
        json!({"limits": {"rate": [], "absolute": absolute}}),
    )
}
