//! OVSDB data as RFC 7047 section 5.1 writes it on the wire: atoms (integer, real, boolean,
//! string, `["uuid", ...]`, `["named-uuid", ...]`), sets (`["set", [atom, ...]]`) and maps
//! (`["map", [[key, value], ...]]`).
//!
//! Sets and maps are ordered collections here (`BTreeSet`, `BTreeMap`), so two values that
//! hold the same elements compare equal whatever order the server sent them in: that is what
//! lets a monitored replica be checked against a fresh `select`. A one-element set is sent by
//! the server as the bare atom; [`Value::normalize`] with the column's type from the schema
//! turns it back into a set (the [`crate::Replica`] does this for every row it keeps).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::json;
use uuid::Uuid;

use crate::schema::{AtomicType, ColumnType};

/// One OVSDB atom.
///
/// `Real` compares by [`f64::total_cmp`], so atoms have a total order and can live in sets.
#[derive(Debug, Clone)]
pub enum Atom {
    Integer(i64),
    Real(f64),
    Boolean(bool),
    String(String),
    Uuid(Uuid),
    /// A row inserted earlier in the same transaction, by its `uuid-name`. Names must look
    /// like identifiers (`[_a-zA-Z][_a-zA-Z0-9]*`): a UUID string with dashes is refused.
    NamedUuid(String),
}

impl Atom {
    pub fn named_uuid(name: impl Into<String>) -> Atom {
        Atom::NamedUuid(name.into())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Atom::Integer(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Atom::Real(r) => Some(*r),
            Atom::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Atom::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Atom::Uuid(u) => Some(*u),
            _ => None,
        }
    }

    /// The atom as its JSON form.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Atom::Integer(i) => json!(i),
            Atom::Real(r) => json!(r),
            Atom::Boolean(b) => json!(b),
            Atom::String(s) => json!(s),
            Atom::Uuid(u) => json!(["uuid", u.to_string()]),
            Atom::NamedUuid(n) => json!(["named-uuid", n]),
        }
    }

    /// Parses an atom; `None` if the JSON is not one.
    pub fn from_json(v: &serde_json::Value) -> Option<Atom> {
        use serde_json::Value as J;
        match v {
            J::Bool(b) => Some(Atom::Boolean(*b)),
            J::String(s) => Some(Atom::String(s.clone())),
            J::Number(n) => match n.as_i64() {
                Some(i) => Some(Atom::Integer(i)),
                None => n.as_f64().map(Atom::Real),
            },
            J::Array(a) if a.len() == 2 => match (a[0].as_str(), a[1].as_str()) {
                (Some("uuid"), Some(s)) => Uuid::parse_str(s).ok().map(Atom::Uuid),
                (Some("named-uuid"), Some(s)) => Some(Atom::NamedUuid(s.to_string())),
                _ => None,
            },
            _ => None,
        }
    }

    /// Rank of the variant, for the total order.
    fn rank(&self) -> u8 {
        match self {
            Atom::Integer(_) => 0,
            Atom::Real(_) => 1,
            Atom::Boolean(_) => 2,
            Atom::String(_) => 3,
            Atom::Uuid(_) => 4,
            Atom::NamedUuid(_) => 5,
        }
    }

    /// The atom as the column's base type wants it: the server writes a real that happens to
    /// be whole as a JSON integer.
    fn coerce(self, ty: AtomicType) -> Atom {
        match (ty, self) {
            (AtomicType::Real, Atom::Integer(i)) => Atom::Real(i as f64),
            (_, a) => a,
        }
    }
}

