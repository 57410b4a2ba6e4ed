//! The Compute API's server groups (and a server's `server_groups` from 2.71), simple
//! tenant usage, image proxy, server addresses, instance action events and migration list,
//! end to end through the router on SQLite and (when the test script provides one)
//! PostgreSQL: each with its happy path, Nova's 400s and what another project sees.

mod common;

use axum::http::StatusCode;
use common::Cloud;
use ferrostack_compute::service::action_events::EventOutcome;
use ferrostack_compute::service::server_migrations::MigrationRecord;
use serde_json::{json, Value};

async fn project_id(c: &Cloud, name: &str) -> String {
    c.identity
        .store
        .project_by_name("default", name)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// Registers a compute default limit (the unified limits the Compute API reads).
async fn register_limit(c: &Cloud, resource: &str, value: i64) {
    let services = c.identity.store.services().await.unwrap();
    let service_id = match services.iter().find(|s| s.service_type == "compute") {
        Some(s) => s.id.clone(),
        None => {
            let s = ferrostack_identity::model::Service {
                id: ferrostack_identity::service::new_id(),
                service_type: "compute".into(),
                name: "nova".into(),
                description: String::new(),
                enabled: true,
                extra: Default::default(),
            };
            c.identity.store.insert_service(&s).await.unwrap();
            s.id
        }
    };
    c.identity
        .create_registered_limits(&json!({"registered_limits": [
            {"service_id": service_id, "resource_name": resource, "default_limit": value}
        ]}))
        .await
        .unwrap();
}

fn message(body: &Value) -> String {
    body.as_object()
        .and_then(|o| o.values().next())
        .and_then(|f| f["message"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn server_groups_and_the_group_hint() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 2).await;
        let alice = c.token("alice", "alpha").await;
        let bob = c.token("bob", "beta").await;
        let admin = c.token("admin", "admin").await;
        let alpha = project_id(&c, "alpha").await;

        // 2.64: policy and rules; project and user shown (2.13).
        let (st, body, _) = c
            .call("POST", "/v2.1/os-server-groups", &alice, "2.64", Some(json!({"server_group": {"name": "spread", "policy": "anti-affinity", "rules": {"max_server_per_host": 2}}})))
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let g = body["server_group"].clone();
        assert_eq!(g["policy"], "anti-affinity");
        assert_eq!(g["rules"], json!({"max_server_per_host": 2}));
        assert_eq!(g["members"], json!([]));
        assert_eq!(g["project_id"], alpha.as_str());
        assert!(g.get("policies").is_none() && g.get("metadata").is_none());
        let gid = g["id"].as_str().unwrap().to_string();

        // Before 2.64: `policies` and an empty `metadata`; no owner before 2.13.
        let (st, body, _) = c
            .call(
                "POST",
                "/v2.1/os-server-groups",
                &alice,
                "2.1",
                Some(json!({"server_group": {"name": "together", "policies": ["affinity"]}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        assert_eq!(body["server_group"]["policies"], json!(["affinity"]));
        assert_eq!(body["server_group"]["metadata"], json!({}));
        assert!(body["server_group"].get("project_id").is_none());
        let affinity = body["server_group"]["id"].as_str().unwrap().to_string();
        let (_, shown, _) = c
            .call(
                "GET",
                &format!("/v2.1/os-server-groups/{gid}"),
                &alice,
                "2.13",
                None,
            )
            .await;
        assert_eq!(shown["server_group"]["policies"], json!(["anti-affinity"]));
        assert_eq!(shown["server_group"]["user_id"], g["user_id"]);

        // Nova's 400s: soft policies before 2.15, rules on another policy, bad names.
        for (version, body, needle) in [
            (
                "2.14",
                json!({"server_group": {"name": "s", "policies": ["soft-affinity"]}}),
                "is not one of",
            ),
            (
                "2.64",
                json!({"server_group": {"name": "s", "policy": "affinity", "rules": {"max_server_per_host": 2}}}),
                "Only anti-affinity policy supports rules.",
            ),
            (
                "2.64",
                json!({"server_group": {"name": "s", "policy": "anti-affinity", "rules": {"max_server_per_host": 0}}}),
                "max_server_per_host",
            ),
            (
                "2.64",
                json!({"server_group": {"name": "s", "policies": ["affinity"]}}),
                "'policies' was unexpected",
            ),
            (
                "2.1",
                json!({"server_group": {"name": " s", "policies": ["affinity"]}}),
                "Can not start or end with whitespace",
            ),
            (
                "2.1",
                json!({"server_group": {"policies": ["affinity"]}}),
                "'name' is a required property",
            ),
        ] {
            let (st, resp, _) = c
                .call(
                    "POST",
                    "/v2.1/os-server-groups",
                    &alice,
                    version,
                    Some(body.clone()),
                )
                .await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {resp}");
            assert!(message(&resp).contains(needle), "{body}: {resp}");
        }
        let (st, body, _) = c
            .call(
                "POST",
                "/v2.1/os-server-groups",
                &alice,
                "2.15",
                Some(json!({"server_group": {"name": "soft", "policies": ["soft-affinity"]}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");

        // Lists: the project's own, sliced by offset and limit.
        let (_, list, _) = c
            .call("GET", "/v2.1/os-server-groups", &alice, "2.64", None)
            .await;
        assert_eq!(list["server_groups"].as_array().unwrap().len(), 3);
        let (_, list, _) = c
            .call(
                "GET",
                "/v2.1/os-server-groups?offset=1&limit=1",
                &alice,
                "2.64",
                None,
            )
            .await;
        assert_eq!(list["server_groups"].as_array().unwrap().len(), 1);
        assert_eq!(list["server_groups"][0]["id"], affinity.as_str());
        let (st, body, _) = c
            .call(
                "GET",
                "/v2.1/os-server-groups?offset=-1",
                &alice,
                "2.64",
                None,
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
        let (st, body, _) = c
            .call(
                "GET",
                "/v2.1/os-server-groups?color=red",
                &alice,
                "2.75",
                None,
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
        assert!(message(&body).contains("'color' was unexpected"), "{body}");

        // Another project sees nothing of alpha's groups; an admin sees all with all_projects.
        for (method, path) in [
            ("GET", format!("/v2.1/os-server-groups/{gid}")),
            ("DELETE", format!("/v2.1/os-server-groups/{gid}")),
        ] {
            let (st, body, _) = c.call(method, &path, &bob, "2.64", None).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{method} {path}: {body}");
            assert!(message(&body).contains("could not be found"), "{body}");
        }
        let (_, list, _) = c
            .call(
                "GET",
                "/v2.1/os-server-groups?all_projects=1",
                &bob,
                "2.64",
                None,
            )
            .await;
        assert!(
            list["server_groups"].as_array().unwrap().is_empty(),
            "{list}"
        );
        let (_, list, _) = c
            .call(
                "GET",
                "/v2.1/os-server-groups?all_projects=1",
                &admin,
                "2.64",
                None,
            )
            .await;
        assert_eq!(list["server_groups"].as_array().unwrap().len(), 3);
        let (_, list, _) = c
            .call("GET", "/v2.1/os-server-groups", &admin, "2.64", None)
            .await;
        assert!(list["server_groups"].as_array().unwrap().is_empty());

        // A group made here works as the scheduler hint, for its own project only.
        let boot = |group: &str, name: &str| json!({"server": {"name": name, "imageRef": c.image_id, "flavorRef": "1", "networks": "none"}, "os:scheduler_hints": {"group": group}});
        let (st, body, _) = c
            .call(
                "POST",
                "/v2.1/servers",
                &alice,
                "latest",
                Some(boot(&gid, "a1")),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{body}");
        let s1 = body["server"]["id"].as_str().unwrap().to_string();
        c.wait_status(&alice, &s1, "ACTIVE").await;
        let (_, shown, _) = c
            .call(
                "GET",
                &format!("/v2.1/os-server-groups/{gid}"),
                &alice,
                "2.64",
                None,
            )
            .await;
        assert_eq!(shown["server_group"]["members"], json!([s1]));
        let (st, body, _) = c
            .call(
                "POST",
                "/v2.1/servers",
                &bob,
                "latest",
                Some(boot(&gid, "b1")),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            message(&body),
            format!("Instance group {gid} could not be found.")
        );
        let missing = uuid::Uuid::new_v4().to_string();
        let (st, _, _) = c
            .call(
                "POST",
                "/v2.1/servers",
                &alice,
                "latest",
                Some(boot(&missing, "a2")),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);

        // A deleted server leaves the group; the group can then be deleted.
        let (st, _, _) = c
            .call(
                "DELETE",
                &format!("/v2.1/servers/{s1}"),
                &alice,
                "2.1",
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        c.wait_status(&alice, &s1, "DELETED").await;
        let (_, shown, _) = c
            .call(
                "GET",
                &format!("/v2.1/os-server-groups/{gid}"),
                &alice,
                "2.64",
                None,
            )
            .await;
        assert_eq!(shown["server_group"]["members"], json!([]));
        let (st, _, _) = c
            .call(
                "DELETE",
                &format!("/v2.1/os-server-groups/{gid}"),
                &alice,
                "2.64",
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, _, _) = c
            .call(
                "GET",
                &format!("/v2.1/os-server-groups/{gid}"),
                &alice,
                "2.64",
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn server_group_quotas_come_from_unified_limits() {
    let url = common::urls().await.remove(0);
    let c = Cloud::new(&url, 1).await;
    let alice = c.token("alice", "alpha").await;
    register_limit(&c, "server_groups", 1).await;
    register_limit(&c, "server_group_members", 1).await;
    let create = json!({"server_group": {"name": "g", "policies": ["affinity"]}});
    let (st, body, _) = c
        .call(
            "POST",
            "/v2.1/os-server-groups",
            &alice,
            "2.1",
            Some(create.clone()),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let gid = body["server_group"]["id"].as_str().unwrap().to_string();
    let (st, body, _) = c
        .call(
            "POST",
            "/v2.1/os-server-groups",
            &alice,
            "2.1",
            Some(create),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(message(&body), "Quota exceeded, too many server groups.");

    let boot = |name: &str| json!({"server": {"name": name, "imageRef": c.image_id, "flavorRef": "1", "networks": "none"}, "os:scheduler_hints": {"group": gid}});
    let (st, body, _) = c
        .call("POST", "/v2.1/servers", &alice, "latest", Some(boot("one")))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{body}");
    let (st, body, _) = c
        .call("POST", "/v2.1/servers", &alice, "latest", Some(boot("two")))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(message(&body), "Quota exceeded, too many servers in group");
    // The limits show in the quota set, with the groups in use.
    let alpha = project_id(&c, "alpha").await;
    let (_, q, _) = c
        .call(
            "GET",
            &format!("/v2.1/os-quota-sets/{alpha}/detail"),
            &alice,
            "2.1",
            None,
        )
        .await;
    assert_eq!(
        q["quota_set"]["server_groups"],
        json!({"limit": 1, "in_use": 1, "reserved": 0})
    );
}

#[tokio::test]
async fn simple_tenant_usage() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let alice = c.token("alice", "alpha").await;
        let bob = c.token("bob", "beta").await;
        let admin = c.token("admin", "admin").await;
        let alpha = project_id(&c, "alpha").await;
        let beta = project_id(&c, "beta").await;
        let mut ids = Vec::new();
        for name in ["u1", "u2"] {
            let id = c.boot(&alice, name, "1").await;
            c.wait_status(&alice, &id, "ACTIVE").await;
            ids.push(id);
        }
        ids.sort();
        // Tempest's form of the period: naive UTC with microseconds, a day either side.
        let now = ferrostack_common::time::now_micros();
        let fmt = ferrostack_common::time::iso_naive_micros;
        let day = 86_400_000_000;
        let period = format!("start={}&end={}", fmt(now - day), fmt(now + day));

        // Every project (admins), with the servers when detailed.
        let (st, body, _) = c
            .call(
                "GET",
                &format!("/v2.1/os-simple-tenant-usage?{period}&detailed=1"),
                &admin,
                "2.1",
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let usages = body["tenant_usages"].as_array().unwrap();
        assert_eq!(usages.len(), 1, "{body}");
        let u = &usages[0];
        assert_eq!(u["tenant_id"], alpha.as_str());
        assert_eq!(u["server_usages"].as_array().unwrap().len(), 2);
        let s = &u["server_usages"][0];
        assert_eq!(
            (
                s["flavor"].clone(),
                s["memory_mb"].clone(),
                s["vcpus"].clone(),
                s["local_gb"].clone()
            ),
            (json!("tiny"), json!(256), json!(1), json!(1))
        );
        assert_eq!(s["state"], "active");
        assert!(s["ended_at"].is_null());
        let hours = u["total_hours"].as_f64().unwrap();
        assert!(hours > 0.0 && hours < 0.1, "{u}");
        assert!(
            (u["total_memory_mb_usage"].as_f64().unwrap() - 256.0 * hours).abs() < 1e-6,
            "{u}"
        );
        let (_, body, _) = c
            .call(
                "GET",
                &format!("/v2.1/os-simple-tenant-usage?{period}"),
                &admin,
                "2.1",
                None,
            )
            .await;
        assert!(
            body["tenant_usages"][0].get("server_usages").is_none(),
            "{body}"
        );

        // One project, paged from 2.40.
        let path = format!("/v2.1/os-simple-tenant-usage/{alpha}?{period}&limit=1");
        let (st, body, _) = c.call("GET", &path, &alice, "2.40", None).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        assert_eq!(
            body["tenant_usage"]["server_usages"][0]["instance_id"],
            ids[0].as_str()
        );
        let next = body["tenant_usage_links"][0]["href"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(next.contains(&format!("marker={}", ids[0])), "{next}");
        let (_, body, _) = c
            .call(
                "GET",
                &format!("{path}&marker={}", ids[0]),
                &alice,
                "2.40",
                None,
            )
            .await;
        assert_eq!(
            body["tenant_usage"]["server_usages"][0]["instance_id"],
            ids[1].as_str()
        );
        let (_, body, _) = c
            .call(
                "GET",
                &format!("/v2.1/os-simple-tenant-usage/{beta}?{period}"),
                &bob,
                "2.1",
                None,
            )
            .await;
        assert_eq!(body["tenant_usage"], json!({}));

        // A terminated server still counts for the time it ran.
        let (st, _, _) = c
            .call(
                "DELETE",
                &format!("/v2.1/servers/{}", ids[0]),
                &alice,
                "2.1",
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        c.wait_status(&alice, &ids[0], "DELETED").await;
        let (_, body, _) = c
            .call(
                "GET",
                &format!("/v2.1/os-simple-tenant-usage/{alpha}?{period}"),
                &alice,
                "2.1",
                None,
            )
            .await;
        let rows = body["tenant_usage"]["server_usages"].as_array().unwrap();
        let gone = rows
            .iter()
            .find(|r| r["instance_id"] == ids[0].as_str())
            .unwrap();
        assert_eq!(gone["state"], "terminated");
        assert!(gone["ended_at"].is_string());

        // Nova's 400s.
        for (query, needle) in [
            (
                format!("start={}&end={}", fmt(now), fmt(now - day / 24)),
                "The start time cannot occur after the end time",
            ),
            ("start=yesterday".to_string(), "Invalid datetime string"),
            (
                format!("{period}&marker=nope"),
                "Marker nope could not be found.",
            ),
            (format!("{period}&color=red"), "'color' was unexpected"),
        ] {
            let (st, body, _) = c
                .call(
                    "GET",
                    &format!("/v2.1/os-simple-tenant-usage/{alpha}?{query}"),
                    &alice,
                    "2.75",
                    None,
                )
                .await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{query}: {body}");
            assert!(message(&body).contains(needle), "{query}: {body}");
        }
        // Listing every project is for admins; another project's usage is refused.
        let (st, _, _) = c
            .call(
                "GET",
                &format!("/v2.1/os-simple-tenant-usage?{period}"),
                &alice,
                "2.1",
                None,
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, _, _) = c
            .call(
                "GET",
                &format!("/v2.1/os-simple-tenant-usage/{alpha}?{period}"),
                &bob,
                "2.1",
                None,
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn image_proxy_and_image_metadata() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let alice = c.token("alice", "alpha").await;
        let bob = c.token("bob", "beta").await;
        let server = c.boot(&alice, "snapshotted", "1").await;
        // A private image of alpha's that says which server it came from.
        let ctx = c.compute.auth.authenticate(&alice).await.unwrap();
        let snap = c
            .image
            .create(&ctx, &json!({"name": "snap", "visibility": "private", "instance_uuid": server, "auto_disk_config": "true"}))
            .await
            .unwrap()
            .id;

        // Lists and details in Nova's image view.
        let (st, body, _) = c.call("GET", "/v2.1/images", &alice, "2.35", None).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let ids: Vec<&str> = body["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        assert!(
            ids.contains(&c.image_id.as_str()) && ids.contains(&snap.as_str()),
            "{body}"
        );
        let (_, body, _) = c
            .call(
                "GET",
                &format!("/v2.1/images/detail?server={server}"),
                &alice,
                "2.35",
                None,
            )
            .await;
        let list = body["images"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{body}");
        let i = &list[0];
        assert_eq!(
            (i["status"].clone(), i["progress"].clone()),
            (json!("SAVING"), json!(25))
        );
        assert_eq!(i["server"]["id"], server.as_str());
        assert_eq!(i["OS-DCF:diskConfig"], "AUTO");
        assert_eq!(i["metadata"]["instance_uuid"], server.as_str());
        assert_eq!(i["links"][2]["rel"], "alternate");
        let (_, body, _) = c
            .call(
                "GET",
                &format!("/v2.1/images/{}", c.image_id),
                &alice,
                "2.1",
                None,
            )
            .await;
        let guest = &body["image"];
        assert_eq!(
            (guest["status"].clone(), guest["progress"].clone()),
            (json!("ACTIVE"), json!(100))
        );
        assert!(
            guest["OS-EXT-IMG-SIZE:size"].as_i64().unwrap() > 0,
            "{guest}"
        );
        assert!(guest.get("server").is_none());
        let (_, body, _) = c
            .call("GET", "/v2.1/images?limit=1", &alice, "2.35", None)
            .await;
        assert_eq!(body["images"].as_array().unwrap().len(), 1);
        assert!(
            body["images_links"][0]["href"]
                .as_str()
                .unwrap()
                .contains("marker="),
            "{body}"
        );

        // Bad input and removed versions.
        let (st, _, _) = c
            .call("GET", "/v2.1/images?limit=x", &alice, "2.35", None)
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (st, _, _) = c
            .call("GET", "/v2.1/images?marker=nope", &alice, "2.35", None)
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (st, _, _) = c.call("GET", "/v2.1/images", &alice, "2.36", None).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, body, _) = c
            .call(
                "GET",
                &format!("/v2.1/images/{}", uuid::Uuid::new_v4()),
                &alice,
                "2.1",
                None,
            )
            .await;
        assert_eq!(
            (st, message(&body)),
            (StatusCode::NOT_FOUND, "Image not found.".to_string())
        );

        // Metadata (up to 2.38).
        let meta = |rest: &str| format!("/v2.1/images/{snap}/metadata{rest}");
        let (st, body, _) = c
            .call(
                "POST",
                &meta(""),
                &alice,
                "2.38",
                Some(json!({"metadata": {"k1": "v1"}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        assert_eq!(body["metadata"]["k1"], "v1");
        assert_eq!(body["metadata"]["instance_uuid"], server.as_str());
        let (st, body, _) = c
            .call(
                "PUT",
                &meta("/k2"),
                &alice,
                "2.1",
                Some(json!({"meta": {"k2": "v2"}})),
            )
            .await;
        assert_eq!(
            (st, body["meta"].clone()),
            (StatusCode::OK, json!({"k2": "v2"}))
        );
        let (_, body, _) = c.call("GET", &meta("/k2"), &alice, "2.1", None).await;
        assert_eq!(body, json!({"meta": {"k2": "v2"}}));
        let (st, body, _) = c
            .call(
                "PUT",
                &meta(""),
                &alice,
                "2.1",
                Some(json!({"metadata": {"only": "this"}})),
            )
            .await;
        assert_eq!(
            (st, body["metadata"].clone()),
            (StatusCode::OK, json!({"only": "this"}))
        );
        let (_, body, _) = c.call("GET", &meta(""), &alice, "2.1", None).await;
        assert_eq!(body["metadata"], json!({"only": "this"}));
        let (st, _, _) = c.call("DELETE", &meta("/only"), &alice, "2.1", None).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, body, _) = c.call("DELETE", &meta("/only"), &alice, "2.1", None).await;
        assert_eq!(
            (st, message(&body)),
            (StatusCode::NOT_FOUND, "Invalid metadata key".to_string())
        );
        let (st, _, _) = c.call("GET", &meta(""), &alice, "2.39", None).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        for (method, path, body, needle) in [
            (
                "POST",
                meta(""),
                json!({"metadata": {"a/b": "v"}}),
                "does not match",
            ),
            (
                "PUT",
                meta("/k"),
                json!({"meta": {"other": "v"}}),
                "Request body and URI mismatch",
            ),
            (
                "PUT",
                meta("/k"),
                json!({"meta": {"k": "v", "j": "w"}}),
                "too many properties",
            ),
            (
                "POST",
                meta(""),
                json!({"metadata": {"k": 5}}),
                "is not of type 'string'",
            ),
        ] {
            let (st, resp, _) = c
                .call(method, &path, &alice, "2.1", Some(body.clone()))
                .await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {resp}");
            assert!(message(&resp).contains(needle), "{body}: {resp}");
        }

        // Another project: alpha's private image does not exist; the public one is not its.
        for (method, path, body) in [
            ("GET", format!("/v2.1/images/{snap}"), None),
            ("DELETE", format!("/v2.1/images/{snap}"), None),
            ("GET", meta(""), None),
            ("POST", meta(""), Some(json!({"metadata": {"x": "y"}}))),
        ] {
            let (st, resp, _) = c.call(method, &path, &bob, "2.1", body).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{method} {path}: {resp}");
        }
        let (st, body, _) = c
            .call(
                "DELETE",
                &format!("/v2.1/images/{}", c.image_id),
                &bob,
                "2.1",
                None,
            )
            .await;
        assert_eq!(
            (st, message(&body)),
            (
                StatusCode::FORBIDDEN,
                "You are not allowed to delete the image.".to_string()
            )
        );
        let (st, _, _) = c
            .call(
                "POST",
                &format!("/v2.1/images/{}/metadata", c.image_id),
                &bob,
                "2.1",
                Some(json!({"metadata": {"x": "y"}})),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);

        let (st, _, _) = c
            .call(
                "DELETE",
                &format!("/v2.1/images/{snap}"),
                &alice,
                "2.1",
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, _, _) = c
            .call("GET", &format!("/v2.1/images/{snap}"), &alice, "2.1", None)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn server_ips_and_action_events() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let alice = c.token("alice", "alpha").await;
        let bob = c.token("bob", "beta").await;
        let admin = c.token("admin", "admin").await;
        let id = c.boot(&alice, "addressed", "1").await;
        c.wait_status(&alice, &id, "ACTIVE").await;

        // Addresses by network label; an unknown label is a 404.
        let (st, body, _) = c
            .call(
                "GET",
                &format!("/v2.1/servers/{id}/ips"),
                &alice,
                "2.1",
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        let addr = body["addresses"]["private"][0]["addr"].clone();
        assert_eq!(
            body["addresses"]["private"],
            json!([{"addr": addr, "version": 4}])
        );
        let (st, body, _) = c
            .call(
                "GET",
                &format!("/v2.1/servers/{id}/ips/private"),
                &alice,
                "2.1",
                None,
            )
            .await;
        assert_eq!(
            (st, body),
            (
                StatusCode::OK,
                json!({"private": [{"addr": addr, "version": 4}]})
            )
        );
        let (st, body, _) = c
            .call(
                "GET",
                &format!("/v2.1/servers/{id}/ips/public"),
                &alice,
                "2.1",
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        assert_eq!(
            message(&body),
            "Instance is not a member of specified network"
        );
        let (st, _, _) = c
            .call(
                "GET",
                &format!("/v2.1/servers/{id}/ips?x=1"),
                &alice,
                "2.102",
                None,
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (st, _, _) = c
            .call("GET", &format!("/v2.1/servers/{id}/ips"), &bob, "2.1", None)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);

        // Events the workflows record on the create action.
        let (_, body, _) = c
            .call(
                "GET",
                &format!("/v2.1/servers/{id}/os-instance-actions"),
                &alice,
                "2.1",
                None,
            )
            .await;
        let rid = body["instanceActions"][0]["request_id"]
            .as_str()
            .unwrap()
            .to_string();
        let s = &c.compute;
        s.record_event_start(
            &id,
            &rid,
            "compute__do_build_and_run_instance",
            Some("host0"),
        )
        .await
        .unwrap();
        s.record_event_finish(
            &id,
            &rid,
            "compute__do_build_and_run_instance",
            EventOutcome::Success,
        )
        .await
        .unwrap();
        // Finishing an event never started records it whole (a step that ran again).
        s.record_event_finish(
            &id,
            &rid,
            "conductor_schedule",
            EventOutcome::Error {
                traceback: "Traceback: boom",
                details: Some("no host"),
            },
        )
        .await
        .unwrap();
        assert!(s
            .record_event_start(&id, "req-none", "x", None)
            .await
            .is_err());
        let path = format!("/v2.1/servers/{id}/os-instance-actions/{rid}");
        let show = |token: &str, version: &str| {
            let (c, path, token, version) =
                (&c, path.clone(), token.to_string(), version.to_string());
            async move {
                let (st, body, _) = c.call("GET", &path, &token, &version, None).await;
                assert_eq!(st, StatusCode::OK, "{body}");
                body["instanceAction"].clone()
            }
        };
        let a = show(&alice, "2.50").await;
        assert!(a.get("events").is_none(), "{a}");
        assert_eq!(a["message"], "Error");
        let a = show(&alice, "2.51").await;
        let events = a["events"].as_array().unwrap();
        assert_eq!(events.len(), 2, "{a}");
        let build = events
            .iter()
            .find(|e| e["event"] == "compute__do_build_and_run_instance")
            .unwrap();
        assert_eq!(build["result"], "Success");
        assert!(build["finish_time"].is_string());
        assert!(build.get("traceback").is_none() && build.get("host").is_none());
        let a = show(&alice, "2.62").await;
        let build = a["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event"] == "compute__do_build_and_run_instance")
            .unwrap()
            .clone();
        assert_eq!(build["hostId"].as_str().unwrap().len(), 56);
        assert!(build.get("host").is_none());
        let a = show(&admin, "2.84").await;
        let failed = a["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event"] == "conductor_schedule")
            .unwrap()
            .clone();
        assert_eq!(failed["result"], "Error");
        assert_eq!(failed["traceback"], "Traceback: boom");
        assert_eq!(failed["details"], "no host");
        let build = a["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event"] == "compute__do_build_and_run_instance")
            .unwrap()
            .clone();
        assert_eq!(build["host"], "host0");
        // Another project does not see the server's actions at all.
        let (st, _, _) = c.call("GET", &path, &bob, "2.84", None).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _, _) = c
            .call(
                "GET",
                &format!("/v2.1/servers/{id}/os-instance-actions/req-none"),
                &alice,
                "2.84",
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn migrations_list() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let alice = c.token("alice", "alpha").await;
        let admin = c.token("admin", "admin").await;
        let (st, body, _) = c
            .call("GET", "/v2.1/os-migrations", &admin, "2.1", None)
            .await;
        assert_eq!((st, body), (StatusCode::OK, json!({"migrations": []})));

        let alpha = project_id(&c, "alpha").await;
        let instance = uuid::Uuid::new_v4().to_string();
        let record = |kind: &str, status: &str| MigrationRecord {
            instance_uuid: instance.clone(),
            migration_type: kind.into(),
            status: status.into(),
            source_compute: Some("host0".into()),
            dest_compute: Some("host1".into()),
            old_instance_type_id: Some("1".into()),
            new_instance_type_id: Some("2".into()),
            project_id: Some(alpha.clone()),
            user_id: Some("u".into()),
            ..Default::default()
        };
        let first = c
            .compute
            .record_migration(&record("resize", "error"))
            .await
            .unwrap();
        let second = c
            .compute
            .record_migration(&record("live-migration", "running"))
            .await
            .unwrap();

        // 2.80: newest first, uuid, owner; a running live migration links to itself.
        let (st, body, _) = c
            .call("GET", "/v2.1/os-migrations", &admin, "2.80", None)
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let list = body["migrations"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["uuid"], second.uuid.as_str());
        assert_eq!(list[0]["project_id"], alpha.as_str());
        assert_eq!(list[0]["new_instance_type_id"], 2);
        assert_eq!(list[0]["source_compute"], "host0");
        assert!(list[0]["links"].is_array());
        assert!(list[1].get("links").is_none());
        // 2.1: the oldest view, no type, uuid or owner.
        let (_, body, _) = c
            .call("GET", "/v2.1/os-migrations", &admin, "2.1", None)
            .await;
        let old = &body["migrations"][0];
        assert_eq!(old["id"], first.id);
        assert!(
            old.get("uuid").is_none()
                && old.get("migration_type").is_none()
                && old.get("project_id").is_none()
        );

        // Filters and pages.
        let (_, body, _) = c
            .call(
                "GET",
                "/v2.1/os-migrations?status=error",
                &admin,
                "2.80",
                None,
            )
            .await;
        assert_eq!(body["migrations"].as_array().unwrap().len(), 1);
        let (_, body, _) = c
            .call(
                "GET",
                "/v2.1/os-migrations?host=host1",
                &admin,
                "2.80",
                None,
            )
            .await;
        assert_eq!(body["migrations"].as_array().unwrap().len(), 2);
        let (_, body, _) = c
            .call(
                "GET",
                "/v2.1/os-migrations?host=host9",
                &admin,
                "2.80",
                None,
            )
            .await;
        assert!(body["migrations"].as_array().unwrap().is_empty());
        let (_, body, _) = c
            .call("GET", "/v2.1/os-migrations?limit=1", &admin, "2.80", None)
            .await;
        assert_eq!(body["migrations"][0]["uuid"], second.uuid.as_str());
        assert!(body["migrations_links"][0]["href"]
            .as_str()
            .unwrap()
            .contains(&second.uuid));
        let (_, body, _) = c
            .call(
                "GET",
                &format!("/v2.1/os-migrations?limit=1&marker={}", second.uuid),
                &admin,
                "2.80",
                None,
            )
            .await;
        assert_eq!(body["migrations"][0]["uuid"], first.uuid.as_str());
        let (_, body, _) = c
            .call(
                "GET",
                &format!("/v2.1/os-migrations?project_id={alpha}"),
                &admin,
                "2.80",
                None,
            )
            .await;
        assert_eq!(body["migrations"].as_array().unwrap().len(), 2);

        // Nova's 400s.
        for (version, query, needle) in [
            ("2.80", "marker=nope", "Marker nope could not be found."),
            ("2.59", "project_id=x", "'project_id' was unexpected"),
            (
                "2.66",
                "changes-since=2024-02-01T00:00:00Z&changes-before=2024-01-01T00:00:00Z",
                "changes-since must be less than or equal to changes-before",
            ),
            ("2.59", "changes-since=soon", "is not a 'date-time'"),
        ] {
            let (st, body, _) = c
                .call(
                    "GET",
                    &format!("/v2.1/os-migrations?{query}"),
                    &admin,
                    version,
                    None,
                )
                .await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{query}: {body}");
            assert!(message(&body).contains(needle), "{query}: {body}");
        }
        // Members may not list migrations, not even their own project's.
        let (st, _, _) = c
            .call("GET", "/v2.1/os-migrations", &alice, "2.80", None)
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, _, _) = c
            .call(
                "GET",
                &format!("/v2.1/os-migrations?project_id={alpha}"),
                &alice,
                "2.80",
                None,
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn servers_show_their_groups_from_2_71() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let alice = c.token("alice", "alpha").await;
        let (st, body, _) = c
            .call(
                "POST",
                "/v2.1/os-server-groups",
                &alice,
                "2.64",
                Some(json!({"server_group": {"name": "g", "policy": "soft-affinity"}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let gid = body["server_group"]["id"].as_str().unwrap().to_string();
        let (st, body, _) = c
            .call(
                "POST",
                "/v2.1/servers",
                &alice,
                "latest",
                Some(json!({
                    "server": {"name": "in", "imageRef": c.image_id, "flavorRef": "1", "networks": "none"},
                    "os:scheduler_hints": {"group": gid},
                })),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{body}");
        let member = body["server"]["id"].as_str().unwrap().to_string();
        let loner = c.boot(&alice, "out", "1").await;
        c.wait_status(&alice, &member, "ACTIVE").await;
        c.wait_status(&alice, &loner, "ACTIVE").await;

        let show = |id: &str, version: &'static str| {
            let path = format!("/v2.1/servers/{id}");
            let token = alice.clone();
            let c = &c;
            async move { c.call("GET", &path, &token, version, None).await.1 }
        };
        assert_eq!(
            show(&member, "2.71").await["server"]["server_groups"],
            json!([gid])
        );
        assert_eq!(
            show(&loner, "2.71").await["server"]["server_groups"],
            json!([])
        );
        assert!(show(&member, "2.70").await["server"]
            .get("server_groups")
            .is_none());

        // Update and rebuild answer with it too; the detail list does not, as in Nova.
        let (st, body, _) = c
            .call(
                "PUT",
                &format!("/v2.1/servers/{member}"),
                &alice,
                "2.71",
                Some(json!({"server": {"name": "renamed"}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        assert_eq!(body["server"]["server_groups"], json!([gid]));
        let (st, body, _) = c
            .call(
                "PUT",
                &format!("/v2.1/servers/{member}"),
                &alice,
                "2.70",
                Some(json!({"server": {"name": "again"}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        assert!(body["server"].get("server_groups").is_none());
        let (st, body, _) = c
            .call(
                "POST",
                &format!("/v2.1/servers/{member}/action"),
                &alice,
                "2.71",
                Some(json!({"rebuild": {"imageRef": c.image_id}})),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["server"]["server_groups"], json!([gid]));
        c.wait_status(&alice, &member, "ACTIVE").await;
        let (_, body, _) = c
            .call("GET", "/v2.1/servers/detail", &alice, "2.71", None)
            .await;
        let list = body["servers"].as_array().unwrap();
        assert_eq!(list.len(), 2, "{body}");
        assert!(list.iter().all(|s| s.get("server_groups").is_none()));

        // A deleted group leaves its members in none.
        let (st, _, _) = c
            .call(
                "DELETE",
                &format!("/v2.1/os-server-groups/{gid}"),
                &alice,
                "2.64",
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        assert_eq!(
            show(&member, "2.71").await["server"]["server_groups"],
            json!([])
        );
    }
}

/// Before 2.75, update and rebuild answer with the base server only (Tempest validates
/// their schemas strictly); from 2.75 they answer as show does, rebuild with `user_data`.
#[tokio::test]
async fn update_and_rebuild_answer_per_microversion() {
    let url = common::urls().await.remove(0);
    let c = Cloud::new(&url, 1).await;
    let t = c.token("alice", "alpha").await;
    let id = c.boot(&t, "shape", "1").await;
    c.wait_status(&t, &id, "ACTIVE").await;
    let path = format!("/v2.1/servers/{id}");
    let update = |v: &'static str| {
        let (c, t, path) = (&c, t.clone(), path.clone());
        async move {
            let (st, b, _) = c
                .call(
                    "PUT",
                    &path,
                    &t,
                    v,
                    Some(json!({"server": {"name": "shape"}})),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{b}");
            b["server"].clone()
        }
    };
    let old = update("2.1").await;
    for absent in [
        "OS-EXT-STS:vm_state",
        "OS-EXT-AZ:availability_zone",
        "key_name",
        "security_groups",
        "config_drive",
        "locked",
    ] {
        assert!(
            old.get(absent).is_none(),
            "{absent} in a 2.1 update answer: {old}"
        );
    }
    assert!(old.get("hostId").is_some() && old.get("accessIPv4").is_some());
    assert_eq!(update("2.9").await["locked"], false);
    let new = update("2.75").await;
    assert!(
        new.get("OS-EXT-STS:vm_state").is_some() && new.get("security_groups").is_some(),
        "{new}"
    );

    let rebuild = |v: &'static str| {
        let (c, t, id) = (&c, t.clone(), id.clone());
        async move {
            let body = json!({"rebuild": {"imageRef": c.image_id}});
            let (st, b, _) = c
                .call(
                    "POST",
                    &format!("/v2.1/servers/{id}/action"),
                    &t,
                    v,
                    Some(body),
                )
                .await;
            assert_eq!(st, StatusCode::ACCEPTED, "{b}");
            c.wait_status(&t, &id, "ACTIVE").await;
            b["server"].clone()
        }
    };
    let old = rebuild("2.1").await;
    assert!(
        old.get("OS-EXT-STS:vm_state").is_none() && old.get("key_name").is_none(),
        "{old}"
    );
    assert!(old["adminPass"].is_string(), "{old}");
    let mid = rebuild("2.57").await;
    assert!(
        mid.get("key_name").is_some() && mid.get("user_data").is_some(),
        "{mid}"
    );
    assert!(mid.get("OS-EXT-STS:vm_state").is_none(), "{mid}");
    let new = rebuild("2.75").await;
    assert!(
        new.get("OS-EXT-STS:vm_state").is_some() && new.get("user_data").is_some(),
        "{new}"
    );
    assert!(new.get("OS-EXT-SRV-ATTR:user_data").is_none(), "{new}");
}
