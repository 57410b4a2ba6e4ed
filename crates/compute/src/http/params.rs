//! Query-string rules shared by the newer Compute resources: Nova's strict query schemas
//! (unknown parameters are a 400 from the microversion that closed the schema), its
//! non-negative integer parameters, and the `next` link of a page.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{Ctx, Query};
use crate::error::ComputeError;

/// Nova's largest page (`[api] max_limit`), also the page when none is asked for.
pub const MAX_LIMIT: usize = 1000;

/// Refuses parameters outside `allowed`, worded as Nova's schema validation does.
pub fn only(q: &Query, allowed: &[&str]) -> Result<(), ComputeError> {
    let mut unexpected: Vec<String> = Vec::new();
    for (k, _) in &q.0 {
        if !allowed.contains(&k.as_str()) && !unexpected.contains(k) {
            unexpected.push(k.clone());
        }
    }
    if unexpected.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = unexpected.iter().map(|k| format!("'{k}'")).collect();
    let verb = if names.len() == 1 { "was" } else { "were" };
    Err(ComputeError::bad(format!(
        "Additional properties are not allowed ({} {verb} unexpected)",
        names.join(", ")
    )))
}

/// A non-negative integer parameter (`limit`, `offset`), as Nova validates it.
pub fn count(q: &Query, name: &str) -> Result<Option<usize>, ComputeError> {
    match q.get(name) {
        None => Ok(None),
        Some(v) => v.parse::<usize>().map(Some).map_err(|_| {
            ComputeError::bad(format!(
                "Invalid input for query parameters {name}. Value: {v}. '{v}' does not match '^[0-9]*$'"
            ))
        }),
    }
}

/// The page size Nova applies: `limit` capped at `max`, and `max` when absent or 0.
pub fn page_size(limit: Option<usize>, max: usize) -> usize {
    limit.filter(|l| *l > 0).unwrap_or(max).min(max)
}

/// The page size of Nova's marker-paged lists (`get_limit_and_marker`): `limit` capped at
/// `max`, `max` when absent; an explicit 0 stays 0 (an empty page).
pub fn capped(limit: Option<usize>, max: usize) -> usize {
    limit.map_or(max, |l| l.min(max))
}

/// `[{"rel": "next", "href": ...}]` when the page is full, pointing after `last` with the
/// request's other parameters kept (sorted, as Nova writes them).
pub fn next_link(
    ctx: &Ctx,
    collection: &str,
    q: &Query,
    shown: usize,
    size: usize,
    last: Option<&str>,
) -> Option<Value> {
    let last = last?;
    if size == 0 || shown != size {
        return None;
    }
    let mut params: BTreeMap<&str, &str> =
        q.0.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    params.insert("marker", last);
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    Some(json!([{
        "rel": "next",
        "href": format!("{}/v2.1/{collection}?{query}", ctx.base),
    }]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Query {
        Query(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn unknown_parameters_are_named() {
        assert!(only(&q(&[("limit", "1")]), &["limit"]).is_ok());
        let e = only(&q(&[("x", "1"), ("y", "2"), ("x", "3")]), &["limit"]).unwrap_err();
        assert_eq!(
            e.message,
            "Additional properties are not allowed ('x', 'y' were unexpected)"
        );
        let e = only(&q(&[("x", "1")]), &[]).unwrap_err();
        assert!(e.message.ends_with("('x' was unexpected)"), "{}", e.message);
    }

    #[test]
    fn counts_and_page_sizes() {
        assert_eq!(count(&q(&[("offset", "3")]), "offset").unwrap(), Some(3));
        assert_eq!(count(&q(&[]), "offset").unwrap(), None);
        assert_eq!(
            count(&q(&[("offset", "-1")]), "offset").unwrap_err().status,
            400
        );
        assert_eq!(page_size(None, 1000), 1000);
        assert_eq!(page_size(Some(0), 1000), 1000);
        assert_eq!(page_size(Some(5), 1000), 5);
        assert_eq!(page_size(Some(5000), 1000), 1000);
        assert_eq!(capped(Some(0), 1000), 0);
        assert_eq!(capped(None, 1000), 1000);
        assert_eq!(capped(Some(7), 1000), 7);
    }
}
