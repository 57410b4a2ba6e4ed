//! Splitting the byte stream into JSON messages. OVSDB's JSON-RPC has no framing: messages
//! are JSON objects written one after the other. This scanner keeps its state between reads
//! (nesting depth, inside a string, after a backslash), so each byte is looked at once
//! however the messages are cut into reads, and a large monitor snapshot arriving in many
//! pieces costs no rescans. UTF-8 needs no care: every byte of a multi-byte character is
//! >= 0x80 and never equals a brace, bracket, quote or backslash.

use serde_json::Value as Json;

use crate::error::Error;

pub(crate) struct Framer {
    buf: Vec<u8>,
    /// Bytes before this offset belong to messages already returned.
    consumed: usize,
    /// Next byte to scan.
    pos: usize,
    /// Start of the message being scanned (depth > 0).
    start: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
    max_message: usize,
}

impl Framer {
    pub(crate) fn new(max_message: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            consumed: 0,
            pos: 0,
            start: 0,
            depth: 0,
            in_string: false,
            escaped: false,
            max_message,
        }
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        // Drop what was returned already once it is most of the buffer, so the copy is
        // amortized over many messages.
        if self.consumed > 0 && self.consumed * 2 >= self.buf.len() {
            self.buf.drain(..self.consumed);
            self.pos -= self.consumed;
            self.start = self.start.saturating_sub(self.consumed);
            self.consumed = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, `Ok(None)` if more bytes are needed. An error means the
    /// stream cannot be trusted any more (the caller drops the connection).
    pub(crate) fn next_message(&mut self) -> Result<Option<Json>, Error> {
        while self.pos < self.buf.len() {
            let b = self.buf[self.pos];
            let i = self.pos;
            self.pos += 1;
            if self.depth > 0 && i - self.start >= self.max_message {
                return Err(Error::Protocol(format!(
                    "message larger than {} bytes",
                    self.max_message
                )));
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' if self.depth > 0 => self.in_string = true,
                b'{' | b'[' => {
                    if self.depth == 0 {
                        self.start = i;
                    }
                    self.depth += 1;
                }
                b'}' | b']' if self.depth > 0 => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        let msg = &self.buf[self.start..=i];
                        self.consumed = i + 1;
                        return serde_json::from_slice(msg)
                            .map(Some)
                            .map_err(|e| Error::Protocol(format!("malformed JSON message: {e}")));
                    }
                }
                b' ' | b'\t' | b'\r' | b'\n' if self.depth == 0 => self.consumed = i + 1,
                _ if self.depth == 0 => {
                    return Err(Error::Protocol(format!(
                        "expected a JSON object, found byte 0x{b:02x}"
                    )))
                }
                _ => {}
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn all(f: &mut Framer) -> Vec<Json> {
        let mut out = Vec::new();
        while let Some(m) = f.next_message().unwrap() {
            out.push(m);
        }
        out
    }

    #[test]
    fn splits_messages_cut_at_every_byte() {
        let msgs = vec![
            json!({"id": 1, "result": ["OVN_Northbound", "_Server"], "error": null}),
            json!({"method": "echo", "params": [], "id": "echo"}),
            json!({"s": "br}ace{s [in] \"quoted\" \\ strings", "u": "h\u{e9}llo \u{1f600}"}),
            json!({"nested": [[{"a": [1, {"b": {}}]}], []]}),
        ];
        let text: String = msgs
            .iter()
            .map(|m| serde_json::to_string(m).unwrap() + "\n")
            .collect();
        let bytes = text.as_bytes();
        for chunk in 1..=bytes.len() {
            let mut f = Framer::new(1 << 20);
            let mut got = Vec::new();
            for piece in bytes.chunks(chunk) {
                f.push(piece);
                got.extend(all(&mut f));
            }
            assert_eq!(got, msgs, "chunk size {chunk}");
        }
    }

    #[test]
    fn garbage_and_oversize_are_errors() {
        let mut f = Framer::new(1 << 20);
        f.push(b"  hello");
        assert!(f.next_message().is_err());

        let mut f = Framer::new(16);
        f.push(b"{\"a\": \"0123456789abcdef\"}");
        assert!(f.next_message().is_err());

        let mut f = Framer::new(1 << 20);
        f.push(b"{\"a\": nope}");
        assert!(f.next_message().is_err());
    }

    #[test]
    fn buffer_is_compacted() {
        let mut f = Framer::new(1 << 20);
        for i in 0..10_000 {
            f.push(format!("{{\"id\": {i}}}").as_bytes());
            assert_eq!(f.next_message().unwrap(), Some(json!({"id": i})));
        }
        assert!(f.buf.len() < 64, "buffer kept {} bytes", f.buf.len());
    }
}
