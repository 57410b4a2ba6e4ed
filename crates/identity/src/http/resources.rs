//! Domains, projects (with tags), users (with self-service password change, groups,
//! projects and application credentials), groups with their members, roles and implied roles.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Value};

use super::domain_projects;
use super::views::filter_list;
use super::{json, no_content, Caller, HttpResult, JsonBody, QueryMap, State};
use crate::error::IdentityError;
use crate::service::resources::{validate_tag, Input};

pub fn routes() -> Api<State> {
    Api::new()
        .get(
            "/v3/domains",
            op("list_domains", "List domains"),
            list_domains,
        )
        .post(
            "/v3/domains",
            op("create_domain", "Create a domain").status(201),
            create_domain,
        )
        .get(
            "/v3/domains/{id}",
            op("get_domain", "Show a domain"),
            get_domain,
        )
        .patch(
            "/v3/domains/{id}",
            op("update_domain", "Update a domain"),
            update_domain,
        )
        .delete(
            "/v3/domains/{id}",
            op("delete_domain", "Delete a disabled domain").status(204),
            delete_domain,
        )
        .get(
            "/v3/projects",
            op("list_projects", "List projects"),
            list_projects,
        )
        .post(
            "/v3/projects",
            op("create_project", "Create a project").status(201),
            create_project,
        )
        .get(
            "/v3/projects/{id}",
            op("get_project", "Show a project"),
            get_project,
        )
        .patch(
            "/v3/projects/{id}",
            op("update_project", "Update a project"),
            update_project,
        )
        .delete(
            "/v3/projects/{id}",
            op("delete_project", "Delete a project").status(204),
            delete_project,
        )
        .get(
            "/v3/projects/{id}/tags",
            op("list_project_tags", "List a project's tags"),
            list_tags,
        )
        .put(
            "/v3/projects/{id}/tags",
            op("update_project_tags", "Replace a project's tags"),
            replace_tags,
        )
        .delete(
            "/v3/projects/{id}/tags",
            op("delete_project_tags", "Remove all of a project's tags").status(204),
            delete_tags,
        )
        .get(
            "/v3/projects/{id}/tags/{tag}",
            op("get_project_tag", "Check a project tag").status(204),
            check_tag,
        )
        .put(
            "/v3/projects/{id}/tags/{tag}",
            op("create_project_tag", "Add a project tag").status(201),
            add_tag,
        )
        .delete(
            "/v3/projects/{id}/tags/{tag}",
            op("delete_project_tag", "Remove a project tag").status(204),
            delete_tag,
        )
        .get("/v3/users", op("list_users", "List users"), list_users)
        .post(
            "/v3/users",
            op("create_user", "Create a user").status(201),
            create_user,
        )
        .get("/v3/users/{id}", op("get_user", "Show a user"), get_user)
        .patch(
            "/v3/users/{id}",
            op("update_user", "Update a user"),
            update_user,
        )
        .delete(
            "/v3/users/{id}",
            op("delete_user", "Delete a user").status(204),
            delete_user,
        )
        .post(
            "/v3/users/{id}/password",
            op("change_password", "Change one's own password")
                .status(204)
                .public(),
            change_password,
        )
        .get(
            "/v3/users/{id}/groups",
            op("list_groups_for_user", "List a user's groups"),
            user_groups,
        )
        .get(
            "/v3/users/{id}/projects",
            op("list_user_projects", "List a user's projects"),
            user_projects,
        )
        .get(
            "/v3/users/{id}/application_credentials",
            op(
                "list_application_credentials",
                "List application credentials",
            ),
            list_app_creds,
        )
        .post(
            "/v3/users/{id}/application_credentials",
            op(
                "create_application_credential",
                "Create an application credential",
            )
            .status(201),
            create_app_cred,
        )
        .get(
            "/v3/users/{id}/application_credentials/{cred}",
            op(
                "get_application_credential",
                "Show an application credential",
            ),
            get_app_cred,
        )
        .delete(
            "/v3/users/{id}/application_credentials/{cred}",
            op(
                "delete_application_credential",
                "Delete an application credential",
            )
            .status(204),
            delete_app_cred,
        )
        .get("/v3/groups", op("list_groups", "List groups"), list_groups)
        .post(
            "/v3/groups",
            op("create_group", "Create a group").status(201),
            create_group,
        )
        .get(
            "/v3/groups/{id}",
            op("get_group", "Show a group"),
            get_group,
        )
        .patch(
            "/v3/groups/{id}",
            op("update_group", "Update a group"),
            update_group,
        )
        .delete(
            "/v3/groups/{id}",
            op("delete_group", "Delete a group").status(204),
            delete_group,
        )
        .get(
            "/v3/groups/{id}/users",
            op("list_users_in_group", "List a group's members"),
            group_users,
        )
        .put(
            "/v3/groups/{id}/users/{user}",
            op("add_user_to_group", "Add a user to a group").status(204),
            add_member,
        )
        .get(
            "/v3/groups/{id}/users/{user}",
            op("check_user_in_group", "Check group membership").status(204),
            check_member,
        )
        .delete(
            "/v3/groups/{id}/users/{user}",
            op("remove_user_from_group", "Remove a user from a group").status(204),
            remove_member,
        )
        .get("/v3/roles", op("list_roles", "List roles"), list_roles)
        .post(
            "/v3/roles",
            op("create_role", "Create a role").status(201),
            create_role,
        )
        .get("/v3/roles/{id}", op("get_role", "Show a role"), get_role)
        .patch(
            "/v3/roles/{id}",
            op("update_role", "Update a role"),
            update_role,
        )
        .delete(
            "/v3/roles/{id}",
            op("delete_role", "Delete a role").status(204),
            delete_role,
        )
        .get(
            "/v3/roles/{id}/implies",
            op("list_implied_roles", "List the roles a role implies"),
            list_implied,
        )
        .put(
            "/v3/roles/{id}/implies/{implied}",
            op("create_implied_role", "Make a role imply another").status(201),
            create_implied,
        )
        .get(
            "/v3/roles/{id}/implies/{implied}",
            op("get_implied_role", "Show (HEAD: check) an implied role"),
            get_implied,
        )
        .delete(
            "/v3/roles/{id}/implies/{implied}",
            op("delete_implied_role", "Remove a role implication").status(204),
            delete_implied,
        )
        .get(
            "/v3/role_inferences",
            op("list_role_inference_rules", "List all role implications"),
            role_inferences,
        )
}

