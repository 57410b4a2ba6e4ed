//! ferrostack's one configuration file (TOML), with environment and flag overrides.
//!
//! Precedence, lowest first: built-in defaults, the file (`--config` or
//! `$FERROSTACK_CONFIG`), environment variables, command-line flags. An environment variable
//! `FERROSTACK_<KEY>` sets a top-level key and `FERROSTACK_<SECTION>__<KEY>` a nested one, e.g.
//! `FERROSTACK_IDENTITY__SECURITY_COMPLIANCE__LOCKOUT_FAILURE_ATTEMPTS=3`; values are read as
//! TOML (numbers, booleans) and fall back to strings.

use std::path::{Path, PathBuf};

use anyhow::Context;
use ferrostack_identity::IdentityConfig;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the embedded database, Fernet keys and generated files live.
    pub data_dir: PathBuf,
    /// Address the single HTTP listener binds.
    pub bind: String,
    /// Base URL clients use to reach the listener (defaults to `http://<bind>`).
    pub public_url: Option<String>,
    /// `sqlite://...` or `postgres://...`; defaults to a SQLite file in the data directory.
    pub database_url: Option<String>,
    pub region: String,
    /// `text` or `json`.
    pub log_format: String,
    pub log_level: String,
    /// An oslo.policy-style policy.yaml whose rules override the defaults.
    pub policy_file: Option<PathBuf>,
    /// Also merge our clouds into the user's `~/.config/openstack/clouds.yaml`.
    pub write_user_clouds_yaml: bool,
    pub admin: AdminConfig,
    pub demo: DemoConfig,
    pub identity: IdentityConfig,
    pub image: ferrostack_image::ImageConfig,
    pub compute: ferrostack_compute::ComputeConfig,
    pub compute_agent: ComputeAgentConfig,
    /// The Networking service (`[network]`): backend, MTUs, segment ranges, quotas.
    pub network: ferrostack_network::NetworkConfig,
}

/// The compute agent this process runs (`up` runs one; `control` runs none;
/// `compute-agent` is one alone, reaching the control plane over HTTP).
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComputeAgentConfig {
    pub enabled: bool,
    /// `qemu` (real VMs) or `fake` (records in memory, for scale and workflow tests).
    pub driver: String,
    /// `kvm` or `tcg`; default: KVM where it can boot guests, else TCG.
    pub accel: Option<String>,
    /// The host's name (default: the machine's hostname).
    pub host: Option<String>,
    pub reserved_host_memory_mb: i64,
    pub cpu_allocation_ratio: f64,
    pub ram_allocation_ratio: f64,
    pub disk_allocation_ratio: f64,
    /// Seconds between heartbeats and power-state syncs.
    pub sync_interval: u64,
    /// `ferrostack compute-agent` only: the control plane's URL (its `public_url`).
    pub control_url: Option<String>,
    /// `ferrostack compute-agent` only: the address its host API listens on.
    pub listen: String,
    /// `ferrostack compute-agent` only: the URL the control plane reaches it at (default:
    /// `http://<listen>`, which must then not be a wildcard address).
    pub advertise_url: Option<String>,
    /// `ferrostack compute-agent` only: the secret it and the control plane share (the
    /// control plane's `[compute] agent_secret`).
    pub secret: Option<String>,
    /// The Open vSwitch bridge where VMs' NICs are plugged (ovn-controller's `ovn-bridge`).
    pub integration_bridge: String,
    /// The Open vSwitch database (`unix:<run dir>/db.sock`); without it servers can have no
    /// NICs on this host.
    pub ovs_db: Option<String>,
    /// What the fake driver reports as the host's size.
    pub fake_vcpus: u32,
    pub fake_memory_mb: u64,
    pub fake_disk_gb: u64,
}

