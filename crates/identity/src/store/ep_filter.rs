//! SQL of OS-EP-FILTER associations: which endpoints (directly, or through an endpoint
//! group) a project is given. Lookups join the endpoint or project tables so a row left by
//! an interrupted delete never shows.

use ferrostack_db::sqlx::{self, Row};

use super::{Store, R};

/// Which association table a call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Association {
    /// `project_endpoints`: a project and one endpoint.
    Endpoint,
    /// `project_endpoint_groups`: a project and an endpoint group.
    EndpointGroup,
}

impl Association {
    fn table(self) -> (&'static str, &'static str) {
        match self {
            Association::Endpoint => ("project_endpoints", "endpoint_id"),
            Association::EndpointGroup => ("project_endpoint_groups", "endpoint_group_id"),
        }
    }
}

impl Store {
    /// Adds an association; a duplicate is the database's unique violation.
    pub async fn associate(&self, kind: Association, project_id: &str, other_id: &str) -> R<()> {
        let (table, column) = kind.table();
        sqlx::query(&format!(
            "INSERT INTO {table} (project_id, {column}) VALUES ($1, $2)"
        ))
        .bind(project_id)
        .bind(other_id)
        .execute(self.pool())
        .await
        .map(drop)
    }

    pub async fn is_associated(
        &self,
        kind: Association,
        project_id: &str,
        other_id: &str,
    ) -> R<bool> {
        let (table, column) = kind.table();
        Ok(sqlx::query(&format!(
            "SELECT 1 FROM {table} WHERE project_id=$1 AND {column}=$2"
        ))
        .bind(project_id)
        .bind(other_id)
        .fetch_optional(self.pool())
        .await?
        .is_some())
    }

    pub async fn dissociate(&self, kind: Association, project_id: &str, other_id: &str) -> R<bool> {
        let (table, column) = kind.table();
        Ok(sqlx::query(&format!(
            "DELETE FROM {table} WHERE project_id=$1 AND {column}=$2"
        ))
        .bind(project_id)
        .bind(other_id)
        .execute(self.pool())
        .await?
        .rows_affected()
            > 0)
    }

    /// The endpoint (group) ids associated with a project.
    pub async fn associated_with_project(
        &self,
        kind: Association,
        project_id: &str,
    ) -> R<Vec<String>> {
        let (table, column) = kind.table();
        let other = match kind {
            Association::Endpoint => "endpoints",
            Association::EndpointGroup => "endpoint_groups",
        };
        Ok(sqlx::query(&format!(
            "SELECT a.{column} FROM {table} a JOIN {other} o ON o.id = a.{column} WHERE a.project_id=$1 ORDER BY a.{column}"
        ))
        .bind(project_id)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(|r| r.get(0))
        .collect())
    }

    /// The ids of the projects associated with an endpoint (group).
    pub async fn projects_associated_with(
        &self,
        kind: Association,
        other_id: &str,
    ) -> R<Vec<String>> {
        let (table, column) = kind.table();
        Ok(sqlx::query(&format!(
            "SELECT a.project_id FROM {table} a JOIN projects p ON p.id = a.project_id WHERE a.{column}=$1 ORDER BY a.project_id"
        ))
        .bind(other_id)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(|r| r.get(0))
        .collect())
    }

    /// Every association of a kind, as (project id, endpoint or group id): what the catalog
    /// cache reads once per revision.
    pub async fn associations(&self, kind: Association) -> R<Vec<(String, String)>> {
        let (table, column) = kind.table();
        Ok(
            sqlx::query(&format!("SELECT project_id, {column} FROM {table}"))
                .fetch_all(self.pool())
                .await?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
        )
    }
}
