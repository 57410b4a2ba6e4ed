//! The client against a real ovsdb-server with the OVN Northbound schema: listing and
//! schema, a Neutron-style network with a port in one transaction, the typed error of a
//! failing operation (and that nothing of its transaction was written), set and map
//! mutations (including the map insert that does not overwrite), optimistic concurrency
//! with `wait`, the non-root garbage collection, TCP, and many concurrent transactions.

mod common;

use std::collections::BTreeSet;

use common::{NbServer, NB};
use ferrostack_ovsdb::{Atom, Client, Columns, Cond, Error, Mutation, Op, Options, Until, Value};
use serde_json::json;

async fn count(client: &Client, table: &str) -> usize {
    common::select_rows(client, table, &["_uuid"]).await.len()
}

#[tokio::test]
async fn list_dbs_and_schema() {
    let srv = NbServer::unix();
    let c = Client::connect(&srv.endpoint).await.unwrap();
    let dbs = c.list_dbs().await.unwrap();
    assert!(dbs.contains(&NB.to_string()), "{dbs:?}");
    let s = c.get_schema(NB).await.unwrap();
    assert_eq!(s.name, NB);
    assert!(!s.version.is_empty());
    let lsp = s.table("Logical_Switch_Port").unwrap();
    assert!(!lsp.is_root, "LSP is not a root table");
    assert!(lsp.indexes.contains(&vec!["name".to_string()]));
    assert!(s.table("Logical_Switch").unwrap().is_root);
    assert!(s.table("DHCP_Options").unwrap().is_root);
    assert!(!s.table("ACL").unwrap().is_root);
    assert!(lsp.columns["external_ids"].is_map());
    assert!(!lsp.columns["up"].is_scalar());
    // An unknown database is the server's error, typed.
    let e = c.get_schema("Nope").await.unwrap_err();
    assert!(matches!(e, Error::Rpc { .. }), "{e:?}");
}

#[tokio::test]
async fn network_and_port_in_one_transaction() {
    let srv = NbServer::unix();
    let c = Client::connect(&srv.endpoint).await.unwrap();
    let net = uuid::Uuid::new_v4();
    let port = uuid::Uuid::new_v4();
    let r = c
        .transact(
            NB,
            vec![
                Op::insert(
                    "Logical_Switch_Port",
                    Columns::new()
                        .with("name", port.to_string())
                        .with("addresses", Value::set(["fa:16:3e:11:22:33 10.10.0.5"]))
                        .with(
                            "external_ids",
                            Value::map([("neutron:device_owner", "compute:nova")]),
                        ),
                    Some("newport"),
                ),
                Op::insert(
                    "Logical_Switch",
                    Columns::new()
                        .with("name", format!("neutron-{net}"))
                        .with("ports", Value::set([Atom::named_uuid("newport")]))
                        .with(
                            "external_ids",
                            Value::map([
                                ("neutron:network_name", "private"),
                                ("neutron:revision_number", "1"),
                            ]),
                        ),
                    Some("net"),
                ),
            ],
        )
        .await
        .unwrap();
    let lsp_uuid = r[0].uuid.expect("insert result carries the uuid");
    let ls_uuid = r[1].uuid.unwrap();

    let switches =
        common::select_rows(&c, "Logical_Switch", &["name", "ports", "external_ids"]).await;
    let ls = &switches[&ls_uuid];
    assert_eq!(ls.str("name"), Some(format!("neutron-{net}").as_str()));
    assert_eq!(ls.uuid_set("ports"), BTreeSet::from([lsp_uuid]));
    assert_eq!(ls.map("external_ids")["neutron:network_name"], "private");
    let ports = common::select_rows(&c, "Logical_Switch_Port", &["name", "addresses", "up"]).await;
    let p = &ports[&lsp_uuid];
    assert_eq!(p.str("name"), Some(port.to_string().as_str()));
    assert_eq!(p.str_set("addresses").len(), 1);
    assert_eq!(
        p.bool("up"),
        None,
        "up is unset until a chassis binds the port"
    );
}

