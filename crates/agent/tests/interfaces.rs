//! Nova's `os-interface` on the in-memory cloud: a running server gets a port on a network
//! (with a fixed IP and a tag) and a user's own port hot-plugged, shown in the attachments,
//! `addresses` and the host's VM; detaching deletes the port Compute made and unbinds the
//! user's; Nova's refusals; a stopped server; a failed hot-plug gives its port back; a
//! crash at any step of an attachment resumes to a consistent end, never an orphan port.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::{Cloud, PRIVATE_NET};
use ferrostack_workflow::{CrashAction, CrashPoint, CrashWhen};
use serde_json::{json, Value};

async fn boot_active(c: &Cloud, t: &str) -> String {
    let id = c.boot(t, "iface", "1").await;
    c.wait_status(t, &id, "ACTIVE").await;
    id
}

async fn attach(c: &Cloud, t: &str, id: &str, mv: &str, att: Value) -> (StatusCode, Value) {
    let (st, body, _) = c
        .call(
            "POST",
            &format!("/v2.1/servers/{id}/os-interface"),
            t,
            mv,
            Some(json!({ "interfaceAttachment": att })),
        )
        .await;
    (st, body)
}

async fn attachments(c: &Cloud, t: &str, id: &str) -> Vec<Value> {
    let (st, body, _) = c
        .call(
            "GET",
            &format!("/v2.1/servers/{id}/os-interface"),
            t,
            "2.70",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    body["interfaceAttachments"].as_array().unwrap().clone()
}

async fn detach(c: &Cloud, t: &str, id: &str, port: &str) -> StatusCode {
    let (st, _, _) = c
        .call(
            "DELETE",
            &format!("/v2.1/servers/{id}/os-interface/{port}"),
            t,
            "2.1",
            None,
        )
        .await;
    st
}

/// Waits until the server has `n` attachments and no task.
async fn wait_nics(c: &Cloud, t: &str, id: &str, n: usize, status: &str) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let list = attachments(c, t, id).await;
        if list.len() == n {
            c.wait_status(t, id, status).await;
            return list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} has {} NICs, wanted {n}",
            list.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ports_of(c: &Cloud, server: &str) -> Vec<String> {
    c.networking
        .ports()
        .into_iter()
        .filter(|(_, dev, _)| dev.as_deref() == Some(server))
        .map(|(p, _, _)| p)
        .collect()
}

#[tokio::test]
async fn attach_and_detach_networks_and_ports() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let t = c.token("alice", "alpha").await;
        let project = c.project_id("alpha").await;
        let id = boot_active(&c, &t).await;
        let first = attachments(&c, &t, &id).await;
        assert_eq!(first.len(), 1);
        assert_eq!(first[0]["net_id"], PRIVATE_NET);
        assert_eq!(first[0]["port_state"], "ACTIVE");
        assert_eq!(first[0]["tag"], Value::Null);

        // A network with a fixed IP and a tag.
        let (st, body) = attach(
            &c,
            &t,
            &id,
            "2.70",
            json!({"net_id": PRIVATE_NET, "fixed_ips": [{"ip_address": "10.0.0.200"}], "tag": "second"}),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let a = &body["interfaceAttachment"];
        assert_eq!(a["net_id"], PRIVATE_NET);
        assert_eq!(a["tag"], "second");
        assert_eq!(a["fixed_ips"][0]["ip_address"], "10.0.0.200");
        assert_eq!(
            a["fixed_ips"][0]["subnet_id"],
            format!("subnet-{PRIVATE_NET}")
        );
        let made = a["port_id"].as_str().unwrap().to_string();
        let mac = a["mac_addr"].as_str().unwrap().to_string();
        let server = c.wait_status(&t, &id, "ACTIVE").await;
        let addrs: Vec<&str> = server["addresses"]["private"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["addr"].as_str().unwrap())
            .collect();
        assert!(addrs.contains(&"10.0.0.200"), "{server}");
        let vm = c.hosts[0].0.spec_of(&id).unwrap();
        assert_eq!(vm.nics.len(), 2);
        assert_eq!(vm.nics[1].port_id, made);
        assert_eq!(vm.nics[1].mac, mac);

        // Show, with the tag from 2.70 only.
        let path = format!("/v2.1/servers/{id}/os-interface/{made}");
        let (st, shown, _) = c.call("GET", &path, &t, "2.70", None).await;
        assert_eq!(st, StatusCode::OK, "{shown}");
        assert_eq!(shown["interfaceAttachment"]["tag"], "second");
        let (_, shown, _) = c.call("GET", &path, &t, "2.69", None).await;
        assert!(shown["interfaceAttachment"].get("tag").is_none(), "{shown}");

        // The user's own port.
        let port = c.networking.add_port(&project, PRIVATE_NET).unwrap();
        let (st, body) = attach(&c, &t, &id, "2.1", json!({"port_id": port})).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        assert_eq!(body["interfaceAttachment"]["port_id"], port.as_str());
        assert_eq!(attachments(&c, &t, &id).await.len(), 3);
        assert_eq!(c.hosts[0].0.spec_of(&id).unwrap().nics.len(), 3);
        // In use now.
        let (st, body) = attach(&c, &t, &id, "2.1", json!({"port_id": port})).await;
        assert_eq!(st, StatusCode::CONFLICT, "{body}");

        // The actions and their events.
        let (action, events) = c.action_events(&id, "attach_interface").await;
        assert_eq!(action["action"], "attach_interface");
        assert_eq!(
            events.iter().map(|e| [&*e[0], &*e[1]]).collect::<Vec<_>>(),
            [["compute_attach_interface", "Success"]]
        );

        // Detach the user's port: unbound, kept.
        assert_eq!(detach(&c, &t, &id, &port).await, StatusCode::ACCEPTED);
        wait_nics(&c, &t, &id, 2, "ACTIVE").await;
        assert!(c
            .networking
            .ports()
            .iter()
            .any(|(p, dev, host)| p == &port && dev.is_none() && host.is_none()));
        // Detach the one Compute made: deleted.
        assert_eq!(detach(&c, &t, &id, &made).await, StatusCode::ACCEPTED);
        wait_nics(&c, &t, &id, 1, "ACTIVE").await;
        assert!(!c.networking.ports().iter().any(|(p, _, _)| p == &made));
        assert_eq!(c.hosts[0].0.spec_of(&id).unwrap().nics.len(), 1);
        let (_, events) = c.action_events(&id, "detach_interface").await;
        assert_eq!(
            events.iter().map(|e| [&*e[0], &*e[1]]).collect::<Vec<_>>(),
            [["compute_detach_interface", "Success"]]
        );

        // A stopped server gets the NIC for its next start.
        let (st, _, _) = c
            .call(
                "POST",
                &format!("/v2.1/servers/{id}/action"),
                &t,
                "2.1",
                Some(json!({"os-stop": null})),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED);
        c.wait_status(&t, &id, "SHUTOFF").await;
        let (st, body) = attach(&c, &t, &id, "2.1", json!({"port_id": port})).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        c.wait_status(&t, &id, "SHUTOFF").await;
        assert_eq!(c.hosts[0].0.spec_of(&id).unwrap().nics.len(), 2);

        // Deleting the server keeps the user's port attached since, unbound.
        let (st, _, _) = c
            .call("DELETE", &format!("/v2.1/servers/{id}"), &t, "2.1", None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        c.wait_status(&t, &id, "DELETED").await;
        assert_eq!(
            c.networking
                .ports()
                .into_iter()
                .map(|(p, dev, _)| (p, dev))
                .collect::<Vec<_>>(),
            vec![(port.clone(), None)]
        );
    }
}

#[tokio::test]
async fn refusals_follow_nova() {
    let url = common::urls().await.remove(0);
    let c = Cloud::new(&url, 1).await;
    let t = c.token("alice", "alpha").await;
    let project = c.project_id("alpha").await;
    let id = boot_active(&c, &t).await;
    let port = c.networking.add_port(&project, PRIVATE_NET).unwrap();
    let missing = "0b3c6f0e-1d2e-4f5a-8b9c-0d1e2f3a4b5c";
    for (mv, att, want) in [
        (
            "2.1",
            json!({"net_id": PRIVATE_NET, "port_id": port}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "2.1",
            json!({"fixed_ips": [{"ip_address": "10.0.0.9"}]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "2.1",
            json!({"net_id": PRIVATE_NET, "fixed_ips": [{"ip_address": "nope"}]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "2.1",
            json!({"net_id": PRIVATE_NET, "fixed_ips": []}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "2.1",
            json!({"net_id": "not-a-uuid"}),
            StatusCode::BAD_REQUEST,
        ),
        ("2.1", json!({"bogus": 1}), StatusCode::BAD_REQUEST),
        // Tags from 2.49.
        (
            "2.48",
            json!({"net_id": PRIVATE_NET, "tag": "x"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "2.49",
            json!({"net_id": PRIVATE_NET, "tag": "a/b"}),
            StatusCode::BAD_REQUEST,
        ),
        ("2.1", json!({"net_id": missing}), StatusCode::NOT_FOUND),
        ("2.1", json!({"port_id": missing}), StatusCode::NOT_FOUND),
    ] {
        let (st, body) = attach(&c, &t, &id, mv, att.clone()).await;
        assert_eq!(st, want, "{mv} {att}: {body}");
    }
    let (st, _) = attach(&c, &t, missing, "2.1", json!({"net_id": PRIVATE_NET})).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let path = format!("/v2.1/servers/{id}/os-interface/{missing}");
    let (st, _, _) = c.call("GET", &path, &t, "2.1", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(detach(&c, &t, &id, missing).await, StatusCode::NOT_FOUND);
    // Query parameters are refused from 2.102.
    let (st, _, _) = c
        .call(
            "GET",
            &format!("/v2.1/servers/{id}/os-interface?x=1"),
            &t,
            "2.102",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Another project's user sees no such server.
    let bob = c.token("bob", "beta").await;
    let (st, _) = attach(&c, &bob, &id, "2.1", json!({"net_id": PRIVATE_NET})).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Locked: 409 for its owner.
    let action = |body: Value| {
        let t = t.clone();
        let id = id.clone();
        let c = &c;
        async move {
            let (st, _, _) = c
                .call(
                    "POST",
                    &format!("/v2.1/servers/{id}/action"),
                    &t,
                    "2.1",
                    Some(body),
                )
                .await;
            st
        }
    };
    assert_eq!(action(json!({"lock": null})).await, StatusCode::ACCEPTED);
    let (st, body) = attach(&c, &t, &id, "2.1", json!({"net_id": PRIVATE_NET})).await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    let only = attachments(&c, &t, &id).await[0]["port_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(detach(&c, &t, &id, &only).await, StatusCode::CONFLICT);
    assert_eq!(action(json!({"unlock": null})).await, StatusCode::ACCEPTED);

    // Not in a state that allows it: suspended.
    assert_eq!(action(json!({"suspend": null})).await, StatusCode::ACCEPTED);
    c.wait_status(&t, &id, "SUSPENDED").await;
    let (st, body) = attach(&c, &t, &id, "2.1", json!({"net_id": PRIVATE_NET})).await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert!(
        body["conflictingRequest"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("attach_interface"),
        "{body}"
    );
    // Nothing was made by any of it.
    assert_eq!(ports_of(&c, &id).len(), 1);
}

#[tokio::test]
async fn a_failed_hot_plug_gives_its_port_back() {
    let url = common::urls().await.remove(0);
    let c = Cloud::new(&url, 1).await;
    let t = c.token("alice", "alpha").await;
    let project = c.project_id("alpha").await;
    let id = boot_active(&c, &t).await;
    let port = c.networking.add_port(&project, PRIVATE_NET).unwrap();
    c.hosts[0].0.fail("attach_nic", true);
    let (st, body) = attach(&c, &t, &id, "2.1", json!({"net_id": PRIVATE_NET})).await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let (st, body) = attach(&c, &t, &id, "2.1", json!({"port_id": port})).await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    c.hosts[0].0.fail("attach_nic", false);
    // The port made is gone, the user's is free again, the server as it was.
    assert_eq!(ports_of(&c, &id).len(), 1);
    assert!(c
        .networking
        .ports()
        .iter()
        .any(|(p, dev, _)| p == &port && dev.is_none()));
    assert_eq!(wait_nics(&c, &t, &id, 1, "ACTIVE").await.len(), 1);
    assert_eq!(c.hosts[0].0.spec_of(&id).unwrap().nics.len(), 1);
    let (action, _) = c.action_events(&id, "attach_interface").await;
    assert!(!action["message"].is_null(), "{action}");
    // It works once the host does.
    let (st, body) = attach(&c, &t, &id, "2.1", json!({"port_id": port})).await;
    assert_eq!(st, StatusCode::OK, "{body}");
}

/// Kill (Halt) the control plane before and after each step of an attachment; the
/// restarted one finishes it: the server has the NIC, in the cache and on its host, and
/// exactly the ports its NICs are.
#[tokio::test]
async fn a_crash_at_any_step_of_an_attachment_resumes_without_orphans() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let driver = c.hosts[0].0.clone();
        let dir = c.dir.clone();
        let t = c.token("alice", "alpha").await;
        let id = boot_active(&c, &t).await;
        let mut current = c;
        for step in 0..3 {
            for when in [CrashWhen::BeforeStep, CrashWhen::AfterStep] {
                current.compute.engine.set_crash_point(Some(CrashPoint {
                    kind: "server_attach_interface".into(),
                    step,
                    when,
                    action: CrashAction::Halt,
                }));
                {
                    let call = attach(&current, &t, &id, "2.1", json!({"net_id": PRIVATE_NET}));
                    tokio::pin!(call);
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                    loop {
                        tokio::select! {
                            r = &mut call => panic!("{step} {when:?}: answered before the crash: {r:?}"),
                            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                        }
                        if current.compute.engine.is_dead() {
                            break;
                        }
                        assert!(
                            tokio::time::Instant::now() < deadline,
                            "{step} {when:?}: never crashed"
                        );
                    }
                }
                current.close().await;
                current = Cloud::open(&url, &dir, vec![driver.clone()], false).await;
                let list = wait_nics(&current, &t, &id, 2, "ACTIVE").await;
                let mut ports = ports_of(&current, &id);
                ports.sort();
                let mut nics: Vec<String> = list
                    .iter()
                    .map(|a| a["port_id"].as_str().unwrap().to_string())
                    .collect();
                nics.sort();
                assert_eq!(ports, nics, "{step} {when:?}");
                let mut on_host: Vec<String> = driver
                    .spec_of(&id)
                    .unwrap()
                    .nics
                    .iter()
                    .map(|n| n.port_id.clone())
                    .collect();
                on_host.sort();
                assert_eq!(on_host, nics, "{step} {when:?}");
                // Back to one NIC for the next round.
                let added = list[1]["port_id"].as_str().unwrap().to_string();
                assert_eq!(
                    detach(&current, &t, &id, &added).await,
                    StatusCode::ACCEPTED
                );
                wait_nics(&current, &t, &id, 1, "ACTIVE").await;
                assert_eq!(ports_of(&current, &id).len(), 1);
            }
        }
    }
}
