//! Parsers of Placement's query-string mini-languages: `resources=VCPU:2,MEMORY_MB:512`,
//! `required=A,!B` / `required=in:A,B`, `member_of=<uuid>` / `in:<uuids>` / `!<uuid>` /
//! `!in:<uuids>`, `in_tree=<uuid>` and `root_required=`. Each parser applies the
//! microversion rules that upstream Placement applies and answers with upstream's 400
//! texts and codes, because clients (nova, osc-placement, tempest) match on them. The
//! filters they produce ([`TraitFilter`], [`AggregateFilter`]) are shared by
//! `GET /allocation_candidates` and `GET /resource_providers`.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{code, PlacementError};
use crate::microversion::Microversion;

/// A trait expression: every set in `all_of_any` needs at least one of its traits (an AND
/// of ORs), and none of `forbidden` may be present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraitFilter {
    pub all_of_any: Vec<BTreeSet<String>>,
    pub forbidden: BTreeSet<String>,
}

impl TraitFilter {
    pub fn is_empty(&self) -> bool {
        self.all_of_any.is_empty() && self.forbidden.is_empty()
    }

    /// Whether a provider (or a union of providers) carrying `traits` satisfies the filter.
    pub fn matches(&self, traits: &BTreeSet<String>) -> bool {
        self.required_met(|t| traits.contains(t))
            && !self.forbidden.iter().any(|t| traits.contains(t))
    }

    /// Whether every any-of set has a member for which `has` says yes.
    pub fn required_met(&self, has: impl Fn(&str) -> bool) -> bool {
        self.all_of_any.iter().all(|any| any.iter().any(|t| has(t)))
    }

    /// Whether any forbidden trait is among `traits`.
    pub fn hits_forbidden(&self, traits: &BTreeSet<String>) -> bool {
        // Iterate the smaller side: requests usually forbid one trait.
        self.forbidden.iter().any(|t| traits.contains(t))
    }

    /// Every trait name mentioned, required first, in the order given.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.all_of_any
            .iter()
            .flatten()
            .chain(self.forbidden.iter())
    }

    /// Appends another parsed value (repeated `required` parameters mean AND, from 1.39).
    pub fn extend(&mut self, other: TraitFilter) {
        self.all_of_any.extend(other.all_of_any);
        self.forbidden.extend(other.forbidden);
    }
}

/// An aggregate expression: the provider must be in at least one aggregate of every set
/// in `all_of_any` and in none of `forbidden`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AggregateFilter {
    pub all_of_any: Vec<BTreeSet<String>>,
    pub forbidden: BTreeSet<String>,
}

impl AggregateFilter {
    pub fn is_empty(&self) -> bool {
        self.all_of_any.is_empty() && self.forbidden.is_empty()
    }

    /// Both halves at once, for a provider with the aggregates `aggs`.
    pub fn matches(&self, aggs: &BTreeSet<String>) -> bool {
        self.required_met(aggs) && !self.hits_forbidden(aggs)
    }

    /// The positive half: every any-of set meets `aggs`.
    pub fn required_met(&self, aggs: &BTreeSet<String>) -> bool {
        self.all_of_any
            .iter()
            .all(|any| any.iter().any(|a| aggs.contains(a)))
    }

    /// The negative half: `aggs` holds a forbidden aggregate.
    pub fn hits_forbidden(&self, aggs: &BTreeSet<String>) -> bool {
        self.forbidden.iter().any(|a| aggs.contains(a))
    }
}

fn bad(detail: String) -> PlacementError {
    PlacementError::bad(detail)
}

/// `resources=VCPU:2,MEMORY_MB:512` → class → amount. Class names are not checked here:
/// upstream looks them up afterwards and answers "Invalid resource class in resources
/// parameter: No such resource class X." (see [`unknown_class_error`]).
pub fn parse_resources(value: &str) -> Result<BTreeMap<String, i64>, PlacementError> {
    const FORM: &str = "Badly formed resources parameter. Expected resources query string \
                        parameter in form: ?resources=VCPU:2,MEMORY_MB:1024.";
    if value.trim().is_empty() {
        return Err(bad(format!("{FORM} Got: empty string.")));
    }
    let mut out = BTreeMap::new();
    for item in value.split(',') {
        let mut parts = item.split(':');
        let (Some(class), Some(amount), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad(format!("{FORM} Got: {item}.")));
        };
        let Some(n) = parse_py_int(amount) else {
            return Err(bad(format!(
                "Requested resource {class} expected positive integer amount. Got: {amount}."
            )));
        };
        if n < 1 {
            return Err(bad(format!(
                "Requested resource {class} requires amount >= 1. Got: {n}."
            )));
        }
        out.insert(class.to_string(), n);
    }
    Ok(out)
}

