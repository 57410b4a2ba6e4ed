//! Reading request bodies the way Neutron's API layer does: the resource's object under
//! its singular name, unknown attributes refused (`Unrecognized attribute(s) 'x'`),
//! read-only ones refused per method, and values converted as Neutron's converters do
//! (booleans also as the strings "true"/"false").

use serde_json::{Map, Value};

use crate::error::{NetworkError, Result};

pub type Attrs = Map<String, Value>;

/// The `{"<key>": {...}}` object of a request.
pub fn resource(body: &Value, key: &str) -> Result<Attrs> {
    match body.get(key) {
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(NetworkError::bad_request(format!(
            "Invalid input for {key}: expected an object"
        ))),
        None => Err(NetworkError::bad_request(format!(
            "Unable to find '{key}' in request body"
        ))),
    }
}

/// Refuses attributes that do not exist, and those that exist but the method may not set.
pub fn check(attrs: &Attrs, writable: &[&str], read_only: &[&str], post: bool) -> Result<()> {
    let unknown: Vec<&str> = attrs
        .keys()
        .map(String::as_str)
        .filter(|k| !writable.contains(k) && !read_only.contains(k))
        .collect();
    if !unknown.is_empty() {
        return Err(NetworkError::bad_request(format!(
            "Unrecognized attribute(s) '{}'",
            unknown.join(", ")
        )));
    }
    if let Some(k) = attrs.keys().find(|k| read_only.contains(&k.as_str())) {
        return Err(NetworkError::bad_request(if post {
            format!("Attribute '{k}' not allowed in POST")
        } else {
            format!("Cannot update read-only attribute {k}")
        }));
    }
    Ok(())
}

pub fn string(attrs: &Attrs, key: &str, max: usize) -> Result<Option<String>> {
    match attrs.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(s)) => Err(NetworkError::invalid_attr(
            key,
            format!("'{s}' exceeds maximum length of {max}"),
        )),
        Some(other) => Err(NetworkError::invalid_attr(
            key,
            format!("'{other}' is not a valid string"),
        )),
    }
}

/// A string that may also be `null` (`Some(None)`).
pub fn nullable_string(attrs: &Attrs, key: &str, max: usize) -> Result<Option<Option<String>>> {
    match attrs.get(key) {
        Some(Value::Null) => Ok(Some(None)),
        _ => Ok(string(attrs, key, max)?.map(Some)),
    }
}

pub fn boolean(attrs: &Attrs, key: &str) -> Result<Option<bool>> {
    match attrs.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") || s == "1" => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") || s == "0" => Ok(Some(false)),
        Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(Some(true)),
        Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(Some(false)),
        Some(other) => Err(NetworkError::invalid_attr(
            key,
            format!("'{other}' cannot be converted to boolean"),
        )),
    }
}

pub fn integer(attrs: &Attrs, key: &str) -> Result<Option<Option<i64>>> {
    match attrs.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::Number(n)) if n.is_i64() => Ok(Some(n.as_i64())),
        Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => {
            Ok(Some(s.trim().parse().ok()))
        }
        Some(other) => Err(NetworkError::invalid_attr(
            key,
            format!("'{other}' is not an integer"),
        )),
    }
}

/// A list attribute; `null` reads as the empty list, as Neutron's
/// `convert_none_to_empty_list` does (`"routes": null` clears a router's routes).
pub fn list<'a>(attrs: &'a Attrs, key: &str) -> Result<Option<&'a Vec<Value>>> {
    static EMPTY: Vec<Value> = Vec::new();
    match attrs.get(key) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(Value::Null) => Ok(Some(&EMPTY)),
        Some(other) => Err(NetworkError::invalid_attr(
            key,
            format!("'{other}' is not a list"),
        )),
    }
}

/// A list of unique strings, each at most `max` characters.
pub fn string_list(attrs: &Attrs, key: &str, max: usize) -> Result<Option<Vec<String>>> {
    let Some(items) = list(attrs, key)? else {
        return Ok(None);
    };
    let mut out: Vec<String> = Vec::new();
    for i in items {
        let s = i.as_str().ok_or_else(|| {
            NetworkError::invalid_attr(key, format!("'{i}' is not a valid string"))
        })?;
        if s.chars().count() > max {
            return Err(NetworkError::invalid_attr(
                key,
                format!("'{s}' exceeds maximum length of {max}"),
            ));
        }
        if out.iter().any(|o| o == s) {
            return Err(NetworkError::invalid_attr(
                key,
                format!("Duplicate items in the list: '{s}'"),
            ));
        }
        out.push(s.to_string());
    }
    Ok(Some(out))
}

/// The project a new resource belongs to: `project_id` or `tenant_id` from the body (which
/// must agree), else the caller's.
pub fn owner(attrs: &Attrs, caller: &str) -> Result<String> {
    let p = string(attrs, "project_id", 255)?;
    let t = string(attrs, "tenant_id", 255)?;
    match (p, t) {
        (Some(p), Some(t)) if p != t => Err(NetworkError::bad_request(
            "'project_id' and 'tenant_id' do not match",
        )),
        (Some(p), _) | (None, Some(p)) => Ok(p),
        (None, None) => Ok(caller.to_string()),
    }
}

/// Standard attributes every resource takes: description (255) and, on create, tags.
pub const NAME_MAX: usize = 255;
pub const DESCRIPTION_MAX: usize = 255;
pub const TAG_MAX: usize = 255;
