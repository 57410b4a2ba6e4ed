//! Timing of parse + search + render (+ JSON serialisation) for the scheduler's typical
//! request over 1,000 and 10,000 single-node compute trees. Ignored by default; run with
//! `cargo test --release -p ferrostack-placement --test candidates_bench -- --ignored
//! --nocapture`.

#[path = "candidates_support.rs"]
mod support;

use std::time::{Duration, Instant};

use ferrostack_placement::candidates;
use ferrostack_placement::microversion::Microversion;
use ferrostack_placement::model::Snapshot;
use support::{Builder, ProviderExt};

fn compute_nodes(n: i64) -> Snapshot {
    let mut b = Builder::default();
    for id in 1..=n {
        let p = b
            .add(id, None)
            .inv("VCPU", 64)
            .inv("MEMORY_MB", 256 * 1024)
            .inv("DISK_GB", 2000)
            .used("VCPU", id % 48)
            .used("MEMORY_MB", (id % 64) * 2048)
            .traits(&[
                "HW_CPU_X86_AVX2",
                "HW_CPU_X86_SSE42",
                "COMPUTE_VOLUME_MULTI_ATTACH",
            ])
            .aggs(&[id % 20]);
        if id % 50 == 0 {
            p.traits(&["COMPUTE_STATUS_DISABLED"]);
        }
    }
    b.snapshot()
}

fn time(snap: &Snapshot, q: &str, runs: usize) -> (Duration, Duration, usize) {
    let pairs = support::pairs(q);
    let mv = Microversion(39);
    let mut times = Vec::with_capacity(runs);
    let mut n = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let req = candidates::parse(&pairs, mv).expect("valid");
        let c = candidates::search(snap, &req);
        let bytes = candidates::render_json(snap, &c, &req, mv);
        times.push(t.elapsed());
        n = c.requests.len();
        std::hint::black_box(bytes);
    }
    times.sort();
    (times[runs / 2], times[runs * 9 / 10], n)
}

#[test]
#[ignore]
fn bench_typical_request() {
    for n in [1_000, 10_000] {
        let snap = compute_nodes(n);
        for q in [
            "resources=VCPU:2,MEMORY_MB:4096,DISK_GB:40&required=!COMPUTE_STATUS_DISABLED&limit=1000",
            "resources=VCPU:2,MEMORY_MB:4096,DISK_GB:40&required=!COMPUTE_STATUS_DISABLED",
        ] {
            let (p50, p90, count) = time(&snap, q, 41);
            println!("{n} providers, {count} candidates: p50 {p50:?} p90 {p90:?}  ({q})");
        }
        // Search alone, to see what rendering costs.
        let req = candidates::parse(
            &support::pairs("resources=VCPU:2,MEMORY_MB:4096,DISK_GB:40&required=!COMPUTE_STATUS_DISABLED&limit=1000"),
            Microversion(39),
        )
        .expect("valid");
        let t = Instant::now();
        for _ in 0..20 {
            std::hint::black_box(candidates::search(&snap, &req));
        }
        println!("{n} providers: search alone {:?}", t.elapsed() / 20);
        let req = candidates::parse(
            &support::pairs(
                "resources=VCPU:2,MEMORY_MB:4096,DISK_GB:40&required=!COMPUTE_STATUS_DISABLED",
            ),
            Microversion(39),
        )
        .expect("valid");
        let t = Instant::now();
        let c = candidates::search(&snap, &req);
        let t1 = t.elapsed();
        let body = candidates::render(&snap, &c, &req, Microversion(39));
        let t2 = t.elapsed();
        let bytes = serde_json::to_vec(&body).expect("json");
        let t3 = t.elapsed();
        let t4 = Instant::now();
        let text = candidates::render_json(&snap, &c, &req, Microversion(39));
        let t5 = t4.elapsed();
        println!(
            "{n} providers unlimited: search {t1:?}, render to Value {:?} + serialize {:?} ({} bytes), render_json {t5:?} ({} bytes)",
            t2 - t1,
            t3 - t2,
            bytes.len(),
            text.len()
        );
    }
}