// ---- domains ----

async fn list_domains(AxState(s): AxState<State>, caller: Caller, q: QueryMap) -> HttpResult {
    s.authorize(caller.ctx(), "identity:list_domains", &json!({}))?;
    let items = s
        .store
        .domains()
        .await?
        .iter()
        .map(|d| s.domain_view(d))
        .collect();
    json(
        StatusCode::OK,
        s.collection(
            "domains",
            "/domains",
            filter_list(items, &q.0, &["name", "enabled", "id"]),
        ),
    )
}

async fn create_domain(
    AxState(s): AxState<State>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> HttpResult {
    let d = s.prepare_domain(&body)?;
    s.authorize(
        caller.ctx(),
        "identity:create_domain",
        &json!({"target": {"domain": {"id": d.id}}}),
    )?;
    s.create_domain(&d).await?;
    json(StatusCode::CREATED, json!({"domain": s.domain_view(&d)}))
}

async fn get_domain(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let d = s
        .store
        .domain(&id)
        .await?
        .ok_or_else(|| IdentityError::not_found("domain", &id))?;
    s.authorize(
        caller.ctx(),
        "identity:get_domain",
        &json!({"target": {"domain": {"id": d.id}}}),
    )?;
    json(StatusCode::OK, json!({"domain": s.domain_view(&d)}))
}

async fn update_domain(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.store
        .domain(&id)
        .await?
        .ok_or_else(|| IdentityError::not_found("domain", &id))?;
    s.authorize(
        caller.ctx(),
        "identity:update_domain",
        &json!({"target": {"domain": {"id": id}}}),
    )?;
    let d = s.update_domain(&id, &body).await?;
    json(StatusCode::OK, json!({"domain": s.domain_view(&d)}))
}

async fn delete_domain(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    s.store
        .domain(&id)
        .await?
        .ok_or_else(|| IdentityError::not_found("domain", &id))?;
    s.authorize(
        caller.ctx(),
        "identity:delete_domain",
        &json!({"target": {"domain": {"id": id}}}),
    )?;
    s.delete_domain(&id).await?;
    no_content()
}

// ---- projects ----

fn project_target(p: &crate::model::Project) -> Value {
    json!({"target": {"project": {"id": p.id, "domain_id": p.domain_id, "parent_id": p.parent_id}}})
}

async fn list_projects(AxState(s): AxState<State>, caller: Caller, q: QueryMap) -> HttpResult {
    let domain_filter = q.get("domain_id").map(str::to_string);
    s.authorize(
        caller.ctx(),
        "identity:list_projects",
        &json!({"target": {"domain_id": domain_filter}}),
    )?;
    let ctx = caller.ctx();
    // Domain-scoped readers see their domain only, whatever they ask for.
    let domain_scope = if ctx.has_role("admin") || ctx.is_system() {
        domain_filter
    } else {
        ctx.domain_id().map(str::to_string).or(domain_filter)
    };
    if q.flag("is_domain") {
        let items = domain_projects::list(&s, domain_scope.is_some()).await?;
        return json(
            StatusCode::OK,
            s.collection(
                "projects",
                "/projects",
                filter_list(items, &q.0, &["name", "enabled", "is_domain", "id"]),
            ),
        );
    }
    let mut projects = s.store.projects(domain_scope.as_deref()).await?;
    if let Some(tags) = q.get("tags") {
        let want: Vec<&str> = tags.split(',').collect();
        projects.retain(|p| want.iter().all(|t| p.tags.iter().any(|x| x == t)));
    }
    if let Some(tags) = q.get("tags-any") {
        let want: Vec<&str> = tags.split(',').collect();
        projects.retain(|p| want.iter().any(|t| p.tags.iter().any(|x| x == t)));
    }
    if let Some(tags) = q.get("not-tags") {
        let want: Vec<&str> = tags.split(',').collect();
        projects.retain(|p| !want.iter().all(|t| p.tags.iter().any(|x| x == t)));
    }
    if let Some(tags) = q.get("not-tags-any") {
        let want: Vec<&str> = tags.split(',').collect();
        projects.retain(|p| !want.iter().any(|t| p.tags.iter().any(|x| x == t)));
    }
    let items = projects.iter().map(|p| s.project_view(p)).collect();
    json(
        StatusCode::OK,
        s.collection(
            "projects",
            "/projects",
            filter_list(
                items,
                &q.0,
                &["name", "enabled", "parent_id", "is_domain", "id"],
            ),
        ),
    )
}

async fn create_project(
    AxState(s): AxState<State>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> HttpResult {
    if s.wants_domain_project(&body)? {
        return domain_projects::create(&s, &caller, &body).await;
    }
    let p = s.prepare_project(caller.ctx(), &body).await?;
    s.authorize(caller.ctx(), "identity:create_project", &project_target(&p))?;
    s.create_project(&p).await?;
    json(StatusCode::CREATED, json!({"project": s.project_view(&p)}))
}

async fn get_project(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    q: QueryMap,
) -> HttpResult {
    let Some(p) = s.store.project(&id).await? else {
        return domain_projects::get(&s, &caller, &id).await;
    };
    s.authorize(caller.ctx(), "identity:get_project", &project_target(&p))?;
    let mut view = s.project_view(&p);
    if q.flag("parents_as_ids") || q.flag("parents_as_list") {
        let ancestors = s.project_ancestors(&p.id).await?;
        view["parents"] = json!(ancestors);
    }
    if q.flag("subtree_as_ids") || q.flag("subtree_as_list") {
        view["subtree"] = json!(s.subtree(&p.id).await?);
    }
    json(StatusCode::OK, json!({"project": view}))
}

async fn update_project(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    let Some(p) = s.store.project(&id).await? else {
        return domain_projects::update(&s, &caller, &id, &body).await;
    };
    s.authorize(caller.ctx(), "identity:update_project", &project_target(&p))?;
    let p = s.update_project(p, &body).await?;
    json(StatusCode::OK, json!({"project": s.project_view(&p)}))
}

async fn delete_project(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let Some(p) = s.store.project(&id).await? else {
        return domain_projects::delete(&s, &caller, &id).await;
    };
    s.authorize(caller.ctx(), "identity:delete_project", &project_target(&p))?;
    s.delete_project(&p).await?;
    no_content()
}

async fn list_tags(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let p = s.existing_project(&id).await?;
    s.authorize(
        caller.ctx(),
        "identity:list_project_tags",
        &project_target(&p),
    )?;
    json(
        StatusCode::OK,
        json!({"tags": p.tags, "links": s.link(&format!("/projects/{id}/tags"))}),
    )
}

async fn replace_tags(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    let mut p = s.existing_project(&id).await?;
    s.authorize(
        caller.ctx(),
        "identity:update_project_tags",
        &project_target(&p),
    )?;
    let tags = Input::from_body(&json!({"project": body}), "project")?
        .raw("tags")
        .cloned()
        .unwrap_or(Value::Null);
    let updated = s
        .update_project(p.clone(), &json!({"project": {"tags": tags}}))
        .await?;
    p.tags = updated.tags;
    json(
        StatusCode::OK,
        json!({"tags": p.tags, "links": s.link(&format!("/projects/{id}/tags"))}),
    )
}

async fn delete_tags(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let mut p = s.existing_project(&id).await?;
    s.authorize(
        caller.ctx(),
        "identity:delete_project_tags",
        &project_target(&p),
    )?;
    p.tags.clear();
    s.save_project(&p).await?;
    no_content()
}

async fn check_tag(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, tag)): Path<(String, String)>,
) -> HttpResult {
    let p = s.existing_project(&id).await?;
    s.authorize(
        caller.ctx(),
        "identity:get_project_tag",
        &project_target(&p),
    )?;
    if !p.tags.contains(&tag) {
        return Err(IdentityError::not_found("project tag", tag));
    }
    no_content()
}

