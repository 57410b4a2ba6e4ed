//! Agents over HTTP with a stand-in for OVN's chassis (the fake backend's agents): none by
//! default, the list with Neutron's filters and fields for administrators, an empty list
//! for others (as Tempest's `test_list_agents_non_admin` expects), show, the description
//! update, the refused disable, delete, and the `agent` extension.

mod common;

use common::*;
use ferrostack_network::backend::Agent;
use serde_json::json;

fn agent(id: &str, agent_type: &str, binary: &str, host: &str, alive: bool) -> Agent {
    Agent {
        id: id.into(),
        agent_type: agent_type.into(),
        binary: binary.into(),
        host: host.into(),
        topic: "n/a".into(),
        availability_zone: "".into(),
        description: "".into(),
        configurations: json!({"chassis_name": "c1", "bridge-mappings": "public:br-ex"}),
        alive,
        admin_state_up: true,
        created_at: 1_700_000_000_000_000,
        started_at: 1_700_000_000_000_000,
        heartbeat_timestamp: 1_700_000_100_000_000,
    }
}

#[tokio::test]
async fn no_agents_without_a_backend_that_has_some() {
    let c = cloud("sqlite::memory:").await;
    let (admin, _, _) = c.users().await;
    let v = c.ok("GET", "/v2.0/agents", &admin, None, 200).await;
    assert_eq!(v, json!({"agents": []}));
    let v = c.ok("GET", "/v2.0/agents/nope", &admin, None, 404).await;
    assert_eq!(v["NeutronError"]["type"], "AgentNotFound");
    c.ok("DELETE", "/v2.0/agents/nope", &admin, None, 404).await;
    let v = c
        .ok("GET", "/v2.0/extensions/agent", &admin, None, 200)
        .await;
    assert_eq!(v["extension"]["alias"], "agent");
}

#[tokio::test]
async fn administrators_list_show_update_and_delete_agents() {
    let c = cloud("sqlite::memory:").await;
    let (admin, alice, _) = c.users().await;
    c.backend.set_agents(vec![
        agent(
            "c1",
            "OVN Controller Gateway agent",
            "ovn-controller",
            "node1",
            true,
        ),
        agent(
            "9a1b",
            "OVN Metadata agent",
            "neutron-ovn-metadata-agent",
            "node1",
            true,
        ),
        agent(
            "c2",
            "OVN Controller agent",
            "ovn-controller",
            "node2",
            false,
        ),
    ]);

    let v = c.ok("GET", "/v2.0/agents", &admin, None, 200).await;
    let agents = v["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 3);
    let a = agents.iter().find(|a| a["id"] == "c1").unwrap();
    assert_eq!(a["id"], "c1");
    assert_eq!(a["binary"], "ovn-controller");
    assert_eq!(a["host"], "node1");
    assert_eq!(a["alive"], true);
    assert_eq!(a["admin_state_up"], true);
    assert_eq!(a["topic"], "n/a");
    assert_eq!(a["availability_zone"], "");
    assert_eq!(a["configurations"]["chassis_name"], "c1");
    assert_eq!(a["created_at"], "2023-11-14 22:13:20");
    assert_eq!(a["started_at"], "2023-11-14 22:13:20");
    assert_eq!(a["heartbeat_timestamp"], "2023-11-14 22:15:00");

    // Filters and fields as on every list.
    let v = c
        .ok(
            "GET",
            "/v2.0/agents?binary=ovn-controller&fields=id&fields=alive",
            &admin,
            None,
            200,
        )
        .await;
    assert_eq!(
        v,
        json!({"agents": [{"id": "c1", "alive": true}, {"id": "c2", "alive": false}]})
    );
    let v = c
        .ok(
            "GET",
            "/v2.0/agents?agent_type=OVN%20Metadata%20agent",
            &admin,
            None,
            200,
        )
        .await;
    assert_eq!(v["agents"][0]["id"], "9a1b");
    assert_eq!(v["agents"].as_array().unwrap().len(), 1);
    let v = c
        .ok("GET", "/v2.0/agents?alive=false", &admin, None, 200)
        .await;
    assert_eq!(v["agents"].as_array().unwrap().len(), 1);
    assert_eq!(v["agents"][0]["id"], "c2");

    // Others see no agents and cannot reach one.
    let v = c.ok("GET", "/v2.0/agents", &alice, None, 200).await;
    assert_eq!(v, json!({"agents": []}));
    c.ok("GET", "/v2.0/agents/c1", &alice, None, 404).await;
    c.ok(
        "PUT",
        "/v2.0/agents/c1",
        &alice,
        Some(json!({"agent": {"description": "x"}})),
        404,
    )
    .await;
    c.ok("DELETE", "/v2.0/agents/c1", &alice, None, 404).await;

    let v = c.ok("GET", "/v2.0/agents/c1", &admin, None, 200).await;
    assert_eq!(v["agent"]["agent_type"], "OVN Controller Gateway agent");

    // The description is kept by the backend; admin_state_up may stay true only.
    let v = c
        .ok(
            "PUT",
            "/v2.0/agents/c1",
            &admin,
            Some(json!({"agent": {"description": "rack 4"}})),
            200,
        )
        .await;
    assert_eq!(v["agent"]["description"], "rack 4");
    let v = c.ok("GET", "/v2.0/agents/c1", &admin, None, 200).await;
    assert_eq!(v["agent"]["description"], "rack 4");
    let v = c
        .ok(
            "PUT",
            "/v2.0/agents/c1",
            &admin,
            Some(json!({"agent": {"admin_state_up": true}})),
            200,
        )
        .await;
    assert_eq!(v["agent"]["admin_state_up"], true);
    c.ok(
        "PUT",
        "/v2.0/agents/c1",
        &admin,
        Some(json!({"agent": {"admin_state_up": false}})),
        400,
    )
    .await;
    c.ok(
        "PUT",
        "/v2.0/agents/c1",
        &admin,
        Some(json!({"agent": {"host": "x"}})),
        400,
    )
    .await;
    c.ok(
        "PUT",
        "/v2.0/agents/c1",
        &admin,
        Some(json!({"agent": {"colour": "x"}})),
        400,
    )
    .await;
    c.ok(
        "PUT",
        "/v2.0/agents/zz",
        &admin,
        Some(json!({"agent": {"description": "x"}})),
        404,
    )
    .await;

    c.ok("DELETE", "/v2.0/agents/c2", &admin, None, 204).await;
    c.ok("GET", "/v2.0/agents/c2", &admin, None, 404).await;
    let v = c.ok("GET", "/v2.0/agents", &admin, None, 200).await;
    assert_eq!(v["agents"].as_array().unwrap().len(), 2);
}
