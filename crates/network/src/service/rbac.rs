//! RBAC policies (`rbac-policies`): a network's owner (or an administrator) grants another
//! project `access_as_shared` (the project sees the network and its subnets and may put
//! ports on it; the network says `shared: true` to that project, as Neutron's does) or
//! `access_as_external` (the network becomes `router:external`). The `*` target is every
//! project and only administrators may name it by default. The `shared` and
//! `router:external` flags of a network and its wildcard policies are one thing: setting
//! the flag writes the policy, and the policy sets the flag.
//!
//! A policy another project depends on is not removed or retargeted (409
//! `RbacPolicyInUse`): for `access_as_shared`, ports of the project losing access (for
//! `*`, of any project no other policy covers); for `access_as_external`, routers of those
//! projects with their gateway on the network.

use ferrostack_common::time::now_micros;
use ferrostack_common::AuthContext;
use ferrostack_db::sqlx::AnyConnection;
use serde_json::{json, Value};

use super::body;
use super::{new_id, NetworkService};
use crate::error::{NetworkError, Result};
use crate::model::*;
use crate::store;

const WRITABLE: &[&str] = &[
    "object_type",
    "object_id",
    "action",
    "target_tenant",
    "project_id",
    "tenant_id",
];
const READ_ONLY: &[&str] = &["id"];
const OBJECT_TYPES: &[&str] = &["network"];
const NETWORK_ACTIONS: &[&str] = &[ACCESS_EXTERNAL, ACCESS_SHARED];

/// Ports Neutron makes without a project (gateway, floating IP) or for the network itself
/// (DHCP, metadata): they depend on no policy.
fn service_port(p: &Port) -> bool {
    matches!(
        p.device_owner.as_str(),
        OWNER_DHCP | OWNER_DISTRIBUTED | OWNER_ROUTER_GATEWAY | OWNER_FLOATINGIP
    )
}

pub fn view(p: &RbacPolicy) -> Value {
    json!({
        "id": p.id,
        "project_id": p.project_id,
        "tenant_id": p.project_id,
        "object_type": p.object_type,
        "object_id": p.object_id,
        "action": p.action,
        "target_tenant": p.target_project,
    })
}

fn target(p: &RbacPolicy) -> Value {
    json!({"project_id": p.project_id, "tenant_id": p.project_id, "target_tenant": p.target_project})
}

fn not_found(id: &str, object_type: &str) -> NetworkError {
    NetworkError::not_found(
        "RbacPolicyNotFound",
        format!("RBAC policy of type {object_type} with ID {id} not found"),
    )
}

fn in_use(object_id: &str, details: &str) -> NetworkError {
    NetworkError::conflict(
        "RbacPolicyInUse",
        format!("RBAC policy on object {object_id} cannot be removed because other objects depend on it.\nDetails: {details}"),
    )
}

/// `*` or a project id (a UUID, with or without dashes), as Neutron's validator.
fn check_target(attrs: &body::Attrs) -> Result<Option<String>> {
    match attrs.get("target_tenant") {
        None => Ok(None),
        Some(Value::String(t)) if t == "*" || uuid::Uuid::try_parse(t).is_ok() => {
            Ok(Some(t.clone()))
        }
        Some(Value::String(t)) => Err(NetworkError::invalid(format!(
            "'{t}' is not a valid target project ID; expected a UUID or '*'"
        ))),
        Some(other) => Err(NetworkError::invalid_attr(
            "target_tenant",
            format!("'{other}' is not a valid string"),
        )),
    }
}

