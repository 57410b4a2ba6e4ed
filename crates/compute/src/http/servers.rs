//! `/servers`: create, list (brief and detail, with Nova's filters), show, update, delete,
//! and `POST /servers/{id}/action` for the power actions, lock/unlock and the console log.

use std::collections::BTreeMap;

use axum::extract::{Path, State as AxState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use base64::Engine as _;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Map, Value};

use super::{accepted, no_content, reply, views, Ctx, HttpResult, JsonBody, Query, State};
use crate::error::ComputeError;
use crate::model::Instance;
use crate::service::servers::{CreateServer, ServerQuery};
use crate::states::{self, Action};

pub fn api() -> Api<State> {
    Api::new()
        .get("/v2.1/servers", op("list_servers", "List servers"), list)
        .get(
            "/v2.1/servers/detail",
            op("list_servers_detail", "List servers with details"),
            detail,
        )
        .post(
            "/v2.1/servers",
            op("create_server", "Create a server").status(202),
            create,
        )
        .get(
            "/v2.1/servers/{id}",
            op("show_server", "Show a server"),
            show,
        )
        .put(
            "/v2.1/servers/{id}",
            op("update_server", "Update a server"),
            update,
        )
        .delete(
            "/v2.1/servers/{id}",
            op("delete_server", "Delete a server").status(204),
            delete,
        )
        .post(
            "/v2.1/servers/{id}/action",
            op("server_action", "Run an action on a server"),
            action,
        )
}

pub(super) fn field_error(field: &str, value: &Value, why: &str) -> ComputeError {
    ComputeError::bad(format!(
        "Invalid input for field/attribute {field}. Value: {value}. {why}"
    ))
}

pub(super) fn opt_string(
    b: &Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<Option<String>, ComputeError> {
    match b.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(v) => Err(field_error(
            field,
            v,
            &format!("{v} is not of type 'string' or is longer than {max}"),
        )),
    }
}

/// An access address, validated and written the canonical way (RFC 5952 for IPv6), as
/// Nova stores it.
pub(super) fn access_ip(
    b: &Map<String, Value>,
    field: &str,
    v6: bool,
) -> Result<Option<String>, ComputeError> {
    let Some(text) = opt_string(b, field, 64)? else {
        return Ok(None);
    };
    if text.is_empty() {
        return Ok(None);
    }
    let parsed = if v6 {
        text.parse::<std::net::Ipv6Addr>()
            .map(|a| a.to_string())
            .ok()
    } else {
        text.parse::<std::net::Ipv4Addr>()
            .map(|a| a.to_string())
            .ok()
    };
    parsed.map(Some).ok_or_else(|| {
        field_error(
            field,
            &json!(text),
            &format!("'{text}' is not a '{}'", if v6 { "ipv6" } else { "ipv4" }),
        )
    })
}

/// `user_data`: base64 of at most 64 KiB, or absent/null.
pub(super) fn parse_user_data(b: &Map<String, Value>) -> Result<Option<String>, ComputeError> {
    match b.get("user_data") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(u)) => {
            let ok = u.len() <= 65535
                && base64::engine::general_purpose::STANDARD
                    .decode(u.trim())
                    .is_ok();
            if !ok {
                return Err(ComputeError::bad("User data needs to be valid base 64."));
            }
            Ok(Some(u.clone()))
        }
        Some(v) => Err(field_error("user_data", v, "is not of type 'string'")),
    }
}

/// `metadata`: string keys (1-255 characters) to string values (at most 255), when given.
pub(super) fn parse_metadata(
    b: &Map<String, Value>,
) -> Result<Option<BTreeMap<String, String>>, ComputeError> {
    let Some(m) = b.get("metadata") else {
        return Ok(None);
    };
    let obj = m
        .as_object()
        .ok_or_else(|| field_error("metadata", m, "is not of type 'object'"))?;
    let mut metadata = BTreeMap::new();
    for (k, v) in obj {
        let v = v
            .as_str()
            .ok_or_else(|| field_error("metadata", m, &format!("{v} is not of type 'string'")))?;
        if k.is_empty() || k.chars().count() > 255 || v.chars().count() > 255 {
            return Err(field_error(
                "metadata",
                m,
                "keys and values must be 1-255 characters",
            ));
        }
        metadata.insert(k.clone(), v.to_string());
    }
    Ok(Some(metadata))
}

