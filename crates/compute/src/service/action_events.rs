//! The events of an instance action: the steps a request went through (Nova records e.g.
//! `compute__do_build_and_run_instance`), each with its host, start and finish times and
//! result. Workflows record them with [`ComputeService::record_event_start`] and
//! [`ComputeService::record_event_finish`]; `GET /servers/{id}/os-instance-actions/{req}`
//! shows them.
//!
//! Both calls are idempotent, because a workflow step may run again after a crash or be
//! retried: starting an event that is still open keeps its start, starting a finished one
//! again restarts it, and finishing one that was never started records it as started and
//! finished at once.

use ferrostack_db::sqlx::{self, Row};

use super::{now, ComputeService};
use crate::error::{ComputeError, Result};

/// How an event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome<'a> {
    Success,
    /// `traceback` is shown to admins only; `details` (2.84) is the short, operator-safe
    /// reason.
    Error {
        traceback: &'a str,
        details: Option<&'a str>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActionEvent {
    pub event: String,
    pub start_time: i64,
    pub finish_time: Option<i64>,
    /// `Success` or `Error` once finished.
    pub result: Option<String>,
    pub traceback: Option<String>,
    pub host: Option<String>,
    pub details: Option<String>,
}

impl ComputeService {
    /// The id of the action `request_id` started on `instance_uuid`.
    async fn action_id(&self, instance_uuid: &str, request_id: &str) -> Result<String> {
        sqlx::query(
            "SELECT id FROM compute_instance_actions WHERE instance_uuid = $1 AND request_id = $2 \
             ORDER BY start_time DESC LIMIT 1",
        )
        .bind(instance_uuid)
        .bind(request_id)
        .fetch_optional(self.db.pool())
        .await?
        .map(|r| r.get::<String, _>(0))
        .ok_or_else(|| {
            ComputeError::not_found(format!(
                "Action for request_id {request_id} on instance {instance_uuid} not found"
            ))
        })
    }

    /// Records that `event` of the action of `request_id` started on `host`.
    pub async fn record_event_start(
        &self,
        instance_uuid: &str,
        request_id: &str,
        event: &str,
        host: Option<&str>,
    ) -> Result<()> {
        let action = self.action_id(instance_uuid, request_id).await?;
        let t = now();
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "INSERT INTO compute_instance_action_events (action_id, event, start_time, host) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (action_id, event) DO UPDATE SET \
             start_time = excluded.start_time, host = excluded.host, finish_time = NULL, \
             result = NULL, traceback = NULL, details = NULL \
             WHERE compute_instance_action_events.finish_time IS NOT NULL",
        )
        .bind(&action)
        .bind(event)
        .bind(t)
        .bind(host)
        .execute(&mut *tx)
        .await?;
        touch_action(&mut tx, &action, t, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records how `event` ended. An error also marks the action's message `Error`, as
    /// Nova does, so the action list shows which requests failed.
    pub async fn record_event_finish(
        &self,
        instance_uuid: &str,
        request_id: &str,
        event: &str,
        outcome: EventOutcome<'_>,
    ) -> Result<()> {
        let action = self.action_id(instance_uuid, request_id).await?;
        let t = now();
        let (result, traceback, details) = match outcome {
            EventOutcome::Success => ("Success", None, None),
            EventOutcome::Error { traceback, details } => ("Error", Some(traceback), details),
        };
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "INSERT INTO compute_instance_action_events (action_id, event, start_time, finish_time, result, traceback, details) \
             VALUES ($1, $2, $3, $3, $4, $5, $6) ON CONFLICT (action_id, event) DO UPDATE SET \
             finish_time = excluded.finish_time, result = excluded.result, \
             traceback = excluded.traceback, details = excluded.details",
        )
        .bind(&action)
        .bind(event)
        .bind(t)
        .bind(result)
        .bind(traceback)
        .bind(details)
        .execute(&mut *tx)
        .await?;
        let message = (result == "Error").then_some("Error");
        touch_action(&mut tx, &action, t, message).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Finishes every event of the action of `request_id` that is still open with `Error`
    /// (a workflow that failed, gave up retrying or was cancelled while in them), and marks
    /// the action `Error` if there was one.
    pub async fn fail_open_events(
        &self,
        instance_uuid: &str,
        request_id: &str,
        traceback: &str,
        details: Option<&str>,
    ) -> Result<()> {
        let action = self.action_id(instance_uuid, request_id).await?;
        let t = now();
        let mut tx = self.db.begin_write().await?;
        let done = sqlx::query(
            "UPDATE compute_instance_action_events SET finish_time = $1, result = 'Error', \
             traceback = $2, details = $3 WHERE action_id = $4 AND finish_time IS NULL",
        )
        .bind(t)
        .bind(traceback)
        .bind(details)
        .bind(&action)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            touch_action(&mut tx, &action, t, Some("Error")).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The events of an action (by its id), newest first. The caller has already checked
    /// that it may see the action.
    pub async fn action_events(&self, action_id: &str) -> Result<Vec<ActionEvent>> {
        let rows = sqlx::query(
            "SELECT * FROM compute_instance_action_events WHERE action_id = $1 \
             ORDER BY start_time DESC, event DESC",
        )
        .bind(action_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| ActionEvent {
                event: r.get("event"),
                start_time: r.get("start_time"),
                finish_time: r.get("finish_time"),
                result: r.get("result"),
                traceback: r.get("traceback"),
                host: r.get("host"),
                details: r.get("details"),
            })
            .collect())
    }
}

/// Bumps the action's `updated_at` (2.58 shows it) and sets its message when given.
async fn touch_action(
    tx: &mut ferrostack_db::Tx<'_>,
    action: &str,
    t: i64,
    message: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "UPDATE compute_instance_actions SET updated_at = $1, message = COALESCE($2, message) WHERE id = $3",
    )
    .bind(t)
    .bind(message)
    .bind(action)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
