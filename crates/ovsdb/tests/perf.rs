//! Measurements against a real ovsdb-server (printed; run with `--nocapture` to see them):
//! latency of 1000 single-row transactions one after the other, one transaction of 1000
//! ports on a switch, how soon a monitored replica shows a change, and the initial snapshot
//! of those rows. The assertions check the work was done, not the speed: the machine is
//! shared, so timings only go to the crate's README.

mod common;

use std::time::{Duration, Instant};

use common::{NbServer, NB};
use ferrostack_ovsdb::{Atom, Client, Columns, Op, TableSpec, Value};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test]
async fn transaction_latency_and_bulk() {
    let srv = NbServer::unix();
    let c = Client::connect(&srv.endpoint).await.unwrap();

    // 1000 single-row inserts, one transaction each.
    let mut lat = Vec::with_capacity(1000);
    let t_all = Instant::now();
    for i in 0..1000 {
        let t = Instant::now();
        let r = c
            .transact(
                NB,
                vec![Op::insert(
                    "Logical_Switch",
                    Columns::new().with("name", format!("neutron-{i}")).with(
                        "external_ids",
                        Value::map([("neutron:network_name", format!("n{i}"))]),
                    ),
                    None,
                )],
            )
            .await
            .unwrap();
        lat.push(t.elapsed());
        assert!(r[0].uuid.is_some());
    }
    let total = t_all.elapsed();
    lat.sort();
    println!(
        "1000 single-row transacts: median {:?}, p90 {:?}, p99 {:?}, max {:?}, total {:?}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        lat[999],
        total
    );

    // One transaction: a switch with 1000 ports (MAC + IP each).
    let mut ops: Vec<Op> = (0..1000)
        .map(|i| {
            Op::insert(
                "Logical_Switch_Port",
                Columns::new()
                    .with("name", format!("port-{i}"))
                    .with(
                        "addresses",
                        Value::set([format!(
                            "fa:16:3e:00:{:02x}:{:02x} 10.1.{}.{}",
                            i / 256,
                            i % 256,
                            i / 250,
                            i % 250 + 2
                        )]),
                    )
                    .with(
                        "external_ids",
                        Value::map([("neutron:device_owner", "compute:nova")]),
                    ),
                Some(&format!("p{i}")),
            )
        })
        .collect();
    ops.push(Op::insert(
        "Logical_Switch",
        Columns::new().with("name", "big").with(
            "ports",
            Value::set((0..1000).map(|i| Atom::named_uuid(format!("p{i}")))),
        ),
        None,
    ));
    let t = Instant::now();
    let r = c.transact(NB, ops).await.unwrap();
    let bulk = t.elapsed();
    assert_eq!(r.len(), 1001);
    println!("one transaction of 1000 ports + their switch: {bulk:?}");

    // Initial snapshot of those rows, then transact -> replica latency.
    let t = Instant::now();
    let rep = c
        .monitor(
            NB,
            &[
                TableSpec::new("Logical_Switch", &["name", "ports", "external_ids"]),
                TableSpec::new("Logical_Switch_Port", &["name", "addresses", "up"]),
            ],
        )
        .await
        .unwrap();
    let snapshot = t.elapsed();
    assert_eq!(rep.table("Logical_Switch").len(), 1001);
    assert_eq!(rep.table("Logical_Switch_Port").len(), 1000);
    println!("monitor initial snapshot of 1001 switches + 1000 ports: {snapshot:?}");

    let mut seen = Vec::with_capacity(200);
    for i in 0..200 {
        let name = format!("watched-{i}");
        let t = Instant::now();
        c.transact(
            NB,
            vec![Op::insert(
                "Logical_Switch",
                Columns::new().with("name", name.as_str()),
                None,
            )],
        )
        .await
        .unwrap();
        rep.wait_for(Duration::from_secs(5), |v| {
            v.find_str("Logical_Switch", "name", &name).map(|_| ())
        })
        .await
        .unwrap();
        seen.push(t.elapsed());
    }
    seen.sort();
    println!(
        "transact until the replica shows the row (200 times): median {:?}, p90 {:?}",
        percentile(&seen, 0.5),
        percentile(&seen, 0.9)
    );
}