async fn add_tag(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, tag)): Path<(String, String)>,
) -> HttpResult {
    let mut p = s.existing_project(&id).await?;
    s.authorize(
        caller.ctx(),
        "identity:create_project_tag",
        &project_target(&p),
    )?;
    validate_tag(&tag)?;
    if !p.tags.contains(&tag) {
        if p.tags.len() >= 80 {
            return Err(IdentityError::bad("A project has at most 80 tags."));
        }
        p.tags.push(tag.clone());
        s.save_project(&p).await?;
    }
    let mut resp = axum::response::IntoResponse::into_response(StatusCode::CREATED);
    if let Ok(v) =
        axum::http::HeaderValue::from_str(&format!("{}/projects/{id}/tags/{tag}", s.v3_url()))
    {
        resp.headers_mut().insert("location", v);
    }
    Ok(resp)
}

async fn delete_tag(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, tag)): Path<(String, String)>,
) -> HttpResult {
    let mut p = s.existing_project(&id).await?;
    s.authorize(
        caller.ctx(),
        "identity:delete_project_tag",
        &project_target(&p),
    )?;
    if !p.tags.contains(&tag) {
        return Err(IdentityError::not_found("project tag", tag));
    }
    p.tags.retain(|t| t != &tag);
    s.save_project(&p).await?;
    no_content()
}

