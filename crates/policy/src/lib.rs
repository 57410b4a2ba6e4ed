//! The policy engine: oslo.policy's rule language, evaluated the way OpenStack services do.
//!
//! A rule is an expression such as `role:admin or (role:reader and system_scope:all)` or
//! `user_id:%(target.user.id)s`. Each service ships its default rules ([`Policy::new`]), and an
//! operator's `policy.yaml` (the same file format OpenStack uses) overrides any of them
//! ([`Policy::with_overrides`]). Enforcement takes the caller's credentials (roles, user,
//! project, domain, system scope, as a JSON object) and the target of the operation (also JSON)
//! and answers allow or deny; it never panics on any input.

mod parse;

use std::collections::HashMap;

use serde_json::Value;

pub use parse::{parse_rule, Check, ParseError};

/// A set of named rules, ready to enforce.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: HashMap<String, Check>,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy rule {name:?} does not parse: {source}")]
    Parse { name: String, source: ParseError },
    #[error("policy file is not a mapping of rule names to rule strings: {0}")]
    File(String),
}

impl Policy {
    /// Builds a policy from `(name, rule)` pairs, typically a service's defaults.
    pub fn new<'a>(
        defaults: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Policy, PolicyError> {
        let mut policy = Policy::default();
        for (name, text) in defaults {
            policy.set(name, text)?;
        }
        Ok(policy)
    }

    /// Replaces or adds one rule.
    pub fn set(&mut self, name: &str, text: &str) -> Result<(), PolicyError> {
        let check = parse_rule(text).map_err(|source| PolicyError::Parse {
            name: name.to_string(),
            source,
        })?;
        self.rules.insert(name.to_string(), check);
        Ok(())
    }

    /// Applies the overrides of a `policy.yaml` (or `policy.json`, which is also YAML).
    pub fn with_overrides(mut self, yaml: &str) -> Result<Policy, PolicyError> {
        if yaml.trim().is_empty() {
            return Ok(self);
        }
        let map: HashMap<String, String> =
            serde_yaml_ng::from_str(yaml).map_err(|e| PolicyError::File(e.to_string()))?;
        for (name, text) in map {
            self.set(&name, &text)?;
        }
        Ok(self)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.rules.contains_key(name)
    }

    /// Whether `creds` may do `rule` on `target`. An unknown rule denies, like oslo.policy
    /// with no `default` rule.
    pub fn enforce(&self, rule: &str, creds: &Value, target: &Value) -> bool {
        match self.rules.get(rule) {
            Some(check) => self.eval(check, creds, target, 0),
            None => match self.rules.get("default") {
                Some(check) => self.eval(check, creds, target, 0),
                None => false,
            },
        }
    }

    fn eval(&self, check: &Check, creds: &Value, target: &Value, depth: usize) -> bool {
        // Rules referring to each other in a loop deny rather than overflow the stack.
        if depth > 32 {
            return false;
        }
        match check {
            Check::True => true,
            Check::False => false,
            Check::Not(c) => !self.eval(c, creds, target, depth + 1),
            Check::And(cs) => cs.iter().all(|c| self.eval(c, creds, target, depth + 1)),
            Check::Or(cs) => cs.iter().any(|c| self.eval(c, creds, target, depth + 1)),
            Check::Rule(name) => match self.rules.get(name) {
                Some(c) => self.eval(c, creds, target, depth + 1),
                None => false,
            },
            Check::Role(role) => {
                let Some(role) = substitute(role, target) else {
                    return false;
                };
                let role = role.to_lowercase();
                creds
                    .get("roles")
                    .and_then(Value::as_array)
                    .is_some_and(|roles| {
                        roles
                            .iter()
                            .any(|r| r.as_str().is_some_and(|r| r.to_lowercase() == role))
                    })
            }
            Check::Generic { left, right } => {
                let Some(expected) = substitute(right, target) else {
                    return false;
                };
                match literal(left) {
                    Some(lit) => lit == expected,
                    None => lookup(creds, left).is_some_and(|v| match v {
                        Value::Array(items) => items
                            .iter()
                            .any(|i| scalar_text(i).as_deref() == Some(&expected)),
                        other => scalar_text(other).as_deref() == Some(&expected),
                    }),
                }
            }
        }
    }
}

