//! Domain-specific roles: granted like any role, but only the roles they imply are effective.

mod harness;

use axum::http::{Method, StatusCode};
use harness::clouds;
use serde_json::json;

#[tokio::test]
async fn domain_roles_are_not_effective_but_their_implied_roles_are() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let (uid, pid) = c
            .user_with_role(&admin, "judy", "judy-pw-1", "reader")
            .await;
        let r = c
            .call(
                Method::POST,
                "/v3/roles",
                Some(json!({"role": {"name": "dom-role", "domain_id": "default"}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let dom_role = r.body["role"]["id"].as_str().unwrap().to_string();
        let g = c
            .call(
                Method::PUT,
                &format!("/v3/projects/{pid}/users/{uid}/roles/{dom_role}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(g.status, StatusCode::NO_CONTENT);
        let query = format!("/v3/role_assignments?effective&scope.project.id={pid}&user.id={uid}");
        let roles_of = |body: &serde_json::Value| -> Vec<String> {
            body["role_assignments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["role"]["id"].as_str().unwrap().to_string())
                .collect()
        };
        let l = c.call(Method::GET, &query, None, Some(&admin)).await;
        assert_eq!(l.status, StatusCode::OK);
        assert!(!roles_of(&l.body).contains(&dom_role));
        // The direct listing still shows the grant.
        let l = c
            .call(
                Method::GET,
                &format!("/v3/role_assignments?scope.project.id={pid}&user.id={uid}"),
                None,
                Some(&admin),
            )
            .await;
        assert!(roles_of(&l.body).contains(&dom_role));

        // What it implies is effective, and shows in tokens.
        let member = c
            .call(Method::GET, "/v3/roles?name=member", None, Some(&admin))
            .await;
        let member = member.body["roles"][0]["id"].as_str().unwrap().to_string();
        let i = c
            .call(
                Method::PUT,
                &format!("/v3/roles/{dom_role}/implies/{member}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(i.status, StatusCode::CREATED, "{:?}", i.body);
        let l = c.call(Method::GET, &query, None, Some(&admin)).await;
        let effective = roles_of(&l.body);
        assert!(effective.contains(&member) && !effective.contains(&dom_role));
        let t = c.login("judy", "judy-pw-1", Some("judy-project")).await;
        let names: Vec<&str> = t.body["token"]["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"member") && !names.contains(&"dom-role"));
    }
}
