//! Servers' NICs from the Networking service (its in-memory stand-in here): a boot gets a
//! port on the project's one network, shown in `addresses`, `/ips`, `network_data.json`, and
//! handed to the host as a tap NIC; a user's own port is bound and given back on delete;
//! bad `networks` requests are refused before anything is made.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Cloud, PRIVATE_NET};
use ferrostack_compute::http::metadata_api::{router, sign};
use ferrostack_compute::network::fake::FakeNet;
use serde_json::{json, Value};
use tower::ServiceExt;

async fn network_data(c: &Cloud, id: &str) -> Value {
    let req = Request::builder()
        .uri("/openstack/latest/network_data.json")
        .header("x-instance-id", id)
        .header("x-instance-id-signature", sign(common::METADATA_SECRET, id))
        .body(Body::empty())
        .unwrap();
    let resp = router(c.compute.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn create(c: &Cloud, t: &str, networks: Value, extra: Value) -> (StatusCode, Value) {
    let mut server =
        json!({"name": "n", "imageRef": c.image_id, "flavorRef": "1", "networks": networks});
    if let (Some(s), Some(e)) = (server.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    let (st, body, _) = c
        .call(
            "POST",
            "/v2.1/servers",
            t,
            "latest",
            Some(json!({ "server": server })),
        )
        .await;
    (st, body)
}

#[tokio::test]
async fn a_server_gets_a_port_on_its_network_and_gives_it_back() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let t = c.token("alice", "alpha").await;
        let (st, body) = create(&c, &t, json!("auto"), json!({})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{body}");
        let id = body["server"]["id"].as_str().unwrap().to_string();
        let server = c.wait_status(&t, &id, "ACTIVE").await;
        let addrs = &server["addresses"]["private"];
        assert_eq!(addrs.as_array().map(Vec::len), Some(1), "{server}");
        let ip = addrs[0]["addr"].as_str().unwrap().to_string();
        let mac = addrs[0]["OS-EXT-IPS-MAC:mac_addr"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(ip.starts_with("10.0.0."), "{ip}");
        assert_eq!(addrs[0]["OS-EXT-IPS:type"], "fixed");
        assert_eq!(addrs[0]["version"], 4);

        let (st, ips, _) = c
            .call("GET", &format!("/v2.1/servers/{id}/ips"), &t, "2.1", None)
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(
            ips["addresses"]["private"],
            json!([{"addr": ip, "version": 4}])
        );

        // The host was told to plug the port into its integration bridge.
        let spec = c.hosts[0].0.spec_of(&id).expect("the VM exists");
        assert_eq!(spec.nics.len(), 1);
        assert_eq!(spec.nics[0].mac, mac);
        assert_eq!(spec.nics[0].mtu, Some(1442));
        assert!(matches!(
            &spec.nics[0].backend,
            ferrostack_hypervisor::NicBackend::Tap { bridge } if bridge == "br-int"
        ));
        let port = spec.nics[0].port_id.clone();

        let nd = network_data(&c, &id).await;
        assert_eq!(nd["links"][0]["vif_id"], json!(port));
        assert_eq!(nd["links"][0]["ethernet_mac_address"], json!(mac));
        assert_eq!(nd["links"][0]["mtu"], 1442);
        assert_eq!(nd["networks"][0]["type"], "ipv4_dhcp");
        assert_eq!(nd["networks"][0]["network_id"], PRIVATE_NET);

        let (st, _, _) = c
            .call("DELETE", &format!("/v2.1/servers/{id}"), &t, "2.1", None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        c.wait_status(&t, &id, "DELETED").await;
        assert_eq!(c.networking.ports(), vec![], "the server's port is deleted");
        c.close().await;
    }
}

#[tokio::test]
async fn a_users_own_port_is_bound_and_kept() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let t = c.token("alice", "alpha").await;
        let project = c.project_id("alpha").await;
        let port = c.networking.add_port(&project, PRIVATE_NET).unwrap();

        // One port cannot serve several servers.
        let (st, body) = create(&c, &t, json!([{"port": port}]), json!({"max_count": 2})).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");

        let (st, body) = create(&c, &t, json!([{"port": port}]), json!({})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{body}");
        let id = body["server"]["id"].as_str().unwrap().to_string();
        let server = c.wait_status(&t, &id, "ACTIVE").await;
        assert_eq!(
            server["addresses"]["private"].as_array().map(Vec::len),
            Some(1)
        );
        assert_eq!(
            c.networking.ports(),
            vec![(
                port.clone(),
                Some(id.clone()),
                Some(c.hosts[0].1.config.host.clone())
            )]
        );

        // In use now: a second server cannot have it.
        let (st, body) = create(&c, &t, json!([{"port": port}]), json!({})).await;
        assert_eq!(st, StatusCode::CONFLICT, "{body}");

        let (st, _, _) = c
            .call("DELETE", &format!("/v2.1/servers/{id}"), &t, "2.1", None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        c.wait_status(&t, &id, "DELETED").await;
        assert_eq!(
            c.networking.ports(),
            vec![(port, None, None)],
            "the user's port outlives the server, unbound"
        );
        c.close().await;
    }
}

#[tokio::test]
async fn bad_network_requests_are_refused_and_change_nothing() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let t = c.token("alice", "alpha").await;
        let missing = "0b9a4c3e-1111-4222-8333-944455556666";
        for (networks, want) in [
            (json!([{"uuid": missing}]), StatusCode::BAD_REQUEST),
            (json!([{"port": missing}]), StatusCode::BAD_REQUEST),
            (json!([{"uuid": "not-a-uuid"}]), StatusCode::BAD_REQUEST),
            (
                json!([{"uuid": PRIVATE_NET, "fixed_ip": "10.0.0.300"}]),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!([{"uuid": PRIVATE_NET, "bogus": 1}]),
                StatusCode::BAD_REQUEST,
            ),
            (json!([{}]), StatusCode::BAD_REQUEST),
        ] {
            let (st, body) = create(&c, &t, networks.clone(), json!({})).await;
            assert_eq!(st, want, "{networks}: {body}");
        }
        // A second network for everyone: "auto" no longer knows which one.
        c.networking.add_network(FakeNet {
            id: "7f2d1c3b-0a9e-4d8c-b7a6-5e4f3d2c1b0a".into(),
            name: "other".into(),
            project_id: None,
            prefix: "10.0.1".into(),
        });
        let (st, body) = create(&c, &t, json!("auto"), json!({})).await;
        assert_eq!(st, StatusCode::CONFLICT, "{body}");
        assert!(body["conflictingRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("Multiple possible networks"));
        // Naming one still works, and "none" gives no NIC.
        let (st, body) = create(&c, &t, json!([{"uuid": PRIVATE_NET}]), json!({})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{body}");
        let with = body["server"]["id"].as_str().unwrap().to_string();
        let (st, body) = create(&c, &t, json!("none"), json!({})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{body}");
        let without = body["server"]["id"].as_str().unwrap().to_string();
        let a = c.wait_status(&t, &with, "ACTIVE").await;
        let b = c.wait_status(&t, &without, "ACTIVE").await;
        assert_eq!(a["addresses"]["private"].as_array().map(Vec::len), Some(1));
        assert_eq!(b["addresses"], json!({}));
        let (_, list, _) = c.call("GET", "/v2.1/servers", &t, "2.1", None).await;
        assert_eq!(list["servers"].as_array().map(Vec::len), Some(2), "{list}");
        assert_eq!(c.networking.ports().len(), 1);
        c.close().await;
    }
}

/// A boot waits for the data plane to have its port up before the server is ACTIVE, as Nova
/// waits for `network-vif-plugged`; a port that never comes up fails the boot and leaves
/// no VM and no port.
#[tokio::test]
async fn a_server_is_active_only_once_its_port_is_up() {
    use std::sync::atomic::Ordering;
    for url in common::urls().await {
        let c = Cloud::new_with(&url, 1, |cfg| cfg.vif_plugging_timeout = 3).await;
        c.networking.reports_status.store(true, Ordering::SeqCst);
        let t = c.token("alice", "alpha").await;
        let (st, body) = create(&c, &t, json!("auto"), json!({})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{body}");
        let id = body["server"]["id"].as_str().unwrap().to_string();
        // The VM runs, but its port is down: the server stays in BUILD.
        let mut spec = None;
        for _ in 0..100 {
            spec = c.hosts[0].0.spec_of(&id);
            if spec.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let port = spec.expect("the VM was started").nics[0].port_id.clone();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let (_, s, _) = c
            .call("GET", &format!("/v2.1/servers/{id}"), &t, "2.1", None)
            .await;
        assert_eq!(s["server"]["status"], "BUILD", "{s}");
        c.networking.set_up(&port);
        let server = c.wait_status(&t, &id, "ACTIVE").await;
        assert_eq!(
            server["addresses"]["private"].as_array().map(Vec::len),
            Some(1)
        );

        // Never up: ERROR with Nova's message after the timeout, nothing left behind.
        let (st, body) = create(&c, &t, json!("auto"), json!({})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{body}");
        let failed = body["server"]["id"].as_str().unwrap().to_string();
        let server = c.wait_status(&t, &failed, "ERROR").await;
        assert!(
            server["fault"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Virtual Interface creation failed")),
            "{server}"
        );
        assert!(c.hosts[0].0.spec_of(&failed).is_none(), "the VM is gone");
        assert_eq!(
            c.networking
                .ports()
                .iter()
                .filter(|p| p.1.as_deref() == Some(failed.as_str()))
                .count(),
            0,
            "the failed server's port is deleted"
        );
        c.close().await;
    }
}