/// Python's `int(str)`: surrounding whitespace, an optional sign, digits with single
/// underscores between them.
fn parse_py_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    // Amounts beyond i64 cannot fit any inventory; saturate so the search finds nothing.
    let v = clean.parse::<i64>().unwrap_or(i64::MAX);
    Some(if neg { -v } else { v })
}

/// One `required` value. `in:A,B` (any-of) needs `allow_any` (1.39), `!A` needs
/// `allow_forbidden` (1.22).
pub fn parse_required_value(
    value: &str,
    allow_forbidden: bool,
    allow_any: bool,
) -> Result<TraitFilter, PlacementError> {
    if let Some(rest) = value.strip_prefix("in:") {
        if !allow_any {
            return Err(bad(format!(
                "Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' \
                 only supported since microversion 1.39. Got: {value}"
            )));
        }
        let any: BTreeSet<String> = rest.split(',').map(|t| t.trim().to_string()).collect();
        if any.iter().any(|t| t.is_empty()) {
            return Err(bad(format!(
                "Invalid query string parameters: Expected 'required' parameter value of the \
                 form: in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait in: {value}"
            )));
        }
        if any.iter().any(|t| t.starts_with('!')) {
            return Err(bad(format!(
                "Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' \
                 does not support forbidden traits. Got: {value}"
            )));
        }
        return Ok(TraitFilter {
            all_of_any: vec![any],
            forbidden: BTreeSet::new(),
        });
    }
    let all: Vec<&str> = value.split(',').map(str::trim).collect();
    // Upstream strips any run of '!' (so `!!A` forbids A); kept for compatibility.
    let forbidden: BTreeSet<String> = all
        .iter()
        .filter(|t| t.starts_with('!'))
        .map(|t| t.trim_start_matches('!').to_string())
        .collect();
    if all.iter().any(|t| t.is_empty()) || forbidden.iter().any(|t| t.is_empty()) {
        let form = if allow_forbidden {
            "HW_CPU_X86_VMX,!CUSTOM_MAGIC"
        } else {
            "HW_CPU_X86_VMX,CUSTOM_MAGIC"
        };
        return Err(bad(format!(
            "Invalid query string parameters: Expected 'required' parameter value of the \
             form: {form}. Got an empty trait in: {value}"
        )));
    }
    if !forbidden.is_empty() && !allow_forbidden {
        return Err(bad(format!(
            "Invalid query string parameters: Expected 'required' parameter value of the \
             form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: {value}"
        )));
    }
    let mut all_of_any: Vec<BTreeSet<String>> = Vec::new();
    for t in all.iter().filter(|t| !t.starts_with('!')) {
        let one = BTreeSet::from([t.to_string()]);
        if !all_of_any.contains(&one) {
            all_of_any.push(one);
        }
    }
    Ok(TraitFilter {
        all_of_any,
        forbidden,
    })
}

/// All values of one `required<suffix>` key. Before 1.39 only the last one counts (a
/// repeated key overwrote the earlier ones); from 1.39 they are ANDed.
pub fn parse_required(values: &[&str], mv: Microversion) -> Result<TraitFilter, PlacementError> {
    let allow_forbidden = mv.at_least(22);
    let allow_any = mv.at_least(39);
    let values = if allow_any {
        values
    } else {
        &values[values.len().saturating_sub(1)..]
    };
    let mut out = TraitFilter::default();
    for v in values {
        out.extend(parse_required_value(v, allow_forbidden, allow_any)?);
    }
    Ok(out)
}

