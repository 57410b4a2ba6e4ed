//! `/v3/OS-EP-FILTER` project associations: give a project single endpoints
//! (`/projects/{project_id}/endpoints/{endpoint_id}`) or endpoint groups
//! (`/endpoint_groups/{id}/projects/{project_id}`), and list either side of them.
//! Checks answer 204 (endpoint) or the association (endpoint group), as Keystone does.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Value};

use super::{endpoint_groups, json, no_content, Caller, HttpResult, State};
use crate::model::Project;
use crate::service::Identity;

const PROJECT_ENDPOINT: &str = "/v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint_id}";
const GROUP_PROJECT: &str = "/v3/OS-EP-FILTER/endpoint_groups/{id}/projects/{project_id}";

pub fn routes() -> Api<State> {
    Api::new()
        .put(
            PROJECT_ENDPOINT,
            op("add_endpoint_to_project", "Give a project an endpoint").status(204),
            add_endpoint,
        )
        .get(
            PROJECT_ENDPOINT,
            op(
                "check_endpoint_in_project",
                "Check (HEAD too) that a project has an endpoint",
            )
            .status(204),
            check_endpoint,
        )
        .delete(
            PROJECT_ENDPOINT,
            op(
                "remove_endpoint_from_project",
                "Take an endpoint from a project",
            )
            .status(204),
            remove_endpoint,
        )
        .get(
            "/v3/OS-EP-FILTER/projects/{project_id}/endpoints",
            op(
                "list_endpoints_for_project",
                "List the endpoints a project is given",
            ),
            project_endpoints,
        )
        .get(
            "/v3/OS-EP-FILTER/projects/{project_id}/endpoint_groups",
            op(
                "list_endpoint_groups_for_project",
                "List the endpoint groups a project is given",
            ),
            project_groups,
        )
        .get(
            "/v3/OS-EP-FILTER/endpoints/{endpoint_id}/projects",
            op(
                "list_projects_for_endpoint",
                "List the projects given an endpoint",
            ),
            endpoint_projects,
        )
        .get(
            "/v3/OS-EP-FILTER/endpoint_groups/{id}/endpoints",
            op(
                "list_endpoints_associated_with_endpoint_group",
                "List the endpoints an endpoint group selects",
            ),
            group_endpoints,
        )
        .get(
            "/v3/OS-EP-FILTER/endpoint_groups/{id}/projects",
            op(
                "list_projects_associated_with_endpoint_group",
                "List the projects given an endpoint group",
            ),
            group_projects,
        )
        .put(
            GROUP_PROJECT,
            op(
                "add_endpoint_group_to_project",
                "Give a project an endpoint group",
            )
            .status(204),
            add_group,
        )
        .get(
            GROUP_PROJECT,
            op(
                "get_endpoint_group_in_project",
                "Show a project's endpoint group association",
            ),
            get_group,
        )
        .delete(
            GROUP_PROJECT,
            op(
                "remove_endpoint_group_from_project",
                "Take an endpoint group from a project",
            )
            .status(204),
            remove_group,
        )
}

fn projects(s: &Identity, path: &str, list: &[Project]) -> Value {
    s.collection(
        "projects",
        path,
        list.iter().map(|p| s.project_view(p)).collect(),
    )
}

async fn add_endpoint(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((project_id, endpoint_id)): Path<(String, String)>,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:add_endpoint_to_project", &json!({}))?;
    s.add_endpoint_to_project(&project_id, &endpoint_id).await?;
    no_content()
}

async fn check_endpoint(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((project_id, endpoint_id)): Path<(String, String)>,
) -> HttpResult {
    s.authorize(
        caller.ctx(),
        "identity:check_endpoint_in_project",
        &json!({}),
    )?;
    s.check_endpoint_in_project(&project_id, &endpoint_id)
        .await?;
    no_content()
}

