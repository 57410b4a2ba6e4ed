//! The parts of a database schema (RFC 7047 section 3.2) the client needs: each table's
//! columns with their types, whether the table is a root table, and its unique indexes.
//!
//! The column types matter for reading: a one-element set arrives as a bare atom, and an
//! `update2` "modify" means "new value" for a column of at most one value but "toggle these
//! elements" for a set, so the replica cannot apply a change without knowing which is which. `isRoot`
//! matters for writing: a row of a non-root table (in OVN Northbound: Logical_Switch_Port,
//! Logical_Router_Port, ACL, NAT, Logical_Router_Static_Route, QoS, Gateway_Chassis...)
//! that no other row references when the transaction commits is deleted by the server, so
//! it must be inserted together with the mutation that references it.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::error::Error;

/// The atomic types of RFC 7047.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtomicType {
    Integer,
    Real,
    Boolean,
    String,
    Uuid,
}

impl AtomicType {
    fn parse(s: &str) -> Option<AtomicType> {
        Some(match s {
            "integer" => AtomicType::Integer,
            "real" => AtomicType::Real,
            "boolean" => AtomicType::Boolean,
            "string" => AtomicType::String,
            "uuid" => AtomicType::Uuid,
            _ => return None,
        })
    }
}

/// A key or value type: the atomic type and, for references, the table referred to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseType {
    pub atomic: AtomicType,
    pub ref_table: Option<String>,
    /// `true` for `"refType": "weak"` (the reference disappears with the row it points to).
    pub weak: bool,
}

impl BaseType {
    fn from_json(j: &Json) -> Option<BaseType> {
        match j {
            Json::String(s) => Some(BaseType {
                atomic: AtomicType::parse(s)?,
                ref_table: None,
                weak: false,
            }),
            Json::Object(o) => Some(BaseType {
                atomic: AtomicType::parse(o.get("type")?.as_str()?)?,
                ref_table: o.get("refTable").and_then(Json::as_str).map(str::to_string),
                weak: o.get("refType").and_then(Json::as_str) == Some("weak"),
            }),
            _ => None,
        }
    }
}

/// A column's type: key, optional value (then it is a map), and the bounds on the number
/// of elements (`max` is `None` for "unlimited").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnType {
    pub key: BaseType,
    pub value: Option<BaseType>,
    pub min: u64,
    pub max: Option<u64>,
}

impl ColumnType {
    /// Parses a column's `type` member.
    pub fn from_json(j: &Json) -> Option<ColumnType> {
        if let Json::String(_) = j {
            return Some(ColumnType {
                key: BaseType::from_json(j)?,
                value: None,
                min: 1,
                max: Some(1),
            });
        }
        let o = j.as_object()?;
        let min = match o.get("min") {
            None => 1,
            Some(v) => v.as_u64()?,
        };
        let max = match o.get("max") {
            None => Some(1),
            Some(Json::String(s)) if s == "unlimited" => None,
            Some(v) => Some(v.as_u64()?),
        };
        Some(ColumnType {
            key: BaseType::from_json(o.get("key")?)?,
            value: match o.get("value") {
                None => None,
                Some(v) => Some(BaseType::from_json(v)?),
            },
            min,
            max,
        })
    }

    pub fn is_map(&self) -> bool {
        self.value.is_some()
    }

    /// Exactly one atom. Everything else, optional columns (`min` 0, `max` 1) included, is
    /// a set or a map (the server writes a one-element set as the bare atom).
    pub fn is_scalar(&self) -> bool {
        self.value.is_none() && self.min == 1 && self.max == Some(1)
    }
}

/// One table of a schema.
#[derive(Debug, Clone)]
pub struct TableSchema {
    pub name: String,
    pub columns: BTreeMap<String, ColumnType>,
    /// Rows of a non-root table live only while another row references them.
    pub is_root: bool,
    /// Column sets whose values must be unique across the table.
    pub indexes: Vec<Vec<String>>,
}

