//! The guest metadata path through real OVN, without QEMU: `scripts/ovn.sh` starts OVS +
//! OVN with ovs-vswitchd in a namespace of the test's own; the test writes a logical switch
//! with a VM port and the network's metadata `localport` (as the OVN backend writes them)
//! with ovn-nbctl; the agent's [`MetadataAgent`] makes the `ovnmeta-<network>` namespace
//! and its proxy; a namespace stands in for the VM (a veth plugged into br-int with the VM
//! port's iface-id, its address and the route to 169.254.169.254 via the metadata port as
//! DHCP would give them), and `curl` inside it gets the answer of a small HTTP server in the
//! test that plays the Compute metadata service and checks the signed headers. A source the
//! proxy does not know gets 404; an agent restarted takes its proxies back; the last guest
//! gone takes the namespace and the bridge port with it. Needs root; fails (never skips)
//! without OVN. Only namespaces this test makes (and addresses inside them) are used.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use ferrostack_agent::metadata::{namespace_name, veth_names, MetadataAgent, MetadataConfig};
use ferrostack_compute::host::{
    AgentError, BoxFut, ControlPlane, GuestNic, GuestSpec, HostAgent, HostReport,
};
use ferrostack_compute::network::MetadataPort;

const SECRET: &str = "s3cret-shared-with-compute";
const VM_MAC: &str = "fa:16:3e:4d:00:05";
const VM_IP: &str = "10.77.0.5";
const META_MAC: &str = "fa:16:3e:4d:00:02";
const META_IP: &str = "10.77.0.2";

fn script() -> PathBuf {
    // Where the package is now (cargo sets it when running tests), not where it was built:
    // a build cache shared between checkouts may hold a binary built elsewhere.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dir.join("../../scripts/ovn.sh")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn in_ns(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(args);
    c
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false)
}

/// Fails (never skips) without root or the programs the test drives.
fn require() {
    let missing: Vec<&str> = [
        "ovsdb-server",
        "ovs-vswitchd",
        "ovs-vsctl",
        "ovn-northd",
        "ovn-controller",
        "ovn-nbctl",
        "ip",
        "curl",
    ]
    .into_iter()
    .filter(|b| !on_path(b))
    .collect();
    assert!(
        missing.is_empty(),
        "OVS/OVN (or ip, curl) is not installed (missing: {}): run scripts/install-ovn.sh as root",
        missing.join(", ")
    );
    let uid = run(Command::new("id").arg("-u"));
    assert_eq!(
        uid.trim(),
        "0",
        "the metadata dataplane test needs root (namespaces)"
    );
}

/// The stack, the guest namespace and the metadata namespace; all removed on drop.
struct Stack {
    dir: PathBuf,
    netns: String,
    guest: Option<String>,
    network_id: String,
}

impl Stack {
    fn start(network_id: &str) -> Stack {
        require();
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("fs-mdt-{pid}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let stack = Stack {
            dir,
            netns: format!("fs-mdt-{pid}"),
            guest: None,
            network_id: network_id.to_string(),
        };
        run(Command::new(script())
            .arg("start")
            .arg(stack.dir.join("ovn"))
            .args(["--netns", &stack.netns, "--no-br-ex", "--system-id"])
            .arg(format!("fs-mdt-{pid}")));
        stack
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.join("ovn/run")
    }

    fn ovs_db(&self) -> String {
        format!("unix:{}", self.run_dir().join("db.sock").display())
    }

    fn nbctl(&self, args: &[&str]) -> String {
        run(Command::new("ovn-nbctl")
            .arg(format!(
                "--db=unix:{}",
                self.run_dir().join("ovnnb_db.sock").display()
            ))
            .arg("--timeout=30")
            .args(args))
    }

    fn vsctl(&self, args: &[&str]) -> String {
        run(Command::new("ovs-vsctl")
            .arg(format!("--db={}", self.ovs_db()))
            .arg("--timeout=10")
            .args(args))
    }

