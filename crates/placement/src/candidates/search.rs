//! The allocation-candidate search over a [`Snapshot`], following upstream Placement's
//! rules:
//!
//! * Every candidate is built for an *anchor*, a tree root. The providers that may serve an
//!   anchor are its tree's providers plus *sharing* providers (trait
//!   `MISC_SHARES_VIA_AGGREGATE`) of other trees that share an aggregate with any provider
//!   of the anchor's tree.
//! * The unsuffixed group takes each requested class whole from one provider, but different
//!   classes may come from different providers. Its required traits are checked against the
//!   union of the traits of the providers it actually uses (not the whole tree); a forbidden
//!   trait on any used provider rejects it. Its `member_of` is met if the provider or the
//!   anchor root is in the aggregates (an aggregate on the root spans the tree), except that
//!   a sharing provider serving another tree must be in them itself; forbidden aggregates
//!   must be on neither the provider nor the anchor. `in_tree` keeps it inside that tree
//!   (sharing providers of other trees are then not used).
//! * A suffixed group is satisfied by one provider that has every class, every required
//!   trait, the aggregates itself and none of the forbidden ones.
//! * The groups' choices for one anchor are combined; `group_policy=isolate` needs distinct
//!   providers for the suffixed groups, `same_subtree` needs one of the named groups'
//!   providers to be an ancestor of (or equal to) all the others, amounts that land on the
//!   same provider and class are summed and must still fit (capacity and `max_unit`), and
//!   before 1.29 a candidate may not use two providers of one tree.
//! * Identical requests (same amounts, same group mappings) are reported once.
//!
//! The hot loop walks the roots in id order, reuses its buffers, and stops as soon as
//! `limit` candidates exist (the order is deterministic, so the first N are the answer).

use std::collections::{BTreeSet, HashMap, HashSet};

use super::{
    AllocationRequest, CandidateRequest, Candidates, GroupPolicy, RequestGroup, SHARING_TRAIT,
};
use crate::model::{Provider, Snapshot};

/// A group, resolved against the snapshot once per search.
struct Group<'r> {
    g: &'r RequestGroup,
    /// (class index, class name, amount)
    res: Vec<(u16, &'r str, i64)>,
    /// Root of the `in_tree` provider.
    in_tree_root: Option<i64>,
}

/// One way a group can be satisfied for the current anchor: a range of `Scratch::items`
/// and, for a suffixed group, its provider.
#[derive(Clone, Copy)]
struct Choice {
    start: u32,
    end: u32,
    provider: i64,
    /// Whether every provider used is a sharing provider (only then can another anchor
    /// produce the same request, so only then is the duplicate check needed).
    all_sharing: bool,
}

