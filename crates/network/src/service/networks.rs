//! Networks: tenant networks are Geneve overlays with a VNI allocated from the configured
//! range; administrators may also make flat networks on a configured physical network,
//! share networks and mark them external. Deleting a network takes its service ports
//! (DHCP, metadata) with it and refuses while other ports remain.

use ferrostack_common::time::now_micros;
use ferrostack_common::AuthContext;
use ferrostack_db::sqlx::AnyConnection;
use serde_json::{json, Value};

use super::body::{self, Attrs};
use super::{new_id, retry_on_conflict, Failure, NetworkService};
use crate::error::{NetworkError, Result};
use crate::model::*;
use crate::store;
use crate::views;

const WRITABLE: &[&str] = &[
    "name",
    "description",
    "admin_state_up",
    "shared",
    "router:external",
    "mtu",
    "port_security_enabled",
    "provider:network_type",
    "provider:physical_network",
    "provider:segmentation_id",
    "is_default",
    "dns_domain",
    "project_id",
    "tenant_id",
    "availability_zone_hints",
    "tags",
];
const READ_ONLY: &[&str] = &[
    "id",
    "status",
    "subnets",
    "availability_zones",
    "created_at",
    "updated_at",
    "revision_number",
    "ipv4_address_scope",
    "ipv6_address_scope",
    "l2_adjacency",
];
const ADMIN_ATTRS: &[&str] = &[
    "shared",
    "router:external",
    "is_default",
    "provider:network_type",
    "provider:physical_network",
    "provider:segmentation_id",
];

/// The policy target of a network.
pub fn target(n: &Network) -> Value {
    json!({"project_id": n.project_id, "tenant_id": n.project_id, "network:project_id": n.project_id, "shared": n.shared, "shared_with": n.shared_with, "router:external": n.external})
}

impl NetworkService {
    /// The `*` policy a shared (`access_as_shared`) or external (`access_as_external`)
    /// network has, as Neutron writes it with the flag.
    async fn insert_wildcard(
        &self,
        c: &mut AnyConnection,
        n: &Network,
        action: &str,
    ) -> Result<(), ferrostack_db::sqlx::Error> {
        store::insert_rbac_policy(
            c,
            &RbacPolicy {
                id: new_id(),
                project_id: n.project_id.clone(),
                object_type: "network".into(),
                object_id: n.id.clone(),
                action: action.into(),
                target_project: "*".into(),
            },
        )
        .await
    }

