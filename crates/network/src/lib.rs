//! The Networking service (Neutron v2.0 compatible): networks, subnets with IP address
//! management, ports with bindings, security groups and rules, quotas and the extension
//! list, served under `/networking`. What the database holds is the desired state; a
//! [`backend::NetworkBackend`] (OVN in production, [`fake::FakeBackend`] in tests) is told
//! that state after every commit and repaired by a periodic reconciler.
//!
//! Layout as in every service: [`store`] holds the SQL, [`service`] the logic, [`http`] the
//! routes; [`ipam`] is the pure address arithmetic, [`listing`] Neutron's generic list
//! behaviour (filters, fields, sorting, pagination) and [`views`] the JSON of each resource.

pub mod backend;
pub mod config;
pub mod error;
pub mod extensions;
pub mod fake;
pub mod http;
pub mod ipam;
pub mod listing;
pub mod migrations;
pub mod model;
pub mod policy_defaults;
pub mod service;
pub mod store;
pub mod views;

pub use backend::NetworkBackend;
pub use config::NetworkConfig;
pub use service::NetworkService;
