//! Property test of the allocation-candidate search: random small provider forests (depth
//! up to 3, three classes, random inventories, usage, traits, aggregates and sharing
//! providers) and random requests (an unsuffixed group and up to two suffixed ones, with
//! traits, aggregates, in_tree, group_policy, same_subtree and root_required) are answered
//! by `search` and by a brute-force model written here from the rules alone: enumerate every
//! assignment of every group's classes to every provider, keep those meeting all
//! constraints, and compare the sets of normalized allocation requests.

#[path = "candidates_support.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};

use ferrostack_placement::candidates::{self, CandidateRequest, GroupPolicy, RequestGroup};
use ferrostack_placement::microversion::Microversion;
use ferrostack_placement::model::{Inventory, Provider, Snapshot};
use ferrostack_placement::query::{AggregateFilter, TraitFilter};
use proptest::prelude::*;
use support::{agg, uuid, Builder};

const CLASSES: [&str; 3] = ["VCPU", "MEMORY_MB", "DISK_GB"];
const TRAITS: [&str; 3] = ["CUSTOM_A", "CUSTOM_B", "CUSTOM_C"];
const SHARES: &str = "MISC_SHARES_VIA_AGGREGATE";

/// (amounts per provider, mapping suffix → providers), both sorted.
type Normal = (Vec<(i64, String, i64)>, Vec<(String, i64)>);

// ---------- generators ----------

/// total, reserved, min_unit, max_unit (0: total), step, ratio 1.5?, used
type GenInventory = (i64, i64, i64, i64, i64, bool, i64);

/// One way a group can be met: its amounts and the providers it uses.
type GroupOption = (Vec<(i64, String, i64)>, BTreeSet<i64>);

#[derive(Debug, Clone)]
struct GenProvider {
    /// Index of the parent among the earlier providers (or a new root).
    parent: Option<prop::sample::Index>,
    invs: Vec<Option<GenInventory>>,
    traits: Vec<bool>,
    sharing: bool,
    aggs: (bool, bool),
}

fn gen_provider() -> impl Strategy<Value = GenProvider> {
    (
        prop::option::weighted(0.6, any::<prop::sample::Index>()),
        prop::collection::vec(
            prop::option::weighted(
                0.6,
                // total, reserved, min_unit, max_unit (0: total), step, ratio 1.5?, used
                (
                    2i64..10,
                    prop_oneof![4 => Just(0i64), 1 => Just(1i64)],
                    prop_oneof![4 => Just(1i64), 1 => Just(2i64)],
                    prop_oneof![3 => Just(0i64), 1 => 1i64..6],
                    prop_oneof![4 => Just(1i64), 1 => Just(2i64)],
                    any::<bool>(),
                    prop_oneof![2 => Just(0i64), 1 => 1i64..6],
                ),
            ),
            3,
        ),
        prop::collection::vec(prop::bool::weighted(0.35), 3),
        prop::bool::weighted(0.25),
        (any::<bool>(), prop::bool::weighted(0.3)),
    )
        .prop_map(|(parent, invs, traits, sharing, aggs)| GenProvider {
            parent,
            invs,
            traits,
            sharing,
            aggs,
        })
}

