//! Trusts (OS-TRUST) and trust-scoped tokens over HTTP, on every database engine.

mod harness;

use axum::http::{Method, StatusCode};
use harness::{clouds, TestCloud};
use serde_json::{json, Value};

struct Setup {
    admin: String,
    trustor: String,
    trustor_token: String,
    trustee: String,
    project: String,
    delegated: String,
    kept: String,
}

async fn setup(c: &TestCloud) -> Setup {
    let admin = c.admin_token().await;
    let (trustor, project) = c.user_with_role(&admin, "tor", "tor-pw-1", "member").await;
    let (trustee, _) = c.user_with_role(&admin, "tee", "tee-pw-1", "member").await;
    let mut ids = Vec::new();
    for name in ["delegated", "kept"] {
        let r = c
            .call(
                Method::POST,
                "/v3/roles",
                Some(json!({"role": {"name": name}})),
                Some(&admin),
            )
            .await;
        let id = r.body["role"]["id"].as_str().unwrap().to_string();
        let g = c
            .call(
                Method::PUT,
                &format!("/v3/projects/{project}/users/{trustor}/roles/{id}"),
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(g.status, StatusCode::NO_CONTENT);
        ids.push(id);
    }
    let trustor_token = c
        .login("tor", "tor-pw-1", Some("tor-project"))
        .await
        .subject_token();
    Setup {
        admin,
        trustor,
        trustor_token,
        trustee,
        project,
        delegated: ids[0].clone(),
        kept: ids[1].clone(),
    }
}

fn trust_body(s: &Setup, extra: Value) -> Value {
    let mut t = json!({
        "trustor_user_id": s.trustor, "trustee_user_id": s.trustee, "project_id": s.project,
        "impersonation": true, "roles": [{"name": "delegated"}],
    });
    for (k, v) in extra.as_object().unwrap() {
        t[k] = v.clone();
    }
    json!({ "trust": t })
}

async fn trust_token(c: &TestCloud, user: &str, password: &str, trust: &str) -> harness::Reply {
    c.call(
        Method::POST,
        "/v3/auth/tokens",
        Some(json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"OS-TRUST:trust": {"id": trust}},
        }})),
        None,
    )
    .await
}

