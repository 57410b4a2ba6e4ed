//! The instance action events every server workflow records under Nova's names, as
//! `GET /servers/{id}/os-instance-actions/{request_id}` shows them: one server through boot,
//! the power actions, createImage, rebuild, resize with confirm and revert, rescue, shelve
//! and unshelve, and delete; then the failures (no valid host, a host that refuses), whose
//! events end in `Error` with the public message as `details` and the host's words in the
//! traceback, both for admins only.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::Cloud;
use serde_json::{json, Value};

async fn act(c: &Cloud, t: &str, id: &str, body: Value) {
    let (st, got, _) = c
        .call(
            "POST",
            &format!("/v2.1/servers/{id}/action"),
            t,
            "2.1",
            Some(body.clone()),
        )
        .await;
    assert!(st.is_success(), "{body}: {st} {got}");
}

/// The events of the newest `action`, as (event, result, host) with `host0` where the
/// compute host recorded it.
async fn events(c: &Cloud, id: &str, action: &str) -> Vec<(String, String, String)> {
    let (a, list) = c.action_events(id, action).await;
    assert!(a["message"].is_null(), "{a}");
    list.into_iter()
        .map(|[event, result, host, details, _]| {
            assert!(details.is_empty(), "{event}: {details}");
            (event, result, host)
        })
        .collect()
}

fn ok(event: &str) -> (String, String, String) {
    (event.into(), "Success".into(), "host0".into())
}

