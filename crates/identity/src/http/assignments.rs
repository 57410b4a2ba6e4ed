//! Role grants on projects, domains and the system, for users and groups, direct or inherited
//! (OS-INHERIT), and `GET /v3/role_assignments` with its filters, `effective` and
//! `include_names`. Every grant route shares one implementation, parameterized by what kind
//! of actor and target its URL names.

use std::collections::HashMap;

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Map, Value};

use super::{json, no_content, Caller, HttpResult, QueryMap, State};
use crate::error::IdentityError;
use crate::model::{ActorType, Assignment, TargetType};
use crate::service::assignments::AssignmentFilter;

#[derive(Clone, Copy)]
struct GrantKind {
    actor: ActorType,
    target: TargetType,
    inherited: bool,
}

pub fn routes() -> Api<State> {
    let mut api = Api::new().get(
        "/v3/role_assignments",
        op("list_role_assignments", "List role assignments"),
        list_role_assignments,
    );
    for (actor, seg) in [(ActorType::User, "users"), (ActorType::Group, "groups")] {
        for (target, prefix) in [
            (TargetType::Project, "/v3/projects/{target}"),
            (TargetType::Domain, "/v3/domains/{target}"),
            (TargetType::System, "/v3/system"),
        ] {
            for inherited in [false, true] {
                if inherited && target == TargetType::System {
                    continue;
                }
                let k = GrantKind {
                    actor,
                    target,
                    inherited,
                };
                let (base, suffix, tag) = if inherited {
                    (
                        prefix.replace("/v3/", "/v3/OS-INHERIT/"),
                        "/inherited_to_projects",
                        "_inherited",
                    )
                } else {
                    (prefix.to_string(), "", "")
                };
                let what = format!("{}_{}{tag}", target.as_str(), actor.as_str());
                let list_path = if inherited {
                    format!("{base}/{seg}/{{actor}}/roles{suffix}")
                } else {
                    format!("{base}/{seg}/{{actor}}/roles")
                };
                let one = format!("{base}/{seg}/{{actor}}/roles/{{role}}{suffix}");
                api = api
                    .get(
                        &list_path,
                        op(
                            &format!("list_grants_{what}"),
                            &format!("List a {}'s roles on a {}", actor.as_str(), target.as_str()),
                        ),
                        move |s, c, p| list_grants(s, c, p, k),
                    )
                    .get(
                        &one,
                        op(&format!("check_grant_{what}"), "Check a role grant").status(204),
                        move |s, c, p| check_grant(s, c, p, k),
                    )
                    .put(
                        &one,
                        op(&format!("create_grant_{what}"), "Grant a role").status(204),
                        move |s, c, p| put_grant(s, c, p, k),
                    )
                    .delete(
                        &one,
                        op(&format!("revoke_grant_{what}"), "Revoke a role").status(204),
                        move |s, c, p| delete_grant(s, c, p, k),
                    );
            }
        }
    }
    api
}

fn assignment(p: &HashMap<String, String>, k: GrantKind, role: &str) -> Assignment {
    Assignment {
        actor_type: k.actor,
        actor_id: p.get("actor").cloned().unwrap_or_default(),
        target_type: k.target,
        target_id: if k.target == TargetType::System {
            "all".into()
        } else {
            p.get("target").cloned().unwrap_or_default()
        },
        role_id: role.to_string(),
        inherited: k.inherited,
    }
}

