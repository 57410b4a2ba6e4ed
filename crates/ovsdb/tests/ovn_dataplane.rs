//! The whole chain with real OVN: `scripts/ovn.sh` starts OVS + OVN in a directory of its
//! own (ovs-vswitchd in a network namespace of its own, so stacks of parallel tests do not
//! collide), the client writes a logical switch with two ports to the Northbound database,
//! two namespaces made by this test are plugged into br-int by veth pairs with
//! `external_ids:iface-id`, the monitored replica sees `Logical_Switch_Port.up` turn true,
//! and they ping each other. Then the client removes one port and the traffic stops (OVN,
//! not some accidental bridge, is carrying it). `stop` must leave no daemon and no
//! namespace behind. Needs root (namespaces, tap devices); only namespaces this test makes
//! and addresses inside them are used.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{require_ovn, TempDir, NB};
use ferrostack_ovsdb::{Atom, Client, Columns, Cond, Mutation, Op, TableSpec, Value};

fn script() -> PathBuf {
    // Where the package is now (cargo sets it when running tests), not where it was built:
    // a build cache shared between checkouts may hold a binary built elsewhere.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dir.join("../../scripts/ovn.sh")
}

/// Runs a command, panicking with its output when it fails.
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

fn ip(args: &[&str]) -> String {
    run(Command::new("ip").args(args))
}

fn in_ns(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(args);
    c
}

/// One OVS + OVN stack and the namespaces of the test; all stopped and deleted on drop.
struct Stack {
    dir: TempDir,
    netns: String,
    vms: Vec<String>,
}

impl Stack {
    /// A stack whose ovs-vswitchd runs in namespace `fs-ovn-<pid>-<tag>`.
    fn start(tag: &str) -> Stack {
        require_ovn();
        let uid = run(Command::new("id").arg("-u"));
        assert_eq!(
            uid.trim(),
            "0",
            "the OVN dataplane test needs root (namespaces, taps)"
        );
        let pid = std::process::id();
        let stack = Stack {
            dir: TempDir::new("ovn"),
            netns: format!("fs-ovn-{pid}-{tag}"),
            vms: Vec::new(),
        };
        run(Command::new(script())
            .arg("start")
            .arg(&stack.dir.0)
            .args(["--netns", &stack.netns, "--no-br-ex", "--system-id"])
            .arg(format!("fs-test-{pid}-{tag}")));
        stack
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.0.join("run")
    }

    /// A namespace with one veth whose other end is a port of br-int bound to `lsp`.
    fn plug(&mut self, n: usize, lsp: &str, mac: &str, cidr: &str) {
        let ns = format!("{}-vm{n}", self.netns);
        let host_end = format!("fsv{n}");
        ip(&["netns", "add", &ns]);
        self.vms.push(ns.clone());
        ip(&[
            "link",
            "add",
            &host_end,
            "netns",
            &self.netns,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &ns,
        ]);
        for args in [
            vec!["ip", "link", "set", "lo", "up"],
            vec!["ip", "link", "set", "eth0", "address", mac],
            vec!["ip", "addr", "add", cidr, "dev", "eth0"],
            vec!["ip", "link", "set", "eth0", "up"],
            // The userspace datapath forwards checksum-offloaded packets unfixed.
            vec!["ethtool", "-K", "eth0", "tx", "off"],
        ] {
            run(&mut in_ns(&ns, &args));
        }
        run(&mut in_ns(
            &self.netns,
            &["ip", "link", "set", &host_end, "up"],
        ));
        run(Command::new("ovs-vsctl")
            .arg(format!(
                "--db=unix:{}",
                self.run_dir().join("db.sock").display()
            ))
            .args([
                "--timeout=10",
                "add-port",
                "br-int",
                &host_end,
                "--",
                "set",
                "Interface",
            ])
            .arg(&host_end)
            .arg(format!("external_ids:iface-id={lsp}")));
    }

    fn ping(&self, from: usize, to_ip: &str) -> bool {
        in_ns(
            &self.vms[from],
            &["ping", "-c", "3", "-i", "0.2", "-W", "1", to_ip],
        )
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
    }

    fn daemon_pids(&self) -> Vec<(String, u32)> {
        let mut pids = Vec::new();
        for e in std::fs::read_dir(self.run_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(daemon) = name.strip_suffix(".pid") {
                if let Some(pid) = std::fs::read_to_string(e.path())
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                {
                    pids.push((daemon.to_string(), pid));
                }
            }
        }
        pids
    }

    fn stop(&mut self) {
        for ns in self.vms.drain(..) {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
        let _ = Command::new(script()).arg("stop").arg(&self.dir.0).status();
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Running (not exited, not a zombie waiting for its reaper).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_string()))
        .map(|r| !r.starts_with('Z') && !r.starts_with('X'))
        .unwrap_or(false)
}

