//! Address scopes (`address-scope`): a scope gathers subnet pools of one IP version whose
//! prefixes never overlap, so an address drawn from any of them is unique in the scope (the
//! basis for routing between its networks without NAT). A scope has an owner, a name and
//! `shared`; shared scopes are seen by every project, others by their owner only (404 to
//! the rest). Only administrators share one, and a shared scope is never unshared.
//!
//! The rules that tie pools, subnets and networks to scopes live here too, as Neutron has
//! them: a pool joins a scope it can see, of its own IP version, without overlapping the
//! scope's other pools; a network's subnets of one IP version all come from one scope (or,
//! without scopes, from one pool), which is what `ipv4_address_scope` and
//! `ipv6_address_scope` on networks report. A scope with pools is not deleted.

use ferrostack_common::AuthContext;
use ferrostack_db::sqlx::AnyConnection;
use serde_json::{json, Value};

use super::body;
use super::{new_id, Failure, NetworkService};
use crate::error::{NetworkError, Result};
use crate::ipam::Cidr;
use crate::model::*;
use crate::store;
use crate::views;

const READ_ONLY: &[&str] = &["id"];

pub fn target(s: &AddressScope) -> Value {
    json!({"project_id": s.project_id, "tenant_id": s.project_id, "shared": s.shared})
}

pub fn not_found(id: &str) -> NetworkError {
    NetworkError::not_found(
        "AddressScopeNotFound",
        format!("Address scope {id} could not be found."),
    )
}

fn affinity_error() -> NetworkError {
    NetworkError::bad("NetworkAddressScopeAffinityError", "Subnets of the same address family hosted on the same network must all participate in the same address scope.")
}

fn pool_affinity_error() -> NetworkError {
    NetworkError::bad(
        "NetworkSubnetPoolAffinityError",
        "Subnets hosted on the same network must be allocated from the same subnet pool.",
    )
}

fn prefixes(p: &SubnetPool) -> Vec<Cidr> {
    p.prefixes
        .iter()
        .filter_map(|c| Cidr::parse(c, false).ok())
        .collect()
}