/// The policy rule and target for a grant operation (`check`, `list`, `create`, `revoke`).
async fn authorize_grant(
    s: &State,
    caller: &Caller,
    op: &str,
    a: &Assignment,
) -> Result<(), IdentityError> {
    let actor = match a.target_type {
        TargetType::System => a.actor_type.as_str(),
        _ => "",
    };
    let rule = match (a.target_type, op) {
        (TargetType::System, "check") => format!("identity:check_system_grant_for_{actor}"),
        (TargetType::System, "list") => format!("identity:list_system_grants_for_{actor}"),
        (TargetType::System, "create") => format!("identity:create_system_grant_for_{actor}"),
        (TargetType::System, _) => format!("identity:revoke_system_grant_for_{actor}"),
        (_, "check") => "identity:check_grant".into(),
        (_, "list") => "identity:list_grants".into(),
        (_, "create") => "identity:create_grant".into(),
        _ => "identity:revoke_grant".into(),
    };
    let mut target = Map::new();
    match a.target_type {
        TargetType::Project => {
            let p = s.existing_project(&a.target_id).await?;
            target.insert(
                "project".into(),
                json!({"id": p.id, "domain_id": p.domain_id}),
            );
        }
        TargetType::Domain => {
            target.insert("domain".into(), json!({"id": a.target_id}));
        }
        TargetType::System => {}
    }
    if !a.role_id.is_empty() {
        if let Some(r) = s.store.role(&a.role_id).await? {
            target.insert(
                "role".into(),
                json!({"id": r.id, "name": r.name, "domain_id": r.domain_id}),
            );
        }
    }
    s.authorize(caller.ctx(), &rule, &json!({"target": target}))
}

async fn list_grants(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(p): Path<HashMap<String, String>>,
    k: GrantKind,
) -> HttpResult {
    let probe = assignment(&p, k, "");
    authorize_grant(&s, &caller, "list", &probe).await?;
    match k.actor {
        ActorType::User => drop(s.existing_user(&probe.actor_id).await?),
        ActorType::Group => drop(s.existing_group(&probe.actor_id).await?),
    }
    let filter = AssignmentFilter {
        user_id: (k.actor == ActorType::User).then(|| probe.actor_id.clone()),
        group_id: (k.actor == ActorType::Group).then(|| probe.actor_id.clone()),
        project_id: (k.target == TargetType::Project).then(|| probe.target_id.clone()),
        domain_id: (k.target == TargetType::Domain).then(|| probe.target_id.clone()),
        system: k.target == TargetType::System,
        ..Default::default()
    };
    let mut roles = Vec::new();
    for a in s
        .list_assignments(&filter)
        .await?
        .into_iter()
        .filter(|a| a.inherited == k.inherited)
    {
        if let Some(r) = s.store.role(&a.role_id).await? {
            roles.push(s.role_view(&r));
        }
    }
    json(
        StatusCode::OK,
        json!({"roles": roles, "links": {"self": null, "previous": null, "next": null}}),
    )
}

async fn check_grant(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(p): Path<HashMap<String, String>>,
    k: GrantKind,
) -> HttpResult {
    let role = p.get("role").cloned().unwrap_or_default();
    let a = assignment(&p, k, &role);
    authorize_grant(&s, &caller, "check", &a).await?;
    s.check_assignment_parts(&a).await?;
    if !s.store.has_assignment(&a).await? {
        return Err(IdentityError::not_found("role assignment", role));
    }
    no_content()
}

async fn put_grant(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(p): Path<HashMap<String, String>>,
    k: GrantKind,
) -> HttpResult {
    let role = p.get("role").cloned().unwrap_or_default();
    let a = assignment(&p, k, &role);
    s.check_assignment_parts(&a).await?;
    authorize_grant(&s, &caller, "create", &a).await?;
    s.grant(&a).await?;
    no_content()
}

async fn delete_grant(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(p): Path<HashMap<String, String>>,
    k: GrantKind,
) -> HttpResult {
    let role = p.get("role").cloned().unwrap_or_default();
    let a = assignment(&p, k, &role);
    s.check_assignment_parts(&a).await?;
    authorize_grant(&s, &caller, "revoke", &a).await?;
    s.revoke_grant(&a).await?;
    no_content()
}

