//! Address scopes over HTTP: the resource with Neutron's attributes and policy (shared only
//! by administrators, never unshared, other projects' private scopes 404), list filters and
//! paging, subnet pools joining a scope (visible, same IP version, no overlapping prefixes),
//! a scope with pools not deleted, and networks reporting the scope of their subnets' pools
//! with one scope (or one pool) per family on a network.

mod common;

use common::*;
use serde_json::{json, Value};

async fn scope(c: &Cloud, who: &User, body: Value) -> Value {
    c.ok(
        "POST",
        "/v2.0/address-scopes",
        who,
        Some(json!({ "address_scope": body })),
        201,
    )
    .await["address_scope"]
        .clone()
}

async fn pool(c: &Cloud, who: &User, body: Value) -> Value {
    c.ok(
        "POST",
        "/v2.0/subnetpools",
        who,
        Some(json!({ "subnetpool": body })),
        201,
    )
    .await["subnetpool"]
        .clone()
}

async fn net(c: &Cloud, who: &User, id: &str) -> Value {
    c.ok("GET", &format!("/v2.0/networks/{id}"), who, None, 200)
        .await["network"]
        .clone()
}

/// The names in a list answer, in its order.
fn names(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

/// The names in a list answer, sorted (lists are in id order, as Neutron's).
fn sorted(list: &Value, key: &str) -> Vec<String> {
    let mut v = names(list, key);
    v.sort();
    v
}

#[tokio::test]
async fn address_scope_resource_and_visibility() {
    for c in clouds().await {
        let (admin, alice, bob) = c.users().await;
        let s4 = scope(&c, &alice, json!({"name": "s4", "ip_version": 4})).await;
        let keys: Vec<&String> = s4.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "id",
                "ip_version",
                "name",
                "project_id",
                "shared",
                "tenant_id"
            ],
            "Neutron's attributes, no standard attributes: {s4}"
        );
        assert_eq!(s4["project_id"], alice.project.as_str());
        assert_eq!(s4["tenant_id"], alice.project.as_str());
        assert_eq!(s4["shared"], false);
        assert_eq!(s4["ip_version"], 4);
        let s4id = id(&s4);
        // `shared: false` is the default, so members may send it; `true` is for admins.
        let quiet = scope(
            &c,
            &alice,
            json!({"name": "quiet", "ip_version": "6", "shared": false}),
        )
        .await;
        assert_eq!(quiet["ip_version"], 6);
        let post = |body: Value| json!({ "address_scope": body });
        c.fails(
            "POST",
            "/v2.0/address-scopes",
            &alice,
            Some(post(json!({"name": "x", "ip_version": 4, "shared": true}))),
            403,
            "PolicyNotAuthorized",
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/address-scopes",
            &alice,
            Some(post(json!({"name": "x"}))),
            400,
            "HTTPBadRequest",
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/address-scopes",
            &alice,
            Some(post(json!({"ip_version": 5}))),
            400,
            "HTTPBadRequest",
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/address-scopes",
            &alice,
            Some(post(json!({"ip_version": 4, "id": "foo"}))),
            400,
            "HTTPBadRequest",
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/address-scopes",
            &alice,
            Some(post(json!({"ip_version": 4, "project_id": bob.project}))),
            403,
            "PolicyNotAuthorized",
        )
        .await;
        let g6 = scope(
            &c,
            &admin,
            json!({"name": "g6", "ip_version": 6, "shared": true}),
        )
        .await;
        let bobs = scope(&c, &bob, json!({"name": "b4", "ip_version": 4})).await;

        // Private scopes are their owner's; shared ones everyone's.
        let path = format!("/v2.0/address-scopes/{s4id}");
        c.fails("GET", &path, &bob, None, 404, "AddressScopeNotFound")
            .await;
        c.fails(
            "PUT",
            &path,
            &bob,
            Some(post(json!({"name": "mine"}))),
            404,
            "AddressScopeNotFound",
        )
        .await;
        c.fails("DELETE", &path, &bob, None, 404, "AddressScopeNotFound")
            .await;
        let got = c
            .ok(
                "GET",
                &format!("/v2.0/address-scopes/{}", id(&g6)),
                &bob,
                None,
                200,
            )
            .await;
        assert_eq!(got["address_scope"]["shared"], true);
        c.fails(
            "DELETE",
            &format!("/v2.0/address-scopes/{}", id(&g6)),
            &bob,
            None,
            403,
            "PolicyNotAuthorized",
        )
        .await;
        let l = c.ok("GET", "/v2.0/address-scopes", &bob, None, 200).await;
        assert_eq!(sorted(&l, "address_scopes"), ["b4", "g6"]);
        let l = c.ok("GET", "/v2.0/address-scopes", &alice, None, 200).await;
        assert_eq!(sorted(&l, "address_scopes"), ["g6", "quiet", "s4"]);
        let l = c.ok("GET", "/v2.0/address-scopes", &admin, None, 200).await;
        assert_eq!(sorted(&l, "address_scopes"), ["b4", "g6", "quiet", "s4"]);

        // Filters, fields, sorting, paging.
        let l = c
            .ok(
                "GET",
                "/v2.0/address-scopes?ip_version=6",
                &admin,
                None,
                200,
            )
            .await;
        assert_eq!(sorted(&l, "address_scopes"), ["g6", "quiet"]);
        let l = c
            .ok(
                "GET",
                "/v2.0/address-scopes?shared=true&fields=name",
                &admin,
                None,
                200,
            )
            .await;
        assert_eq!(l["address_scopes"], json!([{"name": "g6"}]));
        let l = c
            .ok(
                "GET",
                &format!(
                    "/v2.0/address-scopes?project_id={}&sort_key=name&sort_dir=desc",
                    alice.project
                ),
                &admin,
                None,
                200,
            )
            .await;
        assert_eq!(names(&l, "address_scopes"), ["s4", "quiet"]);
        let l = c
            .ok(
                "GET",
                "/v2.0/address-scopes?limit=2&sort_key=name",
                &admin,
                None,
                200,
            )
            .await;
        assert_eq!(names(&l, "address_scopes"), ["b4", "g6"]);
        assert_eq!(l["address_scopes_links"][0]["rel"], "next");
        let l = c
            .ok(
                "GET",
                &format!(
                    "/v2.0/address-scopes?limit=2&sort_key=name&marker={}",
                    id(&g6)
                ),
                &admin,
                None,
                200,
            )
            .await;
        assert_eq!(names(&l, "address_scopes"), ["quiet", "s4"]);

        // Updates: the name by the owner, `shared` by administrators and only to true.
        let u = c
            .ok(
                "PUT",
                &path,
                &alice,
                Some(post(json!({"name": "renamed"}))),
                200,
            )
            .await;
        assert_eq!(u["address_scope"]["name"], "renamed");
        c.fails(
            "PUT",
            &path,
            &alice,
            Some(post(json!({"shared": true}))),
            403,
            "PolicyNotAuthorized",
        )
        .await;
        c.fails(
            "PUT",
            &path,
            &alice,
            Some(post(json!({"ip_version": 6}))),
            400,
            "HTTPBadRequest",
        )
        .await;
        c.fails(
            "PUT",
            &path,
            &alice,
            Some(post(json!({"project_id": bob.project}))),
            400,
            "HTTPBadRequest",
        )
        .await;
        let bpath = format!("/v2.0/address-scopes/{}", id(&bobs));
        let u = c
            .ok(
                "PUT",
                &bpath,
                &admin,
                Some(post(json!({"shared": true}))),
                200,
            )
            .await;
        assert_eq!(u["address_scope"]["shared"], true);
        c.ok("GET", &bpath, &alice, None, 200).await;
        c.fails(
            "PUT",
            &bpath,
            &admin,
            Some(post(json!({"shared": false}))),
            400,
            "AddressScopeUpdateError",
        )
        .await;

        c.ok("DELETE", &path, &alice, None, 204).await;
        c.fails("GET", &path, &alice, None, 404, "AddressScopeNotFound")
            .await;

        let ext = c
            .ok("GET", "/v2.0/extensions/address-scope", &bob, None, 200)
            .await;
        assert_eq!(ext["extension"]["name"], "Address scope");
    }
}

