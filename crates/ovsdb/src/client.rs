//! The connection: one task per [`Client`] owns the socket, correlates answers with
//! requests by id, answers the server's `echo`, applies monitor updates to replicas in the
//! order they arrive, and reconnects.
//!
//! Reconnecting: when the connection drops, requests in flight fail with
//! [`Error::Disconnected`] (they may or may not have been executed), the task reconnects
//! with exponential backoff, sends every live monitor again and replaces each replica's
//! content with the fresh snapshot. Requests made while disconnected wait in the queue
//! until the connection is back or their timeout passes; one whose caller gave up is
//! dropped from the queue, never sent late.
//!
//! Writing has a task of its own, so that a large request being written never stops the
//! reader (the server may be writing a large update to us at the same moment).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::{json, Value as Json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::framing::Framer;
use crate::op::{parse_results, Op, OpResult};
use crate::replica::{Replica, ReplicaShared, TableSpec};
use crate::schema::Schema;

/// Where the server listens: `unix:PATH` or `tcp:HOST:PORT` (`tcp:[::1]:6641` for IPv6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp { host: String, port: u16 },
}

impl Endpoint {
    pub fn parse(s: &str) -> Result<Endpoint> {
        let bad = || Error::Endpoint(s.to_string());
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(bad());
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        let rest = s.strip_prefix("tcp:").ok_or_else(bad)?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(bad());
        }
        let port = port.parse().map_err(|_| bad())?;
        Ok(Endpoint::Tcp {
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Tcp { host, port } if host.contains(':') => write!(f, "tcp:[{host}]:{port}"),
            Endpoint::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
        }
    }
}

/// Tuning knobs; [`Options::default`] suits a local server.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long a request may take, waiting for a reconnect included.
    pub request_timeout: Duration,
    /// Limit of one connection attempt (a TCP peer that does not answer).
    pub connect_timeout: Duration,
    /// First and longest pause between reconnection attempts (doubling in between).
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// After this long without a byte from the server, send an `echo`; without an answer
    /// within as long again, drop the connection and reconnect. `None`: never.
    pub probe_interval: Option<Duration>,
    /// A message larger than this is refused (and the connection dropped).
    pub max_message_bytes: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(4),
            probe_interval: Some(Duration::from_secs(15)),
            max_message_bytes: 512 << 20,
        }
    }
}

enum Command {
    Call {
        method: String,
        params: Json,
        reply: oneshot::Sender<Result<Json>>,
    },
    Monitor {
        replica: Arc<ReplicaShared>,
        reply: oneshot::Sender<Result<()>>,
    },
}

struct Shared {
    endpoint: Endpoint,
    options: Options,
    commands: mpsc::UnboundedSender<Command>,
    connected: watch::Receiver<bool>,
    connections: Arc<AtomicU64>,
    schemas: Mutex<HashMap<String, Arc<Schema>>>,
    /// Dropped with the last handle: the connection task sees it and ends.
    _shutdown: watch::Sender<()>,
}

