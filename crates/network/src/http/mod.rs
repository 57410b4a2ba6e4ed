//! The Networking API v2.0 over HTTP, mounted under `/networking` (as DevStack serves
//! Neutron). Handlers extract (caller, query, body), call one service method and wrap the
//! answer in Neutron's envelope; lists go through [`crate::listing`] for filters, fields,
//! sorting and paging.

use std::sync::Arc;

use axum::extract::{FromRequestParts, OriginalUri, Path, Request, State as AxState};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use ferrostack_common::api::{op, Api};
use ferrostack_common::AuthContext;
use serde_json::{json, Value};

use crate::error::NetworkError;
use crate::extensions;
use crate::listing::ListQuery;
use crate::service::tags::Tagged;
use crate::service::NetworkService;

pub type State = Arc<NetworkService>;
type HttpResult = Result<Response, NetworkError>;

/// The authenticated caller, from `X-Auth-Token`.
pub struct Caller(pub Arc<AuthContext>);

impl FromRequestParts<State> for Caller {
    type Rejection = NetworkError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(NetworkError::unauthorized)?;
        state
            .auth
            .authenticate(token)
            .await
            .map(Caller)
            .ok_or_else(NetworkError::unauthorized)
    }
}

/// The query pairs in order, and the URL of the collection for pagination links.
pub struct Query {
    pub pairs: Vec<(String, String)>,
    pub url: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = NetworkError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let pairs = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map(|u| u.0.path().to_string())
            .unwrap_or_else(|| parts.uri.path().to_string());
        Ok(Query {
            pairs,
            url: format!("{}{path}", origin(&parts.headers)),
        })
    }
}

/// `scheme://host` as the client addressed us.
fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("http");
    format!("{proto}://{host}")
}

async fn json_body(req: Request) -> Result<Value, NetworkError> {
    let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|_| NetworkError::bad_request("The request body is too large."))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(NetworkError::bad_request("Resource body required"));
    }
    serde_json::from_slice(&bytes).map_err(|_| NetworkError::bad_request("Malformed request body"))
}

fn reply(status: StatusCode, body: Value) -> HttpResult {
    Ok((status, axum::Json(body)).into_response())
}

fn no_content() -> HttpResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A list answer: filtered, sorted, paged and trimmed to the requested fields.
fn list_reply(state: &State, collection: &str, items: Vec<Value>, q: &Query) -> HttpResult {
    let query = ListQuery::parse(&q.pairs, state.config.pagination_max_limit)?;
    let (page, more) = query.apply(items)?;
    let links = query.links(&q.url, &page, more);
    let page: Vec<Value> = page.into_iter().map(|v| query.select(v)).collect();
    let mut body = json!({ collection: page });
    if !links.is_empty() {
        body[format!("{collection}_links")] = json!(links);
    }
    reply(StatusCode::OK, body)
}

fn show_reply(member: &str, item: Value, q: &Query) -> HttpResult {
    let query = ListQuery::parse(&q.pairs, 0)?;
    reply(StatusCode::OK, json!({ member: query.select(item) }))
}

/// Handlers for one collection, from its service methods.
macro_rules! resource {
    ($module:ident, $member:literal, $collection:literal, $list:ident, $show:ident, $create:ident, $update:ident, $delete:ident) => {
        mod $module {
            use super::*;

            pub async fn list(AxState(s): AxState<State>, Caller(ctx): Caller, q: Query) -> HttpResult {
                let items = s.$list(&ctx).await?;
                list_reply(&s, $collection, items, &q)
            }

            pub async fn show(AxState(s): AxState<State>, Caller(ctx): Caller, Path(id): Path<String>, q: Query) -> HttpResult {
                show_reply($member, s.$show(&ctx, &id).await?, &q)
            }

            /// One resource, or several at once (`{"<collection>": [...]}`, Neutron's bulk
            /// create, made one by one).
            pub async fn create(AxState(s): AxState<State>, Caller(ctx): Caller, req: Request) -> HttpResult {
                let body = json_body(req).await?;
                if let Some(items) = body.get($collection).and_then(Value::as_array) {
                    let mut made = Vec::new();
                    for item in items {
                        made.push(s.$create(&ctx, &json!({ $member: item })).await?);
                    }
                    return reply(StatusCode::CREATED, json!({ $collection: made }));
                }
                reply(StatusCode::CREATED, json!({ $member: s.$create(&ctx, &body).await? }))
            }

            pub async fn update(AxState(s): AxState<State>, Caller(ctx): Caller, Path(id): Path<String>, req: Request) -> HttpResult {
                let body = json_body(req).await?;
                reply(StatusCode::OK, json!({ $member: s.$update(&ctx, &id, &body).await? }))
            }

            pub async fn delete(AxState(s): AxState<State>, Caller(ctx): Caller, Path(id): Path<String>) -> HttpResult {
                s.$delete(&ctx, &id).await?;
                no_content()
            }
        }
    };
}

