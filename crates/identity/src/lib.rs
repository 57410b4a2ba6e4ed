//! The Identity service: a Keystone v3 (API v3.14) compatible API with Fernet tokens, bcrypt
//! passwords, roles with implication and inheritance, the service catalog, application
//! credentials, Keystone's security-compliance rules and its default policy.
//!
//! Layout: [`store`] holds all SQL, [`service`] the logic (auth, tokens, resources,
//! assignments), [`http`] the axum routes and views. [`fernet`] and [`token`] are the token
//! format; [`policy_defaults`] the default rules an operator's policy.yaml can override.

pub mod config;
pub mod error;
pub mod fernet;
pub mod http;
pub mod migrations;
pub mod model;
pub mod policy_defaults;
pub mod service;
pub mod store;
pub mod token;

pub use config::IdentityConfig;
pub use error::IdentityError;
pub use service::Identity;
