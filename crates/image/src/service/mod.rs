//! The Image service logic: who sees which image, creating and patching image records, tags,
//! lists with Glance's filters, sorting and paging. Image data (upload, download, crash
//! recovery) is in [`data`]; members (sharing) in [`members`].

pub mod bootstrap;
pub mod data;
pub mod members;
pub mod tasks;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use ferrostack_common::limits::LimitSource;
use ferrostack_common::time::now_micros;
use ferrostack_common::{AuthContext, Authenticator};
use ferrostack_db::Db;
use ferrostack_policy::Policy;
use serde_json::{json, Map, Value};

use crate::config::ImageConfig;
use crate::error::{ImageError, Result};
use crate::model::*;
use crate::store::Store;

pub struct ImageService {
    pub store: Store,
    pub config: ImageConfig,
    pub policy: Policy,
    /// Where image data lives: one file per image, named by its id.
    pub dir: PathBuf,
    /// Validates `X-Auth-Token` (the Identity service).
    pub auth: Arc<dyn Authenticator>,
    /// Where quotas come from (the Identity service's unified limits); unset means none.
    limits: std::sync::OnceLock<Arc<dyn LimitSource>>,
}

/// One operation of a JSON patch, in either of the forms Glance accepts
/// (`{"op": "replace", "path": "/name", "value": ..}` or `{"replace": "/name", "value": ..}`).
#[derive(Debug, Clone)]
pub struct PatchOp {
    pub op: String,
    pub attr: String,
    pub value: Option<Value>,
}

impl PatchOp {
    pub fn parse_all(body: &Value) -> Result<Vec<PatchOp>> {
        let items = body.as_array().ok_or_else(|| {
            ImageError::bad("Request body must be a JSON array of operation objects.")
        })?;
        items
            .iter()
            .map(|item| {
                let obj = item.as_object().ok_or_else(|| ImageError::bad("Operations must be JSON objects."))?;
                let (op, path) = match (obj.get("op").and_then(Value::as_str), obj.get("path").and_then(Value::as_str)) {
                    (Some(op), Some(path)) => (op.to_string(), path.to_string()),
                    _ => ["add", "replace", "remove"]
                        .iter()
                        .find_map(|op| obj.get(*op).and_then(Value::as_str).map(|p| (op.to_string(), p.to_string())))
                        .ok_or_else(|| ImageError::bad("Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace."))?,
                };
                if !["add", "replace", "remove"].contains(&op.as_str()) {
                    return Err(ImageError::bad(format!("Invalid operation: `{op}`. It must be one of the following: add, remove, replace.")));
                }
                let attr = path.strip_prefix('/').filter(|a| !a.is_empty() && !a.contains('/')).ok_or_else(|| ImageError::bad(format!("Invalid JSON pointer for this resource: '{path}'")))?;
                let value = obj.get("value").cloned();
                if op != "remove" && value.is_none() {
                    return Err(ImageError::bad(format!("Operation `{op}` requires a member named `value`.")));
                }
                Ok(PatchOp { op, attr: attr.replace("~1", "/").replace("~0", "~"), value })
            })
            .collect()
    }
}

fn uuid_ok(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok()
}

impl ImageService {
    pub async fn new(
        db: Db,
        config: ImageConfig,
        policy: Policy,
        dir: PathBuf,
        auth: Arc<dyn Authenticator>,
    ) -> anyhow::Result<Arc<ImageService>> {
        db.migrate("image", crate::migrations::MIGRATIONS).await?;
        std::fs::create_dir_all(&dir)?;
        let service = Arc::new(ImageService {
            store: Store { db },
            config,
            policy,
            dir,
            auth,
            limits: std::sync::OnceLock::new(),
        });
        service.recover().await?;
        service.resume_imports().await?;
        Ok(service)
    }

    /// Enforces the unified limits `source` holds for the `image` service type.
    pub fn set_limits(&self, source: Arc<dyn LimitSource>) {
        let _ = self.limits.set(source);
    }

    async fn limit(&self, project: &str, resource: &str) -> Option<i64> {
        match self.limits.get() {
            Some(l) => l.project_limit(project, "image", resource).await,
            None => None,
        }
    }

    /// Refuses one more image (or upload) when it would exceed the project's count limits.
    async fn check_count(&self, project: &str, resource: &str, usage: i64) -> Result<()> {
        if let Some(limit) = self.limit(project, resource).await {
            if usage + 1 > limit {
                return Err(ImageError::TooLarge(format!("Resource {resource} is over limit of {limit} due to current usage {usage} and delta 1")));
            }
        }
        Ok(())
    }

