//! Routers and floating IPs over HTTP: gateways on external networks, interfaces by
//! subnet and by port, extra routes, what blocks a delete, floating IP association through
//! a router, and the state the backend is told.

mod common;

use common::*;
use serde_json::{json, Value};

/// An external network with a subnet (admin), and alice's network with a subnet.
async fn topology(c: &Cloud, admin: &User, alice: &User) -> (String, String, String, String) {
    let ext = c
        .network(admin, json!({"name": "public", "router:external": true}))
        .await;
    let ext_sub = c.subnet(admin, json!({"network_id": id(&ext), "ip_version": 4, "cidr": "172.24.4.0/24", "enable_dhcp": false})).await;
    assert_eq!(ext_sub["router:external"], true);
    let seen = c
        .ok(
            "GET",
            &format!("/v2.0/subnets/{}", id(&ext_sub)),
            alice,
            None,
            200,
        )
        .await;
    assert_eq!(
        seen["subnet"]["router:external"], true,
        "external subnets are visible to all"
    );
    let net = c.network(alice, json!({"name": "private"})).await;
    let sub = c
        .subnet(
            alice,
            json!({"network_id": id(&net), "ip_version": 4, "cidr": "10.0.0.0/24"}),
        )
        .await;
    (id(&ext), id(&ext_sub), id(&net), id(&sub))
}