fn build(gens: &[GenProvider]) -> Snapshot {
    let mut b = Builder::default();
    let mut depth: Vec<usize> = Vec::new();
    for (i, g) in gens.iter().enumerate() {
        let id = i as i64 + 1;
        // Depth at most 3 (root, child, grandchild).
        let parent = match g.parent {
            Some(ix) if i > 0 => {
                let pi = ix.index(i);
                (depth[pi] < 2).then_some(pi)
            }
            _ => None,
        };
        depth.push(parent.map_or(0, |pi| depth[pi] + 1));
        let p = b.add(id, parent.map(|pi| pi as i64 + 1));
        for (ci, inv) in g.invs.iter().enumerate() {
            if let Some((total, reserved, min_unit, max_unit, step, ratio, used)) = *inv {
                p.inventories.insert(
                    CLASSES[ci].to_string(),
                    Inventory {
                        total,
                        reserved: reserved.min(total),
                        min_unit,
                        max_unit: if max_unit == 0 {
                            total
                        } else {
                            max_unit.max(min_unit)
                        },
                        step_size: step,
                        allocation_ratio: if ratio { 1.5 } else { 1.0 },
                    },
                );
                if used > 0 {
                    p.used.insert(CLASSES[ci].to_string(), used);
                }
            }
        }
        for (ti, on) in g.traits.iter().enumerate() {
            if *on {
                p.traits.insert(TRAITS[ti].to_string());
            }
        }
        if g.sharing {
            p.traits.insert(SHARES.to_string());
        }
        if g.aggs.0 {
            p.aggregates.insert(agg(1));
        }
        if g.aggs.1 {
            p.aggregates.insert(agg(2));
        }
    }
    b.snapshot()
}

#[derive(Debug, Clone)]
struct GenGroup {
    resources: Vec<Option<i64>>,
    /// Per trait: 0 nothing, 1 required, 2 forbidden.
    traits: Vec<u8>,
    any_of: bool,
    member_of: u8,
    in_tree: Option<prop::sample::Index>,
}

fn gen_group() -> impl Strategy<Value = GenGroup> {
    (
        prop::collection::vec(prop::option::weighted(0.4, 1i64..4), 3),
        prop::collection::vec(
            prop_oneof![10 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8)],
            3,
        ),
        prop::bool::weighted(0.2),
        prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
        prop::option::weighted(0.1, any::<prop::sample::Index>()),
    )
        .prop_map(|(resources, traits, any_of, member_of, in_tree)| GenGroup {
            resources,
            traits,
            any_of,
            member_of,
            in_tree,
        })
}

fn to_group(g: &GenGroup, suffix: &str, n_providers: usize) -> RequestGroup {
    let resources: BTreeMap<String, i64> = g
        .resources
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.map(|a| (CLASSES[i].to_string(), a)))
        .collect();
    let mut required = TraitFilter::default();
    for (i, t) in g.traits.iter().enumerate() {
        match t {
            1 => {
                required
                    .all_of_any
                    .push(BTreeSet::from([TRAITS[i].to_string()]));
            }
            2 => {
                required.forbidden.insert(TRAITS[i].to_string());
            }
            _ => {}
        }
    }
    if g.any_of {
        required
            .all_of_any
            .push(TRAITS[..2].iter().map(|t| t.to_string()).collect());
    }
    let mut member_of = AggregateFilter::default();
    match g.member_of {
        1 => member_of.all_of_any.push(BTreeSet::from([agg(1)])),
        2 => member_of.all_of_any.push(BTreeSet::from([agg(1), agg(2)])),
        3 => {
            member_of.forbidden.insert(agg(2));
        }
        _ => {}
    }
    RequestGroup {
        suffix: suffix.to_string(),
        resources,
        required,
        member_of,
        in_tree: g.in_tree.map(|ix| uuid(ix.index(n_providers) as i64 + 1)),
    }
}

#[derive(Debug, Clone)]
struct GenRequest {
    unsuffixed: Option<GenGroup>,
    granular: Vec<(GenGroup, bool)>,
    isolate: bool,
    same_subtree: bool,
    root_required: u8,
    nested_aware: bool,
}

fn gen_request() -> impl Strategy<Value = GenRequest> {
    (
        prop::option::weighted(0.8, gen_group()),
        prop::collection::vec((gen_group(), prop::bool::weighted(0.15)), 0..=2),
        any::<bool>(),
        prop::bool::weighted(0.25),
        prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        prop::bool::weighted(0.85),
    )
        .prop_map(
            |(unsuffixed, granular, isolate, same_subtree, root_required, nested_aware)| {
                GenRequest {
                    unsuffixed,
                    granular,
                    isolate,
                    same_subtree,
                    root_required,
                    nested_aware,
                }
            },
        )
}

