//! Building the operations of a `transact` (RFC 7047 section 5.2) and reading their results.
//!
//! Things the protocol does that surprise:
//! - A map `insert` mutation does not overwrite a key that is already there (the old value
//!   stays, no error). To change a key, mutate `delete` it (by key: a set of keys) and then
//!   `insert` it in the same transaction, or `update` the whole column.
//! - Rows of non-root tables (see [`crate::TableSchema::is_root`]: in OVN Northbound
//!   Logical_Switch_Port, Logical_Router_Port, ACL, NAT, static routes...) are deleted at
//!   commit when nothing references them: insert one with a `uuid-name` and reference it as
//!   [`Value::named_uuid`] from its parent in the same transaction (e.g. a `mutate` of
//!   `Logical_Switch.ports` with `insert`). Logical_Switch, Logical_Router, Port_Group and
//!   DHCP_Options are root tables.
//! - When one operation fails the whole transaction is aborted; the results then hold an
//!   error for that operation, and [`crate::Client::transact`] turns it into
//!   [`Error::Transaction`] naming it.
//! - For optimistic concurrency, start a transaction with [`Op::wait`] on the columns read
//!   earlier (`until: ==`, `timeout: 0`): the transaction fails with `"timed out"` if
//!   someone changed them meanwhile.
//! - Logical_Switch and Logical_Router have no unique index on `name`: inserting twice
//!   makes two rows. Use a `wait` for "no row with this name" in the same transaction.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value as Json};
use uuid::Uuid;

use crate::error::{Error, TransactionError};
use crate::value::{Atom, Value};

/// Column values of a row to insert or update.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Columns(pub BTreeMap<String, Value>);

impl Columns {
    pub fn new() -> Columns {
        Columns::default()
    }

    /// Adds a column, builder style: `Columns::new().with("name", "ls1")`.
    pub fn with(mut self, column: impl Into<String>, value: impl Into<Value>) -> Columns {
        self.0.insert(column.into(), value.into());
        self
    }

    pub fn set(&mut self, column: impl Into<String>, value: impl Into<Value>) {
        self.0.insert(column.into(), value.into());
    }

    fn to_json(&self) -> Json {
        Json::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        )
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Columns {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Columns {
        Columns(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// The functions of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Lt,
    Le,
    Eq,
    Ne,
    Ge,
    Gt,
    /// The column (a set or map) contains every element of the value.
    Includes,
    /// The column contains none of the elements of the value.
    Excludes,
}

impl Function {
    pub fn as_str(self) -> &'static str {
        match self {
            Function::Lt => "<",
            Function::Le => "<=",
            Function::Eq => "==",
            Function::Ne => "!=",
            Function::Ge => ">=",
            Function::Gt => ">",
            Function::Includes => "includes",
            Function::Excludes => "excludes",
        }
    }
}

/// One condition of a `where` clause: `[column, function, value]`. A row matches a clause
/// when it matches all of its conditions; an empty clause matches every row.
#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    pub column: String,
    pub function: Function,
    pub value: Value,
}

impl Cond {
    pub fn new(column: impl Into<String>, function: Function, value: impl Into<Value>) -> Cond {
        Cond {
            column: column.into(),
            function,
            value: value.into(),
        }
    }

    pub fn eq(column: impl Into<String>, value: impl Into<Value>) -> Cond {
        Cond::new(column, Function::Eq, value)
    }

    pub fn ne(column: impl Into<String>, value: impl Into<Value>) -> Cond {
        Cond::new(column, Function::Ne, value)
    }

    /// The set or map column contains all of `value` (a set, a map, or one atom).
    pub fn includes(column: impl Into<String>, value: impl Into<Value>) -> Cond {
        Cond::new(column, Function::Includes, value)
    }

    pub fn excludes(column: impl Into<String>, value: impl Into<Value>) -> Cond {
        Cond::new(column, Function::Excludes, value)
    }

    /// The row whose `_uuid` is `uuid`.
    pub fn uuid(uuid: Uuid) -> Cond {
        Cond::eq("_uuid", Value::uuid(uuid))
    }

