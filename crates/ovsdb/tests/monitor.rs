//! Monitored replicas against a real ovsdb-server: the initial snapshot, then inserts,
//! modifications of every column kind (set elements added and removed, map keys added,
//! changed and removed, optional and scalar columns) and deletes, each time compared with
//! a fresh `select`; waiting for a state; and the server killed and restarted under a
//! client: requests in flight fail as retryable, requests made meanwhile wait, and the
//! replica is rebuilt from the new snapshot, including changes made while it was down.

mod common;

use std::time::{Duration, Instant};

use common::{assert_replica_matches, NbServer, NB};
use ferrostack_ovsdb::{
    Atom, Client, Columns, Cond, Error, Mutation, Op, Options, TableSpec, Value,
};
use serde_json::json;

const LS_COLS: &[&str] = &["name", "ports", "external_ids", "other_config"];
const LSP_COLS: &[&str] = &[
    "name",
    "addresses",
    "up",
    "enabled",
    "type",
    "options",
    "external_ids",
    "tag_request",
];

fn ls_insert(name: &str, ports: &[&str]) -> Vec<Op> {
    let mut ops: Vec<Op> = ports
        .iter()
        .map(|p| {
            Op::insert(
                "Logical_Switch_Port",
                Columns::new().with("name", *p).with(
                    "addresses",
                    Value::set([format!("fa:16:3e:00:00:0{} 10.0.0.{}", p.len(), p.len())]),
                ),
                Some(&format!("p_{}", p.replace('-', "_"))),
            )
        })
        .collect();
    ops.push(Op::insert(
        "Logical_Switch",
        Columns::new()
            .with("name", name)
            .with(
                "ports",
                Value::set(
                    ports
                        .iter()
                        .map(|p| Atom::named_uuid(format!("p_{}", p.replace('-', "_")))),
                ),
            )
            .with("external_ids", Value::map([("neutron:network_name", name)])),
        None,
    ));
    ops
}

async fn check(c: &Client, r: &ferrostack_ovsdb::Replica) {
    assert_replica_matches(c, r, "Logical_Switch", LS_COLS).await;
    assert_replica_matches(c, r, "Logical_Switch_Port", LSP_COLS).await;
}