impl PartialEq for Atom {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Atom {}

impl PartialOrd for Atom {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Atom {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Atom::Integer(a), Atom::Integer(b)) => a.cmp(b),
            (Atom::Real(a), Atom::Real(b)) => a.total_cmp(b),
            (Atom::Boolean(a), Atom::Boolean(b)) => a.cmp(b),
            (Atom::String(a), Atom::String(b)) => a.cmp(b),
            (Atom::Uuid(a), Atom::Uuid(b)) => a.cmp(b),
            (Atom::NamedUuid(a), Atom::NamedUuid(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::String(s) => write!(f, "{s:?}"),
            Atom::Uuid(u) => write!(f, "{u}"),
            other => write!(f, "{}", other.to_json()),
        }
    }
}

impl From<&str> for Atom {
    fn from(s: &str) -> Atom {
        Atom::String(s.to_string())
    }
}
impl From<String> for Atom {
    fn from(s: String) -> Atom {
        Atom::String(s)
    }
}
impl From<&String> for Atom {
    fn from(s: &String) -> Atom {
        Atom::String(s.clone())
    }
}
impl From<i64> for Atom {
    fn from(i: i64) -> Atom {
        Atom::Integer(i)
    }
}
impl From<f64> for Atom {
    fn from(r: f64) -> Atom {
        Atom::Real(r)
    }
}
impl From<bool> for Atom {
    fn from(b: bool) -> Atom {
        Atom::Boolean(b)
    }
}
impl From<Uuid> for Atom {
    fn from(u: Uuid) -> Atom {
        Atom::Uuid(u)
    }
}

/// One column's value: an atom, a set of atoms, or a map from atom to atom.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    Atom(Atom),
    Set(BTreeSet<Atom>),
    Map(BTreeMap<Atom, Atom>),
}

impl Value {
    /// A set, e.g. `Value::set(["a", "b"])` or `Value::set([Atom::named_uuid("p1")])`.
    pub fn set<A: Into<Atom>>(items: impl IntoIterator<Item = A>) -> Value {
        Value::Set(items.into_iter().map(Into::into).collect())
    }

    /// The empty set: the value of an optional column that is not set.
    pub fn empty_set() -> Value {
        Value::Set(BTreeSet::new())
    }