    fn to_json(&self) -> Json {
        json!([self.column, self.function.as_str(), self.value.to_json()])
    }
}

/// The mutators of a `mutate` operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutator {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    /// Adds elements to a set, or pairs to a map (keys already present keep their value).
    Insert,
    /// Removes elements from a set; from a map, pairs (when given a map) or keys (a set).
    Delete,
}

impl Mutator {
    pub fn as_str(self) -> &'static str {
        match self {
            Mutator::Add => "+=",
            Mutator::Sub => "-=",
            Mutator::Mul => "*=",
            Mutator::Div => "/=",
            Mutator::Mod => "%=",
            Mutator::Insert => "insert",
            Mutator::Delete => "delete",
        }
    }
}

/// One mutation: `[column, mutator, value]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    pub column: String,
    pub mutator: Mutator,
    pub value: Value,
}

impl Mutation {
    pub fn new(column: impl Into<String>, mutator: Mutator, value: impl Into<Value>) -> Mutation {
        Mutation {
            column: column.into(),
            mutator,
            value: value.into(),
        }
    }

    pub fn insert(column: impl Into<String>, value: impl Into<Value>) -> Mutation {
        Mutation::new(column, Mutator::Insert, value)
    }

    pub fn delete(column: impl Into<String>, value: impl Into<Value>) -> Mutation {
        Mutation::new(column, Mutator::Delete, value)
    }

    /// Sets `key` of a map column to `value`, whether or not it was there: a `delete` of the
    /// key followed by an `insert` of the pair (a lone `insert` keeps an existing value).
    pub fn map_set(
        column: impl Into<String>,
        key: impl Into<Atom>,
        value: impl Into<Atom>,
    ) -> [Mutation; 2] {
        let column = column.into();
        let key = key.into();
        [
            Mutation::delete(column.clone(), Value::set([key.clone()])),
            Mutation::insert(column, Value::map([(key, value.into())])),
        ]
    }

    fn to_json(&self) -> Json {
        json!([self.column, self.mutator.as_str(), self.value.to_json()])
    }
}

/// What a `wait` operation waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// The selected columns of the matching rows equal the given rows.
    Equal,
    /// ... differ from them.
    NotEqual,
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Insert {
        table: String,
        row: Columns,
        uuid_name: Option<String>,
    },
    Select {
        table: String,
        where_: Vec<Cond>,
        columns: Option<Vec<String>>,
    },
    Update {
        table: String,
        where_: Vec<Cond>,
        row: Columns,
    },
    Mutate {
        table: String,
        where_: Vec<Cond>,
        mutations: Vec<Mutation>,
    },
    Delete {
        table: String,
        where_: Vec<Cond>,
    },
    Wait {
        table: String,
        where_: Vec<Cond>,
        columns: Vec<String>,
        until: Until,
        rows: Vec<Columns>,
        /// Milliseconds; `Some(0)` fails at once when the condition does not hold.
        timeout_ms: Option<u64>,
    },
    Comment(String),
    /// Anything else, as raw JSON (`commit`, `abort`, `assert`).
    Raw(Json),
}

impl Op {
    /// Inserts a row. `uuid_name` names it for the other operations of the transaction
    /// ([`Value::named_uuid`]); the result carries its real UUID.
    pub fn insert(table: impl Into<String>, row: Columns, uuid_name: Option<&str>) -> Op {
        Op::Insert {
            table: table.into(),
            row,
            uuid_name: uuid_name.map(str::to_string),
        }
    }

    /// Selects the matching rows; `columns: None` returns every column.
    pub fn select(table: impl Into<String>, where_: Vec<Cond>, columns: Option<&[&str]>) -> Op {
        Op::Select {
            table: table.into(),
            where_,
            columns: columns.map(|c| c.iter().map(|s| s.to_string()).collect()),
        }
    }

    pub fn update(table: impl Into<String>, where_: Vec<Cond>, row: Columns) -> Op {
        Op::Update {
            table: table.into(),
            where_,
            row,
        }
    }

    pub fn mutate(table: impl Into<String>, where_: Vec<Cond>, mutations: Vec<Mutation>) -> Op {
        Op::Mutate {
            table: table.into(),
            where_,
            mutations,
        }
    }

    pub fn delete(table: impl Into<String>, where_: Vec<Cond>) -> Op {
        Op::Delete {
            table: table.into(),
            where_,
        }
    }

