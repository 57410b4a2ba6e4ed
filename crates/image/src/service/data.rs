//! Image data: streamed upload and download, interoperable import (stage, then
//! `glance-direct`), and recovery after a crash.
//!
//! An upload moves the image `queued → saving` (compare-and-swap, so two uploads cannot race),
//! streams the body to a temp file in the store directory while hashing it (the multihash
//! for `os_hash_value`, SHA-512 unless configured otherwise, and MD5 for the legacy
//! `checksum` unless turned off) on blocking threads, keeps only the first
//! megabyte in memory for the format inspector, then fsyncs and renames the file to the
//! image id and marks the image `active`. Any failure (a cut connection, a refused format, a
//! size over the quota) deletes the temp file and puts the image back to `queued`, so no half
//! image is ever active. An import stages the data first (`queued → uploading`, no checks
//! yet), then `POST /import` runs the same inspection and placement in the background
//! (`uploading → importing → active`). After a crash, [`ImageService::recover`] requeues
//! interrupted uploads and [`ImageService::resume_imports`] finishes interrupted imports.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use ferrostack_common::time::now_micros;
use ferrostack_common::AuthContext;
use futures_util::StreamExt;
use md5::Digest;

use crate::config::{HashingAlgorithm, ImageConfig};
use crate::error::{ImageError, Result};
use crate::inspector::{self, HEADER_BYTES};
use crate::model::Image;
use crate::service::ImageService;

/// What was learned about stored bytes while writing or re-reading them.
struct Received {
    size: u64,
    /// The legacy `checksum`, when the operator keeps it (`md5_checksum`).
    md5: Option<String>,
    /// `os_hash_algo` and `os_hash_value`.
    hash_algo: &'static str,
    hash_value: String,
    head: Vec<u8>,
}

/// How many bytes move between the threads of an upload or a download at a time. hyper hands
/// an upload over in pieces of 8 to 400 KiB; gathering them into blocks this large makes the
/// hand-offs between threads (each a possible wake-up) rare, about a thousand per GiB.
const BLOCK: usize = 1 << 20;

/// Blocks queued between two threads. With the block being filled and the ones being hashed
/// and written, an upload holds about a dozen blocks in memory whatever the image size.
const QUEUED_BLOCKS: usize = 4;

