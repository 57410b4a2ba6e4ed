//! Metadata definitions (Glance's "metadefs"): a catalog operators keep of the properties that
//! images, flavors, volumes and other resources understand, grouped in namespaces. A namespace
//! holds property definitions (JSON schema fragments), objects (named groups of properties),
//! tags, and associations with resource types (with the prefix the properties take there).
//!
//! Who may do what follows Glance's default policy: administrators manage the catalog; a
//! reader sees public namespaces and those of its project. A namespace the caller may not
//! see answers 404; one it sees but may not change answers 403. Contents of a protected
//! namespace cannot be deleted. The rules can be overridden by name in the image policy file
//! (`get_metadef_namespace`, `add_metadef_object`, ...); [`RULES`] are the defaults.
//!
//! [`store`] holds the SQL, [`schemas`] the JSON schemas served at `/v2/schemas/metadefs/*`;
//! the routes and views are in `http::metadefs`.

pub mod model;
pub mod schemas;
pub mod store;

use std::sync::OnceLock;

use ferrostack_common::time::now_micros;
use ferrostack_common::AuthContext;
use ferrostack_policy::Policy;
use serde_json::{json, Map, Value};

use crate::error::{ImageError, Result};
use crate::service::ImageService;
use model::*;
use store::{Kind, MetadefStore};

/// `is_admin` is the image policy's `context_is_admin`, added to the credentials so the
/// defaults follow an operator's definition of an administrator.
const ADMIN: &str = "is_admin:True";
const READER_OF_NAMESPACE: &str =
    "is_admin:True or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))";
const PROJECT_READER: &str = "is_admin:True or (role:reader and project_id:%(project_id)s)";

/// Glance's default metadef rules (secure RBAC).
pub const RULES: &[(&str, &str)] = &[
    ("get_metadef_namespace", READER_OF_NAMESPACE),
    ("get_metadef_namespaces", PROJECT_READER),
    ("modify_metadef_namespace", ADMIN),
    ("add_metadef_namespace", ADMIN),
    ("delete_metadef_namespace", ADMIN),
    ("get_metadef_object", READER_OF_NAMESPACE),
    ("get_metadef_objects", READER_OF_NAMESPACE),
    ("modify_metadef_object", ADMIN),
    ("add_metadef_object", ADMIN),
    ("delete_metadef_object", ADMIN),
    ("list_metadef_resource_types", READER_OF_NAMESPACE),
    ("get_metadef_resource_type", READER_OF_NAMESPACE),
    ("add_metadef_resource_type_association", ADMIN),
    ("remove_metadef_resource_type_association", ADMIN),
    ("get_metadef_property", READER_OF_NAMESPACE),
    ("get_metadef_properties", READER_OF_NAMESPACE),
    ("modify_metadef_property", ADMIN),
    ("add_metadef_property", ADMIN),
    ("remove_metadef_property", ADMIN),
    ("get_metadef_tag", READER_OF_NAMESPACE),
    ("get_metadef_tags", READER_OF_NAMESPACE),
    ("modify_metadef_tag", ADMIN),
    ("add_metadef_tag", ADMIN),
    ("add_metadef_tags", ADMIN),
    ("delete_metadef_tag", ADMIN),
    ("delete_metadef_tags", ADMIN),
];

fn defaults() -> &'static Policy {
    static DEFAULTS: OnceLock<Policy> = OnceLock::new();
    DEFAULTS
        .get_or_init(|| Policy::new(RULES.iter().copied()).expect("default metadef rules parse"))
}

/// How many objects, properties or tags one namespace may hold: the catalog describes a
/// cloud's vocabulary, so a bound keeps a namespace's detail view reasonable.
pub const MAX_PER_NAMESPACE: i64 = 1000;

/// The largest page of namespaces, and the page size when the client asks for none.
pub const MAX_LIMIT: usize = 1000;
pub const DEFAULT_LIMIT: usize = 25;

const PROPERTY_TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];
const READ_ONLY: &[&str] = &["self", "schema", "created_at", "updated_at"];

/// A page request: `limit`, `marker` (a name), `sort_key`, `sort_dir`.
#[derive(Debug, Clone)]
pub struct Page {
    pub limit: Option<usize>,
    pub marker: Option<String>,
    pub sort_key: String,
    pub descending: bool,
}

impl Page {
    fn parse(
        q: &[(String, String)],
        sort_keys: &[&str],
        default_limit: Option<usize>,
    ) -> Result<Page> {
        let get = |k: &str| {
            q.iter()
                .rev()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let limit = match get("limit") {
            None => default_limit,
            Some(v) => Some(
                v.parse::<i64>()
                    .map_err(|_| ImageError::bad("limit param must be an integer"))
                    .and_then(|n| {
                        if n < 0 {
                            Err(ImageError::bad("limit param must be positive"))
                        } else {
                            Ok((n as usize).min(MAX_LIMIT))
                        }
                    })?,
            ),
        };
        let sort_key = get("sort_key").unwrap_or("created_at").to_string();
        if !sort_keys.contains(&sort_key.as_str()) {
            return Err(ImageError::bad(format!(
                "Invalid sort key: {sort_key}. It must be one of the following: {}.",
                sort_keys.join(", ")
            )));
        }
        let descending = match get("sort_dir").unwrap_or("desc") {
            "desc" => true,
            "asc" => false,
            other => return Err(ImageError::bad(format!("Invalid sort direction: {other}"))),
        };
        Ok(Page {
            limit,
            marker: get("marker").map(str::to_string),
            sort_key,
            descending,
        })
    }
}

/// A value to sort by; ties are broken by name so a marker always finds its place.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SortValue {
    Int(i64),
    Text(String),
}

