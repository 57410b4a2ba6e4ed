//! RBAC policies over HTTP: sharing a network with one project (visible, usable, `shared`
//! to it only), the wildcard and the `shared` flag as one thing, duplicates, validation,
//! who may do what, and policies other projects depend on not removed or retargeted.

mod common;

use common::*;
use serde_json::{json, Value};

async fn share(c: &Cloud, who: &User, net: &str, action: &str, target: &str) -> Value {
    c.ok("POST", "/v2.0/rbac-policies", who, Some(json!({"rbac_policy": {"object_type": "network", "object_id": net, "action": action, "target_tenant": target}})), 201)
        .await["rbac_policy"]
        .clone()
}

#[tokio::test]
async fn network_shared_with_a_project() {
    for c in clouds().await {
        let (admin, alice, bob) = c.users().await;
        let n = c.network(&alice, json!({"name": "n"})).await;
        let nid = id(&n);
        let s = c
            .subnet(
                &alice,
                json!({"network_id": nid, "ip_version": 4, "cidr": "10.1.0.0/24"}),
            )
            .await;
        c.fails(
            "GET",
            &format!("/v2.0/networks/{nid}"),
            &bob,
            None,
            404,
            "NetworkNotFound",
        )
        .await;
        let rev = n["revision_number"].as_i64().unwrap();

        let pol = share(&c, &alice, &nid, "access_as_shared", &bob.project).await;
        assert_eq!(pol["object_type"], "network");
        assert_eq!(pol["object_id"], nid.as_str());
        assert_eq!(pol["target_tenant"], bob.project.as_str());
        assert_eq!(pol["project_id"], alice.project.as_str());
        assert_eq!(pol["tenant_id"], alice.project.as_str());
        let pid = id(&pol);

        // Bob sees it (shared to him), its subnet, and may put a port on it.
        let seen = c
            .ok("GET", &format!("/v2.0/networks/{nid}"), &bob, None, 200)
            .await["network"]
            .clone();
        assert_eq!(seen["shared"], true);
        assert!(seen["revision_number"].as_i64().unwrap() > rev);
        let listed = c.ok("GET", "/v2.0/networks", &bob, None, 200).await["networks"].clone();
        assert!(listed
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == nid.as_str()));
        c.ok("GET", &format!("/v2.0/subnets/{}", id(&s)), &bob, None, 200)
            .await;
        // To its owner and to administrators it is not shared (no `*` policy).
        let own = c
            .ok("GET", &format!("/v2.0/networks/{nid}"), &alice, None, 200)
            .await["network"]
            .clone();
        assert_eq!(own["shared"], false);
        let all = c
            .ok("GET", "/v2.0/networks?shared=true", &admin, None, 200)
            .await["networks"]
            .clone();
        assert!(!all
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == nid.as_str()));
        // Compute's view: Bob's servers may use it.
        let usable = c
            .network
            .networks_for_project(&bob.project, false)
            .await
            .unwrap();
        assert!(usable.iter().any(|x| x.id == nid));
        let port = c.port(&bob, json!({"network_id": nid})).await;

        // Bob does not see Alice's policy; Alice and the administrator do.
        let bobs =
            c.ok("GET", "/v2.0/rbac-policies", &bob, None, 200).await["rbac_policies"].clone();
        assert!(!bobs
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == pid.as_str()));
        c.fails(
            "GET",
            &format!("/v2.0/rbac-policies/{pid}"),
            &bob,
            None,
            404,
            "RbacPolicyNotFound",
        )
        .await;
        let alices =
            c.ok("GET", "/v2.0/rbac-policies", &alice, None, 200).await["rbac_policies"].clone();
        assert_eq!(alices, json!([pol]));
        let shown = c
            .ok(
                "GET",
                &format!("/v2.0/rbac-policies/{pid}"),
                &admin,
                None,
                200,
            )
            .await;
        assert_eq!(shown["rbac_policy"], pol);
        let f = c
            .ok(
                "GET",
                "/v2.0/rbac-policies?fields=tenant_id&fields=target_tenant",
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(
            f["rbac_policies"],
            json!([{"tenant_id": alice.project, "target_tenant": bob.project}])
        );

        // Duplicates; validation; Bob may not share Alice's network; only admins use `*`.
        c.fails("POST", "/v2.0/rbac-policies", &alice, Some(json!({"rbac_policy": {"object_type": "network", "object_id": nid, "action": "access_as_shared", "target_tenant": bob.project}})), 409, "DuplicateRbacPolicy").await;
        c.fails("POST", "/v2.0/rbac-policies", &alice, Some(json!({"rbac_policy": {"object_type": "network", "object_id": nid, "action": "access_as_shared", "target_tenant": null}})), 400, "HTTPBadRequest").await;
        c.fails("POST", "/v2.0/rbac-policies", &alice, Some(json!({"rbac_policy": {"object_type": "network", "object_id": nid, "action": "access_as_shared", "target_tenant": "1234".repeat(100)}})), 400, "InvalidInput").await;
        c.fails("POST", "/v2.0/rbac-policies", &alice, Some(json!({"rbac_policy": {"object_type": "router", "object_id": nid, "action": "access_as_shared", "target_tenant": bob.project}})), 400, "InvalidInput").await;
        c.fails("POST", "/v2.0/rbac-policies", &alice, Some(json!({"rbac_policy": {"object_type": "network", "object_id": nid, "action": "access_as_owner", "target_tenant": bob.project}})), 400, "InvalidActionForType").await;
        c.fails("POST", "/v2.0/rbac-policies", &bob, Some(json!({"rbac_policy": {"object_type": "network", "object_id": nid, "action": "access_as_shared", "target_tenant": bob.project}})), 400, "InvalidInput").await;
        c.fails("POST", "/v2.0/rbac-policies", &alice, Some(json!({"rbac_policy": {"object_type": "network", "object_id": nid, "action": "access_as_shared", "target_tenant": "*"}})), 403, "PolicyNotAuthorized").await;
        c.fails(
            "PUT",
            &format!("/v2.0/rbac-policies/{pid}"),
            &alice,
            Some(json!({"rbac_policy": {"target_tenant": "*"}})),
            403,
            "PolicyNotAuthorized",
        )
        .await;
        c.fails(
            "PUT",
            &format!("/v2.0/rbac-policies/{pid}"),
            &alice,
            Some(json!({"rbac_policy": {"action": "access_as_external"}})),
            400,
            "HTTPBadRequest",
        )
        .await;

        // Bob's port holds the policy: not deleted, not retargeted (409).
        c.fails(
            "DELETE",
            &format!("/v2.0/rbac-policies/{pid}"),
            &alice,
            None,
            409,
            "RbacPolicyInUse",
        )
        .await;
        c.fails(
            "PUT",
            &format!("/v2.0/rbac-policies/{pid}"),
            &alice,
            Some(json!({"rbac_policy": {"target_tenant": admin.project}})),
            409,
            "RbacPolicyInUse",
        )
        .await;
        // A wildcard covers the port, so the specific policy may go; then the wildcard is held.
        let wild = share(&c, &admin, &nid, "access_as_shared", "*").await;
        let n2 = c
            .ok("GET", &format!("/v2.0/networks/{nid}"), &alice, None, 200)
            .await["network"]
            .clone();
        assert_eq!(n2["shared"], true);
        c.ok(
            "DELETE",
            &format!("/v2.0/rbac-policies/{pid}"),
            &alice,
            None,
            204,
        )
        .await;
        c.fails(
            "DELETE",
            &format!("/v2.0/rbac-policies/{}", id(&wild)),
            &admin,
            None,
            409,
            "RbacPolicyInUse",
        )
        .await;
        c.fails(
            "PUT",
            &format!("/v2.0/rbac-policies/{}", id(&wild)),
            &admin,
            Some(json!({"rbac_policy": {"target_tenant": admin.project}})),
            409,
            "RbacPolicyInUse",
        )
        .await;
        c.fails(
            "PUT",
            &format!("/v2.0/networks/{nid}"),
            &admin,
            Some(json!({"network": {"shared": false}})),
            409,
            "InvalidSharedSetting",
        )
        .await;
        c.ok(
            "DELETE",
            &format!("/v2.0/ports/{}", id(&port)),
            &bob,
            None,
            204,
        )
        .await;
        c.ok(
            "DELETE",
            &format!("/v2.0/rbac-policies/{}", id(&wild)),
            &admin,
            None,
            204,
        )
        .await;
        let n3 = c
            .ok("GET", &format!("/v2.0/networks/{nid}"), &alice, None, 200)
            .await["network"]
            .clone();
        assert_eq!(n3["shared"], false);
        c.fails(
            "GET",
            &format!("/v2.0/networks/{nid}"),
            &bob,
            None,
            404,
            "NetworkNotFound",
        )
        .await;

        // Retargeting moves the access.
        let p2 = share(&c, &alice, &nid, "access_as_shared", &bob.project).await;
        let moved = c
            .ok(
                "PUT",
                &format!("/v2.0/rbac-policies/{}", id(&p2)),
                &alice,
                Some(json!({"rbac_policy": {"target_tenant": admin.project}})),
                200,
            )
            .await["rbac_policy"]
            .clone();
        assert_eq!(moved["target_tenant"], admin.project.as_str());
        assert_eq!(moved["object_id"], nid.as_str());
        c.fails(
            "GET",
            &format!("/v2.0/networks/{nid}"),
            &bob,
            None,
            404,
            "NetworkNotFound",
        )
        .await;
        // A self-share holds nothing.
        let own_pol = share(&c, &alice, &nid, "access_as_shared", &alice.project).await;
        let aport = c.port(&alice, json!({"network_id": nid})).await;
        c.ok(
            "DELETE",
            &format!("/v2.0/rbac-policies/{}", id(&own_pol)),
            &alice,
            None,
            204,
        )
        .await;
        c.ok(
            "DELETE",
            &format!("/v2.0/ports/{}", id(&aport)),
            &alice,
            None,
            204,
        )
        .await;
        // The network's policies go with it.
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
            &format!("/v2.0/rbac-policies/{}", id(&p2)),
            &admin,
            None,
            404,
            "RbacPolicyNotFound",
        )
        .await;
    }
}

