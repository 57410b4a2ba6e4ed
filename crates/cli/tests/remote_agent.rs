//! The real binary, as operators run it across machines: `ferrostack up` as the control
//! plane (its own agent off, `[compute] agent_secret` set) and `ferrostack compute-agent`
//! as a separate process, talking over loopback HTTP. Processes are killed for real:
//!
//! - the control plane aborts (`FERROSTACK_CRASH_AT`, the same as kill -9) before and after
//!   every step of the boot and delete workflows and is started again: every server ends
//!   ACTIVE or deleted, and the host runs exactly the servers that exist;
//! - the agent, running real QEMU VMs, is SIGKILLed in the middle of a boot and while its
//!   server runs: the restarted agent finishes the boot and re-adopts the VM (one QEMU
//!   process per server, never two), and a delete leaves no QEMU process, disk or
//!   allocation.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const SECRET: &str = "e2e-agent-secret";

/// A process this test started, killed (SIGKILL) when dropped.
struct Proc {
    child: Child,
    log: PathBuf,
    /// Where this process's output starts in the log (earlier runs wrote before it).
    from: usize,
}

impl Proc {
    fn log(&self) -> String {
        let mut s = String::new();
        let _ = std::fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut s));
        s.get(self.from..).unwrap_or("").to_string()
    }

    /// Waits until the log has `needle` (panics with the log if the process ends first).
    fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let t0 = Instant::now();
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("process ended ({st}) before {needle:?}:\n{log}");
            }
            assert!(
                t0.elapsed() < timeout,
                "no {needle:?} after {timeout:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the process to end by itself (a crash point aborts it).
    fn wait_exit(&mut self, timeout: Duration) {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the process did not crash:\n{}", self.log());
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(args: &[&str], envs: &[(&str, &str)], log: PathBuf) -> Proc {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let from = out.metadata().unwrap().len() as usize;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrostack"));
    cmd.args(args)
        .env_remove("FERROSTACK_CRASH_AT")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    Proc {
        child: cmd.spawn().unwrap(),
        log,
        from,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn guest_image() -> PathBuf {
    // Read at run time: a cached test binary may have been built in another checkout.
    let root =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../..");
    let out = Command::new(root.join("scripts/guest-image/build.sh"))
        .output()
        .expect("running scripts/guest-image/build.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    PathBuf::from(dir).join("disk.qcow2")
}

/// A control plane and its remote agents, in a scratch directory.
struct Site {
    dir: PathBuf,
    port: u16,
    image: PathBuf,
    http: reqwest::Client,
}

impl Site {
    fn new(tag: &str) -> Site {
        let dir = std::env::temp_dir().join(format!(
            "fs-e2e-{tag}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Site {
            dir,
            port: free_port(),
            image: guest_image(),
            http: reqwest::Client::new(),
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `ferrostack up` without its own agent; `crash` arms a crash point.
    fn control(&self, crash: Option<&str>) -> Proc {
        let bind = format!("127.0.0.1:{}", self.port);
        let image = format!("guest={}", self.image.display());
        let data = self.dir.join("control");
        let home = self.dir.display().to_string();
        let mut envs = vec![
            ("FERROSTACK_COMPUTE_AGENT__ENABLED", "false"),
            ("FERROSTACK_COMPUTE__AGENT_SECRET", SECRET),
            // The test is about workflows and ports in the database: no data plane.
            ("FERROSTACK_NETWORK__BACKEND", "fake"),
            ("HOME", home.as_str()),
        ];
        if let Some(c) = crash {
            envs.push(("FERROSTACK_CRASH_AT", c));
        }
        let mut p = spawn(
            &[
                "up",
                "--data-dir",
                data.to_str().unwrap(),
                "--bind",
                &bind,
                "--no-user-clouds-yaml",
                "--register-image",
                &image,
            ],
            &envs,
            self.dir.join("control.log"),
        );
        p.wait_for("ferrostack is up", Duration::from_secs(120));
        p
    }

    /// `ferrostack compute-agent` with `driver`; returns it and its URL.
    fn agent(&self, host: &str, driver: &str) -> (Proc, String) {
        let data = self.dir.join(host);
        let control = self.base();
        let mut p = spawn(
            &["compute-agent", "--data-dir", data.to_str().unwrap()],
            &[
                ("FERROSTACK_COMPUTE_AGENT__DRIVER", driver),
                ("FERROSTACK_COMPUTE_AGENT__HOST", host),
                ("FERROSTACK_COMPUTE_AGENT__CONTROL_URL", control.as_str()),
                ("FERROSTACK_COMPUTE_AGENT__SECRET", SECRET),
                ("FERROSTACK_COMPUTE_AGENT__LISTEN", "127.0.0.1:0"),
            ],
            self.dir.join(format!("{host}.log")),
        );
        let line = p.wait_for("ferrostack compute agent up", Duration::from_secs(60));
        let url = line
            .split(" at ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_string();
        (p, url)
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base()))
            .header("X-Auth-Token", token)
            .header("OpenStack-API-Version", "compute latest")
            .timeout(Duration::from_secs(60));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            // The process died answering (a crash point inside the request).
            Err(e) => return (0, json!({ "error": e.to_string() })),
        };
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn admin_token(&self) -> String {
        let pw = std::fs::read_to_string(self.dir.join("control/admin-password")).unwrap();
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": pw.trim()}}}, "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
        let resp = self
            .http
            .post(format!("{}/identity/v3/auth/tokens", self.base()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        resp.headers()["x-subject-token"]
            .to_str()
            .unwrap()
            .to_string()
    }

    async fn boot(&self, token: &str, name: &str) -> String {
        let (_, images) = self
            .request("GET", "/image/v2/images?name=guest", token, None)
            .await;
        let image = images["images"][0]["id"].as_str().unwrap().to_string();
        let (st, body) = self
            .request(
                "POST",
                "/compute/v2.1/servers",
                token,
                Some(json!({"server": {"name": name, "imageRef": image, "flavorRef": "42", "networks": "auto"}})),
            )
            .await;
        assert_eq!(st, 202, "{body}");
        body["server"]["id"].as_str().unwrap().to_string()
    }

    /// Boots a server across a crash: the answer may be lost with the process, and then
    /// the server is looked up by name once the control plane is back.
    async fn boot_or_find(
        &self,
        token: &str,
        name: &str,
        restart: impl FnOnce(),
    ) -> Option<String> {
        let (_, images) = self
            .request("GET", "/image/v2/images?name=guest", token, None)
            .await;
        let image = images["images"][0]["id"].as_str().unwrap().to_string();
        let body = json!({"server": {"name": name, "imageRef": image, "flavorRef": "42", "networks": "auto"}});
        let (st, body) = self
            .request("POST", "/compute/v2.1/servers", token, Some(body))
            .await;
        restart();
        if st == 202 {
            return body["server"]["id"].as_str().map(String::from);
        }
        assert_eq!(st, 0, "{body}");
        let token = self.admin_token().await;
        let path = format!("/compute/v2.1/servers?all_tenants=1&name=^{name}$");
        let (_, list) = self.request("GET", &path, &token, None).await;
        list["servers"][0]["id"].as_str().map(String::from)
    }

    /// Polls the server until it is `want` with no task ("DELETED": gone).
    async fn wait_status(&self, token: &str, id: &str, want: &str, timeout: Duration) -> Value {
        let t0 = Instant::now();
        loop {
            let (st, body) = self
                .request("GET", &format!("/compute/v2.1/servers/{id}"), token, None)
                .await;
            if want == "DELETED" && st == 404 {
                return Value::Null;
            }
            let s = &body["server"];
            if s["status"] == want && s["OS-EXT-STS:task_state"].is_null() {
                return s.clone();
            }
            assert!(
                t0.elapsed() < timeout,
                "server {id} not {want} after {timeout:?}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The servers the host at `agent_url` runs, asked over the host protocol.
    async fn host_servers(&self, agent_url: &str) -> Vec<String> {
        let resp = self
            .http
            .post(format!("{agent_url}/v1/host"))
            .bearer_auth(SECRET)
            .json(&json!({"op": "servers"}))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
        let mut v: Vec<String> = resp.json().await.unwrap();
        v.sort();
        v
    }

    /// Units Placement holds on every provider.
    async fn used_units(&self, token: &str) -> i64 {
        let (_, rps) = self
            .request("GET", "/placement/resource_providers", token, None)
            .await;
        let mut used = 0;
        for rp in rps["resource_providers"].as_array().unwrap() {
            let uuid = rp["uuid"].as_str().unwrap();
            let (_, u) = self
                .request(
                    "GET",
                    &format!("/placement/resource_providers/{uuid}/usages"),
                    token,
                    None,
                )
                .await;
            used += u["usages"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_i64().unwrap())
                .sum::<i64>();
        }
        used
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// QEMU processes running the VM `uuid`.
fn qemu_processes(uuid: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.starts_with("qemu-system") && cmd.contains(uuid) {
            out.push(pid);
        }
    }
    out
}

fn wait_path(path: &Path, timeout: Duration) {
    let t0 = Instant::now();
    while !path.exists() {
        assert!(t0.elapsed() < timeout, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_plane_killed_at_every_step_leaves_no_orphan() {
    let site = Site::new("control");
    let mut control = site.control(None);
    let (_agent, agent_url) = site.agent("far-host", "fake");
    let token = site.admin_token().await;
    // One network in the project: every server gets a port on it ("auto").
    let (st, net) = site
        .request(
            "POST",
            "/networking/v2.0/networks",
            &token,
            Some(json!({"network": {"name": "private"}})),
        )
        .await;
    assert_eq!(st, 201, "{net}");
    let net_id = net["network"]["id"].as_str().unwrap().to_string();
    let (st, sub) = site
        .request(
            "POST",
            "/networking/v2.0/subnets",
            &token,
            Some(json!({"subnet": {"network_id": net_id, "ip_version": 4, "cidr": "10.9.0.0/24"}})),
        )
        .await;
    assert_eq!(st, 201, "{sub}");

    let mut alive = Vec::new();
    for step in 0..4 {
        for when in ["before", "after"] {
            control.kill();
            let point = format!("server_boot:{step}:{when}");
            control = site.control(Some(&point));
            let crashed = &mut control;
            let id = site
                .boot_or_find(&token, &format!("boot-{step}-{when}"), || {
                    crashed.wait_exit(Duration::from_secs(60));
                    *crashed = site.control(None);
                })
                .await;
            let token = site.admin_token().await;
            // A request that was never recorded made no server: nothing to resume.
            let Some(id) = id else { continue };
            let s = site
                .wait_status(&token, &id, "ACTIVE", Duration::from_secs(90))
                .await;
            assert_eq!(s["OS-EXT-SRV-ATTR:host"], "far-host", "{point}: {s}");
            // Exactly one port, bound to the host, whatever step the crash hit.
            let (_, ports) = site
                .request(
                    "GET",
                    &format!("/networking/v2.0/ports?device_id={id}"),
                    &token,
                    None,
                )
                .await;
            let ports = ports["ports"].as_array().unwrap();
            assert_eq!(ports.len(), 1, "{point}: {ports:?}");
            assert_eq!(ports[0]["binding:host_id"], "far-host", "{point}");
            assert_eq!(ports[0]["device_owner"], "compute:nova", "{point}");
            let addr = &s["addresses"]["private"][0]["addr"];
            assert_eq!(
                &ports[0]["fixed_ips"][0]["ip_address"], addr,
                "{point}: {s}"
            );
            alive.push(id);
        }
    }
    let token = site.admin_token().await;
    let mut expected = alive.clone();
    expected.sort();
    assert_eq!(site.host_servers(&agent_url).await, expected);
    assert_eq!(
        site.used_units(&token).await,
        alive.len() as i64 * (128 + 1 + 1)
    );

    let mut i = 0;
    for step in 0..4 {
        for when in ["before", "after"] {
            let id = if i < alive.len() {
                alive[i].clone()
            } else {
                let id = site.boot(&token, &format!("extra-{i}")).await;
                site.wait_status(&token, &id, "ACTIVE", Duration::from_secs(60))
                    .await;
                id
            };
            i += 1;
            control.kill();
            let point = format!("server_delete:{step}:{when}");
            control = site.control(Some(&point));
            let token = site.admin_token().await;
            let (st, body) = site
                .request(
                    "DELETE",
                    &format!("/compute/v2.1/servers/{id}"),
                    &token,
                    None,
                )
                .await;
            // 0: the process died before it answered (the workflow was recorded first).
            assert!(st == 204 || st == 0, "{body}");
            control.wait_exit(Duration::from_secs(60));
            control = site.control(None);
            let token = site.admin_token().await;
            site.wait_status(&token, &id, "DELETED", Duration::from_secs(90))
                .await;
        }
    }
    let token = site.admin_token().await;
    assert_eq!(site.host_servers(&agent_url).await, Vec::<String>::new());
    assert_eq!(site.used_units(&token).await, 0);
    let (_, list) = site
        .request("GET", "/compute/v2.1/servers?all_tenants=1", &token, None)
        .await;
    assert_eq!(list["servers"].as_array().unwrap().len(), 0, "{list}");
    // Only the networks' own ports are left (metadata, router1's): no server port leaked.
    let (_, ports) = site
        .request("GET", "/networking/v2.0/ports", &token, None)
        .await;
    let servers_ports: Vec<&Value> = ports["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            !p["device_owner"]
                .as_str()
                .unwrap_or("")
                .starts_with("network:")
        })
        .collect();
    assert_eq!(servers_ports, Vec::<&Value>::new(), "{ports}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_finishes_its_boot_and_readopts_its_vm() {
    let site = Site::new("agent");
    let _control = site.control(None);
    let (mut agent, _) = site.agent("qemu-host", "qemu");
    let accel = agent.wait_for("accel", Duration::from_secs(1));
    eprintln!("remote-agent e2e: {accel}");
    let token = site.admin_token().await;

    // Killed while it starts the VM: its directory exists, QEMU may or may not run.
    let id = site.boot(&token, "survivor").await;
    wait_path(
        &site.dir.join("qemu-host/instances").join(&id),
        Duration::from_secs(60),
    );
    agent.kill();
    let (mut agent, agent_url) = site.agent("qemu-host", "qemu");
    site.wait_status(&token, &id, "ACTIVE", Duration::from_secs(120))
        .await;
    let pids = qemu_processes(&id);
    assert_eq!(pids.len(), 1, "QEMU processes for {id}: {pids:?}");
    assert_eq!(site.host_servers(&agent_url).await, vec![id.clone()]);

    // Killed while the server runs: the VM lives on and the new agent adopts it.
    agent.kill();
    let (_agent, agent_url) = site.agent("qemu-host", "qemu");
    assert_eq!(qemu_processes(&id), pids, "the VM outlived its agent");
    let (st, body) = site
        .request(
            "POST",
            &format!("/compute/v2.1/servers/{id}/action"),
            &token,
            Some(json!({"os-stop": null})),
        )
        .await;
    assert_eq!(st, 202, "{body}");
    site.wait_status(&token, &id, "SHUTOFF", Duration::from_secs(120))
        .await;
    assert!(qemu_processes(&id).is_empty());

    let (st, body) = site
        .request(
            "DELETE",
            &format!("/compute/v2.1/servers/{id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(st, 204, "{body}");
    site.wait_status(&token, &id, "DELETED", Duration::from_secs(60))
        .await;
    assert!(qemu_processes(&id).is_empty());
    assert!(!site.dir.join("qemu-host/instances").join(&id).exists());
    assert_eq!(site.host_servers(&agent_url).await, Vec::<String>::new());
    assert_eq!(site.used_units(&token).await, 0);
}
