//! Subnet pools (`subnet_allocation`): prefixes a subnet's CIDR may be allocated from,
//! either a chosen CIDR inside the pool or the first free prefix of the asked length.
//! Subnets of one pool never overlap; a pool with subnets is not deleted. A pool may belong
//! to an address scope (`address_scope_id`, checked in [`super::address_scopes`]).

use ferrostack_common::time::now_micros;
use ferrostack_common::AuthContext;
use ferrostack_db::sqlx::AnyConnection;
use serde_json::{json, Value};

use super::body::{self, Attrs};
use super::{new_id, Failure, NetworkService};
use crate::error::{NetworkError, Result};
use crate::ipam::{self, Cidr};
use crate::model::*;
use crate::store;
use crate::views;

const WRITABLE: &[&str] = &[
    "name",
    "description",
    "prefixes",
    "default_prefixlen",
    "min_prefixlen",
    "max_prefixlen",
    "default_quota",
    "shared",
    "is_default",
    "address_scope_id",
    "project_id",
    "tenant_id",
    "tags",
];
const READ_ONLY: &[&str] = &[
    "id",
    "ip_version",
    "created_at",
    "updated_at",
    "revision_number",
];

pub fn target(p: &SubnetPool) -> Value {
    json!({"project_id": p.project_id, "tenant_id": p.project_id, "shared": p.shared})
}

