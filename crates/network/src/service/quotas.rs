//! Quotas per project (Neutron's DB quota driver): defaults from the configuration,
//! overrides per project and resource, enforced when a resource is created by counting
//! the project's rows inside the creating transaction.

use ferrostack_common::AuthContext;
use ferrostack_db::sqlx::AnyConnection;
use serde_json::{json, Map, Value};

use super::{Failure, NetworkService};
use crate::error::{NetworkError, Result};
use crate::store;

/// The table counted for each resource with a quota that exists here.
fn table_of(resource: &str) -> Option<&'static str> {
    Some(match resource {
        "network" => "network_networks",
        "subnet" => "network_subnets",
        "port" => "network_ports",
        "security_group" => "network_security_groups",
        "security_group_rule" => "network_security_group_rules",
        "router" => "network_routers",
        "floatingip" => "network_floatingips",
        "rbac_policy" => "network_rbac_policies",
        _ => return None,
    })
}

impl NetworkService {
    /// The limits of `project`: defaults with its overrides applied, in Neutron's order.
    pub async fn quota_limits(
        &self,
        c: &mut AnyConnection,
        project: &str,
    ) -> Result<Vec<(&'static str, i64)>> {
        let overrides = store::quota_overrides(c, project).await?;
        Ok(self
            .config
            .quota
            .pairs()
            .into_iter()
            .map(|(r, d)| {
                (
                    r,
                    overrides
                        .iter()
                        .find(|(o, _)| o == r)
                        .map_or(d, |(_, l)| *l),
                )
            })
            .collect())
    }

    /// Refuses `delta` more of `resource` beyond the project's limit (-1: unlimited).
    pub(crate) async fn check_quota(
        &self,
        c: &mut AnyConnection,
        project: &str,
        resource: &str,
        delta: i64,
    ) -> Result<(), Failure> {
        let limits = self.quota_limits(c, project).await?;
        let Some((_, limit)) = limits.iter().find(|(r, _)| *r == resource) else {
            return Ok(());
        };
        if *limit < 0 {
            return Ok(());
        }
        let Some(table) = table_of(resource) else {
            return Ok(());
        };
        let used = store::count_owned(c, table, project).await?;
        if used + delta > *limit {
            return Err(Failure::Api(NetworkError::over_quota(resource)));
        }
        Ok(())
    }

    fn quota_caller(&self, ctx: &AuthContext, project: &str, rule: &str) -> Result<()> {
        if self.allowed(
            ctx,
            rule,
            &json!({"project_id": project, "tenant_id": project}),
        ) {
            Ok(())
        } else if rule == "get_quota" {
            Err(NetworkError::new(axum::http::StatusCode::FORBIDDEN, "AdminRequired", "User does not have admin privileges: Only admin is authorized to access quotas for another project."))
        } else {
            Err(NetworkError::new(
                axum::http::StatusCode::FORBIDDEN,
                "AdminRequired",
                "User does not have admin privileges: Only admin can edit quotas.",
            ))
        }
    }

    fn quota_body(limits: &[(&'static str, i64)]) -> Value {
        Value::Object(
            limits
                .iter()
                .map(|(r, l)| (r.to_string(), json!(l)))
                .collect::<Map<_, _>>(),
        )
    }

    pub async fn show_quota(&self, ctx: &AuthContext, project: &str) -> Result<Value> {
        self.quota_caller(ctx, project, "get_quota")?;
        let mut c = self.conn().await?;
        Ok(Self::quota_body(&self.quota_limits(&mut c, project).await?))
    }

    pub fn default_quota(&self) -> Value {
        Self::quota_body(&self.config.quota.pairs())
    }

    pub async fn quota_details(&self, ctx: &AuthContext, project: &str) -> Result<Value> {
        self.quota_caller(ctx, project, "get_quota")?;
        let mut c = self.conn().await?;
        let mut out = Map::new();
        for (r, limit) in self.quota_limits(&mut c, project).await? {
            let used = match table_of(r) {
                Some(t) => store::count_owned(&mut c, t, project).await?,
                None => 0,
            };
            out.insert(
                r.to_string(),
                json!({"used": used, "limit": limit, "reserved": 0}),
            );
        }
        Ok(Value::Object(out))
    }

    /// Projects with limits of their own, each with all its limits (admins only).
    pub async fn list_quotas(&self, ctx: &AuthContext) -> Result<Vec<Value>> {
        if !self.is_admin(ctx) {
            return Err(NetworkError::new(
                axum::http::StatusCode::FORBIDDEN,
                "AdminRequired",
                "User does not have admin privileges: Only admin can list quotas of all projects.",
            ));
        }
        let mut c = self.conn().await?;
        let mut out = Vec::new();
        for p in store::quota_projects(&mut c).await? {
            let mut q = Self::quota_body(&self.quota_limits(&mut c, &p).await?);
            q["project_id"] = json!(p);
            q["tenant_id"] = json!(p);
            out.push(q);
        }
        Ok(out)
    }

    pub async fn update_quota(
        &self,
        ctx: &AuthContext,
        project: &str,
        request: &Value,
    ) -> Result<Value> {
        self.quota_caller(ctx, project, "update_quota")?;
        let attrs = super::body::resource(request, "quota")?;
        let known: Vec<&str> = self.config.quota.pairs().iter().map(|(r, _)| *r).collect();
        super::body::check(&attrs, &known, &[], false)?;
        let mut values = Vec::new();
        for (r, v) in &attrs {
            let n = super::body::integer(&attrs, r)?
                .flatten()
                .ok_or_else(|| NetworkError::invalid_attr(r, format!("'{v}' is not an integer")))?;
            if n < -1 {
                return Err(NetworkError::invalid_attr(
                    r,
                    format!("'{n}' should be greater than or equal to -1"),
                ));
            }
            values.push((r.clone(), n));
        }
        let mut tx = self.db.begin_write().await?;
        for (r, n) in values {
            store::set_quota(&mut tx, project, &r, n).await?;
        }
        let limits = self.quota_limits(&mut tx, project).await?;
        tx.commit().await?;
        Ok(Self::quota_body(&limits))
    }

    pub async fn delete_quota(&self, ctx: &AuthContext, project: &str) -> Result<()> {
        self.quota_caller(ctx, project, "delete_quota")?;
        let mut tx = self.db.begin_write().await?;
        store::delete_quotas(&mut tx, project).await?;
        tx.commit().await?;
        Ok(())
    }
}