resource!(
    networks,
    "network",
    "networks",
    list_networks,
    show_network,
    create_network,
    update_network,
    delete_network
);
resource!(
    subnets,
    "subnet",
    "subnets",
    list_subnets,
    show_subnet,
    create_subnet,
    update_subnet,
    delete_subnet
);
resource!(
    ports,
    "port",
    "ports",
    list_ports,
    show_port,
    create_port,
    update_port,
    delete_port
);
resource!(
    routers,
    "router",
    "routers",
    list_routers,
    show_router,
    create_router,
    update_router,
    delete_router
);
resource!(
    floating_ips,
    "floatingip",
    "floatingips",
    list_floating_ips,
    show_floating_ip,
    create_floating_ip,
    update_floating_ip,
    delete_floating_ip
);
resource!(
    subnet_pools,
    "subnetpool",
    "subnetpools",
    list_subnet_pools,
    show_subnet_pool,
    create_subnet_pool,
    update_subnet_pool,
    delete_subnet_pool
);
resource!(
    address_scopes,
    "address_scope",
    "address_scopes",
    list_address_scopes,
    show_address_scope,
    create_address_scope,
    update_address_scope,
    delete_address_scope
);
resource!(
    rbac_policies,
    "rbac_policy",
    "rbac_policies",
    list_rbac_policies,
    show_rbac_policy,
    create_rbac_policy,
    update_rbac_policy,
    delete_rbac_policy
);
resource!(
    security_groups,
    "security_group",
    "security_groups",
    list_security_groups,
    show_security_group,
    create_security_group,
    update_security_group,
    delete_security_group
);

mod agents {
    use super::*;

    pub async fn list(AxState(s): AxState<State>, Caller(ctx): Caller, q: Query) -> HttpResult {
        let items = s.list_agents(&ctx).await?;
        list_reply(&s, "agents", items, &q)
    }

    pub async fn show(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path(id): Path<String>,
        q: Query,
    ) -> HttpResult {
        show_reply("agent", s.show_agent(&ctx, &id).await?, &q)
    }

    pub async fn update(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path(id): Path<String>,
        req: Request,
    ) -> HttpResult {
        let body = json_body(req).await?;
        reply(
            StatusCode::OK,
            json!({"agent": s.update_agent(&ctx, &id, &body).await?}),
        )
    }

    pub async fn delete(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path(id): Path<String>,
    ) -> HttpResult {
        s.delete_agent(&ctx, &id).await?;
        no_content()
    }
}

mod ip_availability {
    use super::*;

    /// `ip_version` filters the subnets counted (not an attribute of the view).
    fn ip_versions(q: &Query) -> Vec<i64> {
        q.pairs
            .iter()
            .filter(|(k, _)| k == "ip_version")
            .filter_map(|(_, v)| v.parse().ok())
            .collect()
    }

    pub async fn list(AxState(s): AxState<State>, Caller(ctx): Caller, q: Query) -> HttpResult {
        let items = s
            .list_network_ip_availabilities(&ctx, &ip_versions(&q))
            .await?;
        list_reply(&s, "network_ip_availabilities", items, &q)
    }

