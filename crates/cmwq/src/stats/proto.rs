//! The wire format: one JSON object per line, `"v": 1` in every one. The
//! module docs (`stats/mod.rs`) list the requests and replies.

use serde_json::{json, Value};

/// The protocol version this server speaks.
pub(super) const VERSION: u64 = 1;

/// What a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Request {
    /// Who is serving: pid, program, cmwq version, the operations.
    Hello,
    /// Per-workqueue counters, threads and the monitor's counters (`cmwq top`).
    Stats,
    /// Everything `cmwq dump` shows.
    Dump,
}

/// The operations, as named on the wire.
pub(super) const OPS: [&str; 3] = ["hello", "stats", "dump"];

/// Why a request gets an error reply (and its connection is closed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reject {
    /// Not one JSON object with `"v"` and `"op"`, or not UTF-8.
    BadRequest(String),
    /// No end of line within the request limit.
    TooLarge,
    /// The request did not arrive whole in time.
    Timeout,
    /// Over the request rate; try again after this many milliseconds.
    RateLimited(u64),
    /// Too many connections open at once.
    Busy,
    /// The peer is another user.
    Forbidden,
    /// A `"v"` this server does not speak.
    UnsupportedVersion(u64),
    /// An `"op"` this server does not know.
    UnknownOp(String),
}

impl Reject {
    /// The error code on the wire.
    pub(super) fn code(&self) -> &'static str {
        match self {
            Reject::BadRequest(_) => "bad-request",
            Reject::TooLarge => "too-large",
            Reject::Timeout => "timeout",
            Reject::RateLimited(_) => "rate-limited",
            Reject::Busy => "busy",
            Reject::Forbidden => "forbidden",
            Reject::UnsupportedVersion(_) => "unsupported-version",
            Reject::UnknownOp(_) => "unknown-op",
        }
    }

    /// The reply line, newline included.
    pub(super) fn reply(&self) -> Vec<u8> {
        let message = match self {
            Reject::BadRequest(why) => why.clone(),
            Reject::TooLarge => format!("a request is one line of at most {} bytes", super::MAX_REQUEST),
            Reject::Timeout => {
                format!("the request did not arrive whole within {} ms", super::REQUEST_TIMEOUT.as_millis())
            }
            Reject::RateLimited(ms) => format!("too many requests; try again in {ms} ms"),
            Reject::Busy => format!("{} connections are open already", super::MAX_CONNECTIONS),
            // Nothing about the process for another user.
            Reject::Forbidden => "only the user this process runs as may connect".to_owned(),
            Reject::UnsupportedVersion(v) => format!("version {v} is not spoken here; use {VERSION}"),
            Reject::UnknownOp(op) => format!("unknown op {op:?}; known: {}", OPS.join(", ")),
        };
        let mut v = json!({ "v": VERSION, "error": self.code(), "message": message });
        if let Reject::RateLimited(ms) = self {
            v["retry_after_ms"] = json!(ms);
        }
        if matches!(self, Reject::UnsupportedVersion(_)) {
            v["supported"] = json!([VERSION]);
        }
        line(&v)
    }
}