#[tokio::test]
async fn flags_and_wildcard_policies() {
    for c in clouds().await {
        let (admin, alice, bob) = c.users().await;
        // `shared: true` is a `*` access_as_shared policy; `router:external` an access_as_external one.
        let n = c
            .network(
                &admin,
                json!({"name": "pub", "shared": true, "router:external": true}),
            )
            .await;
        let nid = id(&n);
        let pols = c
            .ok(
                "GET",
                &format!("/v2.0/rbac-policies?object_id={nid}"),
                &admin,
                None,
                200,
            )
            .await["rbac_policies"]
            .clone();
        let mut actions: Vec<(String, String)> = pols
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["action"].as_str().unwrap().into(),
                    p["target_tenant"].as_str().unwrap().into(),
                )
            })
            .collect();
        actions.sort();
        assert_eq!(
            actions,
            vec![
                ("access_as_external".into(), "*".into()),
                ("access_as_shared".into(), "*".into())
            ]
        );
        c.ok(
            "PUT",
            &format!("/v2.0/networks/{nid}"),
            &admin,
            Some(json!({"network": {"shared": false, "router:external": false}})),
            200,
        )
        .await;
        let none = c
            .ok(
                "GET",
                &format!("/v2.0/rbac-policies?object_id={nid}"),
                &admin,
                None,
                200,
            )
            .await;
        assert_eq!(none["rbac_policies"], json!([]));

        // A wildcard policy sets `shared`; its deletion clears it.
        let w = share(&c, &admin, &nid, "access_as_shared", "*").await;
        assert_eq!(
            c.ok("GET", &format!("/v2.0/networks/{nid}"), &bob, None, 200)
                .await["network"]["shared"],
            true
        );
        c.ok(
            "DELETE",
            &format!("/v2.0/rbac-policies/{}", id(&w)),
            &admin,
            None,
            204,
        )
        .await;
        assert_eq!(
            c.ok("GET", &format!("/v2.0/networks/{nid}"), &admin, None, 200)
                .await["network"]["shared"],
            false
        );

        // access_as_external makes the network external; the last one's deletion undoes it.
        let mine = c.network(&alice, json!({"name": "mine"})).await;
        let e = share(&c, &alice, &id(&mine), "access_as_external", &bob.project).await;
        assert_eq!(
            c.ok(
                "GET",
                &format!("/v2.0/networks/{}", id(&mine)),
                &alice,
                None,
                200
            )
            .await["network"]["router:external"],
            true
        );
        c.ok(
            "DELETE",
            &format!("/v2.0/rbac-policies/{}", id(&e)),
            &alice,
            None,
            204,
        )
        .await;
        assert_eq!(
            c.ok(
                "GET",
                &format!("/v2.0/networks/{}", id(&mine)),
                &alice,
                None,
                200
            )
            .await["network"]["router:external"],
            false
        );
        // A router's gateway holds the external policy.
        let e2 = share(&c, &alice, &id(&mine), "access_as_external", &bob.project).await;
        c.subnet(&alice, json!({"network_id": id(&mine), "ip_version": 4, "cidr": "172.30.0.0/24", "enable_dhcp": false})).await;
        c.ok("POST", "/v2.0/routers", &bob, Some(json!({"router": {"name": "r", "external_gateway_info": {"network_id": id(&mine)}}})), 201).await;
        c.fails(
            "DELETE",
            &format!("/v2.0/rbac-policies/{}", id(&e2)),
            &alice,
            None,
            409,
            "RbacPolicyInUse",
        )
        .await;
        let ext = c
            .ok("GET", "/v2.0/extensions/rbac-policies", &alice, None, 200)
            .await;
        assert_eq!(ext["extension"]["name"], "RBAC Policies");
    }
}