fn to_request(r: &GenRequest, n_providers: usize) -> Option<CandidateRequest> {
    let mut groups = Vec::new();
    if let Some(g) = &r.unsuffixed {
        let g = to_group(g, "", n_providers);
        if g.resources.is_empty() {
            return None;
        }
        groups.push(g);
    }
    let same_subtree = r.same_subtree && r.granular.len() == 2;
    for (i, (g, resourceless)) in r.granular.iter().enumerate() {
        let mut g = to_group(g, &(i + 1).to_string(), n_providers);
        if *resourceless && same_subtree {
            g.resources.clear();
        }
        if g.resources.is_empty() && !same_subtree {
            return None;
        }
        groups.push(g);
    }
    if groups.iter().all(|g| g.resources.is_empty()) {
        return None;
    }
    let mut root_required = TraitFilter::default();
    match r.root_required {
        1 => root_required
            .all_of_any
            .push(BTreeSet::from([TRAITS[0].to_string()])),
        2 => {
            root_required.forbidden.insert(TRAITS[1].to_string());
        }
        _ => {}
    }
    Some(CandidateRequest {
        groups,
        group_policy: Some(if r.isolate {
            GroupPolicy::Isolate
        } else {
            GroupPolicy::None
        }),
        limit: None,
        root_required,
        same_subtrees: if same_subtree {
            vec![BTreeSet::from(["1".to_string(), "2".to_string()])]
        } else {
            Vec::new()
        },
        nested_aware: r.nested_aware,
    })
}

// ---------- the brute-force model ----------

fn fits(p: &Provider, class: &str, amount: i64) -> bool {
    let Some(inv) = p.inventories.get(class) else {
        return false;
    };
    let used = p.used.get(class).copied().unwrap_or(0);
    let capacity = ((inv.total - inv.reserved) as f64 * inv.allocation_ratio).floor() as i64;
    amount >= inv.min_unit
        && amount <= inv.max_unit
        && amount % inv.step_size == 0
        && used + amount <= capacity
}

fn has_all(filter_sets: &[BTreeSet<String>], have: &BTreeSet<String>) -> bool {
    filter_sets
        .iter()
        .all(|set| set.iter().any(|x| have.contains(x)))
}

fn ancestors(snap: &Snapshot, id: i64) -> Vec<i64> {
    let mut out = vec![id];
    let mut cur = snap.providers[&id].parent;
    while let Some(p) = cur {
        out.push(p);
        cur = snap.providers[&p].parent;
    }
    out
}

/// Every provider that may serve anchor `root`: its own tree, and sharing providers of
/// other trees with an aggregate in common with some provider of that tree.
fn may_serve(snap: &Snapshot, p: &Provider, root: i64) -> bool {
    if p.root == root {
        return true;
    }
    p.traits.contains(SHARES)
        && snap
            .providers
            .values()
            .filter(|q| q.root == root)
            .any(|q| q.aggregates.iter().any(|a| p.aggregates.contains(a)))
}