/// An OVSDB client. Clones share one connection; it closes when the last clone (and the
/// last [`Replica`]) is dropped.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.shared.endpoint.to_string())
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Client {
    /// Connects to `unix:PATH` or `tcp:HOST:PORT`. The first attempt must succeed (a wrong
    /// endpoint is an error at once); later drops are repaired in the background.
    pub async fn connect(endpoint: &str) -> Result<Client> {
        Client::connect_with(endpoint, Options::default()).await
    }

    pub async fn connect_with(endpoint: &str, options: Options) -> Result<Client> {
        let endpoint = Endpoint::parse(endpoint)?;
        let stream = open(&endpoint, options.connect_timeout).await?;
        let (commands, rx) = mpsc::unbounded_channel();
        let (connected_tx, connected) = watch::channel(false);
        let (shutdown, shutdown_rx) = watch::channel(());
        let connections = Arc::new(AtomicU64::new(0));
        let task = Task {
            connections: connections.clone(),
            endpoint: endpoint.clone(),
            options: options.clone(),
            commands: rx,
            connected: connected_tx,
            shutdown: shutdown_rx,
            monitors: Vec::new(),
            next_monitor: 0,
        };
        tokio::spawn(task.run(stream));
        Ok(Client {
            shared: Arc::new(Shared {
                endpoint,
                options,
                commands,
                connected,
                connections,
                schemas: Mutex::new(HashMap::new()),
                _shutdown: shutdown,
            }),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.shared.endpoint
    }

    pub fn is_connected(&self) -> bool {
        *self.shared.connected.borrow()
    }

    /// How many times a connection was established: 1, plus one per reconnect.
    pub fn connection_count(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Waits until the connection is up (at once if it is).
    pub async fn wait_connected(&self, timeout: Duration) -> Result<()> {
        let mut rx = self.shared.connected.clone();
        let up = tokio::time::timeout(timeout, async { rx.wait_for(|c| *c).await.is_ok() }).await;
        match up {
            Err(_) => Err(Error::Timeout(timeout)),
            Ok(false) => Err(Error::Closed),
            Ok(true) => Ok(()),
        }
    }

    /// Any JSON-RPC method: the `result` of the answer, or [`Error::Rpc`] with its `error`.
    pub async fn call(&self, method: &str, params: Json) -> Result<Json> {
        let (reply, rx) = oneshot::channel();
        self.shared
            .commands
            .send(Command::Call {
                method: method.to_string(),
                params,
                reply,
            })
            .map_err(|_| Error::Closed)?;
        let timeout = self.shared.options.request_timeout;
        match tokio::time::timeout(timeout, rx).await {
            Err(_) => Err(Error::Timeout(timeout)),
            Ok(Err(_)) => Err(Error::Closed),
            Ok(Ok(r)) => r,
        }
    }

    /// The databases the server holds (e.g. `["OVN_Northbound", "_Server"]`).
    pub async fn list_dbs(&self) -> Result<Vec<String>> {
        let r = self.call("list_dbs", json!([])).await?;
        serde_json::from_value(r.clone())
            .map_err(|_| Error::Protocol(format!("list_dbs answered {r}")))
    }

    /// The schema of `db`, fetched from the server (and remembered for [`Client::schema`]).
    pub async fn get_schema(&self, db: &str) -> Result<Schema> {
        let raw = self.call("get_schema", json!([db])).await?;
        let schema = Schema::from_json(raw)?;
        self.lock_schemas()
            .insert(db.to_string(), Arc::new(schema.clone()));
        Ok(schema)
    }

    /// The schema of `db`, fetched once per client.
    pub async fn schema(&self, db: &str) -> Result<Arc<Schema>> {
        if let Some(s) = self.lock_schemas().get(db) {
            return Ok(s.clone());
        }
        self.get_schema(db).await?;
        self.lock_schemas()
            .get(db)
            .cloned()
            .ok_or_else(|| Error::Schema(format!("schema of {db} vanished")))
    }

    fn lock_schemas(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Schema>>> {
        self.shared
            .schemas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `ops` as one transaction. If any operation fails, the server has aborted the
    /// whole transaction and the result is [`Error::Transaction`] naming the operation.
    pub async fn transact(&self, db: &str, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        let names: Vec<String> = ops.iter().map(Op::name).collect();
        let mut params = Vec::with_capacity(ops.len() + 1);
        params.push(json!(db));
        params.extend(ops.iter().map(Op::to_json));
        let result = self.call("transact", Json::Array(params)).await?;
        parse_results(&names, result)
    }

    /// [`Client::transact`] with operations written as raw JSON.
    pub async fn transact_json(&self, db: &str, ops: Vec<Json>) -> Result<Vec<OpResult>> {
        let names: Vec<String> = ops
            .iter()
            .map(|o| {
                o.get("op")
                    .and_then(Json::as_str)
                    .unwrap_or("?")
                    .to_string()
            })
            .collect();
        let mut params = Vec::with_capacity(ops.len() + 1);
        params.push(json!(db));
        params.extend(ops);
        let result = self.call("transact", Json::Array(params)).await?;
        parse_results(&names, result)
    }

    /// Starts a `monitor_cond` of `tables` and returns the replica once it holds the
    /// initial snapshot. It stays current until the last clone of it is dropped.
    pub async fn monitor(&self, db: &str, tables: &[TableSpec]) -> Result<Replica> {
        let schema = self.schema(db).await?;
        let shared = Arc::new(ReplicaShared::new(db, schema, tables)?);
        let (reply, rx) = oneshot::channel();
        self.shared
            .commands
            .send(Command::Monitor {
                replica: shared.clone(),
                reply,
            })
            .map_err(|_| Error::Closed)?;
        let timeout = self.shared.options.request_timeout;
        match tokio::time::timeout(timeout, rx).await {
            Err(_) => Err(Error::Timeout(timeout)),
            Ok(Err(_)) => Err(Error::Closed),
            Ok(Ok(r)) => r.map(|()| Replica {
                shared,
                _client: self.clone(),
            }),
        }
    }
}

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

async fn open(endpoint: &Endpoint, limit: Duration) -> Result<(Reader, Writer)> {
    let attempt = async {
        match endpoint {
            Endpoint::Unix(path) => {
                let s = tokio::net::UnixStream::connect(path).await?;
                let (r, w) = s.into_split();
                Ok::<(Reader, Writer), std::io::Error>((Box::new(r), Box::new(w)))
            }
            Endpoint::Tcp { host, port } => {
                let s = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                s.set_nodelay(true)?;
                let (r, w) = s.into_split();
                Ok((Box::new(r) as Reader, Box::new(w) as Writer))
            }
        }
    };
    let connect_err = |source| Error::Connect {
        endpoint: endpoint.to_string(),
        source,
    };
    match tokio::time::timeout(limit, attempt).await {
        Err(_) => Err(connect_err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connection attempt timed out",
        ))),
        Ok(r) => r.map_err(connect_err),
    }
}

/// A monitor the task keeps alive across reconnects.
struct MonitorReg {
    /// The `<json-value>` naming the monitor in `monitor_cond` and `update2`.
    id: String,
    replica: Weak<ReplicaShared>,
    /// The caller of [`Client::monitor`], answered with the first snapshot.
    waiting: Option<oneshot::Sender<Result<()>>>,
}

enum Pending {
    Call {
        method: String,
        reply: oneshot::Sender<Result<Json>>,
    },
    Monitor(String),
    Probe,
    Cancel,
}

enum End {
    Shutdown,
    Lost(String),
}

/// Request ids are unique for the life of the process, so an answer can never be taken
/// for one to another request.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

struct Task {
    endpoint: Endpoint,
    options: Options,
    commands: mpsc::UnboundedReceiver<Command>,
    connected: watch::Sender<bool>,
    connections: Arc<AtomicU64>,
    shutdown: watch::Receiver<()>,
    monitors: Vec<MonitorReg>,
    next_monitor: u64,
}

/// What one connection needs while it lives.
struct Session {
    out: mpsc::UnboundedSender<Vec<u8>>,
    pending: HashMap<u64, Pending>,
}

impl Session {
    fn send(&mut self, msg: &Json) -> std::result::Result<(), String> {
        let bytes = serde_json::to_vec(msg).map_err(|e| e.to_string())?;
        self.out
            .send(bytes)
            .map_err(|_| "the writer stopped".to_string())
    }

    fn request(
        &mut self,
        method: &str,
        params: Json,
        pending: Pending,
    ) -> std::result::Result<(), String> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        self.send(&json!({"method": method, "params": params, "id": id}))?;
        self.pending.insert(id, pending);
        Ok(())
    }
}

impl Task {
    async fn run(mut self, first: (Reader, Writer)) {
        let mut stream = Some(first);
        let mut backoff = self.options.reconnect_min;
        loop {
            let (reader, writer) = match stream.take() {
                Some(s) => s,
                None => {
                    let attempt = tokio::select! {
                        _ = self.shutdown.changed() => return,
                        r = open(&self.endpoint, self.options.connect_timeout) => r,
                    };
                    match attempt {
                        Ok(s) => {
                            tracing::info!(endpoint = %self.endpoint, "reconnected to the OVSDB server");
                            s
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "OVSDB reconnect attempt failed");
                            tokio::select! {
                                _ = self.shutdown.changed() => return,
                                _ = tokio::time::sleep(backoff) => {}
                            }
                            backoff = (backoff * 2).min(self.options.reconnect_max);
                            continue;
                        }
                    }
                }
            };
            backoff = self.options.reconnect_min;
            self.connections.fetch_add(1, Ordering::Relaxed);
            let _ = self.connected.send(true);
            let end = self.session(reader, writer).await;
            let _ = self.connected.send(false);
            for m in &self.monitors {
                if let Some(r) = m.replica.upgrade() {
                    r.mark_unsynced();
                }
            }
            match end {
                End::Shutdown => return,
                End::Lost(why) => {
                    tracing::warn!(endpoint = %self.endpoint, reason = %why,
                        "lost the connection to the OVSDB server; reconnecting");
                }
            }
        }
    }

    async fn session(&mut self, mut reader: Reader, mut writer: Writer) -> End {
        let (out, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let mut write_task = tokio::spawn(async move {
            while let Some(buf) = out_rx.recv().await {
                writer.write_all(&buf).await?;
            }
            Ok::<(), std::io::Error>(())
        });
        let mut s = Session {
            out,
            pending: HashMap::new(),
        };
        let end = self
            .session_loop(&mut s, &mut reader, &mut write_task)
            .await;
        write_task.abort();
        // Calls in flight get their answer never: they fail now, and may be retried.
        for (_, p) in s.pending.drain() {
            if let Pending::Call { reply, .. } = p {
                let _ = reply.send(Err(match end {
                    End::Shutdown => Error::Closed,
                    End::Lost(_) => Error::Disconnected,
                }));
            }
        }
        if let End::Shutdown = end {
            for m in &mut self.monitors {
                if let Some(w) = m.waiting.take() {
                    let _ = w.send(Err(Error::Closed));
                }
            }
        }
        end
    }

    async fn session_loop(
        &mut self,
        s: &mut Session,
        reader: &mut Reader,
        write_task: &mut tokio::task::JoinHandle<std::io::Result<()>>,
    ) -> End {
        // Monitors of an earlier connection start again from a fresh snapshot.
        self.monitors.retain(|m| m.replica.strong_count() > 0);
        for i in 0..self.monitors.len() {
            let Some(replica) = self.monitors[i].replica.upgrade() else {
                continue;
            };
            let id = self.monitors[i].id.clone();
            let params = json!([replica.db, id, replica.monitor_requests()]);
            if let Err(e) = s.request("monitor_cond", params, Pending::Monitor(id)) {
                return End::Lost(e);
            }
        }

        let mut framer = Framer::new(self.options.max_message_bytes);
        let mut buf = vec![0u8; 64 * 1024];
        let probe = self.options.probe_interval;
        let far = Duration::from_secs(86_400 * 365);
        let mut quiet_until = Instant::now() + probe.unwrap_or(far);
        let mut probing = false;
        loop {
            tokio::select! {
                _ = self.shutdown.changed() => return End::Shutdown,
                r = &mut *write_task => {
                    return End::Lost(match r {
                        Ok(Err(e)) => format!("write failed: {e}"),
                        _ => "the writer stopped".to_string(),
                    });
                }
                n = reader.read(&mut buf) => {
                    let n = match n {
                        Ok(0) => return End::Lost("the server closed the connection".into()),
                        Ok(n) => n,
                        Err(e) => return End::Lost(format!("read failed: {e}")),
                    };
                    framer.push(&buf[..n]);
                    quiet_until = Instant::now() + probe.unwrap_or(far);
                    probing = false;
                    loop {
                        match framer.next_message() {
                            Ok(Some(msg)) => {
                                if let Err(e) = self.handle(s, msg) {
                                    return End::Lost(e);
                                }
                            }
                            Ok(None) => break,
                            Err(e) => return End::Lost(e.to_string()),
                        }
                    }
                }
                cmd = self.commands.recv() => {
                    let Some(cmd) = cmd else { return End::Shutdown };
                    if let Err(e) = self.send_command(s, cmd) {
                        return End::Lost(e);
                    }
                }
                _ = tokio::time::sleep_until(quiet_until), if probe.is_some() => {
                    if probing {
                        return End::Lost("no answer to an echo probe".into());
                    }
                    if let Err(e) = s.request("echo", json!(["ferrostack-probe"]), Pending::Probe) {
                        return End::Lost(e);
                    }
                    probing = true;
                    quiet_until = Instant::now() + probe.unwrap_or(far);
                }
            }
        }
    }

    fn send_command(&mut self, s: &mut Session, cmd: Command) -> std::result::Result<(), String> {
        match cmd {
            Command::Call {
                method,
                params,
                reply,
            } => {
                // The caller timed out while we were disconnected: never send it late.
                if reply.is_closed() {
                    return Ok(());
                }
                s.request(&method.clone(), params, Pending::Call { method, reply })
            }
            Command::Monitor { replica, reply } => {
                if reply.is_closed() {
                    return Ok(());
                }
                self.next_monitor += 1;
                let id = format!("ferrostack-monitor-{}", self.next_monitor);
                let params = json!([replica.db, id, replica.monitor_requests()]);
                self.monitors.push(MonitorReg {
                    id: id.clone(),
                    replica: Arc::downgrade(&replica),
                    waiting: Some(reply),
                });
                s.request("monitor_cond", params, Pending::Monitor(id))
            }
        }
    }

    /// One message from the server. An error drops the connection.
    fn handle(&mut self, s: &mut Session, msg: Json) -> std::result::Result<(), String> {
        if let Some(method) = msg.get("method").and_then(Json::as_str) {
            let id = msg.get("id").cloned().unwrap_or(Json::Null);
            let params = msg.get("params").cloned().unwrap_or(Json::Null);
            return match method {
                "echo" => s.send(&json!({"id": id, "result": params, "error": null})),
                "update2" => self.on_update(s, &params),
                _ if !id.is_null() => s.send(&json!({
                    "id": id, "result": null, "error": format!("unknown method {method}")
                })),
                // Notifications we did not ask for (update, locked, stolen...).
                _ => Ok(()),
            };
        }
        let Some(id) = msg.get("id").and_then(Json::as_u64) else {
            tracing::debug!(%msg, "OVSDB answer without a request id of ours");
            return Ok(());
        };
        let Some(pending) = s.pending.remove(&id) else {
            return Ok(());
        };
        let error = msg.get("error").filter(|e| !e.is_null()).cloned();
        let result = msg.get("result").cloned().unwrap_or(Json::Null);
        match pending {
            Pending::Call { method, reply } => {
                let _ = reply.send(match error {
                    Some(error) => Err(Error::Rpc { method, error }),
                    None => Ok(result),
                });
            }
            Pending::Monitor(mid) => {
                let Some(pos) = self.monitors.iter().position(|m| m.id == mid) else {
                    return Ok(());
                };
                if let Some(error) = error {
                    tracing::warn!(monitor = %mid, %error, "the OVSDB server refused a monitor");
                    let m = self.monitors.remove(pos);
                    if let Some(w) = m.waiting {
                        let _ = w.send(Err(Error::Rpc {
                            method: "monitor_cond".into(),
                            error,
                        }));
                    }
                    return Ok(());
                }
                let m = &mut self.monitors[pos];
                match m.replica.upgrade() {
                    Some(r) => {
                        r.apply_initial(&result).map_err(|e| e.to_string())?;
                        if let Some(w) = m.waiting.take() {
                            let _ = w.send(Ok(()));
                        }
                    }
                    None => {
                        let id = m.id.clone();
                        self.monitors.remove(pos);
                        s.request("monitor_cancel", json!([id]), Pending::Cancel)?;
                    }
                }
            }
            Pending::Probe | Pending::Cancel => {}
        }
        Ok(())
    }

    fn on_update(&mut self, s: &mut Session, params: &Json) -> std::result::Result<(), String> {
        let (Some(mid), Some(updates)) = (params.get(0).and_then(Json::as_str), params.get(1))
        else {
            return Err(format!("malformed update2 notification: {params}"));
        };
        let Some(pos) = self.monitors.iter().position(|m| m.id == mid) else {
            return Ok(());
        };
        match self.monitors[pos].replica.upgrade() {
            Some(r) => r
                .apply_update(updates)
                .map_err(|e| format!("monitor {mid}: {e}")),
            None => {
                // Nobody reads this replica any more.
                self.monitors.remove(pos);
                s.request("monitor_cancel", json!([mid]), Pending::Cancel)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("unix:/run/nb.sock").unwrap(),
            Endpoint::Unix("/run/nb.sock".into())
        );
        assert_eq!(
            Endpoint::parse("tcp:127.0.0.1:6641").unwrap(),
            Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port: 6641
            }
        );
        let v6 = Endpoint::parse("tcp:[::1]:6641").unwrap();
        assert_eq!(
            v6,
            Endpoint::Tcp {
                host: "::1".into(),
                port: 6641
            }
        );
        assert_eq!(v6.to_string(), "tcp:[::1]:6641");
        for bad in [
            "",
            "unix:",
            "tcp:host",
            "tcp::1",
            "ssl:h:1",
            "tcp:h:99999",
            "/x",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn refused_connection_is_an_error_naming_the_endpoint() {
        let e = Client::connect("unix:/nonexistent/ferrostack-ovsdb.sock")
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Connect { .. }));
        assert!(e.to_string().contains("/nonexistent/"), "{e}");
    }
}
