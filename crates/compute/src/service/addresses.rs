//! A server's IP addresses by network label (`GET /servers/{id}/ips`), from its network info
//! cache: fixed addresses first, then floating ones.

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
        let inst = self.get_server(ctx, uuid, rule).await?;
        let mut out: BTreeMap<String, Vec<Address>> = BTreeMap::new();
        for vif in &inst.network_info {
            let list = out.entry(vif.network_name.clone()).or_default();
            for ip in &vif.fixed_ips {
                list.push(Address {
                    addr: ip.address.clone(),
                    version: ip.version,
                });
            }
            for f in &vif.floating_ips {
                list.push(Address {
                    addr: f.clone(),
                    version: if f.contains(':') { 6 } else { 4 },
                });
            }
        }
        Ok(out)
    }
}
