//! OAuth1 consumers (`/v3/OS-OAUTH1/consumers`) over HTTP, on every engine.

mod harness;

use axum::http::{Method, StatusCode};
use harness::clouds;
use serde_json::json;

const BASE: &str = "/v3/OS-OAUTH1/consumers";

#[tokio::test]
async fn consumers_crud_shows_the_secret_once() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let r = c
            .call(
                Method::POST,
                BASE,
                Some(json!({"consumer": {"description": "ci bot", "owner": "ops", "secret": "mine"}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let created = r.body["consumer"].clone();
        let id = created["id"].as_str().unwrap().to_string();
        let secret = created["secret"].as_str().unwrap().to_string();
        assert_ne!(secret, "mine", "the client cannot choose the secret");
        assert_eq!(secret.len(), 32);
        assert_eq!(created["description"], "ci bot");
        assert_eq!(created["owner"], "ops");
        assert!(created["links"]["self"].as_str().unwrap().ends_with(&id));

        // Stored sealed, opened with the credential keys.
        let stored = c.identity.existing_consumer(&id).await.unwrap();
        assert!(!stored.secret.contains(&secret));
        assert_eq!(c.identity.consumer_secret(&stored).unwrap(), secret);

        let g = c
            .call(Method::GET, &format!("{BASE}/{id}"), None, Some(&admin))
            .await;
        assert_eq!(g.status, StatusCode::OK);
        assert!(g.body["consumer"].get("secret").is_none());
        for k in ["id", "description", "links", "owner"] {
            assert_eq!(g.body["consumer"][k], created[k], "{k}");
        }
        let r = c
            .call(Method::POST, BASE, Some(json!({})), Some(&admin))
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.body["consumer"]["description"], json!(null));
        let l = c.call(Method::GET, BASE, None, Some(&admin)).await;
        assert_eq!(l.body["consumers"].as_array().unwrap().len(), 2);
        assert!(l.body["consumers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c.get("secret").is_none()));

        // Bad updates change nothing.
        for bad in [
            json!({"consumer": {}}),
            json!({"consumer": {"secret": "new"}}),
            json!({"consumer": {"id": "other"}}),
            json!({"consumer": {"description": 5}}),
            json!({"consumer": "x"}),
        ] {
            let r = c
                .call(
                    Method::PATCH,
                    &format!("{BASE}/{id}"),
                    Some(bad.clone()),
                    Some(&admin),
                )
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let u = c
            .call(
                Method::PATCH,
                &format!("{BASE}/{id}"),
                Some(json!({"consumer": {"description": "renamed"}})),
                Some(&admin),
            )
            .await;
        assert_eq!(u.status, StatusCode::OK, "{:?}", u.body);
        assert_eq!(u.body["consumer"]["description"], "renamed");
        assert_eq!(u.body["consumer"]["owner"], "ops");
        let stored = c.identity.existing_consumer(&id).await.unwrap();
        assert_eq!(c.identity.consumer_secret(&stored).unwrap(), secret);
        let r = c
            .call(
                Method::PATCH,
                &format!("{BASE}/nosuch"),
                Some(json!({"consumer": {"description": "x"}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        c.user_with_role(&admin, "olga", "olga-pw-1", "member")
            .await;
        let olga = c
            .login("olga", "olga-pw-1", Some("olga-project"))
            .await
            .subject_token();
        for (m, body) in [
            (Method::GET, None),
            (Method::DELETE, None),
            (
                Method::PATCH,
                Some(json!({"consumer": {"description": "x"}})),
            ),
        ] {
            let r = c
                .call(m.clone(), &format!("{BASE}/{id}"), body, Some(&olga))
                .await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{m}");
        }
        let r = c
            .call(
                Method::POST,
                BASE,
                Some(json!({"consumer": {}})),
                Some(&olga),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);

        let d = c
            .call(Method::DELETE, &format!("{BASE}/{id}"), None, Some(&admin))
            .await;
        assert_eq!(d.status, StatusCode::NO_CONTENT);
        let g = c
            .call(Method::GET, &format!("{BASE}/{id}"), None, Some(&admin))
            .await;
        assert_eq!(g.status, StatusCode::NOT_FOUND);
        assert_eq!(g.body["error"]["code"], 404);
        let d = c
            .call(Method::DELETE, &format!("{BASE}/{id}"), None, Some(&admin))
            .await;
        assert_eq!(d.status, StatusCode::NOT_FOUND);
    }
}
