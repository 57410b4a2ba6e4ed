//! Metadata definitions (`/v2/metadefs/...`): the catalog of properties operators describe
//! for images and other resources, and its schemas under `/v2/schemas/metadefs/*`. Handlers
//! extract, call one [`Metadefs`] method and render Glance's views.

use axum::extract::{Path, Request, State as AxState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use ferrostack_common::api::{op, Api};
use ferrostack_common::time::iso_seconds;
use serde_json::{json, Map, Value};

use super::{json_body, reply, Caller, HttpResult, Query, State};
use crate::metadefs::model::*;
use crate::metadefs::store::Kind;
use crate::metadefs::{schemas, Metadefs};

pub fn routes() -> Api<State> {
    let ns = "/v2/metadefs/namespaces/{namespace}";
    Api::new()
        .get(
            "/v2/metadefs/namespaces",
            op(
                "list_metadef_namespaces",
                "List metadata definition namespaces",
            ),
            list_namespaces,
        )
        .post(
            "/v2/metadefs/namespaces",
            op(
                "create_metadef_namespace",
                "Create a metadata definition namespace",
            )
            .status(201),
            create_namespace,
        )
        .get(
            ns,
            op(
                "show_metadef_namespace",
                "Show a namespace with its contents",
            ),
            show_namespace,
        )
        .put(
            ns,
            op(
                "update_metadef_namespace",
                "Replace a namespace's attributes",
            ),
            update_namespace,
        )
        .delete(
            ns,
            op(
                "delete_metadef_namespace",
                "Delete a namespace and its contents",
            )
            .status(204),
            delete_namespace,
        )
        .get(
            &format!("{ns}/objects"),
            op("list_metadef_objects", "List a namespace's objects"),
            list_objects,
        )
        .post(
            &format!("{ns}/objects"),
            op("create_metadef_object", "Create an object in a namespace").status(201),
            create_object,
        )
        .delete(
            &format!("{ns}/objects"),
            op(
                "delete_metadef_objects",
                "Delete all objects of a namespace",
            )
            .status(204),
            delete_objects,
        )
        .get(
            &format!("{ns}/objects/{{object}}"),
            op("show_metadef_object", "Show an object"),
            show_object,
        )
        .put(
            &format!("{ns}/objects/{{object}}"),
            op("update_metadef_object", "Replace an object"),
            update_object,
        )
        .delete(
            &format!("{ns}/objects/{{object}}"),
            op("delete_metadef_object", "Delete an object").status(204),
            delete_object,
        )
        .get(
            &format!("{ns}/properties"),
            op(
                "list_metadef_properties",
                "List a namespace's property definitions",
            ),
            list_properties,
        )
        .post(
            &format!("{ns}/properties"),
            op("create_metadef_property", "Create a property definition").status(201),
            create_property,
        )
        .delete(
            &format!("{ns}/properties"),
            op(
                "delete_metadef_properties",
                "Delete all property definitions of a namespace",
            )
            .status(204),
            delete_properties,
        )
        .get(
            &format!("{ns}/properties/{{property}}"),
            op("show_metadef_property", "Show a property definition"),
            show_property,
        )
        .put(
            &format!("{ns}/properties/{{property}}"),
            op("update_metadef_property", "Replace a property definition"),
            update_property,
        )
        .delete(
            &format!("{ns}/properties/{{property}}"),
            op("delete_metadef_property", "Delete a property definition").status(204),
            delete_property,
        )
        .get(
            &format!("{ns}/tags"),
            op("list_metadef_tags", "List a namespace's tags"),
            list_tags,
        )
        .post(
            &format!("{ns}/tags"),
            op(
                "create_metadef_tags",
                "Create tags (replacing the others unless X-Openstack-Append)",
            )
            .status(201),
            create_tags,
        )
        .delete(
            &format!("{ns}/tags"),
            op("delete_metadef_tags", "Delete all tags of a namespace").status(204),
            delete_tags,
        )
        .get(
            &format!("{ns}/tags/{{tag}}"),
            op("show_metadef_tag", "Show a tag"),
            show_tag,
        )
        .post(
            &format!("{ns}/tags/{{tag}}"),
            op("create_metadef_tag", "Create a tag").status(201),
            create_tag,
        )
        .put(
            &format!("{ns}/tags/{{tag}}"),
            op("update_metadef_tag", "Rename a tag"),
            update_tag,
        )
        .delete(
            &format!("{ns}/tags/{{tag}}"),
            op("delete_metadef_tag", "Delete a tag").status(204),
            delete_tag,
        )
        .get(
            "/v2/metadefs/resource_types",
            op("list_metadef_resource_types", "List resource types"),
            list_resource_types,
        )
        .get(
            &format!("{ns}/resource_types"),
            op(
                "list_metadef_resource_type_associations",
                "List a namespace's resource type associations",
            ),
            list_associations,
        )
        .post(
            &format!("{ns}/resource_types"),
            op(
                "create_metadef_resource_type_association",
                "Associate a namespace with a resource type",
            )
            .status(201),
            associate,
        )
        .delete(
            &format!("{ns}/resource_types/{{resource_type}}"),
            op(
                "delete_metadef_resource_type_association",
                "Remove a resource type association",
            )
            .status(204),
            dissociate,
        )
        .get(
            "/v2/schemas/metadefs/namespace",
            op("show_metadef_namespace_schema", "Metadefs namespace schema"),
            || async { axum::Json(schemas::namespace()) },
        )
        .get(
            "/v2/schemas/metadefs/namespaces",
            op(
                "show_metadef_namespaces_schema",
                "Metadefs namespace list schema",
            ),
            || async { axum::Json(schemas::namespaces()) },
        )
        .get(
            "/v2/schemas/metadefs/object",
            op("show_metadef_object_schema", "Metadefs object schema"),
            || async { axum::Json(schemas::object()) },
        )
        .get(
            "/v2/schemas/metadefs/objects",
            op("show_metadef_objects_schema", "Metadefs object list schema"),
            || async { axum::Json(schemas::objects()) },
        )
        .get(
            "/v2/schemas/metadefs/property",
            op("show_metadef_property_schema", "Metadefs property schema"),
            || async { axum::Json(schemas::property()) },
        )
        .get(
            "/v2/schemas/metadefs/properties",
            op(
                "show_metadef_properties_schema",
                "Metadefs property list schema",
            ),
            || async { axum::Json(schemas::properties()) },
        )
        .get(
            "/v2/schemas/metadefs/tag",
            op("show_metadef_tag_schema", "Metadefs tag schema"),
            || async { axum::Json(schemas::tag()) },
        )
        .get(
            "/v2/schemas/metadefs/tags",
            op("show_metadef_tags_schema", "Metadefs tag list schema"),
            || async { axum::Json(schemas::tags()) },
        )
        .get(
            "/v2/schemas/metadefs/resource_type",
            op(
                "show_metadef_resource_type_schema",
                "Metadefs resource type association schema",
            ),
            || async { axum::Json(schemas::resource_type_association()) },
        )
        .get(
            "/v2/schemas/metadefs/resource_types",
            op(
                "show_metadef_resource_types_schema",
                "Metadefs resource type association list schema",
            ),
            || async { axum::Json(schemas::resource_type_associations()) },
        )
}

// ---- views ----

fn namespace_href(ns: &Namespace) -> String {
    format!("/v2/metadefs/namespaces/{}", ns.namespace)
}

fn namespace_view(ns: &Namespace) -> Map<String, Value> {
    let mut v = Map::new();
    v.insert("namespace".into(), json!(ns.namespace));
    if let Some(d) = &ns.display_name {
        v.insert("display_name".into(), json!(d));
    }
    if let Some(d) = &ns.description {
        v.insert("description".into(), json!(d));
    }
    v.insert("visibility".into(), json!(ns.visibility));
    v.insert("protected".into(), json!(ns.protected));
    if let Some(o) = &ns.owner {
        v.insert("owner".into(), json!(o));
    }
    v.insert("created_at".into(), json!(iso_seconds(ns.created_at)));
    v.insert("updated_at".into(), json!(iso_seconds(ns.updated_at)));
    v.insert("schema".into(), json!("/v2/schemas/metadefs/namespace"));
    v.insert("self".into(), json!(namespace_href(ns)));
    v
}

fn association_view(a: &Association) -> Value {
    let mut v = json!({"name": a.name, "created_at": iso_seconds(a.created_at), "updated_at": iso_seconds(a.updated_at)});
    if let Some(p) = &a.prefix {
        v["prefix"] = json!(p);
    }
    if let Some(t) = &a.properties_target {
        v["properties_target"] = json!(t);
    }
    v
}

fn object_view(ns: &str, o: &MetaObject) -> Value {
    let mut v = json!({
        "name": o.name,
        "required": o.required,
        "properties": o.properties,
        "schema": "/v2/schemas/metadefs/object",
        "self": format!("/v2/metadefs/namespaces/{ns}/objects/{}", o.name),
        "created_at": iso_seconds(o.created_at),
        "updated_at": iso_seconds(o.updated_at),
    });
    if let Some(d) = &o.description {
        v["description"] = json!(d);
    }
    v
}

fn property_view(p: &Property) -> Value {
    let mut v = p.schema.clone();
    v.insert("name".into(), json!(p.name));
    Value::Object(v)
}

fn properties_view(props: &[Property]) -> Value {
    Value::Object(
        props
            .iter()
            .map(|p| (p.name.clone(), Value::Object(p.schema.clone())))
            .collect(),
    )
}

fn tag_view(t: &Tag) -> Value {
    json!({"name": t.name, "created_at": iso_seconds(t.created_at), "updated_at": iso_seconds(t.updated_at)})
}

fn detail_view(d: &NamespaceDetail) -> Value {
    let mut v = namespace_view(&d.namespace);
    if !d.associations.is_empty() {
        v.insert(
            "resource_type_associations".into(),
            d.associations.iter().map(association_view).collect(),
        );
    }
    if !d.objects.is_empty() {
        v.insert(
            "objects".into(),
            d.objects
                .iter()
                .map(|o| object_view(&d.namespace.namespace, o))
                .collect(),
        );
    }
    if !d.properties.is_empty() {
        v.insert("properties".into(), properties_view(&d.properties));
    }
    if !d.tags.is_empty() {
        v.insert(
            "tags".into(),
            d.tags.iter().map(|t| json!({"name": t.name})).collect(),
        );
    }
    Value::Object(v)
}

/// `path?query` keeping the client's parameters, with the marker replaced.
fn page_link(path: &str, q: &[(String, String)], marker: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(q.iter().filter(|(k, _)| k != "marker"));
    if let Some(m) = marker {
        query.append_pair("marker", m);
    }
    let query = query.finish();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

fn param<'q>(q: &'q [(String, String)], key: &str) -> Option<&'q str> {
    q.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn no_content() -> HttpResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- namespaces ----

async fn list_namespaces(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Query(q): Query,
) -> HttpResult {
    let (items, more) = Metadefs::new(&s).list_namespaces(&ctx, &q).await?;
    let path = "/v2/metadefs/namespaces";
    let mut body = json!({
        "namespaces": items.iter().map(|(ns, assoc)| {
            let mut v = namespace_view(ns);
            if !assoc.is_empty() {
                v.insert("resource_type_associations".into(), assoc.iter().map(association_view).collect());
            }
            Value::Object(v)
        }).collect::<Vec<_>>(),
        "schema": "/v2/schemas/metadefs/namespaces",
        "first": page_link(path, &q, None),
    });
    if more {
        if let Some((last, _)) = items.last() {
            body["next"] = json!(page_link(path, &q, Some(&last.namespace)));
        }
    }
    reply(StatusCode::OK, body)
}

async fn create_namespace(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    req: Request,
) -> HttpResult {
    let body = json_body(req).await?;
    let detail = Metadefs::new(&s).create_namespace(&ctx, &body).await?;
    let mut resp = (StatusCode::CREATED, axum::Json(detail_view(&detail))).into_response();
    if let Ok(v) = namespace_href(&detail.namespace).parse() {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

async fn show_namespace(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(ns): Path<String>,
    Query(q): Query,
) -> HttpResult {
    let detail = Metadefs::new(&s)
        .show_namespace(&ctx, &ns, param(&q, "resource_type"))
        .await?;
    reply(StatusCode::OK, detail_view(&detail))
}

async fn update_namespace(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(ns): Path<String>,
    req: Request,
) -> HttpResult {
    let body = json_body(req).await?;
    let updated = Metadefs::new(&s).update_namespace(&ctx, &ns, &body).await?;
    reply(StatusCode::OK, Value::Object(namespace_view(&updated)))
}

async fn delete_namespace(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(ns): Path<String>,
) -> HttpResult {
    Metadefs::new(&s).delete_namespace(&ctx, &ns).await?;
    no_content()
}

// ---- objects ----

async fn list_objects(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(ns): Path<String>,
    Query(q): Query,
) -> HttpResult {
    let (objects, more) = Metadefs::new(&s).list_objects(&ctx, &ns, &q).await?;
    // Glance writes this link without its leading slash; clients only display it.
    let mut body = json!({
        "objects": objects.iter().map(|o| object_view(&ns, o)).collect::<Vec<_>>(),
        "schema": "v2/schemas/metadefs/objects",
    });
    if more {
        if let Some(last) = objects.last() {
            body["next"] = json!(page_link(
                &format!("/v2/metadefs/namespaces/{ns}/objects"),
                &q,
                Some(&last.name)
            ));
        }
    }
    reply(StatusCode::OK, body)
}

async fn create_object(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(ns): Path<String>,
    req: Request,
) -> HttpResult {
    let body = json_body(req).await?;
    let object = Metadefs::new(&s).create_object(&ctx, &ns, &body).await?;
    reply(StatusCode::CREATED, object_view(&ns, &object))
}

async fn delete_objects(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(ns): Path<String>,
) -> HttpResult {
    Metadefs::new(&s)
        .delete_contents(&ctx, &ns, Kind::Objects)
        .await?;
    no_content()
}

async fn show_object(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path((ns, object)): Path<(String, String)>,
) -> HttpResult {
    let o = Metadefs::new(&s).show_object(&ctx, &ns, &object).await?;
    reply(StatusCode::OK, object_view(&ns, &o))
}

async fn update_object(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path((ns, object)): Path<(String, String)>,
    req: Request,
) -> HttpResult {
    let body = json_body(req).await?;
    let o = Metadefs::new(&s)
        .update_object(&ctx, &ns, &object, &body)
        .await?;
    reply(StatusCode::OK, object_view(&ns, &o))
}

async fn delete_object(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path((ns, object)): Path<(String, String)>,
) -> HttpResult {
    Metadefs::new(&s).delete_object(&ctx, &ns, &object).await?;
    no_content()
}

// ---- properties ----

async fn list_properties(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(ns): Path<String>,
) -> HttpResult {
    let props = Metadefs::new(&s).list_properties(&ctx, &ns).await?;
    reply(
        StatusCode::OK,
        json!({"properties": properties_view(&props)}),
    )
}

async fn create_property(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(ns): Path<String>,
    req: Request,
) -> HttpResult {
    let body = json_body(req).await?;
    let p = Metadefs::new(&s).create_property(&ctx, &ns, &body).await?;
    reply(StatusCode::CREATED, property_view(&p))
}

async fn delete_properties(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(ns): Path<String>,
) -> HttpResult {
    Metadefs::new(&s)
        .delete_contents(&ctx, &ns, Kind::Properties)
        .await?;
    no_content()
}

async fn show_property(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path((ns, property)): Path<(String, String)>,
    Query(q): Query,
) -> HttpResult {
    let p = Metadefs::new(&s)
        .show_property(&ctx, &ns, &property, param(&q, "resource_type"))
        .await?;
    reply(StatusCode::OK, property_view(&p))
}

async fn update_property(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path((ns, property)): Path<(String, String)>,
    req: Request,
) -> HttpResult {
    let body = json_body(req).await?;
    let p = Metadefs::new(&s)
        .update_property(&ctx, &ns, &property, &body)
        .await?;
    reply(StatusCode::OK, property_view(&p))
}

async fn delete_property(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path((ns, property)): Path<(String, String)>,
) -> HttpResult {
    Metadefs::new(&s)
        .delete_property(&ctx, &ns, &property)
        .await?;
    no_content()
}

// ---- tags ----

async fn list_tags(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(ns): Path<String>,
    Query(q): Query,
) -> HttpResult {
    let (tags, more) = Metadefs::new(&s).list_tags(&ctx, &ns, &q).await?;
    let mut body = json!({"tags": tags.iter().map(tag_view).collect::<Vec<_>>()});
    if more {
        if let Some(last) = tags.last() {
            body["next"] = json!(page_link(
                &format!("/v2/metadefs/namespaces/{ns}/tags"),
                &q,
                Some(&last.name)
            ));
        }
    }
    reply(StatusCode::OK, body)
}

/// `X-Openstack-Append` read as oslo's `bool_from_string`.
fn append_header(headers: &HeaderMap) -> bool {
    headers
        .get("x-openstack-append")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "t" | "true" | "on" | "y" | "yes"
            )
        })
}

