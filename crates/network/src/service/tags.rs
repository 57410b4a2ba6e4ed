//! Tags on networks, subnets, ports and security groups (`standard-attr-tag`): replace
//! all, add or remove one, check one, clear. A change bumps the resource's revision.

use ferrostack_common::time::now_micros;
use ferrostack_common::AuthContext;
use ferrostack_db::sqlx::AnyConnection;

use super::NetworkService;
use crate::error::{NetworkError, Result};
use crate::store;

/// The resources that carry tags, by their collection name in URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagged {
    Network,
    Subnet,
    Port,
    SecurityGroup,
    Router,
    FloatingIp,
    SubnetPool,
}

impl Tagged {
    pub fn from_collection(c: &str) -> Option<Tagged> {
        Some(match c {
            "networks" => Tagged::Network,
            "subnets" => Tagged::Subnet,
            "ports" => Tagged::Port,
            "security-groups" => Tagged::SecurityGroup,
            "routers" => Tagged::Router,
            "floatingips" => Tagged::FloatingIp,
            "subnetpools" => Tagged::SubnetPool,
            _ => return None,
        })
    }
}

/// A change to a resource's tag list.
type TagChange<'a> = dyn Fn(&mut Vec<String>) -> Result<()> + Sync + 'a;

pub fn check_tag(tag: &str) -> Result<()> {
    if tag.chars().count() > super::body::TAG_MAX {
        return Err(NetworkError::invalid(format!(
            "'{tag}' exceeds maximum length of {}",
            super::body::TAG_MAX
        )));
    }
    Ok(())
}

impl NetworkService {
    /// Reads (and with `change`, updates) the tags of one resource the caller may see.
    async fn with_tags(
        &self,
        c: &mut AnyConnection,
        ctx: &AuthContext,
        kind: Tagged,
        id: &str,
        change: Option<&TagChange<'_>>,
    ) -> Result<Vec<String>> {
        let now = now_micros();
        macro_rules! apply {
            ($value:expr, $rule:expr, $target:expr, $save:path) => {{
                let mut v = $value;
                if let Some(f) = change {
                    self.authorize(ctx, $rule, &$target)?;
                    f(&mut v.tags)?;
                    v.revision_number += 1;
                    v.updated_at = now;
                    $save(c, &v).await?;
                }
                Ok(v.tags)
            }};
        }
        match kind {
            Tagged::Network => {
                let n = self.visible_network(c, ctx, id).await?;
                let t = super::networks::target(&n);
                apply!(n, "update_network", t, store::update_network)
            }
            Tagged::Subnet => {
                let (s, n) = self.visible_subnet(c, ctx, id).await?;
                let t = super::subnets::target(&s, &n);
                apply!(s, "update_subnet", t, store::update_subnet)
            }
            Tagged::Port => {
                let (p, n) = self.visible_port(c, ctx, id).await?;
                let t = super::ports::target(&p.project_id, &n);
                apply!(p, "update_port", t, store::update_port_row)
            }
            Tagged::SecurityGroup => {
                let g = match store::get_group(c, id).await? {
                    Some(g)
                        if self.allowed(
                            ctx,
                            "get_security_group",
                            &super::security_groups::target(&g.project_id),
                        ) =>
                    {
                        g
                    }
                    _ => return Err(NetworkError::group_not_found(id)),
                };
                let t = super::security_groups::target(&g.project_id);
                apply!(g, "update_security_group", t, store::update_group)
            }
            Tagged::Router => {
                let r = self.visible_router(c, ctx, id).await?;
                let t = super::routers::target(&r.project_id);
                apply!(r, "update_router", t, store::update_router)
            }
            Tagged::SubnetPool => {
                let p = match store::get_subnet_pool(c, id).await? {
                    Some(p)
                        if self.allowed(
                            ctx,
                            "get_subnetpool",
                            &super::subnet_pools::target(&p),
                        ) =>
                    {
                        p
                    }
                    _ => {
                        return Err(NetworkError::not_found(
                            "SubnetPoolNotFound",
                            format!("Subnet pool {id} could not be found."),
                        ))
                    }
                };
                let t = super::subnet_pools::target(&p);
                apply!(p, "update_subnetpool", t, store::update_subnet_pool)
            }
            Tagged::FloatingIp => {
                let f = match store::get_floating_ip(c, id).await? {
                    Some(f)
                        if self.allowed(
                            ctx,
                            "get_floatingip",
                            &super::floating_ips::target(&f.project_id),
                        ) =>
                    {
                        f
                    }
                    _ => {
                        return Err(NetworkError::not_found(
                            "FloatingIPNotFound",
                            format!("Floating IP {id} could not be found"),
                        ))
                    }
                };
                let t = super::floating_ips::target(&f.project_id);
                apply!(f, "update_floatingip", t, store::update_floating_ip)
            }
        }
    }

