//! A local, read-only copy of some tables, kept current by a `monitor_cond` (RFC 7047
//! extension, ovsdb-server(7) sections 4.1.12-4.1.14).
//!
//! The monitor's answer is the initial snapshot; `update2` notifications then carry inserts,
//! deletes and modifications. Both leave out what the reader must fill in: `initial` and
//! `insert` rows omit columns whose value is the type's default, and `modify` carries only
//! differences (the new value of a column that holds at most one value, optional ones
//! included; the elements to toggle in a set; for a map the pairs to remove, add or
//! change). So each row is built from the monitored
//! columns' defaults and the schema's column types.
//!
//! The connection task applies every message in the order the server sent it, so the
//! replica is always a state the database was in. After a reconnect the monitor is sent
//! again and its fresh snapshot replaces the whole content (rows deleted meanwhile vanish).
//! While disconnected the content is kept but [`Replica::is_synced`] is false.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{Map, Value as Json};
use tokio::sync::watch;
use uuid::Uuid;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::schema::{Schema, TableSchema};
use crate::value::{Atom, Value};

/// A table to monitor and which of its columns (`None`: all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub table: String,
    pub columns: Option<Vec<String>>,
}

impl TableSpec {
    pub fn new(table: impl Into<String>, columns: &[&str]) -> TableSpec {
        TableSpec {
            table: table.into(),
            columns: Some(columns.iter().map(|c| c.to_string()).collect()),
        }
    }

    pub fn all(table: impl Into<String>) -> TableSpec {
        TableSpec {
            table: table.into(),
            columns: None,
        }
    }
}

/// One row: its UUID and its columns' values, each in the canonical shape of its column
/// type (see [`Value::normalize`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    uuid: Uuid,
    columns: BTreeMap<String, Value>,
}

impl Row {
    /// A row from a `select` result (which must include the `_uuid` column), or any JSON
    /// object of column values.
    pub fn from_json(table: &TableSchema, obj: &Map<String, Json>) -> Result<Row> {
        let uuid = obj
            .get("_uuid")
            .and_then(Atom::from_json)
            .and_then(|a| a.as_uuid())
            .ok_or_else(|| Error::Protocol(format!("row of {} without _uuid", table.name)))?;
        let mut row = Row {
            uuid,
            columns: BTreeMap::new(),
        };
        row.set_columns(table, obj)?;
        Ok(row)
    }

    /// Overwrites columns with the values in `obj` (full values, not diffs).
    fn set_columns(&mut self, table: &TableSchema, obj: &Map<String, Json>) -> Result<()> {
        for (col, j) in obj {
            if col == "_uuid" || col == "_version" {
                continue;
            }
            let v = parse_value(table, col, j)?;
            let v = match table.column(col) {
                Some(ty) => v.normalize(&ty),
                None => v,
            };
            self.columns.insert(col.clone(), v);
        }
        Ok(())
    }

    pub fn uuid(&self) -> Uuid {
        self.uuid
    }

    pub fn columns(&self) -> &BTreeMap<String, Value> {
        &self.columns
    }

    pub fn get(&self, column: &str) -> Option<&Value> {
        self.columns.get(column)
    }

    /// A string column, or an optional one holding a string.
    pub fn str(&self, column: &str) -> Option<&str> {
        self.get(column)?.single()?.as_str()
    }

    pub fn int(&self, column: &str) -> Option<i64> {
        self.get(column)?.single()?.as_i64()
    }

    pub fn real(&self, column: &str) -> Option<f64> {
        self.get(column)?.single()?.as_f64()
    }

    /// A boolean column, or an optional one that is set (e.g. `Logical_Switch_Port.up`).
    pub fn bool(&self, column: &str) -> Option<bool> {
        self.get(column)?.single()?.as_bool()
    }

    /// A uuid (reference) column, or an optional one that is set.
    pub fn uuid_ref(&self, column: &str) -> Option<Uuid> {
        self.get(column)?.single()?.as_uuid()
    }

