//! A compute agent in "another process": the control plane reaches it only over HTTP (the
//! host protocol of `ferrostack_compute::host_http`) and it reaches the control plane only
//! over the agents' API, as `ferrostack compute-agent` does. A server boots, stops and
//! starts, is snapshotted (the image data travels both ways over HTTP) and deleted; a
//! second control node on the same database finds the agent by the URL it registered;
//! the power-state sync runs over HTTP; a wrong secret is refused both ways.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::{Cloud, AGENT_SECRET};
use ferrostack_agent::{Agent, AgentConfig};
use ferrostack_compute::host::{AgentError, ControlPlane, HostAgent};
use ferrostack_compute::host_http::{
    agent_router, HttpControlPlane, HttpHostAgent, CONTROL_PREFIX,
};
use ferrostack_hypervisor::fake::FakeDriver;
use serde_json::json;

/// Serves `app` on a free loopback port; returns its base URL.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// The control plane's agents' API of `c`, on its own port.
async fn control_url(c: &Cloud) -> String {
    serve(axum::Router::new().nest(
        CONTROL_PREFIX,
        ferrostack_compute::http::agents_api::router(c.compute.clone()),
    ))
    .await
}

/// A remote agent with a fake driver, registered with the control plane at `control`.
async fn remote_agent(c: &Cloud, control: &str) -> (Arc<FakeDriver>, Arc<Agent>) {
    let driver = Arc::new(FakeDriver::new(common::resources()));
    let agent = Agent::new(
        AgentConfig {
            host: "remote0".into(),
            state_dir: c.dir.join("remote0"),
            sync_interval: 3600,
            ..Default::default()
        },
        driver.clone(),
        Arc::new(HttpControlPlane::new(control, AGENT_SECRET)),
    );
    let url = serve(agent_router(agent.clone(), AGENT_SECRET.into())).await;
    agent.start(Some(&url)).await.unwrap();
    (driver, agent)
}

async fn action(c: &Cloud, t: &str, id: &str, body: serde_json::Value) {
    let (st, b, _) = c
        .call(
            "POST",
            &format!("/v2.1/servers/{id}/action"),
            t,
            "latest",
            Some(body),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{b}");
}

#[tokio::test]
async fn a_remote_agent_runs_servers_over_http() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 0).await;
        let control = control_url(&c).await;
        let (driver, agent) = remote_agent(&c, &control).await;
        let t = c.token("alice", "alpha").await;

        let id = c.boot(&t, "far", "1").await;
        let s = c.wait_status(&t, &id, "ACTIVE").await;
        assert_eq!(driver.count(), 1, "the VM runs on the remote host");
        let admin = c.token("admin", "admin").await;
        let (_, shown, _) = c
            .call(
                "GET",
                &format!("/v2.1/servers/{id}"),
                &admin,
                "latest",
                None,
            )
            .await;
        assert_eq!(shown["server"]["OS-EXT-SRV-ATTR:host"], "remote0", "{s}");
        // The base image came over HTTP into the host's own cache.
        let base = c.dir.join("remote0/_base").join(&c.image_id);
        assert_eq!(
            std::fs::metadata(&base).unwrap().len(),
            std::fs::metadata(c.image.data_path(&c.image_id))
                .unwrap()
                .len()
        );

        action(&c, &t, &id, json!({"os-stop": null})).await;
        c.wait_status(&t, &id, "SHUTOFF").await;
        action(&c, &t, &id, json!({"os-start": null})).await;
        c.wait_status(&t, &id, "ACTIVE").await;
        let (st, out, _) = c
            .call(
                "POST",
                &format!("/v2.1/servers/{id}/action"),
                &t,
                "latest",
                Some(json!({"os-getConsoleOutput": {"length": 5}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{out}");

        // A snapshot's data goes from the host to the Image service over HTTP.
        let (st, snap, _) = c
            .call(
                "POST",
                &format!("/v2.1/servers/{id}/action"),
                &t,
                "latest",
                Some(json!({"createImage": {"name": "far-snap"}})),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{snap}");
        let image_id = snap["image_id"].as_str().unwrap().to_string();
        c.wait_status(&t, &id, "ACTIVE").await;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let img = c.image.store.get(&image_id).await.unwrap().unwrap();
            if img.status == "active" {
                assert!(c.image.data_path(&image_id).exists());
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "snapshot stuck: {img:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }

        // The power-state sync reports, over HTTP, a guest that shut itself down.
        driver.guest_shutdown(&id);
        agent.sync().await.unwrap();
        c.wait_status(&t, &id, "SHUTOFF").await;
        action(&c, &t, &id, json!({"os-start": null})).await;
        c.wait_status(&t, &id, "ACTIVE").await;

        // Another control node on the same database has never seen the agent attach: it
        // finds the URL the agent registered.
        c.close().await;
        let other = Cloud::open(&url, &c.dir, vec![], false).await;
        action(&other, &t, &id, json!({"os-stop": null})).await;
        other.wait_status(&t, &id, "SHUTOFF").await;
        let (st, b, _) = other
            .call("DELETE", &format!("/v2.1/servers/{id}"), &t, "latest", None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
        other.wait_status(&t, &id, "DELETED").await;
        assert_eq!(driver.count(), 0, "the VM is gone from the remote host");
        assert_eq!(other.allocations(&id).await, 0);
        other.close().await;
    }
}

#[tokio::test]
async fn a_wrong_secret_is_refused_both_ways() {
    let url = common::urls().await.remove(0);
    let c = Cloud::new(&url, 0).await;
    let control = control_url(&c).await;
    let (_driver, agent) = remote_agent(&c, &control).await;
    let report = agent.report();

    let intruder = HttpControlPlane::new(&control, "not-the-secret");
    match intruder.register(&report, Some("http://127.0.0.1:1")).await {
        Err(AgentError::Failed(m)) => assert!(m.contains("secret"), "{m}"),
        other => panic!("registration with a wrong secret: {other:?}"),
    }
    assert!(intruder
        .fetch_image(&c.image_id, &c.dir.join("stolen"))
        .await
        .is_err());
    assert!(!c.dir.join("stolen").exists());

    let url_of_agent = serve(agent_router(agent.clone(), AGENT_SECRET.into())).await;
    let impostor = HttpHostAgent::new(&url_of_agent, "not-the-secret");
    match impostor.servers().await {
        Err(AgentError::Failed(m)) => assert!(m.contains("secret"), "{m}"),
        other => panic!("a host call with a wrong secret: {other:?}"),
    }
    // The right secret works, and an unreachable agent is worth a retry, not a failure.
    assert!(HttpHostAgent::new(&url_of_agent, AGENT_SECRET)
        .servers()
        .await
        .is_ok());
    match HttpHostAgent::new("http://127.0.0.1:1", AGENT_SECRET)
        .servers()
        .await
    {
        Err(AgentError::Transient(_)) => {}
        other => panic!("an unreachable agent: {other:?}"),
    }
}
