//! Floating IP port forwardings over HTTP: forwarding through the router that reaches the
//! internal port, Neutron's exclusions (a floating IP either forwards or is associated),
//! duplicates, visibility, what deleting the internal port does, and the state the backend
//! is told (OVN makes load balancers of it).

mod common;

use common::*;
use serde_json::{json, Value};

/// alice's network behind her router to the admin's external network; a VM port on it.
async fn setup(c: &Cloud, admin: &User, alice: &User) -> (String, String, Value, Value) {
    let ext = c
        .network(admin, json!({"name": "public", "router:external": true}))
        .await;
    c.subnet(admin, json!({"network_id": id(&ext), "ip_version": 4, "cidr": "172.24.4.0/24", "enable_dhcp": false}))
        .await;
    let net = c.network(alice, json!({"name": "private"})).await;
    let sub = c
        .subnet(
            alice,
            json!({"network_id": id(&net), "ip_version": 4, "cidr": "10.0.0.0/24"}),
        )
        .await;
    let r = c
        .ok(
            "POST",
            "/v2.0/routers",
            alice,
            Some(
                json!({"router": {"name": "r", "external_gateway_info": {"network_id": id(&ext)}}}),
            ),
            201,
        )
        .await["router"]
        .clone();
    c.ok(
        "PUT",
        &format!("/v2.0/routers/{}/add_router_interface", id(&r)),
        alice,
        Some(json!({"subnet_id": id(&sub)})),
        200,
    )
    .await;
    let vm = c
        .port(alice, json!({"network_id": id(&net), "device_id": "vm"}))
        .await;
    (id(&ext), id(&r), vm, sub)
}

fn pf(port: &Value, internal: i64, external: i64, protocol: &str) -> Value {
    json!({"port_forwarding": {
        "protocol": protocol,
        "internal_ip_address": port["fixed_ips"][0]["ip_address"],
        "internal_port": internal,
        "external_port": external,
        "internal_port_id": port["id"],
        "description": "ssh",
    }})
}