    pub async fn show(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path(id): Path<String>,
        q: Query,
    ) -> HttpResult {
        show_reply(
            "network_ip_availability",
            s.show_network_ip_availability(&ctx, &id).await?,
            &q,
        )
    }
}

async fn list_availability_zones(
    AxState(s): AxState<State>,
    Caller(ctx): Caller,
    q: Query,
) -> HttpResult {
    let items = s.list_availability_zones(&ctx).await?;
    list_reply(&s, "availability_zones", items, &q)
}

mod port_forwardings {
    use super::*;

    pub async fn list(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path(fip): Path<String>,
        q: Query,
    ) -> HttpResult {
        let items = s.list_port_forwardings(&ctx, &fip).await?;
        list_reply(&s, "port_forwardings", items, &q)
    }

    pub async fn show(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path((fip, id)): Path<(String, String)>,
        q: Query,
    ) -> HttpResult {
        show_reply(
            "port_forwarding",
            s.show_port_forwarding(&ctx, &fip, &id).await?,
            &q,
        )
    }

    pub async fn create(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path(fip): Path<String>,
        req: Request,
    ) -> HttpResult {
        let body = json_body(req).await?;
        let pf = s.create_port_forwarding(&ctx, &fip, &body).await?;
        reply(StatusCode::CREATED, json!({ "port_forwarding": pf }))
    }

    pub async fn update(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path((fip, id)): Path<(String, String)>,
        req: Request,
    ) -> HttpResult {
        let body = json_body(req).await?;
        let pf = s.update_port_forwarding(&ctx, &fip, &id, &body).await?;
        reply(StatusCode::OK, json!({ "port_forwarding": pf }))
    }

    pub async fn delete(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path((fip, id)): Path<(String, String)>,
    ) -> HttpResult {
        s.delete_port_forwarding(&ctx, &fip, &id).await?;
        no_content()
    }
}

mod interfaces {
    use super::*;

    pub async fn add(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path(id): Path<String>,
        req: Request,
    ) -> HttpResult {
        let body = json_body(req).await?;
        reply(
            StatusCode::OK,
            s.add_router_interface(&ctx, &id, &body).await?,
        )
    }

    pub async fn remove(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path(id): Path<String>,
        req: Request,
    ) -> HttpResult {
        let body = json_body(req).await?;
        reply(
            StatusCode::OK,
            s.remove_router_interface(&ctx, &id, &body).await?,
        )
    }
}

mod rules {
    use super::*;

    pub async fn list(AxState(s): AxState<State>, Caller(ctx): Caller, q: Query) -> HttpResult {
        let items = s.list_security_group_rules(&ctx).await?;
        list_reply(&s, "security_group_rules", items, &q)
    }

    pub async fn show(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path(id): Path<String>,
        q: Query,
    ) -> HttpResult {
        show_reply(
            "security_group_rule",
            s.show_security_group_rule(&ctx, &id).await?,
            &q,
        )
    }

    pub async fn create(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        req: Request,
    ) -> HttpResult {
        let body = json_body(req).await?;
        if let Some(items) = body.get("security_group_rules").and_then(Value::as_array) {
            let mut made = Vec::new();
            for item in items {
                made.push(
                    s.create_security_group_rule(&ctx, &json!({"security_group_rule": item}))
                        .await?,
                );
            }
            return reply(StatusCode::CREATED, json!({"security_group_rules": made}));
        }
        reply(
            StatusCode::CREATED,
            json!({"security_group_rule": s.create_security_group_rule(&ctx, &body).await?}),
        )
    }

    pub async fn delete(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path(id): Path<String>,
    ) -> HttpResult {
        s.delete_security_group_rule(&ctx, &id).await?;
        no_content()
    }
}

mod default_rules {
    use super::*;

    pub async fn list(AxState(s): AxState<State>, Caller(ctx): Caller, q: Query) -> HttpResult {
        let items = s.list_default_rules(&ctx).await?;
        list_reply(&s, "default_security_group_rules", items, &q)
    }