#[tokio::test]
async fn failing_operation_is_typed_and_changes_nothing() {
    let srv = NbServer::unix();
    let c = Client::connect(&srv.endpoint).await.unwrap();
    let e = c
        .transact(
            NB,
            vec![
                Op::insert("Logical_Switch", Columns::new().with("name", "ls-a"), None),
                Op::insert(
                    "Logical_Switch",
                    Columns::new().with("no_such_column", 1),
                    None,
                ),
            ],
        )
        .await
        .unwrap_err();
    let t = e
        .transaction()
        .unwrap_or_else(|| panic!("not a transaction error: {e:?}"));
    assert_eq!(t.index, 1);
    assert_eq!(t.op, "insert");
    assert!(!t.error.is_empty());
    assert!(
        t.details
            .as_deref()
            .unwrap_or_default()
            .contains("no_such_column"),
        "{t:?}"
    );
    assert!(!e.is_retryable());
    assert_eq!(
        count(&c, "Logical_Switch").await,
        0,
        "the first insert was rolled back"
    );

    // A failure at commit (an LSP name is a unique index) points past the last operation.
    let twice = || {
        Op::insert(
            "Logical_Switch",
            Columns::new().with(
                "ports",
                Value::set([Atom::named_uuid("a"), Atom::named_uuid("b")]),
            ),
            None,
        )
    };
    let e = c
        .transact(
            NB,
            vec![
                Op::insert(
                    "Logical_Switch_Port",
                    Columns::new().with("name", "dup"),
                    Some("a"),
                ),
                Op::insert(
                    "Logical_Switch_Port",
                    Columns::new().with("name", "dup"),
                    Some("b"),
                ),
                twice(),
            ],
        )
        .await
        .unwrap_err();
    let t = e.transaction().unwrap();
    assert_eq!((t.index, t.op.as_str()), (3, "commit"), "{t:?}");
    assert_eq!(t.error, "constraint violation");
    assert_eq!(count(&c, "Logical_Switch_Port").await, 0);

    // The raw JSON path reports the same way.
    let e = c
        .transact_json(
            NB,
            vec![json!({"op": "delete", "table": "No_Table", "where": []})],
        )
        .await
        .unwrap_err();
    assert_eq!(e.transaction().unwrap().index, 0);
}

#[tokio::test]
async fn non_root_rows_need_a_reference() {
    let srv = NbServer::unix();
    let c = Client::connect(&srv.endpoint).await.unwrap();
    // An LSP that nothing references is garbage-collected at commit.
    let r = c
        .transact(
            NB,
            vec![Op::insert(
                "Logical_Switch_Port",
                Columns::new().with("name", "orphan"),
                None,
            )],
        )
        .await
        .unwrap();
    assert!(r[0].uuid.is_some());
    assert_eq!(count(&c, "Logical_Switch_Port").await, 0);
}

#[tokio::test]
async fn set_and_map_mutations() {
    let srv = NbServer::unix();
    let c = Client::connect(&srv.endpoint).await.unwrap();
    let r = c
        .transact(
            NB,
            vec![Op::insert(
                "Logical_Switch",
                Columns::new()
                    .with("name", "ls1")
                    .with("external_ids", Value::map([("k", "old")])),
                None,
            )],
        )
        .await
        .unwrap();
    let ls = r[0].uuid.unwrap();
    let add_port = |name: &str| {
        vec![
            Op::insert(
                "Logical_Switch_Port",
                Columns::new().with("name", name),
                Some("p"),
            ),
            Op::mutate(
                "Logical_Switch",
                vec![Cond::uuid(ls)],
                vec![Mutation::insert(
                    "ports",
                    Value::set([Atom::named_uuid("p")]),
                )],
            ),
        ]
    };
    let p1 = c.transact(NB, add_port("p1")).await.unwrap()[0]
        .uuid
        .unwrap();
    let p2 = c.transact(NB, add_port("p2")).await.unwrap()[0]
        .uuid
        .unwrap();
    let ports = |c: Client| async move {
        common::select_rows(&c, "Logical_Switch", &["ports"]).await[&ls].uuid_set("ports")
    };
    assert_eq!(ports(c.clone()).await, BTreeSet::from([p1, p2]));
    // includes finds the switch by one of its ports.
    let r = c
        .transact(
            NB,
            vec![Op::select(
                "Logical_Switch",
                vec![Cond::includes("ports", Value::uuid(p2))],
                Some(&["name"]),
            )],
        )
        .await
        .unwrap();
    assert_eq!(r[0].rows.as_ref().unwrap().len(), 1);

    // Deleting the reference removes the port too (non-root).
    let r = c
        .transact(
            NB,
            vec![Op::mutate(
                "Logical_Switch",
                vec![Cond::uuid(ls)],
                vec![Mutation::delete("ports", Value::set([Atom::Uuid(p1)]))],
            )],
        )
        .await
        .unwrap();
    assert_eq!(r[0].count, Some(1));
    assert_eq!(ports(c.clone()).await, BTreeSet::from([p2]));
    assert_eq!(count(&c, "Logical_Switch_Port").await, 1);

    // A map insert of an existing key keeps the old value...
    c.transact(
        NB,
        vec![Op::mutate(
            "Logical_Switch",
            vec![Cond::uuid(ls)],
            vec![Mutation::insert(
                "external_ids",
                Value::map([("k", "new"), ("k2", "v2")]),
            )],
        )],
    )
    .await
    .unwrap();
    let ids =
        common::select_rows(&c, "Logical_Switch", &["external_ids"]).await[&ls].map("external_ids");
    assert_eq!(ids["k"], "old");
    assert_eq!(ids["k2"], "v2");
    // ...and map_set (delete the key, then insert) replaces it.
    c.transact(
        NB,
        vec![Op::mutate(
            "Logical_Switch",
            vec![Cond::uuid(ls)],
            Mutation::map_set("external_ids", "k", "new").to_vec(),
        )],
    )
    .await
    .unwrap();
    let ids =
        common::select_rows(&c, "Logical_Switch", &["external_ids"]).await[&ls].map("external_ids");
    assert_eq!(ids["k"], "new");
    assert_eq!(ids.len(), 2);
}

