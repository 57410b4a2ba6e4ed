//! The Placement service (OpenStack Placement compatible, API 1.0 to 1.39): resource
//! providers in trees with inventories, traits and aggregates; resource classes; allocations
//! per consumer with generation checks; usages; the reshaper; and the allocation-candidate
//! search the scheduler uses.
//!
//! Layout: [`store`] holds the SQL (the source of truth; claims are checked there, in one
//! transaction), [`model`] the in-memory snapshot the searches read, [`candidates`] the
//! allocation-candidate search, [`query`] the parsers of the query-string mini-languages
//! (`resources=`, `required=`, `member_of=`), [`service`] the logic and [`http`] the routes.

pub mod candidates;
pub mod error;
pub mod http;
pub mod microversion;
pub mod migrations;
pub mod model;
pub mod policy_defaults;
pub mod query;
pub mod schema;
pub mod service;
pub mod standard;
pub mod store;

pub use service::PlacementService;