    pub async fn show(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path(id): Path<String>,
        q: Query,
    ) -> HttpResult {
        show_reply(
            "default_security_group_rule",
            s.show_default_rule(&ctx, &id).await?,
            &q,
        )
    }

    pub async fn create(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        req: Request,
    ) -> HttpResult {
        let body = json_body(req).await?;
        reply(
            StatusCode::CREATED,
            json!({"default_security_group_rule": s.create_default_rule(&ctx, &body).await?}),
        )
    }

    pub async fn delete(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path(id): Path<String>,
    ) -> HttpResult {
        s.delete_default_rule(&ctx, &id).await?;
        no_content()
    }
}

mod tags {
    use super::*;
    use axum::http::Uri;

    /// Which collection a tag route is under: the segment after `/v2.0/`.
    fn kind(uri: &Uri) -> Result<Tagged, NetworkError> {
        uri.path()
            .split('/')
            .skip_while(|s| *s != "v2.0")
            .nth(1)
            .and_then(Tagged::from_collection)
            .ok_or_else(|| {
                NetworkError::not_found("HTTPNotFound", "The resource could not be found.")
            })
    }

    fn tag_list(body: &Value) -> Result<Vec<String>, NetworkError> {
        let tags = body
            .get("tags")
            .and_then(Value::as_array)
            .ok_or_else(|| NetworkError::invalid("Invalid tags body"))?;
        tags.iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| NetworkError::invalid(format!("'{t}' is not a valid string")))
            })
            .collect()
    }

    pub async fn list(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path(id): Path<String>,
        uri: Uri,
    ) -> HttpResult {
        reply(
            StatusCode::OK,
            json!({"tags": s.tags(&ctx, kind(&uri)?, &id).await?}),
        )
    }

    pub async fn replace(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path(id): Path<String>,
        uri: Uri,
        req: Request,
    ) -> HttpResult {
        let tags = tag_list(&json_body(req).await?)?;
        reply(
            StatusCode::OK,
            json!({"tags": s.replace_tags(&ctx, kind(&uri)?, &id, tags).await?}),
        )
    }

    pub async fn clear(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path(id): Path<String>,
        uri: Uri,
    ) -> HttpResult {
        s.clear_tags(&ctx, kind(&uri)?, &id).await?;
        no_content()
    }

    pub async fn check(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path((id, tag)): Path<(String, String)>,
        uri: Uri,
    ) -> HttpResult {
        s.has_tag(&ctx, kind(&uri)?, &id, &tag).await?;
        no_content()
    }

    pub async fn add(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path((id, tag)): Path<(String, String)>,
        uri: Uri,
    ) -> HttpResult {
        s.add_tag(&ctx, kind(&uri)?, &id, &tag).await?;
        Ok(StatusCode::CREATED.into_response())
    }

    pub async fn remove(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path((id, tag)): Path<(String, String)>,
        uri: Uri,
    ) -> HttpResult {
        s.remove_tag(&ctx, kind(&uri)?, &id, &tag).await?;
        no_content()
    }
}

mod quotas {
    use super::*;

    pub async fn list(AxState(s): AxState<State>, Caller(ctx): Caller) -> HttpResult {
        reply(
            StatusCode::OK,
            json!({"quotas": s.list_quotas(&ctx).await?}),
        )
    }

    pub async fn show(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path(p): Path<String>,
    ) -> HttpResult {
        reply(
            StatusCode::OK,
            json!({"quota": s.show_quota(&ctx, &p).await?}),
        )
    }

    pub async fn defaults(
        AxState(s): AxState<State>,
        Caller(_): Caller,
        Path(_p): Path<String>,
    ) -> HttpResult {
        reply(StatusCode::OK, json!({"quota": s.default_quota()}))
    }

    pub async fn details(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path(p): Path<String>,
    ) -> HttpResult {
        reply(
            StatusCode::OK,
            json!({"quota": s.quota_details(&ctx, &p).await?}),
        )
    }

    pub async fn update(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path(p): Path<String>,
        req: Request,
    ) -> HttpResult {
        let body = json_body(req).await?;
        reply(
            StatusCode::OK,
            json!({"quota": s.update_quota(&ctx, &p, &body).await?}),
        )
    }