#[tokio::test]
async fn wait_guards_against_concurrent_changes() {
    let srv = NbServer::unix();
    let c = Client::connect(&srv.endpoint).await.unwrap();
    // "Create the network unless it exists": Logical_Switch has no unique index on name.
    let create = || {
        vec![
            Op::wait(
                "Logical_Switch",
                vec![Cond::eq("name", "neutron-x")],
                &["name"],
                Until::Equal,
                vec![],
            ),
            Op::insert(
                "Logical_Switch",
                Columns::new().with("name", "neutron-x"),
                None,
            ),
        ]
    };
    c.transact(NB, create()).await.unwrap();
    let e = c.transact(NB, create()).await.unwrap_err();
    let t = e.transaction().unwrap();
    assert_eq!(
        (t.index, t.op.as_str(), t.error.as_str()),
        (0, "wait", "timed out")
    );
    assert_eq!(count(&c, "Logical_Switch").await, 1);

    // Compare-and-swap on a column read earlier.
    let cas = |expect: &str, new: &str| {
        vec![
            Op::wait(
                "Logical_Switch",
                vec![Cond::eq("name", "neutron-x")],
                &["external_ids"],
                Until::Equal,
                vec![Columns::new().with("external_ids", Value::map([("rev", expect)]))],
            ),
            Op::update(
                "Logical_Switch",
                vec![Cond::eq("name", "neutron-x")],
                Columns::new().with("external_ids", Value::map([("rev", new)])),
            ),
            Op::comment("ferrostack test: compare-and-swap"),
        ]
    };
    c.transact(
        NB,
        vec![Op::update(
            "Logical_Switch",
            vec![Cond::eq("name", "neutron-x")],
            Columns::new().with("external_ids", Value::map([("rev", "1")])),
        )],
    )
    .await
    .unwrap();
    let r = c.transact(NB, cas("1", "2")).await.unwrap();
    assert_eq!(r[1].count, Some(1));
    assert!(
        c.transact(NB, cas("1", "3")).await.is_err(),
        "stale revision must fail"
    );
}

#[tokio::test]
async fn over_tcp() {
    let srv = NbServer::tcp();
    assert!(srv.endpoint.starts_with("tcp:127.0.0.1:"));
    let c = Client::connect(&srv.endpoint).await.unwrap();
    assert!(c.list_dbs().await.unwrap().contains(&NB.to_string()));
    let r = c
        .transact(
            NB,
            vec![Op::insert(
                "Logical_Switch",
                Columns::new().with("name", "tcp"),
                None,
            )],
        )
        .await
        .unwrap();
    assert!(r[0].uuid.is_some());
    assert_eq!(count(&c, "Logical_Switch").await, 1);
    let echo = c.call("echo", json!(["hi"])).await.unwrap();
    assert_eq!(echo, json!(["hi"]));
}

#[tokio::test]
async fn answers_the_servers_inactivity_probe() {
    // Over TCP ovsdb-server sends "echo" after 5 s of silence and drops a client that does
    // not answer within 5 s more. Our own probe is off: the only traffic is the server's.
    let srv = NbServer::tcp();
    let opts = Options {
        probe_interval: None,
        ..Options::default()
    };
    let c = Client::connect_with(&srv.endpoint, opts).await.unwrap();
    assert!(!c.list_dbs().await.unwrap().is_empty());
    tokio::time::sleep(std::time::Duration::from_secs(12)).await;
    assert!(!c.list_dbs().await.unwrap().is_empty());
    assert_eq!(c.connection_count(), 1, "the server dropped us");
    let log = std::fs::read_to_string(srv.dir().join("ovsdb-server.log")).unwrap();
    assert!(!log.contains("inactivity probe"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_transactions() {
    let srv = NbServer::unix();
    let c = Client::connect(&srv.endpoint).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.transact(
                NB,
                vec![Op::insert(
                    "Logical_Switch",
                    Columns::new()
                        .with("name", format!("ls-{i}"))
                        .with("external_ids", Value::map([("i", i.to_string())])),
                    None,
                )],
            )
            .await
            .map(|r| (i, r[0].uuid.unwrap()))
        }));
    }
    let mut seen = BTreeSet::new();
    for t in tasks {
        let (i, uuid) = t.await.unwrap().unwrap();
        seen.insert(uuid);
        // Each answer went to its own request.
        let rows = common::select_rows(&c, "Logical_Switch", &["name"]).await;
        assert_eq!(rows[&uuid].str("name"), Some(format!("ls-{i}").as_str()));
    }
    assert_eq!(seen.len(), 200);
    assert_eq!(count(&c, "Logical_Switch").await, 200);
}

#[tokio::test]
async fn bad_endpoint_and_unknown_method() {
    assert!(matches!(
        Client::connect("http://x").await.unwrap_err(),
        Error::Endpoint(_)
    ));
    let srv = NbServer::unix();
    let c = Client::connect(&srv.endpoint).await.unwrap();
    let e = c.call("no_such_method", json!([])).await.unwrap_err();
    assert!(matches!(e, Error::Rpc { .. }), "{e:?}");
    // The connection is still good after the error.
    assert!(!c.list_dbs().await.unwrap().is_empty());
}