    /// The VM: a namespace whose eth0 is plugged into br-int bound to `lsp`, configured as
    /// DHCP would (address, and the classless route to the metadata address).
    fn plug_guest(&mut self, lsp: &str) {
        let ns = format!("{}-vm", self.netns);
        let host_end = "fsmdv0";
        run(Command::new("ip").args(["netns", "add", &ns]));
        self.guest = Some(ns.clone());
        run(Command::new("ip").args([
            "link",
            "add",
            host_end,
            "netns",
            &self.netns,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &ns,
        ]));
        let cidr = format!("{VM_IP}/24");
        for args in [
            vec!["ip", "link", "set", "lo", "up"],
            vec!["ip", "link", "set", "eth0", "address", VM_MAC],
            vec!["ip", "addr", "add", &cidr, "dev", "eth0"],
            vec!["ip", "link", "set", "eth0", "up"],
            vec!["ip", "route", "add", "169.254.169.254/32", "via", META_IP],
            // The userspace datapath forwards checksum-offloaded packets unfixed.
            vec!["ethtool", "-K", "eth0", "tx", "off"],
        ] {
            run(&mut in_ns(&ns, &args));
        }
        run(&mut in_ns(
            &self.netns,
            &["ip", "link", "set", host_end, "up"],
        ));
        let iface = format!("external_ids:iface-id={lsp}");
        self.vsctl(&[
            "add-port",
            "br-int",
            host_end,
            "--",
            "set",
            "Interface",
            host_end,
            &iface,
        ]);
    }

    /// `curl` from the guest: (HTTP status, body), or `None` when it got no answer.
    fn curl(&self, path: &str, source: Option<&str>) -> Option<(u16, String)> {
        let url = format!("http://169.254.169.254{path}");
        let mut args = vec!["curl", "-sS", "-m", "3", "-w", "\n%{http_code}"];
        if let Some(s) = source {
            args.extend(["--interface", s]);
        }
        args.push(&url);
        let out = in_ns(self.guest.as_ref().unwrap(), &args).output().ok()?;
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n')?;
        Some((code.trim().parse().ok()?, body.to_string()))
    }

    /// Retries `curl` until an answer comes (OVN needs a moment for new flows).
    fn curl_until_answer(&self, path: &str, within: Duration) -> (u16, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(a) = self.curl(path, None) {
                return a;
            }
            assert!(
                Instant::now() < deadline,
                "the guest got no answer from 169.254.169.254{path} within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn bridge_ports(&self) -> Vec<String> {
        self.vsctl(&["list-ports", "br-int"])
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(ns) = self.guest.take() {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
        let meta = namespace_name(&self.network_id);
        if Path::new("/run/netns").join(&meta).exists() {
            let _ = Command::new("ip").args(["netns", "del", &meta]).status();
        }
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.join("ovn"))
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The stand-in for Compute's metadata service: answers only correctly signed requests.
async fn metadata_service() -> (String, tokio::task::JoinHandle<()>) {
    async fn answer(uri: axum::http::Uri, headers: HeaderMap) -> axum::response::Response {
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let id = h("x-instance-id");
        let expected = ferrostack_compute::http::metadata_api::sign(SECRET, &id);
        if id.is_empty() || h("x-instance-id-signature") != expected {
            return (StatusCode::FORBIDDEN, "Invalid proxy request signature.\n").into_response();
        }
        axum::Json(serde_json::json!({
            "uuid": id,
            "project_id": h("x-tenant-id"),
            "forwarded_for": h("x-forwarded-for"),
            "path": uri.path(),
        }))
        .into_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metadata", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(answer);
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, task)
}

/// A control plane that only hands out an empty image: all `ensure` needs here.
struct NoControl;

impl ControlPlane for NoControl {
    fn register<'a>(
        &'a self,
        _: &'a HostReport,
        _: Option<&'a str>,
    ) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async { Ok(()) })
    }
    fn heartbeat<'a>(&'a self, _: &'a str) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async { Ok(()) })
    }
    fn servers_on_host<'a>(&'a self, _: &'a str) -> BoxFut<'a, Result<Vec<String>, AgentError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn observe_power_state<'a>(&'a self, _: &'a str, _: i64) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async { Ok(()) })
    }
    fn busy<'a>(&'a self, _: &'a str) -> BoxFut<'a, Result<bool, AgentError>> {
        Box::pin(async { Ok(true) })
    }
    fn fetch_image<'a>(&'a self, _: &'a str, dest: &'a Path) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(
            async move { std::fs::write(dest, b"").map_err(|e| AgentError::Failed(e.to_string())) },
        )
    }
    fn upload_image<'a>(&'a self, _: &'a str, _: &'a Path) -> BoxFut<'a, Result<(), AgentError>> {
        Box::pin(async { Ok(()) })
    }
}

