//! Request-body and query validation against JSON Schemas, with the error text upstream
//! Placement sends. Upstream validates every body with Python's `jsonschema` and answers
//! 400 `JSON does not validate: <the library's message>`; clients and Placement's own API
//! tests match on those messages (`'total' is a required property`, `0 is less than the
//! minimum of 1`, `Failed validating 'maxLength' in schema...`), so this module speaks the
//! same language: values in Python's repr, the same wording per keyword, and, like the
//! library's `best_match`, the error highest up in the document wins (the first one found
//! among equals, keywords taken in the order upstream's schemas list them).
//!
//! Only the keywords Placement's schemas use are understood: `type`, `enum`, `format`
//! (`uuid`), `minimum`, `maximum`, `minLength`, `maxLength`, `pattern`, `minItems`,
//! `maxItems`, `uniqueItems`, `items`, `minProperties`, `properties`, `patternProperties`,
//! `additionalProperties`, `required`, `anyOf`. The schemas themselves are in
//! [`schemas`].

use std::fmt::Write as _;

use regex::Regex;
use serde_json::Value;

pub mod schemas;

/// One step of a path into a document: a member name or an array index.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn render_path(steps: &[Step]) -> String {
    let mut out = String::new();
    for s in steps {
        match s {
            Step::Key(k) => {
                let _ = write!(out, "[{}]", py_str(k));
            }
            Step::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

struct Failure {
    message: String,
    keyword: &'static str,
    /// Where the failing keyword's schema sits, and that schema.
    schema_path: Vec<Step>,
    schema: Value,
    /// Where in the instance, and the failing value.
    instance_path: Vec<Step>,
    instance: Value,
}

impl Failure {
    /// The message as `jsonschema.ValidationError.__str__` writes it.
    fn text(&self) -> String {
        format!(
            "{}\n\nFailed validating {} in schema{}:\n    {}\n\nOn instance{}:\n    {}",
            self.message,
            py_str(self.keyword),
            render_path(&self.schema_path),
            py_repr(&self.schema),
            render_path(&self.instance_path),
            py_repr(&self.instance),
        )
    }
}

/// Checks a request body (or query) against `schema`: 400 `JSON does not validate: ...`
/// with jsonschema's text, as upstream answers.
pub fn check(instance: &Value, schema: &Value) -> Result<(), crate::error::PlacementError> {
    validate(instance, schema).map_err(|text| {
        crate::error::PlacementError::bad(format!("JSON does not validate: {text}"))
    })
}

/// Checks `instance` against `schema`; the error is the full text Placement puts after
/// `JSON does not validate: `.
pub fn validate(instance: &Value, schema: &Value) -> Result<(), String> {
    let mut failures = Vec::new();
    let mut v = Validator {
        failures: &mut failures,
    };
    v.check(instance, schema, &mut Vec::new(), &mut Vec::new());
    // best_match: the least deep error wins; the first such one among equals.
    let best = failures
        .iter()
        .enumerate()
        .min_by_key(|(i, f)| (f.instance_path.len(), *i))
        .map(|(_, f)| f.text());
    match best {
        None => Ok(()),
        Some(text) => Err(text),
    }
}

/// Whether `instance` satisfies `schema` (for `anyOf`).
fn is_valid(instance: &Value, schema: &Value) -> bool {
    let mut failures = Vec::new();
    Validator {
        failures: &mut failures,
    }
    .check(instance, schema, &mut Vec::new(), &mut Vec::new());
    failures.is_empty()
}

struct Validator<'a> {
    failures: &'a mut Vec<Failure>,
}

fn type_name_matches(name: &str, v: &Value) -> bool {
    match name {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        // Python's json gives 1.0 as a float, which is no integer to Draft 4.
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => false,
    }
}

/// Placement's `uuid` format: what `oslo_utils.uuidutils.is_uuid_like` accepts (with or
/// without dashes).
fn is_uuid_like(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok_and(|u| {
        let plain: String = s.chars().filter(|c| *c != '-').collect();
        u.simple().to_string() == plain.to_ascii_lowercase()
    })
}

/// The compiled form of a schema's pattern. Placement's schemas hold a handful of patterns
/// and every claim meets them, so each is compiled once.
fn regex(pattern: &str) -> Option<Regex> {
    static CACHE: std::sync::OnceLock<std::sync::RwLock<std::collections::HashMap<String, Regex>>> =
        std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(re) = cache.read().ok()?.get(pattern) {
        return Some(re.clone());
    }
    let re = Regex::new(pattern).ok()?;
    cache.write().ok()?.insert(pattern.to_string(), re.clone());
    Some(re)
}

fn as_f64(v: &Value) -> Option<f64> {
    v.as_f64()
}

impl Validator<'_> {
    #[allow(clippy::too_many_arguments)]
    fn fail(
        &mut self,
        keyword: &'static str,
        message: String,
        schema: &Value,
        schema_path: &[Step],
        instance: &Value,
        instance_path: &[Step],
    ) {
        self.failures.push(Failure {
            message,
            keyword,
            schema_path: schema_path.to_vec(),
            schema: schema.clone(),
            instance_path: instance_path.to_vec(),
            instance: instance.clone(),
        });
    }

    fn check(&mut self, v: &Value, schema: &Value, spath: &mut Vec<Step>, ipath: &mut Vec<Step>) {
        let Some(s) = schema.as_object() else {
            return;
        };
        if let Some(t) = s.get("type") {
            let names: Vec<&str> = match t {
                Value::String(n) => vec![n.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            if !names.is_empty() && !names.iter().any(|n| type_name_matches(n, v)) {
                let list: Vec<String> = names.iter().map(|n| py_str(n)).collect();
                let msg = format!("{} is not of type {}", py_repr(v), list.join(", "));
                self.fail("type", msg, schema, spath, v, ipath);
            }
        }
        if let Some(Value::Array(options)) = s.get("enum") {
            if !options.contains(v) {
                let msg = format!(
                    "{} is not one of {}",
                    py_repr(v),
                    py_repr(&Value::Array(options.clone()))
                );
                self.fail("enum", msg, schema, spath, v, ipath);
            }
        }
        if let (Some("uuid"), Some(text)) = (s.get("format").and_then(Value::as_str), v.as_str()) {
            if !is_uuid_like(text) {
                let msg = format!("{} is not a 'uuid'", py_repr(v));
                self.fail("format", msg, schema, spath, v, ipath);
            }
        }
        if v.is_number() {
            if let (Some(min), Some(x)) = (s.get("minimum"), as_f64(v)) {
                if as_f64(min).is_some_and(|m| x < m) {
                    let msg = format!(
                        "{} is less than the minimum of {}",
                        py_repr(v),
                        py_repr(min)
                    );
                    self.fail("minimum", msg, schema, spath, v, ipath);
                }
            }
            if let (Some(max), Some(x)) = (s.get("maximum"), as_f64(v)) {
                if as_f64(max).is_some_and(|m| x > m) {
                    let msg = format!(
                        "{} is greater than the maximum of {}",
                        py_repr(v),
                        py_repr(max)
                    );
                    self.fail("maximum", msg, schema, spath, v, ipath);
                }
            }
        }
        if let Some(text) = v.as_str() {
            let len = text.chars().count() as u64;
            if s.get("minLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| len < m)
            {
                let msg = format!("{} is too short", py_repr(v));
                self.fail("minLength", msg, schema, spath, v, ipath);
            }
            if s.get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| len > m)
            {
                let msg = format!("{} is too long", py_repr(v));
                self.fail("maxLength", msg, schema, spath, v, ipath);
            }
            if let Some(p) = s.get("pattern").and_then(Value::as_str) {
                if regex(p).is_some_and(|re| !re.is_match(text)) {
                    let msg = format!("{} does not match {}", py_repr(v), py_str(p));
                    self.fail("pattern", msg, schema, spath, v, ipath);
                }
            }
        }
        if let Some(items) = v.as_array() {
            let n = items.len() as u64;
            if s.get("minItems")
                .and_then(Value::as_u64)
                .is_some_and(|m| n < m)
            {
                let msg = format!("{} is too short", py_repr(v));
                self.fail("minItems", msg, schema, spath, v, ipath);
            }
            if s.get("maxItems")
                .and_then(Value::as_u64)
                .is_some_and(|m| n > m)
            {
                let msg = format!("{} is too long", py_repr(v));
                self.fail("maxItems", msg, schema, spath, v, ipath);
            }
            if s.get("uniqueItems") == Some(&Value::Bool(true))
                && items
                    .iter()
                    .enumerate()
                    .any(|(i, a)| items[..i].contains(a))
            {
                let msg = format!("{} has non-unique elements", py_repr(v));
                self.fail("uniqueItems", msg, schema, spath, v, ipath);
            }
            if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
                for (i, item) in items.iter().enumerate() {
                    spath.push(Step::Key("items".into()));
                    ipath.push(Step::Index(i));
                    self.check(item, item_schema, spath, ipath);
                    ipath.pop();
                    spath.pop();
                }
            }
        }
        if let Some(obj) = v.as_object() {
            if s.get("minProperties")
                .and_then(Value::as_u64)
                .is_some_and(|m| (obj.len() as u64) < m)
            {
                let msg = format!("{} does not have enough properties", py_repr(v));
                self.fail("minProperties", msg, schema, spath, v, ipath);
            }
            let props = s.get("properties").and_then(Value::as_object);
            if let Some(props) = props {
                for (name, sub) in props {
                    if let Some(value) = obj.get(name) {
                        spath.push(Step::Key("properties".into()));
                        spath.push(Step::Key(name.clone()));
                        ipath.push(Step::Key(name.clone()));
                        self.check(value, sub, spath, ipath);
                        ipath.pop();
                        spath.pop();
                        spath.pop();
                    }
                }
            }
            let patterns: Vec<(String, Option<Regex>, &Value)> = s
                .get("patternProperties")
                .and_then(Value::as_object)
                .map(|pp| {
                    pp.iter()
                        .map(|(p, sub)| (p.clone(), regex(p), sub))
                        .collect()
                })
                .unwrap_or_default();
            for (pattern, re, sub) in &patterns {
                let Some(re) = re else { continue };
                for (name, value) in obj {
                    if re.is_match(name) {
                        spath.push(Step::Key("patternProperties".into()));
                        spath.push(Step::Key(pattern.clone()));
                        ipath.push(Step::Key(name.clone()));
                        self.check(value, sub, spath, ipath);
                        ipath.pop();
                        spath.pop();
                        spath.pop();
                    }
                }
            }
            let extras: Vec<&String> = obj
                .keys()
                .filter(|k| !props.is_some_and(|p| p.contains_key(*k)))
                .filter(|k| {
                    !patterns
                        .iter()
                        .any(|(_, re, _)| re.as_ref().is_some_and(|re| re.is_match(k)))
                })
                .collect();
            match s.get("additionalProperties") {
                Some(Value::Bool(false)) if !extras.is_empty() => {
                    let msg = if patterns.is_empty() {
                        let names: Vec<String> = extras.iter().map(|k| py_str(k)).collect();
                        let verb = if extras.len() == 1 { "was" } else { "were" };
                        format!(
                            "Additional properties are not allowed ({} {verb} unexpected)",
                            names.join(", ")
                        )
                    } else {
                        let mut names: Vec<&String> = extras.clone();
                        names.sort();
                        let names: Vec<String> = names.iter().map(|k| py_str(k)).collect();
                        let mut pats: Vec<&String> = patterns.iter().map(|(p, _, _)| p).collect();
                        pats.sort();
                        let pats: Vec<String> = pats.iter().map(|p| py_str(p)).collect();
                        let verb = if extras.len() == 1 { "does" } else { "do" };
                        format!(
                            "{} {verb} not match any of the regexes: {}",
                            names.join(", "),
                            pats.join(", ")
                        )
                    };
                    self.fail("additionalProperties", msg, schema, spath, v, ipath);
                }
                Some(sub @ Value::Object(_)) => {
                    for name in extras {
                        spath.push(Step::Key("additionalProperties".into()));
                        ipath.push(Step::Key(name.clone()));
                        self.check(&obj[name.as_str()], sub, spath, ipath);
                        ipath.pop();
                        spath.pop();
                    }
                }
                _ => {}
            }
            if let Some(Value::Array(required)) = s.get("required") {
                for name in required.iter().filter_map(Value::as_str) {
                    if !obj.contains_key(name) {
                        let msg = format!("{} is a required property", py_str(name));
                        self.fail("required", msg, schema, spath, v, ipath);
                    }
                }
            }
        }
        if let Some(Value::Array(options)) = s.get("anyOf") {
            if !options.iter().any(|o| is_valid(v, o)) {
                let msg = format!("{} is not valid under any of the given schemas", py_repr(v));
                self.fail("anyOf", msg, schema, spath, v, ipath);
            }
        }
    }
}

/// A string as Python's `repr` writes it: single quotes unless the text holds a single
/// quote and no double one.
pub fn py_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// A JSON value as Python's `repr` writes the value `json.loads` makes of it.
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or_default();
            if f.fract() == 0.0 && f.abs() < 1e16 {
                format!("{f:.1}")
            } else {
                format!("{f}")
            }
        }
        Value::Number(n) => n.to_string(),
        Value::String(s) => py_str(s),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(py_repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(o) => {
            let items: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("{}: {}", py_str(k), py_repr(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn first_line(r: Result<(), String>) -> String {
        r.unwrap_err().lines().next().unwrap().to_string()
    }

    #[test]
    fn messages_read_as_pythons_jsonschema() {
        let inv = schemas::post_inventory();
        assert_eq!(
            first_line(validate(&json!({"resource_class": "DISK_GB"}), inv)),
            "'total' is a required property"
        );
        assert_eq!(
            first_line(validate(
                &json!({"resource_class": "DISK_GB", "total": -1}),
                inv
            )),
            "-1 is less than the minimum of 1"
        );
        let full = validate(
            &json!({"resource_class": "DISK_GB", "total": 1, "reserved": 2147483648i64}),
            inv,
        )
        .unwrap_err();
        assert!(
            full.contains("Failed validating 'maximum' in schema['properties']['reserved']"),
            "{full}"
        );
        assert!(
            full.contains("On instance['reserved']:\n    2147483648"),
            "{full}"
        );
        assert_eq!(
            first_line(validate(
                &json!({"resource_class": "DISK_GB", "total": 1, "bogus": 1}),
                inv
            )),
            "Additional properties are not allowed ('bogus' was unexpected)"
        );
        let traits = schemas::set_provider_traits();
        assert_eq!(
            first_line(validate(
                &json!({"traits": "invalid_type", "resource_provider_generation": 0}),
                traits
            )),
            "'invalid_type' is not of type 'array'"
        );
        let allocs = schemas::put_allocations(12);
        let bad_rp = json!({"allocations": {"not-a-uuid": {"resources": {"DISK_GB": 1}}}, "project_id": "p", "user_id": "u"});
        let text = first_line(validate(&bad_rp, allocs));
        assert_eq!(
            text,
            "'not-a-uuid' does not match any of the regexes: '^[0-9a-fA-F-]{36}$'"
        );
        assert!(validate(
            &json!({"allocations": {}, "project_id": "p", "user_id": "u"}),
            allocs
        )
        .unwrap_err()
        .contains("Failed validating 'minProperties'"));
    }

    #[test]
    fn the_shallowest_error_wins() {
        let inv = schemas::post_inventory();
        // Both a missing member (at the top) and a bad value (one level down): the top wins.
        assert_eq!(
            first_line(validate(&json!({"total": 0}), inv)),
            "'resource_class' is a required property"
        );
    }

    #[test]
    fn python_reprs() {
        assert_eq!(py_repr(&json!(null)), "None");
        assert_eq!(py_repr(&json!([true, 1, 1.5, 2.0])), "[True, 1, 1.5, 2.0]");
        assert_eq!(py_repr(&json!({"a": "it's"})), "{'a': \"it's\"}");
        assert_eq!(py_str("a'b\"c"), "'a\\'b\"c'");
    }

    #[test]
    fn uuid_format_accepts_what_placement_accepts() {
        assert!(is_uuid_like("7f3a8f30-7b0c-4dd2-8a3b-3f1f0c0a4a11"));
        assert!(is_uuid_like("7f3a8f307b0c4dd28a3b3f1f0c0a4a11"));
        assert!(!is_uuid_like("not-a-uuid"));
        assert!(!is_uuid_like("7f3a8f30-7b0c-4dd2-8a3b"));
    }
}