// ---- users ----

fn user_target(u: &crate::model::User) -> Value {
    json!({"target": {"user": {"id": u.id, "domain_id": u.domain_id}}, "user_id": u.id})
}

async fn list_users(AxState(s): AxState<State>, caller: Caller, q: QueryMap) -> HttpResult {
    let domain_filter = q.get("domain_id").map(str::to_string);
    s.authorize(
        caller.ctx(),
        "identity:list_users",
        &json!({"target": {"domain_id": domain_filter}}),
    )?;
    let ctx = caller.ctx();
    let domain_scope = if ctx.has_role("admin") || ctx.is_system() {
        domain_filter
    } else {
        ctx.domain_id().map(str::to_string).or(domain_filter)
    };
    let items = s
        .store
        .users(domain_scope.as_deref())
        .await?
        .iter()
        .map(|u| s.user_view(u))
        .collect();
    json(
        StatusCode::OK,
        s.collection(
            "users",
            "/users",
            filter_list(
                items,
                &q.0,
                &["name", "enabled", "id", "default_project_id"],
            ),
        ),
    )
}

async fn create_user(
    AxState(s): AxState<State>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> HttpResult {
    let (user, password) = s.prepare_user(caller.ctx(), &body).await?;
    s.authorize(caller.ctx(), "identity:create_user", &user_target(&user))?;
    let user = s.create_user(user, password).await?;
    json(StatusCode::CREATED, json!({"user": s.user_view(&user)}))
}

async fn get_user(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let u = s.existing_user(&id).await?;
    s.authorize(caller.ctx(), "identity:get_user", &user_target(&u))?;
    json(StatusCode::OK, json!({"user": s.user_view(&u)}))
}

async fn update_user(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    let u = s.existing_user(&id).await?;
    s.authorize(caller.ctx(), "identity:update_user", &user_target(&u))?;
    let u = s.update_user(u, &body).await?;
    json(StatusCode::OK, json!({"user": s.user_view(&u)}))
}

async fn delete_user(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let u = s.existing_user(&id).await?;
    s.authorize(caller.ctx(), "identity:delete_user", &user_target(&u))?;
    s.delete_user(&u.id).await?;
    no_content()
}

/// Unenforced, as in Keystone: proving the original password is the authorization, and a
/// user whose password expired must still be able to change it.
async fn change_password(
    AxState(s): AxState<State>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    let i = Input::from_body(&body, "user")?;
    let original = i
        .string("original_password", s.config.max_password_length + 1)?
        .ok_or_else(|| IdentityError::bad("Expecting to find original_password in user."))?;
    let new = i
        .string("password", s.config.max_password_length + 1)?
        .ok_or_else(|| IdentityError::bad("Expecting to find password in user."))?;
    s.change_own_password(&id, &original, &new).await?;
    no_content()
}

async fn user_groups(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    q: QueryMap,
) -> HttpResult {
    let u = s.existing_user(&id).await?;
    s.authorize(
        caller.ctx(),
        "identity:list_groups_for_user",
        &user_target(&u),
    )?;
    let items = s
        .store
        .user_groups(&id)
        .await?
        .iter()
        .map(|g| s.group_view(g))
        .collect();
    json(
        StatusCode::OK,
        s.collection(
            "groups",
            &format!("/users/{id}/groups"),
            filter_list(items, &q.0, &["name", "domain_id"]),
        ),
    )
}

async fn user_projects(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    q: QueryMap,
) -> HttpResult {
    let u = s.existing_user(&id).await?;
    s.authorize(
        caller.ctx(),
        "identity:list_user_projects",
        &user_target(&u),
    )?;
    let items = s
        .projects_for_user(&id)
        .await?
        .iter()
        .map(|p| s.project_view(p))
        .collect();
    json(
        StatusCode::OK,
        s.collection(
            "projects",
            &format!("/users/{id}/projects"),
            filter_list(items, &q.0, &["name", "enabled", "domain_id"]),
        ),
    )
}

// ---- application credentials ----

async fn list_app_creds(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    q: QueryMap,
) -> HttpResult {
    s.authorize(
        caller.ctx(),
        "identity:list_application_credentials",
        &json!({"user_id": id}),
    )?;
    s.existing_user(&id).await?;
    let mut items = Vec::new();
    for c in s.store.app_creds(&id).await? {
        items.push(s.app_cred_view(&c).await);
    }
    json(
        StatusCode::OK,
        s.collection(
            "application_credentials",
            &format!("/users/{id}/application_credentials"),
            filter_list(items, &q.0, &["name"]),
        ),
    )
}

async fn create_app_cred(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(
        caller.ctx(),
        "identity:create_application_credential",
        &json!({"user_id": id}),
    )?;
    let (cred, secret) = s.create_app_cred(caller.ctx(), &id, &body).await?;
    let mut view = s.app_cred_view(&cred).await;
    view["secret"] = json!(secret);
    json(StatusCode::CREATED, json!({"application_credential": view}))
}

async fn get_app_cred(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, cred)): Path<(String, String)>,
) -> HttpResult {
    s.authorize(
        caller.ctx(),
        "identity:get_application_credential",
        &json!({"user_id": id}),
    )?;
    let c = s
        .store
        .app_cred(&cred)
        .await?
        .filter(|c| c.user_id == id)
        .ok_or_else(|| IdentityError::not_found("application credential", &cred))?;
    json(
        StatusCode::OK,
        json!({"application_credential": s.app_cred_view(&c).await}),
    )
}