/// `root_required` (1.35): one occurrence only, `!` allowed, no `in:`, and no trait both
/// required and forbidden.
pub fn parse_root_required(values: &[&str]) -> Result<TraitFilter, PlacementError> {
    if values.len() > 1 {
        return Err(PlacementError::bad_code(
            code::QUERY_DUPLICATE_KEY,
            "Query parameter 'root_required' may be specified only once.",
        ));
    }
    let Some(v) = values.first() else {
        return Ok(TraitFilter::default());
    };
    let f = parse_required_value(v, true, false)?;
    let conflicts: Vec<&str> = f
        .all_of_any
        .iter()
        .flatten()
        .filter(|t| f.forbidden.contains(*t))
        .map(String::as_str)
        .collect();
    if !conflicts.is_empty() {
        return Err(PlacementError::bad_code(
            code::QUERY_BAD_VALUE,
            format!(
                "Conflicting required and forbidden traits found in root_required: {}",
                conflicts.join(", ")
            ),
        ));
    }
    Ok(f)
}

/// Whether `s` is accepted as a UUID the way oslo's `is_uuid_like` does: 32 hex digits
/// once dashes, braces and `urn:`/`uuid:` prefixes are removed.
pub fn is_uuid_like(s: &str) -> bool {
    let t = s.replace("urn:", "").replace("uuid:", "");
    let t = t.trim_matches(|c| c == '{' || c == '}');
    let mut n = 0;
    for c in t.chars() {
        if c == '-' {
            continue;
        }
        if !c.is_ascii_hexdigit() {
            return false;
        }
        n += 1;
    }
    n == 32
}

/// One `member_of` value → (any-of set if positive, forbidden set if negative).
pub fn parse_member_of_value(
    value: &str,
) -> Result<(BTreeSet<String>, BTreeSet<String>), PlacementError> {
    if value.contains(',') && !(value.starts_with("in:") || value.starts_with("!in:")) {
        return Err(bad(format!(
            "Multiple values for 'member_of' must be prefixed with the 'in:' or '!in:' keyword \
             using the valid microversion. Got: {value}"
        )));
    }
    let split = |s: &str| s.split(',').map(str::to_string).collect::<BTreeSet<_>>();
    let (required, forbidden) = if let Some(r) = value.strip_prefix("!in:") {
        (BTreeSet::new(), split(r))
    } else if let Some(r) = value.strip_prefix('!') {
        (BTreeSet::new(), BTreeSet::from([r.to_string()]))
    } else if let Some(r) = value.strip_prefix("in:") {
        (split(r), BTreeSet::new())
    } else {
        (BTreeSet::from([value.to_string()]), BTreeSet::new())
    };
    if let Some(badu) = required.iter().chain(&forbidden).find(|u| !is_uuid_like(u)) {
        return Err(bad(format!(
            "Invalid query string parameters: Expected 'member_of' parameter to contain valid \
             UUID(s). Got: {badu}"
        )));
    }
    Ok((required, forbidden))
}

/// All values of one `member_of<suffix>` key: several from 1.24 (ANDed), `!` from 1.32.
pub fn parse_member_of(
    values: &[&str],
    mv: Microversion,
    suffix: &str,
) -> Result<AggregateFilter, PlacementError> {
    if !mv.at_least(24) && values.len() > 1 {
        return Err(bad(format!(
            "Multiple member_of{suffix} parameters are not supported"
        )));
    }
    let mut out = AggregateFilter::default();
    for v in values {
        let (required, forbidden) = parse_member_of_value(v)?;
        if !required.is_empty() {
            out.all_of_any.push(required);
        }
        if !forbidden.is_empty() {
            if !mv.at_least(32) {
                return Err(bad(format!(
                    "Forbidden member_of{suffix} parameters are not supported in the specified \
                     microversion"
                )));
            }
            out.forbidden.extend(forbidden);
        }
    }
    Ok(out)
}

/// `in_tree=<uuid>` → the uuid, trimmed.
pub fn parse_in_tree(value: &str) -> Result<String, PlacementError> {
    let v = value.trim();
    if !is_uuid_like(v) {
        return Err(bad(format!(
            "Invalid query string parameters: Expected 'in_tree' parameter to be a format of \
             uuid. Got: {value}"
        )));
    }
    Ok(v.to_string())
}

