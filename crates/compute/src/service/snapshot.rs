//! `createImage`: a server's root disk saved as a new image. As in Nova, the request makes
//! the image record at once (queued, with the caller's rights, so the Image service's
//! policy and quota apply to the caller) and answers with its id; the `server_snapshot`
//! workflow then has the host take a standalone copy of the disk and upload it, and returns
//! the server to the state it was in. A failure (or a delete of the server meanwhile) deletes
//! the unfinished image and leaves the server as it was.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use ferrostack_common::AuthContext;
use ferrostack_workflow::{BoxFut, Handler, Run, StepError};
use serde_json::{json, Map, Value};

use super::workflows::{agent_error, agent_of, fail, load, retry, service};
use super::ComputeService;
use crate::error::{ComputeError, Result};
use crate::model::Instance;
use crate::states::{task, vm, Action};

pub const SNAPSHOT: &str = "server_snapshot";

/// Image properties a snapshot does not inherit from the server's image (Nova's
/// `non_inheritable_image_properties` and the ones it sets itself).
const NOT_INHERITED: &[&str] = &[
    "cache_in_nova",
    "bittorrent",
    "img_signature",
    "img_signature_hash_method",
    "img_signature_key_type",
    "img_signature_certificate_uuid",
    "image_type",
    "instance_uuid",
    "user_id",
    "base_image_ref",
    "image_location",
    "owner_project_name",
    "owner_user_name",
];

/// A validated `createImage` body.
#[derive(Debug, Clone)]
pub struct SnapshotRequest {
    pub name: String,
    pub metadata: BTreeMap<String, String>,
}

impl ComputeService {
    /// Starts a snapshot of `uuid` into a new image; returns the image's id.
    pub async fn create_image(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        req: SnapshotRequest,
        request_id: &str,
    ) -> Result<String> {
        let inst = self
            .get_server(ctx, uuid, "os_compute_api:servers:create_image")
            .await?;
        self.check_state(&inst, Action::Snapshot)?;
        let body = self.snapshot_image_body(ctx, &inst, &req).await;
        let image = self.image.create(ctx, &body).await.map_err(image_refusal)?;
        let started = async {
            let mut tx = self.db.begin_write().await?;
            let data = json!({"image_id": image.id, "from_vm_state": inst.vm_state});
            let run = self
                .begin_task(
                    &mut tx,
                    ctx,
                    &inst,
                    Action::Snapshot,
                    SNAPSHOT,
                    data,
                    request_id,
                )
                .await?;
            tx.commit().await?;
            Ok::<_, ComputeError>(run)
        }
        .await;
        match started {
            Ok(run) => {
                self.engine.kick(&run);
                Ok(image.id)
            }
            Err(e) => {
                let _ = self.image.discard(&image.id).await;
                Err(e)
            }
        }
    }

    /// The new image's record: the source image's formats, minimums and properties, Nova's
    /// snapshot properties, then the request's metadata (which wins).
    pub(super) async fn snapshot_image_body(
        &self,
        ctx: &AuthContext,
        inst: &Instance,
        req: &SnapshotRequest,
    ) -> Value {
        let source = self.image.store.get(&inst.image_ref).await.ok().flatten();
        let mut body = Map::new();
        body.insert("name".into(), json!(req.name));
        // The host writes a qcow2 whatever the source was.
        body.insert("disk_format".into(), json!("qcow2"));
        body.insert(
            "container_format".into(),
            json!(source
                .as_ref()
                .and_then(|s| s.container_format.clone())
                .unwrap_or_else(|| "bare".into())),
        );
        body.insert("visibility".into(), json!("private"));
        let (min_ram, min_disk) = source
            .as_ref()
            .map(|s| (s.min_ram, s.min_disk))
            .unwrap_or((0, 0));
        body.insert("min_ram".into(), json!(min_ram));
        body.insert("min_disk".into(), json!(min_disk.max(inst.flavor.disk)));
        if let Some(source) = &source {
            for (k, v) in &source.properties {
                if !NOT_INHERITED.contains(&k.as_str()) {
                    body.insert(k.clone(), v.clone());
                }
            }
        }
        for (k, v) in [
            ("image_type", "snapshot"),
            ("instance_uuid", inst.uuid.as_str()),
            ("user_id", ctx.user_id.as_str()),
            ("base_image_ref", inst.image_ref.as_str()),
        ] {
            body.insert(k.into(), json!(v));
        }
        for (k, v) in &req.metadata {
            body.insert(k.clone(), json!(v));
        }
        Value::Object(body)
    }
}

