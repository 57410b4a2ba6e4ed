//! Serial consoles through the API and the serial proxy, with the fake driver (whose guests
//! greet with a login prompt and echo): Nova's request and error shapes per microversion,
//! a websocket session that reaches the guest and back, tokens that are refused when wrong,
//! expired with their server, or looked up by admins only; the same through a remote agent.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::{Cloud, AGENT_SECRET, SERIAL_PROXY_PLACEHOLDER};
use ferrostack_agent::{Agent, AgentConfig};
use ferrostack_compute::host_http::{agent_router, HttpControlPlane, CONTROL_PREFIX};
use ferrostack_hypervisor::fake::FakeDriver;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

async fn console(c: &Cloud, t: &str, id: &str, version: &str, body: Value) -> (StatusCode, Value) {
    let (st, b, _) = c
        .call(
            "POST",
            &format!("/v2.1/servers/{id}/remote-consoles"),
            t,
            version,
            Some(body),
        )
        .await;
    (st, b)
}

/// Opens the console at `url` (the cloud's, with the proxy's real address), reads the
/// greeting, sends a line and reads it back.
async fn talk(url: &str) {
    let (mut ws, resp) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(resp.status(), 101);
    let mut seen = Vec::new();
    let mut sent = false;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the console went quiet")
            .unwrap()
            .unwrap();
        if let Message::Binary(b) = msg {
            seen.extend_from_slice(&b);
        }
        let text = String::from_utf8_lossy(&seen).to_string();
        if !sent && text.contains("login: ") {
            ws.send(Message::Text("hello guest\r".into()))
                .await
                .unwrap();
            sent = true;
        }
        if text.contains("hello guest\r") {
            break;
        }
    }
    ws.close(None).await.unwrap();
}

fn token_of(url: &str) -> &str {
    url.split("token=").nth(1).unwrap()
}

#[tokio::test]
async fn serial_consoles_through_the_proxy() {
    let url = common::urls().await.remove(0);
    let c = Cloud::new(&url, 1).await;
    let proxy = c.serve_serial_proxy().await;
    let t = c.token("alice", "alpha").await;
    let id = c.boot(&t, "console-me", "1").await;
    c.wait_status(&t, &id, "ACTIVE").await;

    let serial = json!({"remote_console": {"protocol": "serial", "type": "serial"}});
    let (st, body) = console(&c, &t, &id, "2.6", serial.clone()).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let rc = &body["remote_console"];
    assert_eq!(
        (rc["protocol"].as_str(), rc["type"].as_str()),
        (Some("serial"), Some("serial"))
    );
    let given = rc["url"].as_str().unwrap();
    assert!(
        given.starts_with(&format!("{SERIAL_PROXY_PLACEHOLDER}?token=")),
        "{given}"
    );
    talk(&given.replace(SERIAL_PROXY_PLACEHOLDER, &proxy)).await;
    // A token serves more than one session until it expires.
    talk(&given.replace(SERIAL_PROXY_PLACEHOLDER, &proxy)).await;

    // Nova's answers: unavailable types, bad input, the route's microversion.
    let (st, b) = console(
        &c,
        &t,
        &id,
        "2.6",
        json!({"remote_console": {"protocol": "vnc", "type": "novnc"}}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    assert!(b["badRequest"]["message"]
        .as_str()
        .unwrap()
        .contains("Unavailable console type"));
    let (st, _) = console(
        &c,
        &t,
        &id,
        "2.6",
        json!({"remote_console": {"protocol": "serial", "type": "telnet"}}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = console(&c, &t, &id, "2.6", json!({"console": {}})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = console(&c, &t, &id, "2.5", serial.clone()).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, b, _) = c
        .call(
            "POST",
            &format!("/v2.1/servers/{id}/action"),
            &t,
            "2.1",
            Some(json!({"os-getSerialConsole": {"type": "serial"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["console"]["type"], "serial");
    let old = b["console"]["url"].as_str().unwrap().to_string();

    // Another project's server does not exist; a stopped one has no console.
    let bob = c.token("bob", "beta").await;
    let (st, _) = console(&c, &bob, &id, "2.6", serial.clone()).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Tokens: admins look them up (from 2.31), others may not; a wrong one opens nothing.
    let admin = c.token("admin", "admin").await;
    let path = format!("/v2.1/os-console-auth-tokens/{}", token_of(&old));
    let (st, b, _) = c.call("GET", &path, &admin, "2.31", None).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["console"]["instance_uuid"], id.as_str());
    assert_eq!(b["console"]["host"], "host0");
    let (st, _, _) = c.call("GET", &path, &admin, "2.30", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _, _) = c.call("GET", &path, &t, "2.31", None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _, _) = c
        .call(
            "GET",
            "/v2.1/os-console-auth-tokens/nope",
            &admin,
            "2.31",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let wrong = format!("{proxy}?token=0123456789abcdef");
    assert!(tokio_tungstenite::connect_async(&wrong).await.is_err());

    let (st, b, _) = c
        .call(
            "POST",
            &format!("/v2.1/servers/{id}/action"),
            &t,
            "2.1",
            Some(json!({"os-stop": null})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{b}");
    c.wait_status(&t, &id, "SHUTOFF").await;
    let (st, b) = console(&c, &t, &id, "2.6", serial.clone()).await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");

    // A deleted server's tokens open nothing.
    let (st, _, _) = c
        .call("DELETE", &format!("/v2.1/servers/{id}"), &t, "2.1", None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    c.wait_status(&t, &id, "DELETED").await;
    assert!(
        tokio_tungstenite::connect_async(given.replace(SERIAL_PROXY_PLACEHOLDER, &proxy))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_serial_console_through_a_remote_agent() {
    let url = common::urls().await.remove(0);
    let c = Cloud::new(&url, 0).await;
    let proxy = c.serve_serial_proxy().await;
    let control = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().nest(
            CONTROL_PREFIX,
            ferrostack_compute::http::agents_api::router(c.compute.clone()),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    };
    let driver = Arc::new(FakeDriver::new(common::resources()));
    let agent = Agent::new(
        AgentConfig {
            host: "remote0".into(),
            state_dir: c.dir.join("remote0"),
            sync_interval: 3600,
            ..Default::default()
        },
        driver,
        Arc::new(HttpControlPlane::new(&control, AGENT_SECRET)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let agent_url = format!("http://{}", listener.local_addr().unwrap());
    let app = agent_router(agent.clone(), AGENT_SECRET.into());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    agent.start(Some(&agent_url)).await.unwrap();

    let t = c.token("alice", "alpha").await;
    let id = c.boot(&t, "far-console", "1").await;
    c.wait_status(&t, &id, "ACTIVE").await;
    let (st, body) = console(
        &c,
        &t,
        &id,
        "2.6",
        json!({"remote_console": {"protocol": "serial", "type": "serial"}}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let given = body["remote_console"]["url"].as_str().unwrap();
    talk(&given.replace(SERIAL_PROXY_PLACEHOLDER, &proxy)).await;
}
