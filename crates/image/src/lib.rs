//! The Image service (Glance v2 compatible): image records with Glance's life cycle and
//! fields, a local file store written atomically, the format inspector that refuses unsafe
//! images, sharing through members, and the HTTP API under `/image`.
//!
//! Layout as in every service: [`store`] holds the SQL, [`service`] the logic, [`http`] the
//! routes and views; [`inspector`] reads image headers.

pub mod config;
pub mod error;
pub mod http;
pub mod inspector;
pub mod metadefs;
pub mod migrations;
pub mod model;
pub mod policy_defaults;
pub mod service;
pub mod store;

pub use config::{HashingAlgorithm, ImageConfig};
pub use service::ImageService;