/// Buffers reused across anchors so the per-anchor work allocates nothing in the common
/// case.
#[derive(Default)]
struct Scratch<'s> {
    members: Vec<(&'s Provider, bool)>,
    stack: Vec<i64>,
    items: Vec<(i64, u16, i64)>,
    choices: Vec<Vec<Choice>>,
    rc_opts: Vec<Vec<(&'s Provider, bool)>>,
    odometer: Vec<usize>,
    picked: Vec<usize>,
    merged: Vec<(i64, u16, i64, u8)>,
}

/// Finds the allocation candidates for `req` in `snap`.
pub fn search(snap: &Snapshot, req: &CandidateRequest) -> Candidates {
    let classes: Vec<String> = req
        .requested_classes()
        .into_iter()
        .map(str::to_string)
        .collect();
    let mut out = Candidates {
        classes,
        ..Candidates::default()
    };
    if req.groups.is_empty() || req.limit == Some(0) {
        return out;
    }
    let mut groups = Vec::with_capacity(req.groups.len());
    for g in &req.groups {
        let res = g
            .resources
            .iter()
            .map(|(c, &a)| {
                let idx = out.classes.binary_search(c).expect("class indexed") as u16;
                (idx, c.as_str(), a)
            })
            .collect();
        let in_tree_root = match &g.in_tree {
            None => None,
            // An unknown in_tree provider means no candidates at all, as upstream.
            Some(u) => match snap.by_uuid(u) {
                Some(p) => Some(p.root),
                None => return out,
            },
        };
        groups.push(Group {
            g,
            res,
            in_tree_root,
        });
    }

    let serves = sharing_map(snap);
    let allowed_anchors = anchors_allowed_by_in_tree(snap, &groups);
    let subtree_groups: Vec<Vec<usize>> = req
        .same_subtrees
        .iter()
        .map(|set| {
            groups
                .iter()
                .enumerate()
                .filter(|(_, g)| set.contains(&g.g.suffix))
                .map(|(i, _)| i)
                .collect()
        })
        .collect();

    let mut ctx = Ctx {
        snap,
        req,
        groups: &groups,
        subtree_groups: &subtree_groups,
        classes: &out.classes,
        seen: HashSet::new(),
        out: &mut out.requests,
    };
    let mut s = Scratch {
        choices: vec![Vec::new(); groups.len()],
        picked: vec![0; groups.len()],
        ..Scratch::default()
    };
    let roots: Box<dyn Iterator<Item = &Provider>> = match &allowed_anchors {
        Some(ids) => Box::new(ids.iter().filter_map(|id| snap.get(*id))),
        None => Box::new(snap.providers.values().filter(|p| p.parent.is_none())),
    };
    for root in roots {
        if !req.root_required.is_empty() && !req.root_required.matches(&root.traits) {
            continue;
        }
        collect_members(snap, root, serves.get(&root.id), &mut s);
        if !build_choices(root, &groups, &mut s) {
            continue;
        }
        if ctx.combine(root.id, &mut s, 0) {
            break;
        }
    }
    out.summaries = summaries(snap, &out.requests, req.nested_aware);
    out
}

/// Sharing provider → the roots of the other trees it serves, inverted: anchor root →
/// sharing providers outside that tree that serve it (sorted).
fn sharing_map(snap: &Snapshot) -> HashMap<i64, Vec<i64>> {
    let mut by_agg: HashMap<&str, Vec<&Provider>> = HashMap::new();
    for p in snap.providers.values() {
        if p.traits.contains(SHARING_TRAIT) {
            for a in &p.aggregates {
                by_agg.entry(a.as_str()).or_default().push(p);
            }
        }
    }
    let mut serves: HashMap<i64, Vec<i64>> = HashMap::new();
    if by_agg.is_empty() {
        return serves;
    }
    for p in snap.providers.values() {
        for a in &p.aggregates {
            if let Some(shared) = by_agg.get(a.as_str()) {
                for s in shared {
                    if s.root != p.root {
                        serves.entry(p.root).or_default().push(s.id);
                    }
                }
            }
        }
    }
    for v in serves.values_mut() {
        v.sort_unstable();
        v.dedup();
    }
    serves
}

/// With `in_tree` on some group, only few anchors can work: the named tree, and for a
/// suffixed group also the trees its sharing providers serve. `None` = no restriction.
fn anchors_allowed_by_in_tree(snap: &Snapshot, groups: &[Group]) -> Option<BTreeSet<i64>> {
    let mut allowed: Option<BTreeSet<i64>> = None;
    for g in groups {
        let Some(t) = g.in_tree_root else { continue };
        let mut set = BTreeSet::from([t]);
        if g.g.use_same_provider() {
            for id in snap.subtree(t) {
                let Some(p) = snap.get(id) else { continue };
                if !p.traits.contains(SHARING_TRAIT) {
                    continue;
                }
                for q in snap.providers.values() {
                    if q.aggregates.iter().any(|a| p.aggregates.contains(a)) {
                        set.insert(q.root);
                    }
                }
            }
        }
        allowed = Some(match allowed {
            None => set,
            Some(prev) => prev.intersection(&set).copied().collect(),
        });
    }
    allowed
}

/// The providers that may serve `root`: its tree, then the sharing providers of other
/// trees, each with whether it is a sharing provider; sorted by id.
fn collect_members<'s>(
    snap: &'s Snapshot,
    root: &'s Provider,
    shared: Option<&Vec<i64>>,
    s: &mut Scratch<'s>,
) {
    s.members.clear();
    s.members.push((root, root.traits.contains(SHARING_TRAIT)));
    if snap.children.contains_key(&root.id) {
        s.stack.clear();
        s.stack.push(root.id);
        while let Some(id) = s.stack.pop() {
            if let Some(kids) = snap.children.get(&id) {
                for k in kids {
                    if let Some(p) = snap.get(*k) {
                        s.members.push((p, p.traits.contains(SHARING_TRAIT)));
                        s.stack.push(*k);
                    }
                }
            }
        }
    }
    for id in shared.into_iter().flatten() {
        if let Some(p) = snap.get(*id) {
            s.members.push((p, true));
        }
    }
    if s.members.len() > 1 {
        s.members.sort_unstable_by_key(|(p, _)| p.id);
    }
}

/// Fills `s.choices` for every group; false when some group has none for this anchor.
fn build_choices<'s>(root: &'s Provider, groups: &[Group], s: &mut Scratch<'s>) -> bool {
    s.items.clear();
    for (gi, g) in groups.iter().enumerate() {
        s.choices[gi].clear();
        let ok = if g.g.use_same_provider() || g.res.is_empty() {
            single_provider_choices(g, s, gi)
        } else {
            multi_provider_choices(root, g, s, gi)
        };
        if !ok {
            return false;
        }
    }
    true
}

