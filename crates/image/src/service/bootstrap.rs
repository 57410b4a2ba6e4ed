//! Images the operator's start-up registers (`ferrostack up --register-image FILE`, as DevStack
//! registers CirrOS): uploaded through the same inspected, atomic path as any upload, owned by
//! the admin project, public, and registered once: a start finding an active image with the
//! same name and multihash leaves it alone.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use ferrostack_common::{AuthContext, Scope};
use serde_json::json;

use crate::config::HashingAlgorithm;
use crate::error::{ImageError, Result};
use crate::model::Image;
use crate::service::data::Hasher;
use crate::service::ImageService;

/// An image file to register at start.
pub struct LocalImage<'a> {
    pub name: &'a str,
    pub path: &'a Path,
    pub disk_format: &'a str,
    pub owner_project: &'a str,
    /// Extra properties (e.g. `hw_rng_model`), strings only.
    pub properties: Vec<(String, String)>,
}

fn operator(project: &str) -> AuthContext {
    AuthContext {
        user_id: "ferrostack".into(),
        user_name: "ferrostack".into(),
        user_domain_id: "default".into(),
        user_domain_name: "Default".into(),
        scope: Scope::Project {
            id: project.into(),
            name: "admin".into(),
            domain_id: "default".into(),
            domain_name: "Default".into(),
        },
        roles: vec!["admin".into(), "member".into(), "reader".into()],
        role_ids: vec![],
        methods: vec![],
        audit_ids: vec![],
        expires_at: i64::MAX,
        application_credential_id: None,
        trust_id: None,
        is_admin_project: true,
    }
}

/// The multihash of a local file, as an upload of it would compute it.
async fn multihash_of(path: &Path, algo: HashingAlgorithm) -> Result<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        use std::io::Read;
        let mut f = std::fs::File::open(path)?;
        let mut h = Hasher::multihash(algo);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(h.hex())
    })
    .await
    .map_err(|e| ImageError::Internal(e.into()))?
    .map_err(ImageError::from)
}

impl ImageService {
    pub async fn register_local(self: &Arc<Self>, spec: &LocalImage<'_>) -> Result<Image> {
        let ctx = operator(spec.owner_project);
        let algo = self.config.hashing_algorithm;
        let hash = multihash_of(spec.path, algo).await?;
        let existing = self.store.visible(None).await?;
        if let Some(same) = existing.iter().find(|i| {
            i.name.as_deref() == Some(spec.name)
                && i.status == "active"
                && i.os_hash_algo.as_deref() == Some(algo.name())
                && i.os_hash_value.as_deref() == Some(hash.as_str())
        }) {
            return Ok(same.clone());
        }
        let mut body = json!({"name": spec.name, "disk_format": spec.disk_format, "container_format": "bare", "visibility": "public"});
        for (k, v) in &spec.properties {
            body[k] = json!(v);
        }
        let image = self.create(&ctx, &body).await?;
        match self.upload_file_as(&ctx, &image.id, spec.path).await {
            Ok(done) => Ok(done),
            Err(e) => {
                let _ = self.delete(&ctx, &image.id).await;
                Err(e)
            }
        }
    }

    /// Uploads a local file as the data of a queued image on behalf of another service of
    /// this process (a server snapshot written by the compute agent): the request that made
    /// the image was authorized already, so the upload runs as the image owner's operator.
    /// The data goes through the same inspection and quota as any upload. An image that is
    /// already active is left alone (the caller may be a workflow step running again).
    pub async fn upload_local_file(&self, id: &str, path: &Path) -> Result<Image> {
        let image = self
            .store
            .get(id)
            .await?
            .ok_or_else(|| ImageError::no_image(id))?;
        if image.status == "active" {
            return Ok(image);
        }
        let ctx = operator(image.owner.as_deref().unwrap_or_default());
        self.upload_file_as(&ctx, id, path).await
    }

    async fn upload_file_as(&self, ctx: &AuthContext, id: &str, path: &Path) -> Result<Image> {
        let file = tokio::fs::File::open(path).await?;
        let data = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20));
        self.upload(ctx, id, data).await
    }
}