    /// How many more bytes `project` may store (`image_size_total`, in MiB), capped by
    /// `image_size_cap`; 413 when the project is already at or over its limit.
    pub async fn upload_allowance(&self, project: &str) -> Result<u64> {
        let (_, bytes, busy) = self.store.usage(project).await?;
        // The upload about to start is already counted among those in flight.
        self.check_count(project, "image_count_uploading", busy - 1)
            .await?;
        let Some(limit_mib) = self.limit(project, "image_size_total").await else {
            return Ok(self.config.image_size_cap);
        };
        let limit = limit_mib.max(0) as u64 * 1024 * 1024;
        let used = bytes.max(0) as u64;
        if used >= limit {
            return Err(ImageError::TooLarge(format!("Resource image_size_total is over limit of {limit_mib} MiB due to current usage {} MiB", used / (1024 * 1024))));
        }
        Ok((limit - used).min(self.config.image_size_cap))
    }

    pub fn default_policy(overrides: Option<&str>) -> anyhow::Result<Policy> {
        let policy = Policy::new(crate::policy_defaults::RULES.iter().copied())?;
        Ok(match overrides {
            Some(yaml) => policy.with_overrides(yaml)?,
            None => policy,
        })
    }

    pub fn is_admin(&self, ctx: &AuthContext) -> bool {
        self.policy
            .enforce("context_is_admin", &ctx.policy_credentials(), &json!({}))
    }

    /// The policy target of `image` for `ctx` (`member_id` is the caller's project when the
    /// image is shared with it).
    async fn target(&self, ctx: &AuthContext, image: &Image) -> Result<Value> {
        let member = match ctx.project_id() {
            Some(p)
                if image.visibility == "shared"
                    && self.store.member(&image.id, p).await?.is_some() =>
            {
                p.to_string()
            }
            _ => String::new(),
        };
        Ok(
            json!({"project_id": image.owner.clone().unwrap_or_default(), "visibility": image.visibility, "member_id": member}),
        )
    }

    pub async fn authorize(&self, ctx: &AuthContext, rule: &str, image: &Image) -> Result<()> {
        let target = self.target(ctx, image).await?;
        if self
            .policy
            .enforce(rule, &ctx.policy_credentials(), &target)
        {
            Ok(())
        } else {
            Err(ImageError::Forbidden(format!(
                "You are not authorized to complete {rule} action."
            )))
        }
    }

    /// The image if `ctx` may see it; otherwise 404, never 403, so ids of other projects'
    /// private images are not confirmed.
    pub async fn visible_image(&self, ctx: &AuthContext, id: &str) -> Result<Image> {
        let image = self
            .store
            .get(id)
            .await?
            .ok_or_else(|| ImageError::no_image(id))?;
        if self.is_admin(ctx)
            || self.policy.enforce(
                "get_image",
                &ctx.policy_credentials(),
                &self.target(ctx, &image).await?,
            )
        {
            Ok(image)
        } else {
            Err(ImageError::no_image(id))
        }
    }

