//! Tasks: Glance's records of asynchronous work on images. Every accepted import creates one
//! (`api_image_import`, `processing`), which the import ends as `success` or `failure`;
//! `GET /v2/images/{id}/tasks` shows an image's tasks to whoever may see the image, and the
//! tasks API (`/v2/tasks`) shows all of them to administrators, as Glance's defaults allow.
//! Creating tasks through `POST /v2/tasks` (Glance's deprecated URL import) is refused:
//! fetching a URL chosen by a client is a server-side request forgery risk; the
//! interoperable import (stage, then `glance-direct`) is the way in.

use std::convert::Infallible;

use ferrostack_common::time::now_micros;
use ferrostack_common::AuthContext;
use serde_json::{json, Value};

use crate::error::{ImageError, Result};
use crate::model::Task;
use crate::service::ImageService;

/// How long a finished task is kept visible (Glance: `task_time_to_live`, 48 hours).
const TASK_TIME_TO_LIVE_MICROS: i64 = 48 * 3600 * 1_000_000;

/// The only store (`/v2/info/stores`), named in an import task's input.
const STORE: &str = "local";

impl ImageService {
    /// Records an accepted import of `image_id` (`import_req` is the request body).
    pub(crate) async fn begin_import_task(
        &self,
        ctx: &AuthContext,
        image_id: &str,
        owner: Option<&str>,
        import_req: &Value,
        request_id: Option<&str>,
    ) -> Result<Task> {
        let now = now_micros();
        let task = Task {
            id: uuid::Uuid::new_v4().to_string(),
            kind: "api_image_import".into(),
            status: "processing".into(),
            owner: owner.map(str::to_string),
            image_id: Some(image_id.into()),
            request_id: request_id.map(str::to_string),
            user_id: Some(ctx.user_id.clone()),
            input: json!({"image_id": image_id, "import_req": import_req, "backend": [STORE]}),
            result: None,
            message: String::new(),
            created_at: now,
            updated_at: now,
            expires_at: None,
        };
        self.store.insert_task(&task).await?;
        Ok(task)
    }

    /// Ends the image's `processing` task; from then on it expires in 48 hours.
    pub(crate) async fn end_import_task(&self, image_id: &str, failure: Option<&str>) {
        let now = now_micros();
        let (status, message) = match failure {
            None => ("success", ""),
            Some(m) => ("failure", m),
        };
        if let Err(e) = self
            .store
            .end_image_task(
                image_id,
                status,
                message,
                now,
                now + TASK_TIME_TO_LIVE_MICROS,
            )
            .await
        {
            tracing::warn!(image = %image_id, error = %e, "could not record the end of the import task");
        }
    }

    /// After a crash: the tasks of imports that will not resume (the image is no longer
    /// `importing`) are ended as what their image shows.
    pub(crate) async fn settle_interrupted_tasks(&self) -> Result<()> {
        for task in self.store.processing_tasks().await? {
            let Some(image_id) = task.image_id.as_deref() else {
                continue;
            };
            match self.store.get(image_id).await?.map(|i| i.status) {
                Some(s) if s == "importing" => {}
                Some(s) if s == "active" => self.end_import_task(image_id, None).await,
                _ => {
                    self.end_import_task(image_id, Some("The import was interrupted."))
                        .await
                }
            }
        }
        Ok(())
    }

    /// `GET /v2/images/{id}/tasks` (Image API 2.12).
    pub async fn image_tasks(&self, ctx: &AuthContext, image_id: &str) -> Result<Vec<Task>> {
        let image = self.visible_image(ctx, image_id).await?;
        self.authorize(ctx, "get_image", &image).await?;
        let now = now_micros();
        let mut tasks = self.store.image_tasks(image_id).await?;
        tasks.retain(|t| t.expires_at.is_none_or(|e| e > now));
        Ok(tasks)
    }

    fn authorize_tasks(&self, ctx: &AuthContext, rule: &str) -> Result<()> {
        let creds = ctx.policy_credentials();
        if self.policy.enforce("tasks_api_access", &creds, &json!({}))
            && self.policy.enforce(rule, &creds, &json!({}))
        {
            Ok(())
        } else {
            Err(ImageError::Forbidden(format!(
                "You are not authorized to complete {rule} action."
            )))
        }
    }

    /// `GET /v2/tasks`: unexpired tasks, newest first, filtered by `type` and `status`.
    pub async fn list_tasks(
        &self,
        ctx: &AuthContext,
        kind: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<Task>> {
        self.authorize_tasks(ctx, "get_tasks")?;
        if let Some(s) = status {
            if !["pending", "processing", "success", "failure"].contains(&s) {
                return Err(ImageError::bad(format!("Invalid status value: {s}")));
            }
        }
        let now = now_micros();
        let mut tasks = self.store.tasks().await?;
        tasks.retain(|t| {
            t.expires_at.is_none_or(|e| e > now)
                && kind.is_none_or(|k| t.kind == k)
                && status.is_none_or(|s| t.status == s)
        });
        Ok(tasks)
    }

    /// `GET /v2/tasks/{id}`.
    pub async fn get_task(&self, ctx: &AuthContext, id: &str) -> Result<Task> {
        self.authorize_tasks(ctx, "get_task")?;
        self.store.task(id).await?.ok_or_else(|| {
            ImageError::NotFound(format!("Task with the given ID {id} was not found"))
        })
    }

    /// `POST /v2/tasks`: Glance's URL import. Always refused here (see the module note),
    /// after the same policy check Glance makes, so non-administrators get 403 as there.
    pub async fn create_task(&self, ctx: &AuthContext, body: &Value) -> Result<Infallible> {
        self.authorize_tasks(ctx, "add_task")?;
        let kind = body.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "import" {
            return Err(ImageError::bad(format!(
                "Invalid type value: {kind}. Only import tasks exist."
            )));
        }
        Err(ImageError::bad(
            "Import tasks from a URL are disabled here (fetching client-chosen URLs is a server-side request forgery risk). Stage the data (PUT /v2/images/{id}/stage) and import it with the glance-direct method instead.",
        ))
    }
}
