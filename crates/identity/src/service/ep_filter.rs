//! OS-EP-FILTER project associations: a project may be given endpoints one by one
//! (`/v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint_id}`) or through endpoint
//! groups (`/v3/OS-EP-FILTER/endpoint_groups/{id}/projects/{project_id}`). As in Keystone, a
//! project-scoped token of a project with any association shows only those endpoints (the
//! enabled ones) in its catalog, and services left without endpoints are dropped; projects
//! without associations see the whole catalog.

use std::collections::{HashMap, HashSet};

use crate::error::{IdentityError, Result};
use crate::model::{Endpoint, EndpointGroup, Project};
use crate::service::resources::conflict;
use crate::service::Identity;
use crate::store::ep_filter::Association;

/// Whether an endpoint passes a group's filters (every given attribute equal).
pub fn in_group(g: &EndpointGroup, e: &Endpoint) -> bool {
    g.filters.iter().all(|(k, v)| {
        let want = v.as_str();
        match k.as_str() {
            "interface" => want == Some(e.interface.as_str()),
            "service_id" => want == Some(e.service_id.as_str()),
            "region_id" => want == e.region_id.as_deref(),
            _ => false,
        }
    })
}

/// Per project with associations, the ids of the endpoints its catalog shows.
pub fn project_endpoint_sets(
    endpoints: &[Endpoint],
    groups: &[EndpointGroup],
    direct: &[(String, String)],
    group_links: &[(String, String)],
) -> HashMap<String, HashSet<String>> {
    let mut out: HashMap<String, HashSet<String>> = HashMap::new();
    let known: HashSet<&str> = endpoints.iter().map(|e| e.id.as_str()).collect();
    for (project, endpoint) in direct {
        if known.contains(endpoint.as_str()) {
            out.entry(project.clone())
                .or_default()
                .insert(endpoint.clone());
        }
    }
    for (project, group_id) in group_links {
        let Some(g) = groups.iter().find(|g| &g.id == group_id) else {
            continue;
        };
        let set = out.entry(project.clone()).or_default();
        set.extend(
            endpoints
                .iter()
                .filter(|e| in_group(g, e))
                .map(|e| e.id.clone()),
        );
    }
    // An association that selects nothing filters nothing (as in Keystone).
    out.retain(|_, set| !set.is_empty());
    out
}

impl Identity {
    async fn existing_endpoint(&self, id: &str) -> Result<Endpoint> {
        self.store
            .endpoint(id)
            .await?
            .ok_or_else(|| IdentityError::not_found("endpoint", id))
    }

    fn no_association(what: &str, id: &str, project_id: &str) -> IdentityError {
        IdentityError::NotFoundMessage(format!(
            "Could not find an association of {what} {id} with project {project_id}."
        ))
    }

    /// Gives a project an endpoint (409 when it already has it).
    pub async fn add_endpoint_to_project(&self, project_id: &str, endpoint_id: &str) -> Result<()> {
        self.existing_endpoint(endpoint_id).await?;
        self.existing_project(project_id).await?;
        self.store
            .associate(Association::Endpoint, project_id, endpoint_id)
            .await
            .map_err(conflict(
                "project_endpoint",
                format!("endpoint {endpoint_id} is already associated with project {project_id}"),
            ))?;
        self.changed().await
    }

    /// 204 when the project has the endpoint directly, 404 otherwise.
    pub async fn check_endpoint_in_project(
        &self,
        project_id: &str,
        endpoint_id: &str,
    ) -> Result<()> {
        self.existing_endpoint(endpoint_id).await?;
        self.existing_project(project_id).await?;
        if !self
            .store
            .is_associated(Association::Endpoint, project_id, endpoint_id)
            .await?
        {
            return Err(Self::no_association("endpoint", endpoint_id, project_id));
        }
        Ok(())
    }

    pub async fn remove_endpoint_from_project(
        &self,
        project_id: &str,
        endpoint_id: &str,
    ) -> Result<()> {
        if !self
            .store
            .dissociate(Association::Endpoint, project_id, endpoint_id)
            .await?
        {
            return Err(Self::no_association("endpoint", endpoint_id, project_id));
        }
        self.changed().await
    }

    /// The endpoints a project is given, directly or through its endpoint groups.
    pub async fn endpoints_for_project(&self, project_id: &str) -> Result<Vec<Endpoint>> {
        self.existing_project(project_id).await?;
        let direct: HashSet<String> = self
            .store
            .associated_with_project(Association::Endpoint, project_id)
            .await?
            .into_iter()
            .collect();
        let mut groups = Vec::new();
        for id in self
            .store
            .associated_with_project(Association::EndpointGroup, project_id)
            .await?
        {
            groups.extend(self.store.endpoint_group(&id).await?);
        }
        Ok(self
            .store
            .endpoints()
            .await?
            .into_iter()
            .filter(|e| direct.contains(&e.id) || groups.iter().any(|g| in_group(g, e)))
            .collect())
    }