/// A suffixed group: each member that alone has everything.
fn single_provider_choices(g: &Group, s: &mut Scratch, gi: usize) -> bool {
    for &(p, sharing) in &s.members {
        let in_tree_ok = g.in_tree_root.is_none_or(|t| p.root == t);
        if !in_tree_ok
            || !g.res.iter().all(|(_, c, a)| p.can_take(c, *a))
            || !g.g.required.matches(&p.traits)
            || !g.g.member_of.matches(&p.aggregates)
        {
            continue;
        }
        let start = s.items.len() as u32;
        s.items
            .extend(g.res.iter().map(|&(ci, _, a)| (p.id, ci, a)));
        s.choices[gi].push(Choice {
            start,
            end: s.items.len() as u32,
            provider: p.id,
            all_sharing: sharing,
        });
    }
    !s.choices[gi].is_empty()
}

/// The unsuffixed group: per class the members that can take it, then every combination
/// whose providers together carry the required traits.
fn multi_provider_choices<'s>(
    root: &'s Provider,
    g: &Group,
    s: &mut Scratch<'s>,
    gi: usize,
) -> bool {
    let filter = &g.g.member_of;
    let traits = &g.g.required;
    if let Some(t) = g.in_tree_root {
        if t != root.id {
            return false;
        }
    }
    let root_in_aggs = filter.all_of_any.is_empty() || filter.required_met(&root.aggregates);
    if filter.hits_forbidden(&root.aggregates) {
        return false;
    }
    while s.rc_opts.len() < g.res.len() {
        s.rc_opts.push(Vec::new());
    }
    for (k, &(_, class, amount)) in g.res.iter().enumerate() {
        let opts = &mut s.rc_opts[k];
        opts.clear();
        for &(p, sharing) in &s.members {
            let own_tree = p.root == root.id;
            if own_tree && g.in_tree_root.is_some_and(|t| t != p.root) {
                continue;
            }
            if !own_tree && g.in_tree_root.is_some() {
                continue;
            }
            let aggs_ok = if own_tree {
                root_in_aggs || filter.required_met(&p.aggregates)
            } else {
                filter.required_met(&p.aggregates)
            };
            if !aggs_ok
                || filter.hits_forbidden(&p.aggregates)
                || traits.hits_forbidden(&p.traits)
                || !p.can_take(class, amount)
            {
                continue;
            }
            opts.push((p, sharing));
        }
        if opts.is_empty() {
            return false;
        }
    }
    // Every combination, first class slowest, each list in provider id order.
    let n = g.res.len();
    s.odometer.clear();
    s.odometer.resize(n, 0);
    loop {
        let ok = traits
            .required_met(|t| (0..n).any(|k| s.rc_opts[k][s.odometer[k]].0.traits.contains(t)));
        if ok {
            let start = s.items.len() as u32;
            let mut all_sharing = true;
            for (k, &(ci, _, a)) in g.res.iter().enumerate() {
                let (p, sharing) = s.rc_opts[k][s.odometer[k]];
                all_sharing &= sharing;
                s.items.push((p.id, ci, a));
            }
            s.choices[gi].push(Choice {
                start,
                end: s.items.len() as u32,
                provider: -1,
                all_sharing,
            });
        }
        // Advance the odometer, last class fastest.
        let mut k = n;
        loop {
            if k == 0 {
                return !s.choices[gi].is_empty();
            }
            k -= 1;
            s.odometer[k] += 1;
            if s.odometer[k] < s.rc_opts[k].len() {
                break;
            }
            s.odometer[k] = 0;
        }
    }
}

/// What makes two allocation requests the same: amounts and group mappings.
type RequestKey = (Vec<(i64, u16, i64)>, Vec<(u16, i64)>);

struct Ctx<'a> {
    snap: &'a Snapshot,
    req: &'a CandidateRequest,
    groups: &'a [Group<'a>],
    subtree_groups: &'a [Vec<usize>],
    classes: &'a [String],
    seen: HashSet<RequestKey>,
    out: &'a mut Vec<AllocationRequest>,
}

