//! `/images` and `/images/{id}/metadata`: Nova's deprecated proxy to the Image service. The
//! image calls exist up to 2.35 and the metadata calls up to 2.38 (later versions answer
//! 404, as Nova). Images are shown in Nova's view: upper-case status, `minRam`/`minDisk`,
//! `progress`, the extra properties as `metadata`, the size, a `server` link for snapshots,
//! and an `alternate` link to the image in the Image API.

use std::collections::BTreeMap;

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use ferrostack_image::model::Image;
use serde_json::{json, Map, Value};

use super::{no_content, params, reply, views, Ctx, HttpResult, JsonBody, Query, State};
use crate::error::ComputeError;
use crate::service::image_proxy::{ImageQuery, MetadataWrite};

/// The last microversions with the image proxy and with its metadata calls.
const LAST_IMAGES: u16 = 35;
const LAST_IMAGE_METADATA: u16 = 38;

pub fn api() -> Api<State> {
    Api::new()
        .get(
            "/v2.1/images",
            op("list_images", "List images (proxy, up to 2.35)"),
            list,
        )
        .get(
            "/v2.1/images/detail",
            op(
                "list_images_detail",
                "List images with details (proxy, up to 2.35)",
            ),
            detail,
        )
        .get(
            "/v2.1/images/{id}",
            op("show_image", "Show an image (proxy, up to 2.35)"),
            show,
        )
        .delete(
            "/v2.1/images/{id}",
            op("delete_image", "Delete an image (proxy, up to 2.35)").status(204),
            delete,
        )
        .get(
            "/v2.1/images/{id}/metadata",
            op(
                "list_image_metadata",
                "List an image's metadata (proxy, up to 2.38)",
            ),
            metadata,
        )
        .post(
            "/v2.1/images/{id}/metadata",
            op(
                "update_image_metadata",
                "Add or change image metadata (proxy, up to 2.38)",
            ),
            post_metadata,
        )
        .put(
            "/v2.1/images/{id}/metadata",
            op(
                "replace_image_metadata",
                "Replace image metadata (proxy, up to 2.38)",
            ),
            put_metadata,
        )
        .get(
            "/v2.1/images/{id}/metadata/{key}",
            op(
                "show_image_metadata_item",
                "Show an image metadata item (proxy, up to 2.38)",
            ),
            metadata_item,
        )
        .put(
            "/v2.1/images/{id}/metadata/{key}",
            op(
                "set_image_metadata_item",
                "Set an image metadata item (proxy, up to 2.38)",
            ),
            put_metadata_item,
        )
        .delete(
            "/v2.1/images/{id}/metadata/{key}",
            op(
                "delete_image_metadata_item",
                "Delete an image metadata item (proxy, up to 2.38)",
            )
            .status(204),
            delete_metadata_item,
        )
}

/// Proxy calls newer versions removed do not exist for them.
fn until(ctx: &Ctx, last: u16) -> Result<(), ComputeError> {
    if ctx.mv.0 > last {
        Err(ComputeError::not_found("The resource could not be found."))
    } else {
        Ok(())
    }
}

/// Nova's image status for a Glance status.
pub fn status(glance: &str) -> &'static str {
    match glance {
        "active" => "ACTIVE",
        "queued" | "saving" => "SAVING",
        "deleted" | "pending_delete" => "DELETED",
        "killed" => "ERROR",
        _ => "UNKNOWN",
    }
}

fn progress(glance: &str) -> i64 {
    match glance {
        "queued" => 25,
        "saving" => 50,
        "active" => 100,
        _ => 0,
    }
}

fn links(ctx: &Ctx, id: &str) -> Value {
    // The Image API is mounted beside the Compute API (`/image` next to `/compute`).
    let root = ctx.base.strip_suffix("/compute").unwrap_or(&ctx.base);
    let mut l = ctx.links("images", id);
    if let Some(list) = l.as_array_mut() {
        list.push(json!({
            "rel": "alternate",
            "type": "application/vnd.openstack.image",
            "href": format!("{root}/image/images/{id}"),
        }));
    }
    l
}

fn brief(ctx: &Ctx, i: &Image) -> Value {
    json!({"id": i.id, "name": i.name, "links": links(ctx, &i.id)})
}

fn bool_text(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "1" | "t" | "true" | "on" | "y" | "yes"
    )
}

pub fn view(ctx: &Ctx, i: &Image) -> Value {
    let mut v = json!({
        "id": i.id,
        "name": i.name,
        "minRam": i.min_ram,
        "minDisk": i.min_disk,
        "metadata": i.properties,
        "created": views::time(i.created_at),
        "updated": views::time(i.updated_at),
        "status": status(&i.status),
        "progress": progress(&i.status),
        // Nova reads a size Glance does not know yet as 0.
        "OS-EXT-IMG-SIZE:size": i.size.unwrap_or(0),
        "links": links(ctx, &i.id),
    });
    if let Some(server) = i.properties.get("instance_uuid").and_then(Value::as_str) {
        v["server"] = json!({"id": server, "links": ctx.links("servers", server)});
    }
    if let Some(auto) = i.properties.get("auto_disk_config").and_then(Value::as_str) {
        v["OS-DCF:diskConfig"] = json!(if bool_text(auto) { "AUTO" } else { "MANUAL" });
    }
    v
}