    pub async fn delete(
        AxState(s): AxState<State>,
        Caller(ctx): Caller,
        Path(p): Path<String>,
    ) -> HttpResult {
        s.delete_quota(&ctx, &p).await?;
        no_content()
    }

    /// The caller's own project (`GET /v2.0/quotas/project`, and `tenant` as before).
    pub async fn own_project(Caller(ctx): Caller) -> HttpResult {
        let p = ctx.project_id().unwrap_or_default();
        reply(StatusCode::OK, json!({"project": {"project_id": p}}))
    }

    pub async fn own_tenant(Caller(ctx): Caller) -> HttpResult {
        let p = ctx.project_id().unwrap_or_default();
        reply(StatusCode::OK, json!({"tenant": {"tenant_id": p}}))
    }
}

fn extension_view(e: &extensions::Extension) -> Value {
    json!({"alias": e.alias, "name": e.name, "description": e.description, "updated": e.updated, "links": []})
}

async fn list_extensions(Caller(_): Caller) -> HttpResult {
    reply(
        StatusCode::OK,
        json!({"extensions": extensions::EXTENSIONS.iter().map(extension_view).collect::<Vec<_>>()}),
    )
}

async fn show_extension(Caller(_): Caller, Path(alias): Path<String>) -> HttpResult {
    match extensions::find(&alias) {
        Some(e) => reply(StatusCode::OK, json!({"extension": extension_view(e)})),
        None => Err(NetworkError::not_found(
            "ExtensionNotFound",
            format!("Extension with alias {alias} does not exist"),
        )),
    }
}

async fn versions(q: Query) -> HttpResult {
    let base = q.url.trim_end_matches('/').to_string();
    reply(
        StatusCode::OK,
        json!({"versions": [{"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": format!("{base}/v2.0/")}]}]}),
    )
}

async fn resources(Caller(_): Caller, q: Query) -> HttpResult {
    let base = q.url.trim_end_matches('/').to_string();
    let list: Vec<Value> = [("subnet", "subnets"), ("network", "networks"), ("port", "ports")]
        .iter()
        .map(|(name, collection)| json!({"name": name, "collection": collection, "links": [{"rel": "self", "href": format!("{base}/{collection}")}]}))
        .collect();
    reply(StatusCode::OK, json!({"resources": list}))
}