/// Sorts, skips past the marker and cuts a page; the flag says whether more follow.
fn paginate<T>(
    mut items: Vec<T>,
    page: &Page,
    key: impl Fn(&T, &str) -> SortValue,
    name: impl Fn(&T) -> &str,
) -> Result<(Vec<T>, bool)> {
    items.sort_by(|a, b| {
        let order = key(a, &page.sort_key)
            .cmp(&key(b, &page.sort_key))
            .then_with(|| name(a).cmp(name(b)));
        if page.descending {
            order.reverse()
        } else {
            order
        }
    });
    if let Some(marker) = &page.marker {
        let at = items
            .iter()
            .position(|i| name(i) == marker)
            .ok_or_else(|| {
                ImageError::NotFound(format!("The marker {marker} could not be found."))
            })?;
        items.drain(..=at);
    }
    let more = page.limit.is_some_and(|l| items.len() > l);
    if let Some(limit) = page.limit {
        items.truncate(limit);
    }
    Ok((items, more))
}

/// The body as a JSON object, refusing read-only attributes (403, as Glance) and attributes
/// the schema does not know (400).
fn body_object<'v>(body: &'v Value, allowed: &[&str]) -> Result<&'v Map<String, Value>> {
    let obj = body
        .as_object()
        .ok_or_else(|| ImageError::bad("Body expected in request: a JSON object."))?;
    for key in obj.keys() {
        if READ_ONLY.contains(&key.as_str()) {
            return Err(ImageError::Forbidden(format!(
                "Attribute '{key}' is read-only."
            )));
        }
        if !allowed.contains(&key.as_str()) {
            return Err(ImageError::bad(format!(
                "Additional properties are not allowed ('{key}' was unexpected)."
            )));
        }
    }
    Ok(obj)
}

/// An optional string attribute of at most `max` characters.
fn opt_string(obj: &Map<String, Value>, key: &str, max: usize) -> Result<Option<String>> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(_) => Err(ImageError::bad(format!(
            "Invalid value for '{key}': expected a string of at most {max} characters."
        ))),
    }
}

/// A required name: a non-empty string of at most `max` characters.
fn name_attr(obj: &Map<String, Value>, key: &str, max: usize) -> Result<String> {
    match opt_string(obj, key, max)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(ImageError::bad(format!("'{key}' is a required property."))),
    }
}

fn opt_bool(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ImageError::bad(format!(
            "Invalid value for '{key}': expected a boolean."
        ))),
    }
}

fn string_list(value: &Value, key: &str) -> Result<Vec<String>> {
    value
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| {
            ImageError::bad(format!(
                "Invalid value for '{key}': expected a list of strings."
            ))
        })
}

/// Checks one property definition against the metadefs property schema and returns it
/// without its name (which is stored apart).
pub fn property_definition(name: &str, def: &Value) -> Result<Map<String, Value>> {
    let obj = def.as_object().ok_or_else(|| {
        ImageError::bad(format!(
            "Invalid definition of property '{name}': expected an object."
        ))
    })?;
    let bad =
        |msg: String| ImageError::bad(format!("Invalid definition of property '{name}': {msg}"));
    let mut out = Map::new();
    for (key, value) in obj {
        let ok = match key.as_str() {
            "name" => {
                if !value.is_string() || value.as_str().is_some_and(|s| s.chars().count() > 255) {
                    return Err(bad(
                        "'name' must be a string of at most 255 characters.".into()
                    ));
                }
                continue;
            }
            "type" => value.as_str().is_some_and(|t| PROPERTY_TYPES.contains(&t)),
            "title" | "description" => value.is_string(),
            "pattern" => value.as_str().is_some(),
            "readonly" | "uniqueItems" | "additionalItems" | "confidential" => value.is_boolean(),
            "minimum" | "maximum" => value.is_number(),
            "minLength" | "maxLength" | "minItems" | "maxItems" => value.as_u64().is_some(),
            "enum" => value.is_array(),
            "operators" | "required" => string_list(value, key).is_ok(),
            "default" => true,
            "items" => value.as_object().is_some_and(|items| {
                items.iter().all(|(k, v)| match k.as_str() {
                    "type" => v.as_str().is_some_and(|t| PROPERTY_TYPES.contains(&t)),
                    "enum" => v.is_array(),
                    _ => false,
                })
            }),
            "properties" => value.is_object(),
            other => {
                return Err(bad(format!(
                    "Additional properties are not allowed ('{other}' was unexpected)."
                )))
            }
        };
        if !ok {
            return Err(bad(format!("'{key}' has an invalid value.")));
        }
        out.insert(key.clone(), value.clone());
    }
    for required in ["type", "title"] {
        if !out.contains_key(required) {
            return Err(bad(format!("'{required}' is a required property.")));
        }
    }
    Ok(out)
}

fn properties_map(value: &Value) -> Result<Map<String, Value>> {
    let map = value
        .as_object()
        .ok_or_else(|| ImageError::bad("Invalid value for 'properties': expected an object."))?;
    map.iter()
        .map(|(name, def)| Ok((name.clone(), Value::Object(property_definition(name, def)?))))
        .collect()
}