    /// The projects given an endpoint directly.
    pub async fn projects_for_endpoint(&self, endpoint_id: &str) -> Result<Vec<Project>> {
        self.existing_endpoint(endpoint_id).await?;
        self.projects_of(Association::Endpoint, endpoint_id).await
    }

    async fn projects_of(&self, kind: Association, id: &str) -> Result<Vec<Project>> {
        let mut out = Vec::new();
        for pid in self.store.projects_associated_with(kind, id).await? {
            out.extend(self.store.project(&pid).await?);
        }
        Ok(out)
    }

    /// Gives a project an endpoint group (409 when it already has it).
    pub async fn add_endpoint_group_to_project(
        &self,
        group_id: &str,
        project_id: &str,
    ) -> Result<()> {
        self.existing_project(project_id).await?;
        self.existing_endpoint_group(group_id).await?;
        self.store
            .associate(Association::EndpointGroup, project_id, group_id)
            .await
            .map_err(conflict(
                "project_endpoint_group",
                format!(
                    "endpoint group {group_id} is already associated with project {project_id}"
                ),
            ))?;
        self.changed().await
    }

    pub async fn check_endpoint_group_in_project(
        &self,
        group_id: &str,
        project_id: &str,
    ) -> Result<()> {
        self.existing_project(project_id).await?;
        self.existing_endpoint_group(group_id).await?;
        if !self
            .store
            .is_associated(Association::EndpointGroup, project_id, group_id)
            .await?
        {
            return Err(Self::no_association("endpoint group", group_id, project_id));
        }
        Ok(())
    }

    pub async fn remove_endpoint_group_from_project(
        &self,
        group_id: &str,
        project_id: &str,
    ) -> Result<()> {
        self.existing_project(project_id).await?;
        self.existing_endpoint_group(group_id).await?;
        if !self
            .store
            .dissociate(Association::EndpointGroup, project_id, group_id)
            .await?
        {
            return Err(Self::no_association("endpoint group", group_id, project_id));
        }
        self.changed().await
    }

    pub async fn projects_for_endpoint_group(&self, group_id: &str) -> Result<Vec<Project>> {
        self.existing_endpoint_group(group_id).await?;
        self.projects_of(Association::EndpointGroup, group_id).await
    }

    pub async fn endpoint_groups_for_project(
        &self,
        project_id: &str,
    ) -> Result<Vec<EndpointGroup>> {
        self.existing_project(project_id).await?;
        let mut out = Vec::new();
        for id in self
            .store
            .associated_with_project(Association::EndpointGroup, project_id)
            .await?
        {
            out.extend(self.store.endpoint_group(&id).await?);
        }
        Ok(out)
    }

    /// The endpoints an endpoint group's filters select.
    pub async fn endpoints_in_group(&self, group_id: &str) -> Result<Vec<Endpoint>> {
        let g = self.existing_endpoint_group(group_id).await?;
        Ok(self
            .store
            .endpoints()
            .await?
            .into_iter()
            .filter(|e| in_group(&g, e))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn endpoint(id: &str, service: &str, interface: &str, region: Option<&str>) -> Endpoint {
        Endpoint {
            id: id.into(),
            service_id: service.into(),
            interface: interface.into(),
            region_id: region.map(Into::into),
            url: format!("http://{id}"),
            enabled: true,
            extra: Default::default(),
        }
    }

    #[test]
    fn sets_join_direct_endpoints_and_group_matches() {
        let endpoints = vec![
            endpoint("e1", "s1", "public", Some("r1")),
            endpoint("e2", "s1", "admin", Some("r1")),
            endpoint("e3", "s2", "public", None),
        ];
        let group = EndpointGroup {
            id: "g".into(),
            name: "public".into(),
            description: String::new(),
            filters: json!({"interface": "public"}).as_object().unwrap().clone(),
        };
        let empty = EndpointGroup {
            id: "g2".into(),
            name: "none".into(),
            description: String::new(),
            filters: json!({"service_id": "s9"}).as_object().unwrap().clone(),
        };
        let sets = project_endpoint_sets(
            &endpoints,
            &[group, empty],
            &[("p1".into(), "e2".into()), ("p1".into(), "gone".into())],
            &[
                ("p2".into(), "g".into()),
                ("p3".into(), "nosuch".into()),
                ("p4".into(), "g2".into()),
            ],
        );
        assert_eq!(sets["p1"], HashSet::from(["e2".to_string()]));
        assert_eq!(
            sets["p2"],
            HashSet::from(["e1".to_string(), "e3".to_string()])
        );
        assert!(!sets.contains_key("p3"));
        assert!(
            !sets.contains_key("p4"),
            "a group selecting nothing filters nothing"
        );
    }
}
