//! Endpoint groups (OS-EP-FILTER): a name, a description and `filters` over the endpoint
//! attributes `interface`, `service_id` and `region_id`. Filters are validated as Keystone
//! does (known keys, string values, a valid interface). Projects are given groups in
//! [`super::ep_filter`].

use serde_json::Value;

use crate::error::{IdentityError, Result};
use crate::model::{EndpointGroup, Extra};
use crate::service::resources::Input;
use crate::service::{new_id, Identity};

const FILTER_KEYS: &[&str] = &["interface", "service_id", "region_id"];

fn filters(i: &Input) -> Result<Option<Extra>> {
    let Some(f) = i.object("filters")? else {
        return Ok(None);
    };
    for (k, v) in &f {
        if !FILTER_KEYS.contains(&k.as_str()) {
            return Err(IdentityError::bad(format!(
                "Invalid input for field 'filters': unknown filter '{k}' (use interface, service_id or region_id)."
            )));
        }
        let Value::String(s) = v else {
            return Err(IdentityError::bad(format!(
                "Invalid input for field 'filters.{k}': expected a string."
            )));
        };
        if k == "interface" && !["public", "internal", "admin"].contains(&s.as_str()) {
            return Err(IdentityError::bad(
                "Invalid input for field 'filters.interface': must be public, internal or admin.",
            ));
        }
    }
    Ok(Some(f))
}

impl Identity {
    pub async fn create_endpoint_group(&self, body: &Value) -> Result<EndpointGroup> {
        let i = Input::from_body(body, "endpoint_group")?;
        i.only(&["name", "description", "filters"])?;
        let g = EndpointGroup {
            id: new_id(),
            name: i.required("name", 255)?,
            description: i.string("description", 65_535)?.unwrap_or_default(),
            filters: filters(&i)?.ok_or_else(|| {
                IdentityError::bad("Expecting to find filters in endpoint_group.")
            })?,
        };
        self.store.upsert_endpoint_group(&g, true).await?;
        self.changed().await?;
        Ok(g)
    }

    pub async fn existing_endpoint_group(&self, id: &str) -> Result<EndpointGroup> {
        self.store
            .endpoint_group(id)
            .await?
            .ok_or_else(|| IdentityError::not_found("endpoint group", id))
    }

    pub async fn update_endpoint_group(&self, id: &str, body: &Value) -> Result<EndpointGroup> {
        let mut g = self.existing_endpoint_group(id).await?;
        let i = Input::from_body(body, "endpoint_group")?;
        i.only(&["name", "description", "filters"])?;
        if i.has("name") {
            g.name = i.required("name", 255)?;
        }
        if i.has("description") {
            g.description = i.string("description", 65_535)?.unwrap_or_default();
        }
        if let Some(f) = filters(&i)? {
            g.filters = f;
        }
        self.store.upsert_endpoint_group(&g, false).await?;
        self.changed().await?;
        Ok(g)
    }

    pub async fn delete_endpoint_group(&self, id: &str) -> Result<()> {
        if !self.store.delete_endpoint_group(id).await? {
            return Err(IdentityError::not_found("endpoint group", id));
        }
        self.changed().await
    }
}
