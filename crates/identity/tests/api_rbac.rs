//! Who may do what: readers cannot write, scoping to a disabled project fails, a domain
//! manager cannot reach into another domain, users see themselves but not others, and
//! every refused request changes nothing.

mod harness;

use axum::http::{Method, StatusCode};
use harness::clouds;
use serde_json::json;

#[tokio::test]
async fn readers_cannot_write_and_nothing_changes() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let (reader_id, _) = c
            .user_with_role(&admin, "rita", "rita-pass", "reader")
            .await;
        let rita = c.login("rita", "rita-pass", Some("rita-project")).await;
        assert_eq!(rita.status, StatusCode::CREATED, "{}", c.engine);
        let rita = rita.subject_token();

        let before = c
            .call(Method::GET, "/v3/projects", None, Some(&admin))
            .await
            .body["projects"]
            .as_array()
            .unwrap()
            .len();
        for (method, path, body) in [
            (
                Method::POST,
                "/v3/projects",
                json!({"project": {"name": "nope"}}),
            ),
            (Method::POST, "/v3/users", json!({"user": {"name": "nope"}})),
            (Method::POST, "/v3/roles", json!({"role": {"name": "nope"}})),
            (
                Method::PATCH,
                &*format!("/v3/users/{reader_id}"),
                json!({"user": {"enabled": false}}),
            ),
        ] {
            let r = c.call(method.clone(), path, Some(body), Some(&rita)).await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{method} {path}: {:?}",
                r.body
            );
            assert_eq!(r.body["error"]["title"], "Forbidden");
        }
        let after = c
            .call(Method::GET, "/v3/projects", None, Some(&admin))
            .await
            .body["projects"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(before, after);
        let me = c
            .call(
                Method::GET,
                &format!("/v3/users/{reader_id}"),
                None,
                Some(&rita),
            )
            .await;
        assert_eq!(me.status, StatusCode::OK, "a user may read themselves");
        assert_eq!(me.body["user"]["enabled"], true);
        let admin_id = c
            .call(Method::GET, "/v3/users?name=admin", None, Some(&admin))
            .await
            .body["users"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            c.call(
                Method::GET,
                &format!("/v3/users/{admin_id}"),
                None,
                Some(&rita)
            )
            .await
            .status,
            StatusCode::FORBIDDEN
        );
        assert!(me.body["user"].get("password").is_none());
    }
}

#[tokio::test]
async fn disabled_project_and_user_cannot_be_used() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let (uid, pid) = c
            .user_with_role(&admin, "paul", "paul-pass", "member")
            .await;
        let live = c
            .login("paul", "paul-pass", Some("paul-project"))
            .await
            .subject_token();
        let r = c
            .call(
                Method::PATCH,
                &format!("/v3/projects/{pid}"),
                Some(json!({"project": {"enabled": false}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            c.login("paul", "paul-pass", Some("paul-project"))
                .await
                .status,
            StatusCode::UNAUTHORIZED,
            "{}",
            c.engine
        );
        assert_eq!(
            c.call(Method::GET, "/v3/auth/catalog", None, Some(&live))
                .await
                .status,
            StatusCode::UNAUTHORIZED,
            "tokens of a disabled project die"
        );
        // Unscoped still works; disabling the user ends that too.
        assert_eq!(
            c.login("paul", "paul-pass", None).await.status,
            StatusCode::CREATED
        );
        c.call(
            Method::PATCH,
            &format!("/v3/users/{uid}"),
            Some(json!({"user": {"enabled": false}})),
            Some(&admin),
        )
        .await;
        let r = c.login("paul", "paul-pass", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disabled"));
        // Bad types are refused before anything is written.
        let r = c
            .call(
                Method::PATCH,
                &format!("/v3/users/{uid}"),
                Some(json!({"user": {"enabled": "yes"}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = c
            .call(
                Method::POST,
                "/v3/users",
                Some(json!({"user": {"name": 7}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = c
            .call(
                Method::POST,
                "/v3/users",
                Some(json!({"user": {"name": "paul", "domain_id": "default"}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "duplicate name in a domain");
    }
}

#[tokio::test]
async fn domain_manager_stays_in_its_domain() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let mut ids = Vec::new();
        for name in ["dom-a", "dom-b"] {
            let r = c
                .call(
                    Method::POST,
                    "/v3/domains",
                    Some(json!({"domain": {"name": name}})),
                    Some(&admin),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED);
            ids.push(r.body["domain"]["id"].as_str().unwrap().to_string());
        }
        let (a, b) = (&ids[0], &ids[1]);
        let u = c
            .call(
                Method::POST,
                "/v3/users",
                Some(json!({"user": {"name": "mgr", "domain_id": a, "password": "mgr-pass"}})),
                Some(&admin),
            )
            .await;
        let mgr_id = u.body["user"]["id"].as_str().unwrap().to_string();
        let roles = c
            .call(Method::GET, "/v3/roles?name=manager", None, Some(&admin))
            .await;
        let manager = roles.body["roles"][0]["id"].as_str().unwrap().to_string();
        let g = c
            .call(
                Method::PUT,
                &format!("/v3/domains/{a}/users/{mgr_id}/roles/{manager}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(g.status, StatusCode::NO_CONTENT);
        let auth = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": mgr_id, "password": "mgr-pass"}}}, "scope": {"domain": {"id": a}}}});
        let tok = c
            .call(Method::POST, "/v3/auth/tokens", Some(auth), None)
            .await;
        assert_eq!(tok.status, StatusCode::CREATED, "{:?}", tok.body);
        assert_eq!(tok.body["token"]["domain"]["id"], a.as_str());
        let mgr = tok.subject_token();
        let mine = c
            .call(
                Method::POST,
                "/v3/users",
                Some(json!({"user": {"name": "staff", "domain_id": a}})),
                Some(&mgr),
            )
            .await;
        assert_eq!(mine.status, StatusCode::CREATED, "{:?}", mine.body);
        let theirs = c
            .call(
                Method::POST,
                "/v3/users",
                Some(json!({"user": {"name": "staff", "domain_id": b}})),
                Some(&mgr),
            )
            .await;
        assert_eq!(theirs.status, StatusCode::FORBIDDEN);
        let listed = c
            .call(
                Method::GET,
                &format!("/v3/users?domain_id={b}"),
                None,
                Some(&mgr),
            )
            .await;
        assert!(
            listed.status == StatusCode::FORBIDDEN
                || listed.body["users"]
                    .as_array()
                    .is_some_and(|u| u.iter().all(|u| u["domain_id"] == a.as_str())),
            "{:?}",
            listed.body
        );
    }
}