async fn list_role_assignments(
    AxState(s): AxState<State>,
    caller: Caller,
    q: QueryMap,
) -> HttpResult {
    let filter = AssignmentFilter {
        user_id: q.get("user.id").map(str::to_string),
        group_id: q.get("group.id").map(str::to_string),
        role_id: q.get("role.id").map(str::to_string),
        project_id: q.get("scope.project.id").map(str::to_string),
        domain_id: q.get("scope.domain.id").map(str::to_string),
        system: q.get("scope.system").is_some(),
        effective: q.0.contains_key("effective") && q.flag("effective")
            || q.get("effective") == Some(""),
        inherited_only: q.get("scope.OS-INHERIT:inherited_to").is_some(),
    };
    if filter.effective && filter.group_id.is_some() {
        return Err(IdentityError::bad(
            "Combining effective and group filter will always result in an empty list.",
        ));
    }
    if filter.user_id.is_some() && filter.group_id.is_some() {
        return Err(IdentityError::bad("Specify a user or group, not both."));
    }
    s.authorize(
        caller.ctx(),
        "identity:list_role_assignments",
        &json!({"target": {"domain_id": filter.domain_id}}),
    )?;
    let mut rows = s.list_assignments(&filter).await?;
    if q.flag("include_subtree") {
        if let Some(p) = &filter.project_id {
            let mut sub = filter.clone();
            for child in s.subtree(p).await? {
                sub.project_id = Some(child);
                rows.extend(s.list_assignments(&sub).await?);
            }
        }
    }
    let names = q.0.contains_key("include_names")
        && (q.get("include_names") == Some("") || q.flag("include_names"));
    let mut out = Vec::new();
    for a in &rows {
        out.push(assignment_view(&s, a, names).await?);
    }
    json(
        StatusCode::OK,
        json!({"role_assignments": out, "links": {"self": format!("{}/role_assignments", s.v3_url()), "previous": null, "next": null}}),
    )
}

async fn assignment_view(s: &State, a: &Assignment, names: bool) -> Result<Value, IdentityError> {
    let mut role = json!({"id": a.role_id});
    let mut actor = json!({"id": a.actor_id});
    let mut scope = Map::new();
    let target_obj = match a.target_type {
        TargetType::System => json!({"all": true}),
        _ => json!({"id": a.target_id}),
    };
    scope.insert(a.target_type.as_str().to_string(), target_obj);
    if a.inherited {
        scope.insert("OS-INHERIT:inherited_to".into(), json!("projects"));
    }
    if names {
        if let Some(r) = s.store.role(&a.role_id).await? {
            role["name"] = json!(r.name);
            if let Some(d) = &r.domain_id {
                role["domain"] = domain_ref(s, d).await?;
            }
        }
        let actor_domain = match a.actor_type {
            ActorType::User => s
                .store
                .user(&a.actor_id)
                .await?
                .map(|u| (u.name, u.domain_id)),
            ActorType::Group => s
                .store
                .group(&a.actor_id)
                .await?
                .map(|g| (g.name, g.domain_id)),
        };
        if let Some((name, domain)) = actor_domain {
            actor["name"] = json!(name);
            actor["domain"] = domain_ref(s, &domain).await?;
        }
        match a.target_type {
            TargetType::Project => {
                if let Some(p) = s.store.project(&a.target_id).await? {
                    scope.insert("project".into(), json!({"id": p.id, "name": p.name, "domain": domain_ref(s, &p.domain_id).await?}));
                }
            }
            TargetType::Domain => {
                if let Some(d) = s.store.domain(&a.target_id).await? {
                    scope.insert("domain".into(), json!({"id": d.id, "name": d.name}));
                }
            }
            TargetType::System => {}
        }
    }
    let link = match a.target_type {
        TargetType::System => format!(
            "{}/system/{}s/{}/roles/{}",
            s.v3_url(),
            a.actor_type.as_str(),
            a.actor_id,
            a.role_id
        ),
        t => format!(
            "{}/{}s/{}/{}s/{}/roles/{}",
            s.v3_url(),
            t.as_str(),
            a.target_id,
            a.actor_type.as_str(),
            a.actor_id,
            a.role_id
        ),
    };
    Ok(
        json!({"role": role, a.actor_type.as_str(): actor, "scope": scope, "links": {"assignment": link}}),
    )
}

async fn domain_ref(s: &State, id: &str) -> Result<Value, IdentityError> {
    Ok(match s.store.domain(id).await? {
        Some(d) => json!({"id": d.id, "name": d.name}),
        None => json!({"id": id}),
    })
}
