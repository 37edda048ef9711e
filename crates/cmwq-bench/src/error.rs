//! The harness's error type.

use std::fmt;
use std::path::PathBuf;

/// Why a benchmark run failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A bad option (`--only` with an unknown name, ...).
    Usage(String),
    /// An executor refused a job or could not be created.
    Executor(String),
    /// A batch did not finish in time.
    Timeout(String),
    /// An item ran other than exactly once.
    Invariant(String),
    /// Writing an output file failed.
    Io(PathBuf, std::io::Error),
    /// Rendering a plot failed.
    Plot(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "usage: {m}"),
            Error::Executor(m) => write!(f, "executor: {m}"),
            Error::Timeout(m) => write!(f, "timeout: {m}"),
            Error::Invariant(m) => write!(f, "invariant broken: {m}"),
            Error::Io(p, e) => write!(f, "{}: {e}", p.display()),
            Error::Plot(m) => write!(f, "plot: {m}"),
        }
    }
}

impl From<cmwq::Error> for Error {
    fn from(e: cmwq::Error) -> Error {
        Error::Executor(format!("cmwq: {e}"))
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(_, e) => Some(e),
            _ => None,
        }
    }
}
