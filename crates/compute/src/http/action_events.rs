//! The `events` of `GET /servers/{id}/os-instance-actions/{request_id}`, as Nova shows them:
//! to admins (`os-instance-actions:events`) at every version with their tracebacks and,
//! from 2.62, their hosts; to the server's project from 2.51 without either; a hashed
//! `hostId` for everyone from 2.62, and `details` from 2.84 under
//! `os-instance-actions:events:details`.

use serde_json::{json, Value};

use super::{views, Ctx, State};
use crate::error::ComputeError;
use crate::service::action_events::ActionEvent;
use crate::service::extras::InstanceAction;

/// What the caller may see of each event.
struct Shown {
    traceback: bool,
    host: bool,
    host_id: bool,
    details: bool,
}

fn view(e: &ActionEvent, project: &str, shown: &Shown) -> Value {
    let mut v = json!({
        "event": e.event,
        "start_time": views::naive(e.start_time),
        "finish_time": e.finish_time.map(views::naive),
        "result": e.result,
    });
    if shown.traceback {
        v["traceback"] = json!(e.traceback);
    }
    if shown.host {
        v["host"] = json!(e.host);
    }
    if shown.host_id {
        v["hostId"] = json!(views::hashed_host(project, e.host.as_deref()));
    }
    if shown.details {
        v["details"] = json!(e.details);
    }
    v
}

/// The events of `action`, or `None` when the caller's version and role show none.
pub async fn events(
    s: &State,
    ctx: &Ctx,
    action: &InstanceAction,
) -> Result<Option<Value>, ComputeError> {
    // The rules' target is the server's project, as in Nova.
    let project = match s.instance(&action.instance_uuid).await? {
        Some(i) => i.project_id,
        None => action.project_id.clone(),
    };
    let may = |rule: &str| s.allowed(&ctx.auth, rule, &project, &ctx.auth.user_id);
    let admin = may("os_compute_api:os-instance-actions:events");
    if !admin && !ctx.mv.at_least(51) {
        return Ok(None);
    }
    let shown = Shown {
        traceback: admin,
        host: admin && ctx.mv.at_least(62),
        host_id: ctx.mv.at_least(62),
        details: ctx.mv.at_least(84) && may("os_compute_api:os-instance-actions:events:details"),
    };
    let list = s.action_events(&action.id).await?;
    // Events recorded by periodic tasks carry no project; the server's stands in.
    let hash_project = if action.project_id.is_empty() {
        &project
    } else {
        &action.project_id
    };
    Ok(Some(
        list.iter().map(|e| view(e, hash_project, &shown)).collect(),
    ))
}
