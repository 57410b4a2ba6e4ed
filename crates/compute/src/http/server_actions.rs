//! The server actions that carry a body of their own (`createImage`, `rebuild`): Nova's
//! request schema per microversion, the service call, and the answer each version expects.
//! `servers::action` dispatches here by the action's name.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use serde_json::{json, Map, Value};

use super::servers::{access_ip, field_error, opt_string, parse_metadata, parse_user_data};
use super::{Ctx, HttpResult, State};
use crate::error::ComputeError;
use crate::service::rebuild::RebuildRequest;
use crate::service::snapshot::SnapshotRequest;

/// The action's arguments as an object; anything else is Nova's 400.
fn args_object<'a>(action: &str, args: &'a Value) -> Result<&'a Map<String, Value>, ComputeError> {
    args.as_object()
        .ok_or_else(|| field_error(action, args, "is not of type 'object'"))
}

/// Nova's schemas forbid fields they do not name.
fn only_known(action: &str, b: &Map<String, Value>, known: &[&str]) -> Result<(), ComputeError> {
    match b.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(field_error(
            action,
            &Value::Object(b.clone()),
            &format!("Additional properties are not allowed ('{k}' was unexpected)"),
        )),
        None => Ok(()),
    }
}

/// Nova's `name` parameter type: 1-255 characters, no leading or trailing blanks.
fn required_name(b: &Map<String, Value>) -> Result<String, ComputeError> {
    match b.get("name") {
        Some(Value::String(n))
            if !n.is_empty() && n.chars().count() <= 255 && n.trim() == n.as_str() =>
        {
            Ok(n.clone())
        }
        Some(v) => Err(field_error("name", v, "is not a valid name")),
        None => Err(field_error(
            "name",
            &Value::Null,
            "'name' is a required property",
        )),
    }
}

