//! Nova's security group API on the Networking service: the `os-security-groups` and
//! `os-security-group-rules` proxy (up to 2.35) with Nova's format and errors, a server's
//! groups and the `addSecurityGroup`/`removeSecurityGroup` actions, and server views showing
//! the groups of the server's ports. Against the in-memory Networking service, and once
//! through the real Networking service (its fake backend) on the cloud's database, where
//! the Neutron adapter's mapping is what is tested.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::Cloud;
use serde_json::{json, Value};

const MV: &str = "2.35";

async fn create_group(c: &Cloud, t: &str, name: &str) -> Value {
    let (st, body, _) = c
        .call(
            "POST",
            "/v2.1/os-security-groups",
            t,
            MV,
            Some(json!({"security_group": {"name": name, "description": format!("{name} group")}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    body["security_group"].clone()
}

async fn list_groups(c: &Cloud, t: &str) -> Vec<Value> {
    let (st, body, _) = c.call("GET", "/v2.1/os-security-groups", t, MV, None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    body["security_groups"].as_array().unwrap().clone()
}

async fn add_rule(c: &Cloud, t: &str, rule: Value) -> (StatusCode, Value) {
    let (st, body, _) = c
        .call(
            "POST",
            "/v2.1/os-security-group-rules",
            t,
            MV,
            Some(json!({ "security_group_rule": rule })),
        )
        .await;
    (st, body)
}

async fn action(c: &Cloud, t: &str, server: &str, name: &str, group: &str) -> (StatusCode, Value) {
    let (st, body, _) = c
        .call(
            "POST",
            &format!("/v2.1/servers/{server}/action"),
            t,
            "latest",
            Some(json!({ name: {"name": group} })),
        )
        .await;
    (st, body)
}

fn names(server: &Value) -> Vec<String> {
    let mut n: Vec<String> = server["security_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

/// The group CRUD of the proxy, in Nova's format, with Nova's errors.
async fn groups_crud(c: &Cloud) {
    let t = c.token("alice", "alpha").await;
    let alpha = c.project_id("alpha").await;
    let list = list_groups(c, &t).await;
    let default = list
        .iter()
        .find(|g| g["name"] == "default")
        .expect("default group");
    assert_eq!(default["tenant_id"], json!(alpha));
    // Only the ingress rules show: from the group's own members, IPv4 and IPv6.
    let rules = default["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "{default}");
    for r in rules {
        assert_eq!(r["group"], json!({"name": "default", "tenant_id": alpha}));
        assert_eq!(r["ip_range"], json!({}));
        assert_eq!(r["parent_group_id"], default["id"]);
        assert_eq!(r["ip_protocol"], Value::Null);
        assert_eq!(r["from_port"], Value::Null);
    }

    let web = create_group(c, &t, " web ").await;
    assert_eq!(web["name"], " web ");
    assert_eq!(web["description"], " web  group");
    assert_eq!(web["rules"], json!([]));
    assert_eq!(web["tenant_id"], json!(alpha));
    assert!(list_groups(c, &t).await.contains(&web));
    let id = web["id"].as_str().unwrap().to_string();
    let (st, shown, _) = c
        .call(
            "GET",
            &format!("/v2.1/os-security-groups/{id}"),
            &t,
            MV,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(shown["security_group"], web);

    // Nova's request validation.
    for bad in [
        json!({"security_group": {"name": "x"}}),
        json!({"security_group": {"description": "x"}}),
        json!({"security_group": {"name": "x".repeat(256), "description": ""}}),
        json!({"security_group": {"name": "x", "description": "d".repeat(256)}}),
        json!({"name": "x", "description": ""}),
    ] {
        let (st, body, _) = c
            .call(
                "POST",
                "/v2.1/os-security-groups",
                &t,
                MV,
                Some(bad.clone()),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["badRequest"]["message"].is_string(), "{body}");
    }
    let missing = uuid::Uuid::new_v4().to_string();
    let (st, body, _) = c
        .call(
            "GET",
            &format!("/v2.1/os-security-groups/{missing}"),
            &t,
            MV,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["itemNotFound"]["code"], 404);
    let (st, _, _) = c
        .call("GET", "/v2.1/os-security-groups/not-a-uuid", &t, MV, None)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    for method in ["DELETE", "PUT"] {
        let (st, body, _) = c
            .call(
                method,
                &format!("/v2.1/os-security-groups/{missing}"),
                &t,
                MV,
                Some(json!({"security_group": {"name": "a", "description": "b"}})),
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{method}: {body}");
    }
    // Another project's group does not exist for the caller.
    let bob = c.token("bob", "beta").await;
    let (st, _, _) = c
        .call(
            "GET",
            &format!("/v2.1/os-security-groups/{id}"),
            &bob,
            MV,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(!list_groups(c, &bob)
        .await
        .iter()
        .any(|g| g["id"] == json!(id)));

    let (st, body, _) = c
        .call(
            "PUT",
            &format!("/v2.1/os-security-groups/{id}"),
            &t,
            MV,
            Some(json!({"security_group": {"name": "web2", "description": "new"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["security_group"]["name"], "web2");
    assert_eq!(body["security_group"]["description"], "new");

    // The default group cannot be deleted: Nova's 400.
    let default_id = default["id"].as_str().unwrap();
    let (st, body, _) = c
        .call(
            "DELETE",
            &format!("/v2.1/os-security-groups/{default_id}"),
            &t,
            MV,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    let (st, _, _) = c
        .call(
            "DELETE",
            &format!("/v2.1/os-security-groups/{id}"),
            &t,
            MV,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (st, _, _) = c
        .call(
            "GET",
            &format!("/v2.1/os-security-groups/{id}"),
            &t,
            MV,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _, _) = c
        .call("DELETE", "/v2.1/os-security-groups/", &t, MV, None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Gone from 2.36, as Nova's other proxy APIs.
    for (method, path) in [
        ("GET", "/v2.1/os-security-groups".to_string()),
        ("GET", format!("/v2.1/os-security-groups/{default_id}")),
        ("POST", "/v2.1/os-security-group-rules".to_string()),
    ] {
        let (st, _, _) = c
            .call(
                method,
                &path,
                &t,
                "2.36",
                Some(json!({"security_group_rule": {}})),
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{method} {path}");
    }
}

/// Rules: Nova's format and checks, duplicates, source groups going away.
async fn rules(c: &Cloud) {
    let t = c.token("alice", "alpha").await;
    let alpha = c.project_id("alpha").await;
    let g = create_group(c, &t, "rules").await;
    let gid = g["id"].as_str().unwrap().to_string();
    let peer = create_group(c, &t, "peer").await;
    let pid = peer["id"].as_str().unwrap().to_string();

    let (st, r1) = add_rule(
        c,
        &t,
        json!({"parent_group_id": gid, "ip_protocol": "tcp", "from_port": 22, "to_port": 22}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r1}");
    let r1 = &r1["security_group_rule"];
    assert_eq!(r1["parent_group_id"], json!(gid));
    assert_eq!(r1["ip_protocol"], "tcp");
    assert_eq!(
        (r1["from_port"].clone(), r1["to_port"].clone()),
        (json!(22), json!(22))
    );
    assert_eq!(r1["ip_range"], json!({"cidr": "0.0.0.0/0"}));
    assert_eq!(r1["group"], json!({}));

    let (st, r2) = add_rule(
        c,
        &t,
        json!({"parent_group_id": gid, "ip_protocol": "tcp", "from_port": "80", "to_port": "81", "cidr": "10.2.3.0/24"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r2}");
    // A CIDR with host bits (Tempest's `10.2.3.124/24`) would come back normalized from
    // this cloud's Networking service, which, unlike Neutron, keeps `remote_ip_prefix`
    // normalized rather than as given.
    assert_eq!(
        r2["security_group_rule"]["ip_range"],
        json!({"cidr": "10.2.3.0/24"})
    );

    let (st, r3) = add_rule(
        c,
        &t,
        json!({"parent_group_id": gid, "ip_protocol": "icmp", "from_port": -1, "to_port": -1}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r3}");
    assert_eq!(r3["security_group_rule"]["from_port"], -1);
    assert_eq!(r3["security_group_rule"]["to_port"], -1);

    let (st, r4) = add_rule(
        c,
        &t,
        json!({"parent_group_id": gid, "ip_protocol": "tcp", "from_port": 22, "to_port": 22, "group_id": pid}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r4}");
    assert_eq!(
        r4["security_group_rule"]["group"],
        json!({"name": "peer", "tenant_id": alpha})
    );
    assert_eq!(r4["security_group_rule"]["ip_range"], json!({}));

    // Nova's checks, and its duplicate check.
    let missing = uuid::Uuid::new_v4().to_string();
    for (bad, want) in [
        (
            json!({"parent_group_id": gid, "ip_protocol": "tcp", "from_port": 22, "to_port": 22}),
            400,
        ),
        (
            json!({"parent_group_id": gid, "ip_protocol": "999x", "from_port": 22, "to_port": 22}),
            400,
        ),
        (
            json!({"parent_group_id": gid, "ip_protocol": "tcp", "from_port": 65536, "to_port": 22}),
            400,
        ),
        (
            json!({"parent_group_id": gid, "ip_protocol": "tcp", "from_port": 22, "to_port": 65536}),
            400,
        ),
        (
            json!({"parent_group_id": gid, "ip_protocol": "tcp", "from_port": 22, "to_port": 21}),
            400,
        ),
        (
            json!({"parent_group_id": gid, "ip_protocol": "icmp", "from_port": 256, "to_port": 0}),
            400,
        ),
        (
            json!({"parent_group_id": gid, "ip_protocol": "tcp", "from_port": "a", "to_port": 2}),
            400,
        ),
        (
            json!({"parent_group_id": gid, "ip_protocol": "tcp", "from_port": 1, "to_port": 2, "cidr": "10.0.0.0/33"}),
            400,
        ),
        (
            json!({"parent_group_id": gid, "ip_protocol": "tcp", "from_port": 1, "to_port": 2, "cidr": "10.0.0.0/0"}),
            400,
        ),
        (json!({"parent_group_id": gid}), 400),
        (
            json!({"parent_group_id": "not-a-uuid", "ip_protocol": "tcp", "from_port": 22, "to_port": 22}),
            400,
        ),
        (
            json!({"ip_protocol": "tcp", "from_port": 22, "to_port": 22}),
            400,
        ),
        (
            json!({"parent_group_id": missing, "ip_protocol": "tcp", "from_port": 22, "to_port": 22}),
            404,
        ),
        (
            json!({"parent_group_id": gid, "group_id": missing, "ip_protocol": "tcp"}),
            404,
        ),
    ] {
        let (st, body) = add_rule(c, &t, bad.clone()).await;
        assert_eq!(st.as_u16(), want, "{bad}: {body}");
    }

    let (st, shown, _) = c
        .call(
            "GET",
            &format!("/v2.1/os-security-groups/{gid}"),
            &t,
            MV,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let ids: Vec<&Value> = shown["security_group"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["id"])
        .collect();
    assert_eq!(ids.len(), 4, "{shown}");
    for r in [r1, &r2["security_group_rule"], &r3["security_group_rule"]] {
        assert!(ids.contains(&&r["id"]), "{r} in {shown}");
    }

    let rid = r1["id"].as_str().unwrap();
    let (st, _, _) = c
        .call(
            "DELETE",
            &format!("/v2.1/os-security-group-rules/{rid}"),
            &t,
            MV,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (st, body, _) = c
        .call(
            "DELETE",
            &format!("/v2.1/os-security-group-rules/{rid}"),
            &t,
            MV,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{body}");

    // The rule from the peer group goes with the group.
    let (st, _, _) = c
        .call(
            "DELETE",
            &format!("/v2.1/os-security-groups/{pid}"),
            &t,
            MV,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (_, shown, _) = c
        .call(
            "GET",
            &format!("/v2.1/os-security-groups/{gid}"),
            &t,
            MV,
            None,
        )
        .await;
    assert_eq!(
        shown["security_group"]["rules"].as_array().unwrap().len(),
        2,
        "{shown}"
    );
}

/// A server's groups are its ports' groups: listed, added, removed, shown in views.
async fn server_groups(c: &Cloud) {
    let t = c.token("alice", "alpha").await;
    let id = c.boot(&t, "sg", "1").await;
    let server = c.wait_status(&t, &id, "ACTIVE").await;
    assert_eq!(names(&server), vec!["default"]);
    let web = create_group(c, &t, "web").await;
    let web_id = web["id"].as_str().unwrap().to_string();
    let db = create_group(c, &t, "db").await;

    let (st, body) = action(c, &t, &id, "addSecurityGroup", "web").await;
    assert_eq!(st, StatusCode::ACCEPTED, "{body}");
    // By id too, and at the oldest version.
    let (st, body, _) = c
        .call(
            "POST",
            &format!("/v2.1/servers/{id}/action"),
            &t,
            "2.1",
            Some(json!({"addSecurityGroup": {"name": db["id"]}})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{body}");

    let (st, body, _) = c
        .call(
            "GET",
            &format!("/v2.1/servers/{id}/os-security-groups"),
            &t,
            "latest",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let mut listed: Vec<&str> = body["security_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    listed.sort();
    assert_eq!(listed, vec!["db", "default", "web"], "{body}");
    assert!(body["security_groups"].as_array().unwrap().contains(&web));

    let (_, shown, _) = c
        .call("GET", &format!("/v2.1/servers/{id}"), &t, "latest", None)
        .await;
    assert_eq!(names(&shown["server"]), vec!["db", "default", "web"]);
    let (_, detail, _) = c
        .call("GET", "/v2.1/servers/detail", &t, "latest", None)
        .await;
    let mine = detail["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == json!(id))
        .unwrap();
    assert_eq!(names(mine), vec!["db", "default", "web"]);

    // Nova's errors: already there, unknown group, a group in use cannot be deleted.
    let (st, body) = action(c, &t, &id, "addSecurityGroup", "web").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    let (st, body) = action(c, &t, &id, "addSecurityGroup", "nope").await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{body}");
    let (st, body) = action(c, &t, &id, "addSecurityGroup", " ").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    let (st, body, _) = c
        .call(
            "POST",
            &format!("/v2.1/servers/{id}/action"),
            &t,
            "latest",
            Some(json!({"addSecurityGroup": {"name": "web", "x": 1}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    let (st, body, _) = c
        .call(
            "DELETE",
            &format!("/v2.1/os-security-groups/{web_id}"),
            &t,
            MV,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    let bob = c.token("bob", "beta").await;
    let (st, _) = action(c, &bob, &id, "addSecurityGroup", "default").await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    let (st, body) = action(c, &t, &id, "removeSecurityGroup", "web").await;
    assert_eq!(st, StatusCode::ACCEPTED, "{body}");
    let (st, body) = action(c, &t, &id, "removeSecurityGroup", "web").await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{body}");
    let (_, shown, _) = c
        .call("GET", &format!("/v2.1/servers/{id}"), &t, "latest", None)
        .await;
    assert_eq!(names(&shown["server"]), vec!["db", "default"]);

    // A server without ports has no groups to change.
    let (st, body, _) = c
        .call(
            "POST",
            "/v2.1/servers",
            &t,
            "latest",
            Some(json!({"server": {"name": "bare", "imageRef": c.image_id, "flavorRef": "1", "networks": "none"}})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{body}");
    let bare = body["server"]["id"].as_str().unwrap().to_string();
    c.wait_status(&t, &bare, "ACTIVE").await;
    let (st, body) = action(c, &t, &bare, "addSecurityGroup", "web").await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{body}");
    let (st, body, _) = c
        .call(
            "GET",
            &format!("/v2.1/servers/{bare}/os-security-groups"),
            &t,
            "latest",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["security_groups"], json!([]));

    // Once the server is gone its groups can go.
    let (st, _, _) = c
        .call("DELETE", &format!("/v2.1/servers/{id}"), &t, "latest", None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    c.wait_status(&t, &id, "DELETED").await;
    let (st, body, _) = c
        .call(
            "DELETE",
            &format!("/v2.1/os-security-groups/{web_id}"),
            &t,
            MV,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{body}");
}

#[tokio::test]
async fn the_proxy_manages_groups_as_nova_does() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        groups_crud(&c).await;
        c.close().await;
    }
}

#[tokio::test]
async fn the_proxy_manages_rules_as_nova_does() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        rules(&c).await;
        c.close().await;
    }
}

#[tokio::test]
async fn a_servers_groups_are_its_ports_groups() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        server_groups(&c).await;
        c.close().await;
    }
}

/// The cloud's servers get their NICs from the real Networking service (its fake backend,
/// on the cloud's database), through the Neutron adapter, with one network and subnet of
/// project `alpha`.
async fn with_neutron(c: &Cloud) {
    use ferrostack_common::Authenticator;
    use ferrostack_network::{fake::FakeBackend, NetworkConfig, NetworkService};
    let db = ferrostack_db::Db::connect(&c.url).await.unwrap();
    let network = NetworkService::new(
        db,
        NetworkConfig::default(),
        NetworkService::default_policy(None).unwrap(),
        c.identity.clone(),
        Arc::new(FakeBackend::new()),
    )
    .await
    .unwrap();
    let t = c.token("alice", "alpha").await;
    let auth = c.identity.authenticate(&t).await.unwrap();
    let net = network
        .create_network(&auth, &json!({"network": {"name": "private"}}))
        .await
        .unwrap();
    network
        .create_subnet(
            &auth,
            &json!({"subnet": {"network_id": net["id"], "cidr": "10.1.0.0/24", "ip_version": 4}}),
        )
        .await
        .unwrap();
    c.compute
        .set_networking(Arc::new(ferrostack_compute::network::neutron::Neutron(
            network,
        )));
}

#[tokio::test]
async fn the_api_works_through_the_real_networking_service() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        with_neutron(&c).await;
        groups_crud(&c).await;
        rules(&c).await;
        server_groups(&c).await;
        c.close().await;
    }
}
