//! Test helpers: a real `ovsdb-server` holding an empty OVN Northbound database, in a
//! temporary directory of its own, on a unix socket or on an ephemeral TCP port of
//! 127.0.0.1; killed by PID (and its directory removed) when dropped. Missing OVN binaries
//! fail the test with a pointer to the install script: these tests never skip.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferrostack_ovsdb::{Client, Op, Replica, Row};
use uuid::Uuid;

pub const NB: &str = "OVN_Northbound";
pub const NB_SCHEMA: &str = "/usr/share/ovn/ovn-nb.ovsschema";

/// Fails (never skips) when the OVS/OVN programs are missing.
pub fn require_ovn() {
    let mut missing = Vec::new();
    for bin in ["ovsdb-server", "ovsdb-tool"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
            .unwrap_or(false);
        if !found {
            missing.push(bin.to_string());
        }
    }
    if !Path::new(NB_SCHEMA).is_file() {
        missing.push(NB_SCHEMA.to_string());
    }
    assert!(
        missing.is_empty(),
        "OVS/OVN is not installed (missing: {}): run scripts/install-ovn.sh as root",
        missing.join(", ")
    );
}

/// A fresh temporary directory, removed on drop. Short paths: unix sockets allow 107 bytes.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "fs-ovsdb-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct NbServer {
    child: Option<Child>,
    dir: TempDir,
    tcp: bool,
    pub endpoint: String,
}

impl NbServer {
    pub fn unix() -> NbServer {
        NbServer::start(false)
    }

    pub fn tcp() -> NbServer {
        NbServer::start(true)
    }

    fn start(tcp: bool) -> NbServer {
        require_ovn();
        let dir = TempDir::new("nb");
        let status = Command::new("ovsdb-tool")
            .arg("create")
            .arg(dir.0.join("nb.db"))
            .arg(NB_SCHEMA)
            .status()
            .expect("run ovsdb-tool");
        assert!(status.success(), "ovsdb-tool create failed");
        let mut s = NbServer {
            child: None,
            dir,
            tcp,
            endpoint: String::new(),
        };
        s.launch();
        s
    }

    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts ovsdb-server on the database file (again, after [`NbServer::kill`]: same
    /// socket path; a TCP server gets a new port).
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "already running");
        let d = &self.dir.0;
        let log = d.join("ovsdb-server.log");
        let _ = std::fs::remove_file(&log);
        let remote = if self.tcp {
            "ptcp:0:127.0.0.1".to_string()
        } else {
            format!("punix:{}", d.join("nb.sock").display())
        };
        let child = Command::new("ovsdb-server")
            .arg(d.join("nb.db"))
            .arg(format!("--remote={remote}"))
            .arg(format!("--unixctl={}", d.join("nb.ctl").display()))
            .arg(format!("--log-file={}", log.display()))
            .arg("--no-chdir")
            .arg("-vconsole:off")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ovsdb-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(
                Instant::now() < deadline,
                "ovsdb-server did not come up; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "ovsdb-server exited with {st}; log: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if self.tcp {
                // "...|socket_util|INFO|0:127.0.0.1: listening on port 46199"
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if let Some(port) = text
                    .lines()
                    .find_map(|l| l.split("listening on port ").nth(1))
                    .and_then(|p| p.trim().parse::<u16>().ok())
                {
                    if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                        self.endpoint = format!("tcp:127.0.0.1:{port}");
                        return;
                    }
                }
            } else {
                let sock = d.join("nb.sock");
                if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
                    self.endpoint = format!("unix:{}", sock.display());
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NbServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// All rows of `table` (the given columns) as a fresh `select` sees them.
pub async fn select_rows(client: &Client, table: &str, columns: &[&str]) -> BTreeMap<Uuid, Row> {
    let schema = client.schema(NB).await.unwrap();
    let ts = schema.table(table).unwrap();
    let mut cols: Vec<&str> = columns.to_vec();
    if !cols.contains(&"_uuid") {
        cols.push("_uuid");
    }
    let r = client
        .transact(NB, vec![Op::select(table, vec![], Some(&cols))])
        .await
        .unwrap();
    r[0].rows
        .as_ref()
        .unwrap()
        .iter()
        .map(|o| {
            let row = Row::from_json(ts, o).unwrap();
            (row.uuid(), row)
        })
        .collect()
}

/// Waits until the replica's copy of `table` equals a fresh `select` of the same columns
/// (the replica may be a notification behind the transaction's answer).
pub async fn assert_replica_matches(
    client: &Client,
    replica: &Replica,
    table: &str,
    columns: &[&str],
) {
    let expected = select_rows(client, table, columns).await;
    let got = replica
        .wait_for(Duration::from_secs(5), |v| {
            (v.table(table) == Some(&expected)).then_some(())
        })
        .await;
    if got.is_err() {
        panic!(
            "replica of {table} differs from select:\nreplica: {:#?}\nselect: {:#?}",
            replica.table(table),
            expected
        );
    }
}
