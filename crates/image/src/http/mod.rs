//! The Image API v2 over HTTP, mounted under `/image`. Handlers extract, call one service
//! method and render; the service authorizes. Uploads and downloads stream: an image never
//! sits in memory.

pub mod metadefs;
pub mod schemas;
pub mod views;

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Request, State as AxState};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use ferrostack_common::api::{op, Api};
use ferrostack_common::http::RequestId;
use ferrostack_common::AuthContext;
use serde_json::{json, Value};

use crate::error::ImageError;
use crate::service::{ImageService, PatchOp};

pub type State = Arc<ImageService>;
type HttpResult = Result<Response, ImageError>;

/// Glance 2026.1 (Gazpacho) speaks Image API v2.17.
pub const API_VERSION: &str = "v2.17";

/// The authenticated caller, from `X-Auth-Token`.
pub struct Caller(pub Arc<AuthContext>);

impl FromRequestParts<State> for Caller {
    type Rejection = ImageError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .ok_or(ImageError::Unauthorized)?;
        state
            .auth
            .authenticate(token)
            .await
            .map(Caller)
            .ok_or(ImageError::Unauthorized)
    }
}

/// Query pairs in order (Glance repeats `tag=`).
pub struct Query(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ImageError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Query(
            form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        ))
    }
}

/// A small JSON body (metadata, never image data).
async fn json_body(req: Request) -> Result<Value, ImageError> {
    let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|_| ImageError::TooLarge("The request body is too large.".into()))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ImageError::bad(format!("The request body is not valid JSON: {e}.")))
}

fn reply(status: StatusCode, body: Value) -> HttpResult {
    Ok((status, axum::Json(body)).into_response())
}

pub fn api() -> Api<State> {
    Api::new()
        .get(
            "/",
            op("list_versions", "List Image API versions")
                .status(300)
                .public(),
            versions,
        )
        .get(
            "/versions",
            op("list_versions_alias", "List Image API versions").public(),
            versions_ok,
        )
        .get(
            "/v2",
            op("list_versions_v2", "List Image API versions")
                .status(300)
                .public(),
            versions,
        )
        .get("/v2/images", op("list_images", "List images"), list_images)
        .post(
            "/v2/images",
            op("create_image", "Create an image record").status(201),
            create_image,
        )
        .get(
            "/v2/images/{id}",
            op("show_image", "Show an image"),
            show_image,
        )
        .patch(
            "/v2/images/{id}",
            op("update_image", "Update an image with a JSON patch"),
            update_image,
        )
        .delete(
            "/v2/images/{id}",
            op("delete_image", "Delete an image").status(204),
            delete_image,
        )
        .put(
            "/v2/images/{id}/file",
            op("upload_image", "Upload image data (streamed)").status(204),
            upload,
        )
        .get(
            "/v2/images/{id}/file",
            op("download_image", "Download image data (streamed)"),
            download,
        )
        .put(
            "/v2/images/{id}/stage",
            op("stage_image", "Stage image data for an import").status(204),
            stage,
        )
        .post(
            "/v2/images/{id}/import",
            op("import_image", "Import staged data (glance-direct)").status(202),
            import,
        )
        .get(
            "/v2/images/{id}/tasks",
            op("list_image_tasks", "The tasks of an image (its imports)"),
            image_tasks,
        )
        .get(
            "/v2/tasks",
            op("list_tasks", "List tasks (administrators)"),
            list_tasks,
        )
        .post(
            "/v2/tasks",
            op(
                "create_task",
                "Create a task (URL import tasks are refused)",
            )
            .status(201),
            create_task,
        )
        .get(
            "/v2/tasks/{id}",
            op("show_task", "Show a task (administrators)"),
            show_task,
        )
        .put(
            "/v2/images/{id}/tags/{tag}",
            op("add_image_tag", "Add a tag").status(204),
            add_tag,
        )
        .delete(
            "/v2/images/{id}/tags/{tag}",
            op("delete_image_tag", "Remove a tag").status(204),
            delete_tag,
        )
        .post(
            "/v2/images/{id}/actions/deactivate",
            op("deactivate_image", "Deactivate an image").status(204),
            deactivate,
        )
        .post(
            "/v2/images/{id}/actions/reactivate",
            op("reactivate_image", "Reactivate an image").status(204),
            reactivate,
        )
        .get(
            "/v2/images/{id}/members",
            op("list_image_members", "List an image's members"),
            list_members,
        )
        .post(
            "/v2/images/{id}/members",
            op("create_image_member", "Share an image with a project"),
            add_member,
        )
        .get(
            "/v2/images/{id}/members/{member}",
            op("show_image_member", "Show an image member"),
            show_member,
        )
        .put(
            "/v2/images/{id}/members/{member}",
            op("update_image_member", "Accept or reject a shared image"),
            update_member,
        )
        .delete(
            "/v2/images/{id}/members/{member}",
            op("delete_image_member", "Stop sharing an image").status(204),
            delete_member,
        )
        .get(
            "/v2/schemas/image",
            op("show_image_schema", "Image schema"),
            |AxState(s): AxState<State>| async move { axum::Json(schemas::image(&s.config)) },
        )
        .get(
            "/v2/schemas/images",
            op("show_images_schema", "Image list schema"),
            |AxState(s): AxState<State>| async move { axum::Json(schemas::images(&s.config)) },
        )
        .get(
            "/v2/schemas/member",
            op("show_member_schema", "Member schema"),
            || async { axum::Json(schemas::member()) },
        )
        .get(
            "/v2/schemas/members",
            op("show_members_schema", "Member list schema"),
            || async { axum::Json(schemas::members()) },
        )
        .get(
            "/v2/info/import",
            op("import_info", "Import methods"),
            import_info,
        )
        .get("/v2/info/stores", op("stores_info", "Stores"), stores_info)
        .merge(metadefs::routes())
}

