//! Servers end to end through the Compute API, with the fake hypervisor: the life cycle,
//! Nova's errors, scheduling across hosts, and the workflows' crash and failure paths (no
//! allocation, VM or unfinished workflow left behind).

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::Cloud;
use ferrostack_workflow::{CrashAction, CrashPoint, CrashWhen};
use serde_json::json;

#[tokio::test]
async fn life_cycle_of_a_server() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let t = c.token("alice", "alpha").await;
        let id = c.boot(&t, "web-1", "1").await;
        let s = c.wait_status(&t, &id, "ACTIVE").await;
        assert_eq!(s["OS-EXT-STS:power_state"], 1);
        assert_eq!(s["OS-EXT-STS:vm_state"], "active");
        assert_eq!(s["flavor"]["original_name"], "tiny");
        assert!(s["hostId"].as_str().unwrap().len() == 56, "{s}");
        assert!(
            s.get("OS-EXT-SRV-ATTR:host").is_none(),
            "admin-only field shown to a member"
        );
        assert_eq!(
            c.allocations(&id).await,
            3,
            "VCPU, MEMORY_MB and DISK_GB claimed"
        );
        assert_eq!(c.vms(), 1);

        for (action, status) in [
            (json!({"os-stop": null}), "SHUTOFF"),
            (json!({"os-start": null}), "ACTIVE"),
            (json!({"reboot": {"type": "HARD"}}), "ACTIVE"),
            (json!({"pause": null}), "PAUSED"),
            (json!({"unpause": null}), "ACTIVE"),
            (json!({"suspend": null}), "SUSPENDED"),
            (json!({"resume": null}), "ACTIVE"),
        ] {
            let (st, body, _) = c
                .call(
                    "POST",
                    &format!("/v2.1/servers/{id}/action"),
                    &t,
                    "2.1",
                    Some(action.clone()),
                )
                .await;
            assert_eq!(st, StatusCode::ACCEPTED, "{action}: {body}");
            c.wait_status(&t, &id, status).await;
        }
        // A state the action cannot start from: Nova's 409.
        let (st, body, _) = c
            .call(
                "POST",
                &format!("/v2.1/servers/{id}/action"),
                &t,
                "2.1",
                Some(json!({"os-start": null})),
            )
            .await;
        assert_eq!(st, StatusCode::CONFLICT);
        assert!(
            body["conflictingRequest"]["message"]
                .as_str()
                .unwrap()
                .contains("vm_state active"),
            "{body}"
        );

        let (st, body, _) = c
            .call(
                "POST",
                &format!("/v2.1/servers/{id}/action"),
                &t,
                "2.1",
                Some(json!({"os-getConsoleOutput": {"length": 5}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        assert!(
            body["output"]
                .as_str()
                .unwrap()
                .contains("ferrostack-guest ready"),
            "{body}"
        );

        // Lists: brief, detail, filters.
        let (_, list, _) = c.call("GET", "/v2.1/servers", &t, "2.1", None).await;
        assert_eq!(list["servers"].as_array().unwrap().len(), 1);
        let (_, list, _) = c
            .call(
                "GET",
                "/v2.1/servers/detail?status=SHUTOFF",
                &t,
                "2.1",
                None,
            )
            .await;
        assert_eq!(list["servers"].as_array().unwrap().len(), 0);
        let (_, list, _) = c
            .call("GET", "/v2.1/servers/detail?name=^web", &t, "2.1", None)
            .await;
        assert_eq!(list["servers"][0]["id"], id.as_str());

        // Another project sees nothing and cannot act.
        let bob = c.token("bob", "beta").await;
        let (st, _, _) = c
            .call("GET", &format!("/v2.1/servers/{id}"), &bob, "2.1", None)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _, _) = c
            .call("DELETE", &format!("/v2.1/servers/{id}"), &bob, "2.1", None)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (_, list, _) = c.call("GET", "/v2.1/servers", &bob, "2.1", None).await;
        assert!(list["servers"].as_array().unwrap().is_empty());

        // Admins see host attributes and every project with all_tenants.
        let admin = c.token("admin", "admin").await;
        let (_, s, _) = c
            .call(
                "GET",
                &format!("/v2.1/servers/{id}"),
                &admin,
                "latest",
                None,
            )
            .await;
        assert_eq!(s["server"]["OS-EXT-SRV-ATTR:host"], "host0");
        let (_, list, _) = c
            .call("GET", "/v2.1/servers?all_tenants=1", &admin, "2.1", None)
            .await;
        assert_eq!(list["servers"].as_array().unwrap().len(), 1);

        let (st, _, _) = c
            .call("DELETE", &format!("/v2.1/servers/{id}"), &t, "2.1", None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        c.wait_status(&t, &id, "DELETED").await;
        assert_eq!(c.allocations(&id).await, 0);
        assert_eq!(c.vms(), 0);
        assert!(c.compute.engine.unfinished().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn bad_requests_change_nothing() {
    let url = common::urls().await.remove(0);
    let c = Cloud::new(&url, 1).await;
    let t = c.token("alice", "alpha").await;
    let cases = [
        (
            json!({"server": {"name": "x", "imageRef": c.image_id, "flavorRef": "404", "networks": "none"}}),
            "flavorRef",
        ),
        (
            json!({"server": {"name": "x", "imageRef": "nope", "flavorRef": "1", "networks": "none"}}),
            "could not be found",
        ),
        (
            json!({"server": {"name": "x", "imageRef": c.image_id, "flavorRef": "1"}}),
            "networks",
        ),
        (
            json!({"server": {"name": "", "imageRef": c.image_id, "flavorRef": "1", "networks": "none"}}),
            "name",
        ),
        (
            json!({"server": {"name": "x", "imageRef": c.image_id, "flavorRef": "1", "networks": "none", "key_name": "missing"}}),
            "key_name",
        ),
        (
            json!({"server": {"name": "x", "imageRef": c.image_id, "flavorRef": "1", "networks": "none", "user_data": "%%%"}}),
            "base 64",
        ),
        (json!({"nothing": {}}), "server"),
        (
            json!({"server": {"name": "x", "imageRef": c.image_id, "flavorRef": "1", "networks": "none", "accessIPv6": "2001:::1"}}),
            "ipv6",
        ),
    ];
    for (body, needle) in cases {
        let (st, resp, _) = c
            .call("POST", "/v2.1/servers", &t, "latest", Some(body.clone()))
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {resp}");
        let msg = resp["badRequest"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    // Access addresses are stored the canonical way (RFC 5952), as Nova does.
    let (st, body, _) = c
        .call("POST", "/v2.1/servers", &t, "latest", Some(json!({"server": {"name": "ip", "imageRef": c.image_id, "flavorRef": "1", "networks": "none", "accessIPv6": "2001:0db8:0000:0000:0000:0000:0000:0001", "accessIPv4": "10.0.0.1"}})))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{body}");
    let id = body["server"]["id"].as_str().unwrap().to_string();
    let s = c.wait_status(&t, &id, "ACTIVE").await;
    assert_eq!(
        (s["accessIPv6"].as_str(), s["accessIPv4"].as_str()),
        (Some("2001:db8::1"), Some("10.0.0.1"))
    );
    let (st, _, _) = c
        .call("DELETE", &format!("/v2.1/servers/{id}"), &t, "2.1", None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    c.wait_status(&t, &id, "DELETED").await;
    let (st, resp, headers) = c.call("GET", "/v2.1/servers", &t, "2.999", None).await;
    assert_eq!(st, StatusCode::NOT_ACCEPTABLE, "{resp}");
    assert!(headers.get("vary").is_some());
    let (_, list, _) = c.call("GET", "/v2.1/servers", &t, "2.1", None).await;
    assert!(list["servers"].as_array().unwrap().is_empty());
    assert_eq!(c.vms(), 0);
}

#[tokio::test]
async fn failures_end_in_error_and_release_everything() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let t = c.token("alice", "alpha").await;
        // No host is big enough.
        let id = c.boot(&t, "huge", "99").await;
        let s = c.wait_status(&t, &id, "ERROR").await;
        assert!(
            s["fault"]["message"]
                .as_str()
                .unwrap()
                .contains("No valid host"),
            "{s}"
        );
        assert_eq!(c.allocations(&id).await, 0);
        // The hypervisor refuses to start the VM: unwound, resources given back.
        c.hosts[0].0.fail("create", true);
        let id2 = c.boot(&t, "broken", "1").await;
        let s = c.wait_status(&t, &id2, "ERROR").await;
        // The user reads which operation failed, not the host's own words.
        let message = s["fault"]["message"].as_str().unwrap();
        assert!(message.contains("failed to start"), "{s}");
        assert!(!message.contains("fake create failure"), "{s}");
        assert_eq!(c.allocations(&id2).await, 0);
        assert_eq!(c.vms(), 0);
        c.hosts[0].0.fail("create", false);
        // Servers in ERROR can be deleted.
        for id in [&id, &id2] {
            let (st, _, _) = c
                .call("DELETE", &format!("/v2.1/servers/{id}"), &t, "2.1", None)
                .await;
            assert_eq!(st, StatusCode::NO_CONTENT);
            c.wait_status(&t, id, "DELETED").await;
        }
        assert!(c.compute.engine.unfinished().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn delete_during_boot_cancels_the_boot() {
    let url = common::urls().await.remove(0);
    let c = Cloud::new(&url, 1).await;
    let t = c.token("alice", "alpha").await;
    c.hosts[0].0.set_delay(Duration::from_millis(300));
    let id = c.boot(&t, "short-lived", "1").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (st, _, _) = c
        .call("DELETE", &format!("/v2.1/servers/{id}"), &t, "2.1", None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    c.wait_status(&t, &id, "DELETED").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !c.compute.engine.unfinished().await.unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(c.allocations(&id).await, 0);
    assert_eq!(c.vms(), 0);
}

#[tokio::test]
async fn boots_spread_over_hosts() {
    let url = common::urls().await.remove(0);
    let c = Cloud::new(&url, 2).await;
    let t = c.token("alice", "alpha").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let id = c.boot(&t, &format!("s{i}"), "2").await;
        c.wait_status(&t, &id, "ACTIVE").await;
        ids.push(id);
    }
    assert_eq!(c.hosts[0].0.count(), 2);
    assert_eq!(c.hosts[1].0.count(), 2);
}

/// Kill (Halt) the control plane at every step of boot and delete, in every position; a
/// restarted control plane must end with the server ACTIVE (boot) or gone (delete), with
/// exactly the allocations and VMs that state implies, and with the action's event recorded
/// once, finished with `Success`.
#[tokio::test]
async fn a_crash_at_any_step_resumes_or_unwinds() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let driver = c.hosts[0].0.clone();
        let dir = c.dir.clone();
        let t = c.token("alice", "alpha").await;
        let mut current = c;
        for (kind, steps) in [("server_boot", 4), ("server_delete", 4)] {
            for step in 0..steps {
                for when in [CrashWhen::BeforeStep, CrashWhen::AfterStep] {
                    let id = if kind == "server_delete" {
                        let id = current.boot(&t, "victim", "1").await;
                        current.wait_status(&t, &id, "ACTIVE").await;
                        id
                    } else {
                        String::new()
                    };
                    current.compute.engine.set_crash_point(Some(CrashPoint {
                        kind: kind.into(),
                        step,
                        when,
                        action: CrashAction::Halt,
                    }));
                    let id = if kind == "server_boot" {
                        current.boot(&t, "victim", "1").await
                    } else {
                        let (st, _, _) = current
                            .call("DELETE", &format!("/v2.1/servers/{id}"), &t, "2.1", None)
                            .await;
                        assert_eq!(st, StatusCode::NO_CONTENT);
                        id
                    };
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                    while !current.compute.engine.is_dead() {
                        assert!(
                            tokio::time::Instant::now() < deadline,
                            "{kind} {step} {when:?}: never crashed"
                        );
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    // "Restart": new services on the same database, the same VMs.
                    current.close().await;
                    current = Cloud::open(&url, &dir, vec![driver.clone()], false).await;
                    if kind == "server_boot" {
                        current.wait_status(&t, &id, "ACTIVE").await;
                        let (_, events) = current.action_events(&id, "create").await;
                        assert_eq!(
                            events.iter().map(|e| [&*e[0], &*e[1]]).collect::<Vec<_>>(),
                            [["compute__do_build_and_run_instance", "Success"]],
                            "{kind} {step} {when:?}"
                        );
                        assert_eq!(current.allocations(&id).await, 3, "{kind} {step} {when:?}");
                        assert!(
                            driver.status_is_running(&id).await,
                            "{kind} {step} {when:?}"
                        );
                        let (st, _, _) = current
                            .call("DELETE", &format!("/v2.1/servers/{id}"), &t, "2.1", None)
                            .await;
                        assert_eq!(st, StatusCode::NO_CONTENT);
                    }
                    current.wait_status(&t, &id, "DELETED").await;
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
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
                            "{kind} {step} {when:?}: workflows left"
                        );
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    assert_eq!(
                        current.allocations(&id).await,
                        0,
                        "{kind} {step} {when:?}: allocation leaked"
                    );
                    assert_eq!(driver.count(), 0, "{kind} {step} {when:?}: VM leaked");
                    assert_eq!(
                        current.networking.ports(),
                        vec![],
                        "{kind} {step} {when:?}: port leaked"
                    );
                    let (_, events) = current.action_events(&id, "delete").await;
                    assert_eq!(
                        events.iter().map(|e| [&*e[0], &*e[1]]).collect::<Vec<_>>(),
                        [["compute_terminate_instance", "Success"]],
                        "{kind} {step} {when:?}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn tags_metadata_actions_and_quotas() {
    let url = common::urls().await.remove(0);
    let c = Cloud::new(&url, 1).await;
    let t = c.token("alice", "alpha").await;
    let id = c.boot(&t, "tagged", "1").await;
    c.wait_status(&t, &id, "ACTIVE").await;
    let p = |rest: &str| format!("/v2.1/servers/{id}{rest}");
    // Tags (2.26).
    let (st, _, _) = c.call("GET", &p("/tags"), &t, "2.25", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "tags do not exist before 2.26");
    let (st, body, _) = c
        .call(
            "PUT",
            &p("/tags"),
            &t,
            "2.26",
            Some(json!({"tags": ["b", "a"]})),
        )
        .await;
    assert_eq!(
        (st, body["tags"].clone()),
        (StatusCode::OK, json!(["a", "b"]))
    );
    let (st, _, h) = c.call("PUT", &p("/tags/c"), &t, "2.26", None).await;
    assert_eq!(st, StatusCode::CREATED);
    assert!(h.get("location").is_some());
    let (st, _, _) = c.call("PUT", &p("/tags/c"), &t, "2.26", None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _, _) = c.call("GET", &p("/tags/zz"), &t, "2.26", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _, _) = c.call("PUT", &p("/tags/a,b"), &t, "2.26", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (_, list, _) = c
        .call("GET", "/v2.1/servers?tags=a,c", &t, "2.26", None)
        .await;
    assert_eq!(list["servers"].as_array().unwrap().len(), 1);
    let (st, _, _) = c.call("DELETE", &p("/tags/a"), &t, "2.26", None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, list, _) = c
        .call("GET", "/v2.1/servers?tags=a", &t, "2.26", None)
        .await;
    assert!(list["servers"].as_array().unwrap().is_empty());
    // Metadata.
    let (st, body, _) = c
        .call(
            "POST",
            &p("/metadata"),
            &t,
            "2.1",
            Some(json!({"metadata": {"k1": "v1"}})),
        )
        .await;
    assert_eq!(
        (st, body["metadata"]["k1"].clone()),
        (StatusCode::OK, json!("v1"))
    );
    let (st, _, _) = c
        .call(
            "PUT",
            &p("/metadata/k2"),
            &t,
            "2.1",
            Some(json!({"meta": {"other": "x"}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (_, body, _) = c
        .call(
            "PUT",
            &p("/metadata"),
            &t,
            "2.1",
            Some(json!({"metadata": {"k3": "v3"}})),
        )
        .await;
    assert_eq!(body["metadata"], json!({"k3": "v3"}));
    let (st, _, _) = c.call("GET", &p("/metadata/k1"), &t, "2.1", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, s, _) = c.call("GET", &p(""), &t, "2.1", None).await;
    assert_eq!(s["server"]["metadata"], json!({"k3": "v3"}));
    // Instance actions: the create, with its request id.
    let (st, body, _) = c
        .call("GET", &p("/os-instance-actions"), &t, "2.1", None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let acts = body["instanceActions"].as_array().unwrap();
    assert_eq!(acts.len(), 1);
    assert_eq!(acts[0]["action"], "create");
    let rid = acts[0]["request_id"].as_str().unwrap().to_string();
    let (st, body, _) = c
        .call(
            "GET",
            &p(&format!("/os-instance-actions/{rid}")),
            &t,
            "2.1",
            None,
        )
        .await;
    assert_eq!(
        (st, body["instanceAction"]["instance_uuid"].clone()),
        (StatusCode::OK, json!(id))
    );
    let bob = c.token("bob", "beta").await;
    let (st, _, _) = c
        .call("GET", &p("/os-instance-actions"), &bob, "2.1", None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Quotas as the unified limits give them (none registered: unlimited).
    let project = c
        .identity
        .store
        .project_by_name("default", "alpha")
        .await
        .unwrap()
        .unwrap()
        .id;
    let (st, body, _) = c
        .call(
            "GET",
            &format!("/v2.1/os-quota-sets/{project}"),
            &t,
            "2.1",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["quota_set"]["instances"], -1);
    let (_, body, _) = c
        .call(
            "GET",
            &format!("/v2.1/os-quota-sets/{project}/detail"),
            &t,
            "2.1",
            None,
        )
        .await;
    assert_eq!(body["quota_set"]["instances"]["in_use"], 1);
    let (st, _, _) = c
        .call(
            "GET",
            &format!("/v2.1/os-quota-sets/{project}"),
            &bob,
            "2.1",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}
