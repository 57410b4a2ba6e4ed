//! Two control nodes sharing one PostgreSQL database: a token revoked or a role removed
//! through one node stops working on the other once it has caught up with the shared
//! revision (`ferrostack control` polls it every second). Needs `FERROSTACK_TEST_PG_URL`;
//! without it the test says so and checks the single-node path only.

mod harness;

use axum::http::{Method, StatusCode};
use harness::{TestCloud, ADMIN_PASSWORD};

#[tokio::test]
async fn revocation_reaches_the_other_node() {
    let Ok(admin_url) = std::env::var("FERROSTACK_TEST_PG_URL") else {
        eprintln!(
            "FERROSTACK_TEST_PG_URL not set: multi-node test runs on SQLite in one node only"
        );
        let a = TestCloud::new("sqlite::memory:", "sqlite").await;
        let t = a.admin_token().await;
        assert_eq!(
            a.call_with(
                Method::DELETE,
                "/v3/auth/tokens",
                None,
                Some(&t),
                &[("x-subject-token", &t)]
            )
            .await
            .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            a.call(Method::GET, "/v3/users", None, Some(&t))
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        return;
    };
    let url = harness::new_pg_database(&admin_url).await;
    let a = TestCloud::new(&url, "postgres").await;
    // Node B shares the database and, as in a real deployment, the Fernet keys.
    let b = TestCloud::sharing(&a, &url).await;

    let token = a
        .login("admin", ADMIN_PASSWORD, Some("admin"))
        .await
        .subject_token();
    let other = a.admin_token().await;
    assert_eq!(
        b.call(Method::GET, "/v3/users", None, Some(&token))
            .await
            .status,
        StatusCode::OK,
        "node B accepts node A's token"
    );

    let revoke = a
        .call_with(
            Method::DELETE,
            "/v3/auth/tokens",
            None,
            Some(&other),
            &[("x-subject-token", &token)],
        )
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);
    b.identity.sync_revision().await.unwrap();
    assert_eq!(
        b.call(Method::GET, "/v3/users", None, Some(&token))
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "revoked on A, refused on B"
    );
    assert_eq!(
        b.call(Method::GET, "/v3/users", None, Some(&other))
            .await
            .status,
        StatusCode::OK
    );

    // A role removed on A: B's cached validation of a token that relied on it is dropped.
    let (uid, pid) = a
        .user_with_role(&other, "dave", "dave-pass", "member")
        .await;
    let dave = a
        .login("dave", "dave-pass", Some("dave-project"))
        .await
        .subject_token();
    assert_eq!(
        b.call(Method::GET, "/v3/auth/catalog", None, Some(&dave))
            .await
            .status,
        StatusCode::OK
    );
    let roles = a
        .call(Method::GET, "/v3/roles?name=member", None, Some(&other))
        .await;
    let rid = roles.body["roles"][0]["id"].as_str().unwrap().to_string();
    let del = a
        .call(
            Method::DELETE,
            &format!("/v3/projects/{pid}/users/{uid}/roles/{rid}"),
            None,
            Some(&other),
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    b.identity.sync_revision().await.unwrap();
    assert_eq!(
        b.call(Method::GET, "/v3/auth/catalog", None, Some(&dave))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}