/// RBAC policies count against the `rbac_policy` quota of the project that makes them
/// (Neutron's default: 10).
#[tokio::test]
async fn rbac_policy_quota() {
    for c in clouds().await {
        let (admin, alice, bob) = c.users().await;
        let defaults = c
            .ok(
                "GET",
                &format!("/v2.0/quotas/{}/default", alice.project),
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(defaults["quota"]["rbac_policy"], 10);
        let n = c.network(&alice, json!({"name": "n"})).await;
        let nid = id(&n);
        c.ok(
            "PUT",
            &format!("/v2.0/quotas/{}", alice.project),
            &admin,
            Some(json!({"quota": {"rbac_policy": 1}})),
            200,
        )
        .await;
        share(&c, &alice, &nid, "access_as_shared", &bob.project).await;
        c.fails("POST", "/v2.0/rbac-policies", &alice, Some(json!({"rbac_policy": {"object_type": "network", "object_id": nid, "action": "access_as_shared", "target_tenant": admin.project}})), 409, "OverQuota").await;
        let details = c
            .ok(
                "GET",
                &format!("/v2.0/quotas/{}/details", alice.project),
                &alice,
                None,
                200,
            )
            .await;
        assert_eq!(
            details["quota"]["rbac_policy"],
            json!({"used": 1, "limit": 1, "reserved": 0})
        );
    }
}