/// Parses one request line (without its newline; a trailing `\r` is allowed).
/// Unknown keys are ignored, so later clients may add some.
pub(super) fn parse(line: &[u8]) -> Result<Request, Reject> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text =
        std::str::from_utf8(line).map_err(|_| Reject::BadRequest("the request is not UTF-8".into()))?;
    let v: Value = serde_json::from_str(text)
        .map_err(|e| Reject::BadRequest(format!("the request is not one JSON object: {e}")))?;
    let obj = v.as_object().ok_or_else(|| {
        Reject::BadRequest("the request must be a JSON object like {\"v\":1,\"op\":\"hello\"}".into())
    })?;
    match obj.get("v") {
        None => return Err(Reject::BadRequest("the request has no \"v\" (the protocol version, 1)".into())),
        Some(v) => match v.as_u64() {
            Some(VERSION) => {}
            Some(other) => return Err(Reject::UnsupportedVersion(other)),
            None => return Err(Reject::BadRequest("\"v\" must be a whole number (1)".into())),
        },
    }
    match obj.get("op").map(|op| op.as_str()) {
        None => Err(Reject::BadRequest(format!("the request has no \"op\" (one of {})", OPS.join(", ")))),
        Some(None) => Err(Reject::BadRequest("\"op\" must be a string".into())),
        Some(Some("hello")) => Ok(Request::Hello),
        Some(Some("stats")) => Ok(Request::Stats),
        Some(Some("dump")) => Ok(Request::Dump),
        Some(Some(other)) => {
            // Echo at most a little of what we got.
            let shown: String = other.chars().take(32).collect();
            Err(Reject::UnknownOp(shown))
        }
    }
}

/// Keys written first, in this order, so that a reply reads `{"v":1,"op":…`
/// or `{"v":1,"error":…`; the others follow in alphabetical order.
const FIRST: [&str; 3] = ["v", "op", "error"];

/// A reply object as one line, newline included.
pub(super) fn line(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    match v.as_object() {
        Some(obj) => {
            out.push(b'{');
            let first = FIRST.iter().filter_map(|k| obj.get_key_value(*k));
            let rest = obj.iter().filter(|(k, _)| !FIRST.contains(&k.as_str()));
            for (i, (k, v)) in first.chain(rest).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Strings and values serialise infallibly to a Vec.
                let _ = serde_json::to_writer(&mut out, k);
                out.push(b':');
                let _ = serde_json::to_writer(&mut out, v);
            }
            out.push(b'}');
        }
        None => out.extend_from_slice(br#"{"v":1,"error":"internal"}"#),
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        assert_eq!(parse(br#"{"v":1,"op":"hello"}"#), Ok(Request::Hello));
        assert_eq!(parse(b"{\"op\":\"dump\",\"v\":1,\"later\":true}\r"), Ok(Request::Dump));
        assert_eq!(parse(br#"{"v":1,"op":"stats"}"#), Ok(Request::Stats));
    }

    #[test]
    fn bad_requests() {
        let code = |l: &[u8]| parse(l).unwrap_err().code();
        assert_eq!(code(b"hello"), "bad-request");
        assert_eq!(code(b"[1]"), "bad-request");
        assert_eq!(code(b"\xff\xfe"), "bad-request");
        assert_eq!(code(br#"{"op":"hello"}"#), "bad-request");
        assert_eq!(code(br#"{"v":"1","op":"hello"}"#), "bad-request");
        assert_eq!(code(br#"{"v":2,"op":"hello"}"#), "unsupported-version");
        assert_eq!(code(br#"{"v":1}"#), "bad-request");
        assert_eq!(code(br#"{"v":1,"op":7}"#), "bad-request");
        assert_eq!(code(br#"{"v":1,"op":"shutdown"}"#), "unknown-op");
    }

    #[test]
    fn replies_are_versioned_lines() {
        for r in
            [Reject::TooLarge, Reject::RateLimited(250), Reject::UnsupportedVersion(9), Reject::Forbidden]
        {
            let l = r.reply();
            assert_eq!(l.last(), Some(&b'\n'));
            assert_eq!(l.iter().filter(|&&b| b == b'\n').count(), 1);
            let v: Value = serde_json::from_slice(&l).unwrap();
            assert_eq!(v["v"], 1);
            assert_eq!(v["error"], r.code());
        }
        let l = Reject::Forbidden.reply();
        assert!(
            l.starts_with(br#"{"v":1,"error":"forbidden","message":"#),
            "{}",
            String::from_utf8_lossy(&l)
        );
        let v: Value = serde_json::from_slice(&Reject::RateLimited(250).reply()).unwrap();
        assert_eq!(v["retry_after_ms"], 250);
    }
}
