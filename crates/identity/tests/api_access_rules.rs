//! Access rules of application credentials over HTTP, on every database engine.

mod harness;

use axum::http::{Method, StatusCode};
use harness::clouds;
use serde_json::{json, Value};

#[tokio::test]
async fn access_rules_are_shared_outlive_credentials_and_delete_when_unused() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let (uid, _) = c
            .user_with_role(&admin, "erin", "erin-pw-1", "member")
            .await;
        let (other, _) = c
            .user_with_role(&admin, "fred", "fred-pw-1", "member")
            .await;
        let erin = c
            .login("erin", "erin-pw-1", Some("erin-project"))
            .await
            .subject_token();
        let creds = format!("/v3/users/{uid}/application_credentials");
        let rules = format!("/v3/users/{uid}/access_rules");
        let rule = json!({"path": "/v2.1/servers/*/ips", "method": "GET", "service": "compute"});

        let bad = c
            .call(
                Method::POST,
                &creds,
                Some(json!({"application_credential": {"name": "x", "access_rules": [{"path": "/", "method": "FETCH", "service": "compute"}]}})),
                Some(&erin),
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);

        let a = c
            .call(
                Method::POST,
                &creds,
                Some(json!({"application_credential": {"name": "a", "access_rules": [rule]}})),
                Some(&erin),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
        let rule_id = a.body["application_credential"]["access_rules"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        // The same rule again is the same rule; a rule may also be named by id.
        let b = c
            .call(
                Method::POST,
                &creds,
                Some(json!({"application_credential": {"name": "b", "access_rules": [rule]}})),
                Some(&erin),
            )
            .await;
        assert_eq!(
            b.body["application_credential"]["access_rules"][0]["id"],
            rule_id.as_str()
        );
        let by_id = c
            .call(
                Method::POST,
                &creds,
                Some(json!({"application_credential": {"name": "c", "access_rules": [{"id": rule_id}]}})),
                Some(&erin),
            )
            .await;
        assert_eq!(by_id.status, StatusCode::CREATED, "{:?}", by_id.body);
        assert_eq!(
            by_id.body["application_credential"]["access_rules"][0]["path"],
            "/v2.1/servers/*/ips"
        );

        let l = c.call(Method::GET, &rules, None, Some(&erin)).await;
        assert_eq!(l.status, StatusCode::OK);
        assert_eq!(l.body["access_rules"].as_array().unwrap().len(), 1);
        let s = c
            .call(
                Method::GET,
                &format!("{rules}/{rule_id}"),
                None,
                Some(&erin),
            )
            .await;
        assert_eq!(s.status, StatusCode::OK);
        assert_eq!(s.body["access_rule"]["service"], "compute");
        // Another user cannot read them.
        let fred = c
            .login("fred", "fred-pw-1", Some("fred-project"))
            .await
            .subject_token();
        let r = c.call(Method::GET, &rules, None, Some(&fred)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = c
            .call(
                Method::GET,
                &format!("/v3/users/{other}/access_rules/{rule_id}"),
                None,
                Some(&fred),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        // In use: 403. Once every credential using it is gone, it is still listed, then
        // deletable.
        let d = c
            .call(
                Method::DELETE,
                &format!("{rules}/{rule_id}"),
                None,
                Some(&erin),
            )
            .await;
        assert_eq!(d.status, StatusCode::FORBIDDEN);
        for body in [&a.body, &b.body, &by_id.body] {
            let id = body["application_credential"]["id"].as_str().unwrap();
            let r = c
                .call(Method::DELETE, &format!("{creds}/{id}"), None, Some(&erin))
                .await;
            assert_eq!(r.status, StatusCode::NO_CONTENT);
        }
        let l = c.call(Method::GET, &rules, None, Some(&erin)).await;
        let ids: Vec<&Value> = l.body["access_rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["id"])
            .collect();
        assert_eq!(ids, vec![&json!(rule_id)]);
        let d = c
            .call(
                Method::DELETE,
                &format!("{rules}/{rule_id}"),
                None,
                Some(&erin),
            )
            .await;
        assert_eq!(d.status, StatusCode::NO_CONTENT);
        let l = c.call(Method::GET, &rules, None, Some(&erin)).await;
        assert!(l.body["access_rules"].as_array().unwrap().is_empty());
        let d = c
            .call(
                Method::DELETE,
                &format!("{rules}/{rule_id}"),
                None,
                Some(&erin),
            )
            .await;
        assert_eq!(d.status, StatusCode::NOT_FOUND);
    }
}
