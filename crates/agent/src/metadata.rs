//! The guest metadata path on OVN, as networking-ovn's metadata agent builds it on each
//! compute host. Guests reach 169.254.169.254 through their network's metadata port (a
//! `localport` in OVN, `device_id` `ovnmeta-<network id>`; DHCP hands them the route
//! `169.254.169.254/32 via <its address>`). For every network with a guest on this host the
//! agent makes a namespace `ovnmeta-<network id>` with a veth pair: the inside end
//! (`tap<network id's first 10>1`) carries the metadata port's MAC, its addresses and
//! `169.254.169.254/32`; the outside end (`tap<...>0`) is plugged into the integration
//! bridge with `external_ids:iface-id=<metadata port id>`, so ovn-controller delivers the
//! port's traffic there. It is made (idempotently) before a guest's NICs are plugged and
//! removed when the last guest of the network leaves the host; at agent start the
//! namespaces of networks with no guest left are removed.
//!
//! Inside each namespace a proxy listens on 169.254.169.254:80 (the socket is opened by a
//! thread that entered the namespace, then served by tokio: it stays in the namespace, while
//! the proxy's own connections to the control plane leave from the host's). For each
//! request it finds the guest by (network, source address) among the guests this agent
//! runs, and forwards the request to the Compute metadata service (`<url>/<path>`, the API
//! listener's `/metadata` in `ferrostack up`, the control plane's for a remote agent) with
//! `X-Instance-ID`, `X-Tenant-ID`, `X-Forwarded-For` and `X-Instance-ID-Signature` (hex
//! HMAC-SHA256 of the server's id under the shared secret), answering the guest with what
//! it returns. An unknown source gets 404.
//!
//! What the proxy knows survives an agent restart: each guest's NICs are kept in
//! `<state dir>/metadata/guests/<server>.json` and each namespace this agent made in
//! `<state dir>/metadata/networks/<network>.json`; a start re-makes the namespaces (and
//! proxies) of networks with running guests and removes the others.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ferrostack_compute::host::{GuestNic, GuestSpec};
use ferrostack_compute::network::MetadataPort;
use serde::{Deserialize, Serialize};

/// The address guests ask.
pub const METADATA_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

const CMD_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest request body a guest may send (Nova takes POSTs of a password).
const MAX_BODY: usize = 1 << 20;

/// How the agent's metadata path is set up.
#[derive(Clone)]
pub struct MetadataConfig {
    /// The Compute metadata service (`http://127.0.0.1:8080/metadata`).
    pub url: String,
    /// `[compute] metadata_proxy_shared_secret` of the control plane.
    pub secret: String,
    /// The integration bridge and the Open vSwitch database (as `ovs-vsctl --db` takes it).
    pub bridge: String,
    pub ovs_db: String,
    /// The network namespace ovs-vswitchd runs in, when not this process's (a stack started
    /// with `scripts/ovn.sh --netns`): the outside ends of the veth pairs go there.
    pub ovs_netns: Option<String>,
    /// Where the records of guests and namespaces are kept.
    pub state_dir: PathBuf,
    /// The port the proxies listen on (80; tests may pick another).
    pub port: u16,
}

impl std::fmt::Debug for MetadataConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataConfig")
            .field("url", &self.url)
            .field("secret", &"***")
            .field("bridge", &self.bridge)
            .field("ovs_db", &self.ovs_db)
            .field("ovs_netns", &self.ovs_netns)
            .field("state_dir", &self.state_dir)
            .field("port", &self.port)
            .finish()
    }
}

/// The namespace of a network's metadata proxy.
pub fn namespace_name(network_id: &str) -> String {
    format!("ovnmeta-{network_id}")
}

/// The veth pair of a network's namespace: (outside end on the bridge, inside end), as
/// networking-ovn names them (`tap` + the network id's first 10 characters + 0 or 1).
pub fn veth_names(network_id: &str) -> (String, String) {
    let short: String = network_id.chars().take(10).collect();
    (format!("tap{short}0"), format!("tap{short}1"))
}

/// The server a request speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub instance_id: String,
    pub project_id: String,
}

/// Which guest has which address on which network, among this host's guests.
#[derive(Debug, Default)]
pub struct Lookup {
    by_addr: HashMap<(String, IpAddr), Requester>,
    guests: HashMap<String, GuestRecord>,
}

