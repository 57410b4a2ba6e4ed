//! Unified limits (registered limits and project limits) over HTTP, on every database engine.

mod harness;

use axum::http::{Method, StatusCode};
use harness::clouds;
use serde_json::json;

#[tokio::test]
async fn registered_limits_and_limits() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let (_, pid) = c
            .user_with_role(&admin, "gina", "gina-pw-1", "member")
            .await;
        let (_, other_pid) = c
            .user_with_role(&admin, "hank", "hank-pw-1", "member")
            .await;
        let gina = c
            .login("gina", "gina-pw-1", Some("gina-project"))
            .await
            .subject_token();
        let svc = c
            .call(
                Method::POST,
                "/v3/services",
                Some(json!({"service": {"type": "compute", "name": "nova"}})),
                Some(&admin),
            )
            .await;
        let sid = svc.body["service"]["id"].as_str().unwrap().to_string();

        let m = c
            .call(Method::GET, "/v3/limits/model", None, Some(&gina))
            .await;
        assert_eq!(m.status, StatusCode::OK);
        assert_eq!(m.body["model"]["name"], "flat");

        // Validation: unknown service or region, bad amounts, not a list; nothing is created.
        for bad in [
            json!({"registered_limits": [{"service_id": "nope", "resource_name": "cores", "default_limit": 10}]}),
            json!({"registered_limits": [{"service_id": sid, "region_id": "nowhere", "resource_name": "cores", "default_limit": 10}]}),
            json!({"registered_limits": [{"service_id": sid, "resource_name": "cores", "default_limit": -2}]}),
            json!({"registered_limits": [{"service_id": sid, "resource_name": "cores", "default_limit": "10"}]}),
            json!({"registered_limits": [{"service_id": sid, "resource_name": "ram", "default_limit": 1}, {"service_id": sid, "resource_name": "x", "default_limit": 1, "bogus": 1}]}),
            json!({"registered_limits": {"service_id": sid}}),
        ] {
            let r = c
                .call(
                    Method::POST,
                    "/v3/registered_limits",
                    Some(bad.clone()),
                    Some(&admin),
                )
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad} {:?}", r.body);
        }
        let l = c
            .call(Method::GET, "/v3/registered_limits", None, Some(&admin))
            .await;
        assert!(l.body["registered_limits"].as_array().unwrap().is_empty());

        let r = c
            .call(
                Method::POST,
                "/v3/registered_limits",
                Some(json!({"registered_limits": [
                    {"service_id": sid, "region_id": "RegionOne", "resource_name": "cores", "default_limit": 10},
                    {"service_id": sid, "resource_name": "ram", "default_limit": 2048, "description": "MiB"},
                ]})),
                Some(&gina),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = c
            .call(
                Method::POST,
                "/v3/registered_limits",
                Some(json!({"registered_limits": [
                    {"service_id": sid, "region_id": "RegionOne", "resource_name": "cores", "default_limit": 10},
                    {"service_id": sid, "resource_name": "ram", "default_limit": 2048, "description": "MiB"},
                ]})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let cores = r.body["registered_limits"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let ram = r.body["registered_limits"][1]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(r.body["registered_limits"][1]["region_id"], json!(null));
        let dup = c
            .call(
                Method::POST,
                "/v3/registered_limits",
                Some(json!({"registered_limits": [{"service_id": sid, "resource_name": "ram", "default_limit": 1}]})),
                Some(&admin),
            )
            .await;
        assert_eq!(dup.status, StatusCode::CONFLICT);
        let f = c
            .call(
                Method::GET,
                "/v3/registered_limits?resource_name=cores",
                None,
                Some(&gina),
            )
            .await;
        assert_eq!(f.body["registered_limits"].as_array().unwrap().len(), 1);
        let u = c
            .call(
                Method::PATCH,
                &format!("/v3/registered_limits/{ram}"),
                Some(json!({"registered_limit": {"default_limit": 4096}})),
                Some(&admin),
            )
            .await;
        assert_eq!(u.status, StatusCode::OK);
        assert_eq!(u.body["registered_limit"]["default_limit"], 4096);

        // Limits override a registered limit for one project.
        let none = c
            .call(
                Method::POST,
                "/v3/limits",
                Some(json!({"limits": [{"project_id": pid, "service_id": sid, "resource_name": "disk", "resource_limit": 5}]})),
                Some(&admin),
            )
            .await;
        assert_eq!(none.status, StatusCode::FORBIDDEN);
        let bad = c
            .call(
                Method::POST,
                "/v3/limits",
                Some(json!({"limits": [{"project_id": "nope", "service_id": sid, "resource_name": "ram", "resource_limit": 5}]})),
                Some(&admin),
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let r = c
            .call(
                Method::POST,
                "/v3/limits",
                Some(json!({"limits": [
                    {"project_id": pid, "service_id": sid, "resource_name": "ram", "resource_limit": 512},
                    {"project_id": other_pid, "service_id": sid, "region_id": "RegionOne", "resource_name": "cores", "resource_limit": 2},
                ]})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let mine = r.body["limits"][0]["id"].as_str().unwrap().to_string();
        let theirs = r.body["limits"][1]["id"].as_str().unwrap().to_string();
        let dup = c
            .call(
                Method::POST,
                "/v3/limits",
                Some(json!({"limits": [{"project_id": pid, "service_id": sid, "resource_name": "ram", "resource_limit": 1}]})),
                Some(&admin),
            )
            .await;
        assert_eq!(dup.status, StatusCode::CONFLICT);

        // A member sees only their project's limits.
        let l = c.call(Method::GET, "/v3/limits", None, Some(&gina)).await;
        assert_eq!(l.body["limits"].as_array().unwrap().len(), 1);
        assert_eq!(l.body["limits"][0]["id"], mine.as_str());
        let g = c
            .call(
                Method::GET,
                &format!("/v3/limits/{theirs}"),
                None,
                Some(&gina),
            )
            .await;
        assert_eq!(g.status, StatusCode::FORBIDDEN);
        let l = c
            .call(
                Method::GET,
                "/v3/limits?resource_name=cores",
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(l.body["limits"].as_array().unwrap().len(), 1);

        let u = c
            .call(
                Method::PATCH,
                &format!("/v3/limits/{mine}"),
                Some(json!({"limit": {"resource_limit": 1024, "description": "more"}})),
                Some(&admin),
            )
            .await;
        assert_eq!(u.status, StatusCode::OK);
        assert_eq!(u.body["limit"]["resource_limit"], 1024);
        let u = c
            .call(
                Method::PATCH,
                &format!("/v3/limits/{mine}"),
                Some(json!({"limit": {"project_id": other_pid}})),
                Some(&admin),
            )
            .await;
        assert_eq!(u.status, StatusCode::BAD_REQUEST);

        // A registered limit in use cannot move or go.
        let r = c
            .call(
                Method::DELETE,
                &format!("/v3/registered_limits/{ram}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = c
            .call(
                Method::PATCH,
                &format!("/v3/registered_limits/{ram}"),
                Some(json!({"registered_limit": {"resource_name": "memory"}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        for id in [&mine, &theirs] {
            let r = c
                .call(
                    Method::DELETE,
                    &format!("/v3/limits/{id}"),
                    None,
                    Some(&admin),
                )
                .await;
            assert_eq!(r.status, StatusCode::NO_CONTENT);
        }
        for id in [&ram, &cores] {
            let r = c
                .call(
                    Method::DELETE,
                    &format!("/v3/registered_limits/{id}"),
                    None,
                    Some(&admin),
                )
                .await;
            assert_eq!(r.status, StatusCode::NO_CONTENT);
        }
        let r = c
            .call(
                Method::GET,
                &format!("/v3/registered_limits/{ram}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}