async fn remove_endpoint(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((project_id, endpoint_id)): Path<(String, String)>,
) -> HttpResult {
    s.authorize(
        caller.ctx(),
        "identity:remove_endpoint_from_project",
        &json!({}),
    )?;
    s.remove_endpoint_from_project(&project_id, &endpoint_id)
        .await?;
    no_content()
}

async fn project_endpoints(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(project_id): Path<String>,
) -> HttpResult {
    s.authorize(
        caller.ctx(),
        "identity:list_endpoints_for_project",
        &json!({}),
    )?;
    let items = s
        .endpoints_for_project(&project_id)
        .await?
        .iter()
        .map(|e| s.endpoint_view(e))
        .collect();
    let path = format!("/OS-EP-FILTER/projects/{project_id}/endpoints");
    json(StatusCode::OK, s.collection("endpoints", &path, items))
}

async fn project_groups(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(project_id): Path<String>,
) -> HttpResult {
    s.authorize(
        caller.ctx(),
        "identity:list_endpoint_groups_for_project",
        &json!({}),
    )?;
    let items = s
        .endpoint_groups_for_project(&project_id)
        .await?
        .iter()
        .map(|g| endpoint_groups::view(&s, g))
        .collect();
    let path = format!("/OS-EP-FILTER/projects/{project_id}/endpoint_groups");
    json(
        StatusCode::OK,
        s.collection("endpoint_groups", &path, items),
    )
}

async fn endpoint_projects(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(endpoint_id): Path<String>,
) -> HttpResult {
    s.authorize(
        caller.ctx(),
        "identity:list_projects_for_endpoint",
        &json!({}),
    )?;
    let list = s.projects_for_endpoint(&endpoint_id).await?;
    let path = format!("/OS-EP-FILTER/endpoints/{endpoint_id}/projects");
    json(StatusCode::OK, projects(&s, &path, &list))
}

async fn group_endpoints(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    s.authorize(
        caller.ctx(),
        "identity:list_endpoints_associated_with_endpoint_group",
        &json!({}),
    )?;
    let items = s
        .endpoints_in_group(&id)
        .await?
        .iter()
        .map(|e| s.endpoint_view(e))
        .collect();
    let path = format!("/OS-EP-FILTER/endpoint_groups/{id}/endpoints");
    json(StatusCode::OK, s.collection("endpoints", &path, items))
}

async fn group_projects(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    s.authorize(
        caller.ctx(),
        "identity:list_projects_associated_with_endpoint_group",
        &json!({}),
    )?;
    let list = s.projects_for_endpoint_group(&id).await?;
    let path = format!("/OS-EP-FILTER/endpoint_groups/{id}/projects");
    json(StatusCode::OK, projects(&s, &path, &list))
}

async fn add_group(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, project_id)): Path<(String, String)>,
) -> HttpResult {
    s.authorize(
        caller.ctx(),
        "identity:add_endpoint_group_to_project",
        &json!({}),
    )?;
    s.add_endpoint_group_to_project(&id, &project_id).await?;
    no_content()
}

async fn get_group(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, project_id)): Path<(String, String)>,
) -> HttpResult {
    s.authorize(
        caller.ctx(),
        "identity:get_endpoint_group_in_project",
        &json!({}),
    )?;
    s.check_endpoint_group_in_project(&id, &project_id).await?;
    json(
        StatusCode::OK,
        json!({"project_endpoint_group": {
            "endpoint_group_id": id, "project_id": project_id,
            "links": s.link(&format!("/OS-EP-FILTER/endpoint_groups/{id}/projects/{project_id}")),
        }}),
    )
}

async fn remove_group(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, project_id)): Path<(String, String)>,
) -> HttpResult {
    s.authorize(
        caller.ctx(),
        "identity:remove_endpoint_group_from_project",
        &json!({}),
    )?;
    s.remove_endpoint_group_from_project(&id, &project_id)
        .await?;
    no_content()
}
