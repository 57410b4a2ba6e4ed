//! The filters of `GET /resource_providers`: name, uuid, member_of (1.3), resources
//! (1.4: providers that alone can take the amounts now), in_tree (1.14), required (1.18),
//! parsed by the shared [`crate::query`] parsers and evaluated over the snapshot.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::microversion::Microversion;
use crate::model::{Provider, Snapshot};
use crate::query::{self, AggregateFilter, TraitFilter};

#[derive(Debug, Default)]
pub struct ProviderFilter {
    pub name: Option<String>,
    pub uuid: Option<String>,
    pub member_of: AggregateFilter,
    pub resources: BTreeMap<String, i64>,
    pub in_tree: Option<String>,
    pub required: TraitFilter,
}

impl ProviderFilter {
    /// Parses the query; which keys are allowed at `mv` is the handler's business.
    pub fn parse(pairs: &[(String, String)], mv: Microversion) -> Result<ProviderFilter> {
        let last = |key: &str| query::values_of(pairs, key).last().map(|v| v.to_string());
        let member_of = query::values_of(pairs, "member_of");
        let required = query::values_of(pairs, "required");
        Ok(ProviderFilter {
            name: last("name"),
            uuid: last("uuid"),
            member_of: query::parse_member_of(&member_of, mv, "")?,
            resources: match last("resources") {
                Some(v) => query::parse_resources(&v)?,
                None => BTreeMap::new(),
            },
            in_tree: last("in_tree")
                .map(|v| query::parse_in_tree(&v))
                .transpose()?,
            required: query::parse_required(&required, mv)?,
        })
    }

    pub fn select<'a>(&self, snap: &'a Snapshot) -> Vec<&'a Provider> {
        let tree_root = self
            .in_tree
            .as_ref()
            .map(|u| snap.by_uuid(u).map(|p| p.root));
        snap.providers
            .values()
            .filter(|p| self.name.as_ref().is_none_or(|n| &p.name == n))
            .filter(|p| self.uuid.as_ref().is_none_or(|u| &p.uuid == u))
            .filter(|p| match tree_root {
                None => true,
                Some(None) => false,
                Some(Some(root)) => p.root == root,
            })
            .filter(|p| self.member_of.matches(&p.aggregates))
            .filter(|p| self.required.matches(&p.traits))
            .filter(|p| {
                self.resources
                    .iter()
                    .all(|(class, amount)| p.can_take(class, *amount))
            })
            .collect()
    }
}
