//! The Compute service (OpenStack Nova v2.1 compatible, microversions 2.1 to 2.103): flavors,
//! key pairs, servers and their actions, the scheduler, and the hosts' registry.
//!
//! Layout: [`states`] is Nova's state machine as pure tables; [`service`] holds the logic,
//! the scheduler (Placement in this process) and the server workflows (durable, with undo);
//! [`host`] is the interface to compute hosts, which the agent crate implements; [`http`]
//! the routes and Nova's views.

pub mod error;
pub mod host;
pub mod host_http;
pub mod http;
pub mod microversion;
pub mod migrations;
pub mod model;
pub mod network;
pub mod policy_defaults;
pub mod service;
pub mod states;

pub use service::{ComputeConfig, ComputeService};