pub fn router(service: State) -> Router {
    let (routes, _) = api().into_parts();
    let doc = openapi();
    routes
        .route(
            "/openapi.json",
            axum::routing::get(move || async move { axum::Json(doc) }),
        )
        .fallback(|| async {
            ImageError::NotFound("The resource could not be found.".into()).into_response()
        })
        .with_state(service)
}

pub fn openapi() -> Value {
    api().openapi(
        "ferrostack Image API (Glance v2 compatible)",
        API_VERSION,
        "/image",
    )
}

fn versions_body(base: &str) -> Value {
    let mut values = Vec::new();
    for (id, status) in [
        ("v2.17", "CURRENT"),
        ("v2.16", "SUPPORTED"),
        ("v2.15", "SUPPORTED"),
        ("v2.12", "SUPPORTED"),
        ("v2.9", "SUPPORTED"),
        ("v2.7", "SUPPORTED"),
        ("v2.6", "SUPPORTED"),
        ("v2.5", "SUPPORTED"),
        ("v2.4", "SUPPORTED"),
        ("v2.3", "SUPPORTED"),
        ("v2.2", "SUPPORTED"),
        ("v2.1", "SUPPORTED"),
        ("v2.0", "SUPPORTED"),
    ] {
        values.push(json!({"id": id, "status": status, "links": [{"rel": "self", "href": format!("{base}/v2/")}]}));
    }
    json!({"versions": values})
}

/// The base URL clients used to reach us (for version links), from the Host header.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("http");
    format!("{proto}://{host}/image")
}

async fn versions(headers: HeaderMap) -> Response {
    (
        StatusCode::MULTIPLE_CHOICES,
        axum::Json(versions_body(&base_url(&headers))),
    )
        .into_response()
}

async fn versions_ok(headers: HeaderMap) -> Response {
    axum::Json(versions_body(&base_url(&headers))).into_response()
}

async fn list_images(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Query(q): Query,
) -> HttpResult {
    let (images, more) = s.list(&ctx, &q).await?;
    let mut body = json!({
        "images": images.iter().map(views::image).collect::<Vec<_>>(),
        "schema": "/v2/schemas/images",
        "first": "/v2/images",
    });
    if more {
        if let Some(last) = images.last() {
            let rest: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(q.iter().filter(|(k, _)| k != "marker"))
                .append_pair("marker", &last.id)
                .finish();
            body["next"] = json!(format!("/v2/images?{rest}"));
        }
    }
    reply(StatusCode::OK, body)
}

