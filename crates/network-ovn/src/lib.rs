//! The Networking service's OVN backend. [`mapping`] and [`router_rows`] turn Neutron's
//! objects into the OVN Northbound rows ML2/OVN would write for them (pure functions,
//! unit-tested against the names and matches ML2/OVN uses); [`backend::OvnBackend`] writes
//! them through `ferrostack-ovsdb` as diffs against a monitored replica ([`routing`] for
//! routers and floating IPs, [`forwarding`] for their port forwardings), and [`status`] turns ports coming up in OVN into Neutron port
//! status (see docs/network.md); [`agents`] derives Neutron's agents from the Southbound
//! chassis as ML2/OVN does.

pub mod agents;
pub mod backend;
pub mod forwarding;
pub mod mapping;
pub mod router_rows;
mod routing;
pub mod status;

pub use backend::OvnBackend;
