use flotilla_apimachinery::ApiError;

/// What can go wrong in registration outside a single API request.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// The hub does not serve a kind registration needs (a build defect).
    #[error(transparent)]
    KindNotServed(#[from] flotilla_apiserver::NotServed),
    /// An `autoAccept` entry in hub.json is unusable.
    #[error("autoAccept entry {entry:?}: {reason}")]
    AutoAccept { entry: String, reason: String },
    /// A configuration value is out of range.
    #[error("{0}")]
    Config(String),
    /// Reading or writing through the API storage failed.
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("PKI: {0}")]
    Pki(#[from] flotilla_pki::PkiError),
}
