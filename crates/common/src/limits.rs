//! Quotas as OpenStack's unified limits define them: the Identity service holds registered
//! (default) limits per service and resource, and per-project overrides; other services ask
//! it through [`LimitSource`] before they create or grow something. `None` means no limit
//! is registered, and nothing is enforced (as oslo.limit does).

use std::future::Future;
use std::pin::Pin;

pub trait LimitSource: Send + Sync + 'static {
    /// The limit of `resource` of the service of type `service_type` for `project_id`.
    fn project_limit<'a>(
        &'a self,
        project_id: &'a str,
        service_type: &'a str,
        resource: &'a str,
    ) -> Pin<Box<dyn Future<Output = Option<i64>> + Send + 'a>>;
}