    pub async fn tags(&self, ctx: &AuthContext, kind: Tagged, id: &str) -> Result<Vec<String>> {
        let mut c = self.conn().await?;
        self.with_tags(&mut c, ctx, kind, id, None).await
    }

    /// 204 when the resource has `tag`, 404 otherwise.
    pub async fn has_tag(
        &self,
        ctx: &AuthContext,
        kind: Tagged,
        id: &str,
        tag: &str,
    ) -> Result<()> {
        if self.tags(ctx, kind, id).await?.iter().any(|t| t == tag) {
            Ok(())
        } else {
            Err(NetworkError::not_found(
                "TagNotFound",
                format!("Tag {tag} could not be found."),
            ))
        }
    }

    async fn change_tags(
        &self,
        ctx: &AuthContext,
        kind: Tagged,
        id: &str,
        f: &TagChange<'_>,
    ) -> Result<Vec<String>> {
        let mut tx = self.db.begin_write().await?;
        let tags = self.with_tags(&mut tx, ctx, kind, id, Some(f)).await?;
        tx.commit().await?;
        Ok(tags)
    }

    pub async fn replace_tags(
        &self,
        ctx: &AuthContext,
        kind: Tagged,
        id: &str,
        tags: Vec<String>,
    ) -> Result<Vec<String>> {
        for t in &tags {
            check_tag(t)?;
        }
        let mut unique: Vec<String> = Vec::new();
        for t in tags {
            if !unique.contains(&t) {
                unique.push(t);
            }
        }
        self.change_tags(ctx, kind, id, &|v| {
            *v = unique.clone();
            Ok(())
        })
        .await
    }

    pub async fn add_tag(
        &self,
        ctx: &AuthContext,
        kind: Tagged,
        id: &str,
        tag: &str,
    ) -> Result<()> {
        check_tag(tag)?;
        if self.tags(ctx, kind, id).await?.iter().any(|t| t == tag) {
            return Ok(());
        }
        self.change_tags(ctx, kind, id, &|v| {
            if !v.iter().any(|t| t == tag) {
                v.push(tag.to_string());
            }
            Ok(())
        })
        .await
        .map(drop)
    }

    pub async fn remove_tag(
        &self,
        ctx: &AuthContext,
        kind: Tagged,
        id: &str,
        tag: &str,
    ) -> Result<()> {
        self.change_tags(ctx, kind, id, &|v| {
            let before = v.len();
            v.retain(|t| t != tag);
            if v.len() == before {
                Err(NetworkError::not_found(
                    "TagNotFound",
                    format!("Tag {tag} could not be found."),
                ))
            } else {
                Ok(())
            }
        })
        .await
        .map(drop)
    }

    pub async fn clear_tags(&self, ctx: &AuthContext, kind: Tagged, id: &str) -> Result<()> {
        self.change_tags(ctx, kind, id, &|v| {
            v.clear();
            Ok(())
        })
        .await
        .map(drop)
    }
}
