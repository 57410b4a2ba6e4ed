//! The instance action events of the server workflows, under Nova's names, so that
//! `GET /servers/{id}/os-instance-actions/{request_id}` lists what a request went through as
//! Nova's would (e.g. a boot shows `compute__do_build_and_run_instance`, a resize
//! `compute_prep_resize`, `compute_resize_instance` and `compute_finish_resize`).
//!
//! [`recorded`] wraps a workflow's handler: an event covers a run of its steps; the first of
//! them records the start (with the server's host for the compute host's events), the last
//! records `Success` after it succeeded, and a step that fails for good finishes the event
//! it is in with `Error` (the step's detail as the admins' traceback, its public message as
//! the 2.84 `details`). A run that gives up retrying or is cancelled finishes what it left
//! open in its failure hook. Some events exist only when something failed, as Nova's
//! `conductor_schedule_and_build_instances` of a boot that found no host. Steps run again
//! after a crash or retried record nothing twice (see [`super::action_events`]).
//!
//! The run carries the request id of its action (`request_id` in its data); runs started
//! before it did record no events.

use std::sync::{Arc, Weak};

use ferrostack_workflow::{BoxFut, Handler, Run, StepError};
use serde_json::Value;

use super::action_events::EventOutcome;
use super::ComputeService;

/// Some of a workflow's steps that make up one of Nova's events.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub event: &'static str,
    pub first: &'static str,
    pub last: &'static str,
    pub when: When,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    /// Recorded on the server's host, start and finish.
    OnHost,
    /// Recorded by the control plane, start and finish, without a host.
    Control,
    /// Recorded only when one of its steps fails for good.
    OnFailure,
}

const fn span(event: &'static str, first: &'static str, last: &'static str) -> Span {
    Span {
        event,
        first,
        last,
        when: When::OnHost,
    }
}

/// The events of a run of workflow `kind`, by the names of its steps.
pub fn events_of(kind: &str, data: &Value) -> Vec<Span> {
    use super::{interfaces, rebuild, rescue, resize, shelve, snapshot, workflows};
    let one = |event| vec![span(event, "", "")];
    match kind {
        workflows::BOOT => vec![
            Span {
                event: "conductor_schedule_and_build_instances",
                first: "schedule",
                last: "schedule",
                when: When::OnFailure,
            },
            span("compute__do_build_and_run_instance", "network", "activate"),
        ],
        workflows::DELETE => vec![span(
            "compute_terminate_instance",
            "destroy",
            "mark_deleted",
        )],
        workflows::ACTION => {
            let event = match data.get("action").and_then(Value::as_str) {
                Some("Start") => "compute_start_instance",
                Some("Stop") => "compute_stop_instance",
                Some("RebootSoft" | "RebootHard") => "compute_reboot_instance",
                Some("Pause") => "compute_pause_instance",
                Some("Unpause") => "compute_unpause_instance",
                Some("Suspend") => "compute_suspend_instance",
                Some("Resume") => "compute_resume_instance",
                _ => return Vec::new(),
            };
            one(event)
        }
        snapshot::SNAPSHOT => one("compute_snapshot_instance"),
        rebuild::REBUILD => one("compute_rebuild_instance"),
        resize::RESIZE => vec![
            span("compute_prep_resize", "claim", "claim"),
            span("compute_resize_instance", "resize", "resize"),
            span("compute_finish_resize", "finish", "finish"),
        ],
        resize::CONFIRM => one("compute_confirm_resize"),
        resize::REVERT => vec![
            span("compute_revert_resize", "host", "host"),
            span("compute_finish_revert_resize", "allocations", "finish"),
        ],
        // Nova offloads within the shelve when `shelved_offload_time` is 0, as here, and
        // records no event of its own for it.
        shelve::SHELVE => one("compute_shelve_instance"),
        shelve::UNSHELVE => vec![
            Span {
                event: "schedule_instances",
                first: "schedule",
                last: "schedule",
                when: When::Control,
            },
            span("compute_unshelve_instance", "spawn", "finish"),
        ],
        rescue::RESCUE => one("compute_rescue_instance"),
        rescue::UNRESCUE => one("compute_unrescue_instance"),
        interfaces::ATTACH => one("compute_attach_interface"),
        interfaces::DETACH => one("compute_detach_interface"),
        _ => Vec::new(),
    }
}

/// Where the span sits in `steps`: an empty `first`/`last` stands for the first/last step.
fn bounds(span: &Span, steps: &[&str]) -> Option<(usize, usize)> {
    let at = |name: &str, default: usize| {
        if name.is_empty() {
            Some(default)
        } else {
            steps.iter().position(|s| *s == name)
        }
    };
    let first = at(span.first, 0)?;
    let last = at(span.last, steps.len().checked_sub(1)?)?;
    (first <= last).then_some((first, last))
}

/// `handler` with its events recorded.
pub fn recorded(service: &Arc<ComputeService>, handler: impl Handler) -> Arc<dyn Handler> {
    for span in events_of(handler.kind(), &Value::Null) {
        if bounds(&span, handler.steps()).is_none() {
            tracing::error!(
                kind = handler.kind(),
                event = span.event,
                "event names no steps of its workflow; it is never recorded"
            );
        }
    }
    Arc::new(Recorded {
        service: Arc::downgrade(service),
        inner: handler,
    })
}