/// An object from a request body (create or full replace).
fn object_from(body: &Value, now: i64) -> Result<MetaObject> {
    let obj = body_object(body, &["name", "description", "required", "properties"])?;
    Ok(MetaObject {
        name: name_attr(obj, "name", 255)?,
        description: opt_string(obj, "description", usize::MAX)?,
        required: match obj.get("required") {
            None => vec![],
            Some(v) => string_list(v, "required")?,
        },
        properties: match obj.get("properties") {
            None => Map::new(),
            Some(v) => properties_map(v)?,
        },
        created_at: now,
        updated_at: now,
    })
}

/// A property from a request body; `name` is required there.
fn property_from(body: &Value, now: i64) -> Result<Property> {
    let obj = body
        .as_object()
        .ok_or_else(|| ImageError::bad("Body expected in request: a JSON object."))?;
    if let Some(key) = READ_ONLY.iter().find(|k| obj.contains_key(**k)) {
        return Err(ImageError::Forbidden(format!(
            "Attribute '{key}' is read-only."
        )));
    }
    let name = name_attr(obj, "name", 255)?;
    Ok(Property {
        schema: property_definition(&name, body)?,
        name,
        created_at: now,
        updated_at: now,
    })
}

fn tag_name(name: &str) -> Result<String> {
    if name.trim().is_empty() || name.chars().count() > 255 {
        return Err(ImageError::bad("A tag name is 1 to 255 characters."));
    }
    Ok(name.to_string())
}

fn association_from(body: &Value, now: i64) -> Result<Association> {
    let obj = body_object(body, &["name", "prefix", "properties_target"])?;
    Ok(Association {
        name: name_attr(obj, "name", 80)?,
        prefix: opt_string(obj, "prefix", 80)?,
        properties_target: opt_string(obj, "properties_target", 80)?,
        created_at: now,
        updated_at: now,
    })
}

fn conflict_or(e: ferrostack_db::sqlx::Error, msg: impl FnOnce() -> String) -> ImageError {
    if ferrostack_db::is_unique_violation(&e) {
        ImageError::Conflict(msg())
    } else {
        e.into()
    }
}

fn no_namespace(name: &str) -> ImageError {
    ImageError::NotFound(format!(
        "Metadata definition namespace={name} was not found."
    ))
}

fn protected(ns: &Namespace, what: &str) -> ImageError {
    ImageError::Forbidden(format!(
        "Namespace {} is protected: its {what} cannot be deleted. Set 'protected' to false first.",
        ns.namespace
    ))
}

/// The catalog's logic, over the image service's database and policy.
pub struct Metadefs<'a> {
    image: &'a ImageService,
    store: MetadefStore<'a>,
}

impl<'a> Metadefs<'a> {
    pub fn new(image: &'a ImageService) -> Self {
        Metadefs {
            image,
            store: MetadefStore {
                db: &image.store.db,
            },
        }
    }

    fn allowed(&self, ctx: &AuthContext, rule: &str, target: &Value) -> bool {
        let mut creds = ctx.policy_credentials();
        creds["is_admin"] = json!(self.image.is_admin(ctx));
        if self.image.policy.contains(rule) {
            self.image.policy.enforce(rule, &creds, target)
        } else {
            defaults().enforce(rule, &creds, target)
        }
    }

    fn authorize(&self, ctx: &AuthContext, rule: &str, target: &Value) -> Result<()> {
        if self.allowed(ctx, rule, target) {
            Ok(())
        } else {
            Err(ImageError::Forbidden(format!(
                "You are not authorized to complete {rule} action."
            )))
        }
    }

    fn own_target(ctx: &AuthContext) -> Value {
        json!({"project_id": ctx.project_id().unwrap_or_default(), "visibility": "private"})
    }

    fn target(ns: &Namespace) -> Value {
        json!({"project_id": ns.owner.clone().unwrap_or_default(), "visibility": ns.visibility})
    }

    /// The namespace if the caller may see it (404 otherwise), then authorized for `rule`.
    async fn namespace_for(&self, ctx: &AuthContext, name: &str, rule: &str) -> Result<Namespace> {
        let ns = self
            .store
            .namespace(name)
            .await?
            .ok_or_else(|| no_namespace(name))?;
        let target = Self::target(&ns);
        if !self.allowed(ctx, "get_metadef_namespace", &target) {
            return Err(no_namespace(name));
        }
        self.authorize(ctx, rule, &target)?;
        Ok(ns)
    }

    async fn room_for(&self, ns: &Namespace, kind: Kind, adding: usize) -> Result<()> {
        if self.store.count(kind, &ns.id).await? + adding as i64 > MAX_PER_NAMESPACE {
            let what = match kind {
                Kind::Objects => "objects",
                Kind::Properties => "properties",
                Kind::Tags => "tags",
            };
            return Err(ImageError::TooLarge(format!(
                "A namespace holds at most {MAX_PER_NAMESPACE} {what}."
            )));
        }
        Ok(())
    }

    // ---- namespaces ----