#[tokio::test]
async fn replica_follows_every_kind_of_change() {
    let srv = NbServer::unix();
    let c = Client::connect(&srv.endpoint).await.unwrap();
    c.transact(NB, ls_insert("net-a", &["a1", "a2"]))
        .await
        .unwrap();
    c.transact(NB, ls_insert("net-b", &[])).await.unwrap();

    let r = c
        .monitor(
            NB,
            &[
                TableSpec::new("Logical_Switch", LS_COLS),
                TableSpec::new("Logical_Switch_Port", LSP_COLS),
            ],
        )
        .await
        .unwrap();
    assert!(r.is_synced());
    assert_eq!(r.snapshots(), 1);
    assert_eq!(r.table("Logical_Switch").len(), 2);
    assert_eq!(r.table("Logical_Switch_Port").len(), 2);
    check(&c, &r).await;
    let net_a = r.find_str("Logical_Switch", "name", "net-a").unwrap();
    assert_eq!(net_a.uuid_set("ports").len(), 2);
    assert_eq!(net_a.map("external_ids")["neutron:network_name"], "net-a");

    // Inserts.
    c.transact(NB, ls_insert("net-c", &["c1"])).await.unwrap();
    check(&c, &r).await;

    // Set: add one element, then add two and remove one in one transaction.
    let add_port = |ls: &str, p: &str| {
        vec![
            Op::insert(
                "Logical_Switch_Port",
                Columns::new().with("name", p),
                Some("np"),
            ),
            Op::mutate(
                "Logical_Switch",
                vec![Cond::eq("name", ls)],
                vec![Mutation::insert(
                    "ports",
                    Value::set([Atom::named_uuid("np")]),
                )],
            ),
        ]
    };
    c.transact(NB, add_port("net-b", "b1")).await.unwrap();
    check(&c, &r).await;
    let a1 = r
        .find_str("Logical_Switch_Port", "name", "a1")
        .unwrap()
        .uuid();
    let mut ops = add_port("net-a", "a3");
    ops.push(Op::insert(
        "Logical_Switch_Port",
        Columns::new().with("name", "a4"),
        Some("np2"),
    ));
    ops.push(Op::mutate(
        "Logical_Switch",
        vec![Cond::eq("name", "net-a")],
        vec![
            Mutation::insert("ports", Value::set([Atom::named_uuid("np2")])),
            Mutation::delete("ports", Value::set([Atom::Uuid(a1)])),
        ],
    ));
    c.transact(NB, ops).await.unwrap();
    check(&c, &r).await;
    assert!(
        r.find_str("Logical_Switch_Port", "name", "a1").is_none(),
        "a1 was collected"
    );

    // Set column of strings: replace the addresses wholesale, then empty them.
    let upd = |row: Columns| Op::update("Logical_Switch_Port", vec![Cond::eq("name", "a2")], row);
    c.transact(
        NB,
        vec![upd(
            Columns::new().with("addresses", Value::set(["router", "unknown"]))
        )],
    )
    .await
    .unwrap();
    check(&c, &r).await;
    c.transact(
        NB,
        vec![upd(Columns::new().with("addresses", Value::empty_set()))],
    )
    .await
    .unwrap();
    check(&c, &r).await;

    // Map: add keys, change one by update, change one by map_set, remove one.
    let ls_mut =
        |m: Vec<Mutation>| Op::mutate("Logical_Switch", vec![Cond::eq("name", "net-a")], m);
    c.transact(
        NB,
        vec![ls_mut(vec![Mutation::insert(
            "other_config",
            Value::map([("k1", "v1"), ("k2", "v2")]),
        )])],
    )
    .await
    .unwrap();
    check(&c, &r).await;
    c.transact(
        NB,
        vec![ls_mut(
            Mutation::map_set("other_config", "k1", "v1b").to_vec(),
        )],
    )
    .await
    .unwrap();
    check(&c, &r).await;
    c.transact(
        NB,
        vec![Op::update(
            "Logical_Switch",
            vec![Cond::eq("name", "net-a")],
            Columns::new().with(
                "external_ids",
                Value::map([("neutron:network_name", "renamed"), ("x", "y")]),
            ),
        )],
    )
    .await
    .unwrap();
    check(&c, &r).await;
    c.transact(
        NB,
        vec![ls_mut(vec![Mutation::delete(
            "other_config",
            Value::set(["k2"]),
        )])],
    )
    .await
    .unwrap();
    check(&c, &r).await;
    let net_a = r.find_str("Logical_Switch", "name", "net-a").unwrap();
    assert_eq!(net_a.map("other_config").len(), 1);
    assert_eq!(net_a.map("external_ids")["neutron:network_name"], "renamed");

    // Optional columns: unset -> true -> false -> unset; a scalar string; an optional int.
    for enabled in [Value::from(true), Value::from(false), Value::empty_set()] {
        c.transact(
            NB,
            vec![upd(Columns::new()
                .with("enabled", enabled)
                .with("up", true))],
        )
        .await
        .unwrap();
        check(&c, &r).await;
    }
    c.transact(
        NB,
        vec![upd(Columns::new()
            .with("type", "localnet")
            .with("tag_request", 42))],
    )
    .await
    .unwrap();
    check(&c, &r).await;
    let a2 = r.find_str("Logical_Switch_Port", "name", "a2").unwrap();
    assert_eq!(a2.str("type"), Some("localnet"));
    assert_eq!(a2.int("tag_request"), Some(42));
    assert_eq!(a2.bool("up"), Some(true));
    assert_eq!(a2.bool("enabled"), None);

    // Deletes (the switch's ports go with it: non-root).
    let before = r.revision();
    c.transact(
        NB,
        vec![Op::delete(
            "Logical_Switch",
            vec![Cond::eq("name", "net-a")],
        )],
    )
    .await
    .unwrap();
    check(&c, &r).await;
    assert!(r.revision() > before);
    assert!(r.find_str("Logical_Switch", "name", "net-a").is_none());
    assert!(r.find_str("Logical_Switch_Port", "name", "a3").is_none());
}

#[tokio::test]
async fn wait_for_a_port_to_come_up() {
    let srv = NbServer::unix();
    let c = Client::connect(&srv.endpoint).await.unwrap();
    c.transact(NB, ls_insert("net", &["vm-port"]))
        .await
        .unwrap();
    let r = c
        .monitor(
            NB,
            &[TableSpec::new("Logical_Switch_Port", &["name", "up"])],
        )
        .await
        .unwrap();
    let is_up = |v: &ferrostack_ovsdb::View<'_>| {
        v.find_str("Logical_Switch_Port", "name", "vm-port")
            .filter(|p| p.bool("up") == Some(true))
            .map(|p| p.uuid())
    };
    // Not up yet: a short wait times out.
    let e = r
        .wait_for(Duration::from_millis(200), is_up)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout(_)));
    // What ovn-northd does once a chassis binds the port.
    let c2 = c.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c2.transact(
            NB,
            vec![Op::update(
                "Logical_Switch_Port",
                vec![Cond::eq("name", "vm-port")],
                Columns::new().with("up", true),
            )],
        )
        .await
        .unwrap();
    });
    let t0 = Instant::now();
    let uuid = r.wait_for(Duration::from_secs(10), is_up).await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(250));
    assert_eq!(
        r.get("Logical_Switch_Port", uuid).unwrap().bool("up"),
        Some(true)
    );
}

