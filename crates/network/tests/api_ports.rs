//! Subnets, ports and security groups over HTTP: subnet defaults and validation, IPv6
//! SLAAC, the metadata port, IP address management (exhaustion, taken addresses,
//! concurrent allocation), bindings, port security, default security groups and rules,
//! and the plain Rust API Compute uses.

mod common;

use std::collections::HashSet;

use common::*;
use ferrostack_network::service::internal::PortCreate;
use ferrostack_network::service::ports::IpRequest;
use serde_json::{json, Value};

#[tokio::test]
async fn subnets_defaults_validation_and_metadata_port() {
    for c in clouds().await {
        let (_, alice, bob) = c.users().await;
        let n = c.network(&alice, json!({"name": "n"})).await;
        let nid = id(&n);
        let s = c.subnet(&alice, json!({"network_id": nid, "ip_version": 4, "cidr": "192.168.10.0/24", "name": "s4", "dns_nameservers": ["8.8.8.8"], "host_routes": [{"destination": "10.0.0.0/8", "nexthop": "192.168.10.254"}]})).await;
        assert_eq!(s["gateway_ip"], "192.168.10.1");
        assert_eq!(
            s["allocation_pools"],
            json!([{"start": "192.168.10.2", "end": "192.168.10.254"}])
        );
        assert_eq!(s["enable_dhcp"], true);
        assert_eq!(s["subnetpool_id"], Value::Null);
        assert_eq!(s["segment_id"], Value::Null);
        assert_eq!(s["router:external"], false);
        assert_eq!(s["ipv6_ra_mode"], Value::Null);
        assert_eq!(s["host_routes"][0]["nexthop"], "192.168.10.254");
        let sid = id(&s);
        let net = c
            .ok("GET", &format!("/v2.0/networks/{nid}"), &alice, None, 200)
            .await["network"]
            .clone();
        assert_eq!(net["subnets"], json!([sid]));
        assert_eq!(net["revision_number"], 2, "a new subnet bumps its network");

        // The first DHCP subnet brought a metadata port with an address on it.
        let ports = c
            .ok(
                "GET",
                &format!("/v2.0/ports?network_id={nid}&device_owner=network:distributed"),
                &alice,
                None,
                200,
            )
            .await["ports"]
            .clone();
        assert_eq!(ports.as_array().unwrap().len(), 1, "{ports}");
        assert_eq!(ports[0]["device_id"], format!("ovnmeta-{nid}"));
        assert_eq!(ports[0]["fixed_ips"][0]["ip_address"], "192.168.10.2");
        let meta = id(&ports[0]);
        assert!(c.backend.port(&meta).is_some());

        // Validation.
        let bad = |body: Value| json!({"subnet": body});
        c.fails(
            "POST",
            "/v2.0/subnets",
            &alice,
            Some(bad(
                json!({"network_id": nid, "ip_version": 4, "cidr": "192.168.10.128/25"}),
            )),
            400,
            "InvalidInput",
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/subnets",
            &alice,
            Some(bad(
                json!({"network_id": nid, "ip_version": 4, "cidr": "10.0.0.5/24"}),
            )),
            400,
            "HTTPBadRequest",
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/subnets",
            &alice,
            Some(bad(
                json!({"network_id": nid, "ip_version": 6, "cidr": "10.0.0.0/24"}),
            )),
            400,
            "InvalidInput",
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/subnets",
            &alice,
            Some(bad(
                json!({"network_id": nid, "ip_version": 5, "cidr": "10.0.0.0/24"}),
            )),
            400,
            "HTTPBadRequest",
        )
        .await;
        c.fails("POST", "/v2.0/subnets", &alice, Some(bad(json!({"network_id": nid, "ip_version": 4, "cidr": "10.2.0.0/24", "allocation_pools": [{"start": "10.2.0.10", "end": "10.3.0.5"}]}))), 400, "OutOfBoundsAllocationPool").await;
        c.fails("POST", "/v2.0/subnets", &alice, Some(bad(json!({"network_id": nid, "ip_version": 4, "cidr": "10.2.0.0/24", "allocation_pools": [{"start": "10.2.0.10", "end": "10.2.0.20"}, {"start": "10.2.0.15", "end": "10.2.0.30"}]}))), 409, "OverlappingAllocationPools").await;
        c.fails("POST", "/v2.0/subnets", &alice, Some(bad(json!({"network_id": nid, "ip_version": 4, "cidr": "10.2.0.0/24", "gateway_ip": "10.2.0.15", "allocation_pools": [{"start": "10.2.0.10", "end": "10.2.0.20"}]}))), 409, "GatewayConflictWithAllocationPools").await;
        c.fails("POST", "/v2.0/subnets", &alice, Some(bad(json!({"network_id": nid, "ip_version": 4, "cidr": "10.2.0.0/24", "ipv6_ra_mode": "slaac"}))), 400, "InvalidInput").await;
        c.fails(
            "POST",
            "/v2.0/subnets",
            &alice,
            Some(bad(
                json!({"network_id": nid, "ip_version": 4, "cidr": "10.2.0.0/24", "color": "red"}),
            )),
            400,
            "HTTPBadRequest",
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/subnets",
            &bob,
            Some(bad(
                json!({"network_id": nid, "ip_version": 4, "cidr": "10.2.0.0/24"}),
            )),
            404,
            "NetworkNotFound",
        )
        .await;
        c.fails(
            "GET",
            &format!("/v2.0/subnets/{sid}"),
            &bob,
            None,
            404,
            "SubnetNotFound",
        )
        .await;

        // No gateway, explicit pools.
        let s2 = c.subnet(&alice, json!({"network_id": nid, "ip_version": 4, "cidr": "10.3.0.0/28", "gateway_ip": null, "allocation_pools": [{"start": "10.3.0.4", "end": "10.3.0.6"}]})).await;
        assert_eq!(s2["gateway_ip"], Value::Null);
        let meta_port = c
            .ok("GET", &format!("/v2.0/ports/{meta}"), &alice, None, 200)
            .await["port"]
            .clone();
        assert_eq!(
            meta_port["fixed_ips"].as_array().unwrap().len(),
            2,
            "the metadata port follows every DHCP subnet: {meta_port}"
        );

        // IPv6 SLAAC: ports get their EUI-64 address.
        let s6 = c.subnet(&alice, json!({"network_id": nid, "ip_version": 6, "cidr": "fd00:1::/64", "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"})).await;
        assert_eq!(s6["gateway_ip"], "fd00:1::1");
        c.fails("POST", "/v2.0/subnets", &alice, Some(bad(json!({"network_id": nid, "ip_version": 6, "cidr": "fd00:2::/80", "ipv6_address_mode": "slaac"}))), 400, "InvalidInput").await;
        let p = c
            .port(
                &alice,
                json!({"network_id": nid, "mac_address": "fa:16:3e:12:34:56"}),
            )
            .await;
        let ips: Vec<&str> = p["fixed_ips"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["ip_address"].as_str().unwrap())
            .collect();
        assert!(ips.contains(&"fd00:1::f816:3eff:fe12:3456"), "{ips:?}");
        assert!(ips.contains(&"192.168.10.3"), "{ips:?}");

        // Updates.
        let u = c.ok("PUT", &format!("/v2.0/subnets/{sid}"), &alice, Some(json!({"subnet": {"name": "renamed", "dns_nameservers": ["1.1.1.1", "9.9.9.9"]}})), 200).await["subnet"].clone();
        assert_eq!(u["dns_nameservers"], json!(["1.1.1.1", "9.9.9.9"]));
        assert_eq!(u["revision_number"], 2);
        c.fails(
            "PUT",
            &format!("/v2.0/subnets/{sid}"),
            &alice,
            Some(json!({"subnet": {"cidr": "10.0.0.0/8"}})),
            400,
            "HTTPBadRequest",
        )
        .await;
        assert_eq!(
            c.backend
                .network(&nid)
                .unwrap()
                .subnets
                .iter()
                .find(|s| s.id == sid)
                .unwrap()
                .dns_nameservers,
            vec!["1.1.1.1", "9.9.9.9"]
        );

        // A subnet with a user's address is in use; the metadata port's does not count.
        c.fails(
            "DELETE",
            &format!("/v2.0/subnets/{sid}"),
            &alice,
            None,
            409,
            "SubnetInUse",
        )
        .await;
        c.ok(
            "DELETE",
            &format!("/v2.0/subnets/{}", id(&s2)),
            &alice,
            None,
            204,
        )
        .await;
        let meta_port = c
            .ok("GET", &format!("/v2.0/ports/{meta}"), &alice, None, 200)
            .await["port"]
            .clone();
        assert!(meta_port["fixed_ips"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["subnet_id"] != id(&s2).as_str()));
        c.ok(
            "DELETE",
            &format!("/v2.0/ports/{}", id(&p)),
            &alice,
            None,
            204,
        )
        .await;
        c.ok("DELETE", &format!("/v2.0/subnets/{sid}"), &alice, None, 204)
            .await;
        c.ok(
            "DELETE",
            &format!("/v2.0/subnets/{}", id(&s6)),
            &alice,
            None,
            204,
        )
        .await;
        let left = c
            .ok(
                "GET",
                &format!("/v2.0/ports?network_id={nid}"),
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(
            left["ports"],
            json!([]),
            "no DHCP subnet left, no metadata port"
        );
    }
}

#[tokio::test]
async fn ports_ipam_bindings_and_port_security() {
    for c in clouds().await {
        let (admin, alice, bob) = c.users().await;
        let n = c.network(&alice, json!({"name": "n"})).await;
        let nid = id(&n);
        let s = c.subnet(&alice, json!({"network_id": nid, "ip_version": 4, "cidr": "10.0.0.0/29", "enable_dhcp": false})).await;
        let sid = id(&s);
        let p = c
            .port(&alice, json!({"network_id": nid, "name": "p1"}))
            .await;
        assert!(p["mac_address"].as_str().unwrap().starts_with("fa:16:3e:"));
        assert_eq!(
            p["fixed_ips"],
            json!([{"subnet_id": sid, "ip_address": "10.0.0.2"}])
        );
        assert_eq!(p["status"], "DOWN");
        assert_eq!(p["admin_state_up"], true);
        assert_eq!(p["binding:vnic_type"], "normal");
        assert_eq!(p["ip_allocation"], "immediate");
        assert_eq!(p["port_security_enabled"], true);
        assert!(
            p.get("binding:host_id").is_none(),
            "binding details are for admins: {p}"
        );
        let groups = c
            .ok(
                "GET",
                "/v2.0/security-groups?name=default",
                &alice,
                None,
                200,
            )
            .await["security_groups"]
            .clone();
        assert_eq!(
            p["security_groups"],
            json!([groups[0]["id"]]),
            "the project's default group"
        );
        let pid = id(&p);

        // A chosen address, taken; outside the subnet; exhaustion of the /29 (.2 to .6).
        let q = c
            .port(
                &alice,
                json!({"network_id": nid, "fixed_ips": [{"ip_address": "10.0.0.5"}]}),
            )
            .await;
        assert_eq!(q["fixed_ips"][0]["ip_address"], "10.0.0.5");
        c.fails(
            "POST",
            "/v2.0/ports",
            &alice,
            Some(json!({"port": {"network_id": nid, "fixed_ips": [{"ip_address": "10.0.0.5"}]}})),
            409,
            "IpAddressAlreadyAllocated",
        )
        .await;
        c.fails("POST", "/v2.0/ports", &alice, Some(json!({"port": {"network_id": nid, "fixed_ips": [{"subnet_id": sid, "ip_address": "10.9.0.5"}]}})), 400, "InvalidIpForSubnet").await;
        c.fails(
            "POST",
            "/v2.0/ports",
            &alice,
            Some(json!({"port": {"network_id": nid, "fixed_ips": [{"ip_address": "10.9.0.5"}]}})),
            400,
            "InvalidIpForNetwork",
        )
        .await;
        for _ in 0..3 {
            c.port(&alice, json!({"network_id": nid})).await;
        }
        c.fails(
            "POST",
            "/v2.0/ports",
            &alice,
            Some(json!({"port": {"network_id": nid}})),
            409,
            "IpAddressGenerationFailure",
        )
        .await;
        // A port may have no address at all.
        let bare = c
            .port(&alice, json!({"network_id": nid, "fixed_ips": []}))
            .await;
        assert_eq!(bare["fixed_ips"], json!([]));
        // MAC addresses are unique per network.
        let mac = p["mac_address"].as_str().unwrap();
        c.fails("POST", "/v2.0/ports", &admin, Some(json!({"port": {"network_id": nid, "mac_address": mac, "fixed_ips": [], "project_id": alice.project}})), 409, "MacAddressInUse").await;

        // On a shared network, only its owner gives ports to the network itself.
        let shared = c
            .network(&admin, json!({"name": "shared", "shared": true}))
            .await;
        c.subnet(&admin, json!({"network_id": id(&shared), "ip_version": 4, "cidr": "10.99.0.0/24", "enable_dhcp": false})).await;
        c.fails("POST", "/v2.0/ports", &bob, Some(json!({"port": {"network_id": id(&shared), "device_owner": "network:router_interface"}})), 403, "PolicyNotAuthorized").await;
        let theirs = c
            .port(
                &bob,
                json!({"network_id": id(&shared), "device_owner": "compute:nova"}),
            )
            .await;
        c.fails(
            "PUT",
            &format!("/v2.0/ports/{}", id(&theirs)),
            &bob,
            Some(json!({"port": {"device_owner": "network:dhcp"}})),
            403,
            "PolicyNotAuthorized",
        )
        .await;
        c.ok(
            "DELETE",
            &format!("/v2.0/ports/{}", id(&theirs)),
            &bob,
            None,
            204,
        )
        .await;
        // Cross-project: invisible.
        c.fails(
            "GET",
            &format!("/v2.0/ports/{pid}"),
            &bob,
            None,
            404,
            "PortNotFound",
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/ports",
            &bob,
            Some(json!({"port": {"network_id": nid}})),
            404,
            "NetworkNotFound",
        )
        .await;
        c.fails(
            "PUT",
            &format!("/v2.0/ports/{pid}"),
            &alice,
            Some(json!({"port": {"binding:host_id": "h1"}})),
            403,
            "PolicyNotAuthorized",
        )
        .await;

        // Binding (admin): vif type and details as ML2/OVN gives them.
        let b = c.ok("PUT", &format!("/v2.0/ports/{pid}"), &admin, Some(json!({"port": {"binding:host_id": "compute-1", "device_id": "vm-1", "device_owner": "compute:nova"}})), 200).await["port"].clone();
        assert_eq!(b["binding:host_id"], "compute-1");
        assert_eq!(b["binding:vif_type"], "ovs");
        assert_eq!(b["binding:vif_details"]["port_filter"], true);
        assert_eq!(b["binding:vif_details"]["connectivity"], "l2");
        assert_eq!(b["revision_number"], 2);
        assert_eq!(c.backend.port(&pid).unwrap().port.host, "compute-1");
        c.fails(
            "PUT",
            &format!("/v2.0/ports/{pid}"),
            &admin,
            Some(json!({"port": {"mac_address": "fa:16:3e:00:00:01"}})),
            409,
            "PortBound",
        )
        .await;
        // The backend reports the port up.
        c.network.set_port_status(&pid, true).await.unwrap();
        let got = c
            .ok("GET", &format!("/v2.0/ports/{pid}"), &alice, None, 200)
            .await["port"]
            .clone();
        assert_eq!(got["status"], "ACTIVE");

        // Port security: groups need it, address pairs need it.
        let ps = c
            .port(
                &alice,
                json!({"network_id": nid, "fixed_ips": [], "port_security_enabled": false}),
            )
            .await;
        assert_eq!(ps["security_groups"], json!([]));
        c.fails("POST", "/v2.0/ports", &alice, Some(json!({"port": {"network_id": nid, "fixed_ips": [], "port_security_enabled": false, "security_groups": [groups[0]["id"]]}})), 400, "PortSecurityAndIPRequiredForSecurityGroups").await;
        c.fails(
            "PUT",
            &format!("/v2.0/ports/{pid}"),
            &alice,
            Some(json!({"port": {"port_security_enabled": false}})),
            409,
            "PortSecurityPortHasSecurityGroup",
        )
        .await;
        let off = c
            .ok(
                "PUT",
                &format!("/v2.0/ports/{pid}"),
                &alice,
                Some(json!({"port": {"port_security_enabled": false, "security_groups": []}})),
                200,
            )
            .await["port"]
            .clone();
        assert_eq!(off["port_security_enabled"], false);
        assert_eq!(off["security_groups"], json!([]));
        c.fails(
            "PUT",
            &format!("/v2.0/ports/{pid}"),
            &alice,
            Some(json!({"port": {"allowed_address_pairs": [{"ip_address": "10.0.0.100"}]}})),
            409,
            "AddressPairAndPortSecurityRequired",
        )
        .await;
        let pairs = c.ok("PUT", &format!("/v2.0/ports/{}", id(&q)), &alice, Some(json!({"port": {"allowed_address_pairs": [{"ip_address": "10.0.0.0/28"}], "extra_dhcp_opts": [{"opt_name": "bootfile-name", "opt_value": "pxelinux.0"}]}})), 200).await["port"].clone();
        assert_eq!(
            pairs["allowed_address_pairs"],
            json!([{"ip_address": "10.0.0.0/28", "mac_address": q["mac_address"]}])
        );
        assert_eq!(
            pairs["extra_dhcp_opts"],
            json!([{"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4}])
        );
        c.fails("POST", "/v2.0/ports", &alice, Some(json!({"port": {"network_id": nid, "security_groups": ["00000000-0000-0000-0000-000000000000"]}})), 404, "SecurityGroupNotFound").await;

        // Changing addresses: keep one, move to a freed one.
        c.ok(
            "DELETE",
            &format!("/v2.0/ports/{}", id(&bare)),
            &alice,
            None,
            204,
        )
        .await;
        let moved = c
            .ok(
                "PUT",
                &format!("/v2.0/ports/{pid}"),
                &admin,
                Some(
                    json!({"port": {"fixed_ips": [{"subnet_id": sid, "ip_address": "10.0.0.2"}]}}),
                ),
                200,
            )
            .await["port"]
            .clone();
        assert_eq!(
            moved["fixed_ips"],
            json!([{"subnet_id": sid, "ip_address": "10.0.0.2"}])
        );

        // Filters over ports: by address, by device.
        let v = c
            .ok(
                "GET",
                "/v2.0/ports?fixed_ips=ip_address%3D10.0.0.5",
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(v["ports"].as_array().unwrap().len(), 1);
        assert_eq!(v["ports"][0]["id"], id(&q).as_str());
        let v = c
            .ok("GET", "/v2.0/ports?device_id=vm-1", &alice, None, 200)
            .await;
        assert_eq!(v["ports"][0]["id"], pid.as_str());
    }
}

#[tokio::test]
async fn concurrent_port_creates_get_distinct_addresses() {
    for c in clouds().await {
        let (_, alice, _) = c.users().await;
        let n = c.network(&alice, json!({"name": "busy"})).await;
        let nid = id(&n);
        c.subnet(&alice, json!({"network_id": nid, "ip_version": 4, "cidr": "10.20.0.0/26", "enable_dhcp": false})).await;
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let router = c.router.clone();
            let token = alice.token.clone();
            let body = json!({"port": {"network_id": nid}}).to_string();
            tasks.push(tokio::spawn(async move {
                use tower::ServiceExt;
                let req = axum::http::Request::builder()
                    .method("POST")
                    .uri("/v2.0/ports")
                    .header("x-auth-token", token)
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(body))
                    .unwrap();
                let resp = router.oneshot(req).await.unwrap();
                let status = resp.status();
                let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                    .await
                    .unwrap();
                (status, serde_json::from_slice::<Value>(&bytes).unwrap())
            }));
        }
        let mut ips = HashSet::new();
        let mut macs = HashSet::new();
        for t in tasks {
            let (status, v) = t.await.unwrap();
            assert_eq!(status.as_u16(), 201, "{v}");
            ips.insert(
                v["port"]["fixed_ips"][0]["ip_address"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
            macs.insert(v["port"]["mac_address"].as_str().unwrap().to_string());
        }
        assert_eq!(ips.len(), 50, "every port got its own address");
        assert_eq!(macs.len(), 50);
        // .2 to .62 (the network, gateway and broadcast addresses left out): 61, 11 left.
        for _ in 0..11 {
            c.port(&alice, json!({"network_id": nid})).await;
        }
        c.fails(
            "POST",
            "/v2.0/ports",
            &alice,
            Some(json!({"port": {"network_id": nid}})),
            409,
            "IpAddressGenerationFailure",
        )
        .await;
    }
}

#[tokio::test]
async fn security_groups_and_rules() {
    for c in clouds().await {
        let (admin, alice, bob) = c.users().await;
        // The default group appears on first list, with Neutron's four rules.
        let list = c
            .ok("GET", "/v2.0/security-groups", &alice, None, 200)
            .await["security_groups"]
            .clone();
        assert_eq!(list.as_array().unwrap().len(), 1);
        let default = list[0].clone();
        assert_eq!(default["name"], "default");
        assert_eq!(default["stateful"], true);
        let rules = default["security_group_rules"].as_array().unwrap();
        assert_eq!(rules.len(), 4);
        let did = id(&default);
        for ethertype in ["IPv4", "IPv6"] {
            assert!(rules.iter().any(|r| r["direction"] == "ingress"
                && r["ethertype"] == ethertype
                && r["remote_group_id"] == did.as_str()));
            assert!(rules.iter().any(|r| r["direction"] == "egress"
                && r["ethertype"] == ethertype
                && r["remote_group_id"].is_null()
                && r["protocol"].is_null()));
        }
        // Listing again makes no second default group.
        let again = c
            .ok("GET", "/v2.0/security-groups", &alice, None, 200)
            .await;
        assert_eq!(again["security_groups"].as_array().unwrap().len(), 1);
        c.fails(
            "DELETE",
            &format!("/v2.0/security-groups/{did}"),
            &alice,
            None,
            409,
            "SecurityGroupCannotRemoveDefault",
        )
        .await;
        c.fails(
            "PUT",
            &format!("/v2.0/security-groups/{did}"),
            &alice,
            Some(json!({"security_group": {"name": "other"}})),
            409,
            "SecurityGroupCannotUpdateDefault",
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/security-groups",
            &alice,
            Some(json!({"security_group": {"name": "default"}})),
            409,
            "SecurityGroupDefaultAlreadyExists",
        )
        .await;

        let g = c
            .ok(
                "POST",
                "/v2.0/security-groups",
                &alice,
                Some(json!({"security_group": {"name": "web", "description": "http"}})),
                201,
            )
            .await["security_group"]
            .clone();
        let gid = id(&g);
        assert_eq!(
            g["security_group_rules"].as_array().unwrap().len(),
            2,
            "new groups let everything out"
        );
        c.fails(
            "GET",
            &format!("/v2.0/security-groups/{gid}"),
            &bob,
            None,
            404,
            "SecurityGroupNotFound",
        )
        .await;

        let rule = |body: Value| json!({"security_group_rule": body});
        let r = c.ok("POST", "/v2.0/security-group-rules", &alice, Some(rule(json!({"security_group_id": gid, "direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"}))), 201).await["security_group_rule"].clone();
        assert_eq!(r["ethertype"], "IPv4");
        assert_eq!(r["protocol"], "tcp");
        assert_eq!(r["remote_address_group_id"], Value::Null);
        assert_eq!(r["project_id"], alice.project.as_str());
        c.fails("POST", "/v2.0/security-group-rules", &alice, Some(rule(json!({"security_group_id": gid, "direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"}))), 409, "SecurityGroupRuleExists").await;
        // The prefix is kept as written (host bits and all), its network is normalized_cidr,
        // and duplicates are told apart by the network.
        let hosty = c.ok("POST", "/v2.0/security-group-rules", &alice, Some(rule(json!({"security_group_id": gid, "direction": "ingress", "protocol": "udp", "remote_ip_prefix": "10.2.3.124/24"}))), 201).await["security_group_rule"].clone();
        assert_eq!(hosty["remote_ip_prefix"], "10.2.3.124/24");
        assert_eq!(hosty["normalized_cidr"], "10.2.3.0/24");
        c.fails("POST", "/v2.0/security-group-rules", &alice, Some(rule(json!({"security_group_id": gid, "direction": "ingress", "protocol": "udp", "remote_ip_prefix": "10.2.3.0/24"}))), 409, "SecurityGroupRuleExists").await;
        let bare = c.ok("POST", "/v2.0/security-group-rules", &alice, Some(rule(json!({"security_group_id": gid, "direction": "ingress", "protocol": "udp", "remote_ip_prefix": "10.9.9.9"}))), 201).await["security_group_rule"].clone();
        assert_eq!(bare["remote_ip_prefix"], "10.9.9.9/32");
        for r in [&hosty, &bare] {
            let path = format!("/v2.0/security-group-rules/{}", r["id"].as_str().unwrap());
            c.ok("DELETE", &path, &alice, None, 204).await;
        }
        c.fails("POST", "/v2.0/security-group-rules", &alice, Some(rule(json!({"security_group_id": gid, "direction": "ingress", "protocol": "tcp", "port_range_min": 90, "port_range_max": 80}))), 400, "SecurityGroupInvalidPortRange").await;
        c.fails("POST", "/v2.0/security-group-rules", &alice, Some(rule(json!({"security_group_id": gid, "direction": "ingress", "protocol": "tcp", "port_range_min": 0, "port_range_max": 80}))), 400, "SecurityGroupInvalidPortValue").await;
        c.fails("POST", "/v2.0/security-group-rules", &alice, Some(rule(json!({"security_group_id": gid, "direction": "ingress", "protocol": "icmp", "port_range_min": 300}))), 400, "SecurityGroupInvalidIcmpValue").await;
        c.fails("POST", "/v2.0/security-group-rules", &alice, Some(rule(json!({"security_group_id": gid, "direction": "ingress", "protocol": "gre", "port_range_min": 1, "port_range_max": 2}))), 400, "SecurityGroupInvalidProtocolForPortRange").await;
        c.fails("POST", "/v2.0/security-group-rules", &alice, Some(rule(json!({"security_group_id": gid, "direction": "ingress", "protocol": "carrier-pigeon"}))), 400, "SecurityGroupRuleInvalidProtocol").await;
        c.fails("POST", "/v2.0/security-group-rules", &alice, Some(rule(json!({"security_group_id": gid, "direction": "ingress", "remote_ip_prefix": "10.0.0.0/8", "remote_group_id": did}))), 400, "SecurityGroupRemoteGroupAndRemoteIpPrefix").await;
        c.fails("POST", "/v2.0/security-group-rules", &alice, Some(rule(json!({"security_group_id": gid, "direction": "ingress", "ethertype": "IPv4", "remote_ip_prefix": "::/0"}))), 400, "SecurityGroupRuleParameterConflict").await;
        c.fails(
            "POST",
            "/v2.0/security-group-rules",
            &alice,
            Some(rule(
                json!({"security_group_id": gid, "direction": "sideways"}),
            )),
            400,
            "HTTPBadRequest",
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/security-group-rules",
            &bob,
            Some(rule(
                json!({"security_group_id": gid, "direction": "ingress"}),
            )),
            404,
            "SecurityGroupNotFound",
        )
        .await;
        let icmp = c.ok("POST", "/v2.0/security-group-rules", &alice, Some(rule(json!({"security_group_id": gid, "direction": "ingress", "protocol": "1", "port_range_min": 8, "port_range_max": 0}))), 201).await["security_group_rule"].clone();
        assert_eq!(icmp["protocol"], "1");
        let v6 = c.ok("POST", "/v2.0/security-group-rules", &alice, Some(rule(json!({"security_group_id": gid, "direction": "ingress", "ethertype": "IPv6", "protocol": "ipv6-icmp", "remote_group_id": gid}))), 201).await["security_group_rule"].clone();
        assert_eq!(v6["remote_group_id"], gid.as_str());

        let state = c.backend.security_group(&gid).unwrap();
        assert_eq!(state.rules.len(), 5);
        let shown = c
            .ok(
                "GET",
                &format!("/v2.0/security-groups/{gid}"),
                &alice,
                None,
                200,
            )
            .await["security_group"]
            .clone();
        assert!(
            shown["revision_number"].as_i64().unwrap() >= 4,
            "rules bump their group: {shown}"
        );
        let rl = c
            .ok(
                "GET",
                &format!("/v2.0/security-group-rules?security_group_id={gid}&protocol=tcp"),
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(rl["security_group_rules"].as_array().unwrap().len(), 1);
        c.ok(
            "DELETE",
            &format!("/v2.0/security-group-rules/{}", id(&icmp)),
            &alice,
            None,
            204,
        )
        .await;
        c.fails(
            "GET",
            &format!("/v2.0/security-group-rules/{}", id(&icmp)),
            &alice,
            None,
            404,
            "SecurityGroupRuleNotFound",
        )
        .await;
        assert_eq!(c.backend.security_group(&gid).unwrap().rules.len(), 4);

        // A group in use cannot go.
        let n = c.network(&alice, json!({"name": "n"})).await;
        let p = c
            .port(
                &alice,
                json!({"network_id": id(&n), "security_groups": [gid]}),
            )
            .await;
        assert_eq!(p["security_groups"], json!([gid]));
        assert_eq!(
            c.backend.port(&id(&p)).unwrap().security_group_ids,
            vec![gid.clone()]
        );
        c.fails(
            "DELETE",
            &format!("/v2.0/security-groups/{gid}"),
            &alice,
            None,
            409,
            "SecurityGroupInUse",
        )
        .await;
        c.ok(
            "DELETE",
            &format!("/v2.0/ports/{}", id(&p)),
            &alice,
            None,
            204,
        )
        .await;
        let upd = c
            .ok(
                "PUT",
                &format!("/v2.0/security-groups/{gid}"),
                &alice,
                Some(json!({"security_group": {"name": "www", "stateful": false}})),
                200,
            )
            .await["security_group"]
            .clone();
        assert_eq!(upd["stateful"], false);
        c.ok(
            "DELETE",
            &format!("/v2.0/security-groups/{gid}"),
            &alice,
            None,
            204,
        )
        .await;
        assert!(c.backend.security_group(&gid).is_none());
        // An administrator may remove a default group.
        c.ok(
            "DELETE",
            &format!("/v2.0/security-groups/{did}"),
            &admin,
            None,
            204,
        )
        .await;
        let all = c
            .ok("GET", "/v2.0/security-groups", &admin, None, 200)
            .await;
        assert!(all["security_groups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["id"] != did.as_str()));
    }
}

#[tokio::test]
async fn compute_facing_api() {
    for c in clouds().await {
        let (admin, alice, bob) = c.users().await;
        let mine = c.network(&alice, json!({"name": "mine"})).await;
        let s = c.subnet(&alice, json!({"network_id": id(&mine), "ip_version": 4, "cidr": "10.7.0.0/24", "dns_nameservers": ["10.7.0.53"]})).await;
        let shared = c
            .network(&admin, json!({"name": "shared", "shared": true}))
            .await;
        let external = c
            .network(&admin, json!({"name": "ext", "router:external": true}))
            .await;
        c.network(&bob, json!({"name": "theirs"})).await;

        let usable: Vec<String> = c
            .network
            .networks_for_project(&alice.project, false)
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.name)
            .collect();
        assert!(
            usable.contains(&"mine".to_string()) && usable.contains(&"shared".to_string()),
            "{usable:?}"
        );
        assert!(
            !usable.contains(&"ext".to_string()) && !usable.contains(&"theirs".to_string()),
            "{usable:?}"
        );
        let with_ext = c
            .network
            .networks_for_project(&alice.project, true)
            .await
            .unwrap();
        assert!(with_ext.iter().any(|n| n.id == id(&external)));
        assert_eq!(
            c.network
                .get_network_internal(&id(&shared))
                .await
                .unwrap()
                .name,
            "shared"
        );

        let port = c
            .network
            .create_port_internal(
                &alice.project,
                PortCreate {
                    network_id: id(&mine),
                    device_id: "server-1".into(),
                    device_owner: "compute:nova".into(),
                    host: Some("compute-1".into()),
                    security_groups: Some(vec!["default".into()]),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(port.host, "compute-1");
        assert_eq!(port.fixed_ips.len(), 1);
        assert_eq!(
            c.network.ports_of_device("server-1").await.unwrap().len(),
            1
        );
        let view = c.network.port_view(&port.id).await.unwrap();
        assert_eq!(view.network_name, "mine");
        assert_eq!(view.network_mtu, 1442);
        assert_eq!(view.addresses[0].cidr, "10.7.0.0/24");
        assert_eq!(view.addresses[0].gateway_ip.as_deref(), Some("10.7.0.1"));
        assert_eq!(view.addresses[0].dns_nameservers, vec!["10.7.0.53"]);
        assert_eq!(view.addresses[0].subnet_id, id(&s));

        // A user's port handed to a server is bound, and unbound when the server goes.
        let up = c
            .port(
                &alice,
                json!({"network_id": id(&mine), "fixed_ips": [{"ip_address": "10.7.0.50"}]}),
            )
            .await;
        let bound = c
            .network
            .bind_port(&id(&up), "server-2", "compute:nova", "compute-1")
            .await
            .unwrap();
        assert_eq!(bound.device_id, "server-2");
        let again = c
            .network
            .bind_port(&id(&up), "server-2", "compute:nova", "compute-1")
            .await
            .unwrap();
        assert_eq!(
            again.revision_number, bound.revision_number,
            "binding twice changes nothing"
        );
        let e = c
            .network
            .bind_port(&id(&up), "server-3", "compute:nova", "compute-1")
            .await
            .unwrap_err();
        assert_eq!(e.kind, "PortInUse");
        c.network.set_port_status(&id(&up), true).await.unwrap();
        let unbound = c.network.unbind_port(&id(&up)).await.unwrap();
        assert!(unbound.device_id.is_empty() && unbound.host.is_empty());
        assert_eq!(unbound.status, "DOWN");
        assert_eq!(c.backend.port(&id(&up)).unwrap().port.host, "");

        // A chosen address, and deletion that may be repeated.
        let fixed = c
            .network
            .create_port_internal(
                &alice.project,
                PortCreate {
                    network_id: id(&mine),
                    fixed_ips: vec![IpRequest {
                        subnet_id: None,
                        ip_address: Some("10.7.0.60".into()),
                    }],
                    device_id: "server-4".into(),
                    device_owner: "compute:nova".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(fixed.fixed_ips[0].ip_address, "10.7.0.60");
        let e = c
            .network
            .create_port_internal(
                &alice.project,
                PortCreate {
                    network_id: id(&mine),
                    security_groups: Some(vec!["nope".into()]),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind, "SecurityGroupNotFound");
        c.network.delete_port_internal(&port.id).await.unwrap();
        c.network.delete_port_internal(&port.id).await.unwrap();
        assert!(c.network.get_port_internal(&port.id).await.is_err());
        assert!(c.backend.port(&port.id).is_none());
    }
}

#[tokio::test]
async fn default_security_group_rules_template() {
    for c in clouds().await {
        let (admin, alice, bob) = c.users().await;
        let t = c
            .ok(
                "GET",
                "/v2.0/default-security-group-rules",
                &alice,
                None,
                200,
            )
            .await["default_security_group_rules"]
            .clone();
        let t = t.as_array().unwrap();
        assert_eq!(t.len(), 4, "Neutron's template: {t:?}");
        assert!(t.iter().any(|r| r["direction"] == "ingress"
            && r["remote_group_id"] == "PARENT"
            && r["used_in_default_sg"] == true
            && r["used_in_non_default_sg"] == false));
        let rule = json!({"default_security_group_rule": {"direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0", "used_in_default_sg": true, "used_in_non_default_sg": true}});
        c.fails(
            "POST",
            "/v2.0/default-security-group-rules",
            &alice,
            Some(rule.clone()),
            403,
            "PolicyNotAuthorized",
        )
        .await;
        let made = c
            .ok(
                "POST",
                "/v2.0/default-security-group-rules",
                &admin,
                Some(rule.clone()),
                201,
            )
            .await["default_security_group_rule"]
            .clone();
        c.fails(
            "POST",
            "/v2.0/default-security-group-rules",
            &admin,
            Some(rule),
            409,
            "DefaultSecurityGroupRuleExists",
        )
        .await;
        c.fails("POST", "/v2.0/default-security-group-rules", &admin, Some(json!({"default_security_group_rule": {"direction": "ingress", "remote_group_id": "00000000-0000-0000-0000-000000000000"}})), 400, "HTTPBadRequest").await;
        // New groups, default or not, start with the template's rules.
        let groups =
            c.ok("GET", "/v2.0/security-groups", &bob, None, 200).await["security_groups"].clone();
        let rules = groups[0]["security_group_rules"].as_array().unwrap();
        assert_eq!(rules.len(), 5);
        assert!(rules
            .iter()
            .any(|r| r["port_range_min"] == 22 && r["remote_ip_prefix"] == "0.0.0.0/0"));
        assert!(
            rules
                .iter()
                .any(|r| r["remote_group_id"] == groups[0]["id"]),
            "PARENT is the group itself"
        );
        let g = c
            .ok(
                "POST",
                "/v2.0/security-groups",
                &alice,
                Some(json!({"security_group": {"name": "web"}})),
                201,
            )
            .await["security_group"]
            .clone();
        assert_eq!(
            g["security_group_rules"].as_array().unwrap().len(),
            3,
            "two egress rules and the new one"
        );
        c.ok(
            "GET",
            &format!("/v2.0/default-security-group-rules/{}", id(&made)),
            &alice,
            None,
            200,
        )
        .await;
        c.ok(
            "DELETE",
            &format!("/v2.0/default-security-group-rules/{}", id(&made)),
            &admin,
            None,
            204,
        )
        .await;
        c.fails(
            "GET",
            &format!("/v2.0/default-security-group-rules/{}", id(&made)),
            &alice,
            None,
            404,
            "DefaultSecurityGroupRuleNotFound",
        )
        .await;
    }
}

#[tokio::test]
async fn concurrent_dhcp_subnets_share_one_metadata_port() {
    for c in clouds().await {
        let (_, alice, _) = c.users().await;
        let n = c.network(&alice, json!({"name": "meta"})).await;
        let nid = id(&n);
        let mut tasks = Vec::new();
        for i in 0..5 {
            let router = c.router.clone();
            let token = alice.token.clone();
            let body = json!({"subnet": {"network_id": nid, "ip_version": 4, "cidr": format!("10.50.{i}.0/24")}}).to_string();
            tasks.push(tokio::spawn(async move {
                use tower::ServiceExt;
                let req = axum::http::Request::builder()
                    .method("POST")
                    .uri("/v2.0/subnets")
                    .header("x-auth-token", token)
                    .body(axum::body::Body::from(body))
                    .unwrap();
                router.oneshot(req).await.unwrap().status().as_u16()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 201);
        }
        let ports = c
            .ok(
                "GET",
                &format!("/v2.0/ports?network_id={nid}&device_owner=network:distributed"),
                &alice,
                None,
                200,
            )
            .await["ports"]
            .clone();
        assert_eq!(ports.as_array().unwrap().len(), 1, "{ports}");
        assert_eq!(
            ports[0]["fixed_ips"].as_array().unwrap().len(),
            5,
            "{ports}"
        );
    }
}