async fn create_image(AxState(s): AxState<State>, Caller(ctx): Caller, req: Request) -> HttpResult {
    let body = json_body(req).await?;
    let image = s.create(&ctx, &body).await?;
    let mut resp = (StatusCode::CREATED, axum::Json(views::image(&image))).into_response();
    if let Ok(v) = format!("/v2/images/{}", image.id).parse() {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

async fn show_image(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> HttpResult {
    reply(
        StatusCode::OK,
        views::image(&s.visible_image(&ctx, &id).await?),
    )
}

async fn update_image(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    req: Request,
) -> HttpResult {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !content_type.starts_with("application/openstack-images-v2.1-json-patch")
        && !content_type.starts_with("application/openstack-images-v2.0-json-patch")
        && !content_type.starts_with("application/json")
    {
        return Err(ImageError::UnsupportedMediaType(format!("Unsupported Content-Type {content_type:?}: use application/openstack-images-v2.1-json-patch.")));
    }
    let ops = PatchOp::parse_all(&json_body(req).await?)?;
    reply(
        StatusCode::OK,
        views::image(&s.patch(&ctx, &id, &ops).await?),
    )
}

async fn delete_image(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> HttpResult {
    s.delete(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn upload(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    req: Request,
) -> HttpResult {
    s.upload(&ctx, &id, req.into_body()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn download(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let Some((image, file)) = s.open_data(&ctx, &id).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let mut resp = Response::new(crate::service::data::file_body(file.into_std().await));
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        "application/octet-stream".parse().expect("static header"),
    );
    if let Some(size) = image.size {
        headers.insert(header::CONTENT_LENGTH, size.into());
    }
    if let Some(md5) = image.checksum.as_deref().and_then(|c| c.parse().ok()) {
        headers.insert("content-md5", md5);
    }
    Ok(resp)
}

async fn stage(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    req: Request,
) -> HttpResult {
    s.stage(&ctx, &id, req.into_body()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn import(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    req: Request,
) -> HttpResult {
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let body = json_body(req).await?;
    s.import(&ctx, &id, &body, request_id.as_deref()).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn image_tasks(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let tasks = s.image_tasks(&ctx, &id).await?;
    reply(
        StatusCode::OK,
        json!({"tasks": tasks.iter().map(views::image_task).collect::<Vec<_>>()}),
    )
}

async fn list_tasks(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Query(q): Query,
) -> HttpResult {
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let limit = match get("limit") {
        None => s.config.limit_param_default,
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ImageError::bad("limit param must be an integer"))?,
    }
    .min(s.config.api_limit_max);
    let mut tasks = s.list_tasks(&ctx, get("type"), get("status")).await?;
    if let Some(marker) = get("marker") {
        let at = tasks
            .iter()
            .position(|t| t.id == marker)
            .ok_or_else(|| ImageError::bad(format!("Task with identifier {marker} not found")))?;
        tasks.drain(..=at);
    }
    let more = tasks.len() > limit;
    tasks.truncate(limit);
    let mut body = json!({
        "tasks": tasks.iter().map(views::task_summary).collect::<Vec<_>>(),
        "schema": "/v2/schemas/tasks",
        "first": "/v2/tasks",
    });
    if let (true, Some(last)) = (more, tasks.last()) {
        let rest: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(q.iter().filter(|(k, _)| k != "marker"))
            .append_pair("marker", &last.id)
            .finish();
        body["next"] = json!(format!("/v2/tasks?{rest}"));
    }
    reply(StatusCode::OK, body)
}

async fn show_task(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> HttpResult {
    reply(StatusCode::OK, views::task(&s.get_task(&ctx, &id).await?))
}

async fn create_task(AxState(s): AxState<State>, Caller(ctx): Caller, req: Request) -> HttpResult {
    let body = json_body(req).await?;
    // Import tasks are always refused (server-side request forgery); nothing is created.
    match s.create_task(&ctx, &body).await? {}
}

async fn add_tag(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path((id, tag)): Path<(String, String)>,
) -> HttpResult {
    if tag.chars().count() > 255 {
        return Err(ImageError::bad("Tags are at most 255 characters."));
    }
    s.add_tag(&ctx, &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_tag(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path((id, tag)): Path<(String, String)>,
) -> HttpResult {
    s.remove_tag(&ctx, &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn deactivate(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> HttpResult {
    s.set_active(&ctx, &id, false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn reactivate(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> HttpResult {
    s.set_active(&ctx, &id, true).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_members(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let members = s.list_members(&ctx, &id).await?;
    reply(
        StatusCode::OK,
        json!({"members": members.iter().map(views::member).collect::<Vec<_>>(), "schema": "/v2/schemas/members"}),
    )
}

async fn add_member(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    req: Request,
) -> HttpResult {
    let body = json_body(req).await?;
    let member = body
        .get("member")
        .and_then(Value::as_str)
        .ok_or_else(|| ImageError::bad("Expecting a 'member' attribute with the project id."))?;
    reply(
        StatusCode::OK,
        views::member(&s.add_member(&ctx, &id, member).await?),
    )
}

async fn show_member(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path((id, member)): Path<(String, String)>,
) -> HttpResult {
    reply(
        StatusCode::OK,
        views::member(&s.get_member(&ctx, &id, &member).await?),
    )
}

async fn update_member(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path((id, member)): Path<(String, String)>,
    req: Request,
) -> HttpResult {
    let body = json_body(req).await?;
    let status = body
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| ImageError::bad("Expecting a 'status' attribute."))?;
    reply(
        StatusCode::OK,
        views::member(&s.set_member_status(&ctx, &id, &member, status).await?),
    )
}

async fn delete_member(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path((id, member)): Path<(String, String)>,
) -> HttpResult {
    s.delete_member(&ctx, &id, &member).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn import_info(Caller(_): Caller) -> HttpResult {
    reply(
        StatusCode::OK,
        json!({"import-methods": {"description": "Import methods available.", "type": "array", "value": ["glance-direct"]}}),
    )
}

async fn stores_info(Caller(_): Caller) -> HttpResult {
    reply(
        StatusCode::OK,
        json!({"stores": [{"id": "local", "default": true, "description": "Files in the data directory"}]}),
    )
}
