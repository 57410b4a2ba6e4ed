//! The query string of `GET /allocation_candidates` → [`CandidateRequest`], in upstream's
//! order of checks: first the per-microversion "schema" (which keys exist, `resources`
//! required before 1.25, `limit` and `group_policy` values), then the request-wide
//! parameters, then the groups, then the cross-group rules. The first failure wins, so the
//! order decides which 400 a client sees.

use std::collections::BTreeSet;

use super::{CandidateRequest, GroupPolicy, RequestGroup};
use crate::error::{code, PlacementError};
use crate::microversion::Microversion;
use crate::query::{
    parse_in_tree, parse_member_of, parse_required, parse_resources, parse_root_required,
    values_of, TraitFilter,
};

const PREFIXES: [&str; 4] = ["resources", "required", "member_of", "in_tree"];

// Python's `repr` of a str, which upstream's messages embed.
use crate::schema::py_str as py_repr;

/// Python's `str` of a list of str: `['a', 'b']`.
fn py_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let parts: Vec<String> = items.into_iter().map(py_repr).collect();
    format!("[{}]", parts.join(", "))
}

fn schema_error(
    message: String,
    validator: &str,
    path: &str,
    instance: Option<&str>,
) -> PlacementError {
    // jsonschema's str() of the error: message, then where it failed. The dump of the schema
    // itself is left out; clients match on the first lines.
    let mut detail = format!(
        "Invalid query string parameters: {message}\n\nFailed validating {} in schema{path}",
        py_repr(validator)
    );
    if let Some(v) = instance {
        detail.push_str(&format!(":\n\nOn instance{path}:\n    {}", py_repr(v)));
    }
    PlacementError::bad(detail)
}

/// Whether `s` is a group suffix valid at `mv`: a number without leading zero before 1.33,
/// 1 to 64 of `[a-zA-Z0-9_-]` from it.
fn valid_suffix(s: &str, mv: Microversion) -> bool {
    if mv.at_least(33) {
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    } else {
        !s.is_empty() && !s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit())
    }
}

/// Splits a group key into (prefix, suffix) if it is one at `mv`.
fn group_key(key: &str, mv: Microversion) -> Option<(&'static str, &str)> {
    for p in PREFIXES {
        if let Some(rest) = key.strip_prefix(p) {
            if rest.is_empty() || valid_suffix(rest, mv) {
                return Some((p, rest));
            }
        }
    }
    None
}

/// The keys the schema of `mv` admits, and whether it speaks in pattern properties.
fn key_allowed(key: &str, mv: Microversion) -> bool {
    let m = mv.0;
    if m >= 25 {
        match group_key(key, mv) {
            Some(("in_tree", _)) => return m >= 31,
            Some(_) => return true,
            None => {}
        }
        return match key {
            "limit" | "group_policy" => true,
            "root_required" => m >= 35,
            "same_subtree" => m >= 36,
            _ => false,
        };
    }
    match key {
        "resources" => true,
        "limit" => m >= 16,
        "required" => m >= 17,
        "member_of" => m >= 21,
        _ => false,
    }
}

fn patterns(mv: Microversion) -> Vec<String> {
    let suffix = if mv.at_least(33) {
        "[a-zA-Z0-9_-]{1,64}"
    } else {
        "[1-9][0-9]*"
    };
    let mut prefixes = vec!["member_of", "required", "resources"];
    if mv.at_least(31) {
        prefixes.insert(0, "in_tree");
    }
    prefixes
        .into_iter()
        .map(|p| format!("^{p}({suffix})?$"))
        .collect()
}