/// One group's possible outcomes for an anchor: (amounts, providers used).
fn group_options(snap: &Snapshot, g: &RequestGroup, anchor: &Provider) -> Vec<GroupOption> {
    let all: Vec<&Provider> = snap.providers.values().collect();
    let tree_of_in_tree = g.in_tree.as_ref().map(|u| snap.by_uuid(u).map(|p| p.root));
    let mut out = Vec::new();
    if g.use_same_provider() || g.resources.is_empty() {
        for p in &all {
            if !may_serve(snap, p, anchor.id) {
                continue;
            }
            if let Some(t) = tree_of_in_tree {
                if t != Some(p.root) {
                    continue;
                }
            }
            let ok = g.resources.iter().all(|(c, a)| fits(p, c, *a))
                && has_all(&g.required.all_of_any, &p.traits)
                && g.required.forbidden.is_disjoint(&p.traits)
                && has_all(&g.member_of.all_of_any, &p.aggregates)
                && g.member_of.forbidden.is_disjoint(&p.aggregates);
            if ok {
                let amounts = g
                    .resources
                    .iter()
                    .map(|(c, a)| (p.id, c.clone(), *a))
                    .collect();
                out.push((amounts, BTreeSet::from([p.id])));
            }
        }
        return out;
    }
    // Unsuffixed: every assignment of each class to any provider.
    let classes: Vec<(&String, &i64)> = g.resources.iter().collect();
    let n = classes.len();
    let mut idx = vec![0usize; n];
    loop {
        let chosen: Vec<&Provider> = idx.iter().map(|&i| all[i]).collect();
        let mut ok = true;
        for (k, p) in chosen.iter().enumerate() {
            let (class, amount) = classes[k];
            let own = p.root == anchor.id;
            if !may_serve(snap, p, anchor.id) || !fits(p, class, *amount) {
                ok = false;
                break;
            }
            if let Some(t) = tree_of_in_tree {
                // in_tree: only that tree, and no sharing providers from elsewhere.
                if t != Some(anchor.id) || !own {
                    ok = false;
                    break;
                }
            }
            let aggs_ok = if own {
                has_all(&g.member_of.all_of_any, &p.aggregates)
                    || has_all(&g.member_of.all_of_any, &anchor.aggregates)
            } else {
                has_all(&g.member_of.all_of_any, &p.aggregates)
            };
            if !aggs_ok
                || !g.member_of.forbidden.is_disjoint(&p.aggregates)
                || !g.member_of.forbidden.is_disjoint(&anchor.aggregates)
                || !g.required.forbidden.is_disjoint(&p.traits)
            {
                ok = false;
                break;
            }
        }
        if ok {
            let union: BTreeSet<String> = chosen
                .iter()
                .flat_map(|p| p.traits.iter().cloned())
                .collect();
            if has_all(&g.required.all_of_any, &union) {
                let amounts = classes
                    .iter()
                    .zip(&chosen)
                    .map(|((c, a), p)| (p.id, (*c).clone(), **a))
                    .collect();
                out.push((amounts, chosen.iter().map(|p| p.id).collect()));
            }
        }
        let mut k = n;
        loop {
            if k == 0 {
                return out;
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < all.len() {
                break;
            }
            idx[k] = 0;
        }
    }
}

fn brute(snap: &Snapshot, req: &CandidateRequest) -> BTreeSet<Normal> {
    let mut out = BTreeSet::new();
    for anchor in snap.providers.values().filter(|p| p.parent.is_none()) {
        if !has_all(&req.root_required.all_of_any, &anchor.traits)
            || !req.root_required.forbidden.is_disjoint(&anchor.traits)
        {
            continue;
        }
        let options: Vec<_> = req
            .groups
            .iter()
            .map(|g| group_options(snap, g, anchor))
            .collect();
        if options.iter().any(|o| o.is_empty()) {
            continue;
        }
        let mut idx = vec![0usize; options.len()];
        loop {
            let picks: Vec<_> = idx
                .iter()
                .enumerate()
                .map(|(g, &i)| &options[g][i])
                .collect();
            if let Some(n) = check_combination(snap, req, &picks) {
                out.insert(n);
            }
            let mut k = idx.len();
            let done = loop {
                if k == 0 {
                    break true;
                }
                k -= 1;
                idx[k] += 1;
                if idx[k] < options[k].len() {
                    break false;
                }
                idx[k] = 0;
            };
            if done {
                break;
            }
        }
    }
    out
}

fn check_combination(
    snap: &Snapshot,
    req: &CandidateRequest,
    picks: &[&GroupOption],
) -> Option<Normal> {
    let granular: Vec<(usize, i64)> = req
        .groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g.use_same_provider())
        .map(|(i, _)| (i, *picks[i].1.iter().next().expect("one provider")))
        .collect();
    if req.group_policy == Some(GroupPolicy::Isolate) {
        let distinct: BTreeSet<i64> = granular.iter().map(|(_, p)| *p).collect();
        if distinct.len() != granular.len() {
            return None;
        }
    }
    for set in &req.same_subtrees {
        let provs: BTreeSet<i64> = req
            .groups
            .iter()
            .enumerate()
            .filter(|(_, g)| set.contains(&g.suffix))
            .flat_map(|(i, _)| picks[i].1.iter().copied())
            .collect();
        let top = provs
            .iter()
            .any(|x| provs.iter().all(|y| ancestors(snap, *y).contains(x)));
        if !top {
            return None;
        }
    }
    let mut sums: BTreeMap<(i64, String), i64> = BTreeMap::new();
    for pick in picks {
        for (p, c, a) in &pick.0 {
            *sums.entry((*p, c.clone())).or_default() += a;
        }
    }
    for ((p, c), sum) in &sums {
        let prov = &snap.providers[p];
        let inv = &prov.inventories[c];
        let used = prov.used.get(c).copied().unwrap_or(0);
        let capacity = ((inv.total - inv.reserved) as f64 * inv.allocation_ratio).floor() as i64;
        if used + sum > capacity || *sum > inv.max_unit {
            return None;
        }
    }
    if !req.nested_aware {
        let provs: BTreeSet<i64> = sums.keys().map(|(p, _)| *p).collect();
        let roots: BTreeSet<i64> = provs.iter().map(|p| snap.providers[p].root).collect();
        if roots.len() != provs.len() {
            return None;
        }
    }
    let mut mappings: Vec<(String, i64)> = req
        .groups
        .iter()
        .enumerate()
        .flat_map(|(i, g)| picks[i].1.iter().map(move |p| (g.suffix.clone(), *p)))
        .collect();
    mappings.sort();
    mappings.dedup();
    Some((
        sums.into_iter().map(|((p, c), a)| (p, c, a)).collect(),
        mappings,
    ))
}

