//! Endpoint validation details and endpoint groups (OS-EP-FILTER) over HTTP.

mod harness;

use axum::http::{Method, StatusCode};
use harness::clouds;
use serde_json::json;

#[tokio::test]
async fn endpoint_enabled_must_be_boolean_and_legacy_region_is_created() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let svc = c
            .call(
                Method::POST,
                "/v3/services",
                Some(json!({"service": {"type": "volume", "name": "cinder"}})),
                Some(&admin),
            )
            .await;
        let sid = svc.body["service"]["id"].as_str().unwrap();
        for enabled in [json!("False"), json!("True"), json!(1)] {
            let r = c
                .call(
                    Method::POST,
                    "/v3/endpoints",
                    Some(json!({"endpoint": {"service_id": sid, "interface": "public", "url": "http://x/", "region": "NewRegion", "enabled": enabled}})),
                    Some(&admin),
                )
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST);
        }
        // Nothing was created by the refused requests.
        let r = c
            .call(Method::GET, "/v3/regions/NewRegion", None, Some(&admin))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = c
            .call(
                Method::POST,
                "/v3/endpoints",
                Some(json!({"endpoint": {"service_id": sid, "interface": "public", "url": "http://x/", "region_id": "NoSuchRegion"}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = c
            .call(
                Method::POST,
                "/v3/endpoints",
                Some(json!({"endpoint": {"service_id": sid, "interface": "public", "url": "http://x/", "region": "NewRegion", "enabled": true}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["endpoint"]["region_id"], "NewRegion");
        let eid = r.body["endpoint"]["id"].as_str().unwrap();
        let r = c
            .call(Method::GET, "/v3/regions/NewRegion", None, Some(&admin))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let r = c
            .call(
                Method::PATCH,
                &format!("/v3/endpoints/{eid}"),
                Some(json!({"endpoint": {"enabled": "False"}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn endpoint_groups_crud() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let base = "/v3/OS-EP-FILTER/endpoint_groups";
        for bad in [
            json!({"endpoint_group": {"name": "g"}}),
            json!({"endpoint_group": {"name": "g", "filters": {"colour": "red"}}}),
            json!({"endpoint_group": {"name": "g", "filters": {"interface": "outside"}}}),
            json!({"endpoint_group": {"filters": {"service_id": "s"}}}),
        ] {
            let r = c
                .call(Method::POST, base, Some(bad.clone()), Some(&admin))
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let r = c
            .call(
                Method::POST,
                base,
                Some(json!({"endpoint_group": {"name": "g", "description": "d", "filters": {"service_id": "s1"}}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let created = r.body["endpoint_group"].clone();
        let id = created["id"].as_str().unwrap().to_string();
        let l = c.call(Method::GET, base, None, Some(&admin)).await;
        assert_eq!(l.body["endpoint_groups"][0], created);
        let h = c
            .call(Method::HEAD, &format!("{base}/{id}"), None, Some(&admin))
            .await;
        assert_eq!(h.status, StatusCode::OK);
        let u = c
            .call(
                Method::PATCH,
                &format!("{base}/{id}"),
                Some(json!({"endpoint_group": {"name": "g2", "filters": {"service_id": "s2", "interface": "public"}}})),
                Some(&admin),
            )
            .await;
        assert_eq!(u.status, StatusCode::OK);
        assert_eq!(u.body["endpoint_group"]["name"], "g2");
        assert_eq!(u.body["endpoint_group"]["description"], "d");
        assert_eq!(u.body["endpoint_group"]["filters"]["service_id"], "s2");
        // Members cannot manage them.
        c.user_with_role(&admin, "ivan", "ivan-pw-1", "member")
            .await;
        let ivan = c
            .login("ivan", "ivan-pw-1", Some("ivan-project"))
            .await
            .subject_token();
        let r = c
            .call(Method::DELETE, &format!("{base}/{id}"), None, Some(&ivan))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = c
            .call(Method::DELETE, &format!("{base}/{id}"), None, Some(&admin))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c
            .call(Method::GET, &format!("{base}/{id}"), None, Some(&admin))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}