impl NetworkService {
    pub(crate) async fn visible_scope(
        &self,
        c: &mut AnyConnection,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<AddressScope> {
        match store::get_address_scope(c, id).await? {
            Some(s) if self.allowed(ctx, "get_address_scope", &target(&s)) => Ok(s),
            _ => Err(not_found(id)),
        }
    }

    pub async fn list_address_scopes(&self, ctx: &AuthContext) -> Result<Vec<Value>> {
        let mut c = self.conn().await?;
        let scope = self.list_scope(ctx);
        Ok(store::list_address_scopes(&mut c, scope.as_deref())
            .await?
            .iter()
            .filter(|s| scope.is_none() || self.allowed(ctx, "get_address_scope", &target(s)))
            .map(views::address_scope)
            .collect())
    }

    pub async fn show_address_scope(&self, ctx: &AuthContext, id: &str) -> Result<Value> {
        let mut c = self.conn().await?;
        Ok(views::address_scope(
            &self.visible_scope(&mut c, ctx, id).await?,
        ))
    }

    pub async fn create_address_scope(&self, ctx: &AuthContext, request: &Value) -> Result<Value> {
        let attrs = body::resource(request, "address_scope")?;
        body::check(
            &attrs,
            &["name", "shared", "ip_version", "project_id", "tenant_id"],
            READ_ONLY,
            true,
        )?;
        let project = body::owner(&attrs, &self.project_of(ctx)?)?;
        let ip_version = match body::integer(&attrs, "ip_version")?.flatten() {
            Some(v @ (4 | 6)) => v,
            Some(v) => {
                return Err(NetworkError::invalid_attr(
                    "ip_version",
                    format!("{v} is not in [4, 6]"),
                ))
            }
            None => {
                return Err(NetworkError::bad_request(
                    "Failed to parse request. Required attribute 'ip_version' not specified",
                ))
            }
        };
        let scope = AddressScope {
            id: new_id(),
            project_id: project,
            name: body::string(&attrs, "name", body::NAME_MAX)?.unwrap_or_default(),
            shared: body::boolean(&attrs, "shared")?.unwrap_or(false),
            ip_version,
        };
        self.authorize(ctx, "create_address_scope", &target(&scope))?;
        // As Neutron, the attribute rule applies when the value differs from the default.
        if scope.shared {
            self.authorize(ctx, "create_address_scope:shared", &target(&scope))?;
        }
        let mut tx = self.db.begin_write().await?;
        store::insert_address_scope(&mut tx, &scope).await?;
        tx.commit().await?;
        Ok(views::address_scope(&scope))
    }

    pub async fn update_address_scope(
        &self,
        ctx: &AuthContext,
        id: &str,
        request: &Value,
    ) -> Result<Value> {
        let attrs = body::resource(request, "address_scope")?;
        body::check(
            &attrs,
            &["name", "shared"],
            &["id", "ip_version", "project_id", "tenant_id"],
            false,
        )?;
        let mut tx = self.db.begin_write().await?;
        let mut s = self.visible_scope(&mut tx, ctx, id).await?;
        self.authorize(ctx, "update_address_scope", &target(&s))?;
        if let Some(shared) = body::boolean(&attrs, "shared")? {
            self.authorize(ctx, "update_address_scope:shared", &target(&s))?;
            if s.shared && !shared {
                return Err(NetworkError::bad(
                    "AddressScopeUpdateError",
                    format!("Unable to update address scope {id} : Shared address scope can't be unshared."),
                ));
            }
            s.shared = shared;
        }
        if let Some(name) = body::string(&attrs, "name", body::NAME_MAX)? {
            s.name = name;
        }
        store::update_address_scope(&mut tx, &s).await?;
        tx.commit().await?;
        Ok(views::address_scope(&s))
    }

    pub async fn delete_address_scope(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let s = self.visible_scope(&mut tx, ctx, id).await?;
        self.authorize(ctx, "delete_address_scope", &target(&s))?;
        // Locked before the pools are counted: a pool joining at the same time waits.
        store::lock_address_scope(&mut tx, id).await?;
        if !store::pools_of_scope(&mut tx, id).await?.is_empty() {
            return Err(NetworkError::conflict(
                "AddressScopeInUse",
                format!("Unable to complete operation on address scope {id}. There are one or more subnet pools in use on the address scope."),
            ));
        }
        store::delete_address_scope(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks `pool` (as it is about to be saved) against its address scope, inside the
    /// writing transaction: the scope exists and the caller sees it, has the pool's IP
    /// version, and no other pool of the scope overlaps its prefixes. `old` is the pool as
    /// stored (on update): a pool that changes scope must not leave one of its networks
    /// with subnets of one family in two scopes.
    pub(crate) async fn check_pool_scope(
        &self,
        c: &mut AnyConnection,
        ctx: &AuthContext,
        pool: &SubnetPool,
        old: Option<&SubnetPool>,
    ) -> Result<()> {
        let Some(scope_id) = &pool.address_scope_id else {
            return Ok(());
        };
        if !store::lock_address_scope(c, scope_id).await? {
            return Err(not_found(scope_id));
        }
        let scope = self.visible_scope(c, ctx, scope_id).await?;
        if scope.ip_version != pool.ip_version {
            return Err(NetworkError::bad(
                "IllegalSubnetPoolIpVersionAssociationToAddressScope",
                format!("Illegal subnetpool association: subnetpool {} cannot associate with address scope {scope_id} because subnetpool ip_version is not {}.", pool.id, scope.ip_version),
            ));
        }
        let mine = prefixes(pool);
        for other in store::pools_of_scope(c, scope_id).await? {
            if other.id == pool.id {
                continue;
            }
            if prefixes(&other)
                .iter()
                .any(|o| mine.iter().any(|m| m.overlaps(o)))
            {
                return Err(NetworkError::conflict(
                    "AddressScopePrefixConflict",
                    "Failed to associate address scope: subnetpools within an address scope must have unique prefixes.",
                ));
            }
        }
        if old.is_some_and(|o| o.address_scope_id != pool.address_scope_id) {
            // Every subnet of the family on the pool's networks must come from this pool,
            // or the network would be in two scopes (or partly in none).
            for s in store::subnets_of_pool(c, &pool.id).await? {
                let stray = store::subnets_of_network(c, &s.network_id)
                    .await?
                    .iter()
                    .any(|o| {
                        o.ip_version == pool.ip_version
                            && o.subnetpool_id.as_deref() != Some(pool.id.as_str())
                    });
                if stray {
                    return Err(affinity_error());
                }
            }
        }
        Ok(())
    }

    /// Refuses a non-administrator's change to a pool in another project's (shared) scope.
    pub(crate) async fn check_pool_update_allowed(
        &self,
        c: &mut AnyConnection,
        ctx: &AuthContext,
        pool: &SubnetPool,
    ) -> Result<()> {
        let Some(scope_id) = &pool.address_scope_id else {
            return Ok(());
        };
        let owner = store::get_address_scope(c, scope_id)
            .await?
            .map(|s| s.project_id);
        if self.is_admin(ctx) || owner.as_deref() == ctx.project_id() {
            return Ok(());
        }
        Err(NetworkError::bad(
            "IllegalSubnetPoolUpdate",
            format!("Illegal subnetpool update : subnetpool {} cannot be updated when associated with shared address scope {scope_id}.", pool.id),
        ))
    }

    /// Whether a new subnet of `ip_version` from `pool` (or from none) may join the network
    /// whose subnets are `existing`: with a scope on that family, only from a pool of the
    /// same scope; without, only from the pool the others came from (or none if they did).
    pub(crate) async fn check_network_affinity(
        &self,
        c: &mut AnyConnection,
        existing: &[Subnet],
        ip_version: i64,
        pool: Option<&SubnetPool>,
    ) -> Result<(), Failure> {
        let same_family: Vec<&Subnet> = existing
            .iter()
            .filter(|s| s.ip_version == ip_version)
            .collect();
        let mut network_scope = None;
        for s in &same_family {
            if let Some(pid) = &s.subnetpool_id {
                if let Some(p) = store::get_subnet_pool(c, pid).await? {
                    if p.address_scope_id.is_some() {
                        network_scope = p.address_scope_id;
                        break;
                    }
                }
            }
        }
        match (&network_scope, pool) {
            (Some(scope), Some(p)) if p.address_scope_id.as_ref() != Some(scope) => {
                Err(affinity_error().into())
            }
            (Some(_), Some(_)) => Ok(()),
            (None, Some(p)) => {
                if same_family
                    .iter()
                    .any(|s| s.subnetpool_id.as_deref() != Some(p.id.as_str()))
                {
                    Err(pool_affinity_error().into())
                } else {
                    Ok(())
                }
            }
            (_, None) => {
                if same_family.iter().any(|s| s.subnetpool_id.is_some()) {
                    Err(pool_affinity_error().into())
                } else {
                    Ok(())
                }
            }
        }
    }
}