    /// Checks, without waiting (`timeout` 0), that the `columns` of the rows matching
    /// `where_` are (`Until::Equal`) or are not exactly `rows`; otherwise the transaction
    /// fails with `"timed out"`. `rows` empty with `Until::Equal` means "no such row".
    pub fn wait(
        table: impl Into<String>,
        where_: Vec<Cond>,
        columns: &[&str],
        until: Until,
        rows: Vec<Columns>,
    ) -> Op {
        Op::Wait {
            table: table.into(),
            where_,
            columns: columns.iter().map(|s| s.to_string()).collect(),
            until,
            rows,
            timeout_ms: Some(0),
        }
    }

    /// A comment the server writes to its log with the transaction.
    pub fn comment(text: impl Into<String>) -> Op {
        Op::Comment(text.into())
    }

    /// The operation's name, as in the protocol.
    pub fn name(&self) -> String {
        match self {
            Op::Insert { .. } => "insert".into(),
            Op::Select { .. } => "select".into(),
            Op::Update { .. } => "update".into(),
            Op::Mutate { .. } => "mutate".into(),
            Op::Delete { .. } => "delete".into(),
            Op::Wait { .. } => "wait".into(),
            Op::Comment(_) => "comment".into(),
            Op::Raw(j) => j
                .get("op")
                .and_then(Json::as_str)
                .unwrap_or("?")
                .to_string(),
        }
    }

    pub fn to_json(&self) -> Json {
        let conds = |w: &[Cond]| Json::Array(w.iter().map(Cond::to_json).collect());
        match self {
            Op::Insert {
                table,
                row,
                uuid_name,
            } => {
                let mut o = json!({"op": "insert", "table": table, "row": row.to_json()});
                if let Some(n) = uuid_name {
                    o["uuid-name"] = json!(n);
                }
                o
            }
            Op::Select {
                table,
                where_,
                columns,
            } => {
                let mut o = json!({"op": "select", "table": table, "where": conds(where_)});
                if let Some(c) = columns {
                    o["columns"] = json!(c);
                }
                o
            }
            Op::Update { table, where_, row } => json!({
                "op": "update", "table": table, "where": conds(where_), "row": row.to_json()
            }),
            Op::Mutate {
                table,
                where_,
                mutations,
            } => json!({
                "op": "mutate", "table": table, "where": conds(where_),
                "mutations": mutations.iter().map(Mutation::to_json).collect::<Vec<_>>()
            }),
            Op::Delete { table, where_ } => {
                json!({"op": "delete", "table": table, "where": conds(where_)})
            }
            Op::Wait {
                table,
                where_,
                columns,
                until,
                rows,
                timeout_ms,
            } => {
                let mut o = json!({
                    "op": "wait", "table": table, "where": conds(where_), "columns": columns,
                    "until": match until { Until::Equal => "==", Until::NotEqual => "!=" },
                    "rows": rows.iter().map(Columns::to_json).collect::<Vec<_>>()
                });
                if let Some(t) = timeout_ms {
                    o["timeout"] = json!(t);
                }
                o
            }
            Op::Comment(c) => json!({"op": "comment", "comment": c}),
            Op::Raw(j) => j.clone(),
        }
    }
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

/// The result of one successful operation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpResult {
    /// `insert`: the new row's UUID.
    pub uuid: Option<Uuid>,
    /// `select`: the rows, as JSON objects of the selected columns (parse them with
    /// [`crate::Row::from_json`] and the table's schema).
    pub rows: Option<Vec<Map<String, Json>>>,
    /// `update`, `mutate`, `delete`: the number of matching rows.
    pub count: Option<u64>,
}

