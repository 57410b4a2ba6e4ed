//! An async client for OVSDB (RFC 7047), the database protocol of Open vSwitch and OVN. The
//! Networking service writes OVN's Northbound database with it, and the compute side reads
//! port state (`Logical_Switch_Port.up`) from a monitored replica.
//!
//! - [`Client`]: one connection (`unix:PATH` or `tcp:HOST:PORT`) shared by its clones;
//!   `list_dbs`, `get_schema`, `transact` with typed [`Op`]s (or raw JSON), and
//!   [`Client::monitor`]. It answers the server's echo probes and reconnects by itself.
//! - [`Op`], [`Cond`], [`Mutation`], [`Columns`], [`Value`], [`Atom`]: the operations and
//!   data of a transaction, with the protocol's surprises written down in [`op`].
//! - [`Replica`]: tables kept current by `monitor_cond`/`update2`, with typed row getters
//!   ([`Row::str`], [`Row::bool`], [`Row::map`], [`Row::uuid_set`]...) and
//!   [`Replica::wait_for`] to wait for a state (a port going up).
//!
//! ```no_run
//! # async fn demo() -> ferrostack_ovsdb::Result<()> {
//! use ferrostack_ovsdb::{Atom, Client, Columns, Cond, Mutation, Op, TableSpec, Value};
//! use std::time::Duration;
//! // As `scripts/ovn.sh env DIR` exports it: unix:DIR/run/ovnnb_db.sock
//! let nb = Client::connect(&std::env::var("OVN_NB_DB").unwrap_or_default()).await?;
//! let ports = nb
//!     .monitor("OVN_Northbound", &[TableSpec::new("Logical_Switch_Port", &["name", "up"])])
//!     .await?;
//! nb.transact("OVN_Northbound", vec![
//!     Op::insert("Logical_Switch_Port", Columns::new().with("name", "p1"), Some("p1")),
//!     Op::mutate("Logical_Switch", vec![Cond::eq("name", "ls1")],
//!                vec![Mutation::insert("ports", Value::set([Atom::named_uuid("p1")]))]),
//! ]).await?;
//! ports.wait_for(Duration::from_secs(30), |v| {
//!     v.find_str("Logical_Switch_Port", "name", "p1").filter(|r| r.bool("up") == Some(true))
//!         .map(|_| ())
//! }).await?;
//! # Ok(()) }
//! ```
//!
//! Measured against a real ovsdb-server (OVN Northbound 7.0.0, OVS 3.1) on a 2-core test
//! machine: see the crate's README.md.

mod client;
mod error;
mod framing;
pub mod op;
mod replica;
mod schema;
mod value;

pub use client::{Client, Endpoint, Options};
pub use error::{Error, Result, TransactionError};
pub use op::{Columns, Cond, Function, Mutation, Mutator, Op, OpResult, Until};
pub use replica::{Replica, Row, TableSpec, View};
pub use schema::{AtomicType, BaseType, ColumnType, Schema, TableSchema};
pub use value::{Atom, Value};
