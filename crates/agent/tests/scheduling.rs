//! Where the scheduler puts the members of server groups, on clouds of several fake hosts:
//! anti-affinity with `max_server_per_host` (2.64), also when all members are created by
//! one request and scheduled at once; affinity; and the soft policies of 2.15, which weigh
//! hosts but never refuse one.

mod common;

use std::collections::BTreeMap;

use axum::http::StatusCode;
use common::Cloud;
use serde_json::{json, Value};

async fn create_group(c: &Cloud, token: &str, version: &str, group: Value) -> String {
    let (st, body, _) = c
        .call(
            "POST",
            "/v2.1/os-server-groups",
            token,
            version,
            Some(json!({ "server_group": group })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    body["server_group"]["id"].as_str().unwrap().to_string()
}

/// Creates `count` servers of `flavor` in `group` with one request; returns the group's
/// members once every new one has left BUILD.
async fn boot_members(
    c: &Cloud,
    token: &str,
    group: &str,
    flavor: &str,
    count: usize,
) -> Vec<String> {
    let before = members(c, token, group).await;
    let (st, body, _) = c
        .call(
            "POST",
            "/v2.1/servers",
            token,
            "latest",
            Some(json!({
                "server": {"name": "m", "imageRef": c.image_id, "flavorRef": flavor,
                           "networks": "none", "min_count": count, "max_count": count},
                "os:scheduler_hints": {"group": group},
            })),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{body}");
    let all = members(c, token, group).await;
    assert_eq!(all.len(), before.len() + count);
    for id in all.iter().filter(|m| !before.contains(m)) {
        wait_built(c, token, id).await;
    }
    all
}

async fn members(c: &Cloud, token: &str, group: &str) -> Vec<String> {
    let (st, body, _) = c
        .call(
            "GET",
            &format!("/v2.1/os-server-groups/{group}"),
            token,
            "2.64",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    body["server_group"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect()
}

/// Waits until the server is ACTIVE or ERROR; returns its view.
async fn wait_built(c: &Cloud, token: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, body, _) = c
            .call("GET", &format!("/v2.1/servers/{id}"), token, "latest", None)
            .await;
        let s = &body["server"];
        if matches!(s["status"].as_str(), Some("ACTIVE" | "ERROR"))
            && s["OS-EXT-STS:task_state"].is_null()
        {
            return s.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{id} stuck: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The host of each server (read as an admin).
async fn hosts_of(c: &Cloud, ids: &[String]) -> Vec<String> {
    let admin = c.token("admin", "admin").await;
    let mut out = Vec::new();
    for id in ids {
        let s = wait_built(c, &admin, id).await;
        assert_eq!(s["status"], "ACTIVE", "{s}");
        out.push(s["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_string());
    }
    out
}

fn per_host(hosts: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for h in hosts {
        *m.entry(h.clone()).or_insert(0) += 1;
    }
    m
}

async fn boot_one(c: &Cloud, token: &str, group: &str, flavor: &str) -> Value {
    let members = boot_members(c, token, group, flavor, 1).await;
    wait_built(c, token, members.last().unwrap()).await
}

#[tokio::test]
async fn anti_affinity_honours_max_server_per_host() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 2).await;
        let alice = c.token("alice", "alpha").await;
        let g = create_group(
            &c,
            &alice,
            "2.64",
            json!({"name": "spread2", "policy": "anti-affinity", "rules": {"max_server_per_host": 2}}),
        )
        .await;
        // Four at once: they are scheduled together, and still two per host.
        let four = boot_members(&c, &alice, &g, "1", 4).await;
        let hosts = hosts_of(&c, &four).await;
        assert_eq!(
            per_host(&hosts),
            BTreeMap::from([("host0".to_string(), 2), ("host1".to_string(), 2)]),
            "{hosts:?}"
        );
        // The fifth has no host left: ERROR with Nova's fault, nothing held.
        let fifth = boot_one(&c, &alice, &g, "1").await;
        assert_eq!(fifth["status"], "ERROR", "{fifth}");
        assert_eq!(
            fifth["fault"]["message"],
            "No valid host was found. There are not enough hosts available."
        );
        let id = fifth["id"].as_str().unwrap();
        assert_eq!(c.allocations(id).await, 0);
        assert_eq!(c.vms(), 4);
        // A member deleted frees its place.
        let (st, _, _) = c
            .call(
                "DELETE",
                &format!("/v2.1/servers/{}", four[0]),
                &alice,
                "2.1",
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        c.wait_status(&alice, &four[0], "DELETED").await;
        let again = boot_one(&c, &alice, &g, "1").await;
        assert_eq!(again["status"], "ACTIVE", "{again}");

        // Without the rule, one member per host (here before 2.64, as `policies`).
        let g1 = create_group(
            &c,
            &alice,
            "2.1",
            json!({"name": "spread1", "policies": ["anti-affinity"]}),
        )
        .await;
        let two = boot_members(&c, &alice, &g1, "1", 2).await;
        let hosts = hosts_of(&c, &two).await;
        assert_ne!(hosts[0], hosts[1]);
        // The check that runs again when a member's host is recorded (for members placed
        // by two control nodes at once): the other member's host is refused.
        let onto = |host: &str| ferrostack_compute::service::scheduler::Placed {
            host: host.to_string(),
            node: host.to_string(),
            allocations: Default::default(),
        };
        assert!(!c
            .compute
            .place(&two[1], &onto(&hosts[0]), None)
            .await
            .unwrap());
        assert!(c
            .compute
            .place(&two[1], &onto(&hosts[1]), None)
            .await
            .unwrap());
        let third = boot_one(&c, &alice, &g1, "1").await;
        assert_eq!(third["status"], "ERROR", "{third}");
        assert!(third["fault"]["message"]
            .as_str()
            .unwrap()
            .starts_with("No valid host"));
    }
}

#[tokio::test]
async fn affinity_keeps_members_together() {
    let url = common::urls().await.remove(0);
    let c = Cloud::new(&url, 3).await;
    let alice = c.token("alice", "alpha").await;
    let g = create_group(
        &c,
        &alice,
        "2.64",
        json!({"name": "together", "policy": "affinity"}),
    )
    .await;
    // Three created at once land on one host, whichever the first took.
    let three = boot_members(&c, &alice, &g, "1", 3).await;
    let hosts = hosts_of(&c, &three).await;
    assert_eq!(per_host(&hosts).len(), 1, "{hosts:?}");
    // Once that host is full, the next member cannot go anywhere else.
    let big = boot_one(&c, &alice, &g, "3").await;
    assert_eq!(big["status"], "ACTIVE", "{big}");
    let full = boot_one(&c, &alice, &g, "3").await;
    assert_eq!(full["status"], "ERROR", "{full}");
    assert!(full["fault"]["message"]
        .as_str()
        .unwrap()
        .starts_with("No valid host"));
}

#[tokio::test]
async fn soft_anti_affinity_spreads_when_it_can() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 3).await;
        let alice = c.token("alice", "alpha").await;
        let g = create_group(
            &c,
            &alice,
            "2.15",
            json!({"name": "soft-spread", "policies": ["soft-anti-affinity"]}),
        )
        .await;
        let three = boot_members(&c, &alice, &g, "1", 3).await;
        let hosts = hosts_of(&c, &three).await;
        assert_eq!(per_host(&hosts).len(), 3, "{hosts:?}");
        // More members than hosts: they still boot, one more per host.
        let six = boot_members(&c, &alice, &g, "1", 3).await;
        let hosts = hosts_of(&c, &six).await;
        assert_eq!(
            per_host(&hosts).values().copied().collect::<Vec<_>>(),
            vec![2, 2, 2],
            "{hosts:?}"
        );
    }
}

#[tokio::test]
async fn soft_affinity_packs_and_boots_where_it_cannot() {
    // Nova's default multiplier (1.0) loses to the three resource weighers as soon as the
    // member's host has less room than the others; operators who want packing raise it.
    let url = common::urls().await.remove(0);
    let c = Cloud::new_with(&url, 2, |cfg| {
        cfg.weight_multipliers.soft_affinity = 10.0;
    })
    .await;
    let alice = c.token("alice", "alpha").await;
    let g = create_group(
        &c,
        &alice,
        "2.64",
        json!({"name": "soft-pack", "policy": "soft-affinity"}),
    )
    .await;
    let two = boot_members(&c, &alice, &g, "3", 2).await;
    let hosts = hosts_of(&c, &two).await;
    assert_eq!(hosts[0], hosts[1], "{hosts:?}");
    // The first host has no room for a third: soft affinity lets it boot elsewhere.
    let third = boot_one(&c, &alice, &g, "3").await;
    assert_eq!(third["status"], "ACTIVE", "{third}");
    let all = members(&c, &alice, &g).await;
    let hosts = hosts_of(&c, &all).await;
    assert_eq!(per_host(&hosts).len(), 2, "{hosts:?}");

    // With Nova's defaults a soft-affinity group never stops a boot either.
    let url = common::urls().await.remove(0);
    let c = Cloud::new(&url, 2).await;
    let alice = c.token("alice", "alpha").await;
    let g = create_group(
        &c,
        &alice,
        "2.64",
        json!({"name": "soft", "policy": "soft-affinity"}),
    )
    .await;
    let four = boot_members(&c, &alice, &g, "3", 4).await;
    assert_eq!(hosts_of(&c, &four).await.len(), 4);
}