pub fn api() -> Api<State> {
    let mut api = Api::new()
        .get(
            "/",
            op("list_versions", "List Networking API versions").public(),
            versions,
        )
        .get(
            "/v2.0",
            op("list_resources", "List the core resources of API v2.0"),
            resources,
        )
        .get(
            "/v2.0/extensions",
            op("list_extensions", "List extensions"),
            list_extensions,
        )
        .get(
            "/v2.0/extensions/{alias}",
            op("show_extension", "Show an extension"),
            show_extension,
        )
        .get(
            "/v2.0/networks",
            op("list_networks", "List networks"),
            networks::list,
        )
        .post(
            "/v2.0/networks",
            op("create_network", "Create a network (or several)").status(201),
            networks::create,
        )
        .get(
            "/v2.0/networks/{id}",
            op("show_network", "Show a network"),
            networks::show,
        )
        .put(
            "/v2.0/networks/{id}",
            op("update_network", "Update a network"),
            networks::update,
        )
        .delete(
            "/v2.0/networks/{id}",
            op("delete_network", "Delete a network").status(204),
            networks::delete,
        )
        .get(
            "/v2.0/subnets",
            op("list_subnets", "List subnets"),
            subnets::list,
        )
        .post(
            "/v2.0/subnets",
            op("create_subnet", "Create a subnet (or several)").status(201),
            subnets::create,
        )
        .get(
            "/v2.0/subnets/{id}",
            op("show_subnet", "Show a subnet"),
            subnets::show,
        )
        .put(
            "/v2.0/subnets/{id}",
            op("update_subnet", "Update a subnet"),
            subnets::update,
        )
        .delete(
            "/v2.0/subnets/{id}",
            op("delete_subnet", "Delete a subnet").status(204),
            subnets::delete,
        )
        .get("/v2.0/ports", op("list_ports", "List ports"), ports::list)
        .post(
            "/v2.0/ports",
            op("create_port", "Create a port (or several)").status(201),
            ports::create,
        )
        .get(
            "/v2.0/ports/{id}",
            op("show_port", "Show a port"),
            ports::show,
        )
        .put(
            "/v2.0/ports/{id}",
            op("update_port", "Update a port"),
            ports::update,
        )
        .delete(
            "/v2.0/ports/{id}",
            op("delete_port", "Delete a port").status(204),
            ports::delete,
        )
        .get(
            "/v2.0/security-groups",
            op("list_security_groups", "List security groups"),
            security_groups::list,
        )
        .post(
            "/v2.0/security-groups",
            op("create_security_group", "Create a security group").status(201),
            security_groups::create,
        )
        .get(
            "/v2.0/security-groups/{id}",
            op("show_security_group", "Show a security group"),
            security_groups::show,
        )
        .put(
            "/v2.0/security-groups/{id}",
            op("update_security_group", "Update a security group"),
            security_groups::update,
        )
        .delete(
            "/v2.0/security-groups/{id}",
            op("delete_security_group", "Delete a security group").status(204),
            security_groups::delete,
        )
        .get(
            "/v2.0/security-group-rules",
            op("list_security_group_rules", "List security group rules"),
            rules::list,
        )
        .post(
            "/v2.0/security-group-rules",
            op("create_security_group_rule", "Create a security group rule").status(201),
            rules::create,
        )
        .get(
            "/v2.0/security-group-rules/{id}",
            op("show_security_group_rule", "Show a security group rule"),
            rules::show,
        )
        .delete(
            "/v2.0/security-group-rules/{id}",
            op("delete_security_group_rule", "Delete a security group rule").status(204),
            rules::delete,
        )
        .get(
            "/v2.0/routers",
            op("list_routers", "List routers"),
            routers::list,
        )
        .post(
            "/v2.0/routers",
            op("create_router", "Create a router").status(201),
            routers::create,
        )
        .get(
            "/v2.0/routers/{id}",
            op("show_router", "Show a router"),
            routers::show,
        )
        .put(
            "/v2.0/routers/{id}",
            op("update_router", "Update a router (gateway, routes)"),
            routers::update,
        )
        .delete(
            "/v2.0/routers/{id}",
            op("delete_router", "Delete a router").status(204),
            routers::delete,
        )
        .put(
            "/v2.0/routers/{id}/add_router_interface",
            op(
                "add_router_interface",
                "Attach a subnet or port to a router",
            ),
            interfaces::add,
        )
        .put(
            "/v2.0/routers/{id}/remove_router_interface",
            op(
                "remove_router_interface",
                "Detach a subnet or port from a router",
            ),
            interfaces::remove,
        )
        .get(
            "/v2.0/floatingips",
            op("list_floatingips", "List floating IPs"),
            floating_ips::list,
        )
        .post(
            "/v2.0/floatingips",
            op("create_floatingip", "Create a floating IP").status(201),
            floating_ips::create,
        )
        .get(
            "/v2.0/floatingips/{id}",
            op("show_floatingip", "Show a floating IP"),
            floating_ips::show,
        )
        .put(
            "/v2.0/floatingips/{id}",
            op(
                "update_floatingip",
                "Associate, disassociate or update a floating IP",
            ),
            floating_ips::update,
        )
        .delete(
            "/v2.0/floatingips/{id}",
            op("delete_floatingip", "Delete a floating IP").status(204),
            floating_ips::delete,
        )
        .get(
            "/v2.0/floatingips/{id}/port_forwardings",
            op(
                "list_floatingip_port_forwardings",
                "List a floating IP's port forwardings",
            ),
            port_forwardings::list,
        )
        .post(
            "/v2.0/floatingips/{id}/port_forwardings",
            op(
                "create_floatingip_port_forwarding",
                "Forward a port of a floating IP",
            )
            .status(201),
            port_forwardings::create,
        )
        .get(
            "/v2.0/floatingips/{id}/port_forwardings/{pf_id}",
            op("show_floatingip_port_forwarding", "Show a port forwarding"),
            port_forwardings::show,
        )
        .put(
            "/v2.0/floatingips/{id}/port_forwardings/{pf_id}",
            op(
                "update_floatingip_port_forwarding",
                "Update a port forwarding",
            ),
            port_forwardings::update,
        )
        .delete(
            "/v2.0/floatingips/{id}/port_forwardings/{pf_id}",
            op(
                "delete_floatingip_port_forwarding",
                "Delete a port forwarding",
            )
            .status(204),
            port_forwardings::delete,
        )
        .get(
            "/v2.0/subnetpools",
            op("list_subnetpools", "List subnet pools"),
            subnet_pools::list,
        )
        .post(
            "/v2.0/subnetpools",
            op("create_subnetpool", "Create a subnet pool").status(201),
            subnet_pools::create,
        )
        .get(
            "/v2.0/subnetpools/{id}",
            op("show_subnetpool", "Show a subnet pool"),
            subnet_pools::show,
        )
        .put(
            "/v2.0/subnetpools/{id}",
            op("update_subnetpool", "Update a subnet pool"),
            subnet_pools::update,
        )
        .delete(
            "/v2.0/subnetpools/{id}",
            op("delete_subnetpool", "Delete a subnet pool").status(204),
            subnet_pools::delete,
        )
        .get(
            "/v2.0/address-scopes",
            op("list_address_scopes", "List address scopes"),
            address_scopes::list,
        )
        .post(
            "/v2.0/address-scopes",
            op("create_address_scope", "Create an address scope").status(201),
            address_scopes::create,
        )
        .get(
            "/v2.0/address-scopes/{id}",
            op("show_address_scope", "Show an address scope"),
            address_scopes::show,
        )
        .put(
            "/v2.0/address-scopes/{id}",
            op(
                "update_address_scope",
                "Update an address scope's name or share it",
            ),
            address_scopes::update,
        )
        .delete(
            "/v2.0/address-scopes/{id}",
            op(
                "delete_address_scope",
                "Delete an address scope without pools",
            )
            .status(204),
            address_scopes::delete,
        )
        .get(
            "/v2.0/default-security-group-rules",
            op(
                "list_default_security_group_rules",
                "List the default security group rules template",
            ),
            default_rules::list,
        )
        .post(
            "/v2.0/default-security-group-rules",
            op(
                "create_default_security_group_rule",
                "Add a rule to the template (administrators)",
            )
            .status(201),
            default_rules::create,
        )
        .get(
            "/v2.0/default-security-group-rules/{id}",
            op("show_default_security_group_rule", "Show a template rule"),
            default_rules::show,
        )
        .delete(
            "/v2.0/default-security-group-rules/{id}",
            op(
                "delete_default_security_group_rule",
                "Remove a rule from the template (administrators)",
            )
            .status(204),
            default_rules::delete,
        )
        .get(
            "/v2.0/agents",
            op(
                "list_agents",
                "List agents (administrators; others see none)",
            ),
            agents::list,
        )
        .get(
            "/v2.0/agents/{id}",
            op("show_agent", "Show an agent (administrators)"),
            agents::show,
        )
        .put(
            "/v2.0/agents/{id}",
            op(
                "update_agent",
                "Update an agent's description (administrators)",
            ),
            agents::update,
        )
        .delete(
            "/v2.0/agents/{id}",
            op("delete_agent", "Delete an agent (administrators)").status(204),
            agents::delete,
        )
        .get(
            "/v2.0/rbac-policies",
            op("list_rbac_policies", "List RBAC policies"),
            rbac_policies::list,
        )
        .post(
            "/v2.0/rbac-policies",
            op(
                "create_rbac_policy",
                "Share a network with a project (or all)",
            )
            .status(201),
            rbac_policies::create,
        )
        .get(
            "/v2.0/rbac-policies/{id}",
            op("show_rbac_policy", "Show an RBAC policy"),
            rbac_policies::show,
        )
        .put(
            "/v2.0/rbac-policies/{id}",
            op(
                "update_rbac_policy",
                "Change an RBAC policy's target project",
            ),
            rbac_policies::update,
        )
        .delete(
            "/v2.0/rbac-policies/{id}",
            op("delete_rbac_policy", "Delete an RBAC policy").status(204),
            rbac_policies::delete,
        )
        .get(
            "/v2.0/availability_zones",
            op(
                "list_availability_zones",
                "The availability zone of networks and routers",
            ),
            list_availability_zones,
        )
        .get(
            "/v2.0/network-ip-availabilities",
            op(
                "list_network_ip_availabilities",
                "Used and total IPs per network and subnet (administrators)",
            ),
            ip_availability::list,
        )
        .get(
            "/v2.0/network-ip-availabilities/{id}",
            op(
                "show_network_ip_availability",
                "Used and total IPs of a network (administrators)",
            ),
            ip_availability::show,
        )
        .get(
            "/v2.0/quotas",
            op("list_quotas", "List projects' quotas (administrators)"),
            quotas::list,
        )
        .get(
            "/v2.0/quotas/project",
            op("show_quota_project", "The caller's project"),
            quotas::own_project,
        )
        .get(
            "/v2.0/quotas/tenant",
            op("show_quota_tenant", "The caller's project, as a tenant"),
            quotas::own_tenant,
        )
        .get(
            "/v2.0/quotas/{project_id}",
            op("show_quota", "Show a project's quotas"),
            quotas::show,
        )
        .put(
            "/v2.0/quotas/{project_id}",
            op("update_quota", "Update a project's quotas"),
            quotas::update,
        )
        .delete(
            "/v2.0/quotas/{project_id}",
            op("delete_quota", "Reset a project's quotas to the defaults").status(204),
            quotas::delete,
        )
        .get(
            "/v2.0/quotas/{project_id}/default",
            op("show_quota_default", "The default quotas"),
            quotas::defaults,
        )
        .get(
            "/v2.0/quotas/{project_id}/details",
            op("show_quota_details", "A project's quotas with usage"),
            quotas::details,
        )
        .get(
            "/v2.0/quotas/{project_id}/details.json",
            op(
                "show_quota_details_json",
                "A project's quotas with usage (.json form)",
            ),
            quotas::details,
        );
    for c in [
        "networks",
        "subnets",
        "ports",
        "security-groups",
        "routers",
        "floatingips",
        "subnetpools",
    ] {
        let snake = c.replace('-', "_");
        api = api
            .get(
                &format!("/v2.0/{c}/{{id}}/tags"),
                op(&format!("list_{snake}_tags"), "List tags"),
                tags::list,
            )
            .put(
                &format!("/v2.0/{c}/{{id}}/tags"),
                op(&format!("replace_{snake}_tags"), "Replace all tags"),
                tags::replace,
            )
            .delete(
                &format!("/v2.0/{c}/{{id}}/tags"),
                op(&format!("delete_{snake}_tags"), "Remove all tags").status(204),
                tags::clear,
            )
            .get(
                &format!("/v2.0/{c}/{{id}}/tags/{{tag}}"),
                op(&format!("check_{snake}_tag"), "Confirm a tag").status(204),
                tags::check,
            )
            .put(
                &format!("/v2.0/{c}/{{id}}/tags/{{tag}}"),
                op(&format!("add_{snake}_tag"), "Add a tag").status(201),
                tags::add,
            )
            .delete(
                &format!("/v2.0/{c}/{{id}}/tags/{{tag}}"),
                op(&format!("delete_{snake}_tag"), "Remove a tag").status(204),
                tags::remove,
            );
    }
    api
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
            NetworkError::not_found("HTTPNotFound", "The resource could not be found.")
                .into_response()
        })
        .with_state(service)
}

pub fn openapi() -> Value {
    api().openapi(
        "ferrostack Networking API (Neutron v2.0 compatible)",
        "v2.0",
        "/networking",
    )
}
