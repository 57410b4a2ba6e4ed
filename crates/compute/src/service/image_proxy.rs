//! The Compute API's image proxy (`/images`, deprecated by Nova: gone from 2.36, the
//! metadata calls from 2.39). Every call goes to the Image service in this process with the
//! caller's own credentials, so Glance's visibility and ownership rules decide what the
//! caller sees and may change; Glance's errors come back in Nova's words.
//!
//! Nova's `metadata` of an image is Glance's extra properties, and Nova's filters map onto
//! Glance's (`server` is the `instance_uuid` property, `type` is `image_type`, `property-x`
//! is `x`, `changes-since` is a lower bound on `updated_at`).

use std::collections::BTreeMap;

use ferrostack_common::AuthContext;
use ferrostack_image::error::ImageError;
use ferrostack_image::model::Image;
use ferrostack_image::service::PatchOp;
use serde_json::Value;

use super::ComputeService;
use crate::error::{ComputeError, Result};

/// A list request through the proxy, in Glance's terms.
#[derive(Debug, Clone, Default)]
pub struct ImageQuery {
    /// Exact-match filters Glance understands (`name`, `status`, properties...).
    pub filters: Vec<(String, String)>,
    /// Only images updated at or after this time.
    pub changes_since: Option<i64>,
    pub limit: Option<usize>,
    pub marker: Option<String>,
}

/// How a metadata write combines with the image's properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataWrite {
    /// Adds or changes the given keys (POST, and PUT of one key).
    Merge,
    /// The given keys become all the properties (PUT).
    Replace,
}

/// Glance's page size for the calls the proxy makes on its own behalf.
const GLANCE_PAGE: usize = 1000;

/// An Image service error as Nova's proxy reports it.
fn from_image(e: ImageError, id: &str) -> ComputeError {
    match e {
        ImageError::NotFound(_) => ComputeError::not_found("Image not found."),
        ImageError::Forbidden(_) | ImageError::Unauthorized => {
            ComputeError::forbidden(format!("Not authorized for image {id}."))
        }
        ImageError::BadRequest(m) | ImageError::Conflict(m) => ComputeError::bad(m),
        ImageError::TooLarge(_) => ComputeError::forbidden("Image metadata limit exceeded"),
        other => ComputeError::internal(other),
    }
}

impl ComputeService {
    /// The images the caller may see, filtered and paged as Nova's proxy does (Glance's
    /// order: newest first).
    pub async fn proxy_images(&self, ctx: &AuthContext, q: &ImageQuery) -> Result<Vec<Image>> {
        let mut all: Vec<Image> = Vec::new();
        // Glance pages at most 1000 at a time; the proxy filters on `changes-since` itself,
        // so it reads every page before cutting its own.
        loop {
            let mut query = q.filters.clone();
            query.push(("limit".into(), GLANCE_PAGE.to_string()));
            if let Some(last) = all.last() {
                query.push(("marker".into(), last.id.clone()));
            }
            let (page, more) = self.image.list(ctx, &query).await.map_err(|e| match e {
                ImageError::BadRequest(m) => ComputeError::bad(m),
                ImageError::Forbidden(m) => ComputeError::forbidden(m),
                other => ComputeError::internal(other),
            })?;
            all.extend(page);
            if !more {
                break;
            }
        }
        all.retain(|i| q.changes_since.is_none_or(|t| i.updated_at >= t));
        if let Some(m) = &q.marker {
            let at = all
                .iter()
                .position(|i| &i.id == m)
                .ok_or_else(|| ComputeError::bad(format!("Marker {m} could not be found.")))?;
            all.drain(..=at);
        }
        if let Some(l) = q.limit {
            all.truncate(l);
        }
        Ok(all)
    }

    pub async fn proxy_image(&self, ctx: &AuthContext, id: &str) -> Result<Image> {
        self.image
            .visible_image(ctx, id)
            .await
            .map_err(|e| from_image(e, id))
    }

    pub async fn proxy_delete_image(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        self.image.delete(ctx, id).await.map_err(|e| match e {
            ImageError::Forbidden(_) | ImageError::Unauthorized => {
                ComputeError::forbidden("You are not allowed to delete the image.")
            }
            other => from_image(other, id),
        })
    }

    /// Writes image metadata (Glance properties) and returns the properties after it.
    /// The count of properties is held to the `server_metadata_items` limit (128 unless
    /// the unified limits say otherwise), as Nova's proxy checks `metadata_items`.
    pub async fn proxy_set_image_metadata(
        &self,
        ctx: &AuthContext,
        id: &str,
        items: &BTreeMap<String, String>,
        how: MetadataWrite,
    ) -> Result<serde_json::Map<String, Value>> {
        let image = self.proxy_image(ctx, id).await?;
        let mut ops = Vec::new();
        if how == MetadataWrite::Replace {
            for key in image.properties.keys().filter(|k| !items.contains_key(*k)) {
                ops.push(PatchOp {
                    op: "remove".into(),
                    attr: key.clone(),
                    value: None,
                });
            }
        }
        for (k, v) in items {
            ops.push(PatchOp {
                op: if image.properties.contains_key(k) {
                    "replace".into()
                } else {
                    "add".into()
                },
                attr: k.clone(),
                value: Some(Value::String(v.clone())),
            });
        }
        let after = ops.iter().filter(|o| o.op == "add").count() as i64
            + image.properties.len() as i64
            - ops.iter().filter(|o| o.op == "remove").count() as i64;
        let project = ctx.project_id().unwrap_or_default();
        let limit = self
            .limit_of(project, "server_metadata_items")
            .await
            .unwrap_or(128);
        if limit >= 0 && after > limit {
            return Err(ComputeError::forbidden("Image metadata limit exceeded"));
        }
        if ops.is_empty() {
            return Ok(image.properties);
        }
        let updated = self
            .image
            .patch(ctx, id, &ops)
            .await
            .map_err(|e| from_image(e, id))?;
        Ok(updated.properties)
    }

    /// Removes one metadata key (404 `Invalid metadata key` when the image has none).
    pub async fn proxy_delete_image_metadata(
        &self,
        ctx: &AuthContext,
        id: &str,
        key: &str,
    ) -> Result<()> {
        let image = self.proxy_image(ctx, id).await?;
        if !image.properties.contains_key(key) {
            return Err(ComputeError::not_found("Invalid metadata key"));
        }
        let op = PatchOp {
            op: "remove".into(),
            attr: key.to_string(),
            value: None,
        };
        self.image
            .patch(ctx, id, &[op])
            .await
            .map_err(|e| from_image(e, id))?;
        Ok(())
    }
}