impl Ctx<'_> {
    /// Picks a choice for group `gi` and recurses; true when `limit` is reached.
    fn combine(&mut self, anchor: i64, s: &mut Scratch, gi: usize) -> bool {
        if gi == self.groups.len() {
            return self.emit(anchor, s);
        }
        let isolate = self.req.group_policy == Some(GroupPolicy::Isolate);
        for ci in 0..s.choices[gi].len() {
            let c = s.choices[gi][ci];
            if isolate && self.groups[gi].g.use_same_provider() {
                let clash = (0..gi).any(|pg| {
                    self.groups[pg].g.use_same_provider()
                        && s.choices[pg][s.picked[pg]].provider == c.provider
                });
                if clash {
                    continue;
                }
            }
            s.picked[gi] = ci;
            if self.combine(anchor, s, gi + 1) {
                return true;
            }
        }
        false
    }

    /// Checks the combination in `s.picked` and records it; true when `limit` is reached.
    fn emit(&mut self, anchor: i64, s: &mut Scratch) -> bool {
        let groups = self.groups;
        // same_subtree: one of the named groups' providers is above all the others.
        for set in self.subtree_groups {
            let provs: Vec<i64> = set
                .iter()
                .map(|&g| s.choices[g][s.picked[g]].provider)
                .collect();
            let top = provs.iter().any(|&x| {
                provs
                    .iter()
                    .all(|&y| x == y || self.snap.is_ancestor_or_self(x, y))
            });
            if !top {
                return false;
            }
        }
        // Consolidate: sum per provider and class, re-check where sums were made.
        s.merged.clear();
        let mut all_sharing = true;
        for (gi, _) in groups.iter().enumerate() {
            let c = s.choices[gi][s.picked[gi]];
            all_sharing &= c.all_sharing;
            for &(p, ci, a) in &s.items[c.start as usize..c.end as usize] {
                s.merged.push((p, ci, a, 1));
            }
        }
        s.merged.sort_unstable();
        let mut w = 0;
        for r in 0..s.merged.len() {
            if w > 0 && s.merged[w - 1].0 == s.merged[r].0 && s.merged[w - 1].1 == s.merged[r].1 {
                s.merged[w - 1].2 += s.merged[r].2;
                s.merged[w - 1].3 += 1;
            } else {
                s.merged[w] = s.merged[r];
                w += 1;
            }
        }
        s.merged.truncate(w);
        for &(p, ci, sum, n) in &s.merged {
            if n < 2 {
                continue;
            }
            let Some(prov) = self.snap.get(p) else {
                return false;
            };
            let class = self.classes[ci as usize].as_str();
            let Some(inv) = prov.inventories.get(class) else {
                return false;
            };
            if prov.used(class) + sum > inv.capacity() || sum > inv.max_unit {
                return false;
            }
        }
        // Before 1.29 a candidate cannot combine providers of one tree.
        if !self.req.nested_aware && s.merged.len() > 1 {
            let mut roots: Vec<i64> = Vec::new();
            let mut last = None;
            for &(p, ..) in &s.merged {
                if last == Some(p) {
                    continue;
                }
                last = Some(p);
                let root = self.snap.get(p).map_or(p, |x| x.root);
                if roots.contains(&root) {
                    return false;
                }
                roots.push(root);
            }
        }
        let resources: Vec<(i64, u16, i64)> =
            s.merged.iter().map(|&(p, c, a, _)| (p, c, a)).collect();
        let mut mappings: Vec<(u16, i64)> = Vec::with_capacity(groups.len());
        for (gi, g) in groups.iter().enumerate() {
            let c = s.choices[gi][s.picked[gi]];
            if g.g.use_same_provider() || g.res.is_empty() {
                mappings.push((gi as u16, c.provider));
            } else {
                for &(p, ..) in &s.items[c.start as usize..c.end as usize] {
                    mappings.push((gi as u16, p));
                }
            }
        }
        mappings.sort_unstable();
        mappings.dedup();
        if all_sharing && !self.seen.insert((resources.clone(), mappings.clone())) {
            return false;
        }
        self.out.push(AllocationRequest {
            anchor,
            resources,
            mappings,
        });
        self.req.limit.is_some_and(|l| self.out.len() >= l)
    }
}

/// Which providers the response summarises: from 1.29 every provider of every tree that
/// supplies resources to some candidate; before, only the providers in the candidates.
fn summaries(snap: &Snapshot, requests: &[AllocationRequest], nested_aware: bool) -> Vec<i64> {
    let mut used: Vec<i64> = requests
        .iter()
        .flat_map(|r| r.resources.iter().map(|&(p, ..)| p))
        .collect();
    used.sort_unstable();
    used.dedup();
    if !nested_aware {
        return used;
    }
    let mut roots: Vec<i64> = used
        .iter()
        .map(|&p| snap.get(p).map_or(p, |x| x.root))
        .collect();
    roots.sort_unstable();
    roots.dedup();
    let mut out = Vec::with_capacity(roots.len());
    for r in roots {
        if snap.children.contains_key(&r) {
            out.extend(snap.subtree(r));
        } else {
            out.push(r);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}
