//! Networking settings, the `[network]` section of the configuration file.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Which backend realizes the networks: `fake` (records in memory) or `ovn`.
    pub backend: String,
    /// The OVN Northbound database (`unix:PATH` or `tcp:HOST:PORT`), as ML2/OVN's
    /// `[ovn] ovn_nb_connection`; needed with `backend = "ovn"`.
    pub ovn_nb_connection: String,
    /// The OVN Southbound database: where the backend finds the chassis that host router
    /// gateways (and the agents it lists). Optional; without it routers get no gateway
    /// chassis.
    pub ovn_sb_connection: String,
    /// MTU of overlay (Geneve) networks: 1500 less Geneve's overhead with OVN's options,
    /// the value ML2/OVN gives tenant networks.
    pub overlay_mtu: i64,
    /// MTU of flat provider networks (the physical network's).
    pub physical_mtu: i64,
    /// Geneve VNIs handed to tenant networks, inclusive (ML2's `vni_ranges`).
    pub geneve_vni_min: i64,
    pub geneve_vni_max: i64,
    /// Physical networks an administrator may put flat networks on (ML2's `flat_networks`).
    pub flat_networks: Vec<String>,
    /// The availability zone networks report.
    pub availability_zone: String,
    /// Seconds between two full reconciliations of the backend with the database.
    pub reconcile_interval: u64,
    /// Default page size when a client asks for none (Neutron: no limit; 0 keeps that).
    pub pagination_max_limit: usize,
    pub quota: QuotaDefaults,
}

/// Neutron's default quotas (`[quotas] quota_*`); -1 is unlimited.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaDefaults {
    pub network: i64,
    pub subnet: i64,
    pub port: i64,
    pub security_group: i64,
    pub security_group_rule: i64,
    pub router: i64,
    pub floatingip: i64,
    pub rbac_policy: i64,
}

impl Default for QuotaDefaults {
    fn default() -> Self {
        QuotaDefaults {
            network: 100,
            subnet: 100,
            port: 500,
            security_group: 10,
            security_group_rule: 100,
            router: 10,
            floatingip: 50,
            rbac_policy: 10,
        }
    }
}

impl QuotaDefaults {
    /// `(resource, limit)` in Neutron's order.
    pub fn pairs(&self) -> Vec<(&'static str, i64)> {
        vec![
            ("network", self.network),
            ("subnet", self.subnet),
            ("port", self.port),
            ("security_group", self.security_group),
            ("security_group_rule", self.security_group_rule),
            ("router", self.router),
            ("floatingip", self.floatingip),
            ("rbac_policy", self.rbac_policy),
        ]
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            backend: "fake".into(),
            ovn_nb_connection: String::new(),
            ovn_sb_connection: String::new(),
            overlay_mtu: 1442,
            physical_mtu: 1500,
            geneve_vni_min: 1,
            geneve_vni_max: 65536,
            flat_networks: vec!["public".into()],
            availability_zone: "nova".into(),
            reconcile_interval: 60,
            pagination_max_limit: 0,
            quota: QuotaDefaults::default(),
        }
    }
}
