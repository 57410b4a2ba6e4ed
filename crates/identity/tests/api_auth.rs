//! Tokens, password rules and lockout over HTTP, on every database engine.

mod harness;

use axum::http::{Method, StatusCode};
use harness::{clouds, ADMIN_PASSWORD};
use serde_json::json;

#[tokio::test]
async fn issue_validate_revoke() {
    for c in clouds().await {
        let r = c.login("admin", ADMIN_PASSWORD, Some("admin")).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", c.engine);
        let token = r.subject_token();
        let body = &r.body["token"];
        assert!(body["expires_at"].as_str().unwrap().ends_with(".000000Z"));
        assert_eq!(body["project"]["name"], "admin");
        let roles: Vec<&str> = body["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        for implied in ["admin", "manager", "member", "reader"] {
            assert!(roles.contains(&implied), "{implied} missing from {roles:?}");
        }
        assert_eq!(body["catalog"][0]["type"], "identity");

        // Validation returns exactly what issue returned.
        let v = c
            .call_with(
                Method::GET,
                "/v3/auth/tokens",
                None,
                Some(&token),
                &[("x-subject-token", &token)],
            )
            .await;
        assert_eq!(v.status, StatusCode::OK);
        assert_eq!(v.body, r.body, "{}", c.engine);
        let nocat = c
            .call_with(
                Method::GET,
                "/v3/auth/tokens?nocatalog",
                None,
                Some(&token),
                &[("x-subject-token", &token)],
            )
            .await;
        assert!(nocat.body["token"].get("catalog").is_none());

        // A second token, then revoke the first: it dies at once, the second lives.
        let other = c.admin_token().await;
        let d = c
            .call_with(
                Method::DELETE,
                "/v3/auth/tokens",
                None,
                Some(&other),
                &[("x-subject-token", &token)],
            )
            .await;
        assert_eq!(d.status, StatusCode::NO_CONTENT);
        let v = c
            .call_with(
                Method::GET,
                "/v3/auth/tokens",
                None,
                Some(&other),
                &[("x-subject-token", &token)],
            )
            .await;
        assert_eq!(v.status, StatusCode::NOT_FOUND);
        let v = c.call(Method::GET, "/v3/users", None, Some(&token)).await;
        assert_eq!(v.status, StatusCode::UNAUTHORIZED);
        assert!(v.headers.get("www-authenticate").is_some());
        // Rescoping a revoked token is TokenNotFound (404), as Keystone answers.
        let rescope = c
            .call(
                Method::POST,
                "/v3/auth/tokens",
                Some(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": token}}}})),
                None,
            )
            .await;
        assert_eq!(rescope.status, StatusCode::NOT_FOUND);
        let ok = c.call(Method::GET, "/v3/users", None, Some(&other)).await;
        assert_eq!(ok.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn forged_and_garbage_tokens_are_rejected() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let mut forged = admin.clone().into_bytes();
        let mid = forged.len() / 2;
        forged[mid] = if forged[mid] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        for bad in [forged.as_str(), "", "x", &"A".repeat(5000)] {
            let r = c.call(Method::GET, "/v3/users", None, Some(bad)).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad:.20}");
            assert_eq!(r.body["error"]["code"], 401);
        }
        let r = c.call(Method::GET, "/v3/users", None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn malformed_auth_requests_are_400() {
    for c in clouds().await {
        for body in ["{", "[]", "{\"auth\": 1}", "{\"auth\": {\"identity\": {}}}", "{\"auth\": {\"identity\": {\"methods\": [\"password\"]}}}",
                     "{\"auth\": {\"identity\": {\"methods\": [\"password\"], \"password\": {\"user\": {\"name\": 5, \"password\": \"x\"}}}}}"] {
            let r = c.call_with(Method::POST, "/v3/auth/tokens", Some(body.into()), None, &[]).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body} -> {:?}", r.body);
            assert_eq!(r.body["error"]["title"], "Bad Request");
        }
        let big = format!("{{\"auth\": \"{}\"}}", "a".repeat(200_000));
        let r = c
            .call_with(Method::POST, "/v3/auth/tokens", Some(big), None, &[])
            .await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        let r = c.login("admin", "wrong", Some("admin")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body["error"]["message"].is_string());
    }
}

#[tokio::test]
async fn password_history_lockout_and_self_service() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let (uid, _) = c.user_with_role(&admin, "carol", "P0-pass", "member").await;
        let change =
            |old: &str, new: &str| json!({"user": {"original_password": old, "password": new}});
        let path = format!("/v3/users/{uid}/password");
        let before = c.login("carol", "P0-pass", None).await.subject_token();
        assert_eq!(
            c.call(
                Method::POST,
                &path,
                Some(change("P0-pass", "N1-pass")),
                None
            )
            .await
            .status,
            StatusCode::NO_CONTENT
        );
        // Old tokens are revoked; the old password no longer works; the new one does.
        let rescope = c
            .call(
                Method::POST,
                "/v3/auth/tokens",
                Some(
                    json!({"auth": {"identity": {"methods": ["token"], "token": {"id": before}}}}),
                ),
                None,
            )
            .await;
        assert_eq!(rescope.status, StatusCode::NOT_FOUND, "{}", c.engine);
        assert_eq!(
            c.login("carol", "P0-pass", None).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            c.login("carol", "N1-pass", None).await.status,
            StatusCode::CREATED,
            "{}",
            c.engine
        );
        // The current and the previous password are both in the window of 2.
        assert_eq!(
            c.call(
                Method::POST,
                &path,
                Some(change("N1-pass", "N1-pass")),
                None
            )
            .await
            .status,
            StatusCode::BAD_REQUEST,
            "{}",
            c.engine
        );
        assert_eq!(
            c.call(
                Method::POST,
                &path,
                Some(change("N1-pass", "P0-pass")),
                None
            )
            .await
            .status,
            StatusCode::BAD_REQUEST,
            "{}",
            c.engine
        );
        assert_eq!(
            c.call(Method::POST, &path, Some(change("wrong", "N2-pass")), None)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );

        // Lockout after 2 failures (the one above counts), for 2 seconds.
        assert_eq!(
            c.login("carol", "bad", None).await.status,
            StatusCode::UNAUTHORIZED
        );
        let locked = c.login("carol", "N1-pass", None).await;
        assert_eq!(locked.status, StatusCode::UNAUTHORIZED);
        assert!(
            locked.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("locked"),
            "{:?}",
            locked.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        assert_eq!(
            c.login("carol", "N1-pass", None).await.status,
            StatusCode::CREATED
        );
    }
}

#[tokio::test]
async fn list_limit_truncates() {
    let config = ferrostack_identity::IdentityConfig {
        password_hash_rounds: 4,
        list_limit: Some(2),
        ..Default::default()
    };
    let c = harness::TestCloud::with_config("sqlite::memory:", "sqlite", config).await;
    let admin = c.admin_token().await;
    for name in ["p1", "p2", "p3"] {
        let r = c
            .call(
                Method::POST,
                "/v3/projects",
                Some(json!({"project": {"name": name}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let r = c
        .call(Method::GET, "/v3/projects", None, Some(&admin))
        .await;
    assert_eq!(r.body["projects"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["truncated"], true);
    let r = c
        .call(Method::GET, "/v3/projects?name=p3", None, Some(&admin))
        .await;
    assert_eq!(r.body["projects"].as_array().unwrap().len(), 1);
    assert!(r.body.get("truncated").is_none());
}

#[tokio::test]
async fn catalog_changes_show_in_the_next_token_body() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let check = || async {
            c.call_with(
                Method::GET,
                "/v3/auth/tokens",
                None,
                Some(&admin),
                &[("x-subject-token", &admin)],
            )
            .await
        };
        assert_eq!(
            check().await.body["token"]["catalog"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let s = c
            .call(
                Method::POST,
                "/v3/services",
                Some(json!({"service": {"type": "compute", "name": "nova"}})),
                Some(&admin),
            )
            .await;
        let sid = s.body["service"]["id"].as_str().unwrap().to_string();
        let e = c
            .call(Method::POST, "/v3/endpoints", Some(json!({"endpoint": {"service_id": sid, "interface": "public", "url": "http://localhost/compute/v2.1/$(project_id)s"}})), Some(&admin))
            .await;
        assert_eq!(e.status, StatusCode::CREATED, "{:?}", e.body);
        let body = check().await.body;
        let compute = body["token"]["catalog"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["type"] == "compute")
            .cloned()
            .expect("new service in the catalog");
        let project = body["token"]["project"]["id"].as_str().unwrap();
        assert_eq!(
            compute["endpoints"][0]["url"],
            format!("http://localhost/compute/v2.1/{project}")
        );
        let d = c
            .call(
                Method::DELETE,
                &format!("/v3/services/{sid}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(d.status, StatusCode::NO_CONTENT);
        assert_eq!(
            check().await.body["token"]["catalog"]
                .as_array()
                .unwrap()
                .len(),
            1,
            "{}",
            c.engine
        );
    }
}

#[tokio::test]
async fn key_rotation_keeps_live_tokens_and_signs_new_ones_with_the_new_key() {
    let c = harness::TestCloud::new("sqlite::memory:", "sqlite").await;
    let before = c.admin_token().await;
    assert!(
        !c.identity.reload_keys_if_rotated().unwrap(),
        "nothing rotated yet"
    );
    let repo = ferrostack_identity::fernet::KeyRepository::new(c.keys_dir.clone(), 3);
    repo.rotate().unwrap();
    assert!(c.identity.reload_keys_if_rotated().unwrap());
    let after = c.admin_token().await;
    let new_primary = &repo.load().unwrap()[0];
    assert!(
        new_primary.decrypt(&after).is_some(),
        "new tokens use the new primary key"
    );
    assert!(new_primary.decrypt(&before).is_none());
    // Empty the validation cache so both tokens are really decrypted again.
    c.identity.changed().await.unwrap();
    for t in [&before, &after] {
        assert_eq!(
            c.call(Method::GET, "/v3/users", None, Some(t)).await.status,
            StatusCode::OK
        );
    }
}