#[tokio::test]
async fn monitor_of_unknown_table_or_column_is_refused() {
    let srv = NbServer::unix();
    let c = Client::connect(&srv.endpoint).await.unwrap();
    assert!(matches!(
        c.monitor(NB, &[TableSpec::all("No_Such_Table")])
            .await
            .unwrap_err(),
        Error::Schema(_)
    ));
    assert!(matches!(
        c.monitor(NB, &[TableSpec::new("Logical_Switch", &["nope"])])
            .await
            .unwrap_err(),
        Error::Schema(_)
    ));
    // Whole tables work (every column, defaults filled in).
    let r = c.monitor(NB, &[TableSpec::all("NB_Global")]).await.unwrap();
    assert!(r.table("NB_Global").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_and_rebuilds_the_replica() {
    let mut srv = NbServer::unix();
    let opts = Options {
        request_timeout: Duration::from_secs(20),
        reconnect_max: Duration::from_millis(200),
        ..Options::default()
    };
    let c = Client::connect_with(&srv.endpoint, opts).await.unwrap();
    c.transact(NB, ls_insert("keep", &["k1"])).await.unwrap();
    c.transact(NB, ls_insert("gone", &["g1"])).await.unwrap();
    let r = c
        .monitor(
            NB,
            &[
                TableSpec::new("Logical_Switch", LS_COLS),
                TableSpec::new("Logical_Switch_Port", LSP_COLS),
            ],
        )
        .await
        .unwrap();
    check(&c, &r).await;

    // A request the server holds (a wait for a row that never comes) is in flight when the
    // server dies: it fails, as retryable.
    let c2 = c.clone();
    let in_flight =
        tokio::spawn(async move {
            c2.transact_json(
            NB,
            vec![json!({"op": "wait", "table": "Logical_Switch", "where": [["name", "==", "never"]],
                        "columns": ["name"], "until": "!=", "rows": [], "timeout": 60000})],
        )
        .await
        });
    tokio::time::sleep(Duration::from_millis(200)).await;
    srv.kill();
    let e = in_flight.await.unwrap().unwrap_err();
    assert!(matches!(e, Error::Disconnected), "{e:?}");
    assert!(e.is_retryable());
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.is_connected() || r.is_synced() {
        assert!(
            Instant::now() < deadline,
            "the client did not notice the server died"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // While it is down: a request waits instead of failing at once...
    let c3 = c.clone();
    let queued =
        tokio::spawn(async move { c3.transact(NB, ls_insert("made-while-down", &["w1"])).await });
    // ...and the database changes behind the client's back (offline, with ovsdb-tool).
    let db = srv.dir().join("nb.db");
    let out = std::process::Command::new("ovsdb-tool")
        .arg("transact")
        .arg(&db)
        .arg(
            json!([NB, {"op": "delete", "table": "Logical_Switch", "where": [["name", "==", "gone"]]},
                       {"op": "insert", "table": "Logical_Switch", "row": {"name": "offline"}}])
            .to_string(),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !queued.is_finished(),
        "a request failed at once while disconnected"
    );

    srv.launch();
    c.wait_connected(Duration::from_secs(10)).await.unwrap();
    assert!(
        queued.await.unwrap().is_ok(),
        "the queued request ran after the reconnect"
    );
    r.wait_for(Duration::from_secs(10), |v| (v.is_synced()).then_some(()))
        .await
        .unwrap();
    // At least one more connection and snapshot. Often one more connection than that: the
    // first reconnect, right after the kill, can reach the dying server's listening socket
    // before the kernel closes it, and is reset at once.
    assert!(r.snapshots() >= 2, "{}", r.snapshots());
    assert!(c.connection_count() >= 2, "{}", c.connection_count());
    check(&c, &r).await;
    assert!(
        r.find_str("Logical_Switch", "name", "gone").is_none(),
        "deleted offline"
    );
    assert!(r.find_str("Logical_Switch_Port", "name", "g1").is_none());
    assert!(
        r.find_str("Logical_Switch", "name", "offline").is_some(),
        "inserted offline"
    );
    assert!(r
        .find_str("Logical_Switch", "name", "made-while-down")
        .is_some());

    // And it goes on as before.
    c.transact(NB, ls_insert("after", &["af1"])).await.unwrap();
    check(&c, &r).await;
}

#[tokio::test]
async fn requests_time_out_while_the_server_is_away() {
    let mut srv = NbServer::unix();
    let opts = Options {
        request_timeout: Duration::from_millis(800),
        ..Options::default()
    };
    let c = Client::connect_with(&srv.endpoint, opts).await.unwrap();
    assert!(!c.list_dbs().await.unwrap().is_empty());
    srv.kill();
    while c.is_connected() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let t0 = Instant::now();
    let e = c.list_dbs().await.unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
    assert!(
        t0.elapsed() >= Duration::from_millis(700),
        "failed after {:?}",
        t0.elapsed()
    );
    // The request that timed out is not sent late once the server is back.
    srv.launch();
    c.wait_connected(Duration::from_secs(10)).await.unwrap();
    assert!(!c.list_dbs().await.unwrap().is_empty());
}