impl Lookup {
    /// Records (or replaces) a guest's NICs.
    pub fn insert(&mut self, guest: GuestRecord) {
        self.remove(&guest.uuid);
        for nic in &guest.nics {
            for ip in nic
                .fixed_ips
                .iter()
                .filter_map(|a| a.parse::<IpAddr>().ok())
            {
                self.by_addr.insert(
                    (nic.network_id.clone(), ip),
                    Requester {
                        instance_id: guest.uuid.clone(),
                        project_id: guest.project_id.clone(),
                    },
                );
            }
        }
        self.guests.insert(guest.uuid.clone(), guest);
    }

    /// Forgets a guest; answers its record, if it had one.
    pub fn remove(&mut self, uuid: &str) -> Option<GuestRecord> {
        let old = self.guests.remove(uuid)?;
        self.by_addr.retain(|_, r| r.instance_id != uuid);
        Some(old)
    }

    /// The guest that has `ip` on `network_id`.
    pub fn find(&self, network_id: &str, ip: IpAddr) -> Option<&Requester> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.by_addr.get(&(network_id.to_string(), ip))
    }

    /// The networks with at least one guest that has a metadata port.
    pub fn networks(&self) -> HashSet<String> {
        self.guests
            .values()
            .flat_map(|g| g.nics.iter())
            .filter(|n| n.metadata_port.is_some())
            .map(|n| n.network_id.clone())
            .collect()
    }

    pub fn guest(&self, uuid: &str) -> Option<&GuestRecord> {
        self.guests.get(uuid)
    }
}

/// What the proxy keeps of a guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestRecord {
    pub uuid: String,
    pub project_id: String,
    pub nics: Vec<GuestNic>,
}

impl GuestRecord {
    pub fn of(spec: &GuestSpec) -> GuestRecord {
        GuestRecord {
            uuid: spec.uuid.clone(),
            project_id: spec.project_id.clone(),
            nics: spec.nics.clone(),
        }
    }
}

/// A namespace this agent made, as kept on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct NetworkRecord {
    network_id: String,
    port: MetadataPort,
    #[serde(default)]
    mtu: Option<u32>,
}

/// The headers that tell the metadata service which server asks, signed with `secret`.
pub fn signed_headers(secret: &str, who: &Requester, source: IpAddr) -> Vec<(String, String)> {
    vec![
        ("X-Instance-ID".into(), who.instance_id.clone()),
        ("X-Tenant-ID".into(), who.project_id.clone()),
        ("X-Forwarded-For".into(), source.to_string()),
        (
            "X-Instance-ID-Signature".into(),
            ferrostack_compute::http::metadata_api::sign(secret, &who.instance_id),
        ),
    ]
}

