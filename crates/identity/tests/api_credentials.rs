//! Credentials and EC2 credentials over HTTP, on every database engine.

mod harness;

use axum::http::{Method, StatusCode};
use harness::clouds;
use serde_json::{json, Value};

#[tokio::test]
async fn credentials_crud_filters_and_ownership() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let (uid, pid) = c
            .user_with_role(&admin, "alice", "alice-pw-1", "member")
            .await;
        let alice = c
            .login("alice", "alice-pw-1", Some("alice-project"))
            .await
            .subject_token();
        let (bob, _) = c.user_with_role(&admin, "bob", "bob-pw-1", "member").await;

        // ec2 credentials need a project and a JSON blob with an access key.
        let blob = r#"{"access": "AK1", "secret": "SK1"}"#;
        for bad in [
            json!({"credential": {"user_id": uid, "type": "ec2", "blob": blob}}),
            json!({"credential": {"user_id": uid, "type": "ec2", "project_id": pid, "blob": "not json"}}),
            json!({"credential": {"user_id": uid, "type": "ec2", "project_id": pid, "blob": "{\"secret\": \"x\"}"}}),
            json!({"credential": {"user_id": uid, "type": "ec2", "project_id": pid}}),
            json!({"credential": {"type": "ec2", "project_id": pid, "blob": blob}}),
        ] {
            let r = c
                .call(
                    Method::POST,
                    "/v3/credentials",
                    Some(bad.clone()),
                    Some(&admin),
                )
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad} {:?}", r.body);
        }
        assert!(c
            .call(Method::GET, "/v3/credentials", None, Some(&admin))
            .await
            .body["credentials"]
            .as_array()
            .unwrap()
            .is_empty());

        // The owner creates one; the id is the SHA-256 of the access key.
        let r = c
            .call(
                Method::POST,
                "/v3/credentials",
                Some(json!({"credential": {"user_id": uid, "type": "ec2", "project_id": pid, "blob": blob}})),
                Some(&alice),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let id = r.body["credential"]["id"].as_str().unwrap().to_string();
        assert_eq!(id, ferrostack_identity::service::credentials::ec2_id("AK1"));
        assert_eq!(r.body["credential"]["blob"], blob);
        let dup = c
            .call(
                Method::POST,
                "/v3/credentials",
                Some(json!({"credential": {"user_id": uid, "type": "ec2", "project_id": pid, "blob": blob}})),
                Some(&admin),
            )
            .await;
        assert_eq!(dup.status, StatusCode::CONFLICT);
        // Not for someone else.
        let r = c
            .call(
                Method::POST,
                "/v3/credentials",
                Some(json!({"credential": {"user_id": bob, "type": "totp", "blob": "x"}})),
                Some(&alice),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = c
            .call(
                Method::POST,
                "/v3/credentials",
                Some(json!({"credential": {"user_id": bob, "type": "totp", "blob": "bob-secret"}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let bob_cred = r.body["credential"]["id"].as_str().unwrap().to_string();

        // The blob is not stored in clear.
        let raw: Vec<String> = ferrostack_db::sqlx::query_scalar("SELECT blob FROM credentials")
            .fetch_all(c.identity.store.db.pool())
            .await
            .unwrap();
        assert!(raw
            .iter()
            .all(|b| !b.contains("SK1") && !b.contains("bob-secret")));

        // Lists: admin sees both and filters; alice sees only hers.
        let ids = |v: &Value| -> Vec<String> {
            v["credentials"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string())
                .collect()
        };
        let all = c
            .call(Method::GET, "/v3/credentials", None, Some(&admin))
            .await;
        assert_eq!(ids(&all.body).len(), 2);
        let totp = c
            .call(Method::GET, "/v3/credentials?type=totp", None, Some(&admin))
            .await;
        assert_eq!(ids(&totp.body), vec![bob_cred.clone()]);
        let by_user = c
            .call(
                Method::GET,
                &format!("/v3/credentials?user_id={uid}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(ids(&by_user.body), vec![id.clone()]);
        let mine = c
            .call(Method::GET, "/v3/credentials", None, Some(&alice))
            .await;
        assert_eq!(ids(&mine.body), vec![id.clone()]);
        let r = c
            .call(
                Method::GET,
                &format!("/v3/credentials/{bob_cred}"),
                None,
                Some(&alice),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);

        // Update the blob; the id stays.
        let new_blob = r#"{"access": "AK2", "secret": "SK2"}"#;
        let r = c
            .call(
                Method::PATCH,
                &format!("/v3/credentials/{id}"),
                Some(json!({"credential": {"blob": new_blob}})),
                Some(&alice),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["credential"]["id"], id.as_str());
        let g = c
            .call(
                Method::GET,
                &format!("/v3/credentials/{id}"),
                None,
                Some(&alice),
            )
            .await;
        assert_eq!(g.body["credential"]["blob"], new_blob);
        let bad = c
            .call(
                Method::PATCH,
                &format!("/v3/credentials/{id}"),
                Some(json!({"credential": {"blob": "nope"}})),
                Some(&alice),
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);

        let d = c
            .call(
                Method::DELETE,
                &format!("/v3/credentials/{id}"),
                None,
                Some(&alice),
            )
            .await;
        assert_eq!(d.status, StatusCode::NO_CONTENT);
        let g = c
            .call(
                Method::GET,
                &format!("/v3/credentials/{id}"),
                None,
                Some(&alice),
            )
            .await;
        assert_eq!(g.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn ec2_credentials_of_a_user() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let (uid, pid) = c
            .user_with_role(&admin, "carol", "carol-pw-1", "member")
            .await;
        let (dave, _) = c
            .user_with_role(&admin, "dave", "dave-pw-1", "member")
            .await;
        let carol = c
            .login("carol", "carol-pw-1", Some("carol-project"))
            .await
            .subject_token();
        let base = format!("/v3/users/{uid}/credentials/OS-EC2");
        let r = c
            .call(
                Method::POST,
                &base,
                Some(json!({"tenant_id": pid})),
                Some(&carol),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let cred = &r.body["credential"];
        let access = cred["access"].as_str().unwrap().to_string();
        assert!(!cred["secret"].as_str().unwrap().is_empty());
        assert_eq!(cred["user_id"], uid.as_str());
        assert_eq!(cred["tenant_id"], pid.as_str());

        let missing = c
            .call(
                Method::POST,
                &base,
                Some(json!({"tenant_id": "nope"})),
                Some(&carol),
            )
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        let other = c
            .call(
                Method::POST,
                &format!("/v3/users/{dave}/credentials/OS-EC2"),
                Some(json!({"tenant_id": pid})),
                Some(&carol),
            )
            .await;
        assert_eq!(other.status, StatusCode::FORBIDDEN);

        let l = c.call(Method::GET, &base, None, Some(&carol)).await;
        assert_eq!(l.status, StatusCode::OK);
        assert_eq!(l.body["credentials"][0]["access"], access.as_str());
        let s = c
            .call(Method::GET, &format!("{base}/{access}"), None, Some(&carol))
            .await;
        assert_eq!(s.status, StatusCode::OK);
        assert_eq!(s.body["credential"]["secret"], cred["secret"]);
        // Visible as a generic credential too.
        let g = c
            .call(
                Method::GET,
                &format!("/v3/credentials?user_id={uid}&type=ec2"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(g.body["credentials"].as_array().unwrap().len(), 1);

        let d = c
            .call(
                Method::DELETE,
                &format!("{base}/{access}"),
                None,
                Some(&carol),
            )
            .await;
        assert_eq!(d.status, StatusCode::NO_CONTENT);
        let s = c
            .call(Method::GET, &format!("{base}/{access}"), None, Some(&carol))
            .await;
        assert_eq!(s.status, StatusCode::NOT_FOUND);
    }
}
