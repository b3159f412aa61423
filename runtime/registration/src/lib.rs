//! The hub side of cluster registration (docs/registration.md, OCM's §1):
//!
//! - bootstrap tokens ([`token`]): `ID.SECRET` bearer tokens checked against
//!   `BootstrapToken` objects that hold only the secret's hash;
//! - authorization ([`authz`]): the admin does anything, a bootstrap token may only
//!   register, an agent certificate reaches only its own cluster's objects, and only while
//!   its ManagedCluster exists and is accepted (checked on every request);
//! - admission ([`admission`]): CSRs record who asked for them, and ManagedCluster fields
//!   that only the hub administrator may set are guarded;
//! - controllers, each a level-triggered loop over store watches ([`controller`]): CSR
//!   approval and signing, acceptance (cluster namespace and conditions), lease health
//!   (conditions and taints) and cluster sets.
//!
//! The hub wires it up: [`Registration::new`] before the server starts (authorizer, token
//! authenticator, admission), [`Registration::start`] once it runs (controllers).

// `ApiError` carries a full Kubernetes Status; it only travels on the error path.
#![allow(clippy::result_large_err)]

pub mod acceptance;
pub mod admission;
pub mod approval;
pub mod authz;
pub mod autoaccept;
pub mod clustersets;
pub mod conditions;
mod error;
pub mod identity;
mod kinds;
pub mod lease;
pub mod names;
pub mod signing;
pub mod token;
mod util;

/// The controller runtime the registration controllers run on (shared with the simulated
/// spoke, so it lives with the API machinery).
pub use flotilla_apiserver::controller;
pub use util::{CsrState, cluster_denied, csr_state};

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use flotilla_apiserver::host::RunningServer;
use flotilla_apiserver::{Admission, Authorizer, Storage, TokenAuthenticator};
use flotilla_pki::CertificateAuthority;

pub use autoaccept::AutoAccept;
pub use error::RegistrationError;
pub(crate) use kinds::Kinds;

/// Default validity of the certificates the hub signs for agents: one year.
pub const DEFAULT_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Default grace of a cluster's lease, in multiples of its `leaseDurationSeconds`.
pub const DEFAULT_LEASE_GRACE_FACTOR: u32 = 5;
/// The shortest certificate the hub issues (Kubernetes' minimum `expirationSeconds`).
pub const MIN_CERT_VALIDITY: Duration = Duration::from_secs(600);

/// Registration settings from hub.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// Cluster-name glob patterns and requester identities (`system:bootstrap:<ID>`) whose
    /// clusters are accepted without `flotilla accept`.
    pub auto_accept: Vec<String>,
    /// Validity of signed certificates when a CSR does not ask for less.
    pub cert_validity: Duration,
    /// A cluster is unreachable once its lease is older than this many lease durations.
    pub lease_grace_factor: u32,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        RegistrationConfig {
            auto_accept: Vec::new(),
            cert_validity: DEFAULT_CERT_VALIDITY,
            lease_grace_factor: DEFAULT_LEASE_GRACE_FACTOR,
        }
    }
}

/// The storage the hooks read once the server runs. The authorizer and the token
/// authenticator must be handed to the server before its storage exists, so they look it
/// up here; until then they fail closed (agents and tokens are refused, the admin is not).
#[derive(Clone, Default)]
pub(crate) struct Hub(Arc<OnceLock<Bound>>);

pub(crate) struct Bound {
    pub storage: Storage,
    pub kinds: Arc<Kinds>,
}

impl Hub {
    pub(crate) fn get(&self) -> Option<&Bound> {
        self.0.get()
    }
}

/// Registration for one hub: the hooks it serves with and the controllers it runs.
pub struct Registration {
    hub: Hub,
    config: RegistrationConfig,
    auto_accept: Arc<AutoAccept>,
}

impl Registration {
    /// Checks the configuration and prepares the hooks.
    pub fn new(config: RegistrationConfig) -> Result<Registration, RegistrationError> {
        if config.lease_grace_factor == 0 {
            return Err(RegistrationError::Config("leaseGraceFactor must be at least 1".to_string()));
        }
        if config.cert_validity < MIN_CERT_VALIDITY {
            return Err(RegistrationError::Config(format!(
                "certValiditySeconds must be at least {} (got {})",
                MIN_CERT_VALIDITY.as_secs(),
                config.cert_validity.as_secs()
            )));
        }
        let auto_accept = Arc::new(AutoAccept::parse(&config.auto_accept)?);
        Ok(Registration { hub: Hub::default(), config, auto_accept })
    }

    /// The hub's authorizer: masters, bootstrap tokens and agents as docs/registration.md says.
    pub fn authorizer(&self) -> Arc<dyn Authorizer> {
        Arc::new(authz::RegistrationAuthorizer::new(self.hub.clone()))
    }

    /// Authenticates bootstrap tokens.
    pub fn token_authenticator(&self) -> Arc<dyn TokenAuthenticator> {
        Arc::new(token::BootstrapTokenAuthenticator::new(self.hub.clone()))
    }

    /// Admission for CSRs and ManagedClusters.
    pub fn admission(&self) -> Arc<dyn Admission> {
        Arc::new(admission::RegistrationAdmission)
    }

    /// Binds the hooks to the running server's storage and starts the controllers, which
    /// stop with the server. `ca` signs agents' certificates.
    pub fn start(&self, server: &mut RunningServer, ca: CertificateAuthority) -> Result<(), RegistrationError> {
        let storage = server.storage().clone();
        let kinds = Arc::new(Kinds::resolve(&storage.registry)?);
        // A second start on the same hooks keeps the first binding (same storage).
        let _ = self.hub.0.set(Bound { storage: storage.clone(), kinds: kinds.clone() });
        let ca = Arc::new(ca);
        let shutdown = server.shutdown_signal();
        let signal = || shutdown.clone();

        let approval = approval::Approval::new(storage.clone(), kinds.clone(), self.auto_accept.clone());
        let task = controller::run(approval, storage.clone(), signal());
        server.spawn(task);
        let signing = signing::Signing::new(storage.clone(), kinds.clone(), ca, self.config.cert_validity);
        let task = controller::run(signing, storage.clone(), signal());
        server.spawn(task);
        let acceptance = acceptance::ClusterAcceptance::new(storage.clone(), kinds.clone());
        let task = controller::run(acceptance, storage.clone(), signal());
        server.spawn(task);
        let health = lease::LeaseHealth::new(storage.clone(), kinds.clone(), self.config.lease_grace_factor);
        let task = controller::run(health, storage.clone(), signal());
        server.spawn(task);
        let sets = clustersets::ClusterSets::new(storage.clone(), kinds);
        let task = controller::run(sets, storage, signal());
        server.spawn(task);
        tracing::info!(
            auto_accept = ?self.config.auto_accept,
            cert_validity_seconds = self.config.cert_validity.as_secs(),
            lease_grace_factor = self.config.lease_grace_factor,
            "registration controllers started"
        );
        Ok(())
    }
}
