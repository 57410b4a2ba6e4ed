//! Example allocation-candidate searches mirroring upstream Placement's functional (gabbi)
//! expectations: plain compute nodes, a sharing DISK_GB provider, a NUMA-like nested tree
//! with granular groups under `isolate` and `none`, traits on the unsuffixed group,
//! `member_of`, `in_tree`, `root_required`, `same_subtree` and the body per microversion.

#[path = "candidates_support.rs"]
mod support;

use serde_json::json;
use support::*;

const SHARES: &str = "MISC_SHARES_VIA_AGGREGATE";

/// Two compute nodes and one shared-storage provider, all in aggregate 1 (upstream's
/// SharedStorageFixture shape).
fn shared_storage() -> ferrostack_placement::model::Snapshot {
    let mut b = Builder::default();
    b.add(1, None)
        .inv("VCPU", 24)
        .inv("MEMORY_MB", 128 * 1024)
        .aggs(&[1]);
    b.add(2, None)
        .inv("VCPU", 24)
        .inv("MEMORY_MB", 128 * 1024)
        .aggs(&[1]);
    b.add(3, None)
        .inv("DISK_GB", 2000)
        .traits(&[SHARES])
        .aggs(&[1]);
    b.snapshot()
}

#[test]
fn sharing_provider_serves_each_compute_node() {
    let snap = shared_storage();
    let (c, body) = run(&snap, "resources=VCPU:1,MEMORY_MB:1024,DISK_GB:100", 12);
    assert_eq!(
        normalized(&c),
        vec![
            vec![
                (1, "MEMORY_MB".into(), 1024),
                (1, "VCPU".into(), 1),
                (3, "DISK_GB".into(), 100)
            ],
            vec![
                (2, "MEMORY_MB".into(), 1024),
                (2, "VCPU".into(), 1),
                (3, "DISK_GB".into(), 100)
            ],
        ]
    );
    assert_eq!(body["allocation_requests"].as_array().unwrap().len(), 2);
    let a0 = &body["allocation_requests"][0]["allocations"];
    assert_eq!(a0[uuid(3)]["resources"]["DISK_GB"], json!(100));
    assert_eq!(
        a0[uuid(1)]["resources"],
        json!({"VCPU": 1, "MEMORY_MB": 1024})
    );
    // Three providers summarised, only the requested classes before 1.27, no traits before
    // 1.17.
    let ps = body["provider_summaries"].as_object().unwrap();
    assert_eq!(ps.len(), 3);
    assert_eq!(
        ps[&uuid(3)],
        json!({"resources": {"DISK_GB": {"capacity": 2000, "used": 0}}})
    );

    // Only DISK_GB: the sharing provider alone, reported once (not once per anchor).
    let (c, _) = run(&snap, "resources=DISK_GB:100", 29);
    assert_eq!(normalized(&c), vec![vec![(3, "DISK_GB".into(), 100)]]);

    // Without the aggregate link no candidate needs the sharing provider.
    let mut b = Builder::default();
    b.add(1, None).inv("VCPU", 24).aggs(&[2]);
    b.add(3, None)
        .inv("DISK_GB", 2000)
        .traits(&[SHARES])
        .aggs(&[1]);
    let (c, _) = run(&b.snapshot(), "resources=VCPU:1,DISK_GB:100", 29);
    assert!(c.requests.is_empty());
}