/// Nova's list filters in Glance's terms.
fn image_query(q: &Query) -> Result<ImageQuery, ComputeError> {
    let mut iq = ImageQuery {
        limit: params::count(q, "limit")?,
        marker: q.get("marker").map(str::to_string),
        ..Default::default()
    };
    for (k, v) in &q.0 {
        let filter = match k.as_str() {
            "name" => ("name".to_string(), v.clone()),
            "status" => ("status".to_string(), v.to_ascii_lowercase()),
            "server" => (
                "instance_uuid".to_string(),
                v.rsplit('/').next().unwrap_or(v).to_string(),
            ),
            "type" => ("image_type".to_string(), v.clone()),
            "minRam" => ("min_ram".to_string(), v.clone()),
            "minDisk" => ("min_disk".to_string(), v.clone()),
            "changes-since" => {
                let t = ferrostack_common::time::parse_iso(v)
                    .ok_or_else(|| ComputeError::bad("Invalid filter field: changes-since."))?;
                iq.changes_since = Some(t);
                continue;
            }
            other => match other.strip_prefix("property-") {
                Some(p) if !p.is_empty() => (p.to_string(), v.clone()),
                _ => continue,
            },
        };
        iq.filters.retain(|(name, _)| name != &filter.0);
        iq.filters.push(filter);
    }
    Ok(iq)
}

async fn listing(s: &State, ctx: &Ctx, q: &Query) -> Result<(Vec<Image>, usize), ComputeError> {
    until(ctx, LAST_IMAGES)?;
    let iq = image_query(q)?;
    let size = params::page_size(iq.limit, params::MAX_LIMIT);
    Ok((s.proxy_images(&ctx.auth, &iq).await?, size))
}

fn list_body(
    ctx: &Ctx,
    q: &Query,
    collection: &str,
    list: Vec<Value>,
    size: usize,
    last: Option<&str>,
) -> Value {
    let mut body = json!({ "images": list });
    let shown = body["images"].as_array().map_or(0, Vec::len);
    if let Some(l) = params::next_link(ctx, collection, q, shown, size, last) {
        body["images_links"] = l;
    }
    body
}

async fn list(AxState(s): AxState<State>, ctx: Ctx, q: Query) -> HttpResult {
    let (images, size) = listing(&s, &ctx, &q).await?;
    let rows = images.iter().map(|i| brief(&ctx, i)).collect();
    let last = images.last().map(|i| i.id.as_str());
    reply(
        StatusCode::OK,
        list_body(&ctx, &q, "images", rows, size, last),
    )
}

async fn detail(AxState(s): AxState<State>, ctx: Ctx, q: Query) -> HttpResult {
    let (images, size) = listing(&s, &ctx, &q).await?;
    let rows = images.iter().map(|i| view(&ctx, i)).collect();
    let last = images.last().map(|i| i.id.as_str());
    reply(
        StatusCode::OK,
        list_body(&ctx, &q, "images/detail", rows, size, last),
    )
}

async fn show(AxState(s): AxState<State>, ctx: Ctx, Path(id): Path<String>) -> HttpResult {
    until(&ctx, LAST_IMAGES)?;
    let image = s.proxy_image(&ctx.auth, &id).await?;
    reply(StatusCode::OK, json!({"image": view(&ctx, &image)}))
}

async fn delete(AxState(s): AxState<State>, ctx: Ctx, Path(id): Path<String>) -> HttpResult {
    until(&ctx, LAST_IMAGES)?;
    s.proxy_delete_image(&ctx.auth, &id).await?;
    no_content()
}

fn invalid(field: &str, value: &Value, why: &str) -> ComputeError {
    ComputeError::bad(format!(
        "Invalid input for field/attribute {field}. Value: {value}. {why}"
    ))
}

fn valid_key(k: &str) -> bool {
    let n = k.chars().count();
    (1..=255).contains(&n)
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | ' '))
}

