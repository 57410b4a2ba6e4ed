//! A server's IP addresses by network label (`GET /servers/{id}/ips`). Servers have no ports
//! until the Networking service exists, so every server has no addresses; this is the one
//! place that will read them from its ports then.

use std::collections::BTreeMap;

use ferrostack_common::AuthContext;

use super::ComputeService;
use crate::error::Result;

/// One address as Nova shows it: `{"addr": "192.0.2.5", "version": 4}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub addr: String,
    pub version: u8,
}

impl ComputeService {
    /// The addresses of a server the caller may see under `rule` (`os_compute_api:ips:*`),
    /// by network label.
    pub async fn server_addresses(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        rule: &str,
    ) -> Result<BTreeMap<String, Vec<Address>>> {
        self.get_server(ctx, uuid, rule).await?;
        Ok(BTreeMap::new())
    }
}
