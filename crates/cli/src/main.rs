//! `ferrostack`: the one binary of the cloud. Wiring only: configuration, logging, and which
//! services run in this process.
//!
//! - `up`: the all-in-one cloud on the embedded database, bootstrapped and ready for the
//!   `openstack` CLI (writes clouds.yaml).
//! - `control`: the API services against a shared database URL (multi-node).
//! - `db migrate`: apply schema migrations.
//! - `admin bootstrap | fernet-setup | fernet-rotate`: operator tasks.

mod clouds;
mod config;
mod ovn;
mod seed_networks;
mod server;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferrostack_identity::fernet::KeyRepository;
use ferrostack_identity::service::bootstrap::{BootstrapSpec, ProjectMember};

use crate::config::Config;

#[derive(Parser)]
#[command(
    name = "ferrostack",
    version,
    about = "An OpenStack-compatible cloud in one binary"
)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "FERROSTACK_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (database, keys, generated files).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Address to listen on, e.g. 0.0.0.0:5000.
    #[arg(long, global = true)]
    bind: Option<String>,
    /// Database URL (sqlite://... or postgres://...).
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the all-in-one cloud on the embedded database.
    Up {
        /// Do not touch ~/.config/openstack/clouds.yaml (the data directory still gets one).
        #[arg(long)]
        no_user_clouds_yaml: bool,
        /// Register an image file as a public image at start, `NAME=PATH` or `PATH`
        /// (repeatable; the format is read from the file; registered once).
        #[arg(long = "register-image", value_name = "NAME=PATH")]
        register_images: Vec<String>,
    },
    /// Run the API services against a shared database (multi-node control plane).
    Control,
    /// Run a compute host alone: its VMs, registered with a control plane over HTTP
    /// (`[compute_agent] control_url`, `secret`, `listen`).
    ComputeAgent,
    /// Database maintenance.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Operator tasks.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Apply every pending schema migration.
    Migrate,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create the Default domain, roles, admin user and project, and the catalog.
    Bootstrap {
        /// Admin password (or FERROSTACK_ADMIN_PASSWORD / [admin] password).
        #[arg(long)]
        password: Option<String>,
    },
    /// Create the Fernet key repository if it is missing.
    FernetSetup,
    /// Rotate the Fernet keys (running servers pick them up on restart).
    FernetRotate,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(d) = cli.data_dir {
        config.data_dir = d;
    }
    if let Some(b) = cli.bind {
        config.bind = b;
    }
    if let Some(u) = cli.database_url {
        config.database_url = Some(u);
    }
    init_logging(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli.command, config))
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{},sqlx=warn", config.log_level))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(command: Command, mut config: Config) -> anyhow::Result<()> {
    match command {
        Command::Up {
            no_user_clouds_yaml,
            register_images,
        } => {
            if no_user_clouds_yaml {
                config.write_user_clouds_yaml = false;
            }
            up(config, register_images).await
        }
        Command::Control => {
            if config.database_url.is_none() {
                anyhow::bail!("`ferrostack control` needs a shared database: pass --database-url or set database_url");
            }
            std::fs::create_dir_all(&config.data_dir)?;
            let services = server::open_services(&config).await?;
            services.compute.resume().await?;
            println!(
                "ferrostack control plane listening on {} (identity at {}{})",
                config.bind,
                config.public_url(),
                server::IDENTITY_PREFIX
            );
            let listener = tokio::net::TcpListener::bind(&config.bind)
                .await
                .with_context(|| format!("binding {}", config.bind))?;
            server::serve(listener, server::app(&services)).await
        }
        Command::ComputeAgent => compute_agent(config).await,
        Command::Db {
            command: DbCommand::Migrate,
        } => {
            std::fs::create_dir_all(&config.data_dir)?;
            let db = ferrostack_db::Db::connect(&config.database_url()).await?;
            let n = db
                .migrate("identity", ferrostack_identity::migrations::MIGRATIONS)
                .await?;
            println!(
                "applied {n} migration(s) to {}",
                server::redact(&config.database_url())
            );
            Ok(())
        }
        Command::Admin { command } => admin(command, config).await,
    }
}