    /// The network if the caller may see it; otherwise 404.
    pub(crate) async fn visible_network(
        &self,
        c: &mut AnyConnection,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<Network> {
        match store::get_network(c, id).await? {
            Some(n) if self.allowed(ctx, "get_network", &target(&n)) => Ok(n),
            _ => Err(NetworkError::network_not_found(id)),
        }
    }

    pub(crate) async fn network_view(
        &self,
        c: &mut AnyConnection,
        ctx: &AuthContext,
        n: &Network,
    ) -> Result<Value> {
        let subnets: Vec<String> = store::subnets_of_network(c, &n.id)
            .await?
            .into_iter()
            .map(|s| s.id)
            .collect();
        let scopes = store::network_scopes(c, Some(&n.id))
            .await?
            .remove(&n.id)
            .unwrap_or_default();
        let mut v = views::network(n, &subnets, &scopes, &self.config.availability_zone);
        v["shared"] = json!(self.shared_for(ctx, n));
        self.strip(ctx, "network", &target(n), &mut v);
        Ok(v)
    }

    pub async fn list_networks(&self, ctx: &AuthContext) -> Result<Vec<Value>> {
        let mut c = self.conn().await?;
        let scope = self.list_scope(ctx);
        let networks = store::list_networks(&mut c, scope.as_deref()).await?;
        let subnets = store::list_subnets(&mut c, None).await?;
        let scopes = store::network_scopes(&mut c, None).await?;
        let none = NetworkScopes::default();
        Ok(networks
            .iter()
            .filter(|n| scope.is_none() || self.allowed(ctx, "get_network", &target(n)))
            .map(|n| {
                let ids: Vec<String> = subnets
                    .iter()
                    .filter(|s| s.network_id == n.id)
                    .map(|s| s.id.clone())
                    .collect();
                let scopes = scopes.get(&n.id).unwrap_or(&none);
                let mut v = views::network(n, &ids, scopes, &self.config.availability_zone);
                v["shared"] = json!(self.shared_for(ctx, n));
                self.strip(ctx, "network", &target(n), &mut v);
                v
            })
            .collect())
    }

    pub async fn show_network(&self, ctx: &AuthContext, id: &str) -> Result<Value> {
        let mut c = self.conn().await?;
        let n = self.visible_network(&mut c, ctx, id).await?;
        self.network_view(&mut c, ctx, &n).await
    }

    fn check_mtu(&self, network_type: &str, mtu: i64) -> Result<()> {
        let max = if network_type == "geneve" {
            self.config.overlay_mtu
        } else {
            self.config.physical_mtu
        };
        if mtu < 68 {
            return Err(NetworkError::invalid_attr(
                "mtu",
                format!("'{mtu}' is too small - must be at least '68'"),
            ));
        }
        if mtu > max {
            return Err(NetworkError::invalid(format!(
                "Requested MTU is too big, maximum is {max}"
            )));
        }
        Ok(())
    }

    pub async fn create_network(&self, ctx: &AuthContext, request: &Value) -> Result<Value> {
        let attrs = body::resource(request, "network")?;
        body::check(&attrs, WRITABLE, READ_ONLY, true)?;
        let project = body::owner(&attrs, &self.project_of(ctx)?)?;
        let probe = json!({"project_id": project, "tenant_id": project});
        self.authorize(ctx, "create_network", &probe)?;
        for a in ADMIN_ATTRS {
            if attrs.contains_key(*a) {
                self.authorize(ctx, &format!("create_network:{a}"), &probe)?;
            }
        }
        let now = now_micros();
        let mut n = Network {
            id: new_id(),
            project_id: project.clone(),
            name: body::string(&attrs, "name", body::NAME_MAX)?.unwrap_or_default(),
            description: body::string(&attrs, "description", body::DESCRIPTION_MAX)?
                .unwrap_or_default(),
            admin_state_up: body::boolean(&attrs, "admin_state_up")?.unwrap_or(true),
            shared: body::boolean(&attrs, "shared")?.unwrap_or(false),
            external: body::boolean(&attrs, "router:external")?.unwrap_or(false),
            mtu: 0,
            port_security_enabled: body::boolean(&attrs, "port_security_enabled")?.unwrap_or(true),
            network_type: "geneve".into(),
            physical_network: None,
            segmentation_id: None,
            is_default: body::boolean(&attrs, "is_default")?.unwrap_or(false),
            dns_domain: body::string(&attrs, "dns_domain", 255)?.unwrap_or_default(),
            tags: body::string_list(&attrs, "tags", body::TAG_MAX)?.unwrap_or_default(),
            revision_number: 1,
            created_at: now,
            updated_at: now,
            shared_with: Vec::new(),
        };
        if n.is_default && !n.external {
            return Err(NetworkError::invalid(
                "is_default can only be set on an external network",
            ));
        }
        self.set_segment(&mut n, &attrs)?;
        let requested_vni = n.segmentation_id;
        n.mtu = match body::integer(&attrs, "mtu")? {
            Some(Some(mtu)) => {
                self.check_mtu(&n.network_type, mtu)?;
                mtu
            }
            _ if n.network_type == "geneve" => self.config.overlay_mtu,
            _ => self.config.physical_mtu,
        };
        self.ensure_default_group(&project).await?;
        let n = retry_on_conflict(|_| {
            let mut n = n.clone();
            async move {
                let mut tx = self.db.begin_write().await?;
                self.check_quota(&mut tx, &n.project_id, "network", 1).await?;
                if n.network_type == "geneve" {
                    match requested_vni {
                        Some(vni) => {
                            if store::used_segmentation_ids(&mut tx, "geneve").await?.contains(&vni) {
                                return Err(Failure::Api(NetworkError::conflict("TunnelIdInUse", format!("Unable to create the network. The tunnel ID {vni} is in use."))));
                            }
                        }
                        None => n.segmentation_id = Some(self.free_vni(&mut tx).await?),
                    }
                } else if let Some(p) = &n.physical_network {
                    let taken = store::list_networks(&mut tx, None)
                        .await?
                        .iter()
                        .any(|o| o.network_type == "flat" && o.physical_network.as_deref() == Some(p));
                    if taken {
                        return Err(Failure::Api(NetworkError::conflict("FlatNetworkInUse", format!("Unable to create the flat network. Physical network {p} is in use."))));
                    }
                }
                store::insert_network(&mut tx, &n).await?;
                for (on, action) in [(n.shared, ACCESS_SHARED), (n.external, ACCESS_EXTERNAL)] {
                    if on {
                        self.insert_wildcard(&mut tx, &n, action).await?;
                    }
                }
                tx.commit().await?;
                Ok(n)
            }
        })
        .await?;
        self.push_network(&n.id).await;
        let mut c = self.conn().await?;
        self.network_view(&mut c, ctx, &n).await
    }

    /// Applies the `provider:*` attributes of a create request.
    fn set_segment(&self, n: &mut Network, attrs: &Attrs) -> Result<()> {
        let kind = body::string(attrs, "provider:network_type", 255)?;
        let physnet = body::nullable_string(attrs, "provider:physical_network", 64)?.flatten();
        let seg = body::integer(attrs, "provider:segmentation_id")?.flatten();
        match kind.as_deref() {
            None | Some("geneve") => {
                if physnet.is_some() {
                    return Err(NetworkError::invalid(
                        "provider:physical_network specified for geneve network",
                    ));
                }
                if let Some(vni) = seg {
                    if vni < self.config.geneve_vni_min || vni > self.config.geneve_vni_max {
                        return Err(NetworkError::invalid(format!(
                            "{vni} is not a valid geneve VNI, must be in the range {} to {}",
                            self.config.geneve_vni_min, self.config.geneve_vni_max
                        )));
                    }
                }
                n.segmentation_id = seg;
            }
            Some("flat") => {
                if seg.is_some() {
                    return Err(NetworkError::invalid(
                        "provider:segmentation_id specified for flat network",
                    ));
                }
                let p = physnet.ok_or_else(|| {
                    NetworkError::invalid(
                        "provider:physical_network required for flat provider network",
                    )
                })?;
                if !self.config.flat_networks.contains(&p) {
                    return Err(NetworkError::invalid(format!(
                        "physical_network '{p}' unknown for flat provider network"
                    )));
                }
                n.network_type = "flat".into();
                n.physical_network = Some(p);
            }
            Some(other) => {
                return Err(NetworkError::invalid(format!(
                    "network_type value '{other}' not supported"
                )))
            }
        }
        Ok(())
    }

    /// The lowest VNI of the range no network holds.
    async fn free_vni(&self, c: &mut AnyConnection) -> Result<i64, Failure> {
        let used: std::collections::HashSet<i64> = store::used_segmentation_ids(c, "geneve")
            .await?
            .into_iter()
            .collect();
        (self.config.geneve_vni_min..=self.config.geneve_vni_max)
            .find(|v| !used.contains(v))
            .ok_or_else(|| {
                Failure::Api(NetworkError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "NoNetworkAvailable",
                    "Unable to create the network. No tenant network is available for allocation.",
                ))
            })
    }