#[test]
fn list_format_before_1_12_and_traits_from_1_17() {
    let snap = shared_storage();
    let (_, body) = run(&snap, "resources=VCPU:1,DISK_GB:100", 10);
    let reqs = body["allocation_requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 2);
    let allocs = reqs[0]["allocations"].as_array().unwrap();
    assert_eq!(allocs.len(), 2);
    assert_eq!(allocs[0]["resource_provider"]["uuid"], json!(uuid(1)));
    assert_eq!(allocs[0]["resources"], json!({"VCPU": 1}));
    assert_eq!(allocs[1]["resource_provider"]["uuid"], json!(uuid(3)));
    // limit keeps only the trees of the kept candidate in the summaries.
    let (_, body) = run(&snap, "resources=VCPU:1,DISK_GB:100&limit=1", 16);
    assert_eq!(body["allocation_requests"].as_array().unwrap().len(), 1);
    let ps = body["provider_summaries"].as_object().unwrap();
    assert_eq!(ps.len(), 2);
    assert!(ps.contains_key(&uuid(1)) && ps.contains_key(&uuid(3)));

    let (_, body) = run(&snap, "resources=VCPU:1,DISK_GB:100", 17);
    assert_eq!(
        body["provider_summaries"][uuid(3)]["traits"],
        json!([SHARES])
    );
    assert!(body["provider_summaries"][uuid(3)]
        .get("root_provider_uuid")
        .is_none());
}

/// A compute node with DISK_GB on the root, two NUMA nodes with VCPU and MEMORY_MB, and
/// an SR-IOV PF under each NUMA node.
fn numa_tree() -> ferrostack_placement::model::Snapshot {
    let mut b = Builder::default();
    b.add(1, None)
        .inv("DISK_GB", 1000)
        .traits(&["HW_CPU_X86_AVX2"]);
    b.add(2, Some(1))
        .inv("VCPU", 4)
        .inv("MEMORY_MB", 2048)
        .traits(&["HW_NUMA_ROOT"]);
    b.add(3, Some(1))
        .inv("VCPU", 4)
        .inv("MEMORY_MB", 2048)
        .traits(&["HW_NUMA_ROOT"]);
    b.add(4, Some(2))
        .inv("SRIOV_NET_VF", 8)
        .traits(&["CUSTOM_PHYSNET_A"]);
    b.add(5, Some(3))
        .inv("SRIOV_NET_VF", 8)
        .traits(&["CUSTOM_PHYSNET_B"]);
    b.snapshot()
}

#[test]
fn nested_unsuffixed_group_mixes_providers_of_one_tree() {
    let snap = numa_tree();
    let (c, body) = run(&snap, "resources=VCPU:2,MEMORY_MB:1024,DISK_GB:10", 29);
    // VCPU from either NUMA node times MEMORY_MB from either, DISK_GB from the root.
    assert_eq!(c.requests.len(), 4);
    // Every provider of the tree is summarised from 1.29, with parent and root.
    let ps = body["provider_summaries"].as_object().unwrap();
    assert_eq!(ps.len(), 5);
    assert_eq!(ps[&uuid(4)]["parent_provider_uuid"], json!(uuid(2)));
    assert_eq!(ps[&uuid(4)]["root_provider_uuid"], json!(uuid(1)));
    assert_eq!(ps[&uuid(1)]["parent_provider_uuid"], json!(null));
    // From 1.27 all classes of a provider, even unrequested ones.
    assert!(ps[&uuid(4)]["resources"].get("SRIOV_NET_VF").is_some());

    // Before 1.29 a candidate may not use two providers of one tree.
    let (c, _) = run(&snap, "resources=VCPU:2,MEMORY_MB:1024", 28);
    assert_eq!(
        normalized(&c),
        vec![
            vec![(2, "MEMORY_MB".into(), 1024), (2, "VCPU".into(), 2)],
            vec![(3, "MEMORY_MB".into(), 1024), (3, "VCPU".into(), 2)],
        ]
    );
    let (c, _) = run(&snap, "resources=VCPU:2,DISK_GB:10", 28);
    assert!(c.requests.is_empty());
}

#[test]
fn unsuffixed_traits_count_only_the_providers_used() {
    let snap = numa_tree();
    // AVX2 is on the root, which gives nothing here: no candidate.
    let (c, _) = run(&snap, "resources=VCPU:1&required=HW_CPU_X86_AVX2", 29);
    assert!(c.requests.is_empty());
    // With DISK_GB from the root its traits count for the whole candidate.
    let (c, _) = run(
        &snap,
        "resources=VCPU:1,DISK_GB:1&required=HW_CPU_X86_AVX2",
        29,
    );
    assert_eq!(c.requests.len(), 2);
    // A forbidden trait on a used provider rejects; elsewhere in the tree it does not.
    let (c, _) = run(
        &snap,
        "resources=SRIOV_NET_VF:1&required=!CUSTOM_PHYSNET_A",
        29,
    );
    assert_eq!(normalized(&c), vec![vec![(5, "SRIOV_NET_VF".into(), 1)]]);
    // any-of (1.39).
    let (c, _) = run(
        &snap,
        "resources=SRIOV_NET_VF:1&required=in:CUSTOM_PHYSNET_A,CUSTOM_PHYSNET_B",
        39,
    );
    assert_eq!(c.requests.len(), 2);
}

#[test]
fn granular_isolate_versus_none() {
    let snap = numa_tree();
    let q = "resources1=VCPU:2,MEMORY_MB:1024&resources2=VCPU:2,MEMORY_MB:1024";
    let (c, _) = run(&snap, &format!("{q}&group_policy=isolate"), 29);
    // One group per NUMA node, in both assignments.
    assert_eq!(c.requests.len(), 2);
    let (c, body) = run(&snap, &format!("{q}&group_policy=none"), 34);
    // Also both groups on one node (4 VCPU and 2048 MB fit exactly).
    assert_eq!(c.requests.len(), 4);
    let merged: Vec<_> = normalized(&c)
        .into_iter()
        .filter(|r| r.len() == 2)
        .collect();
    assert_eq!(
        merged,
        vec![
            vec![(2, "MEMORY_MB".into(), 2048), (2, "VCPU".into(), 4)],
            vec![(3, "MEMORY_MB".into(), 2048), (3, "VCPU".into(), 4)],
        ]
    );
    // Mappings from 1.34: group suffix → provider.
    let first = &body["allocation_requests"][0];
    assert_eq!(first["mappings"]["1"], json!([uuid(2)]));
    assert_eq!(first["mappings"]["2"], json!([uuid(2)]));
    // Three VCPU each no longer fit on one node, so only the isolated pairs remain.
    let (c, _) = run(
        &snap,
        "resources1=VCPU:3&resources2=VCPU:3&group_policy=none",
        29,
    );
    assert_eq!(c.requests.len(), 2);
    // Granular groups with a per-provider trait.
    let (c, _) = run(
        &snap,
        "resources=VCPU:1&resources1=SRIOV_NET_VF:1&required1=CUSTOM_PHYSNET_B",
        29,
    );
    assert!(c.as_maps().iter().all(|m| m.contains_key(&5)));
    assert_eq!(c.requests.len(), 2);
}

#[test]
fn capacity_rules() {
    let mut b = Builder::default();
    b.add(1, None)
        .inventory(
            "VCPU",
            ferrostack_placement::model::Inventory {
                total: 8,
                reserved: 2,
                min_unit: 2,
                max_unit: 4,
                step_size: 2,
                allocation_ratio: 2.0,
            },
        )
        .used("VCPU", 10);
    let snap = b.snapshot();
    // capacity (8-2)*2 = 12, used 10: 2 fits, 4 does not; 3 breaks the step, 1 the min.
    for (amount, n) in [(2, 1), (4, 0), (3, 0), (1, 0)] {
        let (c, _) = run(&snap, &format!("resources=VCPU:{amount}"), 29);
        assert_eq!(c.requests.len(), n, "VCPU:{amount}");
    }
    let (_, body) = run(&snap, "resources=VCPU:2", 29);
    assert_eq!(
        body["provider_summaries"][uuid(1)]["resources"]["VCPU"],
        json!({"capacity": 12, "used": 10})
    );
    // Two groups of 2 on the same provider sum to 4 > free 2.
    let (c, _) = run(&snap, "resources=VCPU:2&resources1=VCPU:2", 29);
    assert!(c.requests.is_empty());
}

#[test]
fn member_of_in_tree_and_root_required() {
    let mut b = Builder::default();
    b.add(1, None)
        .inv("VCPU", 8)
        .aggs(&[1])
        .traits(&["CUSTOM_GOLD"]);
    b.add(2, Some(1)).inv("SRIOV_NET_VF", 4);
    b.add(3, None).inv("VCPU", 8).aggs(&[2]);
    b.add(4, Some(3)).inv("SRIOV_NET_VF", 4).aggs(&[1]);
    let snap = b.snapshot();
    let a1 = agg(1);
    // Unsuffixed: the aggregate on the root spans the tree; on a child only that child.
    let (c, _) = run(
        &snap,
        &format!("resources=SRIOV_NET_VF:1&member_of={a1}"),
        29,
    );
    let ids: Vec<i64> = c.as_maps().iter().flat_map(|m| m.keys().copied()).collect();
    assert_eq!(ids, vec![2, 4]);
    // Suffixed: the provider itself must be in the aggregate.
    let (c, _) = run(
        &snap,
        &format!("resources1=SRIOV_NET_VF:1&member_of1={a1}"),
        29,
    );
    assert_eq!(normalized(&c), vec![vec![(4, "SRIOV_NET_VF".into(), 1)]]);
    // Forbidden aggregates on the root exclude its whole tree for the unsuffixed group.
    let (c, _) = run(
        &snap,
        &format!("resources=SRIOV_NET_VF:1&member_of=!{a1}"),
        32,
    );
    assert!(c.requests.is_empty());
    // in_tree names any provider of the tree.
    let (c, _) = run(&snap, &format!("resources=VCPU:1&in_tree={}", uuid(4)), 31);
    assert_eq!(normalized(&c), vec![vec![(3, "VCPU".into(), 1)]]);
    let (c, _) = run(&snap, &format!("resources=VCPU:1&in_tree={}", uuid(99)), 31);
    assert!(c.requests.is_empty());
    // root_required looks at the root only.
    let (c, _) = run(
        &snap,
        "resources=SRIOV_NET_VF:1&root_required=CUSTOM_GOLD",
        35,
    );
    assert_eq!(normalized(&c), vec![vec![(2, "SRIOV_NET_VF".into(), 1)]]);
    let (c, _) = run(
        &snap,
        "resources=SRIOV_NET_VF:1&root_required=!CUSTOM_GOLD",
        35,
    );
    assert_eq!(normalized(&c), vec![vec![(4, "SRIOV_NET_VF".into(), 1)]]);
}

#[test]
fn same_subtree_with_resourceless_group() {
    let snap = numa_tree();
    // A VF and VCPU under the same NUMA node, the NUMA node found by its trait alone.
    let (c, body) = run(
        &snap,
        "resources_CPU=VCPU:1&resources_NET=SRIOV_NET_VF:1&required_NUMA=HW_NUMA_ROOT\
         &same_subtree=_CPU,_NET,_NUMA&group_policy=none",
        36,
    );
    assert_eq!(
        normalized(&c),
        vec![
            vec![(2, "VCPU".into(), 1), (4, "SRIOV_NET_VF".into(), 1)],
            vec![(3, "VCPU".into(), 1), (5, "SRIOV_NET_VF".into(), 1)],
        ]
    );
    let m = &body["allocation_requests"][0]["mappings"];
    assert_eq!(m["_NUMA"], json!([uuid(2)]));
    assert_eq!(m["_NET"], json!([uuid(4)]));
    // Without same_subtree (and no resourceless group) VCPU and VF may be in different
    // NUMA nodes.
    let (c, _) = run(
        &snap,
        "resources_CPU=VCPU:1&resources_NET=SRIOV_NET_VF:1&group_policy=none",
        36,
    );
    assert_eq!(c.requests.len(), 4);
}

#[test]
fn limit_and_deterministic_order() {
    let mut b = Builder::default();
    for id in 1..=20 {
        b.add(id, None).inv("VCPU", 4).inv("MEMORY_MB", 4096);
    }
    let snap = b.snapshot();
    let (c, body) = run(&snap, "resources=VCPU:1&limit=5", 29);
    let anchors: Vec<i64> = c.requests.iter().map(|r| r.anchor).collect();
    assert_eq!(anchors, vec![1, 2, 3, 4, 5]);
    assert_eq!(body["provider_summaries"].as_object().unwrap().len(), 5);
    let (c2, _) = run(&snap, "resources=VCPU:1&limit=5", 29);
    assert_eq!(c, c2);
    let (c, _) = run(&snap, "resources=VCPU:1", 29);
    assert_eq!(c.requests.len(), 20);
}

/// Upstream's SharedStorageFixture: cn1 (VCPU, MEMORY_MB, SSE traits) and cn2 (also local
/// DISK_GB), each with two NUMA children holding one PF (SRIOV_NET_VF:8) each, and two
/// sharing DISK_GB providers ss and ss2, all roots in one aggregate.
fn shared_storage_fixture() -> ferrostack_placement::model::Snapshot {
    let mut b = Builder::default();
    let ratio = |total, reserved, allocation_ratio| ferrostack_placement::model::Inventory {
        total,
        reserved,
        min_unit: 1,
        max_unit: total,
        step_size: 1,
        allocation_ratio,
    };
    for cn in [1, 2] {
        b.add(cn, None)
            .inventory("VCPU", ratio(24, 0, 16.0))
            .inventory("MEMORY_MB", ratio(128 * 1024, 0, 1.5))
            .aggs(&[1]);
    }
    b.add(1, None)
        .traits(&["HW_CPU_X86_SSE", "HW_CPU_X86_SSE2"]);
    b.add(2, None).inventory("DISK_GB", ratio(2000, 100, 1.0));
    for ss in [3, 4] {
        b.add(ss, None)
            .inventory("DISK_GB", ratio(2000, 100, 1.0))
            .traits(&[SHARES])
            .aggs(&[1]);
    }
    // numa1_1=5, numa1_2=6 under cn1; numa2_1=7, numa2_2=8 under cn2; pf N+4 under numa N.
    for (numa, cn) in [(5, 1), (6, 1), (7, 2), (8, 2)] {
        b.add(numa, Some(cn));
    }
    for numa in 5..=8 {
        b.add(numa + 4, Some(numa)).inv("SRIOV_NET_VF", 8);
    }
    b.snapshot()
}

#[test]
fn upstream_shared_storage_fixture() {
    let snap = shared_storage_fixture();
    let count = |q: &str, mv: u16| {
        let (c, body) = run(&snap, q, mv);
        (
            c.requests.len(),
            body["provider_summaries"].as_object().unwrap().len(),
        )
    };
    assert_eq!(snap.providers.len(), 12);

    assert_eq!(
        count("resources=VCPU:1,MEMORY_MB:1024,DISK_GB:100", 10),
        (5, 4)
    );
    let (_, body) = run(&snap, "resources=VCPU:1,MEMORY_MB:1024,DISK_GB:100", 10);
    assert_eq!(
        body["provider_summaries"][uuid(1)]["resources"],
        json!({"VCPU": {"capacity": 384, "used": 0}, "MEMORY_MB": {"capacity": 196608, "used": 0}})
    );
    assert_eq!(
        count(
            "resources=VCPU:1,MEMORY_MB:1024,DISK_GB:100&required=HW_CPU_X86_SSE",
            17
        ),
        (2, 3)
    );
    assert_eq!(
        count(
            "resources=VCPU:1,MEMORY_MB:1024,DISK_GB:100&required=!HW_CPU_X86_SSE",
            22
        )
        .0,
        3
    );
    assert_eq!(
        count(
            "resources=VCPU:1,MEMORY_MB:1024,DISK_GB:100&required=HW_CPU_X86_SSE3",
            17
        ),
        (0, 0)
    );
    assert_eq!(count("resources=SRIOV_NET_VF:4", 28), (4, 4));
    assert_eq!(count("resources=SRIOV_NET_VF:4", 29), (4, 10));
    assert_eq!(count("resources=VCPU:1,SRIOV_NET_VF:4", 28), (0, 0));
    assert_eq!(count("resources=VCPU:1,SRIOV_NET_VF:4", 29), (4, 10));
    assert_eq!(count("resources=VCPU:1,SRIOV_NET_VF:4&limit=1", 29), (1, 5));
    assert_eq!(count("resources=DISK_GB:10,SRIOV_NET_VF:4", 28), (8, 6));

    let t = |id: i64| uuid(id);
    assert_eq!(
        count(
            &format!("resources=VCPU:1,SRIOV_NET_VF:4&in_tree={}", t(1)),
            31
        ),
        (2, 5)
    );
    assert_eq!(
        count(
            &format!("resources=VCPU:1,SRIOV_NET_VF:4&in_tree={}", t(10)),
            31
        ),
        (2, 5)
    );
    assert_eq!(
        count(&format!("resources=VCPU:1,DISK_GB:10&in_tree={}", t(1)), 31).0,
        0
    );
    assert_eq!(
        count(&format!("resources=VCPU:1,DISK_GB:10&in_tree={}", t(2)), 31).0,
        1
    );
    assert_eq!(
        count(&format!("resources=VCPU:1,DISK_GB:10&in_tree={}", t(3)), 31).0,
        0
    );
    assert_eq!(
        count(&format!("resources1=VCPU:1&in_tree1={}", t(1)), 31).0,
        1
    );
    assert_eq!(
        count(&format!("resources1=VCPU:1&in_tree1={}", t(9)), 31).0,
        1
    );
    assert_eq!(
        count(&format!("resources1=SRIOV_NET_VF:4&in_tree1={}", t(1)), 31).0,
        2
    );
    assert_eq!(
        count(&format!("resources1=SRIOV_NET_VF:4&in_tree1={}", t(9)), 31).0,
        2
    );
    assert_eq!(
        count(
            &format!("resources=VCPU:1&resources1=DISK_GB:10&in_tree1={}", t(1)),
            31
        )
        .0,
        0
    );
    assert_eq!(
        count(
            &format!("resources=VCPU:1&resources1=DISK_GB:10&in_tree1={}", t(2)),
            31
        )
        .0,
        1
    );
    let (c, _) = run(
        &snap,
        &format!("resources=VCPU:1&resources1=DISK_GB:10&in_tree1={}", t(3)),
        31,
    );
    assert_eq!(
        normalized(&c),
        vec![
            vec![(1, "VCPU".into(), 1), (3, "DISK_GB".into(), 10)],
            vec![(2, "VCPU".into(), 1), (3, "DISK_GB".into(), 10)],
        ]
    );
}
