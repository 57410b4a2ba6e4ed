//! Domain-specific configuration (`/v3/domains/{id}/config`) over HTTP, on every engine.

mod harness;

use axum::http::{Method, StatusCode};
use harness::{clouds, TestCloud};
use serde_json::{json, Value};

async fn new_domain(c: &TestCloud, admin: &str, name: &str) -> String {
    let r = c
        .call(
            Method::POST,
            "/v3/domains",
            Some(json!({"domain": {"name": name}})),
            Some(admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["domain"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn defaults_are_served_per_group_and_option() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let r = c
            .call(
                Method::GET,
                "/v3/domains/config/default",
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["config"]["identity"]["driver"], "sql");
        assert!(r.body["config"]["identity"]
            .as_object()
            .unwrap()
            .contains_key("list_limit"));
        assert_eq!(r.body["config"]["ldap"]["url"], "ldap://localhost");
        assert!(r.body["config"]["ldap"].get("password").is_none());
        let g = c
            .call(
                Method::GET,
                "/v3/domains/config/ldap/default",
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(g.body["config"]["ldap"], r.body["config"]["ldap"]);
        let o = c
            .call(
                Method::GET,
                "/v3/domains/config/ldap/user_tree_dn/default",
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(o.status, StatusCode::OK);
        assert_eq!(o.body, json!({"config": {"user_tree_dn": null}}));
        for (path, status) in [
            (
                "/v3/domains/config/ldap/password/default",
                StatusCode::FORBIDDEN,
            ),
            (
                "/v3/domains/config/assignment/default",
                StatusCode::FORBIDDEN,
            ),
            (
                "/v3/domains/config/ldap/colour/default",
                StatusCode::FORBIDDEN,
            ),
        ] {
            let r = c.call(Method::GET, path, None, Some(&admin)).await;
            assert_eq!(r.status, status, "{path}");
            assert_eq!(r.body["error"]["code"], status.as_u16());
        }
    }
}

#[tokio::test]
async fn domain_config_lifecycle() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let d = new_domain(&c, &admin, "ldap-domain").await;
        let base = format!("/v3/domains/{d}/config");
        let r = c.call(Method::GET, &base, None, Some(&admin)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        // Refused configurations change nothing.
        for bad in [
            json!({"config": {}}),
            json!({"config": {"identity": {}}}),
            json!({"config": {"identity": "ldap"}}),
            json!({"config": {"assignment": {"driver": "sql"}}}),
            json!({"config": {"identity": {"driver": "ldap"}, "ldap": {"colour": "red"}}}),
        ] {
            let r = c
                .call(Method::PUT, &base, Some(bad.clone()), Some(&admin))
                .await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{bad}");
        }
        let r = c
            .call(
                Method::PUT,
                &base,
                Some(json!({"config": []})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = c.call(Method::GET, &base, None, Some(&admin)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        let config = json!({
            "identity": {"driver": "ldap", "list_limit": 7},
            "ldap": {"url": "ldap://ldap.example:389/", "user_tree_dn": "ou=Users,dc=example", "password": "s3cret"},
        });
        let r = c
            .call(
                Method::PUT,
                &base,
                Some(json!({ "config": config })),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let mut shown = config.clone();
        shown["ldap"].as_object_mut().unwrap().remove("password");
        assert_eq!(r.body["config"], shown);
        let r = c.call(Method::GET, &base, None, Some(&admin)).await;
        assert_eq!(r.body["config"], shown);
        let r = c
            .call(Method::GET, &format!("{base}/identity"), None, Some(&admin))
            .await;
        assert_eq!(
            r.body,
            json!({"config": {"identity": {"driver": "ldap", "list_limit": 7}}})
        );
        let r = c
            .call(
                Method::GET,
                &format!("{base}/identity/list_limit"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(r.body, json!({"config": {"list_limit": 7}}));
        // The password is stored but never shown.
        let r = c
            .call(
                Method::GET,
                &format!("{base}/ldap/password"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        // Group and option updates: only what the URL names, and only if it is set.
        let r = c
            .call(
                Method::PATCH,
                &format!("{base}/identity"),
                Some(json!({"config": {"ldap": {"url": "ldap://x"}}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = c
            .call(
                Method::PATCH,
                &format!("{base}/ldap/user_filter"),
                Some(json!({"config": {"user_filter": "(x=y)"}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = c
            .call(
                Method::PATCH,
                &format!("{base}/identity"),
                Some(json!({"config": {"identity": {"driver": "custom", "list_limit": 3}}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(
            r.body["config"]["identity"],
            json!({"driver": "custom", "list_limit": 3})
        );
        assert_eq!(r.body["config"]["ldap"], shown["ldap"]);
        let r = c
            .call(
                Method::PATCH,
                &format!("{base}/identity/driver"),
                Some(json!({"config": {"driver": "other"}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["config"]["identity"]["driver"], "other");
        let r = c
            .call(
                Method::PATCH,
                &base,
                Some(json!({"config": {"ldap": {"user_filter": "(a=b)"}}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["config"]["ldap"]["user_filter"], "(a=b)");
        assert_eq!(r.body["config"]["ldap"]["url"], "ldap://ldap.example:389/");

        // Readers may look, members may not.
        c.user_with_role(&admin, "mona", "mona-pw-1", "member")
            .await;
        let mona = c
            .login("mona", "mona-pw-1", Some("mona-project"))
            .await
            .subject_token();
        let r = c.call(Method::GET, &base, None, Some(&mona)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = c.call(Method::DELETE, &base, None, Some(&mona)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);

        // Deletes: option, group, whole.
        let r = c
            .call(
                Method::DELETE,
                &format!("{base}/identity/driver"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c
            .call(
                Method::GET,
                &format!("{base}/identity/driver"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = c
            .call(
                Method::DELETE,
                &format!("{base}/identity/driver"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = c
            .call(
                Method::DELETE,
                &format!("{base}/identity"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c
            .call(Method::GET, &format!("{base}/identity"), None, Some(&admin))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        // PUT replaces the whole configuration and answers 200 when one existed.
        let r = c
            .call(
                Method::PUT,
                &base,
                Some(json!({"config": {"identity": {"driver": "ldap"}}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["config"], json!({"identity": {"driver": "ldap"}}));
        let r = c.call(Method::DELETE, &base, None, Some(&admin)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c.call(Method::GET, &base, None, Some(&admin)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        let r = c
            .call(Method::GET, "/v3/domains/nosuch/config", None, Some(&admin))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn config_goes_with_its_domain_and_security_compliance_is_readable() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let d = new_domain(&c, &admin, "short-lived").await;
        let base = format!("/v3/domains/{d}/config");
        let r = c
            .call(
                Method::PUT,
                &base,
                Some(json!({"config": {"identity": {"driver": "ldap"}}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let r = c
            .call(
                Method::PATCH,
                &format!("/v3/domains/{d}"),
                Some(json!({"domain": {"enabled": false}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let r = c
            .call(
                Method::DELETE,
                &format!("/v3/domains/{d}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let rows = c.identity.store.domain_config(&d).await.unwrap();
        assert!(rows.is_empty());

        c.user_with_role(&admin, "sam", "sam-pw-1", "member").await;
        let sam = c
            .login("sam", "sam-pw-1", Some("sam-project"))
            .await
            .subject_token();
        let r = c
            .call(
                Method::GET,
                "/v3/domains/default/config/security_compliance",
                None,
                Some(&sam),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let keys: Vec<&String> = r.body["config"]["security_compliance"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys, ["password_regex", "password_regex_description"]);
        let r = c
            .call(
                Method::GET,
                "/v3/domains/default/config/security_compliance/lockout_duration",
                None,
                Some(&sam),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let other = new_domain(&c, &admin, "other").await;
        let r = c
            .call(
                Method::GET,
                &format!("/v3/domains/{other}/config/security_compliance"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.body["error"]["code"], Value::from(403));
    }
}