/// `createImage`: 202; before 2.45 the new image's address in `Location`, from 2.45 its id
/// in the body.
pub async fn create_image(s: &State, ctx: &Ctx, id: &str, args: &Value) -> HttpResult {
    let b = args_object("createImage", args)?;
    only_known("createImage", b, &["name", "metadata"])?;
    let req = SnapshotRequest {
        name: required_name(b)?,
        metadata: parse_metadata(b)?.unwrap_or_default(),
    };
    let image_id = s.create_image(&ctx.auth, id, req, &ctx.request_id).await?;
    if ctx.mv.at_least(45) {
        return super::reply(StatusCode::ACCEPTED, json!({"image_id": image_id}));
    }
    let mut resp = StatusCode::ACCEPTED.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{}/v2.1/images/{image_id}", ctx.base)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// A field that `null` clears: `Some(None)`.
fn clearable(
    b: &Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<Option<Option<String>>, ComputeError> {
    if !b.contains_key(field) {
        return Ok(None);
    }
    opt_string(b, field, max).map(Some)
}

/// `rebuild`: 202 with the server (status REBUILD) and its new admin password.
pub async fn rebuild(s: &State, ctx: &Ctx, id: &str, args: &Value) -> HttpResult {
    let b = args_object("rebuild", args)?;
    let mv = ctx.mv;
    let mut known = vec![
        "imageRef",
        "name",
        "adminPass",
        "metadata",
        "preserve_ephemeral",
        "accessIPv4",
        "accessIPv6",
        "OS-DCF:diskConfig",
    ];
    for (minor, field) in [
        (19, "description"),
        (54, "key_name"),
        (57, "user_data"),
        (63, "trusted_image_certificates"),
        (90, "hostname"),
    ] {
        if mv.at_least(minor) {
            known.push(field);
        }
    }
    if !mv.at_least(57) {
        known.push("personality");
    }
    only_known("rebuild", b, &known)?;
    let image_ref = match b.get("imageRef") {
        Some(Value::String(i)) if !i.is_empty() => i.clone(),
        Some(v) => return Err(field_error("imageRef", v, "is not a valid image reference")),
        None => {
            return Err(field_error(
                "imageRef",
                &Value::Null,
                "'imageRef' is a required property",
            ))
        }
    };
    if b.get("personality")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty())
    {
        return Err(ComputeError::bad(
            "Personality files are not supported; use user_data or a config drive.",
        ));
    }
    if let Some(v) = b.get("preserve_ephemeral") {
        if !v.is_boolean() {
            return Err(field_error(
                "preserve_ephemeral",
                v,
                "is not of type 'boolean'",
            ));
        }
    }
    let name = match b.get("name") {
        None => None,
        Some(_) => Some(super::servers::server_name(b)?),
    };
    let access = |field: &str, v6: bool| -> Result<Option<Option<String>>, ComputeError> {
        if b.contains_key(field) {
            access_ip(b, field, v6).map(Some)
        } else {
            Ok(None)
        }
    };
    let user_data = if b.contains_key("user_data") {
        Some(parse_user_data(b)?)
    } else {
        None
    };
    let hostname = match b.get("hostname") {
        None => None,
        Some(Value::String(h)) if !h.is_empty() && h.len() <= 63 => Some(h.clone()),
        Some(v) => return Err(field_error("hostname", v, "is not a valid hostname")),
    };
    let req = RebuildRequest {
        image_ref,
        name,
        admin_pass: opt_string(b, "adminPass", 255)?,
        metadata: parse_metadata(b)?,
        access_ipv4: access("accessIPv4", false)?,
        access_ipv6: access("accessIPv6", true)?,
        description: clearable(b, "description", 255)?,
        key_name: clearable(b, "key_name", 255)?,
        user_data,
        hostname,
    };
    let (inst, admin_pass) = s
        .rebuild_server(&ctx.auth, id, req, &ctx.request_id)
        .await?;
    let mut view =
        super::servers::server_answer(s, ctx, &inst, super::views::ServerAnswer::Rebuild).await?;
    view["adminPass"] = json!(admin_pass);
    // Nova renders the rebuilt server's addresses without the OS-EXT-IPS attributes
    // (`extend_address=False`), and clients validate against that.
    if let Some(nets) = view["addresses"].as_object_mut() {
        for ips in nets.values_mut().filter_map(Value::as_array_mut) {
            for ip in ips.iter_mut().filter_map(Value::as_object_mut) {
                ip.retain(|k, _| !k.starts_with("OS-EXT-IPS"));
            }
        }
    }
    super::reply(StatusCode::ACCEPTED, json!({ "server": view }))
}

/// `unshelve`'s body: null, or from 2.77 `{"availability_zone": ...}` (2.91 allows null and
/// `host`, which needs an admin and is not offered here).
pub fn unshelve_zone(ctx: &Ctx, args: &Value) -> Result<Option<String>, ComputeError> {
    let b = match args {
        Value::Null => return Ok(None),
        Value::Object(b) if ctx.mv.at_least(77) => b,
        other => return Err(field_error("unshelve", other, "is not of type 'null'")),
    };
    only_known("unshelve", b, &["availability_zone"])?;
    match b.get("availability_zone") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(z)) if !z.is_empty() && z.len() <= 255 => Ok(Some(z.clone())),
        Some(v) => Err(field_error(
            "availability_zone",
            v,
            "is not a valid zone name",
        )),
    }
}

/// `resize`'s body: `{"flavorRef": ..., "OS-DCF:diskConfig": ...}`.
pub fn resize_flavor(args: &Value) -> Result<String, ComputeError> {
    let b = args_object("resize", args)?;
    only_known("resize", b, &["flavorRef", "OS-DCF:diskConfig"])?;
    match b.get("flavorRef") {
        Some(Value::String(f)) if !f.is_empty() => Ok(f.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(v) => Err(field_error(
            "flavorRef",
            v,
            "is not a valid flavor reference",
        )),
        None => Err(field_error(
            "flavorRef",
            &Value::Null,
            "'flavorRef' is a required property",
        )),
    }
}

/// `rescue`: `{"adminPass", "rescue_image_ref"}` (both optional, the body may be null);
/// 200 with the rescue system's password.
pub async fn rescue(s: &State, ctx: &Ctx, id: &str, args: &Value) -> HttpResult {
    let empty = Map::new();
    let b = match args {
        Value::Null => &empty,
        other => args_object("rescue", other)?,
    };
    only_known("rescue", b, &["adminPass", "rescue_image_ref"])?;
    let image = opt_string(b, "rescue_image_ref", 255)?.filter(|i| !i.is_empty());
    let pass = opt_string(b, "adminPass", 255)?;
    let pass = s
        .rescue_server(&ctx.auth, id, image, pass, &ctx.request_id)
        .await?;
    super::reply(StatusCode::OK, json!({ "adminPass": pass }))
}