async fn create_tags(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(ns): Path<String>,
    req: Request,
) -> HttpResult {
    let append = append_header(req.headers());
    let body = json_body(req).await?;
    let tags = Metadefs::new(&s)
        .create_tags(&ctx, &ns, &body, append)
        .await?;
    reply(
        StatusCode::CREATED,
        json!({"tags": tags.iter().map(|t| json!({"name": t.name})).collect::<Vec<_>>()}),
    )
}

async fn delete_tags(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(ns): Path<String>,
) -> HttpResult {
    Metadefs::new(&s)
        .delete_contents(&ctx, &ns, Kind::Tags)
        .await?;
    no_content()
}

async fn show_tag(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path((ns, tag)): Path<(String, String)>,
) -> HttpResult {
    let t = Metadefs::new(&s).show_tag(&ctx, &ns, &tag).await?;
    reply(StatusCode::OK, tag_view(&t))
}

async fn create_tag(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path((ns, tag)): Path<(String, String)>,
) -> HttpResult {
    let t = Metadefs::new(&s).create_tag(&ctx, &ns, &tag).await?;
    reply(StatusCode::CREATED, tag_view(&t))
}

async fn update_tag(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path((ns, tag)): Path<(String, String)>,
    req: Request,
) -> HttpResult {
    let body = json_body(req).await?;
    let t = Metadefs::new(&s).update_tag(&ctx, &ns, &tag, &body).await?;
    reply(StatusCode::OK, tag_view(&t))
}