#[tokio::test]
async fn two_namespaces_ping_through_ovn() {
    let t0 = Instant::now();
    let mut stack = Stack::start("ping");
    let started = t0.elapsed();
    let pids = stack.daemon_pids();
    let daemons: Vec<&str> = pids.iter().map(|(d, _)| d.as_str()).collect();
    for d in [
        "ovsdb-server",
        "ovs-vswitchd",
        "ovnnb_db",
        "ovnsb_db",
        "ovn-northd",
        "ovn-controller",
    ] {
        assert!(daemons.contains(&d), "{d} has no pidfile: {daemons:?}");
    }

    let nb = Client::connect(&format!(
        "unix:{}",
        stack.run_dir().join("ovnnb_db.sock").display()
    ))
    .await
    .unwrap();
    let ports = nb
        .monitor(
            NB,
            &[TableSpec::new("Logical_Switch_Port", &["name", "up"])],
        )
        .await
        .unwrap();
    let lsp = |name: &str, mac: &str, ip: &str| {
        Op::insert(
            "Logical_Switch_Port",
            Columns::new()
                .with("name", name)
                .with("addresses", Value::set([format!("{mac} {ip}")])),
            Some(&name.replace('-', "_")),
        )
    };
    nb.transact(
        NB,
        vec![
            lsp("vm-1", "0a:00:00:00:00:01", "10.99.0.1"),
            lsp("vm-2", "0a:00:00:00:00:02", "10.99.0.2"),
            Op::insert(
                "Logical_Switch",
                Columns::new().with("name", "ls-dataplane").with(
                    "ports",
                    Value::set([Atom::named_uuid("vm_1"), Atom::named_uuid("vm_2")]),
                ),
                None,
            ),
        ],
    )
    .await
    .unwrap();

    let t1 = Instant::now();
    stack.plug(1, "vm-1", "0a:00:00:00:00:01", "10.99.0.1/24");
    stack.plug(2, "vm-2", "0a:00:00:00:00:02", "10.99.0.2/24");
    let up = |v: &ferrostack_ovsdb::View<'_>| {
        let n = v
            .rows("Logical_Switch_Port")
            .filter(|r| r.bool("up") == Some(true))
            .count();
        (n == 2).then_some(())
    };
    ports
        .wait_for(Duration::from_secs(30), up)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "ports did not come up: {e}: {:?}",
                ports.table("Logical_Switch_Port")
            )
        });
    let ports_up = t1.elapsed();
    assert!(
        stack.ping(0, "10.99.0.2"),
        "vm-1 cannot ping vm-2 through OVN"
    );
    assert!(
        stack.ping(1, "10.99.0.1"),
        "vm-2 cannot ping vm-1 through OVN"
    );

    // Take vm-2 off the switch: OVN drops the traffic (fail-mode secure, no flows).
    let vm2 = ports
        .find_str("Logical_Switch_Port", "name", "vm-2")
        .unwrap()
        .uuid();
    nb.transact(
        NB,
        vec![Op::mutate(
            "Logical_Switch",
            vec![Cond::eq("name", "ls-dataplane")],
            vec![Mutation::delete("ports", Value::set([Atom::Uuid(vm2)]))],
        )],
    )
    .await
    .unwrap();
    ports
        .wait_for(Duration::from_secs(10), |v| {
            v.find_str("Logical_Switch_Port", "name", "vm-2")
                .is_none()
                .then_some(())
        })
        .await
        .unwrap();
    // northd and ovn-controller need a moment to remove the flows.
    let deadline = Instant::now() + Duration::from_secs(10);
    while stack.ping(0, "10.99.0.2") {
        assert!(
            Instant::now() < deadline,
            "traffic still flows to a deleted port"
        );
    }

    let t2 = Instant::now();
    drop(ports);
    drop(nb);
    let netns = stack.netns.clone();
    let vms = stack.vms.clone();
    stack.stop();
    let stopped = t2.elapsed();
    for (d, pid) in &pids {
        assert!(!alive(*pid), "{d} (pid {pid}) still runs after stop");
    }
    let left = ip(&["netns", "list"]);
    for ns in vms.iter().chain([&netns]) {
        assert!(
            !left
                .lines()
                .any(|l| l.split_whitespace().next() == Some(ns.as_str())),
            "namespace {ns} left behind"
        );
    }
    println!(
        "ovn dataplane: stack start {started:?}, two ports plugged and up {ports_up:?}, stop {stopped:?}"
    );
}

#[tokio::test]
async fn stacks_side_by_side_and_one_per_namespace() {
    // Two stacks at once, each in its own namespace, each with its own chassis.
    let a = Stack::start("a");
    let b = Stack::start("b");
    for (st, tag) in [(&a, "a"), (&b, "b")] {
        let out = run(Command::new("ovn-sbctl")
            .arg(format!(
                "--db=unix:{}",
                st.run_dir().join("ovnsb_db.sock").display()
            ))
            .args(["--bare", "--columns=name", "list", "Chassis"]));
        assert_eq!(out.trim(), format!("fs-test-{}-{tag}", std::process::id()));
    }
    // A third one in a's namespace is refused (the netdev datapath's "ovs-netdev" tap is
    // taken), and its failed start leaves a alone.
    let c = TempDir::new("ovn");
    let out = Command::new(script())
        .arg("start")
        .arg(&c.0)
        .args([
            "--netns",
            &a.netns,
            "--no-br-ex",
            "--system-id",
            "fs-test-refused",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("use --netns"), "{err}");
    let links = run(&mut in_ns(&a.netns, &["ip", "-br", "link"]));
    assert!(
        links.contains("br-int") && links.contains("ovs-netdev"),
        "{links}"
    );
    for (d, pid) in a.daemon_pids() {
        assert!(alive(pid), "{d} of stack a died");
    }
    let nb = Client::connect(&format!(
        "unix:{}",
        a.run_dir().join("ovnnb_db.sock").display()
    ))
    .await
    .unwrap();
    assert!(nb.list_dbs().await.unwrap().contains(&NB.to_string()));
}