impl TableSchema {
    /// The type of a column; `_uuid` and `_version` are implicit uuid columns.
    pub fn column(&self, name: &str) -> Option<ColumnType> {
        if let Some(t) = self.columns.get(name) {
            return Some(t.clone());
        }
        matches!(name, "_uuid" | "_version").then(|| ColumnType {
            key: BaseType {
                atomic: AtomicType::Uuid,
                ref_table: None,
                weak: false,
            },
            value: None,
            min: 1,
            max: Some(1),
        })
    }
}

/// A database schema, as `get_schema` returns it.
#[derive(Debug, Clone)]
pub struct Schema {
    pub name: String,
    pub version: String,
    pub cksum: Option<String>,
    pub tables: BTreeMap<String, TableSchema>,
    /// The schema as the server sent it.
    pub raw: Json,
}

impl Schema {
    pub fn from_json(raw: Json) -> Result<Schema, Error> {
        let bad = |what: &str| Error::Protocol(format!("schema: {what}"));
        let o = raw.as_object().ok_or_else(|| bad("not an object"))?;
        let name = o
            .get("name")
            .and_then(Json::as_str)
            .ok_or_else(|| bad("no name"))?
            .to_string();
        let version = o
            .get("version")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        let cksum = o.get("cksum").and_then(Json::as_str).map(str::to_string);
        let mut tables = BTreeMap::new();
        for (tname, t) in o
            .get("tables")
            .and_then(Json::as_object)
            .ok_or_else(|| bad("no tables"))?
        {
            let mut columns = BTreeMap::new();
            for (cname, c) in t
                .get("columns")
                .and_then(Json::as_object)
                .ok_or_else(|| bad(&format!("table {tname} has no columns")))?
            {
                let ty = c
                    .get("type")
                    .and_then(ColumnType::from_json)
                    .ok_or_else(|| bad(&format!("column {tname}.{cname} has a bad type")))?;
                columns.insert(cname.clone(), ty);
            }
            let indexes = t
                .get("indexes")
                .and_then(Json::as_array)
                .map(|ix| {
                    ix.iter()
                        .filter_map(|cols| {
                            cols.as_array().map(|c| {
                                c.iter()
                                    .filter_map(|s| s.as_str().map(str::to_string))
                                    .collect()
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            tables.insert(
                tname.clone(),
                TableSchema {
                    name: tname.clone(),
                    columns,
                    is_root: t.get("isRoot").and_then(Json::as_bool).unwrap_or(false),
                    indexes,
                },
            );
        }
        Ok(Schema {
            name,
            version,
            cksum,
            tables,
            raw,
        })
    }

    pub fn table(&self, name: &str) -> Option<&TableSchema> {
        self.tables.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_types_root_and_indexes() {
        let s = Schema::from_json(json!({
            "name": "T", "version": "1.0.0",
            "tables": {
                "A": {"columns": {
                    "name": {"type": "string"},
                    "up": {"type": {"key": "boolean", "min": 0, "max": 1}},
                    "ports": {"type": {"key": {"type": "uuid", "refTable": "B"},
                                       "min": 0, "max": "unlimited"}},
                    "ids": {"type": {"key": "string", "value": "string",
                                     "min": 0, "max": "unlimited"}}
                }, "isRoot": true, "indexes": [["name"]]},
                "B": {"columns": {"x": {"type": "integer"}}}
            }
        }))
        .unwrap();
        let a = s.table("A").unwrap();
        assert!(a.is_root);
        assert_eq!(a.indexes, vec![vec!["name".to_string()]]);
        assert!(a.columns["name"].is_scalar());
        assert!(!a.columns["up"].is_scalar());
        assert!(a.columns["ids"].is_map());
        assert_eq!(a.columns["ports"].key.ref_table.as_deref(), Some("B"));
        assert_eq!(a.columns["ports"].max, None);
        assert!(!s.table("B").unwrap().is_root);
        assert!(a.column("_uuid").unwrap().is_scalar());
    }

    #[test]
    fn bad_schema_is_an_error() {
        assert!(Schema::from_json(json!([])).is_err());
        assert!(Schema::from_json(json!({"name": "x", "tables": {"A": {}}})).is_err());
        assert!(Schema::from_json(
            json!({"name": "x", "tables": {"A": {"columns": {"c": {"type": "float"}}}}})
        )
        .is_err());
    }
}
