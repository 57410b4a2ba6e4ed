//! Networks over HTTP: versions and extensions, CRUD with Neutron's attributes and error
//! bodies, admin-only attributes, cross-project 404s, sharing, the generic list behaviour
//! (filters, fields, sorting, paging, tags), quotas, and what the backend is told.

mod common;

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn versions_extensions_and_resources() {
    let c = cloud("sqlite::memory:").await;
    let (_, alice, _) = c.users().await;
    let v = c.ok("GET", "/", &alice, None, 200).await;
    assert_eq!(v["versions"][0]["id"], "v2.0");
    assert_eq!(v["versions"][0]["status"], "CURRENT");
    let r = c.ok("GET", "/v2.0", &alice, None, 200).await;
    assert!(r["resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["collection"] == "networks"));
    let e = c.ok("GET", "/v2.0/extensions", &alice, None, 200).await;
    let aliases: Vec<&str> = e["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["alias"].as_str().unwrap())
        .collect();
    for a in [
        "security-group",
        "binding",
        "port-security",
        "external-net",
        "provider",
        "quotas",
        "standard-attr-tag",
        "net-mtu",
        "allowed-address-pairs",
    ] {
        assert!(aliases.contains(&a), "{a} missing from {aliases:?}");
    }
    assert!(aliases.contains(&"router") && aliases.contains(&"extraroute"));
    assert!(!aliases.contains(&"trunk"), "trunks are not implemented");
    let one = c
        .ok("GET", "/v2.0/extensions/binding", &alice, None, 200)
        .await;
    assert_eq!(one["extension"]["name"], "Port Binding");
    c.fails(
        "GET",
        "/v2.0/extensions/nope",
        &alice,
        None,
        404,
        "ExtensionNotFound",
    )
    .await;
    // No token, no answer.
    let anon = User {
        token: "bogus".into(),
        project: String::new(),
    };
    c.fails(
        "GET",
        "/v2.0/networks",
        &anon,
        None,
        401,
        "HTTPUnauthorized",
    )
    .await;
}

#[tokio::test]
async fn network_life_cycle_and_errors() {
    for c in clouds().await {
        let (admin, alice, bob) = c.users().await;
        let n = c
            .network(&alice, json!({"name": "net1", "description": "first"}))
            .await;
        assert_eq!(n["name"], "net1");
        assert_eq!(n["status"], "ACTIVE");
        assert_eq!(n["mtu"], 1442);
        assert_eq!(n["shared"], false);
        assert_eq!(n["router:external"], false);
        assert_eq!(n["port_security_enabled"], true);
        assert_eq!(n["project_id"], alice.project.as_str());
        assert_eq!(n["tenant_id"], alice.project.as_str());
        assert_eq!(n["revision_number"], 1);
        assert_eq!(n["availability_zones"], json!(["nova"]));
        assert!(n["created_at"].as_str().unwrap().ends_with('Z'));
        assert!(
            n.get("provider:network_type").is_none(),
            "provider attributes are for admins: {n}"
        );
        let nid = id(&n);

        // Admins see the segment: a Geneve VNI from the range.
        let seen = c
            .ok("GET", &format!("/v2.0/networks/{nid}"), &admin, None, 200)
            .await["network"]
            .clone();
        assert_eq!(seen["provider:network_type"], "geneve");
        assert!(seen["provider:segmentation_id"].as_i64().unwrap() >= 1);
        assert_eq!(seen["provider:physical_network"], Value::Null);

        // Another project cannot see it: 404, not 403.
        c.fails(
            "GET",
            &format!("/v2.0/networks/{nid}"),
            &bob,
            None,
            404,
            "NetworkNotFound",
        )
        .await;
        c.fails(
            "PUT",
            &format!("/v2.0/networks/{nid}"),
            &bob,
            Some(json!({"network": {"name": "x"}})),
            404,
            "NetworkNotFound",
        )
        .await;
        c.fails(
            "DELETE",
            &format!("/v2.0/networks/{nid}"),
            &bob,
            None,
            404,
            "NetworkNotFound",
        )
        .await;
        let listed = c.ok("GET", "/v2.0/networks", &bob, None, 200).await;
        assert!(listed["networks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["id"] != nid.as_str()));

        // Bad input.
        let e = c
            .fails(
                "POST",
                "/v2.0/networks",
                &alice,
                Some(json!({"network": {"name": "x", "bogus": 1}})),
                400,
                "HTTPBadRequest",
            )
            .await;
        assert_eq!(
            e["NeutronError"]["message"],
            "Unrecognized attribute(s) 'bogus'"
        );
        c.fails(
            "POST",
            "/v2.0/networks",
            &alice,
            Some(json!({"network": {"admin_state_up": "maybe"}})),
            400,
            "HTTPBadRequest",
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/networks",
            &alice,
            Some(json!({"network": {"status": "DOWN"}})),
            400,
            "HTTPBadRequest",
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/networks",
            &alice,
            Some(json!({"net": {}})),
            400,
            "HTTPBadRequest",
        )
        .await;
        c.fails(
            "POST",
            "/v2.0/networks",
            &alice,
            Some(json!({"network": {"mtu": 9000}})),
            400,
            "InvalidInput",
        )
        .await;
        c.fails(
            "GET",
            "/v2.0/networks/00000000-0000-0000-0000-000000000000",
            &alice,
            None,
            404,
            "NetworkNotFound",
        )
        .await;

        // Admin-only attributes: 403 for members.
        c.fails(
            "POST",
            "/v2.0/networks",
            &alice,
            Some(json!({"network": {"shared": true}})),
            403,
            "PolicyNotAuthorized",
        )
        .await;
        c.fails("POST", "/v2.0/networks", &alice, Some(json!({"network": {"provider:network_type": "flat", "provider:physical_network": "public"}})), 403, "PolicyNotAuthorized").await;
        c.fails(
            "PUT",
            &format!("/v2.0/networks/{nid}"),
            &alice,
            Some(json!({"network": {"router:external": true}})),
            403,
            "PolicyNotAuthorized",
        )
        .await;

        // Update bumps the revision and updated_at moves forward.
        let u = c
            .ok(
                "PUT",
                &format!("/v2.0/networks/{nid}"),
                &alice,
                Some(json!({"network": {"name": "renamed", "mtu": 1400, "admin_state_up": false}})),
                200,
            )
            .await["network"]
            .clone();
        assert_eq!(u["name"], "renamed");
        assert_eq!(u["mtu"], 1400);
        assert_eq!(u["admin_state_up"], false);
        assert_eq!(u["revision_number"], 2);
        c.fails(
            "PUT",
            &format!("/v2.0/networks/{nid}"),
            &alice,
            Some(json!({"network": {"id": "x"}})),
            400,
            "HTTPBadRequest",
        )
        .await;

        // The backend was told the desired state after each commit.
        let state = c.backend.network(&nid).expect("backend knows the network");
        assert_eq!(state.network.name, "renamed");
        assert_eq!(state.network.mtu, 1400);
        assert_eq!(state.network.network_type, "geneve");

        // Sharing: bob sees a shared network, but may not change it.
        let shared = c
            .network(&admin, json!({"name": "shared-net", "shared": true}))
            .await;
        let sid = id(&shared);
        let got = c
            .ok("GET", &format!("/v2.0/networks/{sid}"), &bob, None, 200)
            .await["network"]
            .clone();
        assert_eq!(got["shared"], true);
        c.fails(
            "PUT",
            &format!("/v2.0/networks/{sid}"),
            &bob,
            Some(json!({"network": {"name": "mine"}})),
            403,
            "PolicyNotAuthorized",
        )
        .await;

        // Flat provider networks: admins, on a known physical network, once.
        let flat = c.network(&admin, json!({"name": "public", "router:external": true, "provider:network_type": "flat", "provider:physical_network": "public"})).await;
        assert_eq!(flat["provider:network_type"], "flat");
        assert_eq!(flat["mtu"], 1500);
        c.fails("POST", "/v2.0/networks", &admin, Some(json!({"network": {"provider:network_type": "flat", "provider:physical_network": "public"}})), 409, "FlatNetworkInUse").await;
        c.fails("POST", "/v2.0/networks", &admin, Some(json!({"network": {"provider:network_type": "flat", "provider:physical_network": "nowhere"}})), 400, "InvalidInput").await;
        c.fails(
            "POST",
            "/v2.0/networks",
            &admin,
            Some(json!({"network": {"provider:network_type": "vlan"}})),
            400,
            "InvalidInput",
        )
        .await;
        let vni = seen["provider:segmentation_id"].clone();
        c.fails("POST", "/v2.0/networks", &admin, Some(json!({"network": {"provider:network_type": "geneve", "provider:segmentation_id": vni}})), 409, "TunnelIdInUse").await;
        // External networks are visible to everyone.
        let got = c
            .ok(
                "GET",
                &format!("/v2.0/networks/{}", id(&flat)),
                &bob,
                None,
                200,
            )
            .await["network"]
            .clone();
        assert_eq!(got["router:external"], true);

        // A network with a user's port cannot go; its metadata port goes with it.
        c.subnet(
            &alice,
            json!({"network_id": nid, "ip_version": 4, "cidr": "10.1.0.0/24"}),
        )
        .await;
        let p = c.port(&alice, json!({"network_id": nid})).await;
        c.fails(
            "DELETE",
            &format!("/v2.0/networks/{nid}"),
            &alice,
            None,
            409,
            "NetworkInUse",
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
        c.ok(
            "DELETE",
            &format!("/v2.0/networks/{nid}"),
            &alice,
            None,
            204,
        )
        .await;
        c.fails(
            "GET",
            &format!("/v2.0/networks/{nid}"),
            &alice,
            None,
            404,
            "NetworkNotFound",
        )
        .await;
        assert!(
            c.backend.network(&nid).is_none(),
            "the backend was told the network is gone"
        );
        assert!(c
            .backend
            .state()
            .ports
            .values()
            .all(|p| p.port.network_id != nid));
    }
}

fn names(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn lists_filter_select_sort_and_page() {
    for c in clouds().await {
        let (_, alice, _) = c.users().await;
        let mut ids = Vec::new();
        for (i, name) in ["delta", "alpha", "charlie", "bravo", "echo"]
            .iter()
            .enumerate()
        {
            let n = c
                .network(&alice, json!({"name": name, "admin_state_up": i % 2 == 0}))
                .await;
            ids.push(id(&n));
        }
        let v = c
            .ok(
                "GET",
                "/v2.0/networks?name=alpha&name=echo&sort_key=name",
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(names(&v, "networks"), vec!["alpha", "echo"]);
        let v = c
            .ok(
                "GET",
                "/v2.0/networks?admin_state_up=false&sort_key=name&sort_dir=desc",
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(names(&v, "networks"), vec!["bravo", "alpha"]);
        let v = c
            .ok(
                "GET",
                "/v2.0/networks?fields=id&fields=name&name=delta",
                &alice,
                None,
                200,
            )
            .await;
        let only = v["networks"][0].as_object().unwrap();
        assert_eq!(only.len(), 2, "{only:?}");
        let v = c
            .ok(
                "GET",
                &format!("/v2.0/networks/{}?fields=name", ids[0]),
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(v["network"], json!({"name": "delta"}));

        // Paging: two at a time with next and previous links, as Neutron gives them.
        let page1 = c
            .ok(
                "GET",
                "/v2.0/networks?sort_key=name&sort_dir=asc&limit=2",
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(names(&page1, "networks"), vec!["alpha", "bravo"]);
        let links = page1["networks_links"].as_array().unwrap();
        assert_eq!(links.len(), 1);
        assert_eq!(links[0]["rel"], "next");
        let next = links[0]["href"].as_str().unwrap();
        assert!(
            next.starts_with("http://cloud.test/v2.0/networks?"),
            "{next}"
        );
        let path = next.trim_start_matches("http://cloud.test");
        let page2 = c.ok("GET", path, &alice, None, 200).await;
        assert_eq!(names(&page2, "networks"), vec!["charlie", "delta"]);
        let rels: Vec<&str> = page2["networks_links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["rel"].as_str().unwrap())
            .collect();
        assert_eq!(rels, vec!["next", "previous"]);
        let prev = page2["networks_links"][1]["href"]
            .as_str()
            .unwrap()
            .trim_start_matches("http://cloud.test")
            .to_string();
        let back = c.ok("GET", &prev, &alice, None, 200).await;
        assert_eq!(names(&back, "networks"), vec!["alpha", "bravo"]);
        c.fails(
            "GET",
            "/v2.0/networks?sort_key=nope",
            &alice,
            None,
            400,
            "HTTPBadRequest",
        )
        .await;
        c.fails(
            "GET",
            "/v2.0/networks?limit=x",
            &alice,
            None,
            400,
            "HTTPBadRequest",
        )
        .await;

        // Tags: replace, add, check, remove, and the four tag filters.
        let t = c
            .ok(
                "PUT",
                &format!("/v2.0/networks/{}/tags", ids[0]),
                &alice,
                Some(json!({"tags": ["red", "blue"]})),
                200,
            )
            .await;
        assert_eq!(t["tags"], json!(["red", "blue"]));
        c.ok(
            "PUT",
            &format!("/v2.0/networks/{}/tags/green", ids[1]),
            &alice,
            None,
            201,
        )
        .await;
        c.ok(
            "PUT",
            &format!("/v2.0/networks/{}/tags/red", ids[1]),
            &alice,
            None,
            201,
        )
        .await;
        c.ok(
            "GET",
            &format!("/v2.0/networks/{}/tags/green", ids[1]),
            &alice,
            None,
            204,
        )
        .await;
        c.fails(
            "GET",
            &format!("/v2.0/networks/{}/tags/nope", ids[1]),
            &alice,
            None,
            404,
            "TagNotFound",
        )
        .await;
        let v = c
            .ok("GET", "/v2.0/networks?tags=red,blue", &alice, None, 200)
            .await;
        assert_eq!(names(&v, "networks"), vec!["delta"]);
        let v = c
            .ok(
                "GET",
                "/v2.0/networks?tags-any=blue,green&sort_key=name",
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(names(&v, "networks"), vec!["alpha", "delta"]);
        let v = c
            .ok(
                "GET",
                "/v2.0/networks?not-tags=red&sort_key=name",
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(names(&v, "networks"), vec!["bravo", "charlie", "echo"]);
        let v = c
            .ok(
                "GET",
                "/v2.0/networks?not-tags-any=green,blue&sort_key=name",
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(names(&v, "networks"), vec!["bravo", "charlie", "echo"]);
        c.ok(
            "DELETE",
            &format!("/v2.0/networks/{}/tags/red", ids[0]),
            &alice,
            None,
            204,
        )
        .await;
        c.fails(
            "DELETE",
            &format!("/v2.0/networks/{}/tags/red", ids[0]),
            &alice,
            None,
            404,
            "TagNotFound",
        )
        .await;
        c.ok(
            "DELETE",
            &format!("/v2.0/networks/{}/tags", ids[1]),
            &alice,
            None,
            204,
        )
        .await;
        let n = c
            .ok(
                "GET",
                &format!("/v2.0/networks/{}", ids[1]),
                &alice,
                None,
                200,
            )
            .await["network"]
            .clone();
        assert_eq!(n["tags"], json!([]));
        assert!(
            n["revision_number"].as_i64().unwrap() >= 4,
            "every tag change bumps the revision: {n}"
        );
    }
}

#[tokio::test]
async fn quotas_are_shown_changed_and_enforced() {
    for c in clouds().await {
        let (admin, alice, bob) = c.users().await;
        let q = c
            .ok(
                "GET",
                &format!("/v2.0/quotas/{}", alice.project),
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(
            q["quota"],
            json!({"network": 100, "subnet": 100, "port": 500, "security_group": 10, "security_group_rule": 100, "router": 10, "floatingip": 50, "rbac_policy": 10})
        );
        c.fails(
            "GET",
            &format!("/v2.0/quotas/{}", alice.project),
            &bob,
            None,
            403,
            "AdminRequired",
        )
        .await;
        c.fails(
            "PUT",
            &format!("/v2.0/quotas/{}", alice.project),
            &alice,
            Some(json!({"quota": {"network": 1}})),
            403,
            "AdminRequired",
        )
        .await;
        let q = c
            .ok(
                "PUT",
                &format!("/v2.0/quotas/{}", alice.project),
                &admin,
                Some(json!({"quota": {"network": 1, "port": 2}})),
                200,
            )
            .await;
        assert_eq!(q["quota"]["network"], 1);
        c.fails(
            "PUT",
            &format!("/v2.0/quotas/{}", alice.project),
            &admin,
            Some(json!({"quota": {"widgets": 1}})),
            400,
            "HTTPBadRequest",
        )
        .await;
        let all = c.ok("GET", "/v2.0/quotas", &admin, None, 200).await;
        assert_eq!(all["quotas"][0]["project_id"], alice.project.as_str());
        let n = c.network(&alice, json!({"name": "only"})).await;
        c.fails(
            "POST",
            "/v2.0/networks",
            &alice,
            Some(json!({"network": {"name": "two"}})),
            409,
            "OverQuota",
        )
        .await;
        c.subnet(&alice, json!({"network_id": id(&n), "ip_version": 4, "cidr": "10.9.0.0/24", "enable_dhcp": false})).await;
        c.port(&alice, json!({"network_id": id(&n)})).await;
        c.port(&alice, json!({"network_id": id(&n)})).await;
        c.fails(
            "POST",
            "/v2.0/ports",
            &alice,
            Some(json!({"port": {"network_id": id(&n)}})),
            409,
            "OverQuota",
        )
        .await;
        let d = c
            .ok(
                "GET",
                &format!("/v2.0/quotas/{}/details", alice.project),
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(
            d["quota"]["network"],
            json!({"used": 1, "limit": 1, "reserved": 0})
        );
        assert_eq!(d["quota"]["port"]["used"], 2);
        assert_eq!(
            d["quota"]["security_group"]["used"], 1,
            "the default group counts"
        );
        let d = c
            .ok(
                "GET",
                &format!("/v2.0/quotas/{}/default", alice.project),
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(d["quota"]["network"], 100);
        c.ok(
            "DELETE",
            &format!("/v2.0/quotas/{}", alice.project),
            &admin,
            None,
            204,
        )
        .await;
        c.network(&alice, json!({"name": "two"})).await;
    }
}

#[tokio::test]
async fn backend_failures_are_repaired_by_the_reconciler() {
    let c = cloud("sqlite::memory:").await;
    let (_, alice, _) = c.users().await;
    c.backend.set_failing(true);
    // The API answers success although the backend is down.
    let n = c.network(&alice, json!({"name": "while-down"})).await;
    let s = c
        .subnet(
            &alice,
            json!({"network_id": id(&n), "ip_version": 4, "cidr": "10.5.0.0/24"}),
        )
        .await;
    let p = c.port(&alice, json!({"network_id": id(&n)})).await;
    assert!(c.backend.network(&id(&n)).is_none());
    assert!(
        c.network.reconcile().await.is_err(),
        "a failing backend fails the reconciliation"
    );
    c.backend.set_failing(false);
    c.network.reconcile().await.unwrap();
    let st = c.backend.network(&id(&n)).expect("repaired");
    assert_eq!(st.subnets.len(), 1);
    assert_eq!(st.subnets[0].id, id(&s));
    let ps = c.backend.port(&id(&p)).expect("port repaired");
    assert_eq!(ps.network_mtu, 1442);
    assert_eq!(ps.addresses[0].cidr, "10.5.0.0/24");
    assert_eq!(ps.addresses[0].gateway_ip.as_deref(), Some("10.5.0.1"));
    assert_eq!(ps.security_group_ids.len(), 1, "the default group");
    let sg = c
        .backend
        .security_group(&ps.security_group_ids[0])
        .expect("group repaired");
    assert_eq!(sg.rules.len(), 4);
    // Something the database no longer has is removed by a full sync.
    c.backend.set_failing(true);
    c.ok(
        "DELETE",
        &format!("/v2.0/ports/{}", id(&p)),
        &alice,
        None,
        204,
    )
    .await;
    c.backend.set_failing(false);
    assert!(c.backend.port(&id(&p)).is_some());
    c.network.reconcile().await.unwrap();
    assert!(c.backend.port(&id(&p)).is_none());
}

#[tokio::test]
async fn the_reconciler_task_syncs_at_start_and_periodically() {
    let c = cloud_with(
        "sqlite::memory:",
        ferrostack_network::NetworkConfig {
            reconcile_interval: 1,
            ..Default::default()
        },
    )
    .await;
    let (_, alice, _) = c.users().await;
    c.backend.set_failing(true);
    let n = c.network(&alice, json!({"name": "missed"})).await;
    c.backend.set_failing(false);
    let task = c.network.spawn_reconciler();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while c.backend.network(&id(&n)).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the reconciler never ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let runs = |c: &Cloud| {
        c.backend
            .calls()
            .iter()
            .filter(|x| *x == "full_sync")
            .count()
    };
    let first = runs(&c);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(runs(&c) > first, "it runs again every interval");
    task.abort();
}
