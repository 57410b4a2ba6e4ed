//! Image data: streamed upload and download, and recovery after a crash.
//!
//! An upload moves the image `queued → saving` (compare-and-swap, so two uploads cannot race),
//! streams the body to a temp file in the store directory while hashing it (MD5 for
//! `checksum`, SHA-512 for `os_hash_value`) on a blocking thread, keeps only the first
//! megabyte in memory for the format inspector, then fsyncs and renames the file to the
//! image id and marks the image `active`. Any failure (a cut connection, a refused format, a
//! size over the cap) deletes the temp file and puts the image back to `queued`, so no half
//! image is ever active. After a crash, [`ImageService::recover`] does the same for uploads
//! that were in flight.

use std::io::Write;
use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};
use ferrostack_common::time::now_micros;
use ferrostack_common::AuthContext;
use futures_util::StreamExt;
use md5::Digest;

use crate::error::{ImageError, Result};
use crate::inspector::{self, HEADER_BYTES};
use crate::model::Image;
use crate::service::ImageService;

/// What the writer thread learned about the bytes it stored.
struct Received {
    size: u64,
    md5: String,
    sha512: String,
    head: Vec<u8>,
}

const TMP_PREFIX: &str = ".tmp-";

impl ImageService {
    pub fn data_path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Puts uploads interrupted by a crash back to `queued` and removes their temp files.
    pub async fn recover(&self) -> Result<()> {
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        for id in self.store.saving().await? {
            self.store
                .transition(&id, "saving", "queued", now_micros())
                .await?;
            tracing::warn!(image = %id, "upload interrupted by a restart; image is queued again");
        }
        Ok(())
    }

    pub async fn remove_data(&self, id: &str) {
        let path = self.data_path(id);
        if let Err(e) = tokio::fs::remove_file(&path).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(image = %id, error = %e, "could not remove image data");
            }
        }
    }

    /// `PUT /v2/images/{id}/file`.
    pub async fn upload(&self, ctx: &AuthContext, id: &str, body: Body) -> Result<Image> {
        let image = self.visible_image(ctx, id).await?;
        self.authorize(ctx, "upload_image", &image).await?;
        let (Some(disk_format), Some(_)) =
            (image.disk_format.clone(), image.container_format.clone())
        else {
            return Err(ImageError::bad(
                "Properties disk_format, container_format must be set prior to saving data.",
            ));
        };
        if !self
            .store
            .transition(id, "queued", "saving", now_micros())
            .await?
        {
            return Err(ImageError::Conflict(format!(
                "Image status transition from {} to saving is not allowed",
                image.status
            )));
        }
        let tmp = self.dir.join(format!(
            "{TMP_PREFIX}{id}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let allowance = match self
            .upload_allowance(image.owner.as_deref().unwrap_or_default())
            .await
        {
            Ok(a) => a,
            Err(e) => {
                self.store
                    .transition(id, "saving", "queued", now_micros())
                    .await?;
                return Err(e);
            }
        };
        match self.receive(body, &tmp, &disk_format, allowance).await {
            Ok((received, virtual_size)) => {
                let target = self.data_path(id);
                tokio::fs::rename(&tmp, &target).await?;
                let mut done = image.clone();
                done.size = Some(received.size as i64);
                done.virtual_size = virtual_size.map(|v| v as i64);
                done.checksum = Some(received.md5);
                done.os_hash_algo = Some("sha512".into());
                done.os_hash_value = Some(received.sha512);
                if !self.store.activate(&done, now_micros()).await? {
                    // Deleted while uploading: drop the data that no record points to.
                    self.remove_data(id).await;
                    return Err(ImageError::Conflict(format!(
                        "Image {id} was deleted during the upload."
                    )));
                }
                done.status = "active".into();
                Ok(done)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                self.store
                    .transition(id, "saving", "queued", now_micros())
                    .await?;
                Err(e)
            }
        }
    }

    /// Streams `body` into `tmp` and inspects it; the facts when the data is acceptable.
    async fn receive(
        &self,
        body: Body,
        tmp: &Path,
        disk_format: &str,
        allowance: u64,
    ) -> Result<(Received, Option<u64>)> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        let path = tmp.to_path_buf();
        // Hashing and writing are CPU and disk work: they run on a blocking thread while the
        // async side keeps reading the next chunks from the network.
        let writer = tokio::task::spawn_blocking(move || -> std::io::Result<Received> {
            let mut file =
                std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
            let (mut md5, mut sha512) = (md5::Md5::new(), sha2::Sha512::new());
            let mut head = Vec::new();
            let mut size = 0u64;
            while let Some(chunk) = rx.blocking_recv() {
                md5.update(&chunk);
                sha512.update(&chunk);
                if head.len() < HEADER_BYTES {
                    let take = (HEADER_BYTES - head.len()).min(chunk.len());
                    head.extend_from_slice(&chunk[..take]);
                }
                file.write_all(&chunk)?;
                size += chunk.len() as u64;
            }
            let file = file.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            Ok(Received {
                size,
                md5: hex::encode(md5.finalize()),
                sha512: hex::encode(sha512.finalize()),
                head,
            })
        });
        let mut stream = body.into_data_stream();
        let mut total = 0u64;
        let mut failure = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => {
                    total += chunk.len() as u64;
                    if total > allowance {
                        failure = Some(ImageError::TooLarge(format!(
                            "Image exceeds the storage quota: at most {allowance} more bytes may be stored (image_size_cap {}, or the project's image_size_total limit).",
                            self.config.image_size_cap
                        )));
                        break;
                    }
                    if tx.send(chunk).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    failure = Some(ImageError::bad(format!("The upload was interrupted: {e}")));
                    break;
                }
            }
        }
        drop(tx);
        let received = writer.await.map_err(|e| ImageError::Internal(e.into()))??;
        if let Some(f) = failure {
            return Err(f);
        }
        let inspection = inspector::check(disk_format, &received.head, received.size)
            .map_err(|refusal| ImageError::bad(format!("Image data refused: {refusal}")))?;
        Ok((received, inspection.virtual_size))
    }

    /// `GET /v2/images/{id}/file`: the image and its open data file, or `None` when it has no
    /// data yet (Glance answers 204).
    pub async fn open_data(
        &self,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<Option<(Image, tokio::fs::File)>> {
        let image = self.visible_image(ctx, id).await?;
        self.authorize(ctx, "download_image", &image).await?;
        match image.status.as_str() {
            "active" => {}
            "deactivated" if !self.is_admin(ctx) => {
                return Err(ImageError::Forbidden(
                    "The requested image has been deactivated. Image data download is forbidden."
                        .into(),
                ))
            }
            "deactivated" => {}
            _ => return Ok(None),
        }
        let file = tokio::fs::File::open(self.data_path(id))
            .await
            .map_err(|e| {
                tracing::error!(image = %id, error = %e, "active image has no data file");
                ImageError::NotFound(format!("Image {id} has no data."))
            })?;
        Ok(Some((image, file)))
    }
}