/// A server's `name`: 1-255 characters, not only blanks.
pub(super) fn server_name(b: &Map<String, Value>) -> Result<String, ComputeError> {
    match b.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() && n.chars().count() <= 255 => Ok(n.clone()),
        Some(v) => Err(field_error("name", v, "Invalid server name")),
        None => Err(field_error(
            "name",
            &Value::Null,
            "'name' is a required property",
        )),
    }
}

fn parse_create(ctx: &Ctx, body: &Value) -> Result<(CreateServer, bool), ComputeError> {
    let b = body
        .get("server")
        .and_then(Value::as_object)
        .ok_or_else(|| field_error("server", body, "'server' is a required property"))?;
    let mv = ctx.mv;
    let name = server_name(b)?;
    let flavor_ref = match b.get("flavorRef") {
        Some(Value::String(f)) if !f.is_empty() => f.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(v) => return Err(field_error("flavorRef", v, "Invalid flavorRef")),
        None => {
            return Err(field_error(
                "flavorRef",
                &Value::Null,
                "'flavorRef' is a required property",
            ))
        }
    };
    let mut image_ref = match b.get("imageRef") {
        Some(Value::String(i)) => i.clone(),
        None | Some(Value::Null) => String::new(),
        Some(v) => return Err(field_error("imageRef", v, "is not of type 'string'")),
    };
    if let Some(bdms) = b.get("block_device_mapping_v2") {
        let list = bdms.as_array().ok_or_else(|| {
            field_error("block_device_mapping_v2", bdms, "is not of type 'array'")
        })?;
        for bdm in list {
            let source = bdm.get("source_type").and_then(Value::as_str).unwrap_or("");
            let dest = bdm
                .get("destination_type")
                .and_then(Value::as_str)
                .unwrap_or("local");
            let boot0 = bdm
                .get("boot_index")
                .map(|v| v.as_i64() == Some(0) || v.as_str() == Some("0"))
                .unwrap_or(false);
            match (source, dest) {
                ("image", "local") if boot0 => {
                    if let Some(u) = bdm.get("uuid").and_then(Value::as_str) {
                        image_ref = u.to_string();
                    }
                }
                _ => {
                    return Err(ComputeError::bad(
                        "Block device mappings other than a local disk from an image are not supported yet (volumes arrive with the Block Storage service).",
                    ))
                }
            }
        }
    }
    if image_ref.is_empty() {
        return Err(ComputeError::bad("Missing imageRef attribute"));
    }
    let networks = match b.get("networks") {
        None if mv.at_least(37) => {
            return Err(field_error(
                "networks",
                &Value::Null,
                "'networks' is a required property",
            ))
        }
        None => Value::Null,
        Some(Value::String(s)) if mv.at_least(37) && (s == "auto" || s == "none") => json!(s),
        Some(Value::Array(list)) => Value::Array(nic_requests(list, mv)?),
        Some(v) => {
            return Err(field_error(
                "networks",
                v,
                "is not valid under any of the given schemas",
            ))
        }
    };
    let count = |field: &str| -> Result<Option<u32>, ComputeError> {
        match b.get(field) {
            None => Ok(None),
            Some(v) => {
                let n = v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()));
                match n {
                    Some(n) if (1..=1000).contains(&n) => Ok(Some(n as u32)),
                    _ => Err(field_error(field, v, "must be an integer of at least 1")),
                }
            }
        }
    };
    let min_count = count("min_count")?.unwrap_or(1);
    let max_count = count("max_count")?.unwrap_or(min_count);
    if min_count > max_count {
        return Err(ComputeError::bad("min_count must be <= max_count"));
    }
    let user_data = parse_user_data(b)?;
    let metadata = parse_metadata(b)?.unwrap_or_default();
    let config_drive = match b.get("config_drive") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(c)) => *c,
        Some(Value::String(s)) => matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "1" | "yes" | "y" | "on" | "t"
        ),
        Some(v) => {
            return Err(field_error(
                "config_drive",
                v,
                "is not of type 'boolean', 'string'",
            ))
        }
    };
    let (availability_zone, requested_host) = match opt_string(b, "availability_zone", 255)? {
        Some(az) => match az.split_once(':') {
            Some((zone, host)) => (
                (!zone.is_empty()).then(|| zone.to_string()),
                Some(host.split(':').next().unwrap_or("").to_string()).filter(|h| !h.is_empty()),
            ),
            None => (Some(az), None),
        },
        None => (None, None),
    };
    let mut tags = Vec::new();
    if let Some(t) = b.get("tags") {
        if !mv.at_least(52) {
            return Err(field_error(
                "server",
                t,
                "Additional properties are not allowed ('tags' was unexpected)",
            ));
        }
        let list = t
            .as_array()
            .ok_or_else(|| field_error("tags", t, "is not of type 'array'"))?;
        if list.len() > 50 {
            return Err(field_error("tags", t, "is too long"));
        }
        for tag in list {
            match tag.as_str() {
                Some(s)
                    if !s.is_empty() && s.len() <= 60 && !s.contains('/') && !s.contains(',') =>
                {
                    tags.push(s.to_string())
                }
                _ => return Err(field_error("tags", t, "Invalid tag")),
            }
        }
    }
    let description = match b.get("description") {
        Some(v) if !mv.at_least(19) => {
            return Err(field_error(
                "server",
                v,
                "Additional properties are not allowed ('description' was unexpected)",
            ))
        }
        _ => opt_string(b, "description", 255)?,
    };
    let hostname = match b.get("hostname") {
        Some(v) if !mv.at_least(90) => {
            return Err(field_error(
                "server",
                v,
                "Additional properties are not allowed ('hostname' was unexpected)",
            ))
        }
        _ => opt_string(b, "hostname", 255)?,
    };
    let security_groups = match b.get("security_groups") {
        None => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|g| {
                g.get("name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| {
                        field_error("security_groups", g, "'name' is a required property")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(v) => return Err(field_error("security_groups", v, "is not of type 'array'")),
    };
    let scheduler_hints = body
        .get("os:scheduler_hints")
        .or_else(|| body.get("OS-SCH-HNT:scheduler_hints"))
        .cloned()
        .unwrap_or(json!({}));
    if !scheduler_hints.is_object() {
        return Err(field_error(
            "os:scheduler_hints",
            &scheduler_hints,
            "is not of type 'object'",
        ));
    }
    let return_reservation_id = match b.get("return_reservation_id") {
        None => false,
        Some(Value::Bool(r)) => *r,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        Some(v) => {
            return Err(field_error(
                "return_reservation_id",
                v,
                "is not of type 'boolean'",
            ))
        }
    };
    Ok((
        CreateServer {
            name,
            image_ref,
            flavor_ref,
            key_name: opt_string(b, "key_name", 255)?,
            user_data,
            metadata,
            config_drive,
            availability_zone,
            requested_host,
            min_count,
            max_count,
            description,
            tags,
            networks,
            security_groups,
            scheduler_hints,
            access_ipv4: access_ip(b, "accessIPv4", false)?,
            access_ipv6: access_ip(b, "accessIPv6", true)?,
            hostname,
            admin_pass: opt_string(b, "adminPass", 255)?,
        },
        return_reservation_id,
    ))
}

async fn create(AxState(s): AxState<State>, ctx: Ctx, body: JsonBody) -> HttpResult {
    let (req, return_reservation_id) = parse_create(&ctx, &body.0)?;
    let created = s.create_server(&ctx.auth, req, &ctx.request_id).await?;
    if return_reservation_id {
        return reply(
            StatusCode::ACCEPTED,
            json!({"reservation_id": created.reservation_id}),
        );
    }
    let first = created
        .servers
        .first()
        .ok_or_else(|| ComputeError::internal("create returned no server"))?;
    let view = json!({"server": {
        "id": first.uuid,
        "links": ctx.links("servers", &first.uuid),
        "OS-DCF:diskConfig": "MANUAL",
        "security_groups": views::server(&ctx, first, false)["security_groups"].clone(),
        "adminPass": created.admin_pass,
    }});
    let mut resp = (StatusCode::ACCEPTED, axum::Json(view)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{}/v2.1/servers/{}", ctx.base, first.uuid)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

fn parse_time(field: &str, v: &str) -> Result<i64, ComputeError> {
    ferrostack_common::time::parse_iso(v)
        .ok_or_else(|| ComputeError::bad(format!("Invalid filter field: {field}.")))
}

fn regex(field: &str, v: &str) -> Result<regex::Regex, ComputeError> {
    regex::Regex::new(v).map_err(|_| ComputeError::bad(format!("Invalid filter field: {field}.")))
}

fn server_query(s: &State, ctx: &Ctx, q: &Query) -> Result<Option<ServerQuery>, ComputeError> {
    let admin = s.is_admin(&ctx.auth);
    let mut sq = ServerQuery {
        project_id: ctx.auth.project_id().map(str::to_string),
        ..Default::default()
    };
    if let Some(all) = q.get("all_tenants") {
        let all = !matches!(
            all.to_ascii_lowercase().as_str(),
            "0" | "false" | "f" | "off" | "no" | "n"
        );
        if all {
            s.authorize(&ctx.auth, "os_compute_api:servers:index:get_all_tenants")?;
            sq.project_id = None;
        }
    }
    if admin {
        if let Some(p) = q.get("project_id").or_else(|| q.get("tenant_id")) {
            sq.project_id = Some(p.to_string());
        }
        sq.host = q.get("host").map(str::to_string);
        sq.user_id = q.get("user_id").map(str::to_string);
        sq.uuid = q.get("uuid").map(str::to_string);
        sq.availability_zone = q.get("availability_zone").map(str::to_string);
        sq.deleted = q
            .get("deleted")
            .map(|d| matches!(d.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "t"));
    }
    if let Some(n) = q.get("name") {
        sq.name = Some(regex("name", n)?);
    }
    if let Some(st) = q.get("status") {
        match states::vm_states_of_status(st) {
            Some(v) => sq.vm_states = Some(v.iter().map(|s| s.to_string()).collect()),
            // Nova answers an unknown status with an empty list.
            None => return Ok(None),
        }
    }
    if let Some(t) = q.get("changes-since") {
        sq.changes_since = Some(parse_time("changes-since", t)?);
    }
    if let Some(t) = q.get("changes-before").filter(|_| ctx.mv.at_least(66)) {
        sq.changes_before = Some(parse_time("changes-before", t)?);
    }
    if let (Some(a), Some(b)) = (sq.changes_since, sq.changes_before) {
        if a > b {
            return Err(ComputeError::bad(
                "The value of changes-since must be less than or equal to changes-before.",
            ));
        }
    }
    sq.image = q
        .get("image")
        .map(|i| i.rsplit('/').next().unwrap_or(i).to_string());
    sq.flavor = q
        .get("flavor")
        .map(|f| f.rsplit('/').next().unwrap_or(f).to_string());
    sq.reservation_id = q.get("reservation_id").map(str::to_string);
    if let Some(ip) = q.get("ip").or_else(|| q.get("ip6")) {
        sq.ip = Some(regex("ip", ip)?);
    }
    if ctx.mv.at_least(26) {
        let split = |k: &str| {
            q.get(k)
                .map(|v| v.split(',').map(str::to_string).collect())
                .unwrap_or_default()
        };
        sq.tags = split("tags");
        sq.tags_any = split("tags-any");
        sq.not_tags = split("not-tags");
        sq.not_tags_any = split("not-tags-any");
    }
    if let Some(l) = q.get("locked").filter(|_| ctx.mv.at_least(73)) {
        sq.locked = Some(match l.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "t" => true,
            "false" | "0" | "no" | "f" => false,
            _ => return Err(ComputeError::bad(format!("Unrecognized value '{l}', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"))),
        });
    }
    let keys = q.all("sort_key");
    let dirs = q.all("sort_dir");
    for (i, k) in keys.iter().enumerate() {
        let desc = match dirs.get(i).copied().unwrap_or("desc") {
            "asc" => false,
            "desc" => true,
            d => {
                return Err(ComputeError::bad(format!(
                    "Invalid input for query parameters sort_dir. Value: {d}."
                )))
            }
        };
        sq.sort.push((k.to_string(), desc));
    }
    sq.limit = q.limit()?;
    sq.marker = q.get("marker").map(str::to_string);
    Ok(Some(sq))
}

fn next_link(
    ctx: &Ctx,
    collection: &str,
    list: &[Instance],
    limit: Option<usize>,
) -> Option<Value> {
    let limit = limit?;
    let last = list.last()?;
    (list.len() == limit).then(|| {
        json!([{"rel": "next", "href": format!("{}/v2.1/{collection}?limit={limit}&marker={}", ctx.base, last.uuid)}])
    })
}

async fn list(AxState(s): AxState<State>, ctx: Ctx, q: Query) -> HttpResult {
    s.authorize(&ctx.auth, "os_compute_api:servers:index")?;
    let Some(sq) = server_query(&s, &ctx, &q)? else {
        return reply(StatusCode::OK, json!({"servers": []}));
    };
    let list = s.list_servers(&sq).await?;
    let mut body =
        json!({"servers": list.iter().map(|i| views::server_brief(&ctx, i)).collect::<Vec<_>>()});
    if let Some(l) = next_link(&ctx, "servers", &list, sq.limit) {
        body["servers_links"] = l;
    }
    reply(StatusCode::OK, body)
}

async fn detail(AxState(s): AxState<State>, ctx: Ctx, q: Query) -> HttpResult {
    s.authorize(&ctx.auth, "os_compute_api:servers:detail")?;
    let Some(sq) = server_query(&s, &ctx, &q)? else {
        return reply(StatusCode::OK, json!({"servers": []}));
    };
    let list = s.list_servers(&sq).await?;
    let admin = s.allowed(
        &ctx.auth,
        "os_compute_api:os-extended-server-attributes",
        "",
        "",
    );
    let groups = s.security_group_names(&ctx.auth, &list).await;
    let views: Vec<Value> = list
        .iter()
        .map(|i| {
            let mut v = views::server(&ctx, i, admin);
            if let Some(names) = groups.get(&i.uuid) {
                v["security_groups"] = views::group_names(names);
            }
            v
        })
        .collect();
    let mut body = json!({ "servers": views });
    if let Some(l) = next_link(&ctx, "servers/detail", &list, sq.limit) {
        body["servers_links"] = l;
    }
    reply(StatusCode::OK, body)
}

async fn show(AxState(s): AxState<State>, ctx: Ctx, Path(id): Path<String>) -> HttpResult {
    let inst = s
        .get_server(&ctx.auth, &id, "os_compute_api:servers:show")
        .await?;
    reply(
        StatusCode::OK,
        json!({"server": server_view(&s, &ctx, &inst).await?}),
    )
}

/// One server as show, update and rebuild answer: from 2.71 with `server_groups`, the
/// groups it is in (Nova leaves them out of the detail list, where they would cost a query
/// per server).
pub(super) async fn server_view(
    s: &State,
    ctx: &Ctx,
    inst: &Instance,
) -> Result<Value, ComputeError> {
    server_answer(s, ctx, inst, views::ServerAnswer::Show).await
}

/// The server as `answer` shows it (see [`views::answer_view`]).
pub(super) async fn server_answer(
    s: &State,
    ctx: &Ctx,
    inst: &Instance,
    answer: views::ServerAnswer,
) -> Result<Value, ComputeError> {
    let admin = s.allowed(
        &ctx.auth,
        "os_compute_api:os-extended-server-attributes",
        &inst.project_id,
        &inst.user_id,
    );
    let mut view = views::server(ctx, inst, admin);
    let groups = s
        .security_group_names(&ctx.auth, std::slice::from_ref(inst))
        .await;
    if let Some(names) = groups.get(&inst.uuid) {
        view["security_groups"] = views::group_names(names);
    }
    if ctx.mv.at_least(71) {
        view["server_groups"] = json!(s.groups_of_server(&inst.uuid).await?);
    }
    Ok(views::answer_view(
        ctx.mv,
        view,
        answer,
        inst.user_data.as_deref(),
    ))
}

async fn update(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: JsonBody,
) -> HttpResult {
    let b = body.object("server")?;
    for (k, v) in b {
        let allowed = match k.as_str() {
            "name" => v
                .as_str()
                .is_some_and(|n| !n.trim().is_empty() && n.chars().count() <= 255),
            "description" => {
                ctx.mv.at_least(19)
                    && (v.is_null() || v.as_str().is_some_and(|d| d.chars().count() <= 255))
            }
            "hostname" => ctx.mv.at_least(90) && v.as_str().is_some(),
            "accessIPv4" | "accessIPv6" => v.as_str().is_some() || v.is_null(),
            "OS-DCF:diskConfig" => true,
            _ => false,
        };
        if !allowed {
            return Err(field_error(k, v, "is not valid for a server update"));
        }
    }
    let mut b = b.clone();
    for (field, v6) in [("accessIPv4", false), ("accessIPv6", true)] {
        if b.contains_key(field) {
            b.insert(field.to_string(), json!(access_ip(&b, field, v6)?));
        }
    }
    let inst = s.update_server(&ctx.auth, &id, &b).await?;
    reply(
        StatusCode::OK,
        json!({"server": server_answer(&s, &ctx, &inst, views::ServerAnswer::Update).await?}),
    )
}

async fn delete(AxState(s): AxState<State>, ctx: Ctx, Path(id): Path<String>) -> HttpResult {
    s.delete_server(&ctx.auth, &id, &ctx.request_id).await?;
    no_content()
}

async fn action(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: JsonBody,
) -> HttpResult {
    let obj = body
        .0
        .as_object()
        .ok_or_else(|| ComputeError::bad("Malformed request body"))?;
    let Some((name, args)) = obj.iter().next() else {
        return Err(ComputeError::bad("Malformed request body"));
    };
    let run = |action: Action, rule: &'static str| {
        let s = s.clone();
        let id = id.clone();
        let auth = ctx.auth.clone();
        let rid = ctx.request_id.clone();
        async move { s.server_action(&auth, &id, action, rule, &rid).await }
    };
    match name.as_str() {
        "os-start" => run(Action::Start, "os_compute_api:servers:start").await?,
        "os-stop" => run(Action::Stop, "os_compute_api:servers:stop").await?,
        "reboot" => {
            let kind = args.get("type").and_then(Value::as_str).unwrap_or("");
            let action = match kind.to_ascii_uppercase().as_str() {
                "SOFT" => Action::RebootSoft,
                "HARD" => Action::RebootHard,
                _ => {
                    return Err(field_error(
                        "type",
                        args.get("type").unwrap_or(&Value::Null),
                        "'SOFT' or 'HARD' expected",
                    ))
                }
            };
            run(action, "os_compute_api:servers:reboot").await?
        }
        "pause" => run(Action::Pause, "os_compute_api:os-pause-server:pause").await?,
        "unpause" => run(Action::Unpause, "os_compute_api:os-pause-server:unpause").await?,
        "suspend" => run(Action::Suspend, "os_compute_api:os-suspend-server:suspend").await?,
        "resume" => run(Action::Resume, "os_compute_api:os-suspend-server:resume").await?,
        "lock" => {
            let reason = if ctx.mv.at_least(73) {
                args.get("locked_reason")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            } else {
                None
            };
            s.lock_server(&ctx.auth, &id, true, reason).await?
        }
        "unlock" => s.lock_server(&ctx.auth, &id, false, None).await?,
        "forceDelete" => {
            s.delete_server(&ctx.auth, &id, &ctx.request_id).await?;
        }
        "createImage" => return super::server_actions::create_image(&s, &ctx, &id, args).await,
        "shelve" => s.shelve_server(&ctx.auth, &id, &ctx.request_id).await?,
        "rescue" => return super::server_actions::rescue(&s, &ctx, &id, args).await,
        "unrescue" => s.unrescue_server(&ctx.auth, &id, &ctx.request_id).await?,
        "resize" => {
            let flavor = super::server_actions::resize_flavor(args)?;
            s.resize_server(&ctx.auth, &id, &flavor, &ctx.request_id)
                .await?
        }
        "confirmResize" => {
            s.finish_resize(&ctx.auth, &id, false, &ctx.request_id)
                .await?;
            return super::no_content();
        }
        "revertResize" => {
            s.finish_resize(&ctx.auth, &id, true, &ctx.request_id)
                .await?
        }
        "shelveOffload" => {
            // Shelved servers are offloaded at once (Nova's shelved_offload_time 0), so no
            // server waits in SHELVED; the state check answers Nova's 409.
            let inst = s
                .get_server(&ctx.auth, &id, "os_compute_api:os-shelve:shelve_offload")
                .await?;
            s.check_state(&inst, Action::ShelveOffload)?;
        }
        "unshelve" => {
            let zone = super::server_actions::unshelve_zone(&ctx, args)?;
            s.unshelve_server(&ctx.auth, &id, zone, &ctx.request_id)
                .await?
        }
        "rebuild" => return super::server_actions::rebuild(&s, &ctx, &id, args).await,
        "addSecurityGroup" | "removeSecurityGroup" => {
            return super::security_groups::action(&s, &ctx, &id, name, args).await
        }
        "os-getSerialConsole" => {
            return super::consoles::serial_console_action(&s, &ctx, &id, args).await
        }
        "os-getConsoleOutput" => {
            let length = match args.get("length") {
                None | Some(Value::Null) => None,
                Some(v) => {
                    let n = v
                        .as_i64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()));
                    match n {
                        Some(-1) => None,
                        Some(n) if n >= 0 => Some(n as usize),
                        _ => return Err(field_error("length", v, "must be an integer >= -1")),
                    }
                }
            };
            let output = s.console_output(&ctx.auth, &id, length).await?;
            return reply(StatusCode::OK, json!({"output": output}));
        }
        other => {
            return Err(ComputeError::bad(format!(
                "There is no such action: {other}"
            )));
        }
    }
    accepted()
}

