//! The metadata service: what a guest learns about itself over HTTP, in OpenStack's format
//! (`/openstack/<version>/meta_data.json`, `network_data.json`, `vendor_data2.json`,
//! `user_data`) and the EC2 style (`/<version>/meta-data/<key>`, `/<version>/user-data`),
//! with the same content as the config drive ([`crate::service::metadata`]).
//!
//! Guests never reach it directly. As with Nova behind Neutron's metadata proxy, the proxy
//! on the guest's network answers 169.254.169.254, knows which server sent the request
//! from its port, and forwards it here with `X-Instance-ID` and `X-Instance-ID-Signature`
//! (hex HMAC-SHA256 of the id under `metadata_proxy_shared_secret`). A request without a
//! valid signature learns nothing; without a configured secret the service answers no one.
//! Mounted at `/metadata` on the API listener.

use axum::extract::{Path, State as AxState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::State;
use crate::model::Instance;
use crate::service::metadata;

/// The OpenStack metadata versions a guest may ask for (cloud-init asks for `latest` or
/// the newest it knows).
const OPENSTACK_VERSIONS: &[&str] = &[
    "2012-08-10",
    "2013-04-04",
    "2013-10-17",
    "2015-10-15",
    "2016-06-30",
    "2016-10-06",
    "2017-02-22",
    "2018-08-27",
    "2020-10-14",
    "latest",
];

/// The EC2 metadata versions.
const EC2_VERSIONS: &[&str] = &[
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
    "latest",
];

pub fn router(state: State) -> Router {
    Router::new()
        .route("/", get(|| async { text(EC2_VERSIONS.join("\n")) }))
        .route(
            "/openstack",
            get(|| async { text(OPENSTACK_VERSIONS.join("\n")) }),
        )
        .route(
            "/openstack/",
            get(|| async { text(OPENSTACK_VERSIONS.join("\n")) }),
        )
        .route("/openstack/{version}", get(openstack_index))
        .route("/openstack/{version}/", get(openstack_index))
        .route("/openstack/{version}/{file}", get(openstack_file))
        .route("/{version}/meta-data", get(ec2_index))
        .route("/{version}/meta-data/", get(ec2_index))
        .route("/{version}/meta-data/{*key}", get(ec2_key))
        .route("/{version}/user-data", get(ec2_user_data))
        .fallback(|| async { not_found() })
        .with_state(state)
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], body).into_response()
}

fn json_doc(v: &Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(v).unwrap_or_default(),
    )
        .into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 Not Found\n").into_response()
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, format!("{why}\n")).into_response()
}

/// The hex HMAC-SHA256 of `instance_id` under `secret`, as the metadata proxy signs it.
pub fn sign(secret: &str, instance_id: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(instance_id.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The server a proxied request speaks for, or the answer that refuses it.
async fn requester(s: &State, headers: &HeaderMap) -> Result<Instance, Response> {
    let Some(secret) = s.config.metadata_proxy_shared_secret.as_deref() else {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "The metadata service has no shared secret configured.",
        ));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let id = header("x-instance-id").ok_or_else(|| {
        refuse(
            StatusCode::BAD_REQUEST,
            "X-Instance-ID header is missing from request.",
        )
    })?;
    let signature = header("x-instance-id-signature").ok_or_else(|| {
        refuse(
            StatusCode::BAD_REQUEST,
            "X-Instance-ID-Signature header is missing from request.",
        )
    })?;
    let expected = sign(secret, id);
    // Compared in constant time: the signature is a secret-derived value.
    let same = expected.len() == signature.len()
        && expected
            .bytes()
            .zip(signature.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        tracing::warn!(instance = %id, "metadata request with a bad signature");
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "Invalid proxy request signature.",
        ));
    }
    match s.instance(id).await {
        Ok(Some(inst)) if !inst.deleted => Ok(inst),
        Ok(_) => Err(not_found()),
        Err(e) => Err(e.into_response()),
    }
}

fn known_openstack(version: &str) -> bool {
    OPENSTACK_VERSIONS.contains(&version)
}

async fn openstack_index(
    AxState(s): AxState<State>,
    headers: HeaderMap,
    Path(version): Path<String>,
) -> Response {
    let inst = match requester(&s, &headers).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    if !known_openstack(&version) {
        return not_found();
    }
    let mut files = vec![
        "meta_data.json",
        "network_data.json",
        "vendor_data.json",
        "vendor_data2.json",
    ];
    if inst.user_data.is_some() {
        files.push("user_data");
    }
    text(files.join("\n"))
}

