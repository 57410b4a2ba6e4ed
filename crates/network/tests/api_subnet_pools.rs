//! Subnet pools over HTTP: create with Neutron's prefix length defaults, subnets allocated
//! from a pool (the first free prefix, a chosen CIDR, the default pool), no overlap within
//! a pool, prefix updates that only grow, and a pool in use not deleted.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn subnet_pools_and_allocation() {
    for c in clouds().await {
        let (admin, alice, bob) = c.users().await;
        let p = c.ok("POST", "/v2.0/subnetpools", &alice, Some(json!({"subnetpool": {"name": "pool", "prefixes": ["10.10.0.0/16"], "default_prefixlen": 24}})), 201).await["subnetpool"].clone();
        let pid = id(&p);
        assert_eq!(p["ip_version"], 4);
        assert_eq!(p["min_prefixlen"], 8);
        assert_eq!(p["max_prefixlen"], 32);
        assert_eq!(p["default_prefixlen"], 24);
        assert_eq!(p["shared"], false);
        assert_eq!(p["address_scope_id"], serde_json::Value::Null);
        c.fails(
            "GET",
            &format!("/v2.0/subnetpools/{pid}"),
            &bob,
            None,
            404,
            "SubnetPoolNotFound",
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/subnetpools",
            &alice,
            Some(json!({"subnetpool": {"prefixes": ["10.0.0.0/8"], "shared": true}})),
            403,
            "PolicyNotAuthorized",
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/subnetpools",
            &alice,
            Some(json!({"subnetpool": {"prefixes": ["10.0.0.0/8", "fd00::/8"]}})),
            400,
            "PrefixVersionMismatch",
        )
        .await;
        c.fails("POST", "/v2.0/subnetpools", &alice, Some(json!({"subnetpool": {"prefixes": ["10.0.0.0/8"], "min_prefixlen": 24, "default_prefixlen": 16}})), 400, "IllegalSubnetPoolPrefixBounds").await;

        let n = c.network(&alice, json!({"name": "n"})).await;
        let s1 = c.subnet(&alice, json!({"network_id": id(&n), "ip_version": 4, "subnetpool_id": pid, "enable_dhcp": false})).await;
        assert_eq!(s1["cidr"], "10.10.0.0/24");
        assert_eq!(s1["subnetpool_id"], pid.as_str());
        assert_eq!(s1["gateway_ip"], "10.10.0.1");
        let n2 = c.network(&alice, json!({"name": "n2"})).await;
        let s2 = c.subnet(&alice, json!({"network_id": id(&n2), "ip_version": 4, "subnetpool_id": pid, "prefixlen": 28, "enable_dhcp": false})).await;
        assert_eq!(s2["cidr"], "10.10.1.0/28");
        // A chosen CIDR must be inside the pool and free in it.
        c.fails("POST", "/v2.0/subnets", &alice, Some(json!({"subnet": {"network_id": id(&n2), "ip_version": 4, "subnetpool_id": pid, "cidr": "192.168.0.0/24"}})), 400, "SubnetAllocationError").await;
        let n3 = c.network(&alice, json!({"name": "n3"})).await;
        c.fails("POST", "/v2.0/subnets", &alice, Some(json!({"subnet": {"network_id": id(&n3), "ip_version": 4, "subnetpool_id": pid, "cidr": "10.10.0.128/25"}})), 400, "SubnetAllocationError").await;
        let s3 = c.subnet(&alice, json!({"network_id": id(&n3), "ip_version": 4, "subnetpool_id": pid, "cidr": "10.10.9.0/24", "enable_dhcp": false})).await;
        assert_eq!(s3["cidr"], "10.10.9.0/24");
        c.fails(
            "POST",
            "/v2.0/subnets",
            &alice,
            Some(json!({"subnet": {"network_id": id(&n3), "ip_version": 6, "subnetpool_id": pid}})),
            400,
            "InvalidInput",
        )
        .await;
        c.fails("POST", "/v2.0/subnets", &alice, Some(json!({"subnet": {"network_id": id(&n3), "ip_version": 4, "subnetpool_id": pid, "prefixlen": 4}})), 400, "SubnetAllocationError").await;

        // Prefixes only grow.
        c.fails(
            "PUT",
            &format!("/v2.0/subnetpools/{pid}"),
            &alice,
            Some(json!({"subnetpool": {"prefixes": ["10.20.0.0/16"]}})),
            400,
            "IllegalSubnetPoolPrefixUpdate",
        )
        .await;
        let u = c.ok("PUT", &format!("/v2.0/subnetpools/{pid}"), &alice, Some(json!({"subnetpool": {"prefixes": ["10.10.0.0/16", "10.20.0.0/16"], "name": "bigger"}})), 200).await["subnetpool"].clone();
        assert_eq!(u["prefixes"], json!(["10.10.0.0/16", "10.20.0.0/16"]));
        assert_eq!(u["revision_number"], 2);

        // The default pool of a family, for use_default_subnetpool.
        c.fails("POST", "/v2.0/subnets", &alice, Some(json!({"subnet": {"network_id": id(&n3), "ip_version": 6, "use_default_subnetpool": true}})), 400, "BadRequest").await;
        let v6 = c.ok("POST", "/v2.0/subnetpools", &admin, Some(json!({"subnetpool": {"name": "v6", "prefixes": ["2001:db8::/48"], "is_default": true, "shared": true}})), 201).await["subnetpool"].clone();
        assert_eq!(v6["default_prefixlen"], 64);
        let got = c
            .ok(
                "GET",
                &format!("/v2.0/subnetpools/{}", id(&v6)),
                &bob,
                None,
                200,
            )
            .await;
        assert_eq!(
            got["subnetpool"]["shared"], true,
            "shared pools are visible to all"
        );
        let s6 = c.subnet(&alice, json!({"network_id": id(&n3), "ip_version": 6, "use_default_subnetpool": true, "ipv6_address_mode": "slaac", "ipv6_ra_mode": "slaac"})).await;
        assert_eq!(s6["cidr"], "2001:db8::/64");
        assert_eq!(s6["subnetpool_id"], id(&v6).as_str());

        // In use: not deleted; after its subnets go, it goes.
        c.fails(
            "DELETE",
            &format!("/v2.0/subnetpools/{pid}"),
            &alice,
            None,
            409,
            "SubnetPoolInUse",
        )
        .await;
        for s in [&s1, &s2, &s3] {
            c.ok(
                "DELETE",
                &format!("/v2.0/subnets/{}", id(s)),
                &alice,
                None,
                204,
            )
            .await;
        }
        c.ok(
            "PUT",
            &format!("/v2.0/subnetpools/{pid}/tags/blue"),
            &alice,
            None,
            201,
        )
        .await;
        let l = c
            .ok("GET", "/v2.0/subnetpools?tags=blue", &alice, None, 200)
            .await;
        assert_eq!(l["subnetpools"].as_array().unwrap().len(), 1);
        c.ok(
            "DELETE",
            &format!("/v2.0/subnetpools/{pid}"),
            &alice,
            None,
            204,
        )
        .await;
        c.fails(
            "GET",
            &format!("/v2.0/subnetpools/{pid}"),
            &alice,
            None,
            404,
            "SubnetPoolNotFound",
        )
        .await;
    }
}