    /// Applies one attribute to `image` with Glance's rules (used by create and patch).
    fn set_attr(
        &self,
        ctx: &AuthContext,
        image: &mut Image,
        key: &str,
        value: Option<&Value>,
        creating: bool,
    ) -> Result<()> {
        if READ_ONLY.contains(&key) || (key == "id" && !creating) {
            return Err(ImageError::Forbidden(format!(
                "Attribute '{key}' is read-only."
            )));
        }
        if key.starts_with("os_glance") {
            return Err(ImageError::Forbidden(format!(
                "Attribute '{key}' is reserved."
            )));
        }
        let value = value.unwrap_or(&Value::Null);
        let string = |max: usize| -> Result<Option<String>> {
            match value {
                Value::Null => Ok(None),
                Value::String(s) if s.chars().count() <= max => Ok(Some(s.clone())),
                _ => Err(ImageError::bad(format!(
                    "Invalid value for '{key}': expected a string of at most {max} characters."
                ))),
            }
        };
        let boolean = || {
            value.as_bool().ok_or_else(|| {
                ImageError::bad(format!("Invalid value for '{key}': expected a boolean."))
            })
        };
        let count = || {
            value.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
                ImageError::bad(format!(
                    "Invalid value for '{key}': expected a non-negative integer."
                ))
            })
        };
        match key {
            "id" => {
                let id = string(36)?.ok_or_else(|| ImageError::bad("Invalid value for 'id'."))?;
                if !uuid_ok(&id) {
                    return Err(ImageError::bad(format!(
                        "Invalid value for 'id': '{id}' is not a UUID."
                    )));
                }
                image.id = id;
            }
            "name" => image.name = string(255)?,
            "visibility" => {
                let v = string(9)?
                    .filter(|v| VISIBILITIES.contains(&v.as_str()))
                    .ok_or_else(|| {
                        ImageError::bad(format!(
                            "Invalid value for 'visibility': must be one of {VISIBILITIES:?}."
                        ))
                    })?;
                let rule = match v.as_str() {
                    "public" => Some("publicize_image"),
                    "community" => Some("communitize_image"),
                    _ => None,
                };
                if let Some(rule) = rule {
                    if !self.policy.enforce(
                        rule,
                        &ctx.policy_credentials(),
                        &json!({"project_id": image.owner.clone().unwrap_or_default()}),
                    ) {
                        return Err(ImageError::Forbidden(format!(
                            "You are not authorized to complete {rule} action."
                        )));
                    }
                }
                image.visibility = v;
            }
            "protected" => image.protected = boolean()?,
            "os_hidden" => image.os_hidden = boolean()?,
            "min_disk" => image.min_disk = count()?,
            "min_ram" => image.min_ram = count()?,
            "disk_format" | "container_format" => {
                if !creating && image.status != "queued" {
                    return Err(ImageError::Forbidden(format!(
                        "Attribute {key} can be only replaced for a queued image."
                    )));
                }
                let allowed = if key == "disk_format" {
                    DISK_FORMATS
                } else {
                    CONTAINER_FORMATS
                };
                let v = string(32)?;
                if let Some(f) = &v {
                    if !allowed.contains(&f.as_str()) {
                        return Err(ImageError::bad(format!("Invalid value '{f}' for parameter '{key}': must be one of {allowed:?}.")));
                    }
                }
                if key == "disk_format" {
                    image.disk_format = v;
                } else {
                    image.container_format = v;
                }
            }
            "owner" => {
                let owner = string(255)?;
                if !self.is_admin(ctx) && owner.as_deref() != ctx.project_id() {
                    return Err(ImageError::Forbidden(
                        "Attribute 'owner' can only be changed by an administrator.".into(),
                    ));
                }
                image.owner = owner;
            }
            "tags" => {
                let tags = value.as_array().ok_or_else(|| {
                    ImageError::bad("Invalid value for 'tags': expected a list of strings.")
                })?;
                let mut out: Vec<String> = Vec::new();
                for t in tags {
                    let t = t.as_str().filter(|t| t.chars().count() <= 255).ok_or_else(|| ImageError::bad("Invalid value for 'tags': each tag is a string of at most 255 characters."))?;
                    if !out.iter().any(|x| x == t) {
                        out.push(t.to_string());
                    }
                }
                if out.len() > self.config.image_tag_quota {
                    return Err(ImageError::TooLarge(format!(
                        "Maximum number of tags exceeded ({}).",
                        self.config.image_tag_quota
                    )));
                }
                image.tags = out;
            }
            _ => match value {
                Value::String(s) if s.len() <= 65535 => {
                    image
                        .properties
                        .insert(key.to_string(), Value::String(s.clone()));
                    if image.properties.len() > self.config.image_property_quota {
                        return Err(ImageError::TooLarge(format!(
                            "Maximum number of properties exceeded ({}).",
                            self.config.image_property_quota
                        )));
                    }
                }
                _ => {
                    return Err(ImageError::bad(format!(
                        "Invalid value for property '{key}': expected a string."
                    )))
                }
            },
        }
        Ok(())
    }

    /// `POST /v2/images`: a new image record (status `queued`, no data yet).
    pub async fn create(&self, ctx: &AuthContext, body: &Value) -> Result<Image> {
        let obj = body
            .as_object()
            .ok_or_else(|| ImageError::bad("Request body must be a JSON object."))?;
        let now = now_micros();
        let mut image = Image {
            id: uuid::Uuid::new_v4().to_string(),
            name: None,
            status: "queued".into(),
            visibility: "shared".into(),
            protected: false,
            os_hidden: false,
            owner: ctx.project_id().map(str::to_string),
            disk_format: None,
            container_format: None,
            min_disk: 0,
            min_ram: 0,
            size: None,
            virtual_size: None,
            checksum: None,
            os_hash_algo: None,
            os_hash_value: None,
            properties: Map::new(),
            tags: vec![],
            created_at: now,
            updated_at: now,
        };
        // Owner first: visibility rules depend on it.
        if let Some(owner) = obj.get("owner") {
            self.set_attr(ctx, &mut image, "owner", Some(owner), true)?;
        }
        for (k, v) in obj.iter().filter(|(k, _)| k.as_str() != "owner") {
            self.set_attr(ctx, &mut image, k, Some(v), true)?;
        }
        self.authorize(ctx, "add_image", &image).await?;
        if let Some(owner) = &image.owner {
            let (count, _, _) = self.store.usage(owner).await?;
            self.check_count(owner, "image_count_total", count).await?;
        }
        if self.store.id_taken(&image.id).await? {
            return Err(ImageError::Conflict(format!(
                "Image with identifier {} already exists!",
                image.id
            )));
        }
        self.store.insert(&image).await.map_err(|e| {
            if ferrostack_db::is_unique_violation(&e) {
                ImageError::Conflict(format!(
                    "Image with identifier {} already exists!",
                    image.id
                ))
            } else {
                e.into()
            }
        })?;
        Ok(image)
    }

    /// `PATCH /v2/images/{id}`: applies the operations in order, all or nothing.
    pub async fn patch(&self, ctx: &AuthContext, id: &str, ops: &[PatchOp]) -> Result<Image> {
        let current = self.visible_image(ctx, id).await?;
        self.authorize(ctx, "modify_image", &current).await?;
        let mut image = current.clone();
        for op in ops {
            let core = matches!(
                op.attr.as_str(),
                "name"
                    | "visibility"
                    | "protected"
                    | "os_hidden"
                    | "min_disk"
                    | "min_ram"
                    | "disk_format"
                    | "container_format"
                    | "owner"
                    | "tags"
                    | "id"
            ) || READ_ONLY.contains(&op.attr.as_str());
            match op.op.as_str() {
                "remove" if core => {
                    return Err(ImageError::Forbidden(format!(
                        "Attribute '{}' can not be removed.",
                        op.attr
                    )))
                }
                "remove" => {
                    if image.properties.remove(&op.attr).is_none() {
                        return Err(ImageError::Conflict(format!(
                            "Property {} does not exist.",
                            op.attr
                        )));
                    }
                }
                "replace" if !core && !image.properties.contains_key(&op.attr) => {
                    return Err(ImageError::Conflict(format!(
                        "Property {} does not exist.",
                        op.attr
                    )));
                }
                _ => self.set_attr(ctx, &mut image, &op.attr, op.value.as_ref(), false)?,
            }
        }
        image.updated_at = now_micros();
        if !self.store.update_metadata(&image, &current.status).await? {
            return Err(ImageError::Conflict(
                "The image changed while it was being updated; try again.".into(),
            ));
        }
        Ok(image)
    }

    pub async fn delete(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let image = self.visible_image(ctx, id).await?;
        self.authorize(ctx, "delete_image", &image).await?;
        if image.protected {
            return Err(ImageError::Forbidden(format!(
                "Image {id} is protected and cannot be deleted."
            )));
        }
        if !self.store.mark_deleted(id, now_micros()).await? {
            return Err(ImageError::no_image(id));
        }
        self.remove_data(id).await;
        Ok(())
    }

    /// Deletes an image another service of this process made and no longer wants (the
    /// snapshot of a server operation that unwound). No policy check: the request that made
    /// the image was authorized. Deleting an image that is gone already is fine.
    pub async fn discard(&self, id: &str) -> Result<()> {
        self.store.mark_deleted(id, now_micros()).await?;
        self.remove_data(id).await;
        Ok(())
    }

    pub async fn add_tag(&self, ctx: &AuthContext, id: &str, tag: &str) -> Result<()> {
        let image = self.visible_image(ctx, id).await?;
        if image.tags.iter().any(|t| t == tag) {
            self.authorize(ctx, "modify_image", &image).await?;
            return Ok(());
        }
        let mut tags = image.tags.clone();
        tags.push(tag.to_string());
        self.patch(
            ctx,
            id,
            &[PatchOp {
                op: "replace".into(),
                attr: "tags".into(),
                value: Some(json!(tags)),
            }],
        )
        .await
        .map(drop)
    }

    pub async fn remove_tag(&self, ctx: &AuthContext, id: &str, tag: &str) -> Result<()> {
        let image = self.visible_image(ctx, id).await?;
        self.authorize(ctx, "modify_image", &image).await?;
        if !image.tags.iter().any(|t| t == tag) {
            return Err(ImageError::NotFound(format!("Tag {tag} not found.")));
        }
        let tags: Vec<&String> = image.tags.iter().filter(|t| *t != tag).collect();
        self.patch(
            ctx,
            id,
            &[PatchOp {
                op: "replace".into(),
                attr: "tags".into(),
                value: Some(json!(tags)),
            }],
        )
        .await
        .map(drop)
    }

    pub async fn set_active(&self, ctx: &AuthContext, id: &str, activate: bool) -> Result<()> {
        let image = self.visible_image(ctx, id).await?;
        self.authorize(
            ctx,
            if activate { "reactivate" } else { "deactivate" },
            &image,
        )
        .await?;
        let (from, to) = if activate {
            ("deactivated", "active")
        } else {
            ("active", "deactivated")
        };
        if image.status == to {
            return Ok(());
        }
        if !self.store.transition(id, from, to, now_micros()).await? {
            return Err(ImageError::Forbidden(format!(
                "Not allowed to {} image in status '{}'.",
                if activate { "reactivate" } else { "deactivate" },
                image.status
            )));
        }
        Ok(())
    }

    /// `GET /v2/images`: the images `ctx` may list, filtered, sorted and paged as Glance
    /// does. Returns the page and whether more may follow.
    pub async fn list(
        &self,
        ctx: &AuthContext,
        query: &[(String, String)],
    ) -> Result<(Vec<Image>, bool)> {
        let admin = self.is_admin(ctx);
        if !admin
            && !self.policy.enforce(
                "get_images",
                &ctx.policy_credentials(),
                &json!({"project_id": ctx.project_id()}),
            )
        {
            return Err(ImageError::Forbidden(
                "You are not authorized to complete get_images action.".into(),
            ));
        }
        let project = ctx.project_id().unwrap_or_default().to_string();
        let q: HashMap<&str, &str> = query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let tags: Vec<&str> = query
            .iter()
            .filter(|(k, _)| k == "tag")
            .map(|(_, v)| v.as_str())
            .collect();
        let member_status = q.get("member_status").copied().unwrap_or("accepted");
        let memberships: HashMap<String, String> = self
            .store
            .memberships(&project)
            .await?
            .into_iter()
            .map(|m| (m.image_id, m.status))
            .collect();
        let visibility = q.get("visibility").copied();
        if let Some(v) = visibility {
            if !(VISIBILITIES.contains(&v) || v == "all") {
                return Err(ImageError::bad(format!("Invalid visibility value: {v}")));
            }
        }
        let parse_size = |k: &str| -> Result<Option<i64>> {
            q.get(k)
                .map(|v| {
                    v.parse::<i64>().map_err(|_| {
                        ImageError::bad(format!("Invalid value for {k}: '{v}' is not an integer."))
                    })
                })
                .transpose()
        };
        let (size_min, size_max) = (parse_size("size_min")?, parse_size("size_max")?);
        let want_hidden = q.get("os_hidden").map(|v| v.eq_ignore_ascii_case("true"));

        let mut images: Vec<Image> = self
            .store
            .visible(if admin { None } else { Some(&project) })
            .await?
            .into_iter()
            .filter(|i| {
                let own = i.owner.as_deref() == Some(project.as_str());
                let shared_ok = || {
                    memberships
                        .get(&i.id)
                        .is_some_and(|s| member_status == "all" || s == member_status)
                };
                let by_visibility = match visibility {
                    None => {
                        i.visibility == "public"
                            || own
                            || (i.visibility == "shared" && shared_ok())
                            || (admin && i.visibility != "community")
                    }
                    Some("all") => true,
                    Some("shared") => i.visibility == "shared" && (own || shared_ok() || admin),
                    Some(v) => i.visibility == v,
                };
                by_visibility
                    && i.os_hidden == want_hidden.unwrap_or(false)
                    && tags.iter().all(|t| i.tags.iter().any(|x| x == t))
                    && size_min.is_none_or(|m| i.size.is_some_and(|s| s >= m))
                    && size_max.is_none_or(|m| i.size.is_some_and(|s| s <= m))
            })
            .collect();
        for (key, value) in query {
            let attr = key.as_str();
            if matches!(
                attr,
                "limit"
                    | "marker"
                    | "sort_key"
                    | "sort_dir"
                    | "sort"
                    | "tag"
                    | "visibility"
                    | "member_status"
                    | "size_min"
                    | "size_max"
                    | "os_hidden"
            ) {
                continue;
            }
            images.retain(|i| {
                attr_text(i, attr).as_deref() == Some(value.as_str())
                    || (attr == "id"
                        && value
                            .strip_prefix("in:")
                            .is_some_and(|ids| ids.split(',').any(|x| x == i.id)))
            });
        }
        sort_images(&mut images, &q)?;
        if let Some(marker) = q.get("marker") {
            let at = images
                .iter()
                .position(|i| i.id == *marker)
                .ok_or_else(|| ImageError::bad(format!("Marker {marker} could not be found.")))?;
            images.drain(..=at);
        }
        let limit = match q.get("limit") {
            Some(l) => l
                .parse::<usize>()
                .map_err(|_| ImageError::bad("limit param must be an integer"))?
                .min(self.config.api_limit_max),
            None => self.config.limit_param_default,
        };
        let more = images.len() > limit;
        images.truncate(limit);
        Ok((images, more))
    }
}