/// One network's proxy: its task, ended when dropped.
struct Proxy {
    task: tokio::task::JoinHandle<()>,
    port: MetadataPort,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The shared state of the proxies.
struct Forwarder {
    config: MetadataConfig,
    client: reqwest::Client,
    lookup: RwLock<Lookup>,
}

pub struct MetadataAgent {
    shared: Arc<Forwarder>,
    /// The running proxies by network; the lock also serializes namespace changes.
    proxies: tokio::sync::Mutex<HashMap<String, Proxy>>,
}

impl MetadataAgent {
    pub fn new(config: MetadataConfig) -> Arc<MetadataAgent> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        Arc::new(MetadataAgent {
            shared: Arc::new(Forwarder {
                config,
                client,
                lookup: RwLock::new(Lookup::default()),
            }),
            proxies: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &MetadataConfig {
        &self.shared.config
    }

    fn guests_dir(&self) -> PathBuf {
        self.config().state_dir.join("guests")
    }

    fn networks_dir(&self) -> PathBuf {
        self.config().state_dir.join("networks")
    }

    /// The guest a proxy of `network_id` would answer for `ip`.
    pub fn find(&self, network_id: &str, ip: IpAddr) -> Option<Requester> {
        self.shared
            .lookup
            .read()
            .unwrap()
            .find(network_id, ip)
            .cloned()
    }

    /// The networks whose proxy runs now.
    pub async fn running(&self) -> Vec<String> {
        let mut v: Vec<String> = self.proxies.lock().await.keys().cloned().collect();
        v.sort();
        v
    }

    /// Before a guest's NICs are plugged: records its NICs and makes the namespace and
    /// proxy of each of its networks that has a metadata port. Idempotent.
    pub async fn guest_up(&self, spec: &GuestSpec) -> Result<(), String> {
        let record = GuestRecord::of(spec);
        write_json(&self.guests_dir(), &spec.uuid, &record)?;
        self.shared.lookup.write().unwrap().insert(record);
        let mut proxies = self.proxies.lock().await;
        let mut done = HashSet::new();
        for nic in &spec.nics {
            let Some(port) = &nic.metadata_port else {
                continue;
            };
            if done.insert(nic.network_id.clone()) {
                self.ensure_network(&mut proxies, &nic.network_id, port, nic.mtu)
                    .await?;
            }
        }
        Ok(())
    }

    /// After a guest's NICs changed (one detached): records its NICs now and removes the
    /// namespaces of networks no guest has any more.
    pub async fn guest_changed(&self, spec: &GuestSpec) -> Result<(), String> {
        let before = self.shared.lookup.read().unwrap().networks();
        self.guest_up(spec).await?;
        let mut proxies = self.proxies.lock().await;
        let still = self.shared.lookup.read().unwrap().networks();
        for network in before.difference(&still) {
            self.teardown(&mut proxies, network).await?;
        }
        Ok(())
    }

    /// After a guest left the host: forgets it and removes the namespaces of its networks
    /// that have no guest left. Fine for an unknown guest.
    pub async fn guest_gone(&self, uuid: &str) -> Result<(), String> {
        let mut proxies = self.proxies.lock().await;
        let (gone, still) = {
            let mut lookup = self.shared.lookup.write().unwrap();
            (lookup.remove(uuid), lookup.networks())
        };
        remove_json(&self.guests_dir(), uuid)?;
        if let Some(gone) = gone {
            for nic in &gone.nics {
                if nic.metadata_port.is_some() && !still.contains(&nic.network_id) {
                    self.teardown(&mut proxies, &nic.network_id).await?;
                }
            }
        }
        Ok(())
    }

    /// At agent start: takes back the records of the guests in `running` (the hypervisor's
    /// VMs), drops the others, re-makes the namespaces and proxies of networks with guests
    /// and removes those this agent made for networks with none.
    pub async fn restore(&self, running: &[String]) -> Result<(), String> {
        let alive: HashSet<&str> = running.iter().map(String::as_str).collect();
        for (name, record) in read_all::<GuestRecord>(&self.guests_dir()) {
            if alive.contains(record.uuid.as_str()) && name == record.uuid {
                self.shared.lookup.write().unwrap().insert(record);
            } else {
                remove_json(&self.guests_dir(), &name)?;
            }
        }
        let wanted = self.shared.lookup.read().unwrap().networks();
        let mut proxies = self.proxies.lock().await;
        // Namespaces made before, for networks without guests now.
        for (name, record) in read_all::<NetworkRecord>(&self.networks_dir()) {
            if !wanted.contains(&record.network_id) {
                self.teardown(&mut proxies, &record.network_id).await?;
                remove_json(&self.networks_dir(), &name)?;
            }
        }
        let mut nets: Vec<(String, MetadataPort, Option<u32>)> = Vec::new();
        {
            let lookup = self.shared.lookup.read().unwrap();
            for g in lookup.guests.values() {
                for n in &g.nics {
                    if let Some(p) = &n.metadata_port {
                        if !nets.iter().any(|(id, _, _)| id == &n.network_id) {
                            nets.push((n.network_id.clone(), p.clone(), n.mtu));
                        }
                    }
                }
            }
        }
        for (net, port, mtu) in nets {
            proxies.remove(&net);
            self.ensure_network(&mut proxies, &net, &port, mtu).await?;
        }
        Ok(())
    }

    /// Makes the namespace of `network_id` (when missing or changed) and starts its proxy.
    async fn ensure_network(
        &self,
        proxies: &mut HashMap<String, Proxy>,
        network_id: &str,
        port: &MetadataPort,
        mtu: Option<u32>,
    ) -> Result<(), String> {
        let ns = namespace_name(network_id);
        if let Some(p) = proxies.get(network_id) {
            if &p.port == port && !p.task.is_finished() && netns_exists(&ns) {
                return Ok(());
            }
        }
        proxies.remove(network_id);
        write_json(
            &self.networks_dir(),
            network_id,
            &NetworkRecord {
                network_id: network_id.to_string(),
                port: port.clone(),
                mtu,
            },
        )?;
        let t0 = std::time::Instant::now();
        self.provision(network_id, port, mtu).await?;
        let addr = SocketAddr::from((METADATA_IP, self.config().port));
        let listener = bind_in_netns(&ns, addr)
            .map_err(|e| format!("listening on {addr} in namespace {ns}: {e}"))?;
        let task = tokio::spawn(serve(self.shared.clone(), network_id.to_string(), listener));
        tracing::info!(network = %network_id, namespace = %ns, port = %port.id,
            elapsed_ms = t0.elapsed().as_millis() as u64, "metadata proxy up");
        proxies.insert(
            network_id.to_string(),
            Proxy {
                task,
                port: port.clone(),
            },
        );
        Ok(())
    }

    /// The namespace, the veth pair with the metadata port's MAC and addresses, the outside
    /// end on the integration bridge. Each step leaves what is already there.
    async fn provision(
        &self,
        network_id: &str,
        port: &MetadataPort,
        mtu: Option<u32>,
    ) -> Result<(), String> {
        let c = self.config();
        let ns = namespace_name(network_id);
        let (outer, inner) = veth_names(network_id);
        let host = c.ovs_netns.as_deref();
        if !netns_exists(&ns) {
            if let Err(e) = ip(None, &["netns", "add", &ns]).await {
                if !netns_exists(&ns) {
                    return Err(e);
                }
            }
        }
        if !link_exists(host, &outer).await {
            // A half-made pair (the inside end alone) is made again.
            let _ = ip(Some(&ns), &["link", "del", "dev", &inner]).await;
            ip(
                host,
                &[
                    "link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns", &ns,
                ],
            )
            .await?;
        }
        ip(Some(&ns), &["link", "set", "dev", "lo", "up"]).await?;
        ip(
            Some(&ns),
            &["link", "set", "dev", &inner, "address", &port.mac],
        )
        .await?;
        let mut wanted: Vec<String> = port.ips.clone();
        wanted.push(format!("{METADATA_IP}/32"));
        // Addresses the port no longer has go.
        let shown = ip(Some(&ns), &["-o", "addr", "show", "dev", &inner]).await?;
        for have in shown.lines().filter_map(|l| {
            let mut w = l.split_whitespace();
            w.position(|x| x == "inet" || x == "inet6")?;
            w.next().map(str::to_string)
        }) {
            if !have.starts_with("fe80:") && !wanted.contains(&have) {
                ip(Some(&ns), &["addr", "del", &have, "dev", &inner]).await?;
            }
        }
        for cidr in &wanted {
            ip(Some(&ns), &["addr", "replace", cidr, "dev", &inner]).await?;
        }
        let mtu = mtu.map(|m| m.to_string());
        for (where_, dev) in [(Some(ns.as_str()), &inner), (host, &outer)] {
            let mut args = vec!["link", "set", "dev", dev.as_str(), "up"];
            if let Some(m) = &mtu {
                args.extend(["mtu", m.as_str()]);
            }
            ip(where_, &args).await?;
        }
        // The userspace datapath forwards checksum-offloaded packets unfixed (see the taps).
        let _ = run(
            "ip",
            &["netns", "exec", &ns, "ethtool", "-K", &inner, "tx", "off"],
        )
        .await;
        let iface_id = format!("external_ids:iface-id={}", port.id);
        vsctl(
            c,
            &[
                "--may-exist",
                "add-port",
                &c.bridge,
                &outer,
                "--",
                "set",
                "Interface",
                &outer,
                &iface_id,
            ],
        )
        .await?;
        Ok(())
    }

    /// Stops the proxy and removes the namespace, the veth pair and the bridge port of
    /// `network_id`; fine when they are gone.
    async fn teardown(
        &self,
        proxies: &mut HashMap<String, Proxy>,
        network_id: &str,
    ) -> Result<(), String> {
        proxies.remove(network_id);
        let c = self.config();
        let ns = namespace_name(network_id);
        let (outer, _) = veth_names(network_id);
        vsctl(c, &["--if-exists", "del-port", &c.bridge, &outer]).await?;
        let host = c.ovs_netns.as_deref();
        if link_exists(host, &outer).await {
            if let Err(e) = ip(host, &["link", "del", "dev", &outer]).await {
                if link_exists(host, &outer).await {
                    return Err(e);
                }
            }
        }
        if netns_exists(&ns) {
            if let Err(e) = ip(None, &["netns", "del", &ns]).await {
                if netns_exists(&ns) {
                    return Err(e);
                }
            }
        }
        remove_json(&self.networks_dir(), network_id)?;
        tracing::info!(network = %network_id, namespace = %ns, "metadata proxy removed");
        Ok(())
    }
}

/// Serves one network's proxy on `listener` until the task is aborted.
async fn serve(shared: Arc<Forwarder>, network_id: String, listener: tokio::net::TcpListener) {
    let app = axum::Router::new()
        .fallback(forward)
        .with_state((shared, Arc::new(network_id.clone())));
    let svc = app.into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, svc).await {
        tracing::warn!(network = %network_id, error = %e, "metadata proxy stopped");
    }
}

fn plain(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        format!("{body}\n"),
    )
        .into_response()
}

/// One guest request: who asks, then the metadata service's answer.
async fn forward(
    State((shared, network_id)): State<(Arc<Forwarder>, Arc<String>)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let source = peer.ip();
    let who = shared
        .lookup
        .read()
        .unwrap()
        .find(&network_id, source)
        .cloned();
    let Some(who) = who else {
        tracing::warn!(network = %network_id, source = %source, "metadata request from an unknown address");
        return plain(StatusCode::NOT_FOUND, "404 Not Found");
    };
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let url = format!("{}{}", shared.config.url.trim_end_matches('/'), path);
    let method = req.method().clone();
    let mut out = shared.client.request(method, &url);
    for h in [header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(v) = req.headers().get(&h) {
            out = out.header(h, v);
        }
    }
    for (k, v) in signed_headers(&shared.config.secret, &who, source) {
        out = out.header(k, v);
    }
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large."),
    };
    let answer = match out.body(body).send().await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(network = %network_id, server = %who.instance_id, error = %e, "metadata service unreachable");
            return plain(
                StatusCode::BAD_GATEWAY,
                "The metadata service could not be reached.",
            );
        }
    };
    let status = answer.status();
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    match answer.bytes().await {
        Ok(bytes) => {
            let mut resp = (status, bytes).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                content_type.unwrap_or(HeaderValue::from_static("text/plain")),
            );
            resp
        }
        Err(e) => {
            tracing::warn!(network = %network_id, error = %e, "reading the metadata service's answer");
            plain(
                StatusCode::BAD_GATEWAY,
                "The metadata service's answer broke off.",
            )
        }
    }
}

