//! The Compute service's records as the service logic uses them, built from SQL rows.

use ferrostack_db::sqlx::Row;
use ferrostack_db::{DbRow, RowExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub ram: i64,
    pub vcpus: i64,
    pub disk: i64,
    pub ephemeral: i64,
    pub swap: i64,
    pub rxtx_factor: f64,
    pub is_public: bool,
    pub disabled: bool,
    pub description: Option<String>,
    #[serde(default)]
    pub extra_specs: std::collections::BTreeMap<String, String>,
}

impl Flavor {
    pub fn from_row(r: &DbRow) -> Flavor {
        Flavor {
            id: r.get("flavorid"),
            name: r.get("name"),
            ram: r.get("memory_mb"),
            vcpus: r.get("vcpus"),
            disk: r.get("root_gb"),
            ephemeral: r.get("ephemeral_gb"),
            swap: r.get("swap"),
            rxtx_factor: r.get("rxtx_factor"),
            is_public: r.flag("is_public"),
            disabled: r.flag("disabled"),
            description: r.get("description"),
            extra_specs: Default::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Keypair {
    pub user_id: String,
    pub name: String,
    pub key_type: String,
    pub fingerprint: String,
    pub public_key: String,
    pub created_at: i64,
}

impl Keypair {
    pub fn from_row(r: &DbRow) -> Keypair {
        Keypair {
            user_id: r.get("user_id"),
            name: r.get("name"),
            key_type: r.get("key_type"),
            fingerprint: r.get("fingerprint"),
            public_key: r.get("public_key"),
            created_at: r.get("created_at"),
        }
    }
}

/// What the create request asked for that later steps need (networks, groups, hints).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BootRequest {
    #[serde(default)]
    pub networks: Value,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub scheduler_hints: Value,
    #[serde(default)]
    pub server_group: Option<String>,
    #[serde(default)]
    pub requested_host: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Instance {
    pub uuid: String,
    pub id: i64,
    pub name: String,
    pub project_id: String,
    pub user_id: String,
    pub image_ref: String,
    pub flavor: Flavor,
    pub vm_state: String,
    pub task_state: Option<String>,
    pub power_state: i64,
    pub host: Option<String>,
    pub node: Option<String>,
    pub availability_zone: Option<String>,
    pub key_name: Option<String>,
    pub key_data: Option<String>,
    pub user_data: Option<String>,
    pub config_drive: bool,
    pub access_ipv4: Option<String>,
    pub access_ipv6: Option<String>,
    pub locked_by: Option<String>,
    pub locked_reason: Option<String>,
    pub description: Option<String>,
    pub hostname: String,
    pub reservation_id: String,
    pub launch_index: i64,
    pub request: BootRequest,
    pub launched_at: Option<i64>,
    pub terminated_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted: bool,
    pub metadata: std::collections::BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub fault: Option<Fault>,
    /// The server's NICs as the boot (or the last interface change) left them: Nova's
    /// network info cache, so views and the metadata service need no call to Networking.
    pub network_info: Vec<crate::network::Vif>,
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub code: i64,
    pub message: String,
    pub details: String,
    pub created_at: i64,
}

impl Instance {
    pub fn from_row(r: &DbRow) -> Instance {
        let flavor: String = r.get("flavor");
        let request: String = r.get("request");
        let network_info: Option<String> = r.get("network_info");
        Instance {
            uuid: r.get("uuid"),
            id: r.get("id"),
            name: r.get("display_name"),
            project_id: r.get("project_id"),
            user_id: r.get("user_id"),
            image_ref: r.get("image_ref"),
            flavor: serde_json::from_str(&flavor).unwrap_or_else(|_| Flavor {
                id: String::new(),
                name: String::new(),
                ram: 0,
                vcpus: 0,
                disk: 0,
                ephemeral: 0,
                swap: 0,
                rxtx_factor: 1.0,
                is_public: true,
                disabled: false,
                description: None,
                extra_specs: Default::default(),
            }),
            vm_state: r.get("vm_state"),
            task_state: r.get("task_state"),
            power_state: r.get("power_state"),
            host: r.get("host"),
            node: r.get("node"),
            availability_zone: r.get("availability_zone"),
            key_name: r.get("key_name"),
            key_data: r.get("key_data"),
            user_data: r.get("user_data"),
            config_drive: r.flag("config_drive"),
            access_ipv4: r.get("access_ipv4"),
            access_ipv6: r.get("access_ipv6"),
            locked_by: r.get("locked_by"),
            locked_reason: r.get("locked_reason"),
            description: r.get("description"),
            hostname: r.get("hostname"),
            reservation_id: r.get("reservation_id"),
            launch_index: r.get("launch_index"),
            request: serde_json::from_str(&request).unwrap_or_default(),
            launched_at: r.get("launched_at"),
            terminated_at: r.get("terminated_at"),
            created_at: r.get("created_at"),
            updated_at: r.get("updated_at"),
            deleted: r.flag("deleted"),
            metadata: Default::default(),
            tags: Vec::new(),
            fault: None,
            network_info: network_info
                .and_then(|n| serde_json::from_str(&n).ok())
                .unwrap_or_default(),
        }
    }

    /// The name QEMU and the hypervisor APIs know the server by (Nova's `instance_name`).
    pub fn instance_name(&self) -> String {
        format!("instance-{:08x}", self.id)
    }
}

/// A compute host as its agent reported it.
#[derive(Debug, Clone, Serialize)]
pub struct ComputeNode {
    pub uuid: String,
    pub host: String,
    pub hypervisor_hostname: String,
    pub hypervisor_type: String,
    pub hypervisor_version: i64,
    pub accel: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
    pub cpu_info: String,
    pub host_ip: String,
}

impl ComputeNode {
    pub fn from_row(r: &DbRow) -> ComputeNode {
        ComputeNode {
            uuid: r.get("uuid"),
            host: r.get("host"),
            hypervisor_hostname: r.get("hypervisor_hostname"),
            hypervisor_type: r.get("hypervisor_type"),
            hypervisor_version: r.get("hypervisor_version"),
            accel: r.get("accel"),
            vcpus: r.get("vcpus"),
            memory_mb: r.get("memory_mb"),
            local_gb: r.get("local_gb"),
            cpu_info: r.get("cpu_info"),
            host_ip: r.get("host_ip"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub id: String,
    pub host: String,
    pub binary: String,
    pub zone: String,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub forced_down: bool,
    pub last_seen_up: i64,
    pub updated_at: i64,
}

impl Service {
    pub fn from_row(r: &DbRow) -> Service {
        Service {
            id: r.get("id"),
            host: r.get("host"),
            binary: r.get("binary_name"),
            zone: r.get("zone"),
            disabled: r.flag("disabled"),
            disabled_reason: r.get("disabled_reason"),
            forced_down: r.flag("forced_down"),
            last_seen_up: r.get("last_seen_up"),
            updated_at: r.get("updated_at"),
        }
    }
}
