//! A small QMP client: one connection per command (connect, read the greeting, negotiate
//! capabilities, execute, close). QEMU's QMP socket serves one client at a time, and a fresh
//! connection per call means a restarted agent needs no state to talk to a VM it re-adopts.
//! Events that arrive before the answer are skipped.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::HvError;

/// Runs `command` with `arguments` and returns its `return` value (QMP errors as `Failed`).
pub async fn execute(
    socket: &Path,
    command: &str,
    arguments: Option<Value>,
    timeout: Duration,
) -> Result<Value, HvError> {
    tokio::time::timeout(timeout, execute_inner(socket, command, arguments))
        .await
        .map_err(|_| HvError::Failed(format!("QMP {command} timed out after {timeout:?}")))?
}

async fn execute_inner(
    socket: &Path,
    command: &str,
    arguments: Option<Value>,
) -> Result<Value, HvError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| HvError::Failed(format!("connecting to QMP at {}: {e}", socket.display())))?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let greeting = next_message(&mut lines).await?;
    if greeting.get("QMP").is_none() {
        return Err(HvError::Failed(format!(
            "unexpected QMP greeting: {greeting}"
        )));
    }
    send(&mut write, &json!({"execute": "qmp_capabilities", "id": 0})).await?;
    answer(&mut lines, 0).await?;
    let mut msg = json!({"execute": command, "id": 1});
    if let Some(a) = arguments {
        msg["arguments"] = a;
    }
    send(&mut write, &msg).await?;
    answer(&mut lines, 1).await
}

async fn send(w: &mut tokio::net::unix::OwnedWriteHalf, msg: &Value) -> Result<(), HvError> {
    let mut text = msg.to_string();
    text.push('\n');
    w.write_all(text.as_bytes())
        .await
        .map_err(|e| HvError::Failed(format!("QMP write: {e}")))
}

async fn next_message(
    lines: &mut tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
) -> Result<Value, HvError> {
    loop {
        let line = lines
            .next_line()
            .await
            .map_err(|e| HvError::Failed(format!("QMP read: {e}")))?
            .ok_or_else(|| HvError::Failed("QMP connection closed".into()))?;
        if line.trim().is_empty() {
            continue;
        }
        return serde_json::from_str(&line)
            .map_err(|e| HvError::Failed(format!("QMP sent bad JSON ({e}): {line}")));
    }
}

/// The answer with `id`, skipping events.
async fn answer(
    lines: &mut tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    id: i64,
) -> Result<Value, HvError> {
    loop {
        let msg = next_message(lines).await?;
        if msg.get("event").is_some() {
            continue;
        }
        if msg.get("id").and_then(Value::as_i64) != Some(id) {
            continue;
        }
        if let Some(err) = msg.get("error") {
            return Err(HvError::Failed(format!(
                "QMP error: {}",
                err.get("desc").and_then(Value::as_str).unwrap_or("unknown")
            )));
        }
        return Ok(msg.get("return").cloned().unwrap_or(Value::Null));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    /// A QMP server that greets, sends an event before each answer, and fails `bad`.
    async fn fake_server(path: std::path::PathBuf) {
        let listener = UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let (r, mut w) = stream.into_split();
                    w.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": [\"oob\"]}}\r\n")
                        .await
                        .unwrap();
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let msg: Value = serde_json::from_str(&line).unwrap();
                        let id = msg["id"].clone();
                        w.write_all(b"{\"event\": \"RESUME\", \"timestamp\": {}}\r\n")
                            .await
                            .unwrap();
                        let reply = if msg["execute"] == "bad" {
                            json!({"error": {"class": "GenericError", "desc": "no such thing"}, "id": id})
                        } else if msg["execute"] == "query-status" {
                            json!({"return": {"status": "running", "running": true}, "id": id})
                        } else {
                            json!({"return": {}, "id": id})
                        };
                        w.write_all(format!("{reply}\r\n").as_bytes())
                            .await
                            .unwrap();
                    }
                });
            }
        });
    }

    #[tokio::test]
    async fn speaks_qmp() {
        let dir = std::env::temp_dir().join(format!("fs-qmp-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("qmp.sock");
        fake_server(sock.clone()).await;
        let t = Duration::from_secs(5);
        let st = execute(&sock, "query-status", None, t).await.unwrap();
        assert_eq!(st["status"], "running");
        let err = execute(&sock, "bad", None, t).await.unwrap_err();
        assert!(err.to_string().contains("no such thing"));
        assert!(execute(&dir.join("none.sock"), "cont", None, t)
            .await
            .is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