/// Validates the NICs of `networks` (`[{uuid, port, fixed_ip, tag}]`) as Nova's schema does,
/// keeping each as given.
fn nic_requests(
    list: &[Value],
    mv: crate::microversion::Microversion,
) -> Result<Vec<Value>, ComputeError> {
    let mut ports = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for nic in list {
        let Some(obj) = nic.as_object() else {
            return Err(field_error("networks", nic, "is not of type 'object'"));
        };
        for key in obj.keys() {
            // Tags came in 2.32, left with 2.37's schema and came back in 2.42.
            let known = matches!(key.as_str(), "uuid" | "port" | "fixed_ip")
                || (key == "tag" && ((mv.at_least(32) && !mv.at_least(37)) || mv.at_least(42)));
            if !known {
                return Err(ComputeError::bad(format!(
                    "Invalid input for field/attribute networks. Value: {nic}. Additional properties are not allowed ('{key}' was unexpected)"
                )));
            }
        }
        let text = |k: &str| -> Result<Option<String>, ComputeError> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err(field_error(
                    &format!("networks/{k}"),
                    v,
                    "is not of type 'string'",
                )),
            }
        };
        let (uuid, port, fixed_ip) = (text("uuid")?, text("port")?, text("fixed_ip")?);
        for (k, v) in [("uuid", &uuid), ("port", &port)] {
            if let Some(v) = v {
                if uuid::Uuid::parse_str(v).is_err() {
                    return Err(ComputeError::bad(format!(
                        "Invalid input for field/attribute {k}. Value: {v}. '{v}' is not a 'uuid'"
                    )));
                }
            }
        }
        if let Some(ip) = &fixed_ip {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(ComputeError::bad(format!(
                    "Invalid input for field/attribute fixed_ip. Value: {ip}. '{ip}' is not a 'ipv4'"
                )));
            }
        }
        match (&uuid, &port) {
            (None, None) => {
                return Err(ComputeError::bad(
                    "Bad networks format: network uuid is not in proper format (None)",
                ))
            }
            (_, Some(p)) if !ports.insert(p.clone()) => {
                return Err(ComputeError::bad(format!(
                    "Duplicate port {p} in the networks request."
                )))
            }
            _ => {}
        }
        out.push(nic.clone());
    }
    Ok(out)
}
