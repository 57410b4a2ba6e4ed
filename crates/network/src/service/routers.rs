//! Routers: a gateway on an external network (with SNAT unless turned off), interfaces on
//! subnets (ports holding each subnet's gateway address) and extra routes. The gateway and
//! the interfaces are ports the service owns, found by the router's id as their device.

use ferrostack_common::time::now_micros;
use ferrostack_common::AuthContext;
use ferrostack_db::sqlx::AnyConnection;
use serde_json::{json, Value};

use super::body::{self, Attrs};
use super::ports::{parse_ip_requests, IpRequest};
use super::{new_id, retry_on_conflict, Failure, NetworkService};
use crate::backend::RouterState;
use crate::error::{NetworkError, Result};
use crate::ipam::{self, Cidr};
use crate::model::*;
use crate::store;
use crate::views;

const WRITABLE: &[&str] = &[
    "name",
    "description",
    "admin_state_up",
    "external_gateway_info",
    "distributed",
    "ha",
    "availability_zone_hints",
    "project_id",
    "tenant_id",
    "tags",
];
const READ_ONLY: &[&str] = &[
    "id",
    "status",
    "availability_zones",
    "created_at",
    "updated_at",
    "revision_number",
];
/// Neutron's `max_routes`.
const MAX_ROUTES: usize = 30;

pub fn target(project: &str) -> Value {
    json!({"project_id": project, "tenant_id": project})
}

fn bad_router(msg: impl std::fmt::Display) -> NetworkError {
    NetworkError::bad("BadRequest", format!("Bad router request: {msg}."))
}

/// `external_gateway_info` as asked: `None` to remove the gateway.
struct GatewaySpec {
    network_id: String,
    enable_snat: Option<bool>,
    fixed_ips: Option<Vec<IpRequest>>,
}

fn parse_gateway(v: &Value) -> Result<Option<GatewaySpec>> {
    let o = match v {
        Value::Null => return Ok(None),
        Value::Object(o) if o.is_empty() => return Ok(None),
        Value::Object(o) => o,
        other => {
            return Err(NetworkError::invalid_attr(
                "external_gateway_info",
                format!("'{other}' is not a dictionary"),
            ))
        }
    };
    if let Some(k) = o.keys().find(|k| {
        !matches!(
            k.as_str(),
            "network_id" | "enable_snat" | "external_fixed_ips" | "qos_policy_id"
        )
    }) {
        return Err(NetworkError::invalid_attr(
            "external_gateway_info",
            format!("Unrecognized key '{k}'"),
        ));
    }
    let network_id = body::string(o, "network_id", 36)?.ok_or_else(|| {
        NetworkError::invalid_attr("external_gateway_info", "network_id is required")
    })?;
    Ok(Some(GatewaySpec {
        network_id,
        enable_snat: body::boolean(o, "enable_snat")?,
        fixed_ips: match body::list(o, "external_fixed_ips")? {
            Some(items) => Some(parse_ip_requests(items)?),
            None => None,
        },
    }))
}