/// The 400 for a resource class that does not exist (the caller knows the registry).
pub fn unknown_class_error(class: &str) -> PlacementError {
    bad(format!(
        "Invalid resource class in resources parameter: No such resource class {class}."
    ))
}

/// The 400 for a trait that does not exist, as `GET /allocation_candidates` words it.
pub fn unknown_trait_error(name: &str) -> PlacementError {
    bad(format!("No such trait(s): {name}."))
}

/// The values of `key` among `pairs`, in order.
pub fn values_of<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mv(m: u16) -> Microversion {
        Microversion(m)
    }

    fn set(xs: &[&str]) -> BTreeSet<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    const U1: &str = "11111111-1111-1111-1111-111111111111";
    const U2: &str = "22222222-2222-2222-2222-222222222222";

    #[test]
    fn resources_good() {
        let r = parse_resources("VCPU:2,MEMORY_MB:512").unwrap();
        assert_eq!(r.get("VCPU"), Some(&2));
        assert_eq!(r.get("MEMORY_MB"), Some(&512));
        // A repeated class keeps the last amount, as a Python dict does.
        assert_eq!(
            parse_resources("VCPU:1,VCPU:3").unwrap().get("VCPU"),
            Some(&3)
        );
        assert_eq!(parse_resources("VCPU: 4").unwrap().get("VCPU"), Some(&4));
    }

    #[test]
    fn resources_bad() {
        let e = parse_resources("").unwrap_err();
        assert!(e.detail.contains("Got: empty string."), "{}", e.detail);
        assert_eq!(e.status.as_u16(), 400);
        let e = parse_resources("VCPU").unwrap_err();
        assert!(e.detail.ends_with("Got: VCPU."), "{}", e.detail);
        let e = parse_resources("VCPU:1:2").unwrap_err();
        assert!(e.detail.contains("Badly formed"));
        let e = parse_resources("VCPU:x").unwrap_err();
        assert_eq!(
            e.detail,
            "Requested resource VCPU expected positive integer amount. Got: x."
        );
        let e = parse_resources("VCPU:0").unwrap_err();
        assert_eq!(
            e.detail,
            "Requested resource VCPU requires amount >= 1. Got: 0."
        );
        let e = parse_resources("VCPU:-3").unwrap_err();
        assert_eq!(
            e.detail,
            "Requested resource VCPU requires amount >= 1. Got: -3."
        );
        assert!(parse_resources("VCPU:1,").is_err());
    }

    #[test]
    fn required_versions() {
        let f = parse_required(&["A,B"], mv(17)).unwrap();
        assert_eq!(f.all_of_any, vec![set(&["A"]), set(&["B"])]);
        let e = parse_required(&["!A"], mv(21)).unwrap_err();
        assert!(
            e.detail.contains("HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: !A"),
            "{}",
            e.detail
        );
        let f = parse_required(&["A,!B"], mv(22)).unwrap();
        assert_eq!(f.forbidden, set(&["B"]));
        let e = parse_required(&["in:A,B"], mv(38)).unwrap_err();
        assert!(e.detail.contains("only supported since microversion 1.39"));
        let f = parse_required(&["in:A,B", "C,!D"], mv(39)).unwrap();
        assert_eq!(f.all_of_any, vec![set(&["A", "B"]), set(&["C"])]);
        assert_eq!(f.forbidden, set(&["D"]));
        // Before 1.39 the last repeated value wins.
        let f = parse_required(&["A", "B"], mv(38)).unwrap();
        assert_eq!(f.all_of_any, vec![set(&["B"])]);
    }

    #[test]
    fn required_bad_values() {
        let e = parse_required(&[""], mv(17)).unwrap_err();
        assert!(e
            .detail
            .starts_with("Invalid query string parameters: Expected 'required' parameter value of the form: HW_CPU_X86_VMX,CUSTOM_MAGIC."));
        let e = parse_required(&[""], mv(22)).unwrap_err();
        assert!(e.detail.contains("form: HW_CPU_X86_VMX,!CUSTOM_MAGIC."));
        assert!(parse_required(&[",,"], mv(17)).is_err());
        assert!(parse_required(&["!"], mv(22)).is_err());
        assert!(parse_required(&["in:A,"], mv(39)).is_err());
        let e = parse_required(&["in:A,!B"], mv(39)).unwrap_err();
        assert!(e.detail.contains("does not support forbidden traits"));
        // `!!A` is read as forbidding A, as upstream does.
        assert_eq!(
            parse_required(&["!!A"], mv(22)).unwrap().forbidden,
            set(&["A"])
        );
    }

    #[test]
    fn root_required_rules() {
        let e = parse_root_required(&["A", "B"]).unwrap_err();
        assert_eq!(e.code, code::QUERY_DUPLICATE_KEY);
        let e = parse_root_required(&["A,B,!A"]).unwrap_err();
        assert_eq!(e.code, code::QUERY_BAD_VALUE);
        assert_eq!(
            e.detail,
            "Conflicting required and forbidden traits found in root_required: A"
        );
        assert!(parse_root_required(&["in:A,B"]).is_err());
        let f = parse_root_required(&["A,!B"]).unwrap();
        assert!(f.matches(&set(&["A"])));
        assert!(!f.matches(&set(&["A", "B"])));
    }

    #[test]
    fn member_of_versions() {
        let f = parse_member_of(&[U1], mv(21), "").unwrap();
        assert_eq!(f.all_of_any, vec![set(&[U1])]);
        let e = parse_member_of(&[U1, U2], mv(23), "").unwrap_err();
        assert_eq!(e.detail, "Multiple member_of parameters are not supported");
        let f = parse_member_of(&[U1, &format!("in:{U1},{U2}")], mv(24), "1").unwrap();
        assert_eq!(f.all_of_any.len(), 2);
        let e = parse_member_of(&[&format!("!{U1}")], mv(31), "1").unwrap_err();
        assert_eq!(
            e.detail,
            "Forbidden member_of1 parameters are not supported in the specified microversion"
        );
        let f = parse_member_of(&[&format!("!in:{U1},{U2}")], mv(32), "").unwrap();
        assert_eq!(f.forbidden, set(&[U1, U2]));
        assert!(f.matches(&set(&["x"])));
        assert!(!f.matches(&set(&[U2])));
    }

    #[test]
    fn member_of_bad_values() {
        let e = parse_member_of_value(&format!("{U1},{U2}")).unwrap_err();
        assert!(e
            .detail
            .starts_with("Multiple values for 'member_of' must be prefixed"));
        let e = parse_member_of_value("in:").unwrap_err();
        assert!(e
            .detail
            .contains("Expected 'member_of' parameter to contain valid UUID(s)."));
        assert!(parse_member_of_value(&format!("in:{U1},!{U2}")).is_err());
        assert!(parse_member_of_value("!(^o^)").is_err());
        assert!(parse_member_of_value("11111111111111111111111111111111").is_ok());
    }

    #[test]
    fn in_tree_and_uuid() {
        assert_eq!(parse_in_tree(&format!(" {U1} ")).unwrap(), U1);
        let e = parse_in_tree("life-is-beautiful").unwrap_err();
        assert!(e
            .detail
            .contains("Expected 'in_tree' parameter to be a format of uuid"));
        assert!(is_uuid_like(&format!("{{{U1}}}")));
        assert!(is_uuid_like(&format!("urn:uuid:{U1}")));
        assert!(!is_uuid_like("1111"));
        assert!(!is_uuid_like("g1111111-1111-1111-1111-111111111111"));
    }

    #[test]
    fn filters_match() {
        let f = TraitFilter {
            all_of_any: vec![set(&["A", "B"]), set(&["C"])],
            forbidden: set(&["D"]),
        };
        assert!(f.matches(&set(&["B", "C"])));
        assert!(!f.matches(&set(&["A"])));
        assert!(!f.matches(&set(&["A", "C", "D"])));
        assert!(TraitFilter::default().matches(&set(&[])));
        let a = AggregateFilter {
            all_of_any: vec![set(&[U1, U2])],
            forbidden: BTreeSet::new(),
        };
        assert!(a.matches(&set(&[U2])));
        assert!(!a.matches(&set(&[])));
    }
}