    pub async fn update_network(
        &self,
        ctx: &AuthContext,
        id: &str,
        request: &Value,
    ) -> Result<Value> {
        let attrs = body::resource(request, "network")?;
        let mut w: Vec<&str> = WRITABLE.to_vec();
        w.retain(|a| !matches!(*a, "project_id" | "tenant_id"));
        let mut ro = READ_ONLY.to_vec();
        ro.extend(["project_id", "tenant_id"]);
        body::check(&attrs, &w, &ro, false)?;
        let mut tx = self.db.begin_write().await?;
        let mut n = self.visible_network(&mut tx, ctx, id).await?;
        let t = target(&n);
        self.authorize(ctx, "update_network", &t)?;
        for a in ADMIN_ATTRS {
            if attrs.contains_key(*a) {
                self.authorize(ctx, &format!("update_network:{a}"), &t)?;
            }
        }
        for a in [
            "provider:network_type",
            "provider:physical_network",
            "provider:segmentation_id",
        ] {
            if attrs.contains_key(a) {
                return Err(NetworkError::invalid(
                    "Plugin does not support updating provider attributes",
                ));
            }
        }
        if let Some(v) = body::string(&attrs, "name", body::NAME_MAX)? {
            n.name = v;
        }
        if let Some(v) = body::string(&attrs, "description", body::DESCRIPTION_MAX)? {
            n.description = v;
        }
        if let Some(v) = body::boolean(&attrs, "admin_state_up")? {
            n.admin_state_up = v;
        }
        if let Some(v) = body::boolean(&attrs, "port_security_enabled")? {
            n.port_security_enabled = v;
        }
        if let Some(v) = body::boolean(&attrs, "router:external")? {
            if v && !n.external {
                self.insert_wildcard(&mut tx, &n, ACCESS_EXTERNAL).await?;
            } else if !v && n.external {
                store::delete_rbac_policies_of(&mut tx, "network", id, Some(ACCESS_EXTERNAL))
                    .await?;
            }
            n.external = v;
        }
        if let Some(v) = body::boolean(&attrs, "is_default")? {
            n.is_default = v;
        }
        if n.is_default && !n.external {
            return Err(NetworkError::invalid(
                "is_default can only be set on an external network",
            ));
        }
        if let Some(v) = body::string(&attrs, "dns_domain", 255)? {
            n.dns_domain = v;
        }
        if let Some(Some(mtu)) = body::integer(&attrs, "mtu")? {
            self.check_mtu(&n.network_type, mtu)?;
            n.mtu = mtu;
        }
        if let Some(v) = body::boolean(&attrs, "shared")? {
            if n.shared && !v {
                // Projects still need access if an RBAC policy names them.
                let others = store::ports_of_network(&mut tx, id).await?.iter().any(|p| {
                    p.project_id != n.project_id
                        && !p.device_owner.starts_with("network:")
                        && !n.shared_with.contains(&p.project_id)
                });
                if others {
                    return Err(NetworkError::conflict("InvalidSharedSetting", format!("Unable to reconfigure sharing settings for network {id}. Multiple projects are using it.")));
                }
                for p in store::rbac_policies_of(&mut tx, "network", id).await? {
                    if p.action == ACCESS_SHARED && p.target_project == "*" {
                        store::delete_rbac_policy(&mut tx, &p.id).await?;
                    }
                }
            } else if v && !n.shared {
                self.insert_wildcard(&mut tx, &n, ACCESS_SHARED).await?;
            }
            n.shared = v;
        }
        if let Some(tags) = body::string_list(&attrs, "tags", body::TAG_MAX)? {
            n.tags = tags;
        }
        n.revision_number += 1;
        n.updated_at = now_micros();
        store::update_network(&mut tx, &n).await?;
        let ports = store::ports_of_network(&mut tx, id).await?;
        tx.commit().await?;
        self.push_network(id).await;
        // The ports carry the network's facts (MTU, segment) to the backend.
        for p in ports {
            self.push_port(&p.id).await;
        }
        let mut c = self.conn().await?;
        self.network_view(&mut c, ctx, &n).await
    }