async fn delete_app_cred(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, cred)): Path<(String, String)>,
) -> HttpResult {
    s.authorize(
        caller.ctx(),
        "identity:delete_application_credential",
        &json!({"user_id": id}),
    )?;
    s.store
        .app_cred(&cred)
        .await?
        .filter(|c| c.user_id == id)
        .ok_or_else(|| IdentityError::not_found("application credential", &cred))?;
    s.delete_app_cred(&cred).await?;
    no_content()
}

// ---- groups ----

fn group_target(g: &crate::model::Group) -> Value {
    json!({"target": {"group": {"id": g.id, "domain_id": g.domain_id}}})
}

async fn list_groups(AxState(s): AxState<State>, caller: Caller, q: QueryMap) -> HttpResult {
    let domain_filter = q.get("domain_id").map(str::to_string);
    s.authorize(
        caller.ctx(),
        "identity:list_groups",
        &json!({"target": {"domain_id": domain_filter}}),
    )?;
    let items = s
        .store
        .groups(domain_filter.as_deref())
        .await?
        .iter()
        .map(|g| s.group_view(g))
        .collect();
    json(
        StatusCode::OK,
        s.collection(
            "groups",
            "/groups",
            filter_list(items, &q.0, &["name", "id"]),
        ),
    )
}