/// Expands `%(name)s` from the target; `None` when the target lacks the attribute (the check
/// then fails, as oslo.policy's does).
fn substitute(text: &str, target: &Value) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("%(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find(")s")?;
        let value = lookup(target, &after[..end])?;
        out.push_str(&scalar_text(value)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Some(out)
}

/// Finds `a.b.c` as a flat key first (oslo.policy targets often use dotted keys), then as a
/// path through nested objects.
fn lookup<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    if let Some(v) = value.get(key) {
        return Some(v);
    }
    let mut current = value;
    for part in key.split('.') {
        current = current.get(part)?;
    }
    Some(current)
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "True".into() } else { "False".into() }),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The left side of a generic check is a literal when quoted, a number, or True/False.
fn literal(left: &str) -> Option<String> {
    let quoted = (left.starts_with('\'') && left.ends_with('\''))
        || (left.starts_with('"') && left.ends_with('"'));
    if quoted && left.len() >= 2 {
        return Some(left[1..left.len() - 1].to_string());
    }
    if left == "True" || left == "False" || left.parse::<f64>().is_ok() {
        return Some(left.to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> Policy {
        Policy::new([
            ("admin_required", "role:admin or is_admin:1"),
            ("owner", "user_id:%(user_id)s"),
            ("admin_or_owner", "rule:admin_required or rule:owner"),
            ("get_user", "rule:admin_required or (role:reader and system_scope:all) or user_id:%(target.user.id)s"),
            ("never", "!"),
            ("always", "@"),
            ("empty", ""),
            ("not_reader", "not role:reader"),
            ("loop_a", "rule:loop_b"),
            ("loop_b", "rule:loop_a"),
            ("literal", "'member':%(role)s"),
            ("domain_match", "token.domain.id:%(target.domain_id)s"),
        ])
        .unwrap()
    }

    #[test]
    fn roles_rules_and_generic_checks() {
        let p = policy();
        let admin = json!({"roles": ["Admin"], "user_id": "u1"});
        let reader = json!({"roles": ["reader"], "user_id": "u2", "system_scope": "all"});
        let member =
            json!({"roles": ["member"], "user_id": "u3", "token": {"domain": {"id": "d1"}}});
        assert!(p.enforce("admin_required", &admin, &json!({})));
        assert!(!p.enforce("admin_required", &reader, &json!({})));
        assert!(p.enforce("admin_or_owner", &member, &json!({"user_id": "u3"})));
        assert!(!p.enforce("admin_or_owner", &member, &json!({"user_id": "u9"})));
        assert!(p.enforce("get_user", &reader, &json!({})));
        assert!(p.enforce("get_user", &member, &json!({"target.user.id": "u3"})));
        assert!(p.enforce(
            "get_user",
            &member,
            &json!({"target": {"user": {"id": "u3"}}})
        ));
        assert!(!p.enforce(
            "get_user",
            &member,
            &json!({"target": {"user": {"id": "u4"}}})
        ));
        assert!(!p.enforce("never", &admin, &json!({})));
        assert!(p.enforce("always", &member, &json!({})));
        assert!(p.enforce("empty", &member, &json!({})));
        assert!(!p.enforce("not_reader", &reader, &json!({})));
        assert!(!p.enforce("loop_a", &admin, &json!({})));
        assert!(p.enforce("literal", &member, &json!({"role": "member"})));
        assert!(p.enforce("domain_match", &member, &json!({"target.domain_id": "d1"})));
        assert!(!p.enforce("domain_match", &member, &json!({})));
        assert!(!p.enforce("no_such_rule", &admin, &json!({})));
    }

    #[test]
    fn overrides_replace_defaults() {
        let p = policy()
            .with_overrides("admin_required: \"role:superuser\"\n")
            .unwrap();
        assert!(!p.enforce(
            "admin_or_owner",
            &json!({"roles": ["admin"]}),
            &json!({"user_id": "x"})
        ));
        assert!(p.enforce(
            "admin_or_owner",
            &json!({"roles": ["superuser"]}),
            &json!({"user_id": "x"})
        ));
        assert!(policy().with_overrides("x: \"role:a and (\"").is_err());
    }
}
