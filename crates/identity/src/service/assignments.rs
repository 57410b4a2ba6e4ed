//! Who has which role where: direct grants, grants through groups, inherited grants from a
//! domain or parent project, and implied roles (admin implies manager implies member implies
//! reader). Token issue and validation ask [`Identity::effective_roles`]; the
//! `/v3/role_assignments` API asks [`Identity::list_assignments`].

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::error::Result;
use crate::model::{ActorType, Assignment, Role, TargetType};
use crate::service::Identity;

/// What a role list is computed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleTarget {
    Project(String),
    Domain(String),
    System,
}

/// Filters of `GET /v3/role_assignments`.
#[derive(Debug, Default, Clone)]
pub struct AssignmentFilter {
    pub user_id: Option<String>,
    pub group_id: Option<String>,
    pub role_id: Option<String>,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
    pub system: bool,
    pub effective: bool,
    pub inherited_only: bool,
}

impl Identity {
    /// Ancestors of a project, nearest first.
    pub async fn project_ancestors(&self, project_id: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut current = self
            .store
            .project(project_id)
            .await?
            .and_then(|p| p.parent_id);
        while let Some(id) = current {
            if out.contains(&id) || out.len() > 64 {
                break;
            }
            current = self.store.project(&id).await?.and_then(|p| p.parent_id);
            out.push(id);
        }
        Ok(out)
    }

    /// The role ids `assignments` give on `target`, before implied roles.
    async fn direct_role_ids(
        &self,
        assignments: &[Assignment],
        target: &RoleTarget,
    ) -> Result<BTreeSet<String>> {
        let mut ids = BTreeSet::new();
        match target {
            RoleTarget::System => {
                ids.extend(
                    assignments
                        .iter()
                        .filter(|a| a.target_type == TargetType::System)
                        .map(|a| a.role_id.clone()),
                );
            }
            RoleTarget::Domain(d) => {
                ids.extend(
                    assignments
                        .iter()
                        .filter(|a| {
                            a.target_type == TargetType::Domain && &a.target_id == d && !a.inherited
                        })
                        .map(|a| a.role_id.clone()),
                );
            }
            RoleTarget::Project(p) => {
                let Some(project) = self.store.project(p).await? else {
                    return Ok(ids);
                };
                let ancestors = self.project_ancestors(p).await?;
                for a in assignments {
                    let applies = match a.target_type {
                        TargetType::Project if &a.target_id == p => !a.inherited,
                        TargetType::Project => a.inherited && ancestors.contains(&a.target_id),
                        TargetType::Domain => a.inherited && a.target_id == project.domain_id,
                        TargetType::System => false,
                    };
                    if applies {
                        ids.insert(a.role_id.clone());
                    }
                }
            }
        }
        Ok(ids)
    }

    /// Adds every role implied (transitively) by `ids`.
    pub async fn expand_implied(&self, ids: BTreeSet<String>) -> Result<BTreeSet<String>> {
        let rules = self.store.implied_roles().await?;
        if rules.is_empty() {
            return Ok(ids);
        }
        let mut graph: HashMap<&str, Vec<&str>> = HashMap::new();
        for (prior, implied) in &rules {
            graph
                .entry(prior.as_str())
                .or_default()
                .push(implied.as_str());
        }
        let mut out = ids.clone();
        let mut stack: Vec<String> = ids.into_iter().collect();
        while let Some(id) = stack.pop() {
            for next in graph.get(id.as_str()).into_iter().flatten() {
                if out.insert(next.to_string()) {
                    stack.push(next.to_string());
                }
            }
        }
        Ok(out)
    }

    /// The roles `user_id` holds on `target`, through any path, with implied roles.
    pub async fn effective_roles(&self, user_id: &str, target: &RoleTarget) -> Result<Vec<Role>> {
        let mut actors = vec![user_id.to_string()];
        actors.extend(
            self.store
                .user_groups(user_id)
                .await?
                .into_iter()
                .map(|g| g.id),
        );
        let assignments = self.store.assignments_of(&actors).await?;
        let direct = self.direct_role_ids(&assignments, target).await?;
        let all = self.expand_implied(direct).await?;
        let mut roles = Vec::new();
        for id in all {
            // Domain-specific roles only carry the roles they imply; they never show
            // themselves in a token or an effective listing (as in Keystone).
            if let Some(r) = self
                .store
                .role(&id)
                .await?
                .filter(|r| r.domain_id.is_none())
            {
                roles.push(r);
            }
        }
        roles.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(roles)
    }

