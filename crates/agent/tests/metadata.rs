//! The metadata service as a network's metadata proxy reaches it: requests signed with
//! the shared secret for one server get that server's documents (OpenStack and EC2
//! formats, the same content as its config drive); anything unsigned or mis-signed gets
//! nothing.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::Cloud;
use ferrostack_compute::http::metadata_api::{router, sign};
use serde_json::{json, Value};
use tower::ServiceExt;

async fn get(
    c: &Cloud,
    path: &str,
    instance: Option<&str>,
    signature: Option<String>,
) -> (StatusCode, String) {
    let mut req = Request::builder().uri(path);
    if let Some(id) = instance {
        req = req.header("x-instance-id", id);
    }
    if let Some(sig) = signature {
        req = req.header("x-instance-id-signature", sig);
    }
    let resp = router(c.compute.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn signed_requests_get_their_servers_metadata() {
    for url in common::urls().await {
        let c = Cloud::new(&url, 1).await;
        let t = c.token("alice", "alpha").await;
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGa8bM3nEj7rLw4bGQW1n8n4q9mWl1uKkqX0lA3bHcQe test";
        let (st, _, _) = c
            .call(
                "POST",
                "/v2.1/os-keypairs",
                &t,
                "2.1",
                Some(json!({"keypair": {"name": "k", "public_key": key}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        let (st, body, _) = c
            .call("POST", "/v2.1/servers", &t, "latest", Some(json!({"server": {
                "name": "Meta Box", "imageRef": c.image_id, "flavorRef": "1", "networks": "none",
                "key_name": "k", "metadata": {"role": "db"}, "user_data": "IyEvYmluL3NoCmVjaG8gaGk="}})))
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{body}");
        let id = body["server"]["id"].as_str().unwrap().to_string();
        c.wait_status(&t, &id, "ACTIVE").await;
        let signed = || Some(sign(common::METADATA_SECRET, &id));

        let (st, doc) = get(&c, "/openstack/latest/meta_data.json", Some(&id), signed()).await;
        assert_eq!(st, StatusCode::OK, "{doc}");
        let doc: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(doc["uuid"], json!(id));
        assert_eq!(doc["hostname"], "meta-box");
        assert_eq!(doc["meta"]["role"], "db");
        assert_eq!(doc["public_keys"]["k"], format!("{key}\n"));
        assert!(
            doc.get("admin_pass").is_none(),
            "passwords only travel on config drives"
        );
        let (st, data) = get(&c, "/openstack/2018-08-27/user_data", Some(&id), signed()).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(data, "#!/bin/sh\necho hi");
        let (_, listing) = get(&c, "/openstack/latest/", Some(&id), signed()).await;
        assert!(
            listing.lines().any(|l| l == "network_data.json"),
            "{listing}"
        );
        let (_, versions) = get(&c, "/openstack", None, None).await;
        assert!(versions.lines().any(|l| l == "latest"));

        // EC2 style, as older cloud-init and scripts use it.
        let (st, iid) = get(&c, "/latest/meta-data/instance-id", Some(&id), signed()).await;
        assert_eq!(st, StatusCode::OK);
        assert!(iid.starts_with("i-"), "{iid}");
        let (_, top) = get(&c, "/2009-04-04/meta-data/", Some(&id), signed()).await;
        assert!(top.lines().any(|l| l == "placement/"), "{top}");
        let (_, zone) = get(
            &c,
            "/latest/meta-data/placement/availability-zone",
            Some(&id),
            signed(),
        )
        .await;
        assert_eq!(zone, "nova");
        let (_, openssh) = get(
            &c,
            "/latest/meta-data/public-keys/0/openssh-key",
            Some(&id),
            signed(),
        )
        .await;
        assert_eq!(openssh, format!("{key}\n"));
        let (_, ud) = get(&c, "/latest/user-data", Some(&id), signed()).await;
        assert_eq!(ud, "#!/bin/sh\necho hi");

        // Nothing for the unsigned, the mis-signed, or a server that does not exist.
        let (st, _) = get(&c, "/openstack/latest/meta_data.json", None, None).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (st, _) = get(&c, "/openstack/latest/meta_data.json", Some(&id), None).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let forged = Some(sign("guess", &id));
        let (st, body) = get(&c, "/openstack/latest/meta_data.json", Some(&id), forged).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        assert!(!body.contains("Meta Box"));
        let other = uuid::Uuid::new_v4().to_string();
        let (st, _) = get(
            &c,
            "/openstack/latest/meta_data.json",
            Some(&other),
            Some(sign(common::METADATA_SECRET, &other)),
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = get(
            &c,
            "/openstack/1999-01-01/meta_data.json",
            Some(&id),
            signed(),
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
    }
}