/// Waits for the image a createImage made to be active.
async fn wait_image(c: &Cloud, id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while c.image.store.get(id).await.unwrap().map(|i| i.status) != Some("active".into()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "image {id} never active"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_workflow_records_novas_events() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let t = c.token("alice", "alpha").await;
        let id = c.boot(&t, "busy", "1").await;
        c.wait_status(&t, &id, "ACTIVE").await;
        assert_eq!(
            events(&c, &id, "create").await,
            vec![ok("compute__do_build_and_run_instance")]
        );

        for (body, status, action, event) in [
            (
                json!({"os-stop": null}),
                "SHUTOFF",
                "stop",
                "compute_stop_instance",
            ),
            (
                json!({"os-start": null}),
                "ACTIVE",
                "start",
                "compute_start_instance",
            ),
            (
                json!({"reboot": {"type": "SOFT"}}),
                "ACTIVE",
                "reboot",
                "compute_reboot_instance",
            ),
            (
                json!({"pause": null}),
                "PAUSED",
                "pause",
                "compute_pause_instance",
            ),
            (
                json!({"unpause": null}),
                "ACTIVE",
                "unpause",
                "compute_unpause_instance",
            ),
            (
                json!({"suspend": null}),
                "SUSPENDED",
                "suspend",
                "compute_suspend_instance",
            ),
            (
                json!({"resume": null}),
                "ACTIVE",
                "resume",
                "compute_resume_instance",
            ),
            (
                json!({"rebuild": {"imageRef": c.image_id}}),
                "ACTIVE",
                "rebuild",
                "compute_rebuild_instance",
            ),
            (
                json!({"rescue": null}),
                "RESCUE",
                "rescue",
                "compute_rescue_instance",
            ),
            (
                json!({"unrescue": null}),
                "ACTIVE",
                "unrescue",
                "compute_unrescue_instance",
            ),
            (
                json!({"confirmResize": null}),
                "ACTIVE",
                "confirmResize",
                "compute_confirm_resize",
            ),
        ] {
            if action == "confirmResize" {
                act(&c, &t, &id, json!({"resize": {"flavorRef": "2"}})).await;
                c.wait_status(&t, &id, "VERIFY_RESIZE").await;
                assert_eq!(
                    events(&c, &id, "resize").await,
                    vec![
                        ok("compute_prep_resize"),
                        ok("compute_resize_instance"),
                        ok("compute_finish_resize"),
                    ]
                );
            }
            act(&c, &t, &id, body).await;
            c.wait_status(&t, &id, status).await;
            assert_eq!(events(&c, &id, action).await, vec![ok(event)], "{action}");
        }

        act(&c, &t, &id, json!({"resize": {"flavorRef": "3"}})).await;
        c.wait_status(&t, &id, "VERIFY_RESIZE").await;
        act(&c, &t, &id, json!({"revertResize": null})).await;
        c.wait_status(&t, &id, "ACTIVE").await;
        assert_eq!(
            events(&c, &id, "revertResize").await,
            vec![
                ok("compute_revert_resize"),
                ok("compute_finish_revert_resize")
            ]
        );

        let (st, got, headers) = c
            .call(
                "POST",
                &format!("/v2.1/servers/{id}/action"),
                &t,
                "2.45",
                Some(json!({"createImage": {"name": "snap"}})),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{got} {headers:?}");
        wait_image(&c, got["image_id"].as_str().unwrap()).await;
        c.wait_status(&t, &id, "ACTIVE").await;
        assert_eq!(
            events(&c, &id, "createImage").await,
            vec![ok("compute_snapshot_instance")]
        );

        act(&c, &t, &id, json!({"shelve": null})).await;
        c.wait_status(&t, &id, "SHELVED_OFFLOADED").await;
        assert_eq!(
            events(&c, &id, "shelve").await,
            vec![ok("compute_shelve_instance")]
        );
        act(&c, &t, &id, json!({"unshelve": null})).await;
        c.wait_status(&t, &id, "ACTIVE").await;
        // Scheduling is the control plane's, not a host's.
        assert_eq!(
            events(&c, &id, "unshelve").await,
            vec![
                ("schedule_instances".into(), "Success".into(), String::new()),
                ok("compute_unshelve_instance"),
            ]
        );

        let (st, _, _) = c
            .call("DELETE", &format!("/v2.1/servers/{id}"), &t, "2.1", None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        c.wait_status(&t, &id, "DELETED").await;
        assert_eq!(
            events(&c, &id, "delete").await,
            vec![ok("compute_terminate_instance")]
        );
    }
}

#[tokio::test]
async fn failed_workflows_record_error_events() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let t = c.token("alice", "alpha").await;

        // No host is big enough: Nova's conductor event, in Error.
        let id = c.boot(&t, "huge", "99").await;
        c.wait_status(&t, &id, "ERROR").await;
        let (a, list) = c.action_events(&id, "create").await;
        assert_eq!(a["message"], "Error", "{a}");
        let [event, result, host, details, traceback] = &list[0];
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(
            (event.as_str(), result.as_str(), host.as_str()),
            ("conductor_schedule_and_build_instances", "Error", "")
        );
        assert_eq!(
            details,
            "No valid host was found. There are not enough hosts available."
        );
        assert!(!traceback.is_empty());

        // The host refuses to start the VM: the build event fails; the user-safe message
        // is its details, the host's own words only the admins' traceback.
        c.hosts[0].0.fail("create", true);
        let id = c.boot(&t, "broken", "1").await;
        c.wait_status(&t, &id, "ERROR").await;
        c.hosts[0].0.fail("create", false);
        let (a, list) = c.action_events(&id, "create").await;
        assert_eq!(a["message"], "Error", "{a}");
        assert_eq!(list.len(), 1, "{list:?}");
        let [event, result, host, details, traceback] = &list[0];
        assert_eq!(
            (event.as_str(), result.as_str(), host.as_str()),
            ("compute__do_build_and_run_instance", "Error", "host0")
        );
        assert_eq!(details, "The compute host failed to start the server.");
        assert!(traceback.contains("fake create failure"), "{traceback}");
        // The project sees the event, not its host, traceback or details (2.84 shows those
        // to admins by default, as in Nova).
        let path = format!(
            "/v2.1/servers/{id}/os-instance-actions/{}",
            a["request_id"].as_str().unwrap()
        );
        let (_, shown, _) = c.call("GET", &path, &t, "2.84", None).await;
        let e = &shown["instanceAction"]["events"][0];
        assert_eq!(e["result"], "Error", "{e}");
        for hidden in ["details", "traceback", "host"] {
            assert!(e.get(hidden).is_none(), "{e}");
        }

        // A power action the host refuses: the server stays as it was, the event fails.
        let id = c.boot(&t, "stubborn", "1").await;
        c.wait_status(&t, &id, "ACTIVE").await;
        c.hosts[0].0.fail("power_off", true);
        act(&c, &t, &id, json!({"os-stop": null})).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let list = loop {
            let (a, list) = c.action_events_now(&id, "stop").await;
            if a["message"] == "Error" && list.iter().all(|e| !e[1].is_empty()) {
                break list;
            }
            assert!(tokio::time::Instant::now() < deadline, "{a}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        c.hosts[0].0.fail("power_off", false);
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(
            (list[0][0].as_str(), list[0][1].as_str()),
            ("compute_stop_instance", "Error")
        );
        c.wait_status(&t, &id, "ACTIVE").await;
    }
}
