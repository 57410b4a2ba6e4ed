//! Network IP availability over HTTP: totals from the allocation pools (the CIDR without
//! pools), used addresses including service ports, the `ip_version` filter, and
//! administrators only.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn network_ip_availability() {
    for c in clouds().await {
        let (admin, alice, _bob) = c.users().await;
        let n = c.network(&alice, json!({"name": "n"})).await;
        let nid = id(&n);
        // DHCP on: the metadata port takes one address.
        let s4 = c
            .subnet(
                &alice,
                json!({"network_id": nid, "ip_version": 4, "cidr": "10.0.0.0/28", "name": "v4"}),
            )
            .await;
        let s6 = c.subnet(&alice, json!({"network_id": nid, "ip_version": 6, "cidr": "fd00::/64", "enable_dhcp": false, "allocation_pools": [{"start": "fd00::10", "end": "fd00::1f"}]})).await;
        c.port(&alice, json!({"network_id": nid, "fixed_ips": [{"subnet_id": id(&s4)}, {"subnet_id": id(&s6)}]}))
            .await;
        let empty = c.network(&alice, json!({"name": "empty"})).await;

        let a = c
            .ok(
                "GET",
                &format!("/v2.0/network-ip-availabilities/{nid}"),
                &admin,
                None,
                200,
            )
            .await["network_ip_availability"]
            .clone();
        assert_eq!(a["network_id"], nid.as_str());
        assert_eq!(a["network_name"], "n");
        assert_eq!(a["project_id"], alice.project.as_str());
        assert_eq!(a["tenant_id"], alice.project.as_str());
        // 10.0.0.2-14 (13) + fd00::10-1f (16).
        assert_eq!(a["total_ips"], 29);
        assert_eq!(a["used_ips"], 3);
        let subs = a["subnet_ip_availability"].as_array().unwrap();
        assert_eq!(subs.len(), 2);
        let v4 = subs.iter().find(|s| s["ip_version"] == 4).unwrap();
        assert_eq!(v4["subnet_id"], id(&s4).as_str());
        assert_eq!(v4["subnet_name"], "v4");
        assert_eq!(v4["cidr"], "10.0.0.0/28");
        assert_eq!(v4["total_ips"], 13);
        assert_eq!(v4["used_ips"], 2);
        let v6 = subs.iter().find(|s| s["ip_version"] == 6).unwrap();
        assert_eq!(v6["total_ips"], 16);
        assert_eq!(v6["used_ips"], 1);

        let e = c
            .ok(
                "GET",
                &format!("/v2.0/network-ip-availabilities/{}", id(&empty)),
                &admin,
                None,
                200,
            )
            .await["network_ip_availability"]
            .clone();
        assert_eq!(e["total_ips"], 0);
        assert_eq!(e["used_ips"], 0);
        assert_eq!(e["subnet_ip_availability"], json!([]));

        let all = c
            .ok("GET", "/v2.0/network-ip-availabilities", &admin, None, 200)
            .await["network_ip_availabilities"]
            .clone();
        assert_eq!(all.as_array().unwrap().len(), 2);
        // ip_version keeps the subnets of that version and drops networks without one.
        let only6 = c
            .ok(
                "GET",
                "/v2.0/network-ip-availabilities?ip_version=6",
                &admin,
                None,
                200,
            )
            .await["network_ip_availabilities"]
            .clone();
        assert_eq!(only6.as_array().unwrap().len(), 1);
        assert_eq!(only6[0]["total_ips"], 16);
        assert_eq!(only6[0]["used_ips"], 1);
        let named = c
            .ok(
                "GET",
                "/v2.0/network-ip-availabilities?network_name=empty&fields=network_id",
                &admin,
                None,
                200,
            )
            .await["network_ip_availabilities"]
            .clone();
        assert_eq!(named, json!([{"network_id": id(&empty)}]));

        // Not for members: an empty list, a network not found.
        let none = c
            .ok("GET", "/v2.0/network-ip-availabilities", &alice, None, 200)
            .await;
        assert_eq!(none["network_ip_availabilities"], json!([]));
        c.fails(
            "GET",
            &format!("/v2.0/network-ip-availabilities/{nid}"),
            &alice,
            None,
            404,
            "NetworkNotFound",
        )
        .await;
        c.fails(
            "GET",
            "/v2.0/network-ip-availabilities/00000000-0000-0000-0000-000000000000",
            &admin,
            None,
            404,
            "NetworkNotFound",
        )
        .await;
        let ext = c
            .ok(
                "GET",
                "/v2.0/extensions/network-ip-availability",
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(ext["extension"]["name"], "Network IP Availability");
    }
}

#[tokio::test]
async fn availability_zones() {
    for c in clouds().await {
        let (_admin, alice, _bob) = c.users().await;
        let v = c
            .ok("GET", "/v2.0/availability_zones", &alice, None, 200)
            .await;
        assert_eq!(
            v["availability_zones"],
            json!([
                {"name": "nova", "resource": "network", "state": "available"},
                {"name": "nova", "resource": "router", "state": "available"}
            ])
        );
        let r = c
            .ok(
                "GET",
                "/v2.0/availability_zones?resource=router&fields=name",
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(r["availability_zones"], json!([{"name": "nova"}]));
        let none = c
            .ok(
                "GET",
                "/v2.0/availability_zones?state=unavailable",
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(none["availability_zones"], json!([]));
        let n = c.network(&alice, json!({"name": "n"})).await;
        assert_eq!(n["availability_zones"], json!(["nova"]));
    }
}