/// The Image service's refusal of the new record, in Nova's terms.
pub(super) fn image_refusal(e: ferrostack_image::error::ImageError) -> ComputeError {
    use ferrostack_image::error::ImageError as E;
    match e {
        E::Forbidden(m) => ComputeError::forbidden(m),
        E::TooLarge(m) => ComputeError::forbidden(format!("Quota exceeded: {m}")),
        E::BadRequest(m) | E::Conflict(m) | E::NotFound(m) => ComputeError::bad(m),
        other => ComputeError::internal(other),
    }
}

pub fn register(service: &Arc<ComputeService>) {
    let handler = Snapshot(Arc::downgrade(service));
    service
        .engine
        .register(super::workflow_events::recorded(service, handler));
}

struct Snapshot(Weak<ComputeService>);

fn image_id(run: &Run) -> Result<String, StepError> {
    run.data
        .get("image_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| fail("The snapshot lost its image.", "run data has no image_id"))
}

fn from_vm_state(run: &Run) -> &'static str {
    run.data
        .get("from_vm_state")
        .and_then(Value::as_str)
        .and_then(crate::states::vm_state_named)
        .unwrap_or(vm::ACTIVE)
}

impl Handler for Snapshot {
    fn kind(&self) -> &'static str {
        SNAPSHOT
    }
    fn steps(&self) -> &'static [&'static str] {
        &["snapshot_and_upload", "finish"]
    }
    fn run_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        Box::pin(async move {
            let s = service(&self.0)?;
            let inst = load(&s, &run.subject).await?;
            let image = image_id(run)?;
            let from = from_vm_state(run);
            match step {
                0 => {
                    s.set_state(
                        &inst.uuid,
                        Some(task::IMAGE_SNAPSHOT),
                        from,
                        Some(task::IMAGE_UPLOADING),
                        None,
                    )
                    .await
                    .map_err(retry)?;
                    agent_of(&s, &inst)
                        .await?
                        .snapshot(&inst.uuid, &image)
                        .await
                        .map_err(agent_error("snapshot"))
                }
                _ => {
                    for expected in [task::IMAGE_UPLOADING, task::IMAGE_SNAPSHOT] {
                        if s.set_state(&inst.uuid, Some(expected), from, None, None)
                            .await
                            .map_err(retry)?
                        {
                            break;
                        }
                    }
                    Ok(())
                }
            }
        })
    }
    fn undo_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        Box::pin(async move {
            if step == 0 {
                let s = service(&self.0)?;
                s.image.discard(&image_id(run)?).await.map_err(retry)?;
            }
            Ok(())
        })
    }
    fn on_done<'a>(&'a self, run: &'a Run) -> BoxFut<'a, ()> {
        Box::pin(async move {
            if let Some(s) = self.0.upgrade() {
                let _ = s.finish_action(&run.subject, "createImage", None).await;
            }
        })
    }
    fn on_failed<'a>(&'a self, run: &'a Run, public_error: &'a str) -> BoxFut<'a, ()> {
        Box::pin(async move {
            let Some(s) = self.0.upgrade() else { return };
            // The server goes back to where it was; a failed snapshot does not break it.
            let from = from_vm_state(run);
            for expected in [task::IMAGE_UPLOADING, task::IMAGE_SNAPSHOT] {
                if let Ok(true) = s
                    .set_state(&run.subject, Some(expected), from, None, None)
                    .await
                {
                    break;
                }
            }
            let _ = s
                .finish_action(&run.subject, "createImage", Some(public_error))
                .await;
        })
    }
}
