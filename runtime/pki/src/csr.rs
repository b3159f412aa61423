//! Certificate signing requests: agents generate their key locally and send a CSR; the hub
//! reads CN/O from it and signs it.

use rcgen::{CertificateParams, DistinguishedName, KeyPair};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use crate::{PkiError, der, pem};

/// Index of the subject in a CertificationRequestInfo.
const CRI_SUBJECT: usize = 1;

/// What a CSR asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrInfo {
    /// The subject's first CN ("" if none).
    pub common_name: String,
    /// Every O of the subject, in order.
    pub organizations: Vec<String>,
    /// The DER SubjectPublicKeyInfo of the requester's key.
    pub public_key_der: Vec<u8>,
}

pub(crate) struct ParsedCsr {
    pub info: CsrInfo,
    pub subject_der: Vec<u8>,
    pub key_algorithm_oid: String,
}

/// Generates an ECDSA P-256 key and a CSR for it with subject CN = `common_name` and one O
/// per organization. Returns `(key PEM (PKCS#8), CSR PEM)`.
pub fn generate_key_and_csr(common_name: &str, organizations: &[String]) -> Result<(String, String), PkiError> {
    if common_name.trim().is_empty() {
        return Err(PkiError::InvalidArgument("CSR common name is empty".to_string()));
    }
    let key = KeyPair::generate().map_err(PkiError::rcgen("generating key"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    let csr = params.serialize_request(&key).map_err(PkiError::rcgen("creating CSR"))?;
    let subject = der::encode_name(common_name, organizations);
    let der = der::replace_and_resign(csr.der(), &[(CRI_SUBJECT, &subject)], &key).map_err(PkiError::InvalidCsr)?;
    Ok((key.serialize_pem(), pem::encode("CERTIFICATE REQUEST", &der)))
}

/// Parses a CSR (PEM `CERTIFICATE REQUEST` or DER) and verifies its self-signature.
pub fn parse_csr(pem_or_der: impl AsRef<[u8]>) -> Result<CsrInfo, PkiError> {
    let der = pem::csr_der(pem_or_der.as_ref())?;
    Ok(parse_verified(&der)?.info)
}

pub(crate) fn parse_verified(der: &[u8]) -> Result<ParsedCsr, PkiError> {
    let (rest, csr) = X509CertificationRequest::from_der(der).map_err(|e| PkiError::InvalidCsr(e.to_string()))?;
    if !rest.is_empty() {
        return Err(PkiError::InvalidCsr("trailing bytes after the CSR".to_string()));
    }
    csr.verify_signature().map_err(|e| PkiError::InvalidCsr(format!("signature does not verify: {e}")))?;
    let info = &csr.certification_request_info;
    let common_name = info
        .subject
        .iter_common_name()
        .next()
        .map(|a| {
            a.as_str()
                .map(str::to_string)
                .map_err(|e| PkiError::InvalidCsr(format!("common name is not a string: {e}")))
        })
        .transpose()?
        .unwrap_or_default();
    let organizations = info
        .subject
        .iter_organization()
        .map(|a| {
            a.as_str()
                .map(str::to_string)
                .map_err(|e| PkiError::InvalidCsr(format!("organization is not a string: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ParsedCsr {
        info: CsrInfo { common_name, organizations, public_key_der: info.subject_pki.raw.to_vec() },
        subject_der: info.subject.as_raw().to_vec(),
        key_algorithm_oid: info.subject_pki.algorithm.algorithm.to_id_string(),
    })
}