#[tokio::test]
async fn routers_gateways_interfaces_and_routes() {
    for c in clouds().await {
        let (admin, alice, bob) = c.users().await;
        let (ext, ext_sub, net, sub) = topology(&c, &admin, &alice).await;
        let r = c
            .ok(
                "POST",
                "/v2.0/routers",
                &alice,
                Some(
                    json!({"router": {"name": "r1", "external_gateway_info": {"network_id": ext}}}),
                ),
                201,
            )
            .await["router"]
            .clone();
        let rid = id(&r);
        assert_eq!(r["status"], "ACTIVE");
        assert_eq!(r["external_gateway_info"]["network_id"], ext.as_str());
        assert_eq!(r["external_gateway_info"]["enable_snat"], true);
        assert_eq!(
            r["external_gateway_info"]["external_fixed_ips"],
            json!([{"subnet_id": ext_sub, "ip_address": "172.24.4.2"}])
        );
        assert!(
            r.get("distributed").is_none(),
            "distributed is for admins: {r}"
        );
        c.fails(
            "GET",
            &format!("/v2.0/routers/{rid}"),
            &bob,
            None,
            404,
            "RouterNotFound",
        )
        .await;
        // Members may not choose SNAT or gateway addresses; gateways need external networks.
        c.fails("POST", "/v2.0/routers", &alice, Some(json!({"router": {"external_gateway_info": {"network_id": ext, "enable_snat": false}}})), 403, "PolicyNotAuthorized").await;
        c.fails(
            "POST",
            "/v2.0/routers",
            &alice,
            Some(json!({"router": {"external_gateway_info": {"network_id": net}}})),
            400,
            "BadRequest",
        )
        .await;
        c.fails("POST", "/v2.0/routers", &alice, Some(json!({"router": {"external_gateway_info": {"network_id": "00000000-0000-0000-0000-000000000000"}}})), 404, "NetworkNotFound").await;

        // An interface by subnet takes the subnet's gateway address.
        let i = c
            .ok(
                "PUT",
                &format!("/v2.0/routers/{rid}/add_router_interface"),
                &alice,
                Some(json!({"subnet_id": sub})),
                200,
            )
            .await;
        assert_eq!(i["id"], rid.as_str());
        assert_eq!(i["subnet_id"], sub.as_str());
        let ip = c
            .ok(
                "GET",
                &format!("/v2.0/ports/{}", i["port_id"].as_str().unwrap()),
                &alice,
                None,
                200,
            )
            .await["port"]
            .clone();
        assert_eq!(ip["device_owner"], "network:router_interface");
        assert_eq!(ip["device_id"], rid.as_str());
        assert_eq!(ip["fixed_ips"][0]["ip_address"], "10.0.0.1");
        let v = c
            .ok(
                "GET",
                &format!("/v2.0/ports?device_id={rid}"),
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(
            v["ports"].as_array().unwrap().len(),
            1,
            "the gateway port is not alice's: {v}"
        );
        c.fails(
            "PUT",
            &format!("/v2.0/routers/{rid}/add_router_interface"),
            &alice,
            Some(json!({"subnet_id": sub})),
            400,
            "BadRequest",
        )
        .await;
        let net2 = c.network(&alice, json!({"name": "other"})).await;
        let overlapping = c
            .subnet(
                &alice,
                json!({"network_id": id(&net2), "ip_version": 4, "cidr": "10.0.0.0/25"}),
            )
            .await;
        c.fails(
            "PUT",
            &format!("/v2.0/routers/{rid}/add_router_interface"),
            &alice,
            Some(json!({"subnet_id": id(&overlapping)})),
            400,
            "BadRequest",
        )
        .await;
        // Ports owned by the router cannot be deleted through the port API.
        c.fails(
            "DELETE",
            &format!("/v2.0/ports/{}", id(&ip)),
            &alice,
            None,
            409,
            "L3PortInUse",
        )
        .await;
        // A router with interfaces cannot go; the subnet cannot go either.
        c.fails(
            "DELETE",
            &format!("/v2.0/routers/{rid}"),
            &alice,
            None,
            409,
            "RouterInUse",
        )
        .await;
        c.fails(
            "DELETE",
            &format!("/v2.0/subnets/{sub}"),
            &alice,
            None,
            409,
            "SubnetInUse",
        )
        .await;

        // An interface by port.
        c.subnet(&alice, json!({"network_id": id(&net2), "ip_version": 4, "cidr": "10.3.0.0/24", "enable_dhcp": false})).await;
        c.ok(
            "DELETE",
            &format!("/v2.0/subnets/{}", id(&overlapping)),
            &alice,
            None,
            204,
        )
        .await;
        let p = c.port(&alice, json!({"network_id": id(&net2)})).await;
        let i2 = c
            .ok(
                "PUT",
                &format!("/v2.0/routers/{rid}/add_router_interface"),
                &alice,
                Some(json!({"port_id": id(&p)})),
                200,
            )
            .await;
        assert_eq!(i2["port_id"], id(&p).as_str());
        let st = c.backend.router(&rid).unwrap();
        assert_eq!(st.interfaces.len(), 2);
        assert_eq!(
            st.gateway.as_ref().unwrap().addresses[0].cidr,
            "172.24.4.0/24"
        );

        // Extra routes need a connected next hop; a route holds its interface.
        c.fails("PUT", &format!("/v2.0/routers/{rid}"), &alice, Some(json!({"router": {"routes": [{"destination": "192.168.0.0/16", "nexthop": "10.99.0.5"}]}})), 400, "InvalidRoutes").await;
        let u = c.ok("PUT", &format!("/v2.0/routers/{rid}"), &alice, Some(json!({"router": {"routes": [{"destination": "192.168.0.0/16", "nexthop": "10.0.0.5"}], "name": "r1b"}})), 200).await["router"].clone();
        assert_eq!(
            u["routes"],
            json!([{"destination": "192.168.0.0/16", "nexthop": "10.0.0.5"}])
        );
        assert_eq!(c.backend.router(&rid).unwrap().router.routes.len(), 1);
        c.fails(
            "PUT",
            &format!("/v2.0/routers/{rid}/remove_router_interface"),
            &alice,
            Some(json!({"subnet_id": sub})),
            409,
            "RouterInterfaceInUseByRoute",
        )
        .await;
        c.ok(
            "PUT",
            &format!("/v2.0/routers/{rid}"),
            &alice,
            Some(json!({"router": {"routes": null}})),
            200,
        )
        .await;

        // Removing interfaces, by subnet and by port.
        c.fails(
            "PUT",
            &format!("/v2.0/routers/{rid}/remove_router_interface"),
            &admin,
            Some(json!({"subnet_id": ext_sub})),
            404,
            "RouterInterfaceNotFoundForSubnet",
        )
        .await;
        c.ok(
            "PUT",
            &format!("/v2.0/routers/{rid}/remove_router_interface"),
            &alice,
            Some(json!({"subnet_id": sub})),
            200,
        )
        .await;
        c.ok(
            "PUT",
            &format!("/v2.0/routers/{rid}/remove_router_interface"),
            &alice,
            Some(json!({"port_id": id(&p)})),
            200,
        )
        .await;
        c.fails(
            "GET",
            &format!("/v2.0/ports/{}", id(&p)),
            &alice,
            None,
            404,
            "PortNotFound",
        )
        .await;
        // Admin: SNAT off; then clear the gateway.
        let g = c.ok("PUT", &format!("/v2.0/routers/{rid}"), &admin, Some(json!({"router": {"external_gateway_info": {"network_id": ext, "enable_snat": false}}})), 200).await["router"].clone();
        assert_eq!(g["external_gateway_info"]["enable_snat"], false);
        assert_eq!(
            g["external_gateway_info"]["external_fixed_ips"][0]["ip_address"], "172.24.4.2",
            "same network, same address"
        );
        let g = c
            .ok(
                "PUT",
                &format!("/v2.0/routers/{rid}"),
                &alice,
                Some(json!({"router": {"external_gateway_info": {}}})),
                200,
            )
            .await["router"]
            .clone();
        assert_eq!(g["external_gateway_info"], Value::Null);
        assert!(c.backend.router(&rid).unwrap().gateway.is_none());
        c.ok("DELETE", &format!("/v2.0/routers/{rid}"), &alice, None, 204)
            .await;
        assert!(c.backend.router(&rid).is_none());
        // The external network is free again.
        c.ok(
            "DELETE",
            &format!("/v2.0/networks/{ext}"),
            &admin,
            None,
            204,
        )
        .await;
    }
}

#[tokio::test]
async fn floating_ips() {
    for c in clouds().await {
        let (admin, alice, bob) = c.users().await;
        let (ext, _ext_sub, net, sub) = topology(&c, &admin, &alice).await;
        let vm = c
            .port(
                &alice,
                json!({"network_id": net, "device_id": "vm", "name": "vm-port"}),
            )
            .await;
        // Not reachable without a router.
        c.fails(
            "POST",
            "/v2.0/floatingips",
            &alice,
            Some(json!({"floatingip": {"floating_network_id": ext, "port_id": id(&vm)}})),
            404,
            "ExternalGatewayForFloatingIPNotFound",
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/floatingips",
            &alice,
            Some(json!({"floatingip": {"floating_network_id": net}})),
            400,
            "BadRequest",
        )
        .await;
        c.fails("POST", "/v2.0/floatingips", &alice, Some(json!({"floatingip": {"floating_network_id": ext, "floating_ip_address": "172.24.4.99"}})), 403, "PolicyNotAuthorized").await;
        let r = c
            .ok(
                "POST",
                "/v2.0/routers",
                &alice,
                Some(
                    json!({"router": {"name": "r", "external_gateway_info": {"network_id": ext}}}),
                ),
                201,
            )
            .await["router"]
            .clone();
        c.ok(
            "PUT",
            &format!("/v2.0/routers/{}/add_router_interface", id(&r)),
            &alice,
            Some(json!({"subnet_id": sub})),
            200,
        )
        .await;

        let f = c
            .ok(
                "POST",
                "/v2.0/floatingips",
                &alice,
                Some(json!({"floatingip": {"floating_network_id": ext, "port_id": id(&vm)}})),
                201,
            )
            .await["floatingip"]
            .clone();
        let fid = id(&f);
        assert_eq!(
            f["floating_ip_address"], "172.24.4.3",
            "after the router's gateway address"
        );
        assert_eq!(f["fixed_ip_address"], vm["fixed_ips"][0]["ip_address"]);
        assert_eq!(f["router_id"], id(&r).as_str());
        assert_eq!(f["status"], "ACTIVE");
        assert_eq!(f["port_details"]["name"], "vm-port");
        assert_eq!(f["port_details"]["device_id"], "vm");
        let st = c.backend.floating_ip(&fid).unwrap();
        assert_eq!(st.floating_ip.router_id.as_deref(), Some(id(&r).as_str()));
        c.fails(
            "GET",
            &format!("/v2.0/floatingips/{fid}"),
            &bob,
            None,
            404,
            "FloatingIPNotFound",
        )
        .await;
        // One floating IP per fixed address.
        c.fails(
            "POST",
            "/v2.0/floatingips",
            &alice,
            Some(json!({"floatingip": {"floating_network_id": ext, "port_id": id(&vm)}})),
            409,
            "FloatingIPPortAlreadyAssociated",
        )
        .await;
        // The router's interface is needed while the floating IP uses it.
        c.fails(
            "PUT",
            &format!("/v2.0/routers/{}/remove_router_interface", id(&r)),
            &alice,
            Some(json!({"subnet_id": sub})),
            409,
            "RouterInterfaceInUseByFloatingIP",
        )
        .await;
        c.fails(
            "PUT",
            &format!("/v2.0/routers/{}", id(&r)),
            &alice,
            Some(json!({"router": {"external_gateway_info": {}}})),
            409,
            "RouterExternalGatewayInUseByFloatingIp",
        )
        .await;

        // Disassociate, reassociate with a chosen address, disassociate by deleting the port.
        let d = c
            .ok(
                "PUT",
                &format!("/v2.0/floatingips/{fid}"),
                &alice,
                Some(json!({"floatingip": {"port_id": null}})),
                200,
            )
            .await["floatingip"]
            .clone();
        assert_eq!(d["port_id"], Value::Null);
        assert_eq!(d["router_id"], Value::Null);
        assert_eq!(d["status"], "DOWN");
        assert_eq!(d["port_details"], Value::Null);
        let fixed = vm["fixed_ips"][0]["ip_address"].as_str().unwrap();
        let a = c
            .ok(
                "PUT",
                &format!("/v2.0/floatingips/{fid}"),
                &alice,
                Some(json!({"floatingip": {"port_id": id(&vm), "fixed_ip_address": fixed}})),
                200,
            )
            .await["floatingip"]
            .clone();
        assert_eq!(a["fixed_ip_address"], fixed);
        c.fails(
            "PUT",
            &format!("/v2.0/floatingips/{fid}"),
            &alice,
            Some(json!({"floatingip": {"port_id": id(&vm), "fixed_ip_address": "10.0.0.200"}})),
            400,
            "BadRequest",
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
        let gone = c
            .ok(
                "GET",
                &format!("/v2.0/floatingips/{fid}"),
                &alice,
                None,
                200,
            )
            .await["floatingip"]
            .clone();
        assert_eq!(
            gone["port_id"],
            Value::Null,
            "deleting the port disassociates"
        );
        assert_eq!(
            c.backend.floating_ip(&fid).unwrap().floating_ip.port_id,
            None
        );

        // Admins choose addresses; quotas count floating IPs.
        let chosen = c.ok("POST", "/v2.0/floatingips", &admin, Some(json!({"floatingip": {"floating_network_id": ext, "floating_ip_address": "172.24.4.99", "project_id": alice.project}})), 201).await["floatingip"].clone();
        assert_eq!(chosen["floating_ip_address"], "172.24.4.99");
        c.fails("POST", "/v2.0/floatingips", &admin, Some(json!({"floatingip": {"floating_network_id": ext, "floating_ip_address": "172.24.4.99"}})), 409, "IpAddressAlreadyAllocated").await;
        let d = c
            .ok(
                "GET",
                &format!("/v2.0/quotas/{}/details", alice.project),
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(d["quota"]["floatingip"]["used"], 2);
        assert_eq!(d["quota"]["router"]["used"], 1);
        let l = c.ok("GET", &format!("/v2.0/floatingips?floating_network_id={ext}&fields=floating_ip_address&sort_key=floating_ip_address"), &alice, None, 200).await;
        assert_eq!(
            l["floatingips"],
            json!([{"floating_ip_address": "172.24.4.3"}, {"floating_ip_address": "172.24.4.99"}])
        );
        c.ok(
            "DELETE",
            &format!("/v2.0/floatingips/{fid}"),
            &alice,
            None,
            204,
        )
        .await;
        assert!(c.backend.floating_ip(&fid).is_none());
        // Deleting the external network takes unassociated floating IPs with it, once the
        // router's gateway is gone.
        c.ok(
            "PUT",
            &format!("/v2.0/routers/{}/remove_router_interface", id(&r)),
            &alice,
            Some(json!({"subnet_id": sub})),
            200,
        )
        .await;
        c.fails(
            "DELETE",
            &format!("/v2.0/networks/{ext}"),
            &admin,
            None,
            409,
            "NetworkInUse",
        )
        .await;
        c.ok(
            "DELETE",
            &format!("/v2.0/routers/{}", id(&r)),
            &alice,
            None,
            204,
        )
        .await;
        c.ok(
            "DELETE",
            &format!("/v2.0/networks/{ext}"),
            &admin,
            None,
            204,
        )
        .await;
        c.fails(
            "GET",
            &format!("/v2.0/floatingips/{}", id(&chosen)),
            &alice,
            None,
            404,
            "FloatingIPNotFound",
        )
        .await;
    }
}
