use std::path::PathBuf;

/// Everything that can go wrong in this crate. Each variant says what was being done and
/// with which input, so the message is useful on its own at the CLI's edge.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen refused or failed an operation (`what` says which).
    #[error("{what}: {source}")]
    Rcgen {
        what: String,
        #[source]
        source: rcgen::Error,
    },
    /// A certificate (PEM or DER) could not be parsed or is unsuitable.
    #[error("invalid certificate ({what}): {reason}")]
    InvalidCertificate { what: String, reason: String },
    /// A private key could not be parsed or does not fit its certificate.
    #[error("invalid private key ({what}): {reason}")]
    InvalidKey { what: String, reason: String },
    /// A certificate signing request could not be parsed or verified.
    #[error("invalid certificate signing request: {0}")]
    InvalidCsr(String),
    /// A request argument is unusable (empty SAN list, bad DNS name, empty CN, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A kubeconfig file is malformed or does not hold what was asked for.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig { path: String, message: String },
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}", path = path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl PkiError {
    pub(crate) fn rcgen(what: impl Into<String>) -> impl FnOnce(rcgen::Error) -> PkiError {
        let what = what.into();
        move |source| PkiError::Rcgen { what, source }
    }

    pub(crate) fn cert(what: impl Into<String>, reason: impl std::fmt::Display) -> PkiError {
        PkiError::InvalidCertificate { what: what.into(), reason: reason.to_string() }
    }

    pub(crate) fn key(what: impl Into<String>, reason: impl std::fmt::Display) -> PkiError {
        PkiError::InvalidKey { what: what.into(), reason: reason.to_string() }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> PkiError {
        let path = path.into();
        move |source| PkiError::Io { action, path, source }
    }
}
