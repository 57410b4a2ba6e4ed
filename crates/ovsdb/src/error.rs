//! The client's one error type. Server input that does not parse becomes
//! [`Error::Protocol`] (and a reconnect when it breaks the stream), never a panic.

use std::time::Duration;

/// A failed operation of a transaction, as the server reported it. The server aborts the
/// whole transaction when any operation fails, so nothing of it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionError {
    /// Index of the failing operation in the list sent; equal to the number of operations
    /// when every operation succeeded but the commit itself failed (for example a
    /// referential integrity or unique index violation).
    pub index: usize,
    /// The failing operation (`"insert"`, `"wait"`...), or `"commit"`.
    pub op: String,
    /// The RFC 7047 error tag, e.g. `"constraint violation"`, `"timed out"`,
    /// `"referential integrity violation"`.
    pub error: String,
    /// The server's explanation, when it gave one.
    pub details: Option<String>,
}

impl std::fmt::Display for TransactionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "operation {} ({}) failed: {}",
            self.index, self.op, self.error
        )?;
        if let Some(d) = &self.details {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid OVSDB endpoint {0:?}: expected unix:PATH or tcp:HOST:PORT")]
    Endpoint(String),
    #[error("cannot connect to the OVSDB server at {endpoint}: {source}")]
    Connect {
        endpoint: String,
        source: std::io::Error,
    },
    /// The connection dropped while the request was in flight: it may or may not have been
    /// executed. The client reconnects by itself; retry after checking (or with `wait`
    /// operations that make the retry safe).
    #[error("the connection to the OVSDB server was lost (the request may or may not have been executed)")]
    Disconnected,
    /// No answer in time (also when the server stayed unreachable for that long).
    #[error("no answer from the OVSDB server within {0:?}")]
    Timeout(Duration),
    /// The server answered the request with an error (unknown database, bad monitor...).
    #[error("the OVSDB server refused {method}: {error}")]
    Rpc {
        method: String,
        error: serde_json::Value,
    },
    #[error("OVSDB transaction aborted: {0}")]
    Transaction(TransactionError),
    #[error("unexpected data from the OVSDB server: {0}")]
    Protocol(String),
    #[error("{0}")]
    Schema(String),
    #[error("the OVSDB client is shut down")]
    Closed,
}

impl Error {
    /// Worth retrying once the client is connected again: the request failed on the way,
    /// not because the server judged it.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Disconnected | Error::Timeout(_))
    }

    /// The transaction error, if that is what this is.
    pub fn transaction(&self) -> Option<&TransactionError> {
        match self {
            Error::Transaction(t) => Some(t),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
