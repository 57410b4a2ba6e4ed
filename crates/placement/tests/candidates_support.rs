//! Helpers shared by the `candidates_*` tests (included with `#[path]`): a small builder
//! of provider snapshots and a query runner. Compiled on its own as well, with no tests.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use ferrostack_placement::candidates::{self, CandidateRequest, Candidates};
use ferrostack_placement::microversion::Microversion;
use ferrostack_placement::model::{Inventory, Provider, Snapshot};

/// A deterministic uuid for provider / aggregate number `n`.
pub fn uuid(n: i64) -> String {
    format!("{n:08x}-0000-4000-8000-{n:012x}")
}

pub fn agg(n: i64) -> String {
    format!("aaaaaaaa-0000-4000-8000-{n:012x}")
}

pub fn inv(total: i64) -> Inventory {
    Inventory {
        total,
        reserved: 0,
        min_unit: 1,
        max_unit: total,
        step_size: 1,
        allocation_ratio: 1.0,
    }
}

#[derive(Default)]
pub struct Builder {
    providers: Vec<Provider>,
}

impl Builder {
    /// Adds provider `id` under `parent` (root when None); an existing `id` is returned
    /// as it is, to add more to it.
    pub fn add(&mut self, id: i64, parent: Option<i64>) -> &mut Provider {
        if let Some(at) = self.providers.iter().position(|p| p.id == id) {
            return &mut self.providers[at];
        }
        let root = match parent {
            None => id,
            Some(pid) => {
                self.providers
                    .iter()
                    .find(|p| p.id == pid)
                    .expect("parent first")
                    .root
            }
        };
        self.providers.push(Provider {
            id,
            uuid: uuid(id),
            name: format!("rp{id}"),
            generation: 0,
            parent,
            root,
            inventories: BTreeMap::new(),
            used: BTreeMap::new(),
            traits: BTreeSet::new(),
            aggregates: BTreeSet::new(),
        });
        self.providers.last_mut().expect("pushed")
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot::from_providers(self.providers.clone())
    }
}

pub trait ProviderExt {
    fn inv(&mut self, class: &str, total: i64) -> &mut Self;
    fn inventory(&mut self, class: &str, inv: Inventory) -> &mut Self;
    fn used(&mut self, class: &str, used: i64) -> &mut Self;
    fn traits(&mut self, traits: &[&str]) -> &mut Self;
    fn aggs(&mut self, aggs: &[i64]) -> &mut Self;
}

impl ProviderExt for Provider {
    fn inv(&mut self, class: &str, total: i64) -> &mut Self {
        self.inventories.insert(class.into(), inv(total));
        self
    }
    fn inventory(&mut self, class: &str, inv: Inventory) -> &mut Self {
        self.inventories.insert(class.into(), inv);
        self
    }
    fn used(&mut self, class: &str, used: i64) -> &mut Self {
        self.used.insert(class.into(), used);
        self
    }
    fn traits(&mut self, traits: &[&str]) -> &mut Self {
        self.traits.extend(traits.iter().map(|t| t.to_string()));
        self
    }
    fn aggs(&mut self, aggs: &[i64]) -> &mut Self {
        self.aggregates.extend(aggs.iter().map(|a| agg(*a)));
        self
    }
}

pub fn pairs(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn request(q: &str, mv: u16) -> CandidateRequest {
    candidates::parse(&pairs(q), Microversion(mv)).unwrap_or_else(|e| panic!("{q}: {}", e.detail))
}

pub fn run(snap: &Snapshot, q: &str, mv: u16) -> (Candidates, serde_json::Value) {
    let req = request(q, mv);
    let c = candidates::search(snap, &req);
    let body = candidates::render(snap, &c, &req, Microversion(mv));
    // The fast text renderer must say exactly the same.
    let text = candidates::render_json(snap, &c, &req, Microversion(mv));
    let reparsed: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(
        reparsed, body,
        "render_json differs from render for {q} at 1.{mv}"
    );
    (c, body)
}

/// The requests as sorted lists of (provider id, class, amount), sorted.
pub fn normalized(c: &Candidates) -> Vec<Vec<(i64, String, i64)>> {
    let mut out: Vec<Vec<(i64, String, i64)>> = c
        .as_maps()
        .into_iter()
        .map(|m| {
            m.into_iter()
                .flat_map(|(p, res)| res.into_iter().map(move |(c, a)| (p, c, a)))
                .collect()
        })
        .collect();
    out.sort();
    out
}
