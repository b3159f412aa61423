//! Logging that reaches the host: lines land in the hub's or agent's log, tagged with the
//! plugin's name (the host bounds how many lines and bytes one call may log).
//!
//! ```ignore
//! flotilla_plugin_sdk::info!("removing {} of {} clusters", removed, total);
//! flotilla_plugin_sdk::log::debug("plain text");
//! ```

/// A log level, as the host's `flotilla:types/log` has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Sends one line to the host's log. Without a world feature (native unit tests of a
/// plugin's logic) the line goes to stderr.
pub fn log(level: Level, message: &str) {
    crate::worlds::host_log(level, message);
}

pub fn trace(message: impl AsRef<str>) {
    log(Level::Trace, message.as_ref());
}

pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message.as_ref());
}

pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message.as_ref());
}

pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message.as_ref());
}

pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message.as_ref());
}

/// `trace!("format {}", args)`: a formatted line at trace level.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Trace, &::std::format!($($arg)*)) };
}

/// `debug!("format {}", args)`: a formatted line at debug level.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Debug, &::std::format!($($arg)*)) };
}

/// `info!("format {}", args)`: a formatted line at info level.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Info, &::std::format!($($arg)*)) };
}

/// `warn!("format {}", args)`: a formatted line at warn level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Warn, &::std::format!($($arg)*)) };
}

/// `error!("format {}", args)`: a formatted line at error level.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Error, &::std::format!($($arg)*)) };
}