/// Everything but the secret, which must not reach a log.
impl std::fmt::Debug for ComputeAgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComputeAgentConfig")
            .field("enabled", &self.enabled)
            .field("driver", &self.driver)
            .field("accel", &self.accel)
            .field("host", &self.host)
            .field("control_url", &self.control_url)
            .field("listen", &self.listen)
            .field("advertise_url", &self.advertise_url)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl Default for ComputeAgentConfig {
    fn default() -> Self {
        let a = ferrostack_agent::AgentConfig::default();
        ComputeAgentConfig {
            enabled: true,
            driver: "qemu".into(),
            accel: None,
            host: None,
            reserved_host_memory_mb: a.reserved_host_memory_mb,
            cpu_allocation_ratio: a.cpu_allocation_ratio,
            ram_allocation_ratio: a.ram_allocation_ratio,
            disk_allocation_ratio: a.disk_allocation_ratio,
            sync_interval: a.sync_interval,
            control_url: None,
            listen: "127.0.0.1:5100".into(),
            advertise_url: None,
            secret: None,
            integration_bridge: a.integration_bridge.clone(),
            ovs_db: None,
            fake_vcpus: 1000,
            fake_memory_mb: 1 << 22,
            fake_disk_gb: 1 << 16,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    pub user: String,
    /// When unset, `up` generates one, stores it in the data directory and prints it once.
    pub password: Option<String>,
    pub project: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    pub enabled: bool,
    pub user: String,
    pub password: Option<String>,
    pub project: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: default_data_dir(),
            bind: "127.0.0.1:5000".into(),
            public_url: None,
            database_url: None,
            region: "RegionOne".into(),
            log_format: "text".into(),
            log_level: "info".into(),
            policy_file: None,
            write_user_clouds_yaml: true,
            admin: AdminConfig::default(),
            demo: DemoConfig::default(),
            identity: IdentityConfig::default(),
            image: ferrostack_image::ImageConfig::default(),
            compute: ferrostack_compute::ComputeConfig::default(),
            compute_agent: ComputeAgentConfig::default(),
            // Real networking by default: `up` starts its own OVN (see ovn.rs).
            network: ferrostack_network::NetworkConfig {
                backend: "ovn".into(),
                ..Default::default()
            },
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            user: "admin".into(),
            password: None,
            project: "admin".into(),
        }
    }
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            enabled: true,
            user: "demo".into(),
            password: None,
            project: "demo".into(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("ferrostack");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/ferrostack"),
        None => PathBuf::from("ferrostack-data"),
    }
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "data_dir",
    "bind",
    "public_url",
    "database_url",
    "region",
    "log_format",
    "log_level",
    "policy_file",
    "write_user_clouds_yaml",
    "admin",
    "demo",
    "identity",
    "image",
    "compute",
    "compute_agent",
    "network",
];

impl Config {
    /// Reads the file (if any) and applies environment overrides.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                text.parse::<toml::Table>()
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => toml::Table::new(),
        };
        for (name, value) in std::env::vars() {
            let Some(rest) = name.strip_prefix("FERROSTACK_") else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
            if !TOP_LEVEL_KEYS.contains(&path[0].as_str()) {
                continue;
            }
            set_path(&mut table, &path, parse_value(&value));
        }
        // The documented shortcut for the admin password.
        if let Ok(pw) = std::env::var("FERROSTACK_ADMIN_PASSWORD") {
            set_path(
                &mut table,
                &["admin".into(), "password".into()],
                toml::Value::String(pw),
            );
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .context("invalid configuration")?;
        Ok(config)
    }

    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => {
                let bind = self
                    .bind
                    .replace("0.0.0.0", "127.0.0.1")
                    .replace("[::]", "[::1]");
                format!("http://{bind}")
            }
        }
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!("sqlite://{}", self.data_dir.join("ferrostack.db").display())
        })
    }
}

fn parse_value(text: &str) -> toml::Value {
    match format!("v = {text}").parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(text.into())),
        Err(_) => toml::Value::String(text.into()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    if path.len() == 1 {
        table.insert(path[0].clone(), value);
        return;
    }
    let entry = table
        .entry(path[0].clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if !entry.is_table() {
        *entry = toml::Value::Table(toml::Table::new());
    }
    if let toml::Value::Table(t) = entry {
        set_path(t, &path[1..], value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env() {
        let dir = std::env::temp_dir().join(format!("fs-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "bind = \"127.0.0.1:9\"\n[identity]\ntoken_expiration = 60\n",
        )
        .unwrap();
        let c = Config::load(Some(&file)).unwrap();
        assert_eq!(c.bind, "127.0.0.1:9");
        assert_eq!(c.identity.token_expiration, 60);
        assert_eq!(c.public_url(), "http://127.0.0.1:9");
        assert_eq!(parse_value("3"), toml::Value::Integer(3));
        assert_eq!(parse_value("abc"), toml::Value::String("abc".into()));
        let mut t = toml::Table::new();
        set_path(
            &mut t,
            &[
                "identity".into(),
                "security_compliance".into(),
                "lockout_duration".into(),
            ],
            toml::Value::Integer(5),
        );
        let c: Config = toml::Value::Table(t).try_into().unwrap();
        assert_eq!(c.identity.security_compliance.lockout_duration, Some(5));
        std::fs::write(&file, "nonsense_key = 1\n").unwrap();
        assert!(Config::load(Some(&file)).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn network_section() {
        let c: Config =
            "[network]\nbackend = \"ovn\"\noverlay_mtu = 1400\n[network.quota]\nport = 7\n"
                .parse::<toml::Table>()
                .map(toml::Value::Table)
                .unwrap()
                .try_into()
                .unwrap();
        assert_eq!(c.network.backend, "ovn");
        assert_eq!(c.network.overlay_mtu, 1400);
        assert_eq!(c.network.quota.port, 7);
        assert_eq!(c.network.quota.network, 100);
        // FERROSTACK_NETWORK__... variables reach the section.
        assert!(TOP_LEVEL_KEYS.contains(&"network"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = rt
            .block_on(crate::server::network_backend(&c))
            .err()
            .expect("OVN without a Northbound database");
        assert!(e.to_string().contains("ovn_nb_connection"), "{e}");
        let mut fake = Config::default();
        assert_eq!(fake.network.backend, "ovn");
        fake.network.backend = "fake".into();
        assert_eq!(
            rt.block_on(crate::server::network_backend(&fake))
                .unwrap()
                .0
                .name(),
            "fake"
        );
    }
}
