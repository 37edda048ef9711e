//! Logging: through `tracing` with the `tracing` feature (the default), and
//! nothing at all without it. The messages are the kernel's where it has one.
//!
//! With the feature off each macro expands to a block that is never run, which
//! still type-checks its arguments (so a variable used only in a message is
//! used, and a message cannot rot), and costs nothing: no call, no branch, no
//! formatting. Only the forms cmwq uses are accepted: `key = value,` fields,
//! then a format string and its arguments.

#[cfg(feature = "tracing")]
macro_rules! log_error { ($($t:tt)*) => { ::tracing::error!($($t)*) }; }
#[cfg(feature = "tracing")]
macro_rules! log_warn { ($($t:tt)*) => { ::tracing::warn!($($t)*) }; }
#[cfg(feature = "tracing")]
macro_rules! log_info { ($($t:tt)*) => { ::tracing::info!($($t)*) }; }
#[cfg(feature = "tracing")]
macro_rules! log_debug { ($($t:tt)*) => { ::tracing::debug!($($t)*) }; }

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
#[allow(unused_imports, reason = "not every level is used in every build")]
pub(crate) use {log_debug as debug, log_error as error, log_info as info, log_warn as warn};