impl NetworkService {
    async fn visible_rbac_policy(
        &self,
        c: &mut AnyConnection,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<RbacPolicy> {
        match store::get_rbac_policy(c, id).await? {
            Some(p) if self.allowed(ctx, "get_rbac_policy", &target(&p)) => Ok(p),
            Some(p) => Err(not_found(id, &p.object_type)),
            None => Err(not_found(id, "unknown")),
        }
    }

    pub async fn list_rbac_policies(&self, ctx: &AuthContext) -> Result<Vec<Value>> {
        let mut c = self.conn().await?;
        let scope = self.list_scope(ctx);
        Ok(store::list_rbac_policies(&mut c, scope.as_deref())
            .await?
            .iter()
            .filter(|p| scope.is_none() || self.allowed(ctx, "get_rbac_policy", &target(p)))
            .map(view)
            .collect())
    }

    pub async fn show_rbac_policy(&self, ctx: &AuthContext, id: &str) -> Result<Value> {
        let mut c = self.conn().await?;
        Ok(view(&self.visible_rbac_policy(&mut c, ctx, id).await?))
    }

    /// The policy's network, which the caller must own unless an administrator.
    async fn policy_network(
        &self,
        c: &mut AnyConnection,
        ctx: &AuthContext,
        network_id: &str,
    ) -> Result<Network> {
        let n = match store::get_network(c, network_id).await? {
            Some(n) if self.allowed(ctx, "get_network", &super::networks::target(&n)) => n,
            _ => {
                return Err(NetworkError::invalid(format!(
                    "Network {network_id} could not be found"
                )))
            }
        };
        if !self.is_admin(ctx) && ctx.project_id() != Some(n.project_id.as_str()) {
            return Err(NetworkError::invalid(
                "Only admins can manipulate policies on networks they do not own",
            ));
        }
        Ok(n)
    }

    pub async fn create_rbac_policy(&self, ctx: &AuthContext, request: &Value) -> Result<Value> {
        let attrs = body::resource(request, "rbac_policy")?;
        body::check(&attrs, WRITABLE, READ_ONLY, true)?;
        let project = body::owner(&attrs, &self.project_of(ctx)?)?;
        let required = |k: &str| {
            NetworkError::bad_request(format!(
                "Failed to parse request. Required attribute '{k}' not specified"
            ))
        };
        let object_type = body::nullable_string(&attrs, "object_type", 255)?
            .flatten()
            .ok_or_else(|| required("object_type"))?
            .trim()
            .to_lowercase();
        if !OBJECT_TYPES.contains(&object_type.as_str()) {
            return Err(NetworkError::invalid(format!(
                "'{object_type}' is not a valid RBAC object type"
            )));
        }
        let object_id =
            body::string(&attrs, "object_id", 36)?.ok_or_else(|| required("object_id"))?;
        let action = body::string(&attrs, "action", 255)?.ok_or_else(|| required("action"))?;
        if !NETWORK_ACTIONS.contains(&action.as_str()) {
            return Err(NetworkError::bad("InvalidActionForType", format!("Invalid action '{action}' for object type '{object_type}'. Valid actions: {NETWORK_ACTIONS:?}")));
        }
        let target_project = check_target(&attrs)?.ok_or_else(|| required("target_tenant"))?;
        let policy = RbacPolicy {
            id: new_id(),
            project_id: project,
            object_type,
            object_id,
            action,
            target_project,
        };
        self.authorize(ctx, "create_rbac_policy", &target(&policy))?;
        if policy.target_project == "*" {
            self.authorize(ctx, "create_rbac_policy:target_tenant", &target(&policy))?;
        }
        let mut tx = self.db.begin_write().await?;
        self.check_quota(&mut tx, &policy.project_id, "rbac_policy", 1)
            .await?;
        let mut n = self.policy_network(&mut tx, ctx, &policy.object_id).await?;
        let duplicate = store::rbac_policies_of(&mut tx, "network", &n.id)
            .await?
            .iter()
            .any(|p| p.action == policy.action && p.target_project == policy.target_project);
        if duplicate {
            return Err(NetworkError::conflict(
                "DuplicateRbacPolicy",
                "An RBAC policy already exists with those values.",
            ));
        }
        if let Err(e) = store::insert_rbac_policy(&mut tx, &policy).await {
            if ferrostack_db::is_unique_violation(&e) {
                return Err(NetworkError::conflict(
                    "DuplicateRbacPolicy",
                    "An RBAC policy already exists with those values.",
                ));
            }
            return Err(e.into());
        }
        if policy.action == ACCESS_SHARED && policy.target_project == "*" {
            n.shared = true;
        }
        if policy.action == ACCESS_EXTERNAL {
            n.external = true;
        }
        self.save_network_flags(&mut tx, &mut n).await?;
        tx.commit().await?;
        self.push_network(&policy.object_id).await;
        Ok(view(&policy))
    }

    /// Saves the network's `shared`/`external` after a policy change, with a new revision.
    async fn save_network_flags(&self, c: &mut AnyConnection, n: &mut Network) -> Result<()> {
        n.revision_number += 1;
        n.updated_at = now_micros();
        store::update_network(c, n).await?;
        Ok(())
    }

    /// Refuses when `losing` (a project or `*`) still needs access to the network through
    /// `policy`, which is about to go or to name `new_target` instead.
    async fn check_policy_unused(
        &self,
        c: &mut AnyConnection,
        n: &Network,
        policy: &RbacPolicy,
        new_target: Option<&str>,
    ) -> Result<()> {
        let others: Vec<RbacPolicy> = store::rbac_policies_of(c, "network", &n.id)
            .await?
            .into_iter()
            .filter(|p| p.id != policy.id && p.action == policy.action)
            .collect();
        let losing = policy.target_project.as_str();
        if policy.action == ACCESS_SHARED {
            if losing == n.project_id {
                return Ok(());
            }
            let ports = store::ports_of_network(c, &n.id).await?;
            let stranded = if losing == "*" {
                let mut allowed: Vec<&str> =
                    others.iter().map(|p| p.target_project.as_str()).collect();
                allowed.push(&n.project_id);
                ports
                    .iter()
                    .any(|p| !service_port(p) && !allowed.contains(&p.project_id.as_str()))
            } else if others.iter().any(|p| p.target_project == "*") {
                false
            } else {
                ports
                    .iter()
                    .any(|p| !service_port(p) && p.project_id == losing)
            };
            if stranded {
                return Err(in_use(&n.id, &format!("Unable to reconfigure sharing settings for network {}. Multiple projects are using it.", n.id)));
            }
            return Ok(());
        }
        // access_as_external: routers with their gateway on the network.
        let routers: Vec<Router> = store::list_routers(c, None)
            .await?
            .into_iter()
            .filter(|r| r.gateway_network_id.as_deref() == Some(n.id.as_str()))
            .collect();
        let stranded = if losing == "*" {
            if n.is_default {
                return Err(in_use(
                    &n.id,
                    "Default external networks must be shared to everyone.",
                ));
            }
            let mut allowed: Vec<&str> = others
                .iter()
                .map(|p| p.target_project.as_str())
                .filter(|t| *t != "*")
                .collect();
            allowed.extend(new_target);
            routers
                .iter()
                .any(|r| !allowed.contains(&r.project_id.as_str()))
        } else if others.iter().any(|p| p.target_project == "*") {
            false
        } else {
            routers.iter().any(|r| r.project_id == losing)
        };
        if stranded {
            return Err(in_use(
                &n.id,
                "There are routers attached to this network that depend on this policy for access.",
            ));
        }
        if others.is_empty() && new_target.is_none() && !routers.is_empty() {
            // The network would stop being external under its owner's routers.
            return Err(in_use(
                &n.id,
                "There are routers attached to this network that depend on this policy for access.",
            ));
        }
        Ok(())
    }

    pub async fn update_rbac_policy(
        &self,
        ctx: &AuthContext,
        id: &str,
        request: &Value,
    ) -> Result<Value> {
        let attrs = body::resource(request, "rbac_policy")?;
        let mut ro = READ_ONLY.to_vec();
        ro.extend([
            "object_type",
            "object_id",
            "action",
            "project_id",
            "tenant_id",
        ]);
        body::check(&attrs, &["target_tenant"], &ro, false)?;
        let mut tx = self.db.begin_write().await?;
        let mut policy = self.visible_rbac_policy(&mut tx, ctx, id).await?;
        self.authorize(ctx, "update_rbac_policy", &target(&policy))?;
        let Some(new_target) = check_target(&attrs)? else {
            return Ok(view(&policy));
        };
        if new_target == "*" {
            let mut probe = target(&policy);
            probe["target_tenant"] = json!("*");
            self.authorize(ctx, "update_rbac_policy:target_tenant", &probe)?;
        }
        if new_target == policy.target_project {
            return Ok(view(&policy));
        }
        let mut n = self.policy_network(&mut tx, ctx, &policy.object_id).await?;
        self.check_policy_unused(&mut tx, &n, &policy, Some(&new_target))
            .await?;
        let taken = store::rbac_policies_of(&mut tx, "network", &n.id)
            .await?
            .iter()
            .any(|p| p.action == policy.action && p.target_project == new_target);
        if taken {
            return Err(NetworkError::conflict(
                "DuplicateRbacPolicy",
                "An RBAC policy already exists with those values.",
            ));
        }
        store::update_rbac_target(&mut tx, id, &new_target).await?;
        policy.target_project = new_target;
        if policy.action == ACCESS_SHARED {
            n.shared = store::rbac_policies_of(&mut tx, "network", &n.id)
                .await?
                .iter()
                .any(|p| p.action == ACCESS_SHARED && p.target_project == "*");
        }
        self.save_network_flags(&mut tx, &mut n).await?;
        tx.commit().await?;
        self.push_network(&policy.object_id).await;
        Ok(view(&policy))
    }

    pub async fn delete_rbac_policy(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let policy = self.visible_rbac_policy(&mut tx, ctx, id).await?;
        self.authorize(ctx, "delete_rbac_policy", &target(&policy))?;
        let Some(mut n) = store::get_network(&mut tx, &policy.object_id).await? else {
            store::delete_rbac_policy(&mut tx, id).await?;
            tx.commit().await?;
            return Ok(());
        };
        self.check_policy_unused(&mut tx, &n, &policy, None).await?;
        store::delete_rbac_policy(&mut tx, id).await?;
        let rest = store::rbac_policies_of(&mut tx, "network", &n.id).await?;
        n.shared = rest
            .iter()
            .any(|p| p.action == ACCESS_SHARED && p.target_project == "*");
        n.external = rest.iter().any(|p| p.action == ACCESS_EXTERNAL);
        if !n.external {
            n.is_default = false;
        }
        self.save_network_flags(&mut tx, &mut n).await?;
        tx.commit().await?;
        self.push_network(&policy.object_id).await;
        Ok(())
    }
}
