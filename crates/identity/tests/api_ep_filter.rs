//! OS-EP-FILTER project associations over HTTP, and their effect on token catalogs.

mod harness;

use axum::http::{Method, StatusCode};
use harness::{clouds, TestCloud};
use serde_json::{json, Value};

async fn post(c: &TestCloud, admin: &str, path: &str, body: Value) -> Value {
    let r = c.call(Method::POST, path, Some(body), Some(admin)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{path}: {:?}", r.body);
    r.body
}

fn ids(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// The endpoint ids in a token's catalog, sorted.
fn catalog_endpoints(token_body: &Value) -> Vec<String> {
    let mut v: Vec<String> = token_body["token"]["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["endpoints"].as_array().unwrap().clone())
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn project_endpoint_associations_filter_the_catalog() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let svc = post(
            &c,
            &admin,
            "/v3/services",
            json!({"service": {"type": "volume", "name": "cinder"}}),
        )
        .await;
        let sid = svc["service"]["id"].as_str().unwrap().to_string();
        let mut eps = vec![];
        for interface in ["public", "internal", "admin"] {
            let e = post(&c, &admin, "/v3/endpoints", json!({"endpoint": {"service_id": sid, "interface": interface, "url": format!("http://cinder/{interface}"), "region_id": "RegionOne"}})).await;
            eps.push(e["endpoint"]["id"].as_str().unwrap().to_string());
        }
        let (_, pid) = c
            .user_with_role(&admin, "erin", "erin-pw-1", "member")
            .await;
        let erin_catalog = || async {
            let r = c.login("erin", "erin-pw-1", Some("erin-project")).await;
            assert_eq!(r.status, StatusCode::CREATED);
            r.body
        };
        let full = catalog_endpoints(&erin_catalog().await);
        assert_eq!(
            full.len(),
            6,
            "three identity + three volume endpoints: {full:?}"
        );

        let pe = |p: &str, e: &str| format!("/v3/OS-EP-FILTER/projects/{p}/endpoints/{e}");
        // Unknown project or endpoint: 404, nothing stored.
        for path in [pe("nosuch", &eps[0]), pe(&pid, "nosuch")] {
            let r = c.call(Method::PUT, &path, None, Some(&admin)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        }
        let r = c
            .call(Method::GET, &pe(&pid, &eps[0]), None, Some(&admin))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = c
            .call(Method::PUT, &pe(&pid, &eps[0]), None, Some(&admin))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
        let r = c
            .call(Method::PUT, &pe(&pid, &eps[0]), None, Some(&admin))
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        for m in [Method::GET, Method::HEAD] {
            let r = c.call(m, &pe(&pid, &eps[0]), None, Some(&admin)).await;
            assert_eq!(r.status, StatusCode::NO_CONTENT);
        }
        let r = c
            .call(
                Method::GET,
                &format!("/v3/OS-EP-FILTER/projects/{pid}/endpoints"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(ids(&r.body["endpoints"]), vec![eps[0].clone()]);
        let r = c
            .call(
                Method::GET,
                &format!("/v3/OS-EP-FILTER/endpoints/{}/projects", eps[0]),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(ids(&r.body["projects"]), vec![pid.clone()]);

        // The project's tokens now show only that endpoint (and only its service).
        let body = erin_catalog().await;
        assert_eq!(catalog_endpoints(&body), vec![eps[0].clone()]);
        assert_eq!(body["token"]["catalog"].as_array().unwrap().len(), 1);
        // Other projects keep the whole catalog.
        let r = c
            .login("admin", harness::ADMIN_PASSWORD, Some("admin"))
            .await;
        assert_eq!(catalog_endpoints(&r.body), full);

        // Endpoint groups add what their filters select.
        let g = post(&c, &admin, "/v3/OS-EP-FILTER/endpoint_groups", json!({"endpoint_group": {"name": "internal", "filters": {"interface": "internal", "service_id": sid}}})).await;
        let gid = g["endpoint_group"]["id"].as_str().unwrap().to_string();
        let gp = format!("/v3/OS-EP-FILTER/endpoint_groups/{gid}/projects/{pid}");
        let r = c.call(Method::GET, &gp, None, Some(&admin)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = c.call(Method::PUT, &gp, None, Some(&admin)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
        let r = c.call(Method::PUT, &gp, None, Some(&admin)).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        let r = c.call(Method::GET, &gp, None, Some(&admin)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.body["project_endpoint_group"]["endpoint_group_id"],
            json!(gid)
        );
        assert_eq!(r.body["project_endpoint_group"]["project_id"], json!(pid));
        let r = c
            .call(
                Method::GET,
                &format!("/v3/OS-EP-FILTER/endpoint_groups/{gid}/projects"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(ids(&r.body["projects"]), vec![pid.clone()]);
        let r = c
            .call(
                Method::GET,
                &format!("/v3/OS-EP-FILTER/endpoint_groups/{gid}/endpoints"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(ids(&r.body["endpoints"]), vec![eps[1].clone()]);
        let r = c
            .call(
                Method::GET,
                &format!("/v3/OS-EP-FILTER/projects/{pid}/endpoint_groups"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(ids(&r.body["endpoint_groups"]), vec![gid.clone()]);
        let mut want = vec![eps[0].clone(), eps[1].clone()];
        want.sort();
        let r = c
            .call(
                Method::GET,
                &format!("/v3/OS-EP-FILTER/projects/{pid}/endpoints"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(ids(&r.body["endpoints"]), want);
        assert_eq!(catalog_endpoints(&erin_catalog().await), want);

        // Members can neither manage nor read associations.
        let erin = c
            .login("erin", "erin-pw-1", Some("erin-project"))
            .await
            .subject_token();
        let r = c
            .call(Method::PUT, &pe(&pid, &eps[2]), None, Some(&erin))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = c
            .call(
                Method::GET,
                &format!("/v3/OS-EP-FILTER/projects/{pid}/endpoints"),
                None,
                Some(&erin),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);

        // Deleting an endpoint or the group ends their associations.
        let r = c
            .call(
                Method::DELETE,
                &format!("/v3/endpoints/{}", eps[0]),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(
            catalog_endpoints(&erin_catalog().await),
            vec![eps[1].clone()]
        );
        let r = c.call(Method::DELETE, &gp, None, Some(&admin)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c.call(Method::DELETE, &gp, None, Some(&admin)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = c
            .call(Method::DELETE, &pe(&pid, &eps[0]), None, Some(&admin))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        // No associations left: the whole catalog again.
        assert_eq!(catalog_endpoints(&erin_catalog().await).len(), 5);

        // A project's deletion removes its associations.
        let r = c
            .call(Method::PUT, &pe(&pid, &eps[2]), None, Some(&admin))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c
            .call(
                Method::DELETE,
                &format!("/v3/projects/{pid}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c
            .call(
                Method::GET,
                &format!("/v3/OS-EP-FILTER/endpoints/{}/projects", eps[2]),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(r.body["projects"], json!([]));
        let r = c
            .call(
                Method::DELETE,
                &format!("/v3/OS-EP-FILTER/endpoint_groups/{gid}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c
            .call(
                Method::GET,
                &format!("/v3/OS-EP-FILTER/endpoint_groups/{gid}/projects"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}
