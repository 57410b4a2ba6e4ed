//! The filters of `GET /resource_providers`: name, uuid, member_of (1.3), resources
//! (1.4: providers that alone can take the amounts now), in_tree (1.14), required (1.18),
//! evaluated over the snapshot.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{PlacementError, Result};
use crate::microversion::Microversion;
use crate::model::{Provider, Snapshot};

#[derive(Debug, Default)]
pub struct ProviderFilter {
    pub name: Option<String>,
    pub uuid: Option<String>,
    /// Each entry: the provider must be in at least one of these aggregates.
    pub member_of: Vec<BTreeSet<String>>,
    pub not_member_of: BTreeSet<String>,
    pub resources: BTreeMap<String, i64>,
    pub in_tree: Option<String>,
    /// Each entry: the provider must have at least one of these traits.
    pub required: Vec<BTreeSet<String>>,
    pub forbidden: BTreeSet<String>,
}

fn bad_value(detail: String) -> PlacementError {
    PlacementError::bad_code(crate::error::code::QUERY_BAD_VALUE, detail)
}

impl ProviderFilter {
    pub fn parse(pairs: &[(String, String)], mv: Microversion) -> Result<ProviderFilter> {
        let mut f = ProviderFilter::default();
        for (k, v) in pairs {
            match k.as_str() {
                "name" => f.name = Some(v.clone()),
                "uuid" => f.uuid = Some(v.clone()),
                "in_tree" => {
                    if uuid::Uuid::parse_str(v).is_err() {
                        return Err(PlacementError::bad(format!(
                            "Invalid query string parameters: '{v}' is not a 'uuid'"
                        )));
                    }
                    f.in_tree = Some(v.clone())
                }
                "member_of" => {
                    let (negated, rest) = match v.strip_prefix('!') {
                        Some(r) if mv.at_least(32) => (true, r),
                        _ => (false, v.as_str()),
                    };
                    let list = rest.strip_prefix("in:").unwrap_or(rest);
                    let set: BTreeSet<String> =
                        list.split(',').map(|s| s.trim().to_string()).collect();
                    for a in &set {
                        if uuid::Uuid::parse_str(a).is_err() {
                            return Err(bad_value(format!(
                                "Invalid query string parameters: Expected 'member_of' parameter to contain valid UUID(s). Got: {a}"
                            )));
                        }
                    }
                    if negated {
                        f.not_member_of.extend(set);
                    } else {
                        f.member_of.push(set);
                    }
                }
                "resources" => {
                    for part in v.split(',') {
                        let (class, amount) = part.split_once(':').ok_or_else(|| {
                            bad_value(format!("Badly formed resources parameter. Expected resources query string parameter in form: ?resources=VCPU:2,MEMORY_MB:1024. Got: {v}."))
                        })?;
                        let amount: i64 = amount.trim().parse().ok().filter(|a| *a > 0).ok_or_else(|| {
                            bad_value(format!("Requested resource {class} expected positive integer amount. Got: {amount}."))
                        })?;
                        if f.resources
                            .insert(class.trim().to_string(), amount)
                            .is_some()
                        {
                            return Err(bad_value(format!("Badly formed resources parameter. Expected each resource class to appear once. Got: {v}.")));
                        }
                    }
                }
                "required" => {
                    for t in v.split(',').map(str::trim) {
                        if let Some(name) = t.strip_prefix('!') {
                            f.forbidden.insert(name.to_string());
                        } else if let Some(any) = t.strip_prefix("in:") {
                            f.required
                                .push(any.split(',').map(|s| s.to_string()).collect());
                        } else if t.is_empty() {
                            return Err(bad_value(format!("Invalid query string parameters: Expected 'required' parameter value of the form: HW_CPU_X86_VMX,!CUSTOM_MAGIC. Got: {v}")));
                        } else {
                            f.required.push(BTreeSet::from([t.to_string()]));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(f)
    }

    pub fn select<'a>(&self, snap: &'a Snapshot) -> Vec<&'a Provider> {
        let tree_root = self
            .in_tree
            .as_ref()
            .map(|u| snap.by_uuid(u).map(|p| p.root));
        let mut out: Vec<&Provider> = snap
            .providers
            .values()
            .filter(|p| self.name.as_ref().is_none_or(|n| &p.name == n))
            .filter(|p| self.uuid.as_ref().is_none_or(|u| &p.uuid == u))
            .filter(|p| match tree_root {
                None => true,
                Some(None) => false,
                Some(Some(root)) => p.root == root,
            })
            .filter(|p| {
                self.member_of
                    .iter()
                    .all(|any| any.iter().any(|a| p.aggregates.contains(a)))
                    && !self.not_member_of.iter().any(|a| p.aggregates.contains(a))
            })
            .filter(|p| {
                self.required
                    .iter()
                    .all(|any| any.iter().any(|t| p.traits.contains(t)))
                    && !self.forbidden.iter().any(|t| p.traits.contains(t))
            })
            .filter(|p| {
                self.resources
                    .iter()
                    .all(|(class, amount)| p.can_take(class, *amount))
            })
            .collect();
        out.sort_by_key(|p| p.id);
        out
    }
}