impl NetworkService {
    pub(crate) async fn visible_router(
        &self,
        c: &mut AnyConnection,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<Router> {
        match store::get_router(c, id).await? {
            Some(r) if self.allowed(ctx, "get_router", &target(&r.project_id)) => Ok(r),
            _ => Err(NetworkError::not_found(
                "RouterNotFound",
                format!("Router {id} could not be found"),
            )),
        }
    }

    async fn router_json(
        &self,
        c: &mut AnyConnection,
        ctx: &AuthContext,
        r: &Router,
    ) -> Result<Value> {
        let ips = match &r.gateway_port_id {
            Some(p) => store::get_port(c, p)
                .await?
                .map(|p| p.fixed_ips)
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let mut v = views::router(r, &ips, &self.config.availability_zone);
        self.strip(ctx, "router", &target(&r.project_id), &mut v);
        Ok(v)
    }

    pub async fn list_routers(&self, ctx: &AuthContext) -> Result<Vec<Value>> {
        let mut c = self.conn().await?;
        let scope = self.list_scope(ctx);
        let mut out = Vec::new();
        for r in store::list_routers(&mut c, scope.as_deref()).await? {
            if scope.is_none() || self.allowed(ctx, "get_router", &target(&r.project_id)) {
                out.push(self.router_json(&mut c, ctx, &r).await?);
            }
        }
        Ok(out)
    }

    pub async fn show_router(&self, ctx: &AuthContext, id: &str) -> Result<Value> {
        let mut c = self.conn().await?;
        let r = self.visible_router(&mut c, ctx, id).await?;
        self.router_json(&mut c, ctx, &r).await
    }

    fn check_router_attrs(
        &self,
        ctx: &AuthContext,
        attrs: &Attrs,
        action: &str,
        project: &str,
    ) -> Result<Option<Option<GatewaySpec>>> {
        let t = target(project);
        for a in ["distributed", "ha"] {
            if attrs.contains_key(a) {
                self.authorize(ctx, &format!("{action}_router:{a}"), &t)?;
                if body::boolean(attrs, a)? == Some(true) {
                    return Err(NetworkError::invalid(format!(
                        "{a} routers are not supported"
                    )));
                }
            }
        }
        let gw = match attrs.get("external_gateway_info") {
            Some(v) => Some(parse_gateway(v)?),
            None => None,
        };
        if let Some(Some(g)) = &gw {
            if g.enable_snat.is_some() {
                self.authorize(
                    ctx,
                    &format!("{action}_router:external_gateway_info:enable_snat"),
                    &t,
                )?;
            }
            if g.fixed_ips.is_some() {
                self.authorize(
                    ctx,
                    &format!("{action}_router:external_gateway_info:external_fixed_ips"),
                    &t,
                )?;
            }
        }
        Ok(gw)
    }

    /// The external network of a gateway, checked (404 when unknown, 400 when not external).
    async fn gateway_network(&self, ctx: &AuthContext, id: &str) -> Result<Network> {
        let mut c = self.conn().await?;
        let n = self.visible_network(&mut c, ctx, id).await?;
        if !n.external {
            return Err(bad_router(format!(
                "Network {id} is not an external network"
            )));
        }
        Ok(n)
    }

    pub async fn create_router(&self, ctx: &AuthContext, request: &Value) -> Result<Value> {
        let attrs = body::resource(request, "router")?;
        body::check(&attrs, WRITABLE, READ_ONLY, true)?;
        let project = body::owner(&attrs, &self.project_of(ctx)?)?;
        self.authorize(ctx, "create_router", &target(&project))?;
        let gw = self
            .check_router_attrs(ctx, &attrs, "create", &project)?
            .flatten();
        let gw_network = match &gw {
            Some(g) => Some(self.gateway_network(ctx, &g.network_id).await?),
            None => None,
        };
        let now = now_micros();
        let router = Router {
            id: new_id(),
            project_id: project,
            name: body::string(&attrs, "name", body::NAME_MAX)?.unwrap_or_default(),
            description: body::string(&attrs, "description", body::DESCRIPTION_MAX)?
                .unwrap_or_default(),
            admin_state_up: body::boolean(&attrs, "admin_state_up")?.unwrap_or(true),
            gateway_network_id: None,
            gateway_port_id: None,
            enable_snat: true,
            routes: Vec::new(),
            tags: body::string_list(&attrs, "tags", body::TAG_MAX)?.unwrap_or_default(),
            revision_number: 1,
            created_at: now,
            updated_at: now,
        };
        let (router, gw_port) = retry_on_conflict(|attempt| {
            let mut router = router.clone();
            let gw_network = gw_network.clone();
            let gw = gw.as_ref();
            async move {
                let mut tx = self.db.begin_write().await?;
                self.check_quota(&mut tx, &router.project_id, "router", 1)
                    .await?;
                let mut gw_port = None;
                if let (Some(g), Some(n)) = (gw, &gw_network) {
                    let p = self
                        .insert_service_port(
                            &mut tx,
                            n,
                            "",
                            OWNER_ROUTER_GATEWAY,
                            &router.id,
                            g.fixed_ips.as_deref(),
                            "ACTIVE",
                            attempt,
                        )
                        .await?;
                    router.gateway_network_id = Some(n.id.clone());
                    router.gateway_port_id = Some(p.id.clone());
                    router.enable_snat = g.enable_snat.unwrap_or(true);
                    gw_port = Some(p.id);
                }
                store::insert_router(&mut tx, &router).await?;
                tx.commit().await?;
                Ok((router, gw_port))
            }
        })
        .await?;
        if let Some(p) = gw_port {
            self.push_port(&p).await;
        }
        self.push_router(&router.id).await;
        let mut c = self.conn().await?;
        self.router_json(&mut c, ctx, &router).await
    }

    pub async fn update_router(
        &self,
        ctx: &AuthContext,
        id: &str,
        request: &Value,
    ) -> Result<Value> {
        let attrs = body::resource(request, "router")?;
        let mut writable: Vec<&str> = WRITABLE
            .iter()
            .copied()
            .filter(|a| !matches!(*a, "project_id" | "tenant_id"))
            .collect();
        writable.push("routes");
        let mut ro = READ_ONLY.to_vec();
        ro.extend(["project_id", "tenant_id"]);
        body::check(&attrs, &writable, &ro, false)?;
        let current = {
            let mut c = self.conn().await?;
            self.visible_router(&mut c, ctx, id).await?
        };
        self.authorize(ctx, "update_router", &target(&current.project_id))?;
        let gw = self.check_router_attrs(ctx, &attrs, "update", &current.project_id)?;
        let gw_network = match &gw {
            Some(Some(g)) => Some(self.gateway_network(ctx, &g.network_id).await?),
            _ => None,
        };
        let routes = match body::list(&attrs, "routes")? {
            Some(items) => Some(parse_routes(items)?),
            None => None,
        };
        let (router, changed_ports, deleted_ports) = retry_on_conflict(|attempt| {
            let attrs = attrs.clone();
            let gw = gw.as_ref();
            let gw_network = gw_network.clone();
            let routes = routes.clone();
            async move {
                let mut tx = self.db.begin_write().await?;
                let mut r = store::get_router(&mut tx, id).await?.ok_or_else(|| NetworkError::not_found("RouterNotFound", format!("Router {id} could not be found")))?;
                let mut changed = Vec::new();
                let mut deleted = Vec::new();
                if let Some(v) = body::string(&attrs, "name", body::NAME_MAX)? {
                    r.name = v;
                }
                if let Some(v) = body::string(&attrs, "description", body::DESCRIPTION_MAX)? {
                    r.description = v;
                }
                if let Some(v) = body::boolean(&attrs, "admin_state_up")? {
                    r.admin_state_up = v;
                }
                if let Some(v) = body::string_list(&attrs, "tags", body::TAG_MAX)? {
                    r.tags = v;
                }
                if let Some(gw) = gw {
                    let same_network = match (gw, &r.gateway_network_id) {
                        (Some(g), Some(n)) => &g.network_id == n,
                        _ => false,
                    };
                    let fips = store::floating_ips_of_router(&mut tx, id).await?;
                    if !same_network && !fips.is_empty() {
                        let net = r.gateway_network_id.clone().unwrap_or_default();
                        return Err(Failure::Api(NetworkError::conflict("RouterExternalGatewayInUseByFloatingIp", format!("Gateway cannot be updated for router {id}, since a gateway to external network {net} is required by one or more floating IPs."))));
                    }
                    match gw {
                        Some(g) if same_network => {
                            if let Some(snat) = g.enable_snat {
                                r.enable_snat = snat;
                            }
                            if let (Some(reqs), Some(pid)) = (&g.fixed_ips, &r.gateway_port_id) {
                                if let Some(mut p) = store::get_port(&mut tx, pid).await? {
                                    let n = store::get_network(&mut tx, &p.network_id).await?.ok_or_else(|| NetworkError::network_not_found(&p.network_id))?;
                                    let subnets = store::subnets_of_network(&mut tx, &n.id).await?;
                                    let keep = p.fixed_ips.clone();
                                    p.fixed_ips = self.plan_ips(&mut tx, &n, &subnets, Some(reqs), &p.mac_address, &p.device_owner, &keep, attempt).await?;
                                    store::set_port_ips(&mut tx, &p).await?;
                                    changed.push(p.id);
                                }
                            }
                        }
                        other => {
                            if let Some(pid) = r.gateway_port_id.take() {
                                if let Some(p) = store::get_port(&mut tx, &pid).await? {
                                    deleted.push(self.port_state(&mut tx, p).await?);
                                }
                                store::delete_port(&mut tx, &pid).await?;
                            }
                            r.gateway_network_id = None;
                            r.enable_snat = true;
                            if let (Some(g), Some(n)) = (other, &gw_network) {
                                let p = self.insert_service_port(&mut tx, n, "", OWNER_ROUTER_GATEWAY, id, g.fixed_ips.as_deref(), "ACTIVE", attempt).await?;
                                r.gateway_network_id = Some(n.id.clone());
                                r.gateway_port_id = Some(p.id.clone());
                                r.enable_snat = g.enable_snat.unwrap_or(true);
                                changed.push(p.id);
                            }
                        }
                    }
                }
                if let Some(routes) = routes {
                    let connected = self.connected_cidrs(&mut tx, &r).await?;
                    for route in &routes {
                        let hop = ipam::parse_ip(&route.nexthop).ok_or_else(|| NetworkError::invalid_attr("routes", format!("'{}' is not a valid IP address", route.nexthop)))?;
                        if !connected.iter().any(|(_, c)| c.contains(&hop)) {
                            return Err(Failure::Api(NetworkError::bad("InvalidRoutes", format!("Invalid format for routes: {}, the nexthop is not connected with router", json!(route)))));
                        }
                    }
                    r.routes = routes;
                }
                r.revision_number += 1;
                r.updated_at = now_micros();
                store::update_router(&mut tx, &r).await?;
                tx.commit().await?;
                Ok((r, changed, deleted))
            }
        })
        .await?;
        for p in deleted_ports {
            self.push_deleted_port(&p).await;
        }
        for p in changed_ports {
            self.push_port(&p).await;
        }
        self.push_router(id).await;
        let mut c = self.conn().await?;
        self.router_json(&mut c, ctx, &router).await
    }

    /// The subnets (id, CIDR) a router is attached to, interfaces and gateway.
    async fn connected_cidrs(
        &self,
        c: &mut AnyConnection,
        r: &Router,
    ) -> Result<Vec<(String, Cidr)>> {
        let mut out = Vec::new();
        for p in store::ports_of_device(c, &r.id).await? {
            for ip in &p.fixed_ips {
                if let Some(s) = store::get_subnet(c, &ip.subnet_id).await? {
                    if let Ok(cidr) = Cidr::parse(&s.cidr, false) {
                        out.push((s.id, cidr));
                    }
                }
            }
        }
        Ok(out)
    }

    pub async fn delete_router(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let r = self.visible_router(&mut tx, ctx, id).await?;
        self.authorize(ctx, "delete_router", &target(&r.project_id))?;
        let ports = store::ports_of_device(&mut tx, id).await?;
        if ports
            .iter()
            .any(|p| p.device_owner == OWNER_ROUTER_INTERFACE)
        {
            return Err(NetworkError::conflict(
                "RouterInUse",
                format!("Router {id} still has ports"),
            ));
        }
        if !store::floating_ips_of_router(&mut tx, id).await?.is_empty() {
            return Err(NetworkError::conflict(
                "RouterInUse",
                format!("Router {id} still has floating IPs associated"),
            ));
        }
        let mut gone = Vec::new();
        for p in ports {
            let pid = p.id.clone();
            gone.push(self.port_state(&mut tx, p).await?);
            store::delete_port(&mut tx, &pid).await?;
        }
        store::delete_router(&mut tx, id).await?;
        tx.commit().await?;
        for p in gone {
            self.push_deleted_port(&p).await;
        }
        self.push_router(id).await;
        Ok(())
    }

    fn interface_info(r: &Router, p: &Port) -> Value {
        let subnets: Vec<&str> = p.fixed_ips.iter().map(|f| f.subnet_id.as_str()).collect();
        json!({"id": r.id, "tenant_id": r.project_id, "project_id": r.project_id, "port_id": p.id, "network_id": p.network_id, "subnet_id": subnets.first(), "subnet_ids": subnets})
    }

    pub async fn add_router_interface(
        &self,
        ctx: &AuthContext,
        id: &str,
        request: &Value,
    ) -> Result<Value> {
        let o = request
            .as_object()
            .ok_or_else(|| NetworkError::bad_request("Malformed request body"))?;
        let subnet_id = body::string(o, "subnet_id", 36)?;
        let port_id = body::string(o, "port_id", 36)?;
        if subnet_id.is_some() == port_id.is_some() {
            return Err(bad_router("Either subnet_id or port_id must be specified"));
        }
        let r = {
            let mut c = self.conn().await?;
            let r = self.visible_router(&mut c, ctx, id).await?;
            self.authorize(ctx, "add_router_interface", &target(&r.project_id))?;
            if let Some(s) = &subnet_id {
                self.visible_subnet(&mut c, ctx, s).await?;
            }
            if let Some(p) = &port_id {
                self.visible_port(&mut c, ctx, p).await?;
            }
            r
        };
        let port = retry_on_conflict(|attempt| {
            let r = r.clone();
            let subnet_id = subnet_id.clone();
            let port_id = port_id.clone();
            async move {
                let mut tx = self.db.begin_write().await?;
                let connected = self.connected_cidrs(&mut tx, &r).await?;
                let overlap = |tx_subnet: &Subnet| -> Result<(), Failure> {
                    let cidr = Cidr::parse(&tx_subnet.cidr, false).map_err(NetworkError::internal)?;
                    for (other, oc) in &connected {
                        if other == &tx_subnet.id {
                            return Err(Failure::Api(bad_router(format!("Router already has a port on subnet {other}"))));
                        }
                        if oc.overlaps(&cidr) {
                            return Err(Failure::Api(bad_router(format!("Cidr {} of subnet {} overlaps with cidr {oc} of subnet {other}", tx_subnet.cidr, tx_subnet.id))));
                        }
                    }
                    Ok(())
                };
                let port = match (&subnet_id, &port_id) {
                    (Some(sid), _) => {
                        let s = store::get_subnet(&mut tx, sid).await?.ok_or_else(|| NetworkError::subnet_not_found(sid))?;
                        overlap(&s)?;
                        let gw = s.gateway_ip.clone().ok_or_else(|| bad_router(format!("Subnet {sid} does not have a gateway IP")))?;
                        let n = store::get_network(&mut tx, &s.network_id).await?.ok_or_else(|| NetworkError::network_not_found(&s.network_id))?;
                        let req = [IpRequest { subnet_id: Some(sid.clone()), ip_address: Some(gw) }];
                        self.insert_service_port(&mut tx, &n, &r.project_id, OWNER_ROUTER_INTERFACE, &r.id, Some(&req), "ACTIVE", attempt).await?
                    }
                    (None, Some(pid)) => {
                        let mut p = store::get_port(&mut tx, pid).await?.ok_or_else(|| NetworkError::port_not_found(pid))?;
                        if !p.device_id.is_empty() || !p.device_owner.is_empty() && p.device_owner != OWNER_ROUTER_INTERFACE {
                            return Err(Failure::Api(NetworkError::conflict("PortInUse", format!("Unable to complete operation on port {pid} for network {}. Port already has an attached device {}.", p.network_id, p.device_id))));
                        }
                        if p.fixed_ips.is_empty() {
                            return Err(Failure::Api(bad_router("Router port must have at least one fixed IP")));
                        }
                        for ip in &p.fixed_ips {
                            let s = store::get_subnet(&mut tx, &ip.subnet_id).await?.ok_or_else(|| NetworkError::subnet_not_found(&ip.subnet_id))?;
                            overlap(&s)?;
                        }
                        p.device_id = r.id.clone();
                        p.device_owner = OWNER_ROUTER_INTERFACE.into();
                        p.status = "ACTIVE".into();
                        p.security_groups.clear();
                        store::set_port_groups(&mut tx, &p.id, &[]).await?;
                        p.revision_number += 1;
                        p.updated_at = now_micros();
                        store::update_port_row(&mut tx, &p).await?;
                        p
                    }
                    _ => unreachable!("checked above"),
                };
                store::touch_router(&mut tx, &r.id, now_micros()).await?;
                tx.commit().await?;
                Ok(port)
            }
        })
        .await?;
        self.push_port(&port.id).await;
        self.push_router(id).await;
        Ok(Self::interface_info(&r, &port))
    }

    pub async fn remove_router_interface(
        &self,
        ctx: &AuthContext,
        id: &str,
        request: &Value,
    ) -> Result<Value> {
        let o = request
            .as_object()
            .ok_or_else(|| NetworkError::bad_request("Malformed request body"))?;
        let subnet_id = body::string(o, "subnet_id", 36)?;
        let port_id = body::string(o, "port_id", 36)?;
        if subnet_id.is_none() && port_id.is_none() {
            return Err(bad_router("Either subnet_id or port_id must be specified"));
        }
        let mut tx = self.db.begin_write().await?;
        let r = self.visible_router(&mut tx, ctx, id).await?;
        self.authorize(ctx, "remove_router_interface", &target(&r.project_id))?;
        let interfaces: Vec<Port> = store::ports_of_device(&mut tx, id)
            .await?
            .into_iter()
            .filter(|p| p.device_owner == OWNER_ROUTER_INTERFACE)
            .collect();
        let port = match (&port_id, &subnet_id) {
            (Some(pid), sid) => {
                let p = interfaces
                    .iter()
                    .find(|p| &p.id == pid)
                    .cloned()
                    .ok_or_else(|| {
                        NetworkError::not_found(
                            "RouterInterfaceNotFound",
                            format!("Router {id} does not have an interface with id {pid}"),
                        )
                    })?;
                if let Some(sid) = sid {
                    if !p.fixed_ips.iter().any(|f| &f.subnet_id == sid) {
                        return Err(NetworkError::conflict(
                            "SubnetMismatchForPort",
                            format!(
                                "Subnet on port {pid} does not match the requested subnet {sid}."
                            ),
                        ));
                    }
                }
                p
            }
            (None, Some(sid)) => interfaces
                .iter()
                .find(|p| p.fixed_ips.iter().any(|f| &f.subnet_id == sid))
                .cloned()
                .ok_or_else(|| {
                    NetworkError::not_found(
                        "RouterInterfaceNotFoundForSubnet",
                        format!("Router {id} has no interface on subnet {sid}"),
                    )
                })?,
            (None, None) => unreachable!("checked above"),
        };
        for ip in &port.fixed_ips {
            let s = store::get_subnet(&mut tx, &ip.subnet_id).await?;
            let Some(cidr) = s.as_ref().and_then(|s| Cidr::parse(&s.cidr, false).ok()) else {
                continue;
            };
            let fips = store::floating_ips_of_router(&mut tx, id).await?;
            let mut internal: Vec<String> = fips
                .iter()
                .filter_map(|f| f.fixed_ip_address.clone())
                .collect();
            // Port forwardings go through the router as associations do.
            for f in &fips {
                for pf in store::port_forwardings_of_fip(&mut tx, &f.id).await? {
                    internal.push(pf.internal_ip_address);
                }
            }
            let used_by_fip = internal
                .iter()
                .filter_map(|a| ipam::parse_ip(a))
                .any(|a| cidr.contains(&a));
            if used_by_fip {
                return Err(NetworkError::conflict("RouterInterfaceInUseByFloatingIP", format!("Router interface for subnet {} on router {id} cannot be deleted, as it is required by one or more floating IPs.", ip.subnet_id)));
            }
            if r.routes
                .iter()
                .any(|rt| ipam::parse_ip(&rt.nexthop).is_some_and(|h| cidr.contains(&h)))
            {
                return Err(NetworkError::conflict("RouterInterfaceInUseByRoute", format!("Router interface for subnet {} on router {id} cannot be deleted, as it is required by one or more routes.", ip.subnet_id)));
            }
        }
        let info = Self::interface_info(&r, &port);
        let state = self.port_state(&mut tx, port.clone()).await?;
        store::delete_port(&mut tx, &port.id).await?;
        store::touch_router(&mut tx, id, now_micros()).await?;
        tx.commit().await?;
        self.push_deleted_port(&state).await;
        self.push_router(id).await;
        Ok(info)
    }

    /// The desired state of a router, from the database.
    pub async fn router_state(
        &self,
        c: &mut AnyConnection,
        id: &str,
    ) -> Result<Option<RouterState>> {
        let Some(router) = store::get_router(c, id).await? else {
            return Ok(None);
        };
        let mut gateway = None;
        let mut interfaces = Vec::new();
        for p in store::ports_of_device(c, id).await? {
            let owner = p.device_owner.clone();
            let st = self.port_state(c, p).await?;
            if owner == OWNER_ROUTER_GATEWAY {
                gateway = Some(st);
            } else if owner == OWNER_ROUTER_INTERFACE {
                interfaces.push(st);
            }
        }
        Ok(Some(RouterState {
            router,
            gateway,
            interfaces,
        }))
    }

    pub(crate) async fn push_router(&self, id: &str) {
        let state = match self.conn().await {
            Ok(mut c) => self.router_state(&mut c, id).await,
            Err(e) => Err(e),
        };
        match state {
            Ok(Some(s)) => {
                let r = self.backend.sync_router(&s).await;
                self.logged("sync_router", id, r);
            }
            Ok(None) => {
                let r = self.backend.delete_router(id).await;
                self.logged("delete_router", id, r);
            }
            Err(e) => tracing::warn!(%id, error = %e, "could not read a router for the backend"),
        }
    }
}

fn parse_routes(items: &[Value]) -> Result<Vec<Route>> {
    if items.len() > MAX_ROUTES {
        return Err(NetworkError::bad("RoutesExhausted", format!("Unable to complete operation for the router. The number of routes exceeds the maximum {MAX_ROUTES}.")));
    }
    let mut out: Vec<Route> = Vec::new();
    for i in items {
        let r: Route = serde_json::from_value(i.clone()).map_err(|_| {
            NetworkError::invalid_attr(
                "routes",
                format!("'{i}' is not a valid route (destination and nexthop)"),
            )
        })?;
        let dest = Cidr::parse(&r.destination, false)
            .map_err(|e| NetworkError::invalid_attr("routes", e))?;
        let hop = ipam::normalize_ip(&r.nexthop).ok_or_else(|| {
            NetworkError::invalid_attr(
                "routes",
                format!("'{}' is not a valid IP address", r.nexthop),
            )
        })?;
        let route = Route {
            destination: dest.to_string(),
            nexthop: hop,
        };
        if out.contains(&route) {
            return Err(NetworkError::invalid_attr(
                "routes",
                format!("Duplicate route '{i}'"),
            ));
        }
        out.push(route);
    }
    Ok(out)
}
