//! `/os-simple-tenant-usage`: every project's usage over a period (admins) and one
//! project's, with `start`/`end` (naive UTC, Nova's three formats; now when absent), the
//! per-server rows with `detailed=1` (always for one project), and from 2.40 paging over
//! the servers with `limit`/`marker` and a `next` link.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use chrono::NaiveDateTime;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Value};

use super::{params, reply, views, Ctx, HttpResult, Query, State};
use crate::error::ComputeError;
use crate::service::usage::{ServerUsage, TenantUsage, UsageQuery};

pub fn api() -> Api<State> {
    Api::new()
        .get(
            "/v2.1/os-simple-tenant-usage",
            op("list_tenant_usages", "List usage of every project"),
            list,
        )
        .get(
            "/v2.1/os-simple-tenant-usage/{tenant_id}",
            op("show_tenant_usage", "Show a project's usage"),
            show,
        )
}

/// A period bound: `2024-01-02T03:04:05`, with `.ffffff`, or `2024-01-02 03:04:05.ffffff`.
fn parse_time(text: Option<&str>, now: i64) -> Result<i64, ComputeError> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(now);
    };
    [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .map(|t| t.and_utc().timestamp_micros())
    .ok_or_else(|| ComputeError::bad("Invalid datetime string: Datetime is in invalid format"))
}

/// The period, page and detail flag of a request; `show` names the project.
fn usage_query(
    ctx: &Ctx,
    q: &Query,
    project: Option<&str>,
) -> Result<(UsageQuery, bool), ComputeError> {
    let paged = ctx.mv.at_least(40);
    if ctx.mv.at_least(75) {
        let allowed: &[&str] = if project.is_some() {
            &["start", "end", "limit", "marker"]
        } else {
            &["start", "end", "detailed", "limit", "marker"]
        };
        params::only(q, allowed)?;
    }
    // Nova reads the first of repeated `start`/`end`/`detailed`.
    let first = |k: &str| q.all(k).first().copied();
    let at = crate::service::now();
    let start = parse_time(first("start"), at)?;
    let end = parse_time(first("end"), at)?;
    if start >= end {
        return Err(ComputeError::bad(
            "Invalid start time. The start time cannot occur after the end time.",
        ));
    }
    let limit = if paged {
        params::capped(params::count(q, "limit")?, params::MAX_LIMIT)
    } else {
        params::MAX_LIMIT
    };
    let usage = UsageQuery {
        start,
        end,
        project: project.map(str::to_string),
        limit,
        marker: if paged {
            q.get("marker").map(str::to_string)
        } else {
            None
        },
    };
    let detailed = project.is_some() || first("detailed") == Some("1");
    Ok((usage, detailed))
}

fn server_view(u: &ServerUsage) -> Value {
    json!({
        "instance_id": u.instance_id,
        "name": u.name,
        "tenant_id": u.tenant_id,
        "flavor": u.flavor,
        "hours": u.hours,
        "memory_mb": u.memory_mb,
        "local_gb": u.local_gb,
        "vcpus": u.vcpus,
        "started_at": views::naive(u.started_at),
        "ended_at": u.ended_at.map(views::naive),
        "state": u.state,
        "uptime": u.uptime,
    })
}

fn tenant_view(t: &TenantUsage, detailed: bool) -> Value {
    let mut v = json!({
        "tenant_id": t.tenant_id,
        "start": views::naive(t.start),
        "stop": views::naive(t.stop),
        "total_hours": t.total_hours,
        "total_memory_mb_usage": t.total_memory_mb_usage,
        "total_vcpus_usage": t.total_vcpus_usage,
        "total_local_gb_usage": t.total_local_gb_usage,
    });
    if detailed {
        v["server_usages"] = t.server_usages.iter().map(server_view).collect();
    }
    v
}

fn link(
    ctx: &Ctx,
    collection: &str,
    q: &Query,
    size: usize,
    servers: &[ServerUsage],
) -> Option<Value> {
    if !ctx.mv.at_least(40) {
        return None;
    }
    let last = servers.last().map(|u| u.instance_id.as_str());
    params::next_link(ctx, collection, q, servers.len(), size, last)
}

async fn list(AxState(s): AxState<State>, ctx: Ctx, q: Query) -> HttpResult {
    let (uq, detailed) = usage_query(&ctx, &q, None)?;
    let (tenants, servers) = s.tenant_usage(&ctx.auth, &uq).await?;
    let mut body = json!({
        "tenant_usages": tenants.iter().map(|t| tenant_view(t, detailed)).collect::<Vec<_>>(),
    });
    if let Some(l) = link(&ctx, "os-simple-tenant-usage", &q, uq.limit, &servers) {
        body["tenant_usages_links"] = l;
    }
    reply(StatusCode::OK, body)
}

async fn show(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(tenant_id): Path<String>,
    q: Query,
) -> HttpResult {
    let (uq, _) = usage_query(&ctx, &q, Some(&tenant_id))?;
    let (tenants, servers) = s.tenant_usage(&ctx.auth, &uq).await?;
    let usage = tenants
        .first()
        .map(|t| tenant_view(t, true))
        .unwrap_or_else(|| json!({}));
    let mut body = json!({ "tenant_usage": usage });
    let collection = format!("os-simple-tenant-usage/{tenant_id}");
    if let Some(l) = link(&ctx, &collection, &q, uq.limit, &servers) {
        body["tenant_usage_links"] = l;
    }
    reply(StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_bounds_in_novas_formats() {
        let t = |s: &str| parse_time(Some(s), 0);
        let plain = t("2024-01-02T03:04:05").unwrap();
        assert_eq!(plain, 1_704_164_645_000_000);
        assert_eq!(t("2024-01-02T03:04:05.5").unwrap(), plain + 500_000);
        assert_eq!(t("2024-01-02 03:04:05.000001").unwrap(), plain + 1);
        assert_eq!(parse_time(None, 42).unwrap(), 42);
        assert_eq!(parse_time(Some(""), 42).unwrap(), 42);
        assert!(t("yesterday").is_err());
        assert!(t("2024-01-02").is_err());
    }
}