/// The microversion's schema: unknown keys, the missing `resources` (before 1.25), bad
/// `limit` and `group_policy` values, in the precedence jsonschema's best match gives.
fn check_schema(pairs: &[(String, String)], mv: Microversion) -> Result<(), PlacementError> {
    if !mv.at_least(25) && !pairs.iter().any(|(k, _)| k == "resources") {
        return Err(schema_error(
            "'resources' is a required property".into(),
            "required",
            "",
            None,
        ));
    }
    let extras: BTreeSet<&str> = pairs
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !key_allowed(k, mv))
        .collect();
    if !extras.is_empty() {
        let joined = extras
            .iter()
            .map(|e| py_repr(e))
            .collect::<Vec<_>>()
            .join(", ");
        let msg = if mv.at_least(25) {
            let verb = if extras.len() == 1 { "does" } else { "do" };
            let pats = patterns(mv)
                .iter()
                .map(|p| py_repr(p))
                .collect::<Vec<_>>()
                .join(", ");
            format!("{joined} {verb} not match any of the regexes: {pats}")
        } else {
            let verb = if extras.len() == 1 { "was" } else { "were" };
            format!("Additional properties are not allowed ({joined} {verb} unexpected)")
        };
        return Err(schema_error(msg, "additionalProperties", "", None));
    }
    for v in values_of(pairs, "limit") {
        let ok = !v.is_empty() && !v.starts_with('0') && v.bytes().all(|b| b.is_ascii_digit());
        if !ok {
            return Err(schema_error(
                format!("{} does not match '^[1-9][0-9]*$'", py_repr(v)),
                "pattern",
                "['properties']['limit']",
                Some(v),
            ));
        }
    }
    for v in values_of(pairs, "group_policy") {
        if v != "none" && v != "isolate" {
            return Err(schema_error(
                format!("{} is not one of ['none', 'isolate']", py_repr(v)),
                "enum",
                "['properties']['group_policy']",
                Some(v),
            ));
        }
    }
    Ok(())
}