async fn openstack_file(
    AxState(s): AxState<State>,
    headers: HeaderMap,
    Path((version, file)): Path<(String, String)>,
) -> Response {
    let inst = match requester(&s, &headers).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    if !known_openstack(&version) {
        return not_found();
    }
    match file.as_str() {
        // The admin password reaches a guest only through its config drive at boot.
        "meta_data.json" => json_doc(&metadata::meta_data(&inst, None)),
        "network_data.json" => json_doc(&metadata::network_data(&inst)),
        "vendor_data.json" | "vendor_data2.json" => json_doc(&serde_json::json!({})),
        "user_data" => match metadata::user_data(&inst) {
            Some(data) => {
                ([(header::CONTENT_TYPE, "application/octet-stream")], data).into_response()
            }
            None => not_found(),
        },
        _ => not_found(),
    }
}

/// The EC2 tree, flattened: `key` → value, and directories listing their children.
fn ec2_tree(inst: &Instance) -> Vec<(String, String)> {
    let doc = metadata::ec2_meta_data(inst);
    let mut out = Vec::new();
    flatten("", &doc, &mut out);
    out
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k.starts_with('_') {
                    continue;
                }
                flatten(&format!("{prefix}{k}/"), child, out);
            }
        }
        Value::Array(items) => {
            let text = items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| i.to_string())
                })
                .collect::<Vec<_>>()
                .join("\n");
            out.push((prefix.trim_end_matches('/').to_string(), text));
        }
        Value::String(s) => out.push((prefix.trim_end_matches('/').to_string(), s.clone())),
        other => out.push((prefix.trim_end_matches('/').to_string(), other.to_string())),
    }
}

/// The entries directly under `dir` (`""` for the top), directories with a trailing `/`.
fn children(tree: &[(String, String)], dir: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (key, _) in tree {
        let Some(rest) = key.strip_prefix(dir) else {
            continue;
        };
        let name = match rest.split_once('/') {
            Some((d, _)) => format!("{d}/"),
            None => rest.to_string(),
        };
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

async fn ec2_index(
    AxState(s): AxState<State>,
    headers: HeaderMap,
    Path(version): Path<String>,
) -> Response {
    ec2_lookup(&s, &headers, &version, "").await
}

async fn ec2_key(
    AxState(s): AxState<State>,
    headers: HeaderMap,
    Path((version, key)): Path<(String, String)>,
) -> Response {
    ec2_lookup(&s, &headers, &version, &key).await
}

async fn ec2_lookup(s: &State, headers: &HeaderMap, version: &str, key: &str) -> Response {
    let inst = match requester(s, headers).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    if !EC2_VERSIONS.contains(&version) {
        return not_found();
    }
    let tree = ec2_tree(&inst);
    let key = key.trim_end_matches('/');
    if let Some((_, value)) = tree.iter().find(|(k, _)| k == key) {
        return text(value.clone());
    }
    let dir = if key.is_empty() {
        String::new()
    } else {
        format!("{key}/")
    };
    let names = children(&tree, &dir);
    if names.is_empty() {
        not_found()
    } else {
        text(names.join("\n"))
    }
}

async fn ec2_user_data(
    AxState(s): AxState<State>,
    headers: HeaderMap,
    Path(version): Path<String>,
) -> Response {
    let inst = match requester(&s, &headers).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    if !EC2_VERSIONS.contains(&version.as_str()) {
        return not_found();
    }
    match metadata::user_data(&inst) {
        Some(data) => data.into_response(),
        None => not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn ec2_directories_list_their_children() {
        let doc = serde_json::json!({"instance-id": "i-1", "placement": {"availability-zone": "nova"}, "public-keys": {"0": {"openssh-key": "k", "_name": "0=k"}}});
        let mut tree = Vec::new();
        flatten("", &doc, &mut tree);
        assert_eq!(
            children(&tree, ""),
            vec!["instance-id", "placement/", "public-keys/"]
        );
        assert_eq!(children(&tree, "placement/"), vec!["availability-zone"]);
        assert!(tree.contains(&("public-keys/0/openssh-key".into(), "k".into())));
    }
}