    /// A map column whose keys and values are strings (`external_ids`, `options`...);
    /// empty if the column is missing, and pairs that are not strings are left out.
    pub fn map(&self, column: &str) -> BTreeMap<String, String> {
        match self.get(column) {
            Some(Value::Map(m)) => m
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    /// The UUIDs of a set (or single) uuid column (`Logical_Switch.ports`...).
    pub fn uuid_set(&self, column: &str) -> BTreeSet<Uuid> {
        self.get(column)
            .map(|v| v.elements().into_iter().filter_map(Atom::as_uuid).collect())
            .unwrap_or_default()
    }

    /// The strings of a set (or single) string column (`addresses`...).
    pub fn str_set(&self, column: &str) -> BTreeSet<String> {
        self.get(column)
            .map(|v| {
                v.elements()
                    .into_iter()
                    .filter_map(|a| a.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn parse_value(table: &TableSchema, col: &str, j: &Json) -> Result<Value> {
    Value::from_json(j)
        .ok_or_else(|| Error::Protocol(format!("bad value for {}.{col}: {j}", table.name)))
}

/// The rows of every monitored table, and whether they are current.
#[derive(Debug, Default)]
pub(crate) struct ReplicaState {
    tables: BTreeMap<String, BTreeMap<Uuid, Row>>,
    synced: bool,
    snapshots: u64,
}

/// What the connection task and the [`Replica`] handles share.
pub(crate) struct ReplicaShared {
    pub(crate) db: String,
    schema: Arc<Schema>,
    /// Monitored columns per table (all named, so their defaults are known).
    pub(crate) columns: BTreeMap<String, Vec<String>>,
    state: RwLock<ReplicaState>,
    revision: watch::Sender<u64>,
}

impl ReplicaShared {
    pub(crate) fn new(db: &str, schema: Arc<Schema>, specs: &[TableSpec]) -> Result<Self> {
        let mut columns = BTreeMap::new();
        for spec in specs {
            let t = schema.table(&spec.table).ok_or_else(|| {
                Error::Schema(format!("database {db} has no table {}", spec.table))
            })?;
            let cols: Vec<String> = match &spec.columns {
                Some(cols) => {
                    for c in cols {
                        if !t.columns.contains_key(c) {
                            return Err(Error::Schema(format!(
                                "table {} has no column {c}",
                                spec.table
                            )));
                        }
                    }
                    cols.clone()
                }
                None => t.columns.keys().cloned().collect(),
            };
            columns.insert(spec.table.clone(), cols);
        }
        Ok(ReplicaShared {
            db: db.to_string(),
            schema,
            columns,
            state: RwLock::new(ReplicaState::default()),
            revision: watch::channel(0).0,
        })
    }

    /// The `monitor_cond` request's third parameter.
    pub(crate) fn monitor_requests(&self) -> Json {
        Json::Object(
            self.columns
                .iter()
                .map(|(t, cols)| (t.clone(), serde_json::json!([{ "columns": cols }])))
                .collect(),
        )
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ReplicaState> {
        // A panic while holding the lock cannot leave rows half-applied (updates are built
        // first and swapped in), so a poisoned lock is still good to read.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ReplicaState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.revision.send_modify(|r| *r += 1);
    }

    pub(crate) fn mark_unsynced(&self) {
        let mut st = self.write();
        if st.synced {
            st.synced = false;
            drop(st);
            self.bump();
        }
    }

    fn table_schema(&self, table: &str) -> Result<&TableSchema> {
        self.schema
            .table(table)
            .ok_or_else(|| Error::Protocol(format!("update for unknown table {table}")))
    }

    /// A new row from an `initial` or `insert` update: defaults, then the columns sent.
    fn new_row(&self, table: &str, uuid: Uuid, obj: &Map<String, Json>) -> Result<Row> {
        let ts = self.table_schema(table)?;
        let mut row = Row {
            uuid,
            columns: BTreeMap::new(),
        };
        for c in self.columns.get(table).into_iter().flatten() {
            if let Some(ty) = ts.column(c) {
                row.columns.insert(c.clone(), Value::default_for(&ty));
            }
        }
        row.set_columns(ts, obj)?;
        Ok(row)
    }

    /// Replaces everything with the monitor's initial snapshot.
    pub(crate) fn apply_initial(&self, updates: &Json) -> Result<()> {
        let mut tables: BTreeMap<String, BTreeMap<Uuid, Row>> = self
            .columns
            .keys()
            .map(|t| (t.clone(), BTreeMap::new()))
            .collect();
        let obj = as_object(updates, "table-updates2")?;
        for (table, rows) in obj {
            let target = tables
                .get_mut(table)
                .ok_or_else(|| Error::Protocol(format!("snapshot of unmonitored table {table}")))?;
            for (uuid, change) in as_object(rows, "table-update2")? {
                let uuid = parse_uuid(uuid)?;
                let (kind, row) = single_member(change)?;
                match (kind, row) {
                    ("initial" | "insert", Json::Object(r)) => {
                        target.insert(uuid, self.new_row(table, uuid, r)?);
                    }
                    _ => {
                        return Err(Error::Protocol(format!(
                            "unexpected {kind} in a monitor snapshot"
                        )))
                    }
                }
            }
        }
        let mut st = self.write();
        st.tables = tables;
        st.synced = true;
        st.snapshots += 1;
        drop(st);
        self.bump();
        Ok(())
    }

    /// Applies an `update2` notification. An error (a modify of a row we do not have...)
    /// means the replica cannot be trusted: the caller drops the connection, and the
    /// reconnect brings a fresh snapshot.
    pub(crate) fn apply_update(&self, updates: &Json) -> Result<()> {
        let obj = as_object(updates, "table-updates2")?;
        // Build the changed rows first, then swap them in: readers never see half of it.
        let mut changes: Vec<(String, Uuid, Option<Row>)> = Vec::new();
        {
            let st = self.read();
            for (table, rows) in obj {
                let ts = self.table_schema(table)?;
                let current = st.tables.get(table).ok_or_else(|| {
                    Error::Protocol(format!("update of unmonitored table {table}"))
                })?;
                for (uuid_s, change) in as_object(rows, "table-update2")? {
                    let uuid = parse_uuid(uuid_s)?;
                    let (kind, row) = single_member(change)?;
                    match (kind, row) {
                        ("insert" | "initial", Json::Object(r)) => {
                            changes.push((table.clone(), uuid, Some(self.new_row(table, uuid, r)?)))
                        }
                        ("delete", _) => changes.push((table.clone(), uuid, None)),
                        ("modify", Json::Object(diff)) => {
                            // A row changed twice in one notification cannot happen; still,
                            // start from the latest version we built.
                            let base = changes
                                .iter()
                                .rev()
                                .find(|(t, u, _)| t == table && *u == uuid)
                                .map(|(_, _, r)| r.clone())
                                .unwrap_or_else(|| current.get(&uuid).cloned());
                            let mut row = base.ok_or_else(|| {
                                Error::Protocol(format!("modify of unknown row {uuid} in {table}"))
                            })?;
                            for (col, j) in diff {
                                let d = parse_value(ts, col, j)?;
                                match ts.column(col) {
                                    Some(ty) => match row.columns.get_mut(col) {
                                        Some(v) => v.apply_diff(d, &ty),
                                        None => {
                                            let mut v = Value::default_for(&ty);
                                            v.apply_diff(d, &ty);
                                            row.columns.insert(col.clone(), v);
                                        }
                                    },
                                    None => {
                                        row.columns.insert(col.clone(), d);
                                    }
                                }
                            }
                            changes.push((table.clone(), uuid, Some(row)));
                        }
                        _ => {
                            return Err(Error::Protocol(format!(
                                "bad row update {kind} for {uuid} in {table}"
                            )))
                        }
                    }
                }
            }
        }
        if changes.is_empty() {
            return Ok(());
        }
        let mut st = self.write();
        for (table, uuid, row) in changes {
            let t = st.tables.entry(table).or_default();
            match row {
                Some(r) => {
                    t.insert(uuid, r);
                }
                None => {
                    t.remove(&uuid);
                }
            }
        }
        drop(st);
        self.bump();
        Ok(())
    }
}

fn as_object<'a>(j: &'a Json, what: &str) -> Result<&'a Map<String, Json>> {
    j.as_object()
        .ok_or_else(|| Error::Protocol(format!("{what} is not an object: {j}")))
}

fn parse_uuid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|_| Error::Protocol(format!("bad row uuid {s:?}")))
}

/// A row update has exactly one member: initial, insert, delete or modify.
fn single_member(change: &Json) -> Result<(&str, &Json)> {
    let o = as_object(change, "row-update2")?;
    let mut it = o.iter();
    match (it.next(), it.next()) {
        (Some((k, v)), None) => Ok((k.as_str(), v)),
        _ => Err(Error::Protocol(format!("bad row-update2: {change}"))),
    }
}

/// Read access to a replica's content at one revision (see [`Replica::read`]).
pub struct View<'a> {
    state: &'a ReplicaState,
}

impl View<'_> {
    /// The rows of a monitored table (`None` for a table that is not monitored).
    pub fn table(&self, name: &str) -> Option<&BTreeMap<Uuid, Row>> {
        self.state.tables.get(name)
    }

    pub fn rows(&self, table: &str) -> impl Iterator<Item = &Row> {
        self.state
            .tables
            .get(table)
            .into_iter()
            .flat_map(|t| t.values())
    }

    pub fn get(&self, table: &str, uuid: Uuid) -> Option<&Row> {
        self.state.tables.get(table)?.get(&uuid)
    }

    /// The first row whose string column `column` equals `value` (e.g. a port by name).
    pub fn find_str(&self, table: &str, column: &str, value: &str) -> Option<&Row> {
        self.rows(table).find(|r| r.str(column) == Some(value))
    }

    /// Whether the content is the server's current state (false while reconnecting).
    pub fn is_synced(&self) -> bool {
        self.state.synced
    }
}

/// A monitored replica of some tables of one database. Cheap to clone; the monitor lives as
/// long as a clone does (it keeps its [`Client`] connected).
#[derive(Clone)]
pub struct Replica {
    pub(crate) shared: Arc<ReplicaShared>,
    pub(crate) _client: Client,
}

impl Replica {
    pub fn db(&self) -> &str {
        &self.shared.db
    }

    /// Runs `f` on the current content (under a read lock: keep it short, no awaiting).
    pub fn read<T>(&self, f: impl FnOnce(&View<'_>) -> T) -> T {
        let st = self.shared.read();
        f(&View { state: &st })
    }

    /// A copy of one table's rows.
    pub fn table(&self, name: &str) -> BTreeMap<Uuid, Row> {
        self.read(|v| v.table(name).cloned().unwrap_or_default())
    }

    pub fn get(&self, table: &str, uuid: Uuid) -> Option<Row> {
        self.read(|v| v.get(table, uuid).cloned())
    }

    pub fn find_str(&self, table: &str, column: &str, value: &str) -> Option<Row> {
        self.read(|v| v.find_str(table, column, value).cloned())
    }

    /// Whether the content is the server's current state (false while reconnecting).
    pub fn is_synced(&self) -> bool {
        self.shared.read().synced
    }

    /// How many initial snapshots were loaded: 1 after [`Client::monitor`], one more after
    /// each reconnect.
    pub fn snapshots(&self) -> u64 {
        self.shared.read().snapshots
    }

    /// A counter that grows with every change (and with every loss and regain of sync).
    pub fn revision(&self) -> u64 {
        *self.shared.revision.borrow()
    }

    /// A receiver that wakes on every change, for callers that run their own loop.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.revision.subscribe()
    }

    /// Waits until `f` returns `Some` on the content, checking now and after each change;
    /// [`Error::Timeout`] if that does not happen in `timeout`. Content is also checked
    /// while reconnecting (then it is the last known state): look at
    /// [`View::is_synced`] when that matters.
    pub async fn wait_for<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&View<'_>) -> Option<T>,
    ) -> Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.subscribe();
        loop {
            rx.borrow_and_update();
            if let Some(t) = self.read(&mut f) {
                return Ok(t);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Err(_) => return Err(Error::Timeout(timeout)),
                Ok(Err(_)) => return Err(Error::Closed),
                Ok(Ok(())) => {}
            }
        }
    }
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("db", &self.shared.db)
            .field("tables", &self.shared.columns.keys().collect::<Vec<_>>())
            .field("revision", &self.revision())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Arc<Schema> {
        Arc::new(
            Schema::from_json(json!({
                "name": "T", "version": "1",
                "tables": {"P": {"columns": {
                    "name": {"type": "string"},
                    "up": {"type": {"key": "boolean", "min": 0, "max": 1}},
                    "tags": {"type": {"key": "string", "min": 0, "max": "unlimited"}},
                    "ids": {"type": {"key": "string", "value": "string",
                                     "min": 0, "max": "unlimited"}}
                }}}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn initial_insert_modify_delete() {
        let r = ReplicaShared::new("T", schema(), &[TableSpec::all("P")]).unwrap();
        let u1 = Uuid::new_v4();
        let u2 = Uuid::new_v4();
        r.apply_initial(&json!({"P": {u1.to_string(): {"initial": {"name": "a"}}}}))
            .unwrap();
        let row = r.read().tables["P"][&u1].clone();
        // Defaults filled in for the columns left out.
        assert_eq!(row.get("up"), Some(&Value::empty_set()));
        assert_eq!(row.get("ids"), Some(&Value::map::<&str, &str>([])));
        assert_eq!(row.bool("up"), None);

        r.apply_update(&json!({"P": {
            u1.to_string(): {"modify": {"up": true, "tags": ["set", ["x", "y"]],
                                        "ids": ["map", [["k", "v"]]]}},
            u2.to_string(): {"insert": {"name": "b", "tags": "solo"}}
        }}))
        .unwrap();
        let st = r.read();
        let row = &st.tables["P"][&u1];
        assert_eq!(row.bool("up"), Some(true));
        assert_eq!(row.str_set("tags").len(), 2);
        assert_eq!(row.map("ids").get("k").map(String::as_str), Some("v"));
        assert_eq!(st.tables["P"][&u2].str_set("tags").len(), 1);
        drop(st);

        r.apply_update(&json!({"P": {
            u1.to_string(): {"modify": {"up": false, "tags": "x"}},
            u2.to_string(): {"delete": null}
        }}))
        .unwrap();
        let st = r.read();
        assert_eq!(st.tables["P"][&u1].bool("up"), Some(false));
        assert_eq!(
            st.tables["P"][&u1].str_set("tags"),
            BTreeSet::from(["y".to_string()])
        );
        assert!(!st.tables["P"].contains_key(&u2));
    }

    #[test]
    fn inconsistent_updates_are_errors() {
        let r = ReplicaShared::new("T", schema(), &[TableSpec::all("P")]).unwrap();
        r.apply_initial(&json!({})).unwrap();
        let u = Uuid::new_v4().to_string();
        for bad in [
            json!({"P": {u.clone(): {"modify": {"name": "x"}}}}),
            json!({"Q": {u.clone(): {"insert": {}}}}),
            json!({"P": {"not-a-uuid": {"insert": {}}}}),
            json!({"P": {u.clone(): {"insert": {}, "delete": null}}}),
            json!({"P": {u.clone(): {"insert": {"name": {"x": 1}}}}}),
            json!([]),
        ] {
            assert!(r.apply_update(&bad).is_err(), "{bad}");
        }
        assert!(ReplicaShared::new("T", schema(), &[TableSpec::new("P", &["nope"])]).is_err());
        assert!(ReplicaShared::new("T", schema(), &[TableSpec::all("Q")]).is_err());
    }
}