fn normalize(req: &CandidateRequest, c: &candidates::Candidates) -> Vec<Normal> {
    c.requests
        .iter()
        .map(|r| {
            let res = r
                .resources
                .iter()
                .map(|&(p, ci, a)| (p, c.classes[ci as usize].clone(), a))
                .collect();
            let mut maps: Vec<(String, i64)> = r
                .mappings
                .iter()
                .map(|&(gi, p)| (req.groups[gi as usize].suffix.clone(), p))
                .collect();
            maps.sort();
            (res, maps)
        })
        .collect()
}

proptest! {
    // PROPTEST_CASES raises the count for a longer soak.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn search_matches_brute_force(
        gens in prop::collection::vec(gen_provider(), 1..9),
        r in gen_request(),
        limit in prop::option::weighted(0.2, 1usize..4),
    ) {
        let snap = build(&gens);
        let Some(mut req) = to_request(&r, gens.len()) else { return Ok(()) };
        let want = brute(&snap, &req);
        let found = candidates::search(&snap, &req);
        let got = normalize(&req, &found);
        for mv in [10u16, 12, 17, 27, 29, 34, 39] {
            let mv = Microversion(mv);
            let text = candidates::render_json(&snap, &found, &req, mv);
            let reparsed: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
            prop_assert_eq!(reparsed, candidates::render(&snap, &found, &req, mv));
        }
        let got_set: BTreeSet<Normal> = got.iter().cloned().collect();
        prop_assert_eq!(got_set.len(), got.len(), "duplicates in {:?}", got);
        prop_assert_eq!(&got_set, &want);

        // limit keeps a prefix of the same deterministic order.
        if let Some(l) = limit {
            req.limit = Some(l);
            let limited = normalize(&req, &candidates::search(&snap, &req));
            prop_assert_eq!(limited.len(), l.min(got.len()));
            prop_assert_eq!(&limited[..], &got[..limited.len()]);
        }
    }
}