/// One running hash over image data, of the algorithms an image may carry.
pub(crate) enum Hasher {
    Md5(md5::Md5),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub(crate) fn multihash(algo: HashingAlgorithm) -> Hasher {
        match algo {
            HashingAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashingAlgorithm::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            HashingAlgorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub(crate) fn hex(self) -> String {
        match self {
            Hasher::Md5(h) => hex::encode(h.finalize()),
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha384(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// A hash computed on a thread of its own from shared blocks (cloning `Bytes` shares the
/// buffer, so the thread reads the same memory the writer writes from).
struct HashThread {
    blocks: std::sync::mpsc::SyncSender<Bytes>,
    done: std::thread::JoinHandle<String>,
}

impl HashThread {
    fn spawn(mut hasher: Hasher) -> HashThread {
        let (blocks, rx) = std::sync::mpsc::sync_channel::<Bytes>(QUEUED_BLOCKS);
        let done = std::thread::spawn(move || {
            for block in rx {
                hasher.update(&block);
            }
            hasher.hex()
        });
        HashThread { blocks, done }
    }

    fn finish(self) -> std::io::Result<String> {
        drop(self.blocks);
        self.done
            .join()
            .map_err(|_| std::io::Error::other("a hashing thread failed"))
    }
}

/// The multihash: on the caller's (the writer's) thread when MD5 already has a thread and
/// so a core of its own, else on a thread of its own so that hashing and writing overlap.
enum Multihash {
    Inline(Hasher),
    Thread(HashThread),
}

/// Hashes blocks and keeps the first megabyte for the inspector. Neither hash can be split
/// across cores (each block depends on the state the one before left), so each gets at most
/// one thread; with two hashes and two cores, the writer's thread takes one of them rather
/// than a third thread adding wake-ups.
struct Digests {
    md5: Option<HashThread>,
    multihash: Multihash,
    hash_algo: &'static str,
    head: Vec<u8>,
    size: u64,
}

impl Digests {
    fn new(config: &ImageConfig) -> Digests {
        let algo = config.hashing_algorithm;
        let md5 = config
            .md5_checksum
            .then(|| HashThread::spawn(Hasher::Md5(md5::Md5::new())));
        let multihash = if md5.is_some() {
            Multihash::Inline(Hasher::multihash(algo))
        } else {
            Multihash::Thread(HashThread::spawn(Hasher::multihash(algo)))
        };
        Digests {
            md5,
            multihash,
            hash_algo: algo.name(),
            head: Vec::new(),
            size: 0,
        }
    }

    fn update(&mut self, block: &Bytes) {
        // A send fails only when the thread died; `finish` reports that.
        if let Some(md5) = &self.md5 {
            let _ = md5.blocks.send(block.clone());
        }
        match &mut self.multihash {
            Multihash::Inline(h) => h.update(block),
            Multihash::Thread(t) => {
                let _ = t.blocks.send(block.clone());
            }
        }
        if self.head.len() < HEADER_BYTES {
            let take = (HEADER_BYTES - self.head.len()).min(block.len());
            self.head.extend_from_slice(&block[..take]);
        }
        self.size += block.len() as u64;
    }

    fn finish(self) -> std::io::Result<Received> {
        let hash_value = match self.multihash {
            Multihash::Inline(h) => h.hex(),
            Multihash::Thread(t) => t.finish()?,
        };
        Ok(Received {
            size: self.size,
            md5: self.md5.map(HashThread::finish).transpose()?,
            hash_algo: self.hash_algo,
            hash_value,
            head: self.head,
        })
    }
}

/// A downloaded image's body: one blocking thread reads the file in [`BLOCK`]s (a few queued
/// ahead) while hyper sends, instead of a hop to the blocking pool for every small read.
pub fn file_body(file: std::fs::File) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(QUEUED_BLOCKS);
    tokio::task::spawn_blocking(move || {
        let mut file = file;
        loop {
            let mut block = Vec::with_capacity(BLOCK);
            let read = (&mut file).take(BLOCK as u64).read_to_end(&mut block);
            let last = !matches!(read, Ok(n) if n == BLOCK);
            let item = read.map(|_| Bytes::from(block));
            let empty = matches!(&item, Ok(b) if b.is_empty());
            if (!empty && tx.blocking_send(item).is_err()) || last {
                // The client went away, the file ended, or a read failed (sent as the
                // stream's error, which cuts the response).
                return;
            }
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

const TMP_PREFIX: &str = ".tmp-";

impl ImageService {
    pub fn data_path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn staging_path(&self, id: &str) -> PathBuf {
        self.dir.join("staging").join(id)
    }

    /// Requeues uploads and stages interrupted by a crash and removes their temp files; imports
    /// whose staged data survived are finished by [`ImageService::resume_imports`].
    pub async fn recover(&self) -> Result<()> {
        std::fs::create_dir_all(self.dir.join("staging"))?;
        for dir in [self.dir.clone(), self.dir.join("staging")] {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        for id in self.store.in_status("saving").await? {
            self.store
                .transition(&id, "saving", "queued", now_micros())
                .await?;
            tracing::warn!(image = %id, "upload interrupted by a restart; image is queued again");
        }
        for id in self.store.in_status("uploading").await? {
            if !self.staging_path(&id).exists() {
                self.store
                    .transition(&id, "uploading", "queued", now_micros())
                    .await?;
                tracing::warn!(image = %id, "stage interrupted by a restart; image is queued again");
            }
        }
        self.settle_interrupted_tasks().await
    }

    /// Finishes the imports a crash interrupted (their staged data is still there).
    pub async fn resume_imports(self: &Arc<Self>) -> Result<()> {
        for id in self.store.in_status("importing").await? {
            tracing::warn!(image = %id, "resuming an import interrupted by a restart");
            self.spawn_import(id);
        }
        Ok(())
    }

    pub async fn remove_data(&self, id: &str) {
        for path in [self.data_path(id), self.staging_path(id)] {
            if let Err(e) = tokio::fs::remove_file(&path).await {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(image = %id, error = %e, "could not remove image data");
                }
            }
        }
    }

    /// Checks formats are set and moves the image `from → to`; the quota allowance in bytes.
    async fn begin_transfer(&self, image: &Image, from: &str, to: &str) -> Result<u64> {
        if image.disk_format.is_none() || image.container_format.is_none() {
            return Err(ImageError::bad(
                "Properties disk_format, container_format must be set prior to saving data.",
            ));
        }
        if !self
            .store
            .transition(&image.id, from, to, now_micros())
            .await?
        {
            return Err(ImageError::Conflict(format!(
                "Image status transition from {} to {to} is not allowed",
                image.status
            )));
        }
        match self
            .upload_allowance(image.owner.as_deref().unwrap_or_default())
            .await
        {
            Ok(a) => Ok(a),
            Err(e) => {
                self.store
                    .transition(&image.id, to, from, now_micros())
                    .await?;
                Err(e)
            }
        }
    }

    /// `PUT /v2/images/{id}/file`.
    pub async fn upload(&self, ctx: &AuthContext, id: &str, body: Body) -> Result<Image> {
        let image = self.visible_image(ctx, id).await?;
        self.authorize(ctx, "upload_image", &image).await?;
        let allowance = self.begin_transfer(&image, "queued", "saving").await?;
        let tmp = self.dir.join(format!(
            "{TMP_PREFIX}{id}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let outcome = async {
            let received = self.receive(body, &tmp, allowance).await?;
            self.place(&image, &tmp, received, "saving").await
        }
        .await;
        if outcome.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
            self.store
                .transition(id, "saving", "queued", now_micros())
                .await?;
        }
        outcome
    }

    /// Inspects the bytes at `file`, moves them into the store and activates the image
    /// (if it is still in `from`: an image deleted meanwhile leaves no data behind).
    async fn place(
        &self,
        image: &Image,
        file: &Path,
        received: Received,
        from: &str,
    ) -> Result<Image> {
        let disk_format = image.disk_format.clone().unwrap_or_default();
        let inspection = inspector::check(&disk_format, &received.head, received.size)
            .map_err(|refusal| ImageError::bad(format!("Image data refused: {refusal}")))?;
        tokio::fs::rename(file, self.data_path(&image.id)).await?;
        let mut done = image.clone();
        done.size = Some(received.size as i64);
        done.virtual_size = inspection.virtual_size.map(|v| v as i64);
        done.checksum = received.md5;
        done.os_hash_algo = Some(received.hash_algo.into());
        done.os_hash_value = Some(received.hash_value);
        if !self.store.activate(&done, from, now_micros()).await? {
            self.remove_data(&image.id).await;
            return Err(ImageError::Conflict(format!(
                "Image {} was deleted during the upload.",
                image.id
            )));
        }
        done.status = "active".into();
        Ok(done)
    }

    /// Streams `body` into `tmp` (fsynced): the async side gathers the network's pieces into
    /// [`BLOCK`]s and cuts off with 413 past `allowance` bytes; a blocking thread writes each
    /// block and hashes it (see [`Digests`]).
    async fn receive(&self, body: Body, tmp: &Path, allowance: u64) -> Result<Received> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(QUEUED_BLOCKS);
        let path = tmp.to_path_buf();
        let mut digests = Digests::new(&self.config);
        let writer = tokio::task::spawn_blocking(move || -> std::io::Result<Received> {
            let mut file = std::fs::File::create(&path)?;
            while let Some(block) = rx.blocking_recv() {
                file.write_all(&block)?;
                digests.update(&block);
            }
            file.sync_all()?;
            digests.finish()
        });
        let mut stream = body.into_data_stream();
        let mut total = 0u64;
        let mut failure = None;
        let mut block = Vec::with_capacity(BLOCK);
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
                    let full = if block.is_empty() && chunk.len() >= BLOCK {
                        chunk
                    } else {
                        block.extend_from_slice(&chunk);
                        if block.len() < BLOCK {
                            continue;
                        }
                        Bytes::from(std::mem::replace(&mut block, Vec::with_capacity(BLOCK)))
                    };
                    if tx.send(full).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    failure = Some(ImageError::bad(format!("The upload was interrupted: {e}")));
                    break;
                }
            }
        }
        if failure.is_none() && !block.is_empty() {
            let _ = tx.send(Bytes::from(block)).await;
        }
        drop(tx);
        let received = writer.await.map_err(|e| ImageError::Internal(e.into()))??;
        match failure {
            Some(f) => Err(f),
            None => Ok(received),
        }
    }

    /// `PUT /v2/images/{id}/stage`: data for a later import, not yet inspected.
    pub async fn stage(&self, ctx: &AuthContext, id: &str, body: Body) -> Result<()> {
        let image = self.visible_image(ctx, id).await?;
        self.authorize(ctx, "upload_image", &image).await?;
        if image.status != "queued" {
            return Err(ImageError::Conflict(format!(
                "Image {id} is {}; only queued images can be staged.",
                image.status
            )));
        }
        // Staging needs no formats yet: they are checked at import.
        if !self
            .store
            .transition(id, "queued", "uploading", now_micros())
            .await?
        {
            return Err(ImageError::Conflict(format!(
                "Image status transition from {} to uploading is not allowed",
                image.status
            )));
        }
        let allowance = match self
            .upload_allowance(image.owner.as_deref().unwrap_or_default())
            .await
        {
            Ok(a) => a,
            Err(e) => {
                self.store
                    .transition(id, "uploading", "queued", now_micros())
                    .await?;
                return Err(e);
            }
        };
        let tmp = self.dir.join("staging").join(format!("{TMP_PREFIX}{id}"));
        match self.receive(body, &tmp, allowance).await {
            Ok(_) => Ok(tokio::fs::rename(&tmp, self.staging_path(id)).await?),
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                self.store
                    .transition(id, "uploading", "queued", now_micros())
                    .await?;
                Err(e)
            }
        }
    }

    /// `POST /v2/images/{id}/import` with `glance-direct`: accepted at once (202), finished in
    /// the background, and recorded as a task (`import_req` is the request's body, shown in
    /// the task's input with the request's id).
    pub async fn import(
        self: &Arc<Self>,
        ctx: &AuthContext,
        id: &str,
        import_req: &serde_json::Value,
        request_id: Option<&str>,
    ) -> Result<()> {
        let method = import_req
            .pointer("/method/name")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| {
                ImageError::bad("Expecting {\"method\": {\"name\": \"glance-direct\"}}.")
            })?;
        if method != "glance-direct" {
            return Err(ImageError::bad(format!(
                "Import method {method} is not supported; use glance-direct."
            )));
        }
        let image = self.visible_image(ctx, id).await?;
        self.authorize(ctx, "upload_image", &image).await?;
        if image.status != "uploading" || !self.staging_path(id).exists() {
            return Err(ImageError::Conflict(format!(
                "Image {id} has no staged data (status {}).",
                image.status
            )));
        }
        if image.disk_format.is_none() || image.container_format.is_none() {
            return Err(ImageError::bad(
                "Properties disk_format, container_format must be set prior to importing data.",
            ));
        }
        if !self
            .store
            .transition(id, "uploading", "importing", now_micros())
            .await?
        {
            return Err(ImageError::Conflict(format!(
                "Image {id} is already being imported."
            )));
        }
        if let Err(e) = self
            .begin_import_task(ctx, id, image.owner.as_deref(), import_req, request_id)
            .await
        {
            self.store
                .transition(id, "importing", "uploading", now_micros())
                .await?;
            return Err(e);
        }
        self.spawn_import(id.to_string());
        Ok(())
    }

    fn spawn_import(self: &Arc<Self>, id: String) {
        let service = self.clone();
        tokio::spawn(async move {
            match service.finish_import(&id).await {
                Ok(()) => service.end_import_task(&id, None).await,
                Err(e) => {
                    tracing::warn!(image = %id, error = %e, "import failed; image is queued again");
                    let _ = tokio::fs::remove_file(service.staging_path(&id)).await;
                    let _ = service
                        .store
                        .transition(&id, "importing", "queued", now_micros())
                        .await;
                    // The task's message is shown to users: no internal detail in it.
                    let message = match &e {
                        ImageError::Internal(_) => "The import failed on the server.".to_string(),
                        other => other.to_string(),
                    };
                    service.end_import_task(&id, Some(&message)).await;
                }
            }
        });
    }

    async fn finish_import(&self, id: &str) -> Result<()> {
        let image = self
            .store
            .get(id)
            .await?
            .ok_or_else(|| ImageError::no_image(id))?;
        let staged = self.staging_path(id);
        let path = staged.clone();
        let mut digests = Digests::new(&self.config);
        let received = tokio::task::spawn_blocking(move || -> std::io::Result<Received> {
            let mut file = std::fs::File::open(path)?;
            loop {
                let mut block = Vec::with_capacity(BLOCK);
                if (&mut file).take(BLOCK as u64).read_to_end(&mut block)? == 0 {
                    break;
                }
                digests.update(&Bytes::from(block));
            }
            digests.finish()
        })
        .await
        .map_err(|e| ImageError::Internal(e.into()))??;
        self.place(&image, &staged, received, "importing")
            .await
            .map(drop)
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