/// A listening socket in namespace `ns`: a thread enters the namespace, opens it and ends
/// (only that thread changed namespace); the socket stays in the namespace.
pub fn bind_in_netns(ns: &str, addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let path = Path::new("/run/netns").join(ns);
    let std_listener = std::thread::spawn(move || -> std::io::Result<std::net::TcpListener> {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(&path)?;
        // SAFETY: setns on a valid open namespace file; it changes this thread only.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let l = std::net::TcpListener::bind(addr)?;
        l.set_nonblocking(true)?;
        Ok(l)
    })
    .join()
    .map_err(|_| std::io::Error::other("the namespace thread panicked"))??;
    tokio::net::TcpListener::from_std(std_listener)
}

fn netns_exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

async fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = tokio::time::timeout(
        CMD_TIMEOUT,
        tokio::process::Command::new(program)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| format!("{program} {} timed out", args.join(" ")))?
    .map_err(|e| format!("running {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip`, in namespace `ns` when given.
async fn ip(ns: Option<&str>, args: &[&str]) -> Result<String, String> {
    let mut all = Vec::new();
    if let Some(ns) = ns {
        all.extend(["-n", ns]);
    }
    all.extend_from_slice(args);
    run("ip", &all).await
}

async fn link_exists(ns: Option<&str>, dev: &str) -> bool {
    ip(ns, &["link", "show", "dev", dev]).await.is_ok()
}

async fn vsctl(c: &MetadataConfig, args: &[&str]) -> Result<String, String> {
    let db = format!("--db={}", c.ovs_db);
    let timeout = format!("--timeout={}", CMD_TIMEOUT.as_secs());
    let mut all = vec![db.as_str(), timeout.as_str()];
    all.extend_from_slice(args);
    run("ovs-vsctl", &all).await
}

fn write_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("{name}.json"));
    let tmp = dir.join(format!(".{name}.json.tmp"));
    let json = serde_json::to_vec(value).map_err(|e| e.to_string())?;
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn remove_json(dir: &Path, name: &str) -> Result<(), String> {
    let path = dir.join(format!("{name}.json"));
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Every record in `dir` that parses, with its file's name (without `.json`).
fn read_all<T: for<'de> Deserialize<'de>>(dir: &Path) -> Vec<(String, T)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        if stem.starts_with('.') {
            continue;
        }
        match std::fs::read(e.path())
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(v) => out.push((stem.to_string(), v)),
            Err(err) => {
                tracing::warn!(file = %e.path().display(), error = %err, "unreadable metadata record")
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(net: &str, ips: &[&str], meta: bool) -> GuestNic {
        GuestNic {
            port_id: format!("port-{net}"),
            mac: "fa:16:3e:00:00:01".into(),
            mtu: Some(1442),
            network_id: net.into(),
            fixed_ips: ips.iter().map(|s| s.to_string()).collect(),
            metadata_port: meta.then(|| MetadataPort {
                id: format!("meta-{net}"),
                mac: "fa:16:3e:00:00:02".into(),
                ips: vec!["10.0.0.2/24".into()],
            }),
        }
    }

    fn guest(uuid: &str, nics: Vec<GuestNic>) -> GuestRecord {
        GuestRecord {
            uuid: uuid.into(),
            project_id: format!("project-of-{uuid}"),
            nics,
        }
    }

    #[test]
    fn finds_the_guest_by_network_and_address() {
        let mut l = Lookup::default();
        l.insert(guest(
            "vm-a",
            vec![
                nic("net-1", &["10.0.0.5"], true),
                nic("net-2", &["192.168.1.5", "fd00::5"], false),
            ],
        ));
        // The same address on another network is another guest (overlapping subnets).
        l.insert(guest("vm-b", vec![nic("net-3", &["10.0.0.5"], true)]));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a = l.find("net-1", ip("10.0.0.5")).unwrap();
        assert_eq!(a.instance_id, "vm-a");
        assert_eq!(a.project_id, "project-of-vm-a");
        assert_eq!(l.find("net-3", ip("10.0.0.5")).unwrap().instance_id, "vm-b");
        assert_eq!(l.find("net-2", ip("fd00::5")).unwrap().instance_id, "vm-a");
        // An IPv4 peer seen on a dual-stack socket.
        assert_eq!(
            l.find("net-1", ip("::ffff:10.0.0.5")).unwrap().instance_id,
            "vm-a"
        );
        assert!(l.find("net-1", ip("10.0.0.6")).is_none());
        assert!(l.find("net-2", ip("10.0.0.5")).is_none());
        // Only networks with a metadata port get a proxy.
        let nets = l.networks();
        assert!(nets.contains("net-1") && nets.contains("net-3") && !nets.contains("net-2"));

        // A guest ensured again with other NICs replaces its old addresses.
        l.insert(guest("vm-a", vec![nic("net-1", &["10.0.0.7"], true)]));
        assert!(l.find("net-1", ip("10.0.0.5")).is_none());
        assert_eq!(l.find("net-1", ip("10.0.0.7")).unwrap().instance_id, "vm-a");
        assert!(l.remove("vm-a").is_some());
        assert!(l.find("net-1", ip("10.0.0.7")).is_none());
        assert!(l.remove("vm-a").is_none());
        assert_eq!(l.networks(), HashSet::from(["net-3".to_string()]));
    }

    #[test]
    fn signs_as_the_metadata_service_checks() {
        let who = Requester {
            instance_id: "The quick brown fox jumps over the lazy dog".into(),
            project_id: "p1".into(),
        };
        let h: HashMap<String, String> = signed_headers("key", &who, "10.0.0.5".parse().unwrap())
            .into_iter()
            .collect();
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
        assert_eq!(
            h["X-Instance-ID-Signature"],
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        assert_eq!(h["X-Instance-ID"], who.instance_id);
        assert_eq!(h["X-Tenant-ID"], "p1");
        assert_eq!(h["X-Forwarded-For"], "10.0.0.5");
    }

    #[test]
    fn names_fit_in_an_interface_name() {
        let (outer, inner) = veth_names("5f2c1b7e-3a4d-4c2b-9e8f-0a1b2c3d4e5f");
        assert_eq!(outer, "tap5f2c1b7e-30");
        assert_eq!(inner, "tap5f2c1b7e-31");
        assert!(outer.len() <= 15);
        assert_eq!(
            namespace_name("5f2c1b7e-3a4d-4c2b-9e8f-0a1b2c3d4e5f"),
            "ovnmeta-5f2c1b7e-3a4d-4c2b-9e8f-0a1b2c3d4e5f"
        );
    }

    #[test]
    fn old_specs_still_parse() {
        let old = r#"{"port_id":"p","mac":"fa:16:3e:00:00:01","mtu":1442}"#;
        let nic: GuestNic = serde_json::from_str(old).unwrap();
        assert!(nic.network_id.is_empty() && nic.fixed_ips.is_empty());
        assert!(nic.metadata_port.is_none());
    }
}