    /// Role assignments matching `filter`. With `effective`, group grants become one entry per
    /// member, inherited grants become entries on each project they reach, and implied roles
    /// appear as their own entries (as Keystone reports them).
    pub async fn list_assignments(&self, filter: &AssignmentFilter) -> Result<Vec<Assignment>> {
        let mut rows = self.store.all_assignments().await?;
        if filter.effective {
            rows = self.effective_rows(rows).await?;
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for a in rows {
            let keep = filter
                .user_id
                .as_ref()
                .is_none_or(|u| a.actor_type == ActorType::User && &a.actor_id == u)
                && filter
                    .group_id
                    .as_ref()
                    .is_none_or(|g| a.actor_type == ActorType::Group && &a.actor_id == g)
                && filter.role_id.as_ref().is_none_or(|r| &a.role_id == r)
                && filter
                    .project_id
                    .as_ref()
                    .is_none_or(|p| a.target_type == TargetType::Project && &a.target_id == p)
                && filter
                    .domain_id
                    .as_ref()
                    .is_none_or(|d| a.target_type == TargetType::Domain && &a.target_id == d)
                && (!filter.system || a.target_type == TargetType::System)
                && (!filter.inherited_only || a.inherited);
            if keep && seen.insert(a.clone()) {
                out.push(a);
            }
        }
        Ok(out)
    }

    async fn effective_rows(&self, rows: Vec<Assignment>) -> Result<Vec<Assignment>> {
        let domain_specific: HashSet<String> = self
            .store
            .roles()
            .await?
            .into_iter()
            .filter(|r| r.domain_id.is_some())
            .map(|r| r.id)
            .collect();
        let mut expanded = Vec::new();
        for a in rows {
            let actors: Vec<String> = match a.actor_type {
                ActorType::User => vec![a.actor_id.clone()],
                ActorType::Group => self
                    .store
                    .group_members(&a.actor_id)
                    .await?
                    .into_iter()
                    .map(|u| u.id)
                    .collect(),
            };
            let targets: Vec<(TargetType, String)> = if a.inherited {
                match a.target_type {
                    TargetType::Domain => self
                        .store
                        .projects(Some(&a.target_id))
                        .await?
                        .into_iter()
                        .map(|p| (TargetType::Project, p.id))
                        .collect(),
                    TargetType::Project => self
                        .subtree(&a.target_id)
                        .await?
                        .into_iter()
                        .map(|id| (TargetType::Project, id))
                        .collect(),
                    TargetType::System => vec![],
                }
            } else {
                vec![(a.target_type, a.target_id.clone())]
            };
            let mut roles = self
                .expand_implied(BTreeSet::from([a.role_id.clone()]))
                .await?;
            roles.retain(|r| !domain_specific.contains(r));
            for actor in &actors {
                for (tt, tid) in &targets {
                    for role in &roles {
                        expanded.push(Assignment {
                            actor_type: ActorType::User,
                            actor_id: actor.clone(),
                            target_type: *tt,
                            target_id: tid.clone(),
                            role_id: role.clone(),
                            inherited: false,
                        });
                    }
                }
            }
        }
        Ok(expanded)
    }

    /// All projects below `project_id` (not including it).
    pub async fn subtree(&self, project_id: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut stack = vec![project_id.to_string()];
        while let Some(id) = stack.pop() {
            for child in self.store.child_projects(&id).await? {
                if !out.contains(&child.id) && out.len() < 10_000 {
                    stack.push(child.id.clone());
                    out.push(child.id);
                }
            }
        }
        Ok(out)
    }
}

impl Identity {
    /// Projects where the user holds any role (directly, via groups, or inherited).
    pub async fn projects_for_user(&self, user_id: &str) -> Result<Vec<crate::model::Project>> {
        let mut actors = vec![user_id.to_string()];
        actors.extend(
            self.store
                .user_groups(user_id)
                .await?
                .into_iter()
                .map(|g| g.id),
        );
        let mut ids: BTreeSet<String> = BTreeSet::new();
        for a in self.store.assignments_of(&actors).await? {
            match (a.target_type, a.inherited) {
                (TargetType::Project, false) => {
                    ids.insert(a.target_id);
                }
                (TargetType::Project, true) => ids.extend(self.subtree(&a.target_id).await?),
                (TargetType::Domain, true) => ids.extend(
                    self.store
                        .projects(Some(&a.target_id))
                        .await?
                        .into_iter()
                        .map(|p| p.id),
                ),
                _ => {}
            }
        }
        let mut out = Vec::new();
        for id in ids {
            if let Some(p) = self.store.project(&id).await? {
                out.push(p);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Domains where the user holds a role on the domain itself.
    pub async fn domains_for_user(&self, user_id: &str) -> Result<Vec<crate::model::Domain>> {
        let mut actors = vec![user_id.to_string()];
        actors.extend(
            self.store
                .user_groups(user_id)
                .await?
                .into_iter()
                .map(|g| g.id),
        );
        let ids: BTreeSet<String> = self
            .store
            .assignments_of(&actors)
            .await?
            .into_iter()
            .filter(|a| a.target_type == TargetType::Domain && !a.inherited)
            .map(|a| a.target_id)
            .collect();
        let mut out = Vec::new();
        for id in ids {
            if let Some(d) = self.store.domain(&id).await? {
                out.push(d);
            }
        }
        Ok(out)
    }
}