fn parse_prefixes(items: &[Value]) -> Result<Vec<Cidr>> {
    if items.is_empty() {
        return Err(NetworkError::bad(
            "EmptySubnetPoolPrefixList",
            "Empty subnet pool prefix list.",
        ));
    }
    let mut out: Vec<Cidr> = Vec::new();
    for i in items {
        let text = i.as_str().ok_or_else(|| {
            NetworkError::invalid_attr("prefixes", format!("'{i}' is not a valid IP subnet"))
        })?;
        let c = Cidr::parse(text, false).map_err(|e| NetworkError::invalid_attr("prefixes", e))?;
        if out.first().is_some_and(|f| f.version != c.version) {
            return Err(NetworkError::bad(
                "PrefixVersionMismatch",
                "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.",
            ));
        }
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out.sort_by_key(|c| (c.network, c.prefix));
    Ok(out)
}

/// `address_scope_id` of a request: a UUID, or `null` for no scope (`Some(None)`).
fn scope_id(attrs: &Attrs) -> Result<Option<Option<String>>> {
    match body::nullable_string(attrs, "address_scope_id", 36) {
        Ok(Some(Some(id))) if uuid::Uuid::try_parse(&id).is_err() => Err(
            NetworkError::invalid_attr("address_scope_id", format!("'{id}' is not a valid UUID")),
        ),
        Ok(v) => Ok(v),
        Err(_) => Err(NetworkError::invalid_attr(
            "address_scope_id",
            format!("'{}' is not a valid UUID", attrs["address_scope_id"]),
        )),
    }
}

/// Checks `cidr` lies inside one of the pool's prefixes and within its length bounds.
pub fn check_in_pool(pool: &SubnetPool, cidr: &Cidr) -> Result<()> {
    let inside = pool
        .prefixes
        .iter()
        .filter_map(|p| Cidr::parse(p, false).ok())
        .any(|p| {
            p.version == cidr.version
                && cidr.prefix >= p.prefix
                && cidr.first() >= p.first()
                && cidr.last() <= p.last()
        });
    if !inside {
        return Err(NetworkError::bad("SubnetAllocationError", format!("Failed to allocate subnet: Cidr {cidr} is not within the prefixes of subnet pool {}.", pool.id)));
    }
    if (cidr.prefix as i64) < pool.min_prefixlen || (cidr.prefix as i64) > pool.max_prefixlen {
        return Err(NetworkError::bad("SubnetAllocationError", format!("Failed to allocate subnet: Unsupported prefix length {} (the pool allows {} to {}).", cidr.prefix, pool.min_prefixlen, pool.max_prefixlen)));
    }
    Ok(())
}

impl NetworkService {
    async fn visible_pool(
        &self,
        c: &mut AnyConnection,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<SubnetPool> {
        match store::get_subnet_pool(c, id).await? {
            Some(p) if self.allowed(ctx, "get_subnetpool", &target(&p)) => Ok(p),
            _ => Err(NetworkError::not_found(
                "SubnetPoolNotFound",
                format!("Subnet pool {id} could not be found."),
            )),
        }
    }

    pub async fn list_subnet_pools(&self, ctx: &AuthContext) -> Result<Vec<Value>> {
        let mut c = self.conn().await?;
        let scope = self.list_scope(ctx);
        Ok(store::list_subnet_pools(&mut c, scope.as_deref())
            .await?
            .iter()
            .filter(|p| scope.is_none() || self.allowed(ctx, "get_subnetpool", &target(p)))
            .map(views::subnet_pool)
            .collect())
    }

    pub async fn show_subnet_pool(&self, ctx: &AuthContext, id: &str) -> Result<Value> {
        let mut c = self.conn().await?;
        Ok(views::subnet_pool(
            &self.visible_pool(&mut c, ctx, id).await?,
        ))
    }

    /// Applies the prefix length attributes of a request to `p`, checked together.
    fn set_prefixlens(p: &mut SubnetPool, attrs: &Attrs, creating: bool) -> Result<()> {
        let bits = if p.ip_version == 4 { 32 } else { 128 };
        let get = |k: &str| -> Result<Option<i64>> { Ok(body::integer(attrs, k)?.flatten()) };
        if let Some(v) = get("min_prefixlen")? {
            p.min_prefixlen = v;
        }
        if let Some(v) = get("max_prefixlen")? {
            p.max_prefixlen = v;
        }
        match get("default_prefixlen")? {
            Some(v) => p.default_prefixlen = v,
            None if creating => p.default_prefixlen = p.min_prefixlen,
            None => {}
        }
        if p.min_prefixlen < 0 || p.min_prefixlen > p.max_prefixlen {
            return Err(NetworkError::bad(
                "IllegalSubnetPoolPrefixBounds",
                format!(
                    "Illegal prefix bounds: min_prefixlen={}, max_prefixlen={}.",
                    p.min_prefixlen, p.max_prefixlen
                ),
            ));
        }
        if p.max_prefixlen > bits {
            return Err(NetworkError::bad(
                "IllegalSubnetPoolPrefixBounds",
                format!(
                    "Illegal prefix bounds: max_prefixlen={} is beyond {bits}.",
                    p.max_prefixlen
                ),
            ));
        }
        if p.default_prefixlen < p.min_prefixlen || p.default_prefixlen > p.max_prefixlen {
            return Err(NetworkError::bad(
                "IllegalSubnetPoolPrefixBounds",
                format!(
                    "Illegal prefix bounds: default_prefixlen={} is not between {} and {}.",
                    p.default_prefixlen, p.min_prefixlen, p.max_prefixlen
                ),
            ));
        }
        Ok(())
    }

    pub async fn create_subnet_pool(&self, ctx: &AuthContext, request: &Value) -> Result<Value> {
        let attrs = body::resource(request, "subnetpool")?;
        body::check(&attrs, WRITABLE, READ_ONLY, true)?;
        let project = body::owner(&attrs, &self.project_of(ctx)?)?;
        let probe = json!({"project_id": project, "tenant_id": project});
        self.authorize(ctx, "create_subnetpool", &probe)?;
        for a in ["shared", "is_default"] {
            if attrs.contains_key(a) {
                self.authorize(ctx, &format!("create_subnetpool:{a}"), &probe)?;
            }
        }
        let address_scope_id = scope_id(&attrs)?.flatten();
        let prefixes = parse_prefixes(body::list(&attrs, "prefixes")?.ok_or_else(|| {
            NetworkError::bad_request(
                "Failed to parse request. Required attribute 'prefixes' not specified",
            )
        })?)?;
        let ip_version = prefixes[0].version as i64;
        let now = now_micros();
        let mut pool = SubnetPool {
            id: new_id(),
            project_id: project,
            name: body::string(&attrs, "name", body::NAME_MAX)?.unwrap_or_default(),
            description: body::string(&attrs, "description", body::DESCRIPTION_MAX)?
                .unwrap_or_default(),
            prefixes: prefixes.iter().map(|c| c.to_string()).collect(),
            ip_version,
            default_prefixlen: 0,
            min_prefixlen: if ip_version == 4 { 8 } else { 64 },
            max_prefixlen: if ip_version == 4 { 32 } else { 128 },
            default_quota: body::integer(&attrs, "default_quota")?.flatten(),
            shared: body::boolean(&attrs, "shared")?.unwrap_or(false),
            is_default: body::boolean(&attrs, "is_default")?.unwrap_or(false),
            address_scope_id,
            tags: body::string_list(&attrs, "tags", body::TAG_MAX)?.unwrap_or_default(),
            revision_number: 1,
            created_at: now,
            updated_at: now,
        };
        Self::set_prefixlens(&mut pool, &attrs, true)?;
        let mut tx = self.db.begin_write().await?;
        if pool.is_default {
            self.check_single_default(&mut tx, &pool).await?;
        }
        self.check_pool_scope(&mut tx, ctx, &pool, None).await?;
        store::insert_subnet_pool(&mut tx, &pool).await?;
        tx.commit().await?;
        Ok(views::subnet_pool(&pool))
    }

    /// Only one default pool per IP version.
    async fn check_single_default(&self, c: &mut AnyConnection, pool: &SubnetPool) -> Result<()> {
        let taken = store::list_subnet_pools(c, None)
            .await?
            .into_iter()
            .find(|p| p.is_default && p.ip_version == pool.ip_version && p.id != pool.id);
        match taken {
            Some(p) => Err(NetworkError::bad("InvalidInput", format!("Invalid input for operation: A default subnetpool for this IP family has already been set ({}).", p.id))),
            None => Ok(()),
        }
    }

    pub async fn update_subnet_pool(
        &self,
        ctx: &AuthContext,
        id: &str,
        request: &Value,
    ) -> Result<Value> {
        let attrs = body::resource(request, "subnetpool")?;
        let writable: Vec<&str> = WRITABLE
            .iter()
            .copied()
            .filter(|a| !matches!(*a, "project_id" | "tenant_id" | "shared"))
            .collect();
        let mut ro = READ_ONLY.to_vec();
        ro.extend(["project_id", "tenant_id", "shared"]);
        body::check(&attrs, &writable, &ro, false)?;
        let mut tx = self.db.begin_write().await?;
        let mut p = self.visible_pool(&mut tx, ctx, id).await?;
        self.authorize(ctx, "update_subnetpool", &target(&p))?;
        if attrs.contains_key("is_default") {
            self.authorize(ctx, "update_subnetpool:is_default", &target(&p))?;
        }
        self.check_pool_update_allowed(&mut tx, ctx, &p).await?;
        let old = p.clone();
        if let Some(v) = scope_id(&attrs)? {
            p.address_scope_id = v;
        }
        if let Some(v) = body::string(&attrs, "name", body::NAME_MAX)? {
            p.name = v;
        }
        if let Some(v) = body::string(&attrs, "description", body::DESCRIPTION_MAX)? {
            p.description = v;
        }
        if let Some(items) = body::list(&attrs, "prefixes")? {
            let new = parse_prefixes(items)?;
            let covered = p
                .prefixes
                .iter()
                .filter_map(|o| Cidr::parse(o, false).ok())
                .all(|o| {
                    new.iter().any(|n| {
                        n.version == o.version && n.first() <= o.first() && n.last() >= o.last()
                    })
                });
            if !covered || new[0].version as i64 != p.ip_version {
                return Err(NetworkError::bad("IllegalSubnetPoolPrefixUpdate", format!("Illegal update to prefixes: existing prefixes of subnet pool {id} must be covered by the new ones.")));
            }
            p.prefixes = new.iter().map(|c| c.to_string()).collect();
        }
        if let Some(v) = body::integer(&attrs, "default_quota")? {
            p.default_quota = v;
        }
        if let Some(v) = body::boolean(&attrs, "is_default")? {
            p.is_default = v;
            if v {
                self.check_single_default(&mut tx, &p).await?;
            }
        }
        if let Some(v) = body::string_list(&attrs, "tags", body::TAG_MAX)? {
            p.tags = v;
        }
        Self::set_prefixlens(&mut p, &attrs, false)?;
        self.check_pool_scope(&mut tx, ctx, &p, Some(&old)).await?;
        p.revision_number += 1;
        p.updated_at = now_micros();
        store::update_subnet_pool(&mut tx, &p).await?;
        tx.commit().await?;
        Ok(views::subnet_pool(&p))
    }

    pub async fn delete_subnet_pool(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let p = self.visible_pool(&mut tx, ctx, id).await?;
        self.authorize(ctx, "delete_subnetpool", &target(&p))?;
        if !store::subnets_of_pool(&mut tx, id).await?.is_empty() {
            return Err(NetworkError::conflict(
                "SubnetPoolInUse",
                format!(
                    "Subnet pool {id} could not be deleted: it is in use by one or more subnets."
                ),
            ));
        }
        store::delete_subnet_pool(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The pool a new subnet draws from: `subnetpool_id`, or the default pool of its IP
    /// version with `use_default_subnetpool`.
    pub(crate) async fn pool_for_subnet(
        &self,
        ctx: &AuthContext,
        attrs: &Attrs,
        ip_version: i64,
    ) -> Result<Option<SubnetPool>> {
        let mut c = self.conn().await?;
        let pool = match body::nullable_string(attrs, "subnetpool_id", 36)?.flatten() {
            Some(id) => Some(self.visible_pool(&mut c, ctx, &id).await?),
            None if body::boolean(attrs, "use_default_subnetpool")? == Some(true) => {
                let found = store::list_subnet_pools(&mut c, None)
                    .await?
                    .into_iter()
                    .find(|p| p.is_default && p.ip_version == ip_version);
                Some(found.ok_or_else(|| {
                    NetworkError::bad(
                        "BadRequest",
                        format!(
                            "Bad subnets request: No default subnetpool found for IPv{ip_version}."
                        ),
                    )
                })?)
            }
            None => None,
        };
        if let Some(p) = &pool {
            if p.ip_version != ip_version {
                return Err(NetworkError::invalid(format!(
                    "Cannot allocate IPv{ip_version} subnet from IPv{} subnet pool",
                    p.ip_version
                )));
            }
        }
        Ok(pool)
    }

    /// The first free prefix of `prefixlen` in `pool`, inside the creating transaction.
    pub(crate) async fn allocate_from_pool(
        &self,
        c: &mut AnyConnection,
        pool: &SubnetPool,
        prefixlen: u8,
    ) -> Result<Cidr, Failure> {
        let used: Vec<Cidr> = store::subnets_of_pool(c, &pool.id)
            .await?
            .iter()
            .filter_map(|s| Cidr::parse(&s.cidr, false).ok())
            .collect();
        let prefixes: Vec<Cidr> = pool
            .prefixes
            .iter()
            .filter_map(|p| Cidr::parse(p, false).ok())
            .collect();
        ipam::allocate_prefix(&prefixes, prefixlen, &used).ok_or_else(|| {
            Failure::Api(NetworkError::conflict("SubnetAllocationError", format!("Failed to allocate subnet: Insufficient prefix space to allocate subnet size /{prefixlen}.")))
        })
    }
}
