//! A `tracing` subscriber that keeps every event of its test binary, installed
//! as the global default on first use: the tests of cmwq's tracepoints, its
//! warnings and the stall watchdog's reports read what they caused from it.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

/// One captured event: its name, level, target and fields (values as text;
/// `message` is the formatted message), and the whole event as one log line:
/// the message, then ` name=value` for each other field in order, every value
/// `Debug`-formatted (a `&str` field quoted and escaped, as a log line shows it).
#[derive(Debug, Clone)]
pub(crate) struct Ev {
    pub(crate) name: &'static str,
    pub(crate) level: tracing::Level,
    pub(crate) target: &'static str,
    pub(crate) fields: BTreeMap<String, String>,
    pub(crate) line: String,
}

impl Ev {
    /// The field `f`, as text.
    pub(crate) fn get(&self, f: &str) -> Option<&str> {
        self.fields.get(f).map(String::as_str)
    }

    /// The formatted message ("" if none).
    pub(crate) fn message(&self) -> &str {
        self.get("message").unwrap_or("")
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}"));
    }
}

/// Renders [`Ev::line`]: every value through `record_debug` (the default for
/// the other kinds), so that a string shows quoted and escaped.
struct Line<'a>(&'a mut String);

impl tracing::field::Visit for Line<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

struct Capture(Mutex<Vec<Ev>>);

impl tracing::Subscriber for &'static Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let m = event.metadata();
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let mut line = String::new();
        event.record(&mut Line(&mut line));
        let ev = Ev { name: m.name(), level: *m.level(), target: m.target(), fields, line };
        self.0.lock().unwrap().push(ev);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Every event of this binary so far, in order; installs the subscriber on
/// first use (it must be the binary's only one).
pub(crate) fn captured() -> &'static Mutex<Vec<Ev>> {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    &CAPTURE
        .get_or_init(|| {
            let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
            tracing::subscriber::set_global_default(c).expect("the only subscriber of this binary");
            c
        })
        .0
}
