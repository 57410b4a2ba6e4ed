//! `GET /os-migrations`: the migration records, with Nova's filters per microversion:
//! `migration_type` and links to in-progress live migrations from 2.23; `uuid`, paging
//! (`limit`, `marker`, newest first), `changes-since` and a closed query schema from 2.59;
//! `changes-before` from 2.66; `user_id`/`project_id` (filters and fields) from 2.80. Host
//! names are blanked for callers without `os-migrations:index:host`.

use axum::extract::State as AxState;
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Value};

use super::{params, reply, views, Ctx, HttpResult, Query, State};
use crate::error::ComputeError;
use crate::service::server_migrations::{MigrationQuery, MigrationRecord};

pub fn api() -> Api<State> {
    Api::new().get(
        "/v2.1/os-migrations",
        op("list_migrations", "List migrations"),
        index,
    )
}

const FILTERS: &[&str] = &[
    "hidden",
    "host",
    "instance_uuid",
    "source_compute",
    "status",
    "migration_type",
];

/// The parameters the version's schema knows (from 2.59 nothing else is accepted).
fn allowed(ctx: &Ctx) -> Vec<&'static str> {
    let mut all = FILTERS.to_vec();
    all.extend(["limit", "marker", "changes-since"]);
    if ctx.mv.at_least(66) {
        all.push("changes-before");
    }
    if ctx.mv.at_least(80) {
        all.extend(["user_id", "project_id"]);
    }
    all
}

fn time_param(q: &Query, name: &str) -> Result<Option<i64>, ComputeError> {
    match q.get(name) {
        None => Ok(None),
        Some(v) => ferrostack_common::time::parse_iso(v)
            .map(Some)
            .ok_or_else(|| {
                ComputeError::bad(format!(
                "Invalid input for query parameters {name}. Value: {v}. '{v}' is not a 'date-time'"
            ))
            }),
    }
}

fn migration_query(ctx: &Ctx, q: &Query) -> Result<MigrationQuery, ComputeError> {
    let paged = ctx.mv.at_least(59);
    if paged {
        params::only(q, &allowed(ctx))?;
    }
    let text = |k: &str| q.get(k).map(str::to_string);
    let mut mq = MigrationQuery {
        status: text("status"),
        host: text("host"),
        source_compute: text("source_compute"),
        instance_uuid: text("instance_uuid"),
        migration_type: text("migration_type"),
        hidden: q.get("hidden").map(|h| {
            matches!(
                h.to_ascii_lowercase().as_str(),
                "1" | "t" | "true" | "on" | "y" | "yes"
            )
        }),
        // Before 2.59 the schema let any parameter through to the filters, these included.
        user_id: text("user_id"),
        project_id: text("project_id"),
        paged,
        ..Default::default()
    };
    if paged {
        mq.changes_since = time_param(q, "changes-since")?;
        mq.limit = Some(params::capped(
            params::count(q, "limit")?,
            params::MAX_LIMIT,
        ));
        mq.marker = text("marker");
    }
    if ctx.mv.at_least(66) {
        mq.changes_before = time_param(q, "changes-before")?;
        if let (Some(a), Some(b)) = (mq.changes_since, mq.changes_before) {
            if b < a {
                return Err(ComputeError::bad(
                    "The value of changes-since must be less than or equal to changes-before.",
                ));
            }
        }
    }
    Ok(mq)
}

/// Nova shows flavors by integer id; a flavor id that is not a number shows as null.
fn flavor_id(v: &Option<String>) -> Value {
    v.as_deref()
        .and_then(|s| s.parse::<i64>().ok())
        .map_or(Value::Null, |n| json!(n))
}

fn view(ctx: &Ctx, m: &MigrationRecord, hosts: bool) -> Value {
    let host = |h: &Option<String>| if hosts { json!(h) } else { Value::Null };
    let mut v = json!({
        "id": m.id,
        "instance_uuid": m.instance_uuid,
        "status": m.status,
        "source_compute": host(&m.source_compute),
        "source_node": host(&m.source_node),
        "dest_compute": host(&m.dest_compute),
        "dest_node": host(&m.dest_node),
        "dest_host": host(&m.dest_host),
        "old_instance_type_id": flavor_id(&m.old_instance_type_id),
        "new_instance_type_id": flavor_id(&m.new_instance_type_id),
        "created_at": views::naive(m.created_at),
        "updated_at": m.updated_at.map(views::naive),
    });
    if ctx.mv.at_least(23) {
        v["migration_type"] = json!(m.migration_type);
        let in_progress = matches!(
            m.status.as_str(),
            "queued" | "preparing" | "running" | "post-migrating"
        );
        if m.migration_type == "live-migration" && in_progress {
            let collection = format!("servers/{}/migrations", m.instance_uuid);
            v["links"] = ctx.links(&collection, &m.id.to_string());
        }
    }
    if ctx.mv.at_least(59) {
        v["uuid"] = json!(m.uuid);
    }
    if ctx.mv.at_least(80) {
        v["user_id"] = json!(m.user_id);
        v["project_id"] = json!(m.project_id);
    }
    v
}

async fn index(AxState(s): AxState<State>, ctx: Ctx, q: Query) -> HttpResult {
    let mq = migration_query(&ctx, &q)?;
    let list = s.list_migrations(&ctx.auth, &mq).await?;
    let hosts = s.allowed(
        &ctx.auth,
        "os_compute_api:os-migrations:index:host",
        ctx.auth.project_id().unwrap_or_default(),
        &ctx.auth.user_id,
    );
    let mut body = json!({
        "migrations": list.iter().map(|m| view(&ctx, m, hosts)).collect::<Vec<_>>(),
    });
    if let Some(size) = mq.limit {
        let last = list.last().map(|m| m.uuid.as_str());
        if let Some(l) = params::next_link(&ctx, "os-migrations", &q, list.len(), size, last) {
            body["migrations_links"] = l;
        }
    }
    reply(StatusCode::OK, body)
}
