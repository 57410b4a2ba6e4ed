//! The Identity service as the source of quotas for the other services (unified limits):
//! a project's own limit when one is set, else the registered default.

use std::future::Future;
use std::pin::Pin;

use ferrostack_common::limits::LimitSource;

use crate::error::Result;
use crate::service::Identity;

impl Identity {
    pub async fn effective_limit(
        &self,
        project_id: &str,
        service_type: &str,
        resource: &str,
    ) -> Result<Option<i64>> {
        let services: Vec<String> = self
            .store
            .services()
            .await?
            .into_iter()
            .filter(|s| s.service_type == service_type)
            .map(|s| s.id)
            .collect();
        if services.is_empty() {
            return Ok(None);
        }
        let own = self.store.limits().await?.into_iter().find(|l| {
            l.project_id.as_deref() == Some(project_id)
                && l.resource_name == resource
                && services.contains(&l.service_id)
        });
        if let Some(l) = own {
            return Ok(Some(l.resource_limit));
        }
        Ok(self
            .store
            .registered_limits()
            .await?
            .into_iter()
            .find(|l| l.resource_name == resource && services.contains(&l.service_id))
            .map(|l| l.default_limit))
    }
}

impl LimitSource for Identity {
    fn project_limit<'a>(
        &'a self,
        project_id: &'a str,
        service_type: &'a str,
        resource: &'a str,
    ) -> Pin<Box<dyn Future<Output = Option<i64>> + Send + 'a>> {
        Box::pin(async move {
            match self
                .effective_limit(project_id, service_type, resource)
                .await
            {
                Ok(limit) => limit,
                Err(e) => {
                    // Failing closed would stop every upload on a database hiccup; failing
                    // open lets one request through unlimited. Log it loudly either way.
                    tracing::error!(error = %e, resource, "could not read a limit; not enforcing it for this request");
                    None
                }
            }
        })
    }
}
