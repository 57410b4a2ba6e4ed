//! `GET /allocation_candidates`: [`parse`] turns the query string into a
//! [`CandidateRequest`] (with upstream's microversion gates and 400 texts), [`search`]
//! finds every way to satisfy it in a [`Snapshot`], and [`render`] writes the response body
//! of the asked microversion. The three steps are separate so the service can check names
//! against its registries ([`CandidateRequest::check_names`]) between parsing and searching,
//! and so a search can be timed or tested without HTTP.
//!
//! Order is deterministic: anchors (tree roots) by provider id, then the groups in the order
//! the query named them, each group's options by provider id. `limit` keeps the first N in
//! that order; upstream's `randomize_allocation_candidates` shuffling is not done.

mod parse;
mod render;
mod search;

use std::collections::{BTreeMap, BTreeSet};

use crate::error::PlacementError;
use crate::query::{unknown_class_error, unknown_trait_error, AggregateFilter, TraitFilter};

pub use parse::parse;
pub use render::{render, render_json};
pub use search::search;

/// The trait that makes a provider's inventory usable by trees that share an aggregate
/// with it.
pub const SHARING_TRAIT: &str = "MISC_SHARES_VIA_AGGREGATE";

/// One request group: the unsuffixed one (`resources=`, which several providers of one tree
/// plus sharing providers may satisfy together) or a suffixed one (`resources1=`,
/// `resources_NET=`, satisfied by a single provider).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestGroup {
    /// `""` for the unsuffixed group, else the suffix as written (`1`, `_COMPUTE`).
    pub suffix: String,
    pub resources: BTreeMap<String, i64>,
    pub required: TraitFilter,
    pub member_of: AggregateFilter,
    /// Provider uuid from `in_tree<suffix>`; the group must come from that provider's tree.
    pub in_tree: Option<String>,
}

impl RequestGroup {
    /// Suffixed groups are each satisfied by exactly one provider.
    pub fn use_same_provider(&self) -> bool {
        !self.suffix.is_empty()
    }
}

/// How suffixed groups relate to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupPolicy {
    /// Different groups may land on the same provider.
    None,
    /// Each suffixed group on a different provider.
    Isolate,
}

/// A parsed `GET /allocation_candidates` query.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateRequest {
    /// In the order their keys first appeared in the query.
    pub groups: Vec<RequestGroup>,
    pub group_policy: Option<GroupPolicy>,
    pub limit: Option<usize>,
    /// `root_required` (1.35): traits the anchor (root) of each candidate must (not) have.
    pub root_required: TraitFilter,
    /// `same_subtree` (1.36): sets of suffixes whose providers must all sit under one of
    /// them.
    pub same_subtrees: Vec<BTreeSet<String>>,
    /// From 1.29: before it a candidate may not use two providers of one tree.
    pub nested_aware: bool,
}

impl CandidateRequest {
    /// The 400 upstream gives for a resource class or trait that does not exist, checked in
    /// upstream's order (root_required traits, then per group its classes and traits). The
    /// snapshot does not know the registries, so the service passes lookups in.
    pub fn check_names(
        &self,
        class_exists: impl Fn(&str) -> bool,
        trait_exists: impl Fn(&str) -> bool,
    ) -> Result<(), PlacementError> {
        if let Some(t) = self.root_required.names().find(|t| !trait_exists(t)) {
            return Err(unknown_trait_error(t));
        }
        for g in &self.groups {
            if let Some(c) = g.resources.keys().find(|c| !class_exists(c)) {
                return Err(unknown_class_error(c));
            }
            if let Some(t) = g.required.names().find(|t| !trait_exists(t)) {
                return Err(unknown_trait_error(t));
            }
        }
        Ok(())
    }

    /// Every resource class named by any group, sorted (what pre-1.27 summaries show).
    pub fn requested_classes(&self) -> BTreeSet<&str> {
        self.groups
            .iter()
            .flat_map(|g| g.resources.keys().map(String::as_str))
            .collect()
    }
}

/// One allocation request: consolidated amounts per provider and class, and which
/// providers satisfied which group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllocationRequest {
    /// The root whose tree this candidate was built for (internal; not rendered).
    pub anchor: i64,
    /// (provider id, index into [`Candidates::classes`], amount), sorted, one entry per
    /// provider and class.
    pub resources: Vec<(i64, u16, i64)>,
    /// (index into [`CandidateRequest::groups`], provider id), sorted and distinct.
    pub mappings: Vec<(u16, i64)>,
}

/// The result of [`search`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Candidates {
    pub requests: Vec<AllocationRequest>,
    /// Provider ids to summarise, ascending.
    pub summaries: Vec<i64>,
    /// Class names the requests' class indexes refer to.
    pub classes: Vec<String>,
}

impl Candidates {
    /// Convenience for tests and logs: each request as provider id → class → amount.
    pub fn as_maps(&self) -> Vec<BTreeMap<i64, BTreeMap<String, i64>>> {
        self.requests
            .iter()
            .map(|r| {
                let mut m: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
                for &(p, c, a) in &r.resources {
                    m.entry(p)
                        .or_default()
                        .insert(self.classes[c as usize].clone(), a);
                }
                m
            })
            .collect()
    }
}