struct Recorded<H> {
    service: Weak<ComputeService>,
    inner: H,
}

fn request_id(run: &Run) -> Option<String> {
    run.data
        .get("request_id")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// A recording error as a step error: the action is gone (nothing to record on) or the
/// database is not answering (the step is tried again).
fn recording(e: crate::error::ComputeError) -> Result<(), StepError> {
    if e.status.as_u16() == 404 {
        Ok(())
    } else {
        Err(StepError::Retry(format!(
            "recording an action event: {}",
            e.internal.unwrap_or(e.message)
        )))
    }
}

impl<H: Handler> Recorded<H> {
    /// The spans of `run`, with their step bounds.
    fn spans(&self, run: &Run) -> Vec<(Span, usize, usize)> {
        events_of(self.inner.kind(), &run.data)
            .into_iter()
            .filter_map(|s| bounds(&s, self.inner.steps()).map(|(a, b)| (s, a, b)))
            .collect()
    }

    async fn start(
        &self,
        s: &ComputeService,
        run: &Run,
        rid: &str,
        span: &Span,
    ) -> Result<(), StepError> {
        let host = match span.when {
            When::OnHost => s
                .instance(&run.subject)
                .await
                .map_err(|e| StepError::Retry(e.to_string()))?
                .and_then(|i| i.host),
            _ => None,
        };
        match s
            .record_event_start(&run.subject, rid, span.event, host.as_deref())
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => recording(e),
        }
    }
}

impl<H: Handler> Handler for Recorded<H> {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn steps(&self) -> &'static [&'static str] {
        self.inner.steps()
    }
    fn max_retries(&self) -> u32 {
        self.inner.max_retries()
    }
    fn run_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        Box::pin(async move {
            let (Some(s), Some(rid)) = (self.service.upgrade(), request_id(run)) else {
                return self.inner.run_step(step, run).await;
            };
            let spans = self.spans(run);
            for (span, first, _) in &spans {
                if *first == step && span.when != When::OnFailure {
                    self.start(&s, run, &rid, span).await?;
                }
            }
            let outcome = self.inner.run_step(step, run).await;
            for (span, first, last) in &spans {
                let inside = (*first..=*last).contains(&step);
                match &outcome {
                    Ok(()) if *last == step && span.when != When::OnFailure => {
                        if let Err(e) = s
                            .record_event_finish(
                                &run.subject,
                                &rid,
                                span.event,
                                EventOutcome::Success,
                            )
                            .await
                        {
                            recording(e)?;
                        }
                    }
                    Err(StepError::Fail { public, detail }) if inside => {
                        // The step's own error is returned whatever happens here; a lost
                        // write leaves the event to the failure hook.
                        if span.when == When::OnFailure {
                            let _ = self.start(&s, run, &rid, span).await;
                        }
                        let outcome = EventOutcome::Error {
                            traceback: detail,
                            details: Some(public),
                        };
                        if let Err(e) = s
                            .record_event_finish(&run.subject, &rid, span.event, outcome)
                            .await
                        {
                            tracing::warn!(run = %run.id, event = span.event, error = %e, "could not record a failed event");
                        }
                    }
                    _ => {}
                }
            }
            outcome
        })
    }
    fn undo_step<'a>(&'a self, step: usize, run: &'a mut Run) -> BoxFut<'a, Result<(), StepError>> {
        self.inner.undo_step(step, run)
    }
    fn on_done<'a>(&'a self, run: &'a Run) -> BoxFut<'a, ()> {
        self.inner.on_done(run)
    }
    fn on_failed<'a>(&'a self, run: &'a Run, public_error: &'a str) -> BoxFut<'a, ()> {
        Box::pin(async move {
            if let (Some(s), Some(rid)) = (self.service.upgrade(), request_id(run)) {
                // The operators' detail of what went wrong, as the traceback admins see.
                let detail = match s.engine.get(&run.id).await {
                    Ok(Some(rec)) => rec.last_error,
                    _ => None,
                };
                let traceback = detail.as_deref().unwrap_or(public_error);
                if let Err(e) = s
                    .fail_open_events(&run.subject, &rid, traceback, Some(public_error))
                    .await
                {
                    tracing::warn!(run = %run.id, error = %e, "could not finish the run's open events");
                }
            }
            self.inner.on_failed(run, public_error).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_find_their_steps() {
        let steps = ["schedule", "spawn", "activate"];
        let all = |event| span(event, "", "");
        assert_eq!(bounds(&all("x"), &steps), Some((0, 2)));
        assert_eq!(
            bounds(&span("x", "spawn", "activate"), &steps),
            Some((1, 2))
        );
        assert_eq!(bounds(&span("x", "activate", "spawn"), &steps), None);
        assert_eq!(bounds(&span("x", "nope", "spawn"), &steps), None);
        assert_eq!(bounds(&all("x"), &[]), None);
    }

    #[test]
    fn power_actions_have_nova_event_names() {
        let of = |a: &str| {
            events_of(
                super::super::workflows::ACTION,
                &serde_json::json!({"action": a}),
            )
        };
        assert_eq!(of("Stop")[0].event, "compute_stop_instance");
        assert_eq!(of("RebootHard")[0].event, "compute_reboot_instance");
        assert!(of("Other").is_empty());
    }
}