fn spec(uuid: &str, network_id: &str, vm_port: &str, meta_port: &str) -> GuestSpec {
    GuestSpec {
        uuid: uuid.into(),
        name: "instance-00000001".into(),
        hostname: "guest".into(),
        vcpus: 1,
        memory_mb: 128,
        root_gb: 1,
        image_id: "image".into(),
        image_disk_format: "qcow2".into(),
        config_drive: None,
        nics: vec![GuestNic {
            port_id: vm_port.into(),
            mac: VM_MAC.into(),
            mtu: Some(1442),
            network_id: network_id.into(),
            fixed_ips: vec![VM_IP.into()],
            metadata_port: Some(MetadataPort {
                id: meta_port.into(),
                mac: META_MAC.into(),
                ips: vec![format!("{META_IP}/24")],
            }),
        }],
        project_id: "project-1".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_reads_its_metadata_through_ovn() {
    let network_id = uuid::Uuid::new_v4().to_string();
    let server = uuid::Uuid::new_v4().to_string();
    let vm_port = uuid::Uuid::new_v4().to_string();
    let meta_port = uuid::Uuid::new_v4().to_string();
    let t0 = Instant::now();
    let mut stack = Stack::start(&network_id);
    let stack_started = t0.elapsed();

    // The network as the OVN backend writes it: the VM's port and the metadata localport.
    let ls = format!("neutron-{network_id}");
    let vm_addr = format!("{VM_MAC} {VM_IP}");
    let meta_addr = format!("{META_MAC} {META_IP}");
    stack.nbctl(&[
        "ls-add",
        &ls,
        "--",
        "lsp-add",
        &ls,
        &vm_port,
        "--",
        "lsp-set-addresses",
        &vm_port,
        &vm_addr,
        "--",
        "lsp-add",
        &ls,
        &meta_port,
        "--",
        "lsp-set-type",
        &meta_port,
        "localport",
        "--",
        "lsp-set-addresses",
        &meta_port,
        &meta_addr,
    ]);

    let (url, service) = metadata_service().await;
    let state = stack.dir.join("agent-metadata");
    let config = MetadataConfig {
        url,
        secret: SECRET.into(),
        bridge: "br-int".into(),
        ovs_db: stack.ovs_db(),
        ovs_netns: Some(stack.netns.clone()),
        state_dir: state.clone(),
        port: 80,
    };
    let agent = MetadataAgent::new(config.clone());
    let guest = spec(&server, &network_id, &vm_port, &meta_port);

    let t1 = Instant::now();
    agent.guest_up(&guest).await.unwrap();
    let provisioned = t1.elapsed();
    let t2 = Instant::now();
    agent.guest_up(&guest).await.unwrap();
    let again = t2.elapsed();
    let ns = namespace_name(&network_id);
    let (outer, inner) = veth_names(&network_id);
    assert!(Path::new("/run/netns").join(&ns).exists());
    let addrs = run(&mut in_ns(
        &ns,
        &["ip", "-o", "addr", "show", "dev", &inner],
    ));
    assert!(
        addrs.contains(&format!("{META_IP}/24")) && addrs.contains("169.254.169.254/32"),
        "{addrs}"
    );
    let link = run(&mut in_ns(
        &ns,
        &["ip", "-o", "link", "show", "dev", &inner],
    ));
    assert!(link.contains(META_MAC), "{link}");
    assert!(stack.bridge_ports().contains(&outer));
    let iface = stack.vsctl(&["get", "Interface", &outer, "external_ids:iface-id"]);
    assert_eq!(iface.trim().trim_matches('"'), meta_port);
    assert_eq!(
        agent
            .find(&network_id, VM_IP.parse().unwrap())
            .unwrap()
            .instance_id,
        server
    );

    // The VM comes up on the switch.
    stack.plug_guest(&vm_port);
    stack.nbctl(&["wait-until", "Logical_Switch_Port", &vm_port, "up=true"]);
    let t3 = Instant::now();
    let (status, body) =
        stack.curl_until_answer("/openstack/latest/meta_data.json", Duration::from_secs(30));
    let first_answer = t3.elapsed();
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["uuid"], server.as_str());
    assert_eq!(doc["project_id"], "project-1");
    assert_eq!(doc["forwarded_for"], VM_IP);
    assert_eq!(doc["path"], "/metadata/openstack/latest/meta_data.json");

    // Round trips once the flows are in.
    let n = 20;
    let t4 = Instant::now();
    for _ in 0..n {
        let (status, _) = stack.curl("/latest/meta-data/instance-id", None).unwrap();
        assert_eq!(status, 200);
    }
    let per_request = t4.elapsed() / n;

    // A source address no guest of this host has.
    let guest_ns = stack.guest.clone().unwrap();
    run(&mut in_ns(
        &guest_ns,
        &["ip", "addr", "add", "10.77.0.9/24", "dev", "eth0"],
    ));
    let (status, body) = stack
        .curl("/openstack/latest/meta_data.json", Some("10.77.0.9"))
        .expect("an answer to the unknown source");
    assert_eq!(status, 404, "{body}");

    // The agent restarts: its records bring the proxy back.
    drop(agent);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let agent = MetadataAgent::new(config.clone());
    let t5 = Instant::now();
    agent.restore(std::slice::from_ref(&server)).await.unwrap();
    let restored = t5.elapsed();
    assert_eq!(agent.running().await, vec![network_id.clone()]);
    let (status, body) =
        stack.curl_until_answer("/openstack/latest/meta_data.json", Duration::from_secs(10));
    assert_eq!(status, 200, "{body}");

    // The last guest of the network leaves: namespace, veth and bridge port go.
    agent.guest_gone(&server).await.unwrap();
    assert!(!Path::new("/run/netns").join(&ns).exists());
    assert!(!stack.bridge_ports().contains(&outer));
    let links = run(&mut in_ns(&stack.netns, &["ip", "-br", "link"]));
    assert!(!links.contains(&outer), "{links}");
    assert!(agent.running().await.is_empty());
    assert!(stack
        .curl("/openstack/latest/meta_data.json", None)
        .is_none());
    assert!(std::fs::read_dir(state.join("guests"))
        .unwrap()
        .next()
        .is_none());
    assert!(std::fs::read_dir(state.join("networks"))
        .unwrap()
        .next()
        .is_none());

    // A namespace left by an agent that stopped with no guest is removed at its start.
    agent.guest_up(&guest).await.unwrap();
    drop(agent);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let agent = MetadataAgent::new(config.clone());
    agent.restore(&[]).await.unwrap();
    assert!(!Path::new("/run/netns").join(&ns).exists());
    assert!(!stack.bridge_ports().contains(&outer));

    drop(agent);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The same through the compute agent itself: `ensure` makes the namespace before the VM
    // (the fake driver's) starts, `destroy` of the network's last guest removes it.
    let agent = ferrostack_agent::Agent::new(
        ferrostack_agent::AgentConfig {
            host: "metadata-host".into(),
            state_dir: stack.dir.join("agent"),
            ovs_db: Some(stack.ovs_db()),
            ovs_netns: Some(stack.netns.clone()),
            metadata_url: Some(config.url.clone()),
            metadata_secret: Some(SECRET.into()),
            ..Default::default()
        },
        Arc::new(ferrostack_hypervisor::fake::FakeDriver::new(
            ferrostack_hypervisor::HostResources {
                vcpus: 4,
                memory_mb: 8192,
                disk_gb: 100,
                cpu_model: "fake".into(),
            },
        )),
        Arc::new(NoControl),
    );
    agent.ensure(&guest).await.unwrap();
    assert!(Path::new("/run/netns").join(&ns).exists());
    let (status, body) =
        stack.curl_until_answer("/openstack/latest/meta_data.json", Duration::from_secs(10));
    assert_eq!(status, 200, "{body}");
    agent.destroy(&server).await.unwrap();
    assert!(!Path::new("/run/netns").join(&ns).exists());
    assert!(!stack.bridge_ports().contains(&outer));

    service.abort();
    drop(agent);
    println!(
        "metadata over ovn: stack start {stack_started:?}, namespace + proxy {provisioned:?} \
         (again {again:?}), first answer after port up {first_answer:?}, \
         {per_request:?} per request (curl in the guest namespace, {n} sequential), \
         restore {restored:?}"
    );
}