#[tokio::test]
async fn subnet_pools_in_address_scopes() {
    for c in clouds().await {
        let (admin, alice, bob) = c.users().await;
        let s4 = scope(&c, &alice, json!({"name": "s4", "ip_version": 4})).await;
        let s4id = id(&s4);
        let p1 = pool(
            &c,
            &alice,
            json!({"name": "p1", "prefixes": ["10.10.0.0/16"], "address_scope_id": s4id}),
        )
        .await;
        assert_eq!(p1["address_scope_id"], s4id.as_str());
        let p1id = id(&p1);
        let got = c
            .ok(
                "GET",
                &format!("/v2.0/subnetpools/{p1id}"),
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(got["subnetpool"]["address_scope_id"], s4id.as_str());

        let sp = |body: Value| json!({ "subnetpool": body });
        // The scope must be a UUID, exist, be visible and be of the pool's family.
        c.fails(
            "POST",
            "/v2.0/subnetpools",
            &alice,
            Some(sp(
                json!({"prefixes": ["10.30.0.0/16"], "address_scope_id": "foo-addr-scope-id"}),
            )),
            400,
            "HTTPBadRequest",
        )
        .await;
        c.fails("POST", "/v2.0/subnetpools", &alice, Some(sp(json!({"prefixes": ["10.30.0.0/16"], "address_scope_id": uuid::Uuid::new_v4().to_string()}))), 404, "AddressScopeNotFound").await;
        c.fails(
            "POST",
            "/v2.0/subnetpools",
            &bob,
            Some(sp(
                json!({"prefixes": ["10.30.0.0/16"], "address_scope_id": s4id}),
            )),
            404,
            "AddressScopeNotFound",
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/subnetpools",
            &alice,
            Some(sp(
                json!({"prefixes": ["fd00::/48"], "address_scope_id": s4id}),
            )),
            400,
            "IllegalSubnetPoolIpVersionAssociationToAddressScope",
        )
        .await;

        // Within a scope, prefixes are unique; outside it, anything goes.
        c.fails(
            "POST",
            "/v2.0/subnetpools",
            &alice,
            Some(sp(
                json!({"prefixes": ["10.10.128.0/20"], "address_scope_id": s4id}),
            )),
            409,
            "AddressScopePrefixConflict",
        )
        .await;
        let p2 = pool(
            &c,
            &alice,
            json!({"name": "p2", "prefixes": ["10.20.0.0/16"], "address_scope_id": s4id}),
        )
        .await;
        let p2id = id(&p2);
        c.fails(
            "PUT",
            &format!("/v2.0/subnetpools/{p2id}"),
            &alice,
            Some(sp(json!({"prefixes": ["10.20.0.0/16", "10.10.5.0/24"]}))),
            409,
            "AddressScopePrefixConflict",
        )
        .await;
        let p3 = pool(
            &c,
            &alice,
            json!({"name": "p3", "prefixes": ["10.10.0.0/16"]}),
        )
        .await;
        let p3id = id(&p3);
        assert_eq!(p3["address_scope_id"], Value::Null);
        c.fails(
            "PUT",
            &format!("/v2.0/subnetpools/{p3id}"),
            &alice,
            Some(sp(json!({"address_scope_id": s4id}))),
            409,
            "AddressScopePrefixConflict",
        )
        .await;
        let l = c
            .ok(
                "GET",
                &format!("/v2.0/subnetpools?address_scope_id={s4id}"),
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(sorted(&l, "subnetpools"), ["p1", "p2"]);

        // A scope with pools stays; leaving it is `null`.
        let spath = format!("/v2.0/address-scopes/{s4id}");
        c.fails("DELETE", &spath, &alice, None, 409, "AddressScopeInUse")
            .await;
        for p in [&p1id, &p2id] {
            let u = c
                .ok(
                    "PUT",
                    &format!("/v2.0/subnetpools/{p}"),
                    &alice,
                    Some(sp(json!({"address_scope_id": null}))),
                    200,
                )
                .await;
            assert_eq!(u["subnetpool"]["address_scope_id"], Value::Null);
        }
        let u = c
            .ok(
                "PUT",
                &format!("/v2.0/subnetpools/{p3id}"),
                &alice,
                Some(sp(json!({"address_scope_id": s4id, "name": "p3 scoped"}))),
                200,
            )
            .await;
        assert_eq!(u["subnetpool"]["address_scope_id"], s4id.as_str());
        c.ok(
            "DELETE",
            &format!("/v2.0/subnetpools/{p3id}"),
            &alice,
            None,
            204,
        )
        .await;
        c.ok("DELETE", &spath, &alice, None, 204).await;

        // A shared scope takes other projects' pools, which then only administrators (or the
        // scope's owner) change, as Neutron's IllegalSubnetPoolUpdate.
        let g6 = scope(
            &c,
            &admin,
            json!({"name": "g6", "ip_version": 6, "shared": true}),
        )
        .await;
        let bp = pool(
            &c,
            &bob,
            json!({"name": "bp", "prefixes": ["2001:db8:1::/48"], "address_scope_id": id(&g6)}),
        )
        .await;
        c.fails(
            "PUT",
            &format!("/v2.0/subnetpools/{}", id(&bp)),
            &bob,
            Some(sp(json!({"name": "bp2"}))),
            400,
            "IllegalSubnetPoolUpdate",
        )
        .await;
        let u = c
            .ok(
                "PUT",
                &format!("/v2.0/subnetpools/{}", id(&bp)),
                &admin,
                Some(sp(json!({"name": "bp2"}))),
                200,
            )
            .await;
        assert_eq!(u["subnetpool"]["name"], "bp2");
        c.fails(
            "POST",
            "/v2.0/subnetpools",
            &alice,
            Some(sp(
                json!({"prefixes": ["2001:db8::/32"], "address_scope_id": id(&g6)}),
            )),
            409,
            "AddressScopePrefixConflict",
        )
        .await;
    }
}

#[tokio::test]
async fn networks_report_their_address_scopes() {
    for c in clouds().await {
        let (_admin, alice, _bob) = c.users().await;
        let s4 = scope(&c, &alice, json!({"name": "s4", "ip_version": 4})).await;
        let s6 = scope(&c, &alice, json!({"name": "s6", "ip_version": 6})).await;
        let other = scope(&c, &alice, json!({"name": "other", "ip_version": 4})).await;
        let p1 = pool(&c, &alice, json!({"name": "p1", "prefixes": ["10.10.0.0/16"], "default_prefixlen": 24, "address_scope_id": id(&s4)})).await;
        let p2 = pool(&c, &alice, json!({"name": "p2", "prefixes": ["10.20.0.0/16"], "default_prefixlen": 24, "address_scope_id": id(&s4)})).await;
        let p6 = pool(
            &c,
            &alice,
            json!({"name": "p6", "prefixes": ["fd00:1::/48"], "address_scope_id": id(&s6)}),
        )
        .await;
        let plain = pool(
            &c,
            &alice,
            json!({"name": "plain", "prefixes": ["10.30.0.0/16"], "default_prefixlen": 24}),
        )
        .await;

        let n = c.network(&alice, json!({"name": "n"})).await;
        let nid = id(&n);
        assert_eq!(n["ipv4_address_scope"], Value::Null);
        assert_eq!(n["ipv6_address_scope"], Value::Null);
        c.subnet(
            &alice,
            json!({"network_id": nid, "ip_version": 4, "subnetpool_id": id(&p1)}),
        )
        .await;
        let got = net(&c, &alice, &nid).await;
        assert_eq!(got["ipv4_address_scope"], id(&s4).as_str());
        assert_eq!(got["ipv6_address_scope"], Value::Null);
        c.subnet(&alice, json!({"network_id": nid, "ip_version": 6, "subnetpool_id": id(&p6), "ipv6_address_mode": "slaac", "ipv6_ra_mode": "slaac"})).await;
        let got = net(&c, &alice, &nid).await;
        assert_eq!(got["ipv4_address_scope"], id(&s4).as_str());
        assert_eq!(got["ipv6_address_scope"], id(&s6).as_str());
        let l = c
            .ok(
                "GET",
                &format!("/v2.0/networks?ipv4_address_scope={}", id(&s4)),
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(l["networks"][0]["ipv6_address_scope"], id(&s6).as_str());
        assert_eq!(l["networks"].as_array().unwrap().len(), 1);
        c.fails(
            "PUT",
            &format!("/v2.0/networks/{nid}"),
            &alice,
            Some(json!({"network": {"ipv4_address_scope": null}})),
            400,
            "HTTPBadRequest",
        )
        .await;

        // One scope per family on a network: another pool of the scope may serve it, a pool
        // outside it or no pool may not.
        c.subnet(
            &alice,
            json!({"network_id": nid, "ip_version": 4, "subnetpool_id": id(&p2)}),
        )
        .await;
        let sub = |body: Value| Some(json!({ "subnet": body }));
        c.fails(
            "POST",
            "/v2.0/subnets",
            &alice,
            sub(json!({"network_id": nid, "ip_version": 4, "subnetpool_id": id(&plain)})),
            400,
            "NetworkAddressScopeAffinityError",
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/subnets",
            &alice,
            sub(json!({"network_id": nid, "ip_version": 4, "cidr": "192.168.0.0/24"})),
            400,
            "NetworkSubnetPoolAffinityError",
        )
        .await;
        // Moving p2 to another scope would split the network between two scopes.
        c.fails(
            "PUT",
            &format!("/v2.0/subnetpools/{}", id(&p2)),
            &alice,
            Some(json!({"subnetpool": {"address_scope_id": id(&other)}})),
            400,
            "NetworkAddressScopeAffinityError",
        )
        .await;

        // Without scopes, a network's subnets of a family come from one pool (or none).
        let m = c.network(&alice, json!({"name": "m"})).await;
        let mid = id(&m);
        c.subnet(
            &alice,
            json!({"network_id": mid, "ip_version": 4, "subnetpool_id": id(&plain)}),
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/subnets",
            &alice,
            sub(json!({"network_id": mid, "ip_version": 4, "subnetpool_id": id(&p1)})),
            400,
            "NetworkSubnetPoolAffinityError",
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/subnets",
            &alice,
            sub(json!({"network_id": mid, "ip_version": 4, "cidr": "192.168.0.0/24"})),
            400,
            "NetworkSubnetPoolAffinityError",
        )
        .await;
        c.subnet(
            &alice,
            json!({"network_id": mid, "ip_version": 4, "subnetpool_id": id(&plain)}),
        )
        .await;
        let got = net(&c, &alice, &mid).await;
        assert_eq!(got["ipv4_address_scope"], Value::Null);

        // A pool joining a scope carries its networks into it.
        let u = c
            .ok(
                "PUT",
                &format!("/v2.0/subnetpools/{}", id(&plain)),
                &alice,
                Some(json!({"subnetpool": {"address_scope_id": id(&other)}})),
                200,
            )
            .await;
        assert_eq!(u["subnetpool"]["address_scope_id"], id(&other).as_str());
        let got = net(&c, &alice, &mid).await;
        assert_eq!(got["ipv4_address_scope"], id(&other).as_str());

        // The scope of a network is gone with its last scoped subnet.
        let d = c
            .ok(
                "GET",
                &format!("/v2.0/subnets?network_id={nid}&ip_version=4"),
                &alice,
                None,
                200,
            )
            .await;
        for s in d["subnets"].as_array().unwrap() {
            c.ok(
                "DELETE",
                &format!("/v2.0/subnets/{}", id(s)),
                &alice,
                None,
                204,
            )
            .await;
        }
        let got = net(&c, &alice, &nid).await;
        assert_eq!(got["ipv4_address_scope"], Value::Null);
        assert_eq!(got["ipv6_address_scope"], id(&s6).as_str());
    }
}
