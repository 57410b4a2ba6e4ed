//! The Networking service's OVN backend. [`mapping`] turns Neutron's objects into the OVN
//! Northbound rows ML2/OVN would write for them (pure functions, unit-tested against the
//! names and matches ML2/OVN uses); the backend that writes them through
//! `ferrostack-ovsdb` and reconciles drift comes next (see docs/network.md).

pub mod backend;
pub mod mapping;

pub use backend::OvnBackend;