impl OpResult {
    fn from_json(j: &Json) -> Result<OpResult, Error> {
        let o = j
            .as_object()
            .ok_or_else(|| Error::Protocol(format!("operation result is not an object: {j}")))?;
        let uuid = match o.get("uuid") {
            None => None,
            Some(u) => Some(
                Atom::from_json(u)
                    .and_then(|a| a.as_uuid())
                    .ok_or_else(|| Error::Protocol(format!("bad uuid in result: {u}")))?,
            ),
        };
        let rows = match o.get("rows") {
            None => None,
            Some(Json::Array(rows)) => Some(
                rows.iter()
                    .map(|r| {
                        r.as_object()
                            .cloned()
                            .ok_or_else(|| Error::Protocol(format!("bad row in result: {r}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(other) => return Err(Error::Protocol(format!("bad rows in result: {other}"))),
        };
        Ok(OpResult {
            uuid,
            rows,
            count: o.get("count").and_then(Json::as_u64),
        })
    }
}

/// Checks a `transact` answer against the operations sent: the first error object (in an
/// operation's slot, or the extra slot after them for a failed commit) becomes
/// [`Error::Transaction`]; otherwise one [`OpResult`] per operation.
pub(crate) fn parse_results(op_names: &[String], result: Json) -> Result<Vec<OpResult>, Error> {
    let arr = match result {
        Json::Array(a) => a,
        other => {
            return Err(Error::Protocol(format!(
                "transact result is not an array: {other}"
            )))
        }
    };
    for (index, r) in arr.iter().enumerate() {
        if let Some(err) = r.get("error") {
            return Err(Error::Transaction(TransactionError {
                index,
                op: op_names
                    .get(index)
                    .cloned()
                    .unwrap_or_else(|| "commit".to_string()),
                error: err
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| err.to_string()),
                details: r.get("details").and_then(Json::as_str).map(str::to_string),
            }));
        }
    }
    if arr.len() < op_names.len() {
        return Err(Error::Protocol(format!(
            "transact answered {} results for {} operations",
            arr.len(),
            op_names.len()
        )));
    }
    arr.iter()
        .take(op_names.len())
        .map(OpResult::from_json)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_serialize_as_rfc7047() {
        let ins = Op::insert(
            "Logical_Switch_Port",
            Columns::new()
                .with("name", "p1")
                .with("addresses", Value::set(["fa:16:3e:00:00:01 10.0.0.5"])),
            Some("p1"),
        );
        assert_eq!(
            ins.to_json(),
            json!({"op": "insert", "table": "Logical_Switch_Port", "uuid-name": "p1",
                   "row": {"name": "p1", "addresses": ["set", ["fa:16:3e:00:00:01 10.0.0.5"]]}})
        );
        let m = Op::mutate(
            "Logical_Switch",
            vec![Cond::eq("name", "ls1")],
            vec![Mutation::insert(
                "ports",
                Value::set([Atom::named_uuid("p1")]),
            )],
        );
        assert_eq!(
            m.to_json(),
            json!({"op": "mutate", "table": "Logical_Switch", "where": [["name", "==", "ls1"]],
                   "mutations": [["ports", "insert", ["set", [["named-uuid", "p1"]]]]]})
        );
        let w = Op::wait("Logical_Switch", vec![], &["name"], Until::Equal, vec![]);
        assert_eq!(w.to_json()["timeout"], json!(0));
        assert_eq!(w.to_json()["until"], json!("=="));
        let [d, i] = Mutation::map_set("external_ids", "k", "v");
        assert_eq!(
            d.to_json(),
            json!(["external_ids", "delete", ["set", ["k"]]])
        );
        assert_eq!(
            i.to_json(),
            json!(["external_ids", "insert", ["map", [["k", "v"]]]])
        );
    }

    #[test]
    fn results_name_the_failing_operation() {
        let names: Vec<String> = vec!["insert".into(), "mutate".into()];
        let u = Uuid::new_v4();
        let ok = parse_results(
            &names,
            json!([{"uuid": ["uuid", u.to_string()]}, {"count": 1}]),
        )
        .unwrap();
        assert_eq!(ok[0].uuid, Some(u));
        assert_eq!(ok[1].count, Some(1));

        let err = parse_results(
            &names,
            json!([{}, {"error": "constraint violation", "details": "no such column"}]),
        )
        .unwrap_err();
        let t = err.transaction().unwrap();
        assert_eq!((t.index, t.op.as_str()), (1, "mutate"));
        assert_eq!(t.details.as_deref(), Some("no such column"));

        let commit = parse_results(
            &names,
            json!([{}, {}, {"error": "referential integrity violation"}]),
        )
        .unwrap_err();
        assert_eq!(commit.transaction().unwrap().op, "commit");
        assert!(parse_results(&names, json!([{}])).is_err());
        assert!(parse_results(&names, json!("x")).is_err());
    }
}