async fn create_group(
    AxState(s): AxState<State>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> HttpResult {
    let g = s.prepare_group(caller.ctx(), &body).await?;
    s.authorize(caller.ctx(), "identity:create_group", &group_target(&g))?;
    s.create_group(&g).await?;
    json(StatusCode::CREATED, json!({"group": s.group_view(&g)}))
}

async fn get_group(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let g = s.existing_group(&id).await?;
    s.authorize(caller.ctx(), "identity:get_group", &group_target(&g))?;
    json(StatusCode::OK, json!({"group": s.group_view(&g)}))
}

async fn update_group(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    let g = s.existing_group(&id).await?;
    s.authorize(caller.ctx(), "identity:update_group", &group_target(&g))?;
    let g = s.update_group(g, &body).await?;
    json(StatusCode::OK, json!({"group": s.group_view(&g)}))
}

async fn delete_group(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let g = s.existing_group(&id).await?;
    s.authorize(caller.ctx(), "identity:delete_group", &group_target(&g))?;
    s.delete_group(&id).await?;
    no_content()
}

async fn group_users(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    q: QueryMap,
) -> HttpResult {
    let g = s.existing_group(&id).await?;
    s.authorize(
        caller.ctx(),
        "identity:list_users_in_group",
        &group_target(&g),
    )?;
    let items = s
        .store
        .group_members(&id)
        .await?
        .iter()
        .map(|u| s.user_view(u))
        .collect();
    json(
        StatusCode::OK,
        s.collection(
            "users",
            &format!("/groups/{id}/users"),
            filter_list(items, &q.0, &["name", "enabled", "domain_id"]),
        ),
    )
}

async fn add_member(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, user)): Path<(String, String)>,
) -> HttpResult {
    let g = s.existing_group(&id).await?;
    s.existing_user(&user).await?;
    s.authorize(
        caller.ctx(),
        "identity:add_user_to_group",
        &group_target(&g),
    )?;
    s.add_user_to_group(&id, &user).await?;
    no_content()
}

async fn check_member(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, user)): Path<(String, String)>,
) -> HttpResult {
    let g = s.existing_group(&id).await?;
    s.existing_user(&user).await?;
    s.authorize(
        caller.ctx(),
        "identity:check_user_in_group",
        &group_target(&g),
    )?;
    if !s.store.is_member(&id, &user).await? {
        return Err(IdentityError::not_found(
            "user in group",
            format!("{user} in {id}"),
        ));
    }
    no_content()
}

async fn remove_member(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, user)): Path<(String, String)>,
) -> HttpResult {
    let g = s.existing_group(&id).await?;
    s.existing_user(&user).await?;
    s.authorize(
        caller.ctx(),
        "identity:remove_user_from_group",
        &group_target(&g),
    )?;
    s.remove_user_from_group(&id, &user).await?;
    no_content()
}

// ---- roles ----

fn role_target(r: &crate::model::Role) -> Value {
    json!({"target": {"role": {"id": r.id, "name": r.name, "domain_id": r.domain_id}}})
}

async fn list_roles(AxState(s): AxState<State>, caller: Caller, q: QueryMap) -> HttpResult {
    s.authorize(caller.ctx(), "identity:list_roles", &json!({}))?;
    let domain = q.get("domain_id");
    let items = s
        .store
        .roles()
        .await?
        .iter()
        .filter(|r| r.domain_id.as_deref() == domain)
        .map(|r| s.role_view(r))
        .collect();
    json(
        StatusCode::OK,
        s.collection("roles", "/roles", filter_list(items, &q.0, &["name", "id"])),
    )
}