#[tokio::test]
async fn trust_lifecycle_and_validation() {
    for c in clouds().await {
        let s = setup(&c).await;
        let post = |body: Value, token: String| {
            let c = &c;
            async move {
                c.call(
                    Method::POST,
                    "/v3/OS-TRUST/trusts",
                    Some(body),
                    Some(&token),
                )
                .await
            }
        };
        for (bad, status) in [
            (
                trust_body(&s, json!({"expires_at": "bad.123Z"})),
                StatusCode::BAD_REQUEST,
            ),
            (
                trust_body(&s, json!({"remaining_uses": 0})),
                StatusCode::BAD_REQUEST,
            ),
            (
                trust_body(&s, json!({"impersonation": "yes"})),
                StatusCode::BAD_REQUEST,
            ),
            (
                trust_body(&s, json!({"roles": []})),
                StatusCode::BAD_REQUEST,
            ),
            (
                trust_body(&s, json!({"roles": [{"name": "admin"}]})),
                StatusCode::NOT_FOUND,
            ),
            (
                trust_body(&s, json!({"trustee_user_id": "nobody"})),
                StatusCode::NOT_FOUND,
            ),
            (
                trust_body(&s, json!({"trustor_user_id": s.trustee})),
                StatusCode::FORBIDDEN,
            ),
        ] {
            let r = post(bad.clone(), s.trustor_token.clone()).await;
            assert_eq!(r.status, status, "{bad} {:?}", r.body);
        }

        let r = post(
            trust_body(&s, json!({"expires_at": "2999-01-02T03:04:05Z"})),
            s.trustor_token.clone(),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let t = &r.body["trust"];
        let id = t["id"].as_str().unwrap().to_string();
        assert_eq!(t["expires_at"], "2999-01-02T03:04:05.000000Z");
        assert_eq!(t["impersonation"], true);
        assert_eq!(t["roles"][0]["id"], s.delegated.as_str());
        assert_eq!(t["roles"].as_array().unwrap().len(), 1);
        assert!(t["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v3/OS-TRUST/trusts/{id}")));

        let g = c
            .call(
                Method::GET,
                &format!("/v3/OS-TRUST/trusts/{id}"),
                None,
                Some(&s.trustor_token),
            )
            .await;
        assert_eq!(g.status, StatusCode::OK);
        assert_eq!(g.body["trust"]["trustee_user_id"], s.trustee.as_str());
        let roles = c
            .call(
                Method::GET,
                &format!("/v3/OS-TRUST/trusts/{id}/roles"),
                None,
                Some(&s.trustor_token),
            )
            .await;
        assert_eq!(roles.body["roles"].as_array().unwrap().len(), 1);
        for (role, status) in [
            (&s.delegated, StatusCode::OK),
            (&s.kept, StatusCode::NOT_FOUND),
        ] {
            for method in [Method::GET, Method::HEAD] {
                let r = c
                    .call(
                        method,
                        &format!("/v3/OS-TRUST/trusts/{id}/roles/{role}"),
                        None,
                        Some(&s.trustor_token),
                    )
                    .await;
                assert_eq!(r.status, status);
            }
        }

        // Listing: by trustor for the trustor; everything only for admins.
        let l = c
            .call(
                Method::GET,
                &format!("/v3/OS-TRUST/trusts?trustor_user_id={}", s.trustor),
                None,
                Some(&s.trustor_token),
            )
            .await;
        assert_eq!(l.status, StatusCode::OK);
        assert_eq!(l.body["trusts"].as_array().unwrap().len(), 1);
        let l = c
            .call(
                Method::GET,
                &format!("/v3/OS-TRUST/trusts?trustee_user_id={}", s.trustee),
                None,
                Some(&s.trustor_token),
            )
            .await;
        assert_eq!(l.status, StatusCode::FORBIDDEN);
        let l = c
            .call(
                Method::GET,
                "/v3/OS-TRUST/trusts",
                None,
                Some(&s.trustor_token),
            )
            .await;
        assert_eq!(l.status, StatusCode::FORBIDDEN);
        let l = c
            .call(Method::GET, "/v3/OS-TRUST/trusts", None, Some(&s.admin))
            .await;
        assert_eq!(l.body["trusts"].as_array().unwrap().len(), 1);

        // Only the trustor deletes; afterwards the trust is gone.
        let tee = c
            .login("tee", "tee-pw-1", Some("tee-project"))
            .await
            .subject_token();
        let d = c
            .call(
                Method::DELETE,
                &format!("/v3/OS-TRUST/trusts/{id}"),
                None,
                Some(&tee),
            )
            .await;
        assert_eq!(d.status, StatusCode::FORBIDDEN);
        let d = c
            .call(
                Method::DELETE,
                &format!("/v3/OS-TRUST/trusts/{id}"),
                None,
                Some(&s.trustor_token),
            )
            .await;
        assert_eq!(d.status, StatusCode::NO_CONTENT);
        let g = c
            .call(
                Method::GET,
                &format!("/v3/OS-TRUST/trusts/{id}"),
                None,
                Some(&s.trustor_token),
            )
            .await;
        assert_eq!(g.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn trust_scoped_tokens() {
    for c in clouds().await {
        let s = setup(&c).await;
        let r = c
            .call(
                Method::POST,
                "/v3/OS-TRUST/trusts",
                Some(trust_body(&s, json!({"remaining_uses": 2}))),
                Some(&s.trustor_token),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let id = r.body["trust"]["id"].as_str().unwrap().to_string();

        // The trustor is not the trustee.
        let r = trust_token(&c, "tor", "tor-pw-1", &id).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);

        // Impersonation: the token shows the trustor and only the delegated role.
        let r = trust_token(&c, "tee", "tee-pw-1", &id).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let tok = r.subject_token();
        let body = &r.body["token"];
        assert_eq!(body["OS-TRUST:trust"]["id"], id.as_str());
        assert_eq!(body["OS-TRUST:trust"]["impersonation"], true);
        assert_eq!(
            body["OS-TRUST:trust"]["trustee_user"]["id"],
            s.trustee.as_str()
        );
        assert_eq!(body["user"]["id"], s.trustor.as_str());
        assert_eq!(body["project"]["id"], s.project.as_str());
        let roles: Vec<&str> = body["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(roles, vec![s.delegated.as_str()]);
        let v = c
            .call_with(
                Method::GET,
                "/v3/auth/tokens",
                None,
                Some(&tok),
                &[("x-subject-token", &tok)],
            )
            .await;
        assert_eq!(v.status, StatusCode::OK);
        assert_eq!(v.body, r.body);

        // The token method works too (second use); a trust token cannot be rescoped.
        let unscoped = c.login("tee", "tee-pw-1", None).await.subject_token();
        let r = c
            .call(
                Method::POST,
                "/v3/auth/tokens",
                Some(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}}, "scope": {"OS-TRUST:trust": {"id": id}}}})),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let r = c
            .call(
                Method::POST,
                "/v3/auth/tokens",
                Some(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": tok}}, "scope": {"project": {"id": s.project}}}})),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // Both uses are spent.
        let r = trust_token(&c, "tee", "tee-pw-1", &id).await;
        assert_ne!(r.status, StatusCode::CREATED);

        // Without impersonation the trustee is the token's user; deleting the trust
        // revokes its tokens.
        let r = c
            .call(
                Method::POST,
                "/v3/OS-TRUST/trusts",
                Some(trust_body(&s, json!({"impersonation": false}))),
                Some(&s.trustor_token),
            )
            .await;
        let id2 = r.body["trust"]["id"].as_str().unwrap().to_string();
        let r = trust_token(&c, "tee", "tee-pw-1", &id2).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["token"]["user"]["id"], s.trustee.as_str());
        let tok2 = r.subject_token();
        let me = c
            .call(
                Method::GET,
                &format!("/v3/projects/{}", s.project),
                None,
                Some(&tok2),
            )
            .await;
        assert_eq!(me.status, StatusCode::OK);
        let d = c
            .call(
                Method::DELETE,
                &format!("/v3/OS-TRUST/trusts/{id2}"),
                None,
                Some(&s.trustor_token),
            )
            .await;
        assert_eq!(d.status, StatusCode::NO_CONTENT);
        let me = c
            .call(
                Method::GET,
                &format!("/v3/projects/{}", s.project),
                None,
                Some(&tok2),
            )
            .await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED);
        let r = trust_token(&c, "tee", "tee-pw-1", &id2).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}
