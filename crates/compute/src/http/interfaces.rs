//! `/servers/{id}/os-interface`: a server's ports as interface attachments (list, show),
//! attaching a NIC (a network, optionally with a fixed IP, or the user's port; 200 with
//! the attachment once the server has it) and detaching one (202). Requests are checked as
//! Nova's schema does; the service (`service::interfaces`) does the rest.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Map, Value};

use super::{accepted, params, reply, Ctx, HttpResult, JsonBody, Query, State};
use crate::error::ComputeError;
use crate::network::{NicRequest, Vif};

pub fn api() -> Api<State> {
    Api::new()
        .get(
            "/v2.1/servers/{id}/os-interface",
            op("list_interface_attachments", "List a server's ports"),
            list,
        )
        .post(
            "/v2.1/servers/{id}/os-interface",
            op(
                "create_interface_attachment",
                "Attach a network, fixed IP or port to a server",
            ),
            create,
        )
        .get(
            "/v2.1/servers/{id}/os-interface/{port_id}",
            op("show_interface_attachment", "Show one port of a server"),
            show,
        )
        .delete(
            "/v2.1/servers/{id}/os-interface/{port_id}",
            op("delete_interface_attachment", "Detach a port from a server").status(202),
            delete,
        )
}

/// Nova's attachment view; the tag from 2.70.
fn view(ctx: &Ctx, v: &Vif) -> Value {
    let fixed_ips: Vec<Value> = v
        .fixed_ips
        .iter()
        .map(|ip| json!({"subnet_id": ip.subnet_id, "ip_address": ip.address}))
        .collect();
    let mut out = json!({
        "port_state": v.status,
        "fixed_ips": fixed_ips,
        "port_id": v.port_id,
        "net_id": v.network_id,
        "mac_addr": v.mac,
    });
    if ctx.mv.at_least(70) {
        out["tag"] = json!(v.tag);
    }
    out
}

fn invalid(field: &str, value: &Value, why: &str) -> ComputeError {
    ComputeError::bad(format!(
        "Invalid input for field/attribute {field}. Value: {value}. {why}"
    ))
}

fn uuid_field(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, ComputeError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if uuid::Uuid::parse_str(s).is_ok() => Ok(Some(s.clone())),
        Some(v @ Value::String(s)) => Err(invalid(key, v, &format!("'{s}' is not a 'uuid'"))),
        Some(v) => Err(invalid(key, v, &format!("{v} is not of type 'string'"))),
    }
}

/// The request of `POST os-interface`, as Nova's schema reads it (the tag from 2.49).
fn nic_request(ctx: &Ctx, body: &Value) -> Result<NicRequest, ComputeError> {
    let Some(top) = body.as_object() else {
        return Err(ComputeError::bad(format!(
            "Invalid input for field/attribute body. Value: {body}. {body} is not of type 'object'"
        )));
    };
    if let Some(k) = top.keys().find(|k| *k != "interfaceAttachment") {
        return Err(ComputeError::bad(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let empty = Map::new();
    let att = match top.get("interfaceAttachment") {
        None => &empty,
        Some(Value::Object(o)) => o,
        Some(v) => {
            return Err(invalid(
                "interfaceAttachment",
                v,
                &format!("{v} is not of type 'object'"),
            ))
        }
    };
    for k in att.keys() {
        let known = matches!(k.as_str(), "net_id" | "port_id" | "fixed_ips")
            || (k == "tag" && ctx.mv.at_least(49));
        if !known {
            return Err(ComputeError::bad(format!(
                "Invalid input for field/attribute interfaceAttachment. Value: {}. Additional properties are not allowed ('{k}' was unexpected)",
                Value::Object(att.clone())
            )));
        }
    }
    let network_id = uuid_field(att, "net_id")?;
    let port_id = uuid_field(att, "port_id")?;
    let fixed_ip = match att.get("fixed_ips") {
        None => None,
        Some(v @ Value::Array(list)) => {
            if list.len() != 1 {
                let why = if list.is_empty() {
                    format!("{v} is too short")
                } else {
                    format!("{v} is too long")
                };
                return Err(invalid("fixed_ips", v, &why));
            }
            let item = list[0]
                .as_object()
                .ok_or_else(|| invalid("fixed_ips", v, "is not of type 'object'"))?;
            if let Some(k) = item.keys().find(|k| *k != "ip_address") {
                return Err(invalid(
                    "fixed_ips",
                    v,
                    &format!("Additional properties are not allowed ('{k}' was unexpected)"),
                ));
            }
            match item.get("ip_address") {
                Some(Value::String(ip)) if ip.parse::<std::net::IpAddr>().is_ok() => {
                    Some(ip.clone())
                }
                Some(ipv) => {
                    return Err(invalid(
                        "fixed_ips/0/ip_address",
                        ipv,
                        &format!("{ipv} is not a 'ipv4'"),
                    ))
                }
                None => {
                    return Err(invalid(
                        "fixed_ips/0",
                        &list[0],
                        "'ip_address' is a required property",
                    ))
                }
            }
        }
        Some(v) => return Err(invalid("fixed_ips", v, "is not of type 'array'")),
    };
    let tag = match att.get("tag") {
        None => None,
        Some(Value::String(t)) if crate::service::extras::valid_tag(t) => Some(t.clone()),
        Some(v) => return Err(invalid("tag", v, "Invalid tag")),
    };
    if network_id.is_some() && port_id.is_some() {
        return Err(ComputeError::bad(
            "Must not input both network_id and port_id",
        ));
    }
    if fixed_ip.is_some() && network_id.is_none() {
        return Err(ComputeError::bad(
            "Must input network_id when request IP address",
        ));
    }
    if network_id.is_none() && port_id.is_none() {
        return Err(ComputeError::bad(
            "Failed to attach network adapter device: a net_id or a port_id is needed",
        ));
    }
    Ok(NicRequest {
        network_id,
        port_id,
        fixed_ip,
        tag,
    })
}

async fn list(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    q: Query,
) -> HttpResult {
    if ctx.mv.at_least(102) {
        params::only(&q, &[])?;
    }
    let vifs = s.list_interfaces(&ctx.auth, &id).await?;
    let list: Vec<Value> = vifs.iter().map(|v| view(&ctx, v)).collect();
    reply(StatusCode::OK, json!({ "interfaceAttachments": list }))
}

async fn show(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path((id, port_id)): Path<(String, String)>,
    q: Query,
) -> HttpResult {
    if ctx.mv.at_least(102) {
        params::only(&q, &[])?;
    }
    let vif = s.show_interface(&ctx.auth, &id, &port_id).await?;
    reply(
        StatusCode::OK,
        json!({ "interfaceAttachment": view(&ctx, &vif) }),
    )
}

async fn create(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: JsonBody,
) -> HttpResult {
    let nic = nic_request(&ctx, &body.0)?;
    let vif = s
        .attach_interface(&ctx.auth, &id, nic, &ctx.request_id)
        .await?;
    reply(
        StatusCode::OK,
        json!({ "interfaceAttachment": view(&ctx, &vif) }),
    )
}

async fn delete(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path((id, port_id)): Path<(String, String)>,
) -> HttpResult {
    s.detach_interface(&ctx.auth, &id, &port_id, &ctx.request_id)
        .await?;
    accepted()
}
