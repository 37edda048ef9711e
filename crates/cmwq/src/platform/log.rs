//! Logging: through `tracing` with the `tracing` feature (the default), and
//! nothing at all without it. The messages are the kernel's where it has one.
//!
//! With the feature off each macro expands to a block that is never run, which
//! still type-checks its arguments (so a variable used only in a message is
//! used, and a message cannot rot), and costs nothing: no call, no branch, no
//! formatting. Only the forms cmwq uses are accepted: `key = value,` fields,
//! then a format string and its arguments. Context (a workqueue's name, a pool,
//! a CPU) goes in fields, so that a subscriber can filter on it; the message
//! says what happened.
//!
//! [`event!`] is the trace form for the kernel's tracepoints
//! (`include/trace/events/workqueue.h`): an event named after the tracepoint,
//! target `cmwq`, level TRACE, fields only. With the feature off it costs
//! nothing, as above. With it on and no subscriber interested, it costs what
//! `tracing` costs: the global max-level check and the callsite's cached
//! interest, each a relaxed load; the field values are computed only for a
//! subscriber that wants the event.

#[cfg(feature = "tracing")]
macro_rules! log_error { ($($t:tt)*) => { ::tracing::error!($($t)*) }; }
#[cfg(feature = "tracing")]
macro_rules! log_warn { ($($t:tt)*) => { ::tracing::warn!($($t)*) }; }
#[cfg(feature = "tracing")]
macro_rules! log_info { ($($t:tt)*) => { ::tracing::info!($($t)*) }; }
#[cfg(feature = "tracing")]
macro_rules! log_debug { ($($t:tt)*) => { ::tracing::debug!($($t)*) }; }

/// A tracepoint: `event!("workqueue_queue_work", field = value, ...)`. Values
/// are what `tracing` records (integers, `&str`, `bool`, `Option` of those) or
/// [`display`] of anything `Display`.
#[cfg(feature = "tracing")]
macro_rules! event {
    ($name:literal, $($field:ident = $value:expr),* $(,)?) => {
        // Only the level check is inline: the callsite and its recording stay
        // out of the hot function's code (`cold`).
        if ::tracing::level_enabled!(::tracing::Level::TRACE) {
            $crate::platform::log::cold(|| {
                ::tracing::event!(name: $name, target: "cmwq", ::tracing::Level::TRACE, $($field = $value,)* $name)
            });
        }
    };
}

/// Runs `f` out of line: the body of an [`event!`] that some subscriber may want.
#[cfg(feature = "tracing")]
#[cold]
#[inline(never)]
pub(crate) fn cold(f: impl FnOnce()) {
    f()
}
#[cfg(not(feature = "tracing"))]
macro_rules! event {
    ($name:literal, $($field:ident = $value:expr),* $(,)?) => {{
        #[allow(unreachable_code, clippy::diverging_sub_expression)]
        if false {
            $(let _ = &$value;)*
        }
    }};
}

/// A field value recorded with its `Display` (formatted only for a subscriber
/// that takes the event).
#[cfg(feature = "tracing")]
pub(crate) fn display<T: std::fmt::Display>(t: T) -> ::tracing::field::DisplayValue<T> {
    ::tracing::field::display(t)
}
#[cfg(not(feature = "tracing"))]
pub(crate) fn display<T: std::fmt::Display>(t: T) -> T {
    t
}

#[cfg(not(feature = "tracing"))]
macro_rules! nothing {
    ($($field:ident = $value:expr,)* $fmt:literal $(, $arg:expr)* $(,)?) => {{
        #[allow(unreachable_code, clippy::diverging_sub_expression)]
        if false {
            $(let _ = &$value;)*
            let _ = format_args!($fmt $(, $arg)*);
        }
    }};
}
#[cfg(not(feature = "tracing"))]
macro_rules! log_error { ($($t:tt)*) => { $crate::platform::log::nothing!($($t)*) }; }
#[cfg(not(feature = "tracing"))]
macro_rules! log_warn { ($($t:tt)*) => { $crate::platform::log::nothing!($($t)*) }; }
#[cfg(not(feature = "tracing"))]
macro_rules! log_info { ($($t:tt)*) => { $crate::platform::log::nothing!($($t)*) }; }
#[cfg(not(feature = "tracing"))]
macro_rules! log_debug { ($($t:tt)*) => { $crate::platform::log::nothing!($($t)*) }; }
#[cfg(not(feature = "tracing"))]
pub(crate) use nothing;

// Renamed on export: a bare `warn` in a `use` would be ambiguous with the
// built-in attribute.
pub(crate) use event;
#[allow(unused_imports, reason = "not every level is used in every build")]
pub(crate) use {log_debug as debug, log_error as error, log_info as info, log_warn as warn};