    /// A map, e.g. `Value::map([("neutron:network_name", "private")])`.
    pub fn map<K: Into<Atom>, V: Into<Atom>>(pairs: impl IntoIterator<Item = (K, V)>) -> Value {
        Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    pub fn uuid(u: Uuid) -> Value {
        Value::Atom(Atom::Uuid(u))
    }

    pub fn named_uuid(name: impl Into<String>) -> Value {
        Value::Atom(Atom::NamedUuid(name.into()))
    }

    /// The elements of a set; an atom counts as a set of one, a map has none.
    pub fn elements(&self) -> Vec<&Atom> {
        match self {
            Value::Atom(a) => vec![a],
            Value::Set(s) => s.iter().collect(),
            Value::Map(_) => Vec::new(),
        }
    }

    /// The single atom of a scalar or of a one-element set.
    pub fn single(&self) -> Option<&Atom> {
        match self {
            Value::Atom(a) => Some(a),
            Value::Set(s) if s.len() == 1 => s.iter().next(),
            _ => None,
        }
    }

    /// The value as its JSON form.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Atom(a) => a.to_json(),
            Value::Set(s) => json!(["set", s.iter().map(Atom::to_json).collect::<Vec<_>>()]),
            Value::Map(m) => json!([
                "map",
                m.iter()
                    .map(|(k, v)| json!([k.to_json(), v.to_json()]))
                    .collect::<Vec<_>>()
            ]),
        }
    }

    /// Parses a value without knowing its column: `None` if the JSON is not one.
    pub fn from_json(v: &serde_json::Value) -> Option<Value> {
        if let Some(a) = Atom::from_json(v) {
            return Some(Value::Atom(a));
        }
        let arr = v.as_array().filter(|a| a.len() == 2)?;
        match arr[0].as_str()? {
            "set" => {
                let items = arr[1].as_array()?;
                let mut set = BTreeSet::new();
                for item in items {
                    set.insert(Atom::from_json(item)?);
                }
                Some(Value::Set(set))
            }
            "map" => {
                let pairs = arr[1].as_array()?;
                let mut map = BTreeMap::new();
                for pair in pairs {
                    let kv = pair.as_array().filter(|p| p.len() == 2)?;
                    map.insert(Atom::from_json(&kv[0])?, Atom::from_json(&kv[1])?);
                }
                Some(Value::Map(map))
            }
            _ => None,
        }
    }

    /// The value in the canonical shape of its column: a scalar column holds an atom, a set
    /// column (any column whose `max` is not 1 or whose `min` is 0) a set, even of one, and
    /// a map column a map; reals written as integers become reals.
    pub fn normalize(self, ty: &ColumnType) -> Value {
        if ty.is_map() {
            return match self {
                Value::Map(m) => {
                    let vt = ty
                        .value
                        .as_ref()
                        .map(|v| v.atomic)
                        .unwrap_or(AtomicType::String);
                    Value::Map(
                        m.into_iter()
                            .map(|(k, v)| (k.coerce(ty.key.atomic), v.coerce(vt)))
                            .collect(),
                    )
                }
                // An empty map may come as an empty set from hand-written JSON.
                Value::Set(s) if s.is_empty() => Value::Map(BTreeMap::new()),
                other => other,
            };
        }
        let key = ty.key.atomic;
        if ty.is_scalar() {
            match self {
                Value::Atom(a) => Value::Atom(a.coerce(key)),
                Value::Set(s) if s.len() == 1 => {
                    Value::Atom(s.into_iter().next().expect("one element").coerce(key))
                }
                other => other,
            }
        } else {
            match self {
                Value::Atom(a) => Value::Set(BTreeSet::from([a.coerce(key)])),
                Value::Set(s) => Value::Set(s.into_iter().map(|a| a.coerce(key)).collect()),
                other => other,
            }
        }
    }

    /// The default value of a column type (what `insert` and `initial` updates leave out).
    pub fn default_for(ty: &ColumnType) -> Value {
        if ty.is_map() {
            Value::Map(BTreeMap::new())
        } else if !ty.is_scalar() {
            Value::Set(BTreeSet::new())
        } else {
            Value::Atom(match ty.key.atomic {
                AtomicType::Integer => Atom::Integer(0),
                AtomicType::Real => Atom::Real(0.0),
                AtomicType::Boolean => Atom::Boolean(false),
                AtomicType::String => Atom::String(String::new()),
                AtomicType::Uuid => Atom::Uuid(Uuid::nil()),
            })
        }
    }

    /// Applies an `update2` "modify" difference (ovsdb-server(7), section 4.1.14): a column
    /// that holds at most one value (`max` 1: scalars and optional columns such as
    /// `Logical_Switch_Port.up`) gets the new value; a set the symmetric difference (the
    /// elements in the diff are toggled); a map drops the keys whose pair is in the diff
    /// unchanged, and takes the others' values (added or changed keys).
    ///
    /// The optional columns are the trap: measured against ovsdb-server 3.1, `enabled`
    /// going from `true` to `false` is sent as `false`, not as the symmetric difference
    /// `["set", [false, true]]`.
    pub fn apply_diff(&mut self, diff: Value, ty: &ColumnType) {
        let diff = diff.normalize(ty);
        if !ty.is_map() && ty.max == Some(1) {
            *self = diff;
            return;
        }
        match (&mut *self, diff) {
            (Value::Set(old), Value::Set(d)) => {
                for a in d {
                    if !old.remove(&a) {
                        old.insert(a);
                    }
                }
            }
            (Value::Map(old), Value::Map(d)) => {
                for (k, v) in d {
                    if old.get(&k) == Some(&v) {
                        old.remove(&k);
                    } else {
                        old.insert(k, v);
                    }
                }
            }
            (_, new) => *self = new,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl<T: Into<Atom>> From<T> for Value {
    fn from(a: T) -> Value {
        Value::Atom(a.into())
    }
}

impl Serialize for Atom {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Atom {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Atom, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Atom::from_json(&v).ok_or_else(|| D::Error::custom(format!("not an OVSDB atom: {v}")))
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Value::from_json(&v).ok_or_else(|| D::Error::custom(format!("not an OVSDB value: {v}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ColumnType;

    fn ty(j: serde_json::Value) -> ColumnType {
        ColumnType::from_json(&j).unwrap()
    }

    #[test]
    fn wire_forms_round_trip() {
        let u = Uuid::new_v4();
        for v in [
            Value::from("x"),
            Value::from(7),
            Value::from(true),
            Value::from(1.5),
            Value::uuid(u),
            Value::named_uuid("p1"),
            Value::set(["a", "b"]),
            Value::empty_set(),
            Value::map([("k", "v"), ("k2", "v2")]),
        ] {
            let j = serde_json::to_value(&v).unwrap();
            let back: Value = serde_json::from_value(j.clone()).unwrap();
            assert_eq!(back, v, "{j}");
        }
        assert_eq!(
            Value::map([("a", "1")]).to_json(),
            json!(["map", [["a", "1"]]])
        );
        assert_eq!(Value::uuid(u).to_json(), json!(["uuid", u.to_string()]));
        assert_eq!(
            Value::set([Atom::named_uuid("n")]).to_json(),
            json!(["set", [["named-uuid", "n"]]])
        );
    }

    #[test]
    fn bad_json_is_refused_not_panicked() {
        for j in [
            json!(null),
            json!({}),
            json!(["uuid", "not-a-uuid"]),
            json!(["set", [[1, 2]]]),
            json!(["map", [["a"]]]),
            json!(["map", "x"]),
            json!(["what", []]),
        ] {
            assert!(Value::from_json(&j).is_none(), "{j}");
        }
    }

    #[test]
    fn normalize_by_column_type() {
        let set = ty(json!({"key": "string", "min": 0, "max": "unlimited"}));
        assert_eq!(Value::from("a").normalize(&set), Value::set(["a"]));
        let optional = ty(json!({"key": "boolean", "min": 0, "max": 1}));
        assert_eq!(Value::from(true).normalize(&optional), Value::set([true]));
        let scalar = ty(json!("string"));
        assert_eq!(Value::set(["a"]).normalize(&scalar), Value::from("a"));
        let real = ty(json!("real"));
        assert_eq!(Value::from(2).normalize(&real), Value::from(2.0));
    }

    #[test]
    fn diffs_follow_update2() {
        let set = ty(json!({"key": "string", "min": 0, "max": "unlimited"}));
        let mut v = Value::set(["a", "b"]);
        v.apply_diff(Value::set(["b", "c"]), &set);
        assert_eq!(v, Value::set(["a", "c"]));
        // A one-element diff arrives as a bare atom.
        v.apply_diff(Value::from("a"), &set);
        assert_eq!(v, Value::set(["c"]));

        let map = ty(json!({"key": "string", "value": "string", "min": 0, "max": "unlimited"}));
        let mut m = Value::map([("keep", "1"), ("drop", "2"), ("change", "3")]);
        m.apply_diff(
            Value::map([("drop", "2"), ("change", "4"), ("add", "5")]),
            &map,
        );
        assert_eq!(
            m,
            Value::map([("keep", "1"), ("change", "4"), ("add", "5")])
        );

        let scalar = ty(json!("integer"));
        let mut s = Value::from(1);
        s.apply_diff(Value::from(5), &scalar);
        assert_eq!(s, Value::from(5));

        // Optional columns (at most one value) take the new value too.
        let optional = ty(json!({"key": "boolean", "min": 0, "max": 1}));
        let mut o = Value::set([true]);
        o.apply_diff(Value::from(false), &optional);
        assert_eq!(o, Value::set([false]));
        o.apply_diff(Value::empty_set(), &optional);
        assert_eq!(o, Value::empty_set());
    }
}