    /// Namespaces the caller may see, each with its resource type associations, filtered by
    /// `visibility` and `resource_types` (comma separated, any of them), sorted and paged.
    pub async fn list_namespaces(
        &self,
        ctx: &AuthContext,
        q: &[(String, String)],
    ) -> Result<(Vec<(Namespace, Vec<Association>)>, bool)> {
        self.authorize(ctx, "get_metadef_namespaces", &Self::own_target(ctx))?;
        let page = Page::parse(
            q,
            &[
                "created_at",
                "updated_at",
                "namespace",
                "display_name",
                "visibility",
            ],
            Some(DEFAULT_LIMIT),
        )?;
        let visibility = q
            .iter()
            .find(|(k, _)| k == "visibility")
            .map(|(_, v)| v.as_str());
        if let Some(v) = visibility {
            if v != "public" && v != "private" {
                return Err(ImageError::bad(format!("Invalid visibility value: {v}")));
            }
        }
        let wanted: Option<Vec<&str>> =
            q.iter().find(|(k, _)| k == "resource_types").map(|(_, v)| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            });
        let project = if self.image.is_admin(ctx) {
            None
        } else {
            Some(ctx.project_id().unwrap_or(""))
        };
        let mut associations: std::collections::HashMap<String, Vec<Association>> =
            Default::default();
        for (ns_id, a) in self.store.all_associations().await? {
            associations.entry(ns_id).or_default().push(a);
        }
        let items: Vec<(Namespace, Vec<Association>)> = self
            .store
            .namespaces(project)
            .await?
            .into_iter()
            .filter(|ns| self.allowed(ctx, "get_metadef_namespace", &Self::target(ns)))
            .filter(|ns| visibility.is_none_or(|v| ns.visibility == v))
            .map(|ns| {
                let a = associations.remove(&ns.id).unwrap_or_default();
                (ns, a)
            })
            .filter(|(_, a)| {
                wanted
                    .as_ref()
                    .is_none_or(|w| a.iter().any(|a| w.contains(&a.name.as_str())))
            })
            .collect();
        paginate(
            items,
            &page,
            |(ns, _), key| match key {
                "updated_at" => SortValue::Int(ns.updated_at),
                "namespace" => SortValue::Text(ns.namespace.clone()),
                "display_name" => SortValue::Text(ns.display_name.clone().unwrap_or_default()),
                "visibility" => SortValue::Text(ns.visibility.clone()),
                _ => SortValue::Int(ns.created_at),
            },
            |(ns, _)| ns.namespace.as_str(),
        )
    }

    pub async fn create_namespace(
        &self,
        ctx: &AuthContext,
        body: &Value,
    ) -> Result<NamespaceDetail> {
        let obj = body_object(
            body,
            &[
                "namespace",
                "display_name",
                "description",
                "visibility",
                "protected",
                "owner",
                "properties",
                "objects",
                "resource_type_associations",
                "tags",
            ],
        )?;
        let now = now_micros();
        let ns = self.namespace_attrs(ctx, obj, None, now)?;
        self.authorize(ctx, "add_metadef_namespace", &Self::target(&ns))?;
        let mut detail = NamespaceDetail {
            namespace: ns,
            associations: vec![],
            objects: vec![],
            properties: vec![],
            tags: vec![],
        };
        if let Some(v) = obj.get("resource_type_associations") {
            self.authorize(
                ctx,
                "add_metadef_resource_type_association",
                &Self::target(&detail.namespace),
            )?;
            let items = v.as_array().ok_or_else(|| {
                ImageError::bad("Invalid value for 'resource_type_associations': expected a list.")
            })?;
            detail.associations = items
                .iter()
                .map(|a| association_from(a, now))
                .collect::<Result<_>>()?;
        }
        if let Some(v) = obj.get("objects") {
            self.authorize(ctx, "add_metadef_object", &Self::target(&detail.namespace))?;
            let items = v
                .as_array()
                .ok_or_else(|| ImageError::bad("Invalid value for 'objects': expected a list."))?;
            detail.objects = items
                .iter()
                .map(|o| object_from(o, now))
                .collect::<Result<_>>()?;
        }
        if let Some(v) = obj.get("properties") {
            self.authorize(
                ctx,
                "add_metadef_property",
                &Self::target(&detail.namespace),
            )?;
            detail.properties = properties_map(v)?
                .into_iter()
                .map(|(name, schema)| Property {
                    name,
                    schema: match schema {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    },
                    created_at: now,
                    updated_at: now,
                })
                .collect();
        }
        if let Some(v) = obj.get("tags") {
            self.authorize(ctx, "add_metadef_tag", &Self::target(&detail.namespace))?;
            let items = v
                .as_array()
                .ok_or_else(|| ImageError::bad("Invalid value for 'tags': expected a list."))?;
            detail.tags = items
                .iter()
                .map(|t| {
                    let obj = body_object(t, &["name"])?;
                    Ok(Tag {
                        name: tag_name(&name_attr(obj, "name", 255)?)?,
                        created_at: now,
                        updated_at: now,
                    })
                })
                .collect::<Result<_>>()?;
        }
        for (kind, n) in [
            ("objects", detail.objects.len()),
            ("properties", detail.properties.len()),
            ("tags", detail.tags.len()),
        ] {
            if n as i64 > MAX_PER_NAMESPACE {
                return Err(ImageError::TooLarge(format!(
                    "A namespace holds at most {MAX_PER_NAMESPACE} {kind}."
                )));
            }
        }
        let name = detail.namespace.namespace.clone();
        if self.store.namespace(&name).await?.is_some() {
            return Err(ImageError::Conflict(format!(
                "Metadata definition namespace={name} already exists."
            )));
        }
        self.store.insert_namespace(&detail).await.map_err(|e| {
            conflict_or(e, || {
                format!("Metadata definition namespace={name} already exists, or the request names one of its objects, properties, tags or resource types twice.")
            })
        })?;
        Ok(detail)
    }

    /// Reads the namespace attributes of a create or full-replace body; absent attributes
    /// take their defaults, as Glance's PUT does.
    fn namespace_attrs(
        &self,
        ctx: &AuthContext,
        obj: &Map<String, Value>,
        existing: Option<&Namespace>,
        now: i64,
    ) -> Result<Namespace> {
        let visibility = opt_string(obj, "visibility", 9)?.unwrap_or_else(|| "private".into());
        if visibility != "public" && visibility != "private" {
            return Err(ImageError::bad(format!(
                "Invalid value for 'visibility': {visibility:?} is not one of ['public', 'private']."
            )));
        }
        Ok(Namespace {
            id: existing
                .map(|n| n.id.clone())
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            namespace: name_attr(obj, "namespace", 80)?,
            display_name: opt_string(obj, "display_name", 80)?,
            description: opt_string(obj, "description", 500)?,
            visibility,
            protected: opt_bool(obj, "protected")?.unwrap_or(false),
            owner: opt_string(obj, "owner", 255)?.or_else(|| ctx.project_id().map(str::to_string)),
            created_at: existing.map_or(now, |n| n.created_at),
            updated_at: now,
        })
    }

    /// A namespace with its contents; with `resource_type`, property names carry that
    /// resource type's prefix.
    pub async fn show_namespace(
        &self,
        ctx: &AuthContext,
        name: &str,
        resource_type: Option<&str>,
    ) -> Result<NamespaceDetail> {
        let ns = self
            .namespace_for(ctx, name, "get_metadef_namespace")
            .await?;
        let target = Self::target(&ns);
        for rule in [
            "list_metadef_resource_types",
            "get_metadef_objects",
            "get_metadef_properties",
            "get_metadef_tags",
        ] {
            self.authorize(ctx, rule, &target)?;
        }
        let mut detail = NamespaceDetail {
            associations: self.store.associations(&ns.id).await?,
            objects: self.store.objects(&ns.id).await?,
            properties: self.store.properties(&ns.id).await?,
            tags: self.store.tags(&ns.id).await?,
            namespace: ns,
        };
        let prefix = resource_type.and_then(|rt| {
            detail
                .associations
                .iter()
                .find(|a| a.name == rt)
                .and_then(|a| a.prefix.clone())
        });
        if let Some(prefix) = prefix {
            for p in &mut detail.properties {
                p.name = format!("{prefix}{}", p.name);
            }
            for o in &mut detail.objects {
                o.properties = std::mem::take(&mut o.properties)
                    .into_iter()
                    .map(|(k, v)| (format!("{prefix}{k}"), v))
                    .collect();
                for r in &mut o.required {
                    *r = format!("{prefix}{r}");
                }
            }
        }
        Ok(detail)
    }

    pub async fn update_namespace(
        &self,
        ctx: &AuthContext,
        name: &str,
        body: &Value,
    ) -> Result<Namespace> {
        let current = self
            .namespace_for(ctx, name, "modify_metadef_namespace")
            .await?;
        let obj = body_object(
            body,
            &[
                "namespace",
                "display_name",
                "description",
                "visibility",
                "protected",
                "owner",
                "properties",
                "objects",
                "resource_type_associations",
                "tags",
            ],
        )?;
        let ns = self.namespace_attrs(ctx, obj, Some(&current), now_micros())?;
        if ns.namespace != current.namespace && self.store.namespace(&ns.namespace).await?.is_some()
        {
            return Err(ImageError::Conflict(format!(
                "Metadata definition namespace={} already exists.",
                ns.namespace
            )));
        }
        let renamed = ns.namespace.clone();
        if !self.store.update_namespace(&ns).await.map_err(|e| {
            conflict_or(e, || {
                format!("Metadata definition namespace={renamed} already exists.")
            })
        })? {
            return Err(no_namespace(name));
        }
        Ok(ns)
    }

    pub async fn delete_namespace(&self, ctx: &AuthContext, name: &str) -> Result<()> {
        let ns = self
            .namespace_for(ctx, name, "delete_metadef_namespace")
            .await?;
        if ns.protected {
            return Err(ImageError::Forbidden(format!(
                "Namespace {} is protected and cannot be deleted. Set 'protected' to false first.",
                ns.namespace
            )));
        }
        if !self.store.delete_namespace(&ns.id).await? {
            return Err(no_namespace(name));
        }
        Ok(())
    }

    /// Empties one kind of content of a namespace (`DELETE .../objects`, `/properties`, `/tags`).
    pub async fn delete_contents(&self, ctx: &AuthContext, name: &str, kind: Kind) -> Result<()> {
        let ns = self
            .namespace_for(ctx, name, "delete_metadef_namespace")
            .await?;
        if kind == Kind::Tags {
            self.authorize(ctx, "delete_metadef_tags", &Self::target(&ns))?;
        }
        if ns.protected {
            return Err(protected(
                &ns,
                match kind {
                    Kind::Objects => "objects",
                    Kind::Properties => "properties",
                    Kind::Tags => "tags",
                },
            ));
        }
        self.store.delete_all(kind, &ns.id).await?;
        Ok(())
    }

    // ---- objects ----

    pub async fn list_objects(
        &self,
        ctx: &AuthContext,
        name: &str,
        q: &[(String, String)],
    ) -> Result<(Vec<MetaObject>, bool)> {
        let ns = self.namespace_for(ctx, name, "get_metadef_objects").await?;
        let page = Page::parse(q, &["created_at", "updated_at", "name"], None)?;
        paginate(
            self.store.objects(&ns.id).await?,
            &page,
            |o, key| match key {
                "updated_at" => SortValue::Int(o.updated_at),
                "name" => SortValue::Text(o.name.clone()),
                _ => SortValue::Int(o.created_at),
            },
            |o| o.name.as_str(),
        )
    }

    pub async fn create_object(
        &self,
        ctx: &AuthContext,
        name: &str,
        body: &Value,
    ) -> Result<MetaObject> {
        let ns = self.namespace_for(ctx, name, "add_metadef_object").await?;
        let object = object_from(body, now_micros())?;
        self.room_for(&ns, Kind::Objects, 1).await?;
        self.store
            .insert_object(&ns.id, &object)
            .await
            .map_err(|e| {
                conflict_or(e, || {
                    format!(
                        "A metadata definition object with name={} already exists in namespace={}.",
                        object.name, ns.namespace
                    )
                })
            })?;
        Ok(object)
    }

    fn no_object(ns: &Namespace, object: &str) -> ImageError {
        ImageError::NotFound(format!(
            "Metadata definition object not found for namespace={} and object name={object}.",
            ns.namespace
        ))
    }

    pub async fn show_object(
        &self,
        ctx: &AuthContext,
        name: &str,
        object: &str,
    ) -> Result<MetaObject> {
        let ns = self.namespace_for(ctx, name, "get_metadef_object").await?;
        self.store
            .object(&ns.id, object)
            .await?
            .ok_or_else(|| Self::no_object(&ns, object))
    }

    pub async fn update_object(
        &self,
        ctx: &AuthContext,
        name: &str,
        object: &str,
        body: &Value,
    ) -> Result<MetaObject> {
        let ns = self
            .namespace_for(ctx, name, "modify_metadef_object")
            .await?;
        let current = self
            .store
            .object(&ns.id, object)
            .await?
            .ok_or_else(|| Self::no_object(&ns, object))?;
        let mut updated = object_from(body, now_micros())?;
        updated.created_at = current.created_at;
        let updated_ok = self
            .store
            .update_object(&ns.id, object, &updated)
            .await
            .map_err(|e| {
                conflict_or(e, || {
                    format!(
                        "A metadata definition object with name={} already exists in namespace={}.",
                        updated.name, ns.namespace
                    )
                })
            })?;
        if !updated_ok {
            return Err(Self::no_object(&ns, object));
        }
        Ok(updated)
    }

    pub async fn delete_object(&self, ctx: &AuthContext, name: &str, object: &str) -> Result<()> {
        let ns = self
            .namespace_for(ctx, name, "delete_metadef_object")
            .await?;
        if self.store.object(&ns.id, object).await?.is_none() {
            return Err(Self::no_object(&ns, object));
        }
        if ns.protected {
            return Err(protected(&ns, "objects"));
        }
        if !self
            .store
            .delete_named(Kind::Objects, &ns.id, object)
            .await?
        {
            return Err(Self::no_object(&ns, object));
        }
        Ok(())
    }

    // ---- properties ----

    pub async fn list_properties(&self, ctx: &AuthContext, name: &str) -> Result<Vec<Property>> {
        let ns = self
            .namespace_for(ctx, name, "get_metadef_properties")
            .await?;
        Ok(self.store.properties(&ns.id).await?)
    }

    pub async fn create_property(
        &self,
        ctx: &AuthContext,
        name: &str,
        body: &Value,
    ) -> Result<Property> {
        let ns = self
            .namespace_for(ctx, name, "add_metadef_property")
            .await?;
        let property = property_from(body, now_micros())?;
        self.room_for(&ns, Kind::Properties, 1).await?;
        self.store
            .insert_property(&ns.id, &property)
            .await
            .map_err(|e| {
                conflict_or(e, || {
                    format!(
                    "A metadata definition property with name={} already exists in namespace={}.",
                    property.name, ns.namespace
                )
                })
            })?;
        Ok(property)
    }

    fn no_property(ns: &Namespace, property: &str) -> ImageError {
        ImageError::NotFound(format!(
            "Metadata definition property not found for namespace={} and property name={property}.",
            ns.namespace
        ))
    }

    /// One property; with `resource_type`, `property` carries that association's prefix,
    /// which is removed before the lookup.
    pub async fn show_property(
        &self,
        ctx: &AuthContext,
        name: &str,
        property: &str,
        resource_type: Option<&str>,
    ) -> Result<Property> {
        let ns = self
            .namespace_for(ctx, name, "get_metadef_property")
            .await?;
        let mut lookup = property;
        if let Some(rt) = resource_type {
            self.authorize(ctx, "get_metadef_resource_type", &Self::target(&ns))?;
            let association = self
                .store
                .associations(&ns.id)
                .await?
                .into_iter()
                .find(|a| a.name == rt)
                .ok_or_else(|| {
                    ImageError::NotFound(format!(
                        "Resource type {rt} is not associated with namespace {}.",
                        ns.namespace
                    ))
                })?;
            lookup = association
                .prefix
                .as_deref()
                .and_then(|p| property.strip_prefix(p))
                .ok_or_else(|| {
                    ImageError::NotFound(format!(
                        "Property {property} does not start with the expected resource type association prefix of '{}'.",
                        association.prefix.clone().unwrap_or_default()
                    ))
                })?;
        }
        self.store
            .property(&ns.id, lookup)
            .await?
            .ok_or_else(|| Self::no_property(&ns, property))
    }

    pub async fn update_property(
        &self,
        ctx: &AuthContext,
        name: &str,
        property: &str,
        body: &Value,
    ) -> Result<Property> {
        let ns = self
            .namespace_for(ctx, name, "modify_metadef_property")
            .await?;
        let current = self
            .store
            .property(&ns.id, property)
            .await?
            .ok_or_else(|| Self::no_property(&ns, property))?;
        let mut updated = property_from(body, now_micros())?;
        updated.created_at = current.created_at;
        let ok = self
            .store
            .update_property(&ns.id, property, &updated)
            .await
            .map_err(|e| {
                conflict_or(e, || {
                    format!(
                        "A metadata definition property with name={} already exists in namespace={}.",
                        updated.name, ns.namespace
                    )
                })
            })?;
        if !ok {
            return Err(Self::no_property(&ns, property));
        }
        Ok(updated)
    }

    pub async fn delete_property(
        &self,
        ctx: &AuthContext,
        name: &str,
        property: &str,
    ) -> Result<()> {
        let ns = self
            .namespace_for(ctx, name, "remove_metadef_property")
            .await?;
        if self.store.property(&ns.id, property).await?.is_none() {
            return Err(Self::no_property(&ns, property));
        }
        if ns.protected {
            return Err(protected(&ns, "properties"));
        }
        if !self
            .store
            .delete_named(Kind::Properties, &ns.id, property)
            .await?
        {
            return Err(Self::no_property(&ns, property));
        }
        Ok(())
    }

    // ---- tags ----

    pub async fn list_tags(
        &self,
        ctx: &AuthContext,
        name: &str,
        q: &[(String, String)],
    ) -> Result<(Vec<Tag>, bool)> {
        let ns = self.namespace_for(ctx, name, "get_metadef_tags").await?;
        let page = Page::parse(q, &["created_at", "updated_at", "name"], None)?;
        paginate(
            self.store.tags(&ns.id).await?,
            &page,
            |t, key| match key {
                "updated_at" => SortValue::Int(t.updated_at),
                "name" => SortValue::Text(t.name.clone()),
                _ => SortValue::Int(t.created_at),
            },
            |t| t.name.as_str(),
        )
    }

    fn tag_exists(ns: &Namespace, tag: &str) -> ImageError {
        ImageError::Conflict(format!(
            "A metadata tag with name={tag} already exists in namespace={}.",
            ns.namespace
        ))
    }

    fn no_tag(ns: &Namespace, tag: &str) -> ImageError {
        ImageError::NotFound(format!(
            "Metadata definition tag not found for namespace={} and tag name={tag}.",
            ns.namespace
        ))
    }

    pub async fn create_tag(&self, ctx: &AuthContext, name: &str, tag: &str) -> Result<Tag> {
        let ns = self.namespace_for(ctx, name, "add_metadef_tag").await?;
        let now = now_micros();
        let tag = Tag {
            name: tag_name(tag)?,
            created_at: now,
            updated_at: now,
        };
        self.room_for(&ns, Kind::Tags, 1).await?;
        self.store
            .insert_tags(&ns.id, std::slice::from_ref(&tag), false)
            .await
            .map_err(|e| conflict_or(e, || Self::tag_exists(&ns, &tag.name).to_string()))?;
        Ok(tag)
    }

    /// `POST .../tags`: replaces the namespace's tags with the given ones, or adds them
    /// when `append` (the `X-Openstack-Append` header).
    pub async fn create_tags(
        &self,
        ctx: &AuthContext,
        name: &str,
        body: &Value,
        append: bool,
    ) -> Result<Vec<Tag>> {
        let ns = self.namespace_for(ctx, name, "add_metadef_tags").await?;
        let obj = body_object(body, &["tags"])?;
        let items = obj.get("tags").and_then(Value::as_array).ok_or_else(|| {
            ImageError::bad("'tags' is a required property: a list of {\"name\": ...}.")
        })?;
        let now = now_micros();
        let mut tags: Vec<Tag> = Vec::with_capacity(items.len());
        for item in items {
            let t = body_object(item, &["name"])?;
            let tag = tag_name(&name_attr(t, "name", 255)?)?;
            if tags.iter().any(|existing| existing.name == tag) {
                return Err(ImageError::Conflict(format!(
                    "Duplicate tag name in the request: {tag}."
                )));
            }
            tags.push(Tag {
                name: tag,
                created_at: now,
                updated_at: now,
            });
        }
        if append {
            self.room_for(&ns, Kind::Tags, tags.len()).await?;
        } else if tags.len() as i64 > MAX_PER_NAMESPACE {
            return Err(ImageError::TooLarge(format!(
                "A namespace holds at most {MAX_PER_NAMESPACE} tags."
            )));
        }
        self.store
            .insert_tags(&ns.id, &tags, !append)
            .await
            .map_err(|e| {
                conflict_or(e, || {
                    "One of the tags already exists in the namespace.".to_string()
                })
            })?;
        Ok(tags)
    }

    pub async fn show_tag(&self, ctx: &AuthContext, name: &str, tag: &str) -> Result<Tag> {
        let ns = self.namespace_for(ctx, name, "get_metadef_tag").await?;
        self.store
            .tag(&ns.id, tag)
            .await?
            .ok_or_else(|| Self::no_tag(&ns, tag))
    }

    pub async fn update_tag(
        &self,
        ctx: &AuthContext,
        name: &str,
        tag: &str,
        body: &Value,
    ) -> Result<Tag> {
        let ns = self.namespace_for(ctx, name, "modify_metadef_tag").await?;
        let current = self
            .store
            .tag(&ns.id, tag)
            .await?
            .ok_or_else(|| Self::no_tag(&ns, tag))?;
        let obj = body_object(body, &["name"])?;
        let new_name = tag_name(&name_attr(obj, "name", 255)?)?;
        let now = now_micros();
        if !self
            .store
            .rename_tag(&ns.id, tag, &new_name, now)
            .await
            .map_err(|e| conflict_or(e, || Self::tag_exists(&ns, &new_name).to_string()))?
        {
            return Err(Self::no_tag(&ns, tag));
        }
        Ok(Tag {
            name: new_name,
            created_at: current.created_at,
            updated_at: now,
        })
    }

    pub async fn delete_tag(&self, ctx: &AuthContext, name: &str, tag: &str) -> Result<()> {
        let ns = self.namespace_for(ctx, name, "delete_metadef_tag").await?;
        if self.store.tag(&ns.id, tag).await?.is_none() {
            return Err(Self::no_tag(&ns, tag));
        }
        if ns.protected {
            return Err(protected(&ns, "tags"));
        }
        if !self.store.delete_named(Kind::Tags, &ns.id, tag).await? {
            return Err(Self::no_tag(&ns, tag));
        }
        Ok(())
    }

    // ---- resource types ----

    pub async fn list_resource_types(&self, ctx: &AuthContext) -> Result<Vec<ResourceType>> {
        self.authorize(ctx, "list_metadef_resource_types", &Self::own_target(ctx))?;
        Ok(self.store.resource_types().await?)
    }

    pub async fn list_associations(
        &self,
        ctx: &AuthContext,
        name: &str,
    ) -> Result<Vec<Association>> {
        let ns = self
            .namespace_for(ctx, name, "get_metadef_resource_type")
            .await?;
        Ok(self.store.associations(&ns.id).await?)
    }

    pub async fn associate(
        &self,
        ctx: &AuthContext,
        name: &str,
        body: &Value,
    ) -> Result<Association> {
        let ns = self
            .namespace_for(ctx, name, "add_metadef_resource_type_association")
            .await?;
        let association = association_from(body, now_micros())?;
        self.store.insert_association(&ns.id, &association).await.map_err(|e| {
            conflict_or(e, || {
                format!(
                    "The metadata definition resource-type association of resource-type={} to namespace={}, already exists.",
                    association.name, ns.namespace
                )
            })
        })?;
        Ok(association)
    }

    pub async fn dissociate(
        &self,
        ctx: &AuthContext,
        name: &str,
        resource_type: &str,
    ) -> Result<()> {
        let ns = self
            .namespace_for(ctx, name, "remove_metadef_resource_type_association")
            .await?;
        let missing = || {
            ImageError::NotFound(format!(
                "The metadata definition resource-type association of resource-type={resource_type} to namespace={}, was not found.",
                ns.namespace
            ))
        };
        if !self.store.resource_type_exists(resource_type).await?
            || !self
                .store
                .associations(&ns.id)
                .await?
                .iter()
                .any(|a| a.name == resource_type)
        {
            return Err(missing());
        }
        if ns.protected {
            return Err(protected(&ns, "resource type associations"));
        }
        if !self.store.delete_association(&ns.id, resource_type).await? {
            return Err(missing());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_definitions_are_checked() {
        let ok = property_definition(
            "hw_x",
            &json!({"type": "string", "title": "X", "enum": ["a"], "name": "hw_x"}),
        )
        .unwrap();
        assert_eq!(ok.get("name"), None, "the name is kept apart");
        assert_eq!(ok["enum"], json!(["a"]));
        assert!(property_definition("p", &json!({"title": "no type"})).is_err());
        assert!(property_definition("p", &json!({"type": "colour", "title": "t"})).is_err());
        assert!(
            property_definition("p", &json!({"type": "string", "title": "t", "bogus": 1})).is_err()
        );
        assert!(property_definition(
            "p",
            &json!({"type": "integer", "title": "t", "minimum": "1"})
        )
        .is_err());
    }

    #[test]
    fn pages_follow_the_marker() {
        let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let items = vec!["c", "a", "b", "d"];
        let page = Page::parse(
            &q(&[("sort_key", "name"), ("sort_dir", "asc"), ("limit", "2")]),
            &["name"],
            None,
        )
        .unwrap();
        let key = |s: &&str, _: &str| SortValue::Text(s.to_string());
        let (first, more) = paginate(items.clone(), &page, key, |s| s).unwrap();
        assert_eq!((first, more), (vec!["a", "b"], true));
        let page = Page {
            marker: Some("b".into()),
            ..page
        };
        let (rest, more) = paginate(items.clone(), &page, key, |s| s).unwrap();
        assert_eq!((rest, more), (vec!["c", "d"], false));
        assert!(Page::parse(&q(&[("sort_dir", "up")]), &["name"], None).is_err());
        assert!(Page::parse(&q(&[("limit", "-1")]), &["name"], None).is_err());
        assert!(Page::parse(&q(&[("sort_key", "owner")]), &["name"], None).is_err());
    }
}
