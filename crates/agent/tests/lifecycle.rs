//! Server operations beyond power actions, end to end through the Compute API with the fake
//! hypervisor: `createImage` (the snapshot becomes an active image in the Image service),
//! `rebuild` (a fresh disk from another image), shelve, resize (with its migration record)
//! and rescue, their failure paths, and a crash of the control plane at every step of each.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::Cloud;
use ferrostack_workflow::{CrashAction, CrashPoint, CrashWhen};
use serde_json::{json, Value};

async fn action(c: &Cloud, t: &str, id: &str, version: &str, body: Value) -> (StatusCode, Value) {
    let (st, body, headers) = c
        .call(
            "POST",
            &format!("/v2.1/servers/{id}/action"),
            t,
            version,
            Some(body),
        )
        .await;
    if let Some(loc) = headers.get("location") {
        return (st, json!({"location": loc.to_str().unwrap(), "body": body}));
    }
    (st, body)
}

/// Polls the Image service until the image is `want` (`deleted`: gone).
async fn wait_image(c: &Cloud, id: &str, want: &str) -> Option<ferrostack_image::model::Image> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let image = c.image.store.get(id).await.unwrap();
        match &image {
            None if want == "deleted" => return None,
            Some(i) if i.status == want => return image,
            _ => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "image {id} never became {want}: {image:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn create_image_snapshots_a_server_into_an_active_image() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let t = c.token("alice", "alpha").await;
        let id = c.boot(&t, "snap-me", "1").await;
        c.wait_status(&t, &id, "ACTIVE").await;

        // 2.1: 202 and the image's address in Location.
        let (st, got) = action(
            &c,
            &t,
            &id,
            "2.1",
            json!({"createImage": {"name": "₡-snap", "metadata": {"image_type": "test"}}}),
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{got}");
        let location = got["location"].as_str().unwrap();
        let image_id = location.rsplit('/').next().unwrap().to_string();
        let image = wait_image(&c, &image_id, "active").await.unwrap();
        assert_eq!(image.name.as_deref(), Some("₡-snap"));
        assert_eq!(image.owner, Some(c.project_id("alpha").await));
        assert_eq!(image.visibility, "private");
        assert_eq!(image.min_disk, 1, "the flavor's disk");
        assert!(image.size.unwrap() > 0);
        // The request's metadata wins over Nova's own image_type.
        assert_eq!(image.properties["image_type"], "test");
        assert_eq!(image.properties["instance_uuid"], json!(id));
        assert_eq!(image.properties["base_image_ref"], json!(c.image_id));
        let s = c.wait_status(&t, &id, "ACTIVE").await;
        assert!(s["OS-EXT-STS:task_state"].is_null());

        // 2.45: the id in the body; a stopped server can be snapshot too and stays stopped.
        action(&c, &t, &id, "2.1", json!({"os-stop": null})).await;
        c.wait_status(&t, &id, "SHUTOFF").await;
        let (st, got) = action(
            &c,
            &t,
            &id,
            "2.45",
            json!({"createImage": {"name": "stopped-snap"}}),
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{got}");
        let second = got["image_id"].as_str().unwrap().to_string();
        wait_image(&c, &second, "active").await;
        c.wait_status(&t, &id, "SHUTOFF").await;

        // The instance actions record both snapshots, finished without error.
        let (_, actions, _) = c
            .call(
                "GET",
                &format!("/v2.1/servers/{id}/os-instance-actions"),
                &t,
                "2.1",
                None,
            )
            .await;
        let snaps: Vec<&Value> = actions["instanceActions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["action"] == "createImage")
            .collect();
        assert_eq!(snaps.len(), 2, "{actions}");
        assert!(snaps.iter().all(|a| a["message"].is_null()), "{actions}");

        // Bad bodies and states: Nova's 400 and 409, and no image made.
        let before = c.image.store.visible(None).await.unwrap().len();
        for body in [
            json!({"createImage": {}}),
            json!({"createImage": {"name": " padded "}}),
            json!({"createImage": {"name": "x", "metadata": {"k": 1}}}),
            json!({"createImage": {"name": "x", "color": "red"}}),
        ] {
            let (st, got) = action(&c, &t, &id, "2.1", body.clone()).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {got}");
        }
        action(&c, &t, &id, "2.1", json!({"os-start": null})).await;
        c.wait_status(&t, &id, "ACTIVE").await;
        c.hosts[0].0.set_delay(Duration::from_millis(300));
        let (st, _) = action(&c, &t, &id, "2.1", json!({"pause": null})).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let (st, got) = action(&c, &t, &id, "2.1", json!({"createImage": {"name": "busy"}})).await;
        assert_eq!(st, StatusCode::CONFLICT, "{got}");
        c.hosts[0].0.set_delay(Duration::ZERO);
        c.wait_status(&t, &id, "PAUSED").await;
        assert_eq!(c.image.store.visible(None).await.unwrap().len(), before);

        // Another project's server does not exist for bob.
        let bob = c.token("bob", "beta").await;
        let (st, _) = action(&c, &bob, &id, "2.1", json!({"createImage": {"name": "x"}})).await;
        assert_eq!(st, StatusCode::NOT_FOUND);

        // The host fails the snapshot: the image is deleted, the server stays as it was.
        c.hosts[0].0.fail("snapshot", true);
        let (st, got) = action(
            &c,
            &t,
            &id,
            "2.45",
            json!({"createImage": {"name": "doomed"}}),
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{got}");
        let doomed = got["image_id"].as_str().unwrap().to_string();
        wait_image(&c, &doomed, "deleted").await;
        let s = c.wait_status(&t, &id, "PAUSED").await;
        assert!(s.get("fault").is_none(), "{s}");
        c.hosts[0].0.fail("snapshot", false);
    }
}

#[tokio::test]
async fn rebuild_gives_a_server_a_fresh_disk_from_another_image() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let t = c.token("alice", "alpha").await;
        let id = c.boot(&t, "old-name", "1").await;
        c.wait_status(&t, &id, "ACTIVE").await;
        let (_, got) = action(
            &c,
            &t,
            &id,
            "2.45",
            json!({"createImage": {"name": "golden"}}),
        )
        .await;
        let golden = got["image_id"].as_str().unwrap().to_string();
        wait_image(&c, &golden, "active").await;
        c.wait_status(&t, &id, "ACTIVE").await;

        let (st, got) = action(
            &c,
            &t,
            &id,
            "2.1",
            json!({"rebuild": {"imageRef": golden, "name": "new-name", "metadata": {"role": "web"}, "adminPass": "s3cret"}}),
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{got}");
        assert_eq!(got["server"]["name"], "new-name");
        assert_eq!(got["server"]["image"]["id"], json!(golden));
        assert_eq!(got["server"]["metadata"]["role"], "web");
        assert_eq!(got["server"]["adminPass"], "s3cret");
        let s = c.wait_status(&t, &id, "ACTIVE").await;
        assert_eq!(s["image"]["id"], json!(golden));
        let spec = c.hosts[0].0.spec_of(&id).unwrap();
        assert!(
            spec.root_disk.base_image.ends_with(&golden),
            "the VM runs on the new image: {spec:?}"
        );
        assert_eq!(c.allocations(&id).await, 3, "allocations are kept");

        // A stopped server is stopped again after its rebuild.
        action(&c, &t, &id, "2.1", json!({"os-stop": null})).await;
        c.wait_status(&t, &id, "SHUTOFF").await;
        let (st, got) = action(
            &c,
            &t,
            &id,
            "2.1",
            json!({"rebuild": {"imageRef": c.image_id}}),
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{got}");
        let s = c.wait_status(&t, &id, "SHUTOFF").await;
        assert_eq!(s["image"]["id"], json!(c.image_id));
        assert!(!c.hosts[0].0.status_is_running(&id).await);

        // Bad input changes nothing.
        for (version, body, want) in [
            ("2.1", json!({"rebuild": {}}), StatusCode::BAD_REQUEST),
            (
                "2.1",
                json!({"rebuild": {"imageRef": "no-such-image"}}),
                StatusCode::BAD_REQUEST,
            ),
            (
                "2.1",
                json!({"rebuild": {"imageRef": c.image_id, "key_name": "k"}}),
                StatusCode::BAD_REQUEST,
            ),
            (
                "2.54",
                json!({"rebuild": {"imageRef": c.image_id, "key_name": "missing"}}),
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let (st, got) = action(&c, &t, &id, version, body.clone()).await;
            assert_eq!(st, want, "{body}: {got}");
        }
        let s = c.wait_status(&t, &id, "SHUTOFF").await;
        assert_eq!(s["image"]["id"], json!(c.image_id));
        let (st, _) = action(
            &c,
            &t,
            &uuid::Uuid::new_v4().to_string(),
            "2.1",
            json!({"rebuild": {"imageRef": c.image_id}}),
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND);

        // The host cannot start the new disk: ERROR with a fault; a second rebuild mends it.
        c.hosts[0].0.fail("create", true);
        let (st, _) = action(
            &c,
            &t,
            &id,
            "2.1",
            json!({"rebuild": {"imageRef": c.image_id}}),
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let s = c.wait_status(&t, &id, "ERROR").await;
        assert!(
            s["fault"]["message"]
                .as_str()
                .unwrap()
                .contains("failed to start"),
            "{s}"
        );
        c.hosts[0].0.fail("create", false);
        let (st, _) = action(
            &c,
            &t,
            &id,
            "2.1",
            json!({"rebuild": {"imageRef": c.image_id}}),
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED);
        c.wait_status(&t, &id, "ACTIVE").await;
        assert!(c.hosts[0].0.status_is_running(&id).await);
    }
}

/// Kill (Halt) the control plane before and after every step of a snapshot, a rebuild, a
/// shelve, an unshelve and a resize: the restarted control plane finishes the operation with
/// exactly the VMs and allocations its outcome implies (and, for a snapshot, an active
/// image), and the action's events are each there once, finished with `Success`.
#[tokio::test]
async fn a_crash_at_any_step_of_an_operation_resumes() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let driver = c.hosts[0].0.clone();
        let dir = c.dir.clone();
        let t = c.token("alice", "alpha").await;
        let id = c.boot(&t, "crashy", "1").await;
        c.wait_status(&t, &id, "ACTIVE").await;
        let mut current = c;
        for (kind, steps) in [
            ("server_snapshot", 2),
            ("server_rebuild", 3),
            ("server_shelve", 4),
            ("server_unshelve", 3),
            ("server_resize", 3),
        ] {
            for step in 0..steps {
                for when in [CrashWhen::BeforeStep, CrashWhen::AfterStep] {
                    current.compute.engine.set_crash_point(Some(CrashPoint {
                        kind: kind.into(),
                        step,
                        when,
                        action: CrashAction::Halt,
                    }));
                    if kind == "server_unshelve" {
                        action(&current, &t, &id, "2.1", json!({"shelve": null})).await;
                        current.wait_status(&t, &id, "SHELVED_OFFLOADED").await;
                    }
                    let body = match kind {
                        "server_snapshot" => json!({"createImage": {"name": format!("s-{step}")}}),
                        "server_rebuild" => json!({"rebuild": {"imageRef": current.image_id}}),
                        "server_shelve" => json!({"shelve": null}),
                        "server_resize" => json!({"resize": {"flavorRef": "2"}}),
                        _ => json!({"unshelve": null}),
                    };
                    let (st, got) = action(&current, &t, &id, "2.45", body).await;
                    assert_eq!(st, StatusCode::ACCEPTED, "{kind} {step} {when:?}: {got}");
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                    while !current.compute.engine.is_dead() {
                        assert!(
                            tokio::time::Instant::now() < deadline,
                            "{kind} {step} {when:?}: never crashed"
                        );
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    current.close().await;
                    current = Cloud::open(&url, &dir, vec![driver.clone()], false).await;
                    if kind == "server_resize" {
                        current.wait_status(&t, &id, "VERIFY_RESIZE").await;
                        let project = current.project_id("alpha").await;
                        assert_eq!(memory_held(&current, &project).await, (2048, 256));
                        action(&current, &t, &id, "2.1", json!({"revertResize": null})).await;
                    }
                    if kind == "server_shelve" {
                        current.wait_status(&t, &id, "SHELVED_OFFLOADED").await;
                        assert_eq!(driver.count(), 0, "{kind} {step} {when:?}");
                        assert_eq!(current.allocations(&id).await, 0);
                        action(&current, &t, &id, "2.1", json!({"unshelve": null})).await;
                    }
                    current.wait_status(&t, &id, "ACTIVE").await;
                    if let Some(image) = got["image_id"].as_str() {
                        wait_image(&current, image, "active").await;
                    }
                    assert_eq!(driver.count(), 1, "{kind} {step} {when:?}");
                    assert!(
                        driver.status_is_running(&id).await,
                        "{kind} {step} {when:?}"
                    );
                    assert_eq!(current.allocations(&id).await, 3);
                    // The steps that ran again recorded their events once, all finished.
                    let (name, expected): (&str, &[&str]) = match kind {
                        "server_snapshot" => ("createImage", &["compute_snapshot_instance"]),
                        "server_rebuild" => ("rebuild", &["compute_rebuild_instance"]),
                        "server_shelve" => ("shelve", &["compute_shelve_instance"]),
                        "server_resize" => (
                            "resize",
                            &[
                                "compute_prep_resize",
                                "compute_resize_instance",
                                "compute_finish_resize",
                            ],
                        ),
                        _ => (
                            "unshelve",
                            &["schedule_instances", "compute_unshelve_instance"],
                        ),
                    };
                    let (_, events) = current.action_events(&id, name).await;
                    let names: Vec<&str> = events.iter().map(|e| e[0].as_str()).collect();
                    assert_eq!(names, expected, "{kind} {step} {when:?}");
                    assert!(
                        events.iter().all(|e| e[1] == "Success"),
                        "{kind} {step} {when:?}: {events:?}"
                    );
                    if kind == "server_resize" {
                        let list = migrations_of(&current, &id).await;
                        let last = list.last().unwrap();
                        assert_eq!(last["status"], "reverted", "{kind} {step} {when:?}");
                    }
                }
            }
        }
        // The last run records its end just after the server's state.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !current
            .compute
            .engine
            .unfinished()
            .await
            .unwrap()
            .is_empty()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "a workflow never ended"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test]
async fn shelve_offloads_a_server_and_unshelve_brings_it_back() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let t = c.token("alice", "alpha").await;
        let id = c.boot(&t, "sleeper", "1").await;
        c.wait_status(&t, &id, "ACTIVE").await;

        let (st, got) = action(&c, &t, &id, "2.1", json!({"shelve": null})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{got}");
        let s = c.wait_status(&t, &id, "SHELVED_OFFLOADED").await;
        assert_eq!(s["OS-EXT-STS:vm_state"], "shelved_offloaded");
        assert_eq!(c.vms(), 0, "the VM is gone from its host");
        assert_eq!(c.allocations(&id).await, 0, "the host's resources are free");
        let admin = c.token("admin", "admin").await;
        let (_, shown, _) = c
            .call("GET", &format!("/v2.1/servers/{id}"), &admin, "2.1", None)
            .await;
        assert!(shown["server"]["OS-EXT-SRV-ATTR:host"].is_null(), "{shown}");
        let shelved: Vec<_> = c
            .image
            .store
            .visible(None)
            .await
            .unwrap()
            .into_iter()
            .filter(|i| i.name.as_deref() == Some("sleeper-shelved"))
            .collect();
        assert_eq!(shelved.len(), 1);
        assert_eq!(shelved[0].status, "active");
        let shelved_id = shelved[0].id.clone();

        // Only unshelve (or delete) from here; shelveOffload has nothing left to do.
        let (st, _) = action(&c, &t, &id, "2.1", json!({"os-start": null})).await;
        assert_eq!(st, StatusCode::CONFLICT);
        let (st, _) = action(&c, &admin, &id, "2.1", json!({"shelveOffload": null})).await;
        assert_eq!(st, StatusCode::CONFLICT);
        let (st, _) = action(
            &c,
            &t,
            &id,
            "2.1",
            json!({"unshelve": {"availability_zone": "nova"}}),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "a zone needs 2.77");

        let (st, got) = action(&c, &t, &id, "2.1", json!({"unshelve": null})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{got}");
        c.wait_status(&t, &id, "ACTIVE").await;
        assert!(c.hosts[0].0.status_is_running(&id).await);
        assert_eq!(c.allocations(&id).await, 3);
        let spec = c.hosts[0].0.spec_of(&id).unwrap();
        assert!(spec.root_disk.base_image.ends_with(&shelved_id), "{spec:?}");
        wait_image(&c, &shelved_id, "deleted").await;

        // Deleting a shelved server deletes its shelved image too.
        action(&c, &t, &id, "2.1", json!({"shelve": null})).await;
        c.wait_status(&t, &id, "SHELVED_OFFLOADED").await;
        let second = c
            .image
            .store
            .visible(None)
            .await
            .unwrap()
            .into_iter()
            .find(|i| i.name.as_deref() == Some("sleeper-shelved"))
            .unwrap()
            .id;
        let (st, _, _) = c
            .call("DELETE", &format!("/v2.1/servers/{id}"), &t, "2.1", None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        c.wait_status(&t, &id, "DELETED").await;
        wait_image(&c, &second, "deleted").await;

        // A snapshot the host cannot take: the server is given back as it was.
        let id = c.boot(&t, "stubborn", "1").await;
        c.wait_status(&t, &id, "ACTIVE").await;
        c.hosts[0].0.fail("snapshot", true);
        action(&c, &t, &id, "2.1", json!({"shelve": null})).await;
        let s = c.wait_status(&t, &id, "ACTIVE").await;
        assert!(s.get("fault").is_none());
        assert!(c.hosts[0].0.status_is_running(&id).await, "started again");
        assert_eq!(c.allocations(&id).await, 3);
        c.hosts[0].0.fail("snapshot", false);
        assert!(c
            .image
            .store
            .visible(None)
            .await
            .unwrap()
            .iter()
            .all(|i| i.name.as_deref() != Some("stubborn-shelved")));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !c.compute.engine.unfinished().await.unwrap().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "a workflow never ended"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// MEMORY_MB a project holds in Placement, by consumer type (INSTANCE, MIGRATION).
async fn memory_held(c: &Cloud, project: &str) -> (i64, i64) {
    let usages = c
        .placement
        .project_usages(project, None, None)
        .await
        .unwrap();
    let of = |kind: &str| {
        usages
            .get(kind)
            .and_then(|(_, classes)| classes.get("MEMORY_MB").copied())
            .unwrap_or(0)
    };
    (of("INSTANCE"), of("MIGRATION"))
}

#[tokio::test]
async fn resize_then_confirm_or_revert() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let t = c.token("alice", "alpha").await;
        let project = c.project_id("alpha").await;
        let id = c.boot(&t, "grower", "1").await;
        c.wait_status(&t, &id, "ACTIVE").await;

        // Bad requests first: nothing changes.
        for (body, want) in [
            (
                json!({"resize": {"flavorRef": "1"}}),
                StatusCode::BAD_REQUEST,
            ),
            (json!({"resize": {}}), StatusCode::BAD_REQUEST),
            (
                json!({"resize": {"flavorRef": "nope"}}),
                StatusCode::BAD_REQUEST,
            ),
            (json!({"confirmResize": null}), StatusCode::BAD_REQUEST),
        ] {
            let (st, got) = action(&c, &t, &id, "2.1", body.clone()).await;
            assert_eq!(st, want, "{body}: {got}");
        }

        // tiny (256 MiB) -> small (2048 MiB): both held until the user decides.
        let (st, got) = action(&c, &t, &id, "2.1", json!({"resize": {"flavorRef": "2"}})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{got}");
        let s = c.wait_status(&t, &id, "VERIFY_RESIZE").await;
        assert_eq!(s["flavor"]["original_name"], "small", "{s}");
        assert_eq!(memory_held(&c, &project).await, (2048, 256));
        assert_eq!(c.hosts[0].0.spec_of(&id).unwrap().memory_mb, 2048);
        assert!(c.hosts[0].0.status_is_running(&id).await);
        let (st, _) = action(&c, &t, &id, "2.1", json!({"confirmResize": null})).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let s = c.wait_status(&t, &id, "ACTIVE").await;
        assert_eq!(s["flavor"]["original_name"], "small");
        assert_eq!(memory_held(&c, &project).await, (2048, 0));

        // A stopped server stays stopped; a revert gives the old size back.
        action(&c, &t, &id, "2.1", json!({"os-stop": null})).await;
        c.wait_status(&t, &id, "SHUTOFF").await;
        let (st, got) = action(&c, &t, &id, "2.1", json!({"resize": {"flavorRef": "3"}})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{got}");
        c.wait_status(&t, &id, "VERIFY_RESIZE").await;
        assert!(!c.hosts[0].0.status_is_running(&id).await);
        assert_eq!(memory_held(&c, &project).await, (4096, 2048));
        let (st, _) = action(&c, &t, &id, "2.1", json!({"revertResize": null})).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let s = c.wait_status(&t, &id, "SHUTOFF").await;
        assert_eq!(s["flavor"]["original_name"], "small");
        assert_eq!(memory_held(&c, &project).await, (2048, 0));
        assert_eq!(c.hosts[0].0.spec_of(&id).unwrap().memory_mb, 2048);

        // No room on the host: the server is given back as it was, nothing is held.
        action(&c, &t, &id, "2.1", json!({"os-start": null})).await;
        c.wait_status(&t, &id, "ACTIVE").await;
        let (st, _) = action(&c, &t, &id, "2.1", json!({"resize": {"flavorRef": "99"}})).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let s = c.wait_status(&t, &id, "ACTIVE").await;
            if s["flavor"]["original_name"] == "small" {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline);
        }
        assert_eq!(memory_held(&c, &project).await, (2048, 0));

        // Deleting a server waiting in VERIFY_RESIZE frees both sizes.
        action(&c, &t, &id, "2.1", json!({"resize": {"flavorRef": "3"}})).await;
        c.wait_status(&t, &id, "VERIFY_RESIZE").await;
        let (st, _, _) = c
            .call("DELETE", &format!("/v2.1/servers/{id}"), &t, "2.1", None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        c.wait_status(&t, &id, "DELETED").await;
        assert_eq!(memory_held(&c, &project).await, (0, 0));
        assert_eq!(c.vms(), 0);
    }
}

/// The server's resize migrations as an admin lists them at 2.80, oldest first.
async fn migrations_of(c: &Cloud, id: &str) -> Vec<Value> {
    let admin = c.token("admin", "admin").await;
    let (st, body, _) = c
        .call(
            "GET",
            &format!("/v2.1/os-migrations?instance_uuid={id}"),
            &admin,
            "2.80",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let mut list = body["migrations"].as_array().unwrap().clone();
    list.reverse();
    list
}

#[tokio::test]
async fn a_resize_is_a_migration_record() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let t = c.token("alice", "alpha").await;
        let id = c.boot(&t, "grower", "1").await;
        c.wait_status(&t, &id, "ACTIVE").await;
        let alpha = c.project_id("alpha").await;

        // Resize and confirm: pre-migrating … finished while it waits, then confirmed.
        action(&c, &t, &id, "2.1", json!({"resize": {"flavorRef": "2"}})).await;
        c.wait_status(&t, &id, "VERIFY_RESIZE").await;
        let list = migrations_of(&c, &id).await;
        assert_eq!(list.len(), 1, "{list:?}");
        let m = &list[0];
        assert_eq!(m["migration_type"], "resize");
        assert_eq!(m["status"], "finished");
        assert_eq!(
            (m["source_compute"].as_str(), m["dest_compute"].as_str()),
            (Some("host0"), Some("host0"))
        );
        assert_eq!(
            (
                m["old_instance_type_id"].as_i64(),
                m["new_instance_type_id"].as_i64()
            ),
            (Some(1), Some(2))
        );
        assert_eq!(m["project_id"], alpha.as_str());
        assert!(m["uuid"].is_string() && m["updated_at"].is_string(), "{m}");
        action(&c, &t, &id, "2.1", json!({"confirmResize": null})).await;
        c.wait_status(&t, &id, "ACTIVE").await;
        assert_eq!(migrations_of(&c, &id).await[0]["status"], "confirmed");

        // Resize and revert: a second record, reverted.
        action(&c, &t, &id, "2.1", json!({"resize": {"flavorRef": "3"}})).await;
        c.wait_status(&t, &id, "VERIFY_RESIZE").await;
        action(&c, &t, &id, "2.1", json!({"revertResize": null})).await;
        c.wait_status(&t, &id, "ACTIVE").await;
        let list = migrations_of(&c, &id).await;
        let statuses: Vec<&str> = list.iter().map(|m| m["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["confirmed", "reverted"]);
        assert_eq!(list[1]["new_instance_type_id"], 3);

        // A resize the host refuses: the record ends in error, the server as it was.
        c.hosts[0].0.fail("resize", true);
        let (st, body) = action(&c, &t, &id, "2.1", json!({"resize": {"flavorRef": "3"}})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{body}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while migrations_of(&c, &id).await.len() < 3
            || migrations_of(&c, &id).await[2]["status"] != "error"
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?}",
                migrations_of(&c, &id).await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c.hosts[0].0.fail("resize", false);
        c.wait_status(&t, &id, "ACTIVE").await;
        let (a, events) = c.action_events(&id, "resize").await;
        assert_eq!(a["message"], "Error");
        let results: Vec<[&str; 2]> = events.iter().map(|e| [&*e[0], &*e[1]]).collect();
        assert_eq!(
            results,
            [
                ["compute_prep_resize", "Success"],
                ["compute_resize_instance", "Error"]
            ]
        );

        // Deleting a server that waits in VERIFY_RESIZE confirms its resize.
        let (st, body) = action(&c, &t, &id, "2.1", json!({"resize": {"flavorRef": "3"}})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{body}");
        c.wait_status(&t, &id, "VERIFY_RESIZE").await;
        let (st, _, _) = c
            .call("DELETE", &format!("/v2.1/servers/{id}"), &t, "2.1", None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        c.wait_status(&t, &id, "DELETED").await;
        let list = migrations_of(&c, &id).await;
        assert_eq!(list.len(), 4);
        assert_eq!(list[3]["status"], "confirmed");
        // Filters: by status and type; a project member may not list migrations.
        let admin = c.token("admin", "admin").await;
        let (_, body, _) = c
            .call(
                "GET",
                "/v2.1/os-migrations?status=reverted&migration_type=resize",
                &admin,
                "2.80",
                None,
            )
            .await;
        assert_eq!(body["migrations"].as_array().unwrap().len(), 1, "{body}");
        let (st, _, _) = c.call("GET", "/v2.1/os-migrations", &t, "2.80", None).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn rescue_boots_a_rescue_image_and_unrescue_returns() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let t = c.token("alice", "alpha").await;
        let id = c.boot(&t, "broken-fs", "1").await;
        c.wait_status(&t, &id, "ACTIVE").await;
        let (st, got) = action(
            &c,
            &t,
            &id,
            "2.1",
            json!({"rescue": {"adminPass": "fix-me"}}),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{got}");
        assert_eq!(got["adminPass"], "fix-me");
        let s = c.wait_status(&t, &id, "RESCUE").await;
        assert_eq!(s["OS-EXT-STS:vm_state"], "rescued");
        let disk = c.hosts[0].0.rescue_disk_of(&id).unwrap();
        assert!(disk.base_image.ends_with(&c.image_id), "{disk:?}");
        // Only unrescue (or stop, pause, delete) from here.
        let (st, _) = action(
            &c,
            &t,
            &id,
            "2.1",
            json!({"rebuild": {"imageRef": c.image_id}}),
        )
        .await;
        assert_eq!(st, StatusCode::CONFLICT);
        let (st, _) = action(&c, &t, &id, "2.1", json!({"rescue": null})).await;
        assert_eq!(st, StatusCode::CONFLICT);
        let (st, _) = action(&c, &t, &id, "2.1", json!({"unrescue": null})).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        c.wait_status(&t, &id, "ACTIVE").await;
        assert!(c.hosts[0].0.rescue_disk_of(&id).is_none());
        assert!(c.hosts[0].0.status_is_running(&id).await);

        // A rescue image that is not there: 400 and nothing changes.
        let (st, _) = action(
            &c,
            &t,
            &id,
            "2.1",
            json!({"rescue": {"rescue_image_ref": "missing"}}),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        // The host fails the rescue: the server stays on its own disk.
        c.hosts[0].0.fail("rescue", true);
        let (st, _) = action(&c, &t, &id, "2.1", json!({"rescue": null})).await;
        assert_eq!(st, StatusCode::OK);
        c.wait_status(&t, &id, "ACTIVE").await;
        assert!(c.hosts[0].0.rescue_disk_of(&id).is_none());
        c.hosts[0].0.fail("rescue", false);
    }
}