async fn delete_tag(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path((ns, tag)): Path<(String, String)>,
) -> HttpResult {
    Metadefs::new(&s).delete_tag(&ctx, &ns, &tag).await?;
    no_content()
}

// ---- resource types ----

async fn list_resource_types(AxState(s): AxState<State>, Caller(ctx): Caller) -> HttpResult {
    let types = Metadefs::new(&s).list_resource_types(&ctx).await?;
    reply(
        StatusCode::OK,
        json!({"resource_types": types.iter().map(|t| json!({
            "name": t.name, "created_at": iso_seconds(t.created_at), "updated_at": iso_seconds(t.updated_at)
        })).collect::<Vec<_>>()}),
    )
}

async fn list_associations(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(ns): Path<String>,
) -> HttpResult {
    let list = Metadefs::new(&s).list_associations(&ctx, &ns).await?;
    reply(
        StatusCode::OK,
        json!({"resource_type_associations": list.iter().map(association_view).collect::<Vec<_>>()}),
    )
}

async fn associate(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path(ns): Path<String>,
    req: Request,
) -> HttpResult {
    let body = json_body(req).await?;
    let a = Metadefs::new(&s).associate(&ctx, &ns, &body).await?;
    reply(StatusCode::CREATED, association_view(&a))
}

async fn dissociate(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    Path((ns, resource_type)): Path<(String, String)>,
) -> HttpResult {
    Metadefs::new(&s)
        .dissociate(&ctx, &ns, &resource_type)
        .await?;
    no_content()
}