/// Parses the query pairs (decoded, in order) of `GET /allocation_candidates` at `mv`.
/// The caller answers 404 below 1.10 (the route does not exist there).
pub fn parse(
    pairs: &[(String, String)],
    mv: Microversion,
) -> Result<CandidateRequest, PlacementError> {
    check_schema(pairs, mv)?;

    // Request-wide parameters. A repeated limit or group_policy takes the first value.
    let limit = values_of(pairs, "limit")
        .first()
        .map(|v| v.parse::<usize>().unwrap_or(usize::MAX));
    let group_policy = values_of(pairs, "group_policy").first().map(|v| {
        if *v == "isolate" {
            GroupPolicy::Isolate
        } else {
            GroupPolicy::None
        }
    });
    let root_required = parse_root_required(&values_of(pairs, "root_required"))?;
    let mut same_subtrees = Vec::new();
    for v in values_of(pairs, "same_subtree") {
        let set: BTreeSet<String> = v.split(',').map(|s| s.trim().to_string()).collect();
        if set.contains("") {
            return Err(PlacementError::bad_code(
                code::QUERY_BAD_VALUE,
                "Empty string (unsuffixed group) can not be specified in `same_subtree` ",
            ));
        }
        same_subtrees.push(set);
    }

    // The groups, in the order their keys first appear.
    let mut groups: Vec<RequestGroup> = Vec::new();
    for (key, value) in pairs {
        let Some((prefix, suffix)) = group_key(key, mv) else {
            continue;
        };
        let idx = match groups.iter().position(|g| g.suffix == suffix) {
            Some(i) => i,
            None => {
                groups.push(RequestGroup {
                    suffix: suffix.to_string(),
                    ..RequestGroup::default()
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[idx];
        match prefix {
            "resources" => g.resources = parse_resources(value)?,
            "required" => g.required = parse_required(&values_of(pairs, key), mv)?,
            "member_of" => g.member_of = parse_member_of(&values_of(pairs, key), mv, suffix)?,
            _ => g.in_tree = Some(parse_in_tree(value)?),
        }
    }

    if mv.at_least(36) {
        check_resourceless(&groups, &same_subtrees)?;
    } else {
        check_orphans(&groups)?;
    }
    if mv.at_least(22) {
        check_conflicts(&groups)?;
    }
    if group_policy.is_none() && groups.iter().filter(|g| g.use_same_provider()).count() > 1 {
        return Err(PlacementError::bad(
            "The \"group_policy\" parameter is required when specifying more than one \
             \"resources{N}\" parameter.",
        ));
    }
    Ok(CandidateRequest {
        groups,
        group_policy,
        limit,
        root_required,
        same_subtrees,
        nested_aware: mv.at_least(29),
    })
}

/// From 1.36 a group may ask for no resources if `same_subtree` names it.
fn check_resourceless(
    groups: &[RequestGroup],
    same_subtrees: &[BTreeSet<String>],
) -> Result<(), PlacementError> {
    let resourceless: BTreeSet<&str> = groups
        .iter()
        .filter(|g| g.resources.is_empty())
        .map(|g| g.suffix.as_str())
        .collect();
    if resourceless.len() == groups.len() {
        return Err(PlacementError::bad_code(
            code::QUERY_MISSING_VALUE,
            "There must be at least one resources or resources[$S] parameter.",
        ));
    }
    let in_subtree: BTreeSet<&str> = same_subtrees.iter().flatten().map(String::as_str).collect();
    let bad: Vec<&str> = resourceless
        .iter()
        .copied()
        .filter(|s| !in_subtree.contains(s))
        .collect();
    if !bad.is_empty() {
        return Err(PlacementError::bad_code(
            code::QUERY_BAD_VALUE,
            format!(
                "Resourceless suffixed group request should be specified in `same_subtree` \
                 query param: bad group(s) - {}.",
                py_list(bad)
            ),
        ));
    }
    let bad: Vec<&str> = in_subtree
        .iter()
        .copied()
        .filter(|s| !groups.iter().any(|g| g.suffix == *s))
        .collect();
    if !bad.is_empty() {
        return Err(PlacementError::bad_code(
            code::QUERY_BAD_VALUE,
            format!(
                "Real suffixes should be specified in `same_subtree`: {} not found in {}.",
                py_list(bad),
                py_list(groups.iter().map(|g| g.suffix.as_str()))
            ),
        ));
    }
    Ok(())
}

/// Before 1.36 every group needs resources.
fn check_orphans(groups: &[RequestGroup]) -> Result<(), PlacementError> {
    let orphans: Vec<String> = groups
        .iter()
        .filter(|g| !g.required.is_empty() && g.resources.is_empty())
        .map(|g| format!("required{}", g.suffix))
        .collect();
    if !orphans.is_empty() {
        return Err(PlacementError::bad(format!(
            "All traits parameters must be associated with resources.  Found the following \
             orphaned traits keys: {}",
            orphans.join(", ")
        )));
    }
    let orphans: Vec<String> = groups
        .iter()
        .filter(|g| !g.member_of.is_empty() && g.resources.is_empty())
        .map(|g| format!("member_of{}", g.suffix))
        .collect();
    if !orphans.is_empty() {
        return Err(PlacementError::bad(format!(
            "All member_of parameters must be associated with resources. Found the following \
             orphaned member_of keys: {}",
            orphans.join(", ")
        )));
    }
    if groups.iter().any(|g| g.resources.is_empty()) {
        return Err(PlacementError::bad(
            "All request groups must specify resources.",
        ));
    }
    if groups.is_empty() {
        return Err(PlacementError::bad(
            "At least one request group (`resources` or `resources{$S}`) is required.",
        ));
    }
    Ok(())
}

/// An any-of set whose every member is also forbidden can never match.
fn check_conflicts(groups: &[RequestGroup]) -> Result<(), PlacementError> {
    let mut conflicts: Vec<String> = Vec::new();
    for g in groups {
        let TraitFilter {
            all_of_any,
            forbidden,
        } = &g.required;
        for any in all_of_any {
            if any.iter().all(|t| forbidden.contains(t)) {
                let names: Vec<&str> = any.iter().map(String::as_str).collect();
                conflicts.push(format!("required{}: ({})", g.suffix, names.join(", ")));
            }
        }
    }
    if conflicts.is_empty() {
        return Ok(());
    }
    conflicts.sort();
    Err(PlacementError::bad(format!(
        "Conflicting required and forbidden traits found in the following traits keys: {}",
        conflicts.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const U1: &str = "11111111-1111-1111-1111-111111111111";

    fn q(s: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(s.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn p(s: &str, m: u16) -> Result<CandidateRequest, PlacementError> {
        parse(&q(s), Microversion(m))
    }

    fn err(s: &str, m: u16) -> PlacementError {
        p(s, m).expect_err(s)
    }

    #[test]
    fn simple_request() {
        let r = p(
            "resources=VCPU:2,MEMORY_MB:4096,DISK_GB:40&required=!COMPUTE_STATUS_DISABLED&limit=1000",
            39,
        )
        .unwrap();
        assert_eq!(r.groups.len(), 1);
        assert_eq!(r.groups[0].suffix, "");
        assert_eq!(r.groups[0].resources.len(), 3);
        assert!(r.groups[0]
            .required
            .forbidden
            .contains("COMPUTE_STATUS_DISABLED"));
        assert_eq!(r.limit, Some(1000));
        assert!(r.nested_aware);
        assert!(!p("resources=VCPU:1", 28).unwrap().nested_aware);
    }

    #[test]
    fn schema_gates() {
        let e = err("resources=VCPU:1&limit=5", 15);
        assert!(e.detail.contains("'limit' was unexpected"), "{}", e.detail);
        assert!(e.detail.starts_with("Invalid query string parameters"));
        for bad in ["cow", "-99", "0", ""] {
            let e = err(&format!("resources=VCPU:1&limit={bad}"), 16);
            assert!(
                e.detail.contains("Failed validating 'pattern'"),
                "{}",
                e.detail
            );
        }
        assert_eq!(
            p("resources=VCPU:1&limit=10&limit=1", 16).unwrap().limit,
            Some(10)
        );
        let e = err("", 10);
        assert!(e.detail.contains("'resources' is a required property"));
        let e = err("resources=VCPU:1&required=A", 16);
        assert!(e.detail.contains("'required' was unexpected"));
        let e = err("resources=VCPU:1&member_of=x", 20);
        assert!(e.detail.contains("'member_of' was unexpected"));
        let e = err("resources=MEMORY_MB:1024&resources1=VCPU:1", 24);
        assert!(e.detail.contains("'resources1' was unexpected"));
        let e = err("resources=VCPU:1&group_policy=isolate", 24);
        assert!(e.detail.contains("'group_policy' was unexpected"));
        let e = err("resources01=VCPU:1", 25);
        assert!(
            e.detail
                .contains("'resources01' does not match any of the regexes"),
            "{}",
            e.detail
        );
        let e = err("resources1@=VCPU:1", 33);
        assert!(e
            .detail
            .contains("'resources1@' does not match any of the regexes"));
        assert!(e.detail.contains("'^member_of([a-zA-Z0-9_-]{1,64})?$'"));
        let long = format!("resources_{}=VCPU:1", "0123456701234567".repeat(4));
        assert!(err(&long, 33)
            .detail
            .contains("does not match any of the regexes"));
        let e = err("resources=VCPU:1&group_policy=bogus", 25);
        assert!(e
            .detail
            .contains("'bogus' is not one of ['none', 'isolate']"));
        let e = err(&format!("resources=VCPU:1&in_tree={U1}"), 30);
        assert!(e.detail.contains("Invalid query string parameters"));
        let e = err("resources=VCPU:1&root_required=A", 34);
        assert!(e
            .detail
            .contains("'root_required' does not match any of the regexes"));
        let e = err("resources=VCPU:1&same_subtree=_A", 35);
        assert!(e.detail.contains("'same_subtree' does not match"));
        assert!(p("resources_X=VCPU:1", 32).is_err());
        assert!(p("resources_X=VCPU:1", 33).is_ok());
        let e = err("resources=VCPU:1&foo=1&bar=2", 30);
        assert!(
            e.detail
                .contains("'bar', 'foo' do not match any of the regexes"),
            "{}",
            e.detail
        );
    }

    #[test]
    fn granular_groups() {
        let r = p(
            "resources=MEMORY_MB:1024&resources2=VCPU:1&required2=A&resources1=SRIOV_NET_VF:1\
             &member_of1=in:11111111-1111-1111-1111-111111111111,22222222-2222-2222-2222-222222222222\
             &group_policy=isolate",
            25,
        )
        .unwrap();
        let suffixes: Vec<&str> = r.groups.iter().map(|g| g.suffix.as_str()).collect();
        assert_eq!(suffixes, ["", "2", "1"]);
        assert_eq!(r.group_policy, Some(GroupPolicy::Isolate));
        assert_eq!(r.groups[2].member_of.all_of_any[0].len(), 2);
        let e = err("resources1=VCPU:1&resources2=VCPU:1", 25);
        assert_eq!(
            e.detail,
            "The \"group_policy\" parameter is required when specifying more than one \"resources{N}\" parameter."
        );
        // One suffixed group plus the unsuffixed one needs no policy.
        assert!(p("resources=VCPU:1&resources1=VCPU:1", 25).is_ok());
    }

    #[test]
    fn orphans_before_1_36() {
        let e = err("required=FOO&required1=BAR", 25);
        assert!(e
            .detail
            .ends_with("Found the following orphaned traits keys: required, required1"));
        let e = err(&format!("member_of={U1}&member_of3={U1}"), 25);
        assert!(e
            .detail
            .ends_with("Found the following orphaned member_of keys: member_of, member_of3"));
        let e = err(&format!("resources=VCPU:1&in_tree1={U1}"), 31);
        assert_eq!(e.detail, "All request groups must specify resources.");
        let e = err("group_policy=isolate", 25);
        assert_eq!(
            e.detail,
            "At least one request group (`resources` or `resources{$S}`) is required."
        );
        let e = err(&format!("member_of=!{U1}"), 32);
        assert!(e
            .detail
            .contains("All member_of parameters must be associated with resources"));
    }

    #[test]
    fn resourceless_from_1_36() {
        let e = err("resources1=VCPU:1&required2=A&group_policy=none", 36);
        assert_eq!(e.code, code::QUERY_BAD_VALUE);
        assert!(e.detail.contains("bad group(s) - ['2']"), "{}", e.detail);
        let e = err(&format!("member_of1={U1}&group_policy=none"), 36);
        assert_eq!(e.code, code::QUERY_MISSING_VALUE);
        assert_eq!(
            e.detail,
            "There must be at least one resources or resources[$S] parameter."
        );
        let e = err(
            "resources_A=VCPU:1&required_B=X&same_subtree=A,_B&group_policy=none",
            36,
        );
        assert_eq!(e.code, code::QUERY_BAD_VALUE);
        assert!(
            e.detail.contains("Real suffixes should be specified in `same_subtree`: ['A'] not found in ['_A', '_B']"),
            "{}",
            e.detail
        );
        let e = err("resources_A=VCPU:1&same_subtree=_A,", 36);
        assert!(e
            .detail
            .contains("Empty string (unsuffixed group) can not be specified"));
        let r = p(
            "resources_A=VCPU:1&required_B=X&same_subtree=_A,_B&group_policy=none",
            36,
        )
        .unwrap();
        assert!(r.groups[1].resources.is_empty());
        assert_eq!(r.same_subtrees.len(), 1);
        let e = err("resources1=VCPU:1&required=A", 36);
        assert!(e.detail.contains("bad group(s) - ['']"));
    }

    #[test]
    fn trait_rules() {
        let e = err("resources=VCPU:1&required=A,!A", 22);
        assert_eq!(
            e.detail,
            "Conflicting required and forbidden traits found in the following traits keys: required: (A)"
        );
        assert!(p("resources=VCPU:1&required=in:A,B&required=!A", 39).is_ok());
        let e = err("resources=VCPU:1&required=in:A,B&required=!A,!B", 39);
        assert!(e.detail.ends_with("required: (A, B)"));
        let r = p("resources=VCPU:1&required=A&required=B", 38).unwrap();
        assert_eq!(r.groups[0].required.all_of_any.len(), 1);
        let r = p("resources=VCPU:1&required=A&required=B", 39).unwrap();
        assert_eq!(r.groups[0].required.all_of_any.len(), 2);
        let e = err("requiredX=in:A,B&resourcesX=VCPU:1", 38);
        assert!(e.detail.contains("only supported since microversion 1.39"));
    }

    #[test]
    fn root_required_and_names() {
        let e = err("resources=VCPU:1&root_required=A&root_required=!B", 35);
        assert_eq!(e.code, code::QUERY_DUPLICATE_KEY);
        let r = p("resources=VCPU:1,MCPU:2&root_required=A,!B&required=T", 35).unwrap();
        let e = r.check_names(|c| c != "MCPU", |_| true).unwrap_err();
        assert_eq!(
            e.detail,
            "Invalid resource class in resources parameter: No such resource class MCPU."
        );
        let e = r.check_names(|_| true, |t| t != "B").unwrap_err();
        assert_eq!(e.detail, "No such trait(s): B.");
        assert!(r.check_names(|_| true, |_| true).is_ok());
    }

    #[test]
    fn member_of_and_in_tree() {
        let e = err("resources=VCPU:1&member_of=INVALID_UUID", 21);
        assert!(e
            .detail
            .contains("Expected 'member_of' parameter to contain valid UUID(s)."));
        let e = err(
            &format!("resources=VCPU:1&member_of={U1}&member_of={U1}"),
            23,
        );
        assert_eq!(e.detail, "Multiple member_of parameters are not supported");
        let e = err(&format!("resources=VCPU:1&member_of=!{U1}"), 31);
        assert!(e
            .detail
            .contains("Forbidden member_of parameters are not supported"));
        let e = err("resources=VCPU:1&in_tree=life-is-beautiful", 31);
        assert!(e
            .detail
            .contains("Expected 'in_tree' parameter to be a format of uuid"));
        let r = p(
            &format!("resources=VCPU:1&in_tree={U1}&member_of=!{U1}"),
            32,
        )
        .unwrap();
        assert_eq!(r.groups[0].in_tree.as_deref(), Some(U1));
        assert_eq!(r.groups[0].member_of.forbidden.len(), 1);
    }

    #[test]
    fn resources_errors_surface() {
        let e = err("resources=", 10);
        assert!(e.detail.contains("Got: empty string."));
        let e = err("resources=VCPU:0", 10);
        assert!(e.detail.contains("requires amount >= 1"));
    }
}
