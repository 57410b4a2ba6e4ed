//! A misbehaving server (a unix socket this test serves by hand): answers of the wrong
//! shape are typed errors, garbage on the stream drops the connection (and the client comes
//! back), an update the replica cannot apply forces a fresh snapshot, and none of it panics.
//! No OVN needed.

mod common;

use std::time::Duration;

use ferrostack_ovsdb::{Client, Error, Op, Options, TableSpec};
use serde_json::{json, Value as Json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// Reads one JSON request (the client writes each as one object, no whitespace around).
async fn read_request(s: &mut UnixStream, buf: &mut Vec<u8>) -> Option<Json> {
    loop {
        let mut de = serde_json::Deserializer::from_slice(buf).into_iter::<Json>();
        if let Some(Ok(v)) = de.next() {
            let used = de.byte_offset();
            buf.drain(..used);
            return Some(v);
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn reply(s: &mut UnixStream, id: &Json, result: Json) {
    let msg = json!({"id": id, "result": result, "error": null}).to_string();
    s.write_all(msg.as_bytes()).await.unwrap();
}

const SCHEMA: &str = r#"{"name": "T", "version": "1.0.0", "tables": {"P": {"columns": {
    "name": {"type": "string"},
    "tags": {"type": {"key": "string", "min": 0, "max": "unlimited"}}}}}}"#;

#[tokio::test]
async fn wrong_answers_garbage_and_bad_updates() {
    let dir = common::TempDir::new("bad");
    let path = dir.0.join("s.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(async move {
        // Connection 1: wrong shapes, then garbage.
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let r = read_request(&mut s, &mut buf).await.unwrap();
        assert_eq!(r["method"], "list_dbs");
        reply(&mut s, &r["id"], json!({"not": "a list"})).await;
        let r = read_request(&mut s, &mut buf).await.unwrap();
        assert_eq!(r["method"], "transact");
        reply(&mut s, &r["id"], json!([{"uuid": ["uuid", "not-a-uuid"]}])).await;
        // An answer to nobody, a notification nobody asked for, then a broken stream.
        s.write_all(br#"{"id": 987654321, "result": [], "error": null}"#)
            .await
            .unwrap();
        s.write_all(br#"{"method": "update2", "params": ["nobody", {}], "id": null}"#)
            .await
            .unwrap();
        let r = read_request(&mut s, &mut buf).await.unwrap();
        assert_eq!(r["method"], "list_dbs");
        s.write_all(b"this is not json").await.unwrap();
        drop(s);

        // Connection 2: a schema and a monitor, then an update for a row never seen.
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let r = read_request(&mut s, &mut buf).await.unwrap();
        assert_eq!(r["method"], "get_schema");
        reply(&mut s, &r["id"], serde_json::from_str(SCHEMA).unwrap()).await;
        let r = read_request(&mut s, &mut buf).await.unwrap();
        assert_eq!(r["method"], "monitor_cond");
        let mon = r["params"][1].clone();
        let u = uuid::Uuid::new_v4().to_string();
        reply(
            &mut s,
            &r["id"],
            json!({"P": {u.clone(): {"initial": {"name": "a"}}}}),
        )
        .await;
        let bad = json!({"method": "update2", "id": null,
            "params": [mon, {"P": {uuid::Uuid::new_v4().to_string(): {"modify": {"name": "x"}}}}]});
        s.write_all(bad.to_string().as_bytes()).await.unwrap();
        // The client must drop this connection and monitor again on a new one.
        assert!(read_request(&mut s, &mut buf).await.is_none());

        // Connection 3: the fresh snapshot.
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let r = read_request(&mut s, &mut buf).await.unwrap();
        assert_eq!(r["method"], "monitor_cond");
        reply(
            &mut s,
            &r["id"],
            json!({"P": {u.clone(): {"initial": {"name": "b", "tags": "t"}}}}),
        )
        .await;
        // Stay until the client goes.
        while read_request(&mut s, &mut buf).await.is_some() {}
    });

    let opts = Options {
        request_timeout: Duration::from_secs(5),
        reconnect_min: Duration::from_millis(10),
        ..Options::default()
    };
    let c = Client::connect_with(&format!("unix:{}", path.display()), opts)
        .await
        .unwrap();
    assert!(matches!(
        c.list_dbs().await.unwrap_err(),
        Error::Protocol(_)
    ));
    assert!(matches!(
        c.transact("T", vec![Op::comment("x")]).await.unwrap_err(),
        Error::Protocol(_)
    ));
    let e = c.list_dbs().await.unwrap_err();
    assert!(matches!(e, Error::Disconnected), "{e:?}");

    let r = c.monitor("T", &[TableSpec::all("P")]).await.unwrap();
    // The bad update forced a reconnect and a second snapshot.
    r.wait_for(Duration::from_secs(5), |v| {
        v.find_str("P", "name", "b").map(|row| row.str_set("tags"))
    })
    .await
    .unwrap();
    assert_eq!(r.snapshots(), 2);
    assert_eq!(c.connection_count(), 3);
    drop(r);
    drop(c);
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the client closed its connection when dropped")
        .unwrap();
}
