//! Policy blobs (`/v3/policies`) over HTTP, on every database engine.

mod harness;

use axum::http::{Method, StatusCode};
use harness::clouds;
use serde_json::json;

#[tokio::test]
async fn policies_crud() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        for bad in [
            json!({"policy": {"blob": "b"}}),
            json!({"policy": {"type": "application/json"}}),
            json!({"policy": "x"}),
        ] {
            let r = c
                .call(
                    Method::POST,
                    "/v3/policies",
                    Some(bad.clone()),
                    Some(&admin),
                )
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let r = c
            .call(
                Method::POST,
                "/v3/policies",
                Some(
                    json!({"policy": {"type": "application/json", "blob": "{}", "owner": "nova"}}),
                ),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["policy"]["owner"], "nova");
        let id = r.body["policy"]["id"].as_str().unwrap().to_string();
        let u = c
            .call(
                Method::PATCH,
                &format!("/v3/policies/{id}"),
                Some(json!({"policy": {"type": "text/yaml"}})),
                Some(&admin),
            )
            .await;
        assert_eq!(u.status, StatusCode::OK);
        let g = c
            .call(
                Method::GET,
                &format!("/v3/policies/{id}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(g.body["policy"]["type"], "text/yaml");
        assert_eq!(g.body["policy"]["blob"], "{}");
        let l = c
            .call(
                Method::GET,
                "/v3/policies?type=text/yaml",
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(l.body["policies"].as_array().unwrap().len(), 1);
        c.user_with_role(&admin, "kim", "kim-pw-1", "member").await;
        let kim = c
            .login("kim", "kim-pw-1", Some("kim-project"))
            .await
            .subject_token();
        let r = c
            .call(
                Method::DELETE,
                &format!("/v3/policies/{id}"),
                None,
                Some(&kim),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = c
            .call(
                Method::DELETE,
                &format!("/v3/policies/{id}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c
            .call(
                Method::GET,
                &format!("/v3/policies/{id}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}