    pub async fn delete_network(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let n = self.visible_network(&mut tx, ctx, id).await?;
        self.authorize(ctx, "delete_network", &target(&n))?;
        let subnets = store::subnets_of_network(&mut tx, id).await?;
        // An external network's floating IPs go with it (Neutron deletes them too).
        let mut gone_fips = Vec::new();
        let mut gone = Vec::new();
        for f in store::list_floating_ips(&mut tx, None).await? {
            if f.floating_network_id == id {
                if f.port_id.is_some() {
                    return Err(NetworkError::conflict("NetworkInUse", format!("Unable to complete operation on network {id}. There are one or more ports still in use on the network.")));
                }
                if let Some(p) = self.remove_floating_ip(&mut tx, &f).await? {
                    gone.push(p);
                }
                gone_fips.push(f.id);
            }
        }
        let ports = store::ports_of_network(&mut tx, id).await?;
        if ports
            .iter()
            .any(|p| p.device_owner != OWNER_DHCP && p.device_owner != OWNER_DISTRIBUTED)
        {
            return Err(NetworkError::conflict("NetworkInUse", format!("Unable to complete operation on network {id}. There are one or more ports still in use on the network.")));
        }
        for p in ports {
            store::delete_port(&mut tx, &p.id).await?;
            gone.push(Self::port_state_from(p, &n, &subnets));
        }
        for s in &subnets {
            store::delete_subnet(&mut tx, &s.id).await?;
        }
        store::delete_rbac_policies_of(&mut tx, "network", id, None).await?;
        store::delete_network(&mut tx, id).await?;
        tx.commit().await?;
        for p in &gone {
            self.push_deleted_port(p).await;
        }
        for f in gone_fips {
            self.push_floating_ip(&f).await;
        }
        self.push_network(id).await;
        Ok(())
    }
}