/// `ferrostack compute-agent`: this host's VMs, driven by a control plane elsewhere.
async fn compute_agent(config: Config) -> anyhow::Result<()> {
    let c = &config.compute_agent;
    let control_url = c
        .control_url
        .clone()
        .context("set the control plane's URL: [compute_agent] control_url or FERROSTACK_COMPUTE_AGENT__CONTROL_URL")?;
    let secret = c
        .secret
        .clone()
        .filter(|s| !s.is_empty())
        .context("set the secret shared with the control plane: [compute_agent] secret or FERROSTACK_COMPUTE_AGENT__SECRET")?;
    std::fs::create_dir_all(&config.data_dir)?;
    let listener = tokio::net::TcpListener::bind(&c.listen)
        .await
        .with_context(|| format!("binding {}", c.listen))?;
    let local = listener.local_addr()?;
    let advertise = match &c.advertise_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None if local.ip().is_unspecified() => anyhow::bail!(
            "listening on {local}: set [compute_agent] advertise_url to the address the control plane reaches this host at"
        ),
        None => format!("http://{local}"),
    };
    let hv = server::hypervisor(&config)?;
    let control = std::sync::Arc::new(ferrostack_compute::host_http::HttpControlPlane::new(
        &control_url,
        &secret,
    ));
    let agent = ferrostack_agent::Agent::new(
        server::agent_config(&config, &control_url),
        hv.clone(),
        control,
    );
    // The host API serves before registering: the control plane may call at once.
    let app = ferrostack_compute::host_http::agent_router(agent.clone(), secret);
    let serving = tokio::spawn(server::serve(listener, app));
    // The control plane may start after its hosts: keep trying.
    let mut wait = std::time::Duration::from_millis(200);
    loop {
        match agent.start(Some(&advertise)).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, control = %control_url, "registration failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(10));
            }
        }
    }
    println!(
        "ferrostack compute agent up: {} at {advertise}, control plane {control_url}",
        server::host_summary(&agent.config.host, hv.as_ref())
    );
    serving.await?
}

async fn admin(command: AdminCommand, config: Config) -> anyhow::Result<()> {
    let keys = KeyRepository::new(
        config.data_dir.join("fernet-keys"),
        config.identity.max_active_keys,
    );
    match command {
        AdminCommand::FernetSetup => {
            keys.setup()?;
            println!(
                "fernet keys ready in {}",
                config.data_dir.join("fernet-keys").display()
            );
        }
        AdminCommand::FernetRotate => {
            keys.setup()?;
            keys.rotate()?;
            println!("fernet keys rotated; running servers load them within 5 seconds");
        }
        AdminCommand::Bootstrap { password } => {
            std::fs::create_dir_all(&config.data_dir)?;
            let password = password
                .or(config.admin.password.clone())
                .context("give the admin password with --password or FERROSTACK_ADMIN_PASSWORD")?;
            let services = server::open_services(&config).await?;
            services
                .identity
                .bootstrap(&bootstrap_spec(&config, password))
                .await?;
            println!(
                "bootstrapped: user {} on project {} in domain Default",
                config.admin.user, config.admin.project
            );
        }
    }
    Ok(())
}

fn bootstrap_spec(config: &Config, password: String) -> BootstrapSpec {
    BootstrapSpec {
        admin_user: config.admin.user.clone(),
        admin_password: password,
        admin_project: config.admin.project.clone(),
        region: config.region.clone(),
        services: server::catalog(config),
    }
}

