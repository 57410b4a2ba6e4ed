//! Projects acting as domains (`is_domain: true`) over HTTP, on every engine.

mod harness;

use axum::http::{Method, StatusCode};
use harness::clouds;
use serde_json::json;

#[tokio::test]
async fn is_domain_project_is_the_domain() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        for bad in [
            json!({"project": {"name": "d1", "is_domain": true, "domain_id": "default"}}),
            json!({"project": {"name": "d1", "is_domain": true, "parent_id": "default"}}),
            json!({"project": {"name": "d1", "is_domain": "yes"}}),
            json!({"project": {"is_domain": true}}),
        ] {
            let r = c
                .call(
                    Method::POST,
                    "/v3/projects",
                    Some(bad.clone()),
                    Some(&admin),
                )
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let r = c
            .call(Method::GET, "/v3/domains?name=d1", None, Some(&admin))
            .await;
        assert_eq!(
            r.body["domains"],
            json!([]),
            "refused requests create nothing"
        );

        let r = c
            .call(
                Method::POST,
                "/v3/projects",
                Some(json!({"project": {"name": "d1", "description": "acting", "domain_id": null, "is_domain": true, "tags": ["t"]}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let p = r.body["project"].clone();
        let id = p["id"].as_str().unwrap().to_string();
        assert_eq!(p["is_domain"], true);
        assert_eq!(p["domain_id"], json!(null));
        assert_eq!(p["parent_id"], json!(null));
        assert_eq!(p["tags"], json!(["t"]));

        let d = c
            .call(
                Method::GET,
                &format!("/v3/domains/{id}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(d.status, StatusCode::OK);
        assert_eq!(d.body["domain"]["name"], "d1");
        assert_eq!(d.body["domain"]["description"], "acting");
        let g = c
            .call(
                Method::GET,
                &format!("/v3/projects/{id}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(g.body["project"], p);

        // Listed with is_domain=true (and only then); domains list it too.
        let l = c
            .call(
                Method::GET,
                "/v3/projects?is_domain=True",
                None,
                Some(&admin),
            )
            .await;
        let ids: Vec<&str> = l.body["projects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert!(
            ids.contains(&id.as_str()) && ids.contains(&"default"),
            "{ids:?}"
        );
        let l = c
            .call(
                Method::GET,
                "/v3/projects?is_domain=true&name=d1",
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(l.body["projects"].as_array().unwrap().len(), 1);
        let l = c
            .call(Method::GET, "/v3/projects", None, Some(&admin))
            .await;
        assert!(l.body["projects"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["is_domain"] == false && p["id"] != json!(id)));

        // Its projects live in it.
        let r = c
            .call(
                Method::POST,
                "/v3/projects",
                Some(json!({"project": {"name": "inside", "domain_id": id}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.body["project"]["parent_id"], json!(id));

        // Updates through the project face.
        for bad in [
            json!({"project": {"is_domain": false}}),
            json!({"project": {"domain_id": "default"}}),
            json!({"project": {"enabled": "no"}}),
        ] {
            let r = c
                .call(
                    Method::PATCH,
                    &format!("/v3/projects/{id}"),
                    Some(bad.clone()),
                    Some(&admin),
                )
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let r = c
            .call(
                Method::DELETE,
                &format!("/v3/projects/{id}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "an enabled domain stays");
        c.user_with_role(&admin, "pia", "pia-pw-1", "member").await;
        let pia = c
            .login("pia", "pia-pw-1", Some("pia-project"))
            .await
            .subject_token();
        let r = c
            .call(
                Method::PATCH,
                &format!("/v3/projects/{id}"),
                Some(json!({"project": {"enabled": false}})),
                Some(&pia),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = c
            .call(
                Method::PATCH,
                &format!("/v3/projects/{id}"),
                Some(json!({"project": {"enabled": false, "description": "off"}})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["project"]["enabled"], false);
        assert_eq!(r.body["project"]["is_domain"], true);
        let d = c
            .call(
                Method::GET,
                &format!("/v3/domains/{id}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(d.body["domain"]["enabled"], false);
        assert_eq!(d.body["domain"]["description"], "off");
        let r = c
            .call(
                Method::DELETE,
                &format!("/v3/projects/{id}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let d = c
            .call(
                Method::GET,
                &format!("/v3/domains/{id}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(d.status, StatusCode::NOT_FOUND);
        let g = c
            .call(
                Method::GET,
                &format!("/v3/projects/{id}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(g.status, StatusCode::NOT_FOUND);
    }
}