async fn create_role(
    AxState(s): AxState<State>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> HttpResult {
    let r = s.prepare_role(&body).await?;
    s.authorize(caller.ctx(), "identity:create_role", &role_target(&r))?;
    s.create_role(&r).await?;
    json(StatusCode::CREATED, json!({"role": s.role_view(&r)}))
}

async fn get_role(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let r = s.existing_role(&id).await?;
    s.authorize(caller.ctx(), "identity:get_role", &role_target(&r))?;
    json(StatusCode::OK, json!({"role": s.role_view(&r)}))
}

async fn update_role(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    let r = s.existing_role(&id).await?;
    s.authorize(caller.ctx(), "identity:update_role", &role_target(&r))?;
    let r = s.update_role(r, &body).await?;
    json(StatusCode::OK, json!({"role": s.role_view(&r)}))
}

async fn delete_role(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let r = s.existing_role(&id).await?;
    s.authorize(caller.ctx(), "identity:delete_role", &role_target(&r))?;
    s.delete_role(&r).await?;
    no_content()
}

fn role_ref(s: &State, r: &crate::model::Role) -> Value {
    json!({"id": r.id, "name": r.name, "links": s.link(&format!("/roles/{}", r.id))})
}

async fn list_implied(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    let prior = s.existing_role(&id).await?;
    s.authorize(caller.ctx(), "identity:list_implied_roles", &json!({}))?;
    let mut implies = Vec::new();
    for (p, i) in s.store.implied_roles().await? {
        if p == id {
            if let Some(r) = s.store.role(&i).await? {
                implies.push(role_ref(&s, &r));
            }
        }
    }
    json(
        StatusCode::OK,
        json!({"role_inference": {"prior_role": role_ref(&s, &prior), "implies": implies}, "links": s.link(&format!("/roles/{id}/implies"))}),
    )
}

async fn create_implied(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, implied)): Path<(String, String)>,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:create_implied_role", &json!({}))?;
    s.create_implied_role(&id, &implied).await?;
    let (p, i) = (
        s.existing_role(&id).await?,
        s.existing_role(&implied).await?,
    );
    json(
        StatusCode::CREATED,
        json!({"role_inference": {"prior_role": role_ref(&s, &p), "implies": role_ref(&s, &i)}, "links": s.link(&format!("/roles/{id}/implies/{implied}"))}),
    )
}

async fn get_implied(
    AxState(s): AxState<State>,
    caller: Caller,
    method: axum::http::Method,
    Path((id, implied)): Path<(String, String)>,
) -> HttpResult {
    let rule = if method == axum::http::Method::HEAD {
        "identity:check_implied_role"
    } else {
        "identity:get_implied_role"
    };
    s.authorize(caller.ctx(), rule, &json!({}))?;
    let (p, i) = (
        s.existing_role(&id).await?,
        s.existing_role(&implied).await?,
    );
    if !s
        .store
        .implied_roles()
        .await?
        .iter()
        .any(|(a, b)| a == &id && b == &implied)
    {
        return Err(IdentityError::not_found(
            "implied role",
            format!("{id} implies {implied}"),
        ));
    }
    if method == axum::http::Method::HEAD {
        return no_content();
    }
    json(
        StatusCode::OK,
        json!({"role_inference": {"prior_role": role_ref(&s, &p), "implies": role_ref(&s, &i)}, "links": s.link(&format!("/roles/{id}/implies/{implied}"))}),
    )
}

async fn delete_implied(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, implied)): Path<(String, String)>,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:delete_implied_role", &json!({}))?;
    s.delete_implied_role(&id, &implied).await?;
    no_content()
}

async fn role_inferences(AxState(s): AxState<State>, caller: Caller) -> HttpResult {
    s.authorize(
        caller.ctx(),
        "identity:list_role_inference_rules",
        &json!({}),
    )?;
    let mut by_prior: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for (p, i) in s.store.implied_roles().await? {
        if let Some(r) = s.store.role(&i).await? {
            by_prior.entry(p).or_default().push(role_ref(&s, &r));
        }
    }
    let mut out = Vec::new();
    for (p, implies) in by_prior {
        if let Some(r) = s.store.role(&p).await? {
            out.push(json!({"prior_role": role_ref(&s, &r), "implies": implies}));
        }
    }
    json(
        StatusCode::OK,
        json!({"role_inferences": out, "links": s.link("/role_inferences")}),
    )
}
