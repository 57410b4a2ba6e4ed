//! Pieces every ferrostack API service shares: the caller's [`AuthContext`] (built from a
//! validated token), the HTTP plumbing every listener wears ([`http`]: request ids, metrics,
//! panic containment), and time formatting as OpenStack APIs write it.

pub mod api;
pub mod auth;
pub mod http;
pub mod limits;
pub mod time;

pub use auth::{AuthContext, Authenticator, Scope};
