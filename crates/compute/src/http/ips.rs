//! `/servers/{id}/ips` and `/servers/{id}/ips/{network}`: a server's addresses by network
//! label; an unknown label is Nova's 404.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Value};

use super::{params, reply, Ctx, HttpResult, Query, State};
use crate::error::ComputeError;
use crate::service::addresses::Address;

pub fn api() -> Api<State> {
    Api::new()
        .get(
            "/v2.1/servers/{id}/ips",
            op("list_server_ips", "List a server's addresses"),
            index,
        )
        .get(
            "/v2.1/servers/{id}/ips/{network}",
            op(
                "show_server_ips",
                "Show a server's addresses on one network",
            ),
            show,
        )
}

fn view(list: &[Address]) -> Value {
    list.iter()
        .map(|a| json!({"addr": a.addr, "version": a.version}))
        .collect()
}

async fn index(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    q: Query,
) -> HttpResult {
    if ctx.mv.at_least(102) {
        params::only(&q, &[])?;
    }
    let nets = s
        .server_addresses(&ctx.auth, &id, "os_compute_api:ips:index")
        .await?;
    let addresses: serde_json::Map<String, Value> =
        nets.iter().map(|(k, v)| (k.clone(), view(v))).collect();
    reply(StatusCode::OK, json!({ "addresses": addresses }))
}

async fn show(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path((id, network)): Path<(String, String)>,
    q: Query,
) -> HttpResult {
    if ctx.mv.at_least(102) {
        params::only(&q, &[])?;
    }
    let nets = s
        .server_addresses(&ctx.auth, &id, "os_compute_api:ips:show")
        .await?;
    let list = nets
        .get(&network)
        .ok_or_else(|| ComputeError::not_found("Instance is not a member of specified network"))?;
    reply(StatusCode::OK, json!({ network: view(list) }))
}
