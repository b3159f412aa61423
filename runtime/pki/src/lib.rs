//! Flotilla's PKI: the hub's certificate authority, server and client certificates, CSRs for
//! agents that generate their keys locally, Kubernetes-style client identities (CN → user,
//! O → groups), kubeadm-style CA hashes and kubeconfig files that kubectl accepts.
//!
//! Keys are ECDSA P-256, stored as PKCS#8 PEM.

pub mod bootstrap_token;
mod ca;
mod csr;
mod der;
mod error;
mod identity;
mod kubeconfig;
mod pem;

pub use bootstrap_token::split_bootstrap_token;
pub use ca::{CertificateAuthority, IssuedCert, ca_hash_of_pem};
pub use csr::{CsrInfo, generate_key_and_csr, parse_csr};
pub use error::PkiError;
pub use identity::{
    CertInfo, ClientIdentity, cert_info, cert_info_der, certs_from_pem, identity_from_cert_der, identity_from_cert_pem,
};
pub use kubeconfig::{
    Cluster, Context, Kubeconfig, NamedCluster, NamedContext, NamedUser, ResolvedContext, User,
    write_private_file_atomically,
};

#[cfg(test)]
mod tests;