/// A `{"metadata": {...}}` (or `{"meta": {...}}`) body as Nova's metadata schema allows it:
/// keys of `[a-zA-Z0-9-_:. ]{1,255}`, string values of at most 255 characters.
fn items(body: &Value, key: &str) -> Result<BTreeMap<String, String>, ComputeError> {
    let top = body
        .as_object()
        .ok_or_else(|| ComputeError::bad("Malformed request body"))?;
    if let Some(k) = top.keys().find(|k| *k != key) {
        return Err(ComputeError::bad(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let obj: &Map<String, Value> = top
        .get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| invalid(key, body, &format!("'{key}' is a required property")))?;
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        if !valid_key(k) {
            return Err(invalid(
                key,
                &Value::Object(obj.clone()),
                &format!("'{k}' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{{1,255}}$'"),
            ));
        }
        match v.as_str() {
            Some(text) if text.chars().count() <= 255 => {
                out.insert(k.clone(), text.to_string());
            }
            Some(_) => return Err(invalid(k, v, &format!("{v} is too long"))),
            None => return Err(invalid(k, v, &format!("{v} is not of type 'string'"))),
        }
    }
    Ok(out)
}

async fn metadata(AxState(s): AxState<State>, ctx: Ctx, Path(id): Path<String>) -> HttpResult {
    until(&ctx, LAST_IMAGE_METADATA)?;
    let image = s.proxy_image(&ctx.auth, &id).await?;
    reply(StatusCode::OK, json!({"metadata": image.properties}))
}

async fn post_metadata(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: JsonBody,
) -> HttpResult {
    until(&ctx, LAST_IMAGE_METADATA)?;
    let new = items(&body.0, "metadata")?;
    let all = s
        .proxy_set_image_metadata(&ctx.auth, &id, &new, MetadataWrite::Merge)
        .await?;
    reply(StatusCode::OK, json!({"metadata": all}))
}

async fn put_metadata(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: JsonBody,
) -> HttpResult {
    until(&ctx, LAST_IMAGE_METADATA)?;
    let new = items(&body.0, "metadata")?;
    s.proxy_set_image_metadata(&ctx.auth, &id, &new, MetadataWrite::Replace)
        .await?;
    reply(StatusCode::OK, json!({"metadata": new}))
}

async fn metadata_item(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> HttpResult {
    until(&ctx, LAST_IMAGE_METADATA)?;
    let image = s.proxy_image(&ctx.auth, &id).await?;
    let value = image
        .properties
        .get(&key)
        .ok_or_else(|| ComputeError::not_found("The resource could not be found."))?;
    reply(StatusCode::OK, json!({"meta": { key: value }}))
}

async fn put_metadata_item(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
    body: JsonBody,
) -> HttpResult {
    until(&ctx, LAST_IMAGE_METADATA)?;
    let item = items(&body.0, "meta")?;
    if item.len() != 1 {
        let why = if item.is_empty() {
            "does not have enough properties"
        } else {
            "has too many properties"
        };
        return Err(invalid(
            "meta",
            &body.0["meta"],
            &format!("{} {why}", body.0["meta"]),
        ));
    }
    if !item.contains_key(&key) {
        return Err(ComputeError::bad("Request body and URI mismatch"));
    }
    s.proxy_set_image_metadata(&ctx.auth, &id, &item, MetadataWrite::Merge)
        .await?;
    reply(StatusCode::OK, json!({"meta": item}))
}

async fn delete_metadata_item(
    AxState(s): AxState<State>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> HttpResult {
    until(&ctx, LAST_IMAGE_METADATA)?;
    s.proxy_delete_image_metadata(&ctx.auth, &id, &key).await?;
    no_content()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glance_states_in_novas_words() {
        assert_eq!(status("active"), "ACTIVE");
        assert_eq!(status("queued"), "SAVING");
        assert_eq!(status("pending_delete"), "DELETED");
        assert_eq!(status("killed"), "ERROR");
        assert_eq!(status("deactivated"), "UNKNOWN");
        assert_eq!((progress("queued"), progress("active")), (25, 100));
    }

    #[test]
    fn filters_map_onto_glance() {
        let q = Query(
            [
                ("server", "http://x/servers/abc"),
                ("status", "ACTIVE"),
                ("property-os_distro", "debian"),
                ("minRam", "512"),
                ("limit", "2"),
                ("bogus", "1"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        let iq = image_query(&q).unwrap();
        assert_eq!(
            iq.filters,
            [
                ("instance_uuid".to_string(), "abc".to_string()),
                ("status".into(), "active".into()),
                ("os_distro".into(), "debian".into()),
                ("min_ram".into(), "512".into()),
            ]
        );
        assert_eq!(iq.limit, Some(2));
    }

    #[test]
    fn metadata_keys_and_values_are_checked() {
        assert!(items(&json!({"metadata": {"a b:c.d-e_f": "v"}}), "metadata").is_ok());
        assert!(items(&json!({"metadata": {"a/b": "v"}}), "metadata").is_err());
        assert!(items(&json!({"metadata": {"k": 1}}), "metadata").is_err());
        assert!(items(&json!({"metadata": {"k": "x".repeat(256)}}), "metadata").is_err());
        assert!(items(&json!({"metadata": {}, "x": 1}), "metadata").is_err());
        assert!(items(&json!({"meta": {}}), "metadata").is_err());
    }
}