#[tokio::test]
async fn port_forwardings() {
    for c in clouds().await {
        let (admin, alice, bob) = c.users().await;
        let (ext, router, vm, _sub) = setup(&c, &admin, &alice).await;
        let fip = c
            .ok(
                "POST",
                "/v2.0/floatingips",
                &alice,
                Some(json!({"floatingip": {"floating_network_id": ext}})),
                201,
            )
            .await["floatingip"]
            .clone();
        let fid = id(&fip);
        let base = format!("/v2.0/floatingips/{fid}/port_forwardings");

        let created = c
            .ok("POST", &base, &alice, Some(pf(&vm, 22, 2222, "tcp")), 201)
            .await["port_forwarding"]
            .clone();
        let pid = id(&created);
        assert_eq!(created["external_port"], 2222);
        assert_eq!(created["internal_port"], 22);
        assert_eq!(created["internal_port_id"], vm["id"]);
        assert_eq!(created["description"], "ssh");
        let shown = c
            .ok(
                "GET",
                &format!("/v2.0/floatingips/{fid}"),
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(
            shown["floatingip"]["router_id"],
            router.as_str(),
            "the forwardings' router"
        );
        assert_eq!(shown["floatingip"]["status"], "ACTIVE");
        assert_eq!(
            shown["floatingip"]["port_forwardings"][0]["external_port"],
            2222
        );
        let st = c.backend.floating_ip(&fid).unwrap();
        assert_eq!(st.port_forwardings.len(), 1);
        assert_eq!(st.floating_ip.router_id.as_deref(), Some(router.as_str()));

        // Same external port and protocol: refused; same port over UDP: fine.
        c.fails(
            "POST",
            &base,
            &alice,
            Some(pf(&vm, 23, 2222, "tcp")),
            400,
            "BadRequest",
        )
        .await;
        c.ok("POST", &base, &alice, Some(pf(&vm, 22, 2222, "udp")), 201)
            .await;
        // The same internal target twice (another external port): refused.
        c.fails(
            "POST",
            &base,
            &alice,
            Some(pf(&vm, 22, 2223, "tcp")),
            400,
            "BadRequest",
        )
        .await;
        // Bad input changes nothing.
        c.fails(
            "POST",
            &base,
            &alice,
            Some(pf(&vm, 0, 80, "tcp")),
            400,
            "HTTPBadRequest",
        )
        .await;
        c.fails(
            "POST",
            &base,
            &alice,
            Some(pf(&vm, 80, 70000, "tcp")),
            400,
            "HTTPBadRequest",
        )
        .await;
        c.fails(
            "POST",
            &base,
            &alice,
            Some(pf(&vm, 80, 80, "icmp")),
            400,
            "HTTPBadRequest",
        )
        .await;
        let mut wrong_ip = pf(&vm, 80, 80, "tcp");
        wrong_ip["port_forwarding"]["internal_ip_address"] = json!("10.0.0.250");
        c.fails("POST", &base, &alice, Some(wrong_ip), 400, "BadRequest")
            .await;
        let list = c.ok("GET", &base, &alice, None, 200).await;
        assert_eq!(list["port_forwardings"].as_array().unwrap().len(), 2);

        // Another project sees neither the floating IP nor its forwardings.
        c.fails("GET", &base, &bob, None, 404, "FloatingIPNotFound")
            .await;
        c.fails(
            "POST",
            &base,
            &bob,
            Some(pf(&vm, 80, 80, "tcp")),
            404,
            "FloatingIPNotFound",
        )
        .await;

        // A floating IP with forwardings cannot also be associated.
        c.fails(
            "PUT",
            &format!("/v2.0/floatingips/{fid}"),
            &alice,
            Some(json!({"floatingip": {"port_id": vm["id"]}})),
            409,
            "FipInUseByPortForwarding",
        )
        .await;
        // Nor may the router drop the interface the forwardings go through.
        c.fails(
            "PUT",
            &format!("/v2.0/routers/{router}/remove_router_interface"),
            &alice,
            Some(json!({"subnet_id": vm["fixed_ips"][0]["subnet_id"]})),
            409,
            "RouterInterfaceInUseByFloatingIP",
        )
        .await;

        // Update: the external port moves.
        let moved = c
            .ok(
                "PUT",
                &format!("{base}/{pid}"),
                &alice,
                Some(json!({"port_forwarding": {"external_port": 2200}})),
                200,
            )
            .await;
        assert_eq!(moved["port_forwarding"]["external_port"], 2200);
        assert!(c
            .backend
            .floating_ip(&fid)
            .unwrap()
            .port_forwardings
            .iter()
            .any(|p| p.external_port == 2200));

        // Delete one; deleting the internal port takes the rest, and the floating IP no
        // longer goes through the router.
        c.ok("DELETE", &format!("{base}/{pid}"), &alice, None, 204)
            .await;
        c.fails(
            "GET",
            &format!("{base}/{pid}"),
            &alice,
            None,
            404,
            "PortForwardingNotFound",
        )
        .await;
        c.ok(
            "DELETE",
            &format!("/v2.0/ports/{}", id(&vm)),
            &alice,
            None,
            204,
        )
        .await;
        let list = c.ok("GET", &base, &alice, None, 200).await;
        assert_eq!(list["port_forwardings"], json!([]));
        let shown = c
            .ok(
                "GET",
                &format!("/v2.0/floatingips/{fid}"),
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(shown["floatingip"]["router_id"], Value::Null);
        assert_eq!(shown["floatingip"]["status"], "DOWN");
        let st = c.backend.floating_ip(&fid).unwrap();
        assert!(st.port_forwardings.is_empty());

        // A floating IP associated with a port takes no forwardings.
        let other = c
            .port(
                &alice,
                json!({"network_id": vm["network_id"], "device_id": "vm2"}),
            )
            .await;
        c.ok(
            "PUT",
            &format!("/v2.0/floatingips/{fid}"),
            &alice,
            Some(json!({"floatingip": {"port_id": other["id"]}})),
            200,
        )
        .await;
        c.fails(
            "POST",
            &base,
            &alice,
            Some(pf(&other, 22, 22, "tcp")),
            400,
            "BadRequest",
        )
        .await;
        // Deleting the floating IP takes its forwardings along (none are left behind).
        c.ok(
            "DELETE",
            &format!("/v2.0/floatingips/{fid}"),
            &alice,
            None,
            204,
        )
        .await;
        assert!(c.backend.floating_ip(&fid).is_none());
    }
}
