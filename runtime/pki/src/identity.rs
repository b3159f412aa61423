//! Who a client certificate says its holder is, the Kubernetes way (CN → user, O → groups),
//! and a few facts about a certificate (validity, SANs) for rotation and diagnostics.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::X509Name;

use crate::{PkiError, pem};

/// The user and groups a client certificate authenticates as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub user: String,
    pub groups: Vec<String>,
}

/// Facts about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject CN ("" if none).
    pub common_name: String,
    /// Subject O values, in order.
    pub organizations: Vec<String>,
    /// Issuer CN ("" if none).
    pub issuer_common_name: String,
    pub not_before: jiff::Timestamp,
    pub not_after: jiff::Timestamp,
    pub is_ca: bool,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<std::net::IpAddr>,
    /// Serial number, lowercase hex.
    pub serial_hex: String,
}

/// The identity of a client certificate (DER): CN → user, each O → a group.
pub fn identity_from_cert_der(der: &[u8]) -> Result<ClientIdentity, PkiError> {
    let what = "client certificate";
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| PkiError::cert(what, e))?;
    let (user, groups) = subject_parts(cert.subject(), what)?;
    if user.is_empty() {
        return Err(PkiError::cert(what, "subject has no common name"));
    }
    Ok(ClientIdentity { user, groups })
}

/// [`identity_from_cert_der`] for the first certificate of a PEM.
pub fn identity_from_cert_pem(cert_pem: &str) -> Result<ClientIdentity, PkiError> {
    identity_from_cert_der(&pem::cert_der(cert_pem, "client certificate")?)
}

/// Facts about the first certificate of a PEM.
pub fn cert_info(cert_pem: &str) -> Result<CertInfo, PkiError> {
    let what = "certificate";
    let der = pem::cert_der(cert_pem, what)?;
    cert_info_der(&der)
}

/// Facts about a DER certificate.
pub fn cert_info_der(der: &[u8]) -> Result<CertInfo, PkiError> {
    let what = "certificate";
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| PkiError::cert(what, e))?;
    let (common_name, organizations) = subject_parts(cert.subject(), what)?;
    let (issuer_common_name, _) = subject_parts(cert.issuer(), what)?;
    let ts = |t: x509_parser::time::ASN1Time| {
        jiff::Timestamp::from_second(t.timestamp()).map_err(|e| PkiError::cert(what, e))
    };
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns_names.push((*d).to_string()),
                GeneralName::IPAddress(bytes) => {
                    if let Ok(b) = <[u8; 4]>::try_from(*bytes) {
                        ip_addresses.push(std::net::IpAddr::from(b));
                    } else if let Ok(b) = <[u8; 16]>::try_from(*bytes) {
                        ip_addresses.push(std::net::IpAddr::from(b));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(CertInfo {
        common_name,
        organizations,
        issuer_common_name,
        not_before: ts(cert.validity().not_before)?,
        not_after: ts(cert.validity().not_after)?,
        is_ca: cert.is_ca(),
        dns_names,
        ip_addresses,
        serial_hex: hex::encode(cert.raw_serial()),
    })
}

/// Every certificate of a PEM bundle, as DER (e.g. to build a root store).
pub fn certs_from_pem(pem_bundle: &str) -> Result<Vec<Vec<u8>>, PkiError> {
    pem::cert_ders(pem_bundle, "certificate bundle")
}

fn subject_parts(name: &X509Name<'_>, what: &str) -> Result<(String, Vec<String>), PkiError> {
    let cn = name
        .iter_common_name()
        .next()
        .map(|a| a.as_str().map(str::to_string))
        .transpose()
        .map_err(|e| PkiError::cert(what, format!("common name is not a string: {e}")))?
        .unwrap_or_default();
    let orgs = name
        .iter_organization()
        .map(|a| a.as_str().map(str::to_string))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::cert(what, format!("organization is not a string: {e}")))?;
    Ok((cn, orgs))
}