/// An image attribute as filter text (core attributes and custom properties).
fn attr_text(i: &Image, attr: &str) -> Option<String> {
    Some(match attr {
        "id" => i.id.clone(),
        "name" => i.name.clone()?,
        "status" => i.status.clone(),
        "owner" => i.owner.clone()?,
        "disk_format" => i.disk_format.clone()?,
        "container_format" => i.container_format.clone()?,
        "protected" => i.protected.to_string(),
        "size" => i.size?.to_string(),
        "min_disk" => i.min_disk.to_string(),
        "min_ram" => i.min_ram.to_string(),
        "checksum" => i.checksum.clone()?,
        "os_hash_value" => i.os_hash_value.clone()?,
        other => i.properties.get(other)?.as_str()?.to_string(),
    })
}

const SORT_KEYS: &[&str] = &[
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
    "visibility",
    "owner",
    "min_disk",
    "min_ram",
    "virtual_size",
];

fn sort_images(images: &mut [Image], q: &HashMap<&str, &str>) -> Result<()> {
    // `sort=name:asc,size:desc` or `sort_key=name&sort_dir=asc` (repeatable in Glance; one here).
    let mut keys: Vec<(String, bool)> = Vec::new();
    if let Some(sort) = q.get("sort") {
        for part in sort.split(',') {
            let (k, d) = part.split_once(':').unwrap_or((part, "desc"));
            keys.push((k.trim().to_string(), d.trim() != "asc"));
        }
    } else {
        let dir = q.get("sort_dir").copied().unwrap_or("desc");
        if !matches!(dir, "asc" | "desc") {
            return Err(ImageError::bad(format!("Invalid sort direction: {dir}")));
        }
        keys.push((
            q.get("sort_key")
                .copied()
                .unwrap_or("created_at")
                .to_string(),
            dir == "desc",
        ));
    }
    for (k, _) in &keys {
        if !SORT_KEYS.contains(&k.as_str()) {
            return Err(ImageError::bad(format!(
                "Invalid sort key: {k}. It must be one of the following: {}.",
                SORT_KEYS.join(", ")
            )));
        }
    }
    keys.push(("id".into(), true));
    images.sort_by(|a, b| {
        for (k, desc) in &keys {
            let ord = match k.as_str() {
                "size" => a.size.cmp(&b.size),
                "virtual_size" => a.virtual_size.cmp(&b.virtual_size),
                "min_disk" => a.min_disk.cmp(&b.min_disk),
                "min_ram" => a.min_ram.cmp(&b.min_ram),
                "created_at" => a.created_at.cmp(&b.created_at),
                "updated_at" => a.updated_at.cmp(&b.updated_at),
                other => attr_text(a, other).cmp(&attr_text(b, other)),
            };
            let ord = if *desc { ord.reverse() } else { ord };
            if ord != std::cmp::Ordering::Equal {
                return ord;
            }
        }
        std::cmp::Ordering::Equal
    });
    Ok(())
}