/// A password from the config, else the one saved in `file` by an earlier run, else a new one
/// saved there (0600). The flag says whether it was generated now (so it is printed once).
fn password_for(configured: Option<String>, file: &Path) -> anyhow::Result<(String, bool)> {
    if let Some(p) = configured {
        return Ok((p, false));
    }
    if let Ok(p) = std::fs::read_to_string(file) {
        if !p.trim().is_empty() {
            return Ok((p.trim().to_string(), false));
        }
    }
    use rand::Rng;
    let p: String = rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(20)
        .map(char::from)
        .collect();
    std::fs::write(file, &p).with_context(|| format!("writing {}", file.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok((p, true))
}

async fn up(mut config: Config, register_images: Vec<String>) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let started = std::time::Instant::now();
    let managed_ovn =
        if config.network.backend == "ovn" && config.network.ovn_nb_connection.is_empty() {
            // No OVN named: this host runs its own (see ovn.rs), its chassis named as the
            // compute host so ports bound to this host are bound to this chassis.
            let host = config
                .compute_agent
                .host
                .clone()
                .unwrap_or_else(ferrostack_agent::hostname);
            let ovn = ovn::ManagedOvn::start(&config.data_dir.join("ovn"), &host)?;
            config.network.ovn_nb_connection = ovn.northbound();
            config.network.ovn_sb_connection = ovn.southbound();
            if config.compute_agent.ovs_db.is_none() {
                config.compute_agent.ovs_db = Some(ovn.ovs_db());
            }
            Some(ovn)
        } else {
            None
        };
    // The metadata proxies of this host sign guests' requests with it; kept in the data
    // directory, as the admin password, so a restart keeps serving running guests.
    let (metadata_secret, _) = password_for(
        config
            .compute
            .metadata_proxy_shared_secret
            .clone()
            .filter(|s| !s.is_empty()),
        &config.data_dir.join("metadata-secret"),
    )?;
    config.compute.metadata_proxy_shared_secret = Some(metadata_secret);
    let services = server::open_services(&config).await?;
    let (admin_password, admin_new) = password_for(
        config.admin.password.clone(),
        &config.data_dir.join("admin-password"),
    )?;
    services
        .identity
        .bootstrap(&bootstrap_spec(&config, admin_password.clone()))
        .await?;
    let auth_url = format!("{}{}/v3", config.public_url(), server::IDENTITY_PREFIX);
    let mut clouds = vec![clouds::CloudEntry {
        name: "ferrostack-admin",
        auth_url: &auth_url,
        user: &config.admin.user,
        password: &admin_password,
        project: &config.admin.project,
        region: &config.region,
    }];
    let demo_password;
    if config.demo.enabled {
        demo_password = password_for(
            config.demo.password.clone(),
            &config.data_dir.join("demo-password"),
        )?
        .0;
        services
            .identity
            .ensure_member(&ProjectMember {
                user: &config.demo.user,
                password: &demo_password,
                project: &config.demo.project,
                role: "member",
            })
            .await?;
        clouds.push(clouds::CloudEntry {
            name: "ferrostack",
            auth_url: &auth_url,
            user: &config.demo.user,
            password: &demo_password,
            project: &config.demo.project,
            region: &config.region,
        });
    }
    let mut registered = Vec::new();
    for spec in &register_images {
        registered.push(register_image(&services, &config, spec).await?);
    }
    seed_flavors(&services).await?;
    let seeded_networks = if config.demo.enabled {
        seed_networks::seed(&services, &config).await?
    } else {
        Vec::new()
    };
    let compute_host = server::start_compute(&config, &services).await?;
    let clouds_file = config.data_dir.join("clouds.yaml");
    clouds::write(&clouds_file, &clouds)?;
    let mut user_clouds = None;
    if config.write_user_clouds_yaml {
        if let Some(home) = std::env::var_os("HOME") {
            let path = PathBuf::from(home).join(".config/openstack/clouds.yaml");
            match clouds::write(&path, &clouds) {
                Ok(()) => user_clouds = Some(path),
                Err(e) => tracing::warn!(error = %e, "could not update the user's clouds.yaml"),
            }
        }
    }
    let app = server::app(&services);
    let listener = tokio::net::TcpListener::bind(&config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    println!(
        "ferrostack is up ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    println!("  identity   {auth_url}");
    println!(
        "  image      {}{}",
        config.public_url(),
        server::IMAGE_PREFIX
    );
    println!(
        "  placement  {}{}",
        config.public_url(),
        server::PLACEMENT_PREFIX
    );
    println!(
        "  compute    {}{}/v2.1{}",
        config.public_url(),
        server::COMPUTE_PREFIX,
        compute_host.map(|h| format!("   {h}")).unwrap_or_default()
    );
    println!(
        "  network    {}{}   backend {}",
        config.public_url(),
        server::NETWORK_PREFIX,
        config.network.backend
    );
    if let Some(ovn) = &managed_ovn {
        println!("  ovn        {}   ({})", ovn.dir.display(), ovn.env_hint());
    }
    for n in &seeded_networks {
        println!("  network    created {n}");
    }
    println!(
        "  health     {}/healthcheck   metrics {}/metrics",
        config.public_url(),
        config.public_url()
    );
    println!("  data       {}", config.data_dir.display());
    if admin_new {
        println!(
            "  admin password (shown once, also in {}): {admin_password}",
            config.data_dir.join("admin-password").display()
        );
    }
    println!(
        "  clouds.yaml: {}{}",
        clouds_file.display(),
        user_clouds
            .map(|p| format!(" and {}", p.display()))
            .unwrap_or_default()
    );
    for line in &registered {
        println!("  image      {line}");
    }
    println!("next: openstack --os-cloud ferrostack-admin token issue");
    println!(
        "      export OS_CLIENT_CONFIG_FILE={} if your clouds.yaml lives elsewhere",
        clouds_file.display()
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    server::serve(listener, app).await
}

/// The flavors a new cloud starts with (devstack's, with its two small test flavors that
/// fit the project's guest image), created once: an operator may change or delete them.
async fn seed_flavors(services: &server::Services) -> anyhow::Result<()> {
    let marker = "flavors-seeded";
    let compute = &services.compute;
    let seeded = ferrostack_db::sqlx::query("SELECT 1 FROM compute_counters WHERE name = $1")
        .bind(marker)
        .fetch_optional(compute.db.pool())
        .await?
        .is_some();
    if seeded {
        return Ok(());
    }
    for (id, name, ram, vcpus, disk) in [
        ("42", "m1.nano", 128, 1, 1),
        ("84", "m1.micro", 192, 1, 1),
        ("1", "m1.tiny", 512, 1, 1),
        ("2", "m1.small", 2048, 1, 20),
        ("3", "m1.medium", 4096, 2, 40),
        ("4", "m1.large", 8192, 4, 80),
    ] {
        let flavor = ferrostack_compute::model::Flavor {
            id: id.into(),
            name: name.into(),
            ram,
            vcpus,
            disk,
            ephemeral: 0,
            swap: 0,
            rxtx_factor: 1.0,
            is_public: true,
            disabled: false,
            description: None,
            extra_specs: Default::default(),
        };
        match compute.insert_flavor(&flavor).await {
            Ok(()) => {}
            Err(e) if e.status.as_u16() == 409 => {}
            Err(e) => anyhow::bail!("creating flavor {name}: {e}"),
        }
    }
    ferrostack_db::sqlx::query("INSERT INTO compute_counters (name, value) VALUES ($1, 1)")
        .bind(marker)
        .execute(compute.db.pool())
        .await?;
    Ok(())
}

/// Registers `NAME=PATH` (or `PATH`, named after the file) as a public image owned by the
/// admin project; the disk format is what the inspector reads from the file.
async fn register_image(
    services: &server::Services,
    config: &Config,
    spec: &str,
) -> anyhow::Result<String> {
    let (name, path) = match spec.split_once('=') {
        Some((n, p)) => (n.to_string(), PathBuf::from(p)),
        None => {
            let p = PathBuf::from(spec);
            (
                p.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| spec.to_string()),
                p,
            )
        }
    };
    let mut head = vec![0u8; ferrostack_image::inspector::HEADER_BYTES];
    let total = std::fs::metadata(&path)
        .with_context(|| format!("reading image {}", path.display()))?
        .len();
    let n = {
        use std::io::Read;
        std::fs::File::open(&path)?.read(&mut head)?
    };
    let format = ferrostack_image::inspector::detect(&head[..n], total)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        .format
        .name();
    let admin_project = services
        .identity
        .store
        .project_by_name("default", &config.admin.project)
        .await?
        .context("the admin project is missing; bootstrap first")?;
    let image = services
        .image
        .register_local(&ferrostack_image::service::bootstrap::LocalImage {
            name: &name,
            path: &path,
            disk_format: format,
            owner_project: &admin_project.id,
            properties: vec![],
        })
        .await
        .map_err(|e| anyhow::anyhow!("registering {}: {e}", path.display()))?;
    Ok(format!(
        "{name} ({format}, {} bytes, id {})",
        image.size.unwrap_or(0),
        image.id
    ))
}
