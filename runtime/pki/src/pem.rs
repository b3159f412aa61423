//! PEM helpers: decoding through rustls-pki-types, encoding by hand (64-column base64).

use base64::Engine as _;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer};

use crate::PkiError;

/// Encodes DER bytes as a PEM block with the given label.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// The DER of the first `CERTIFICATE` block in `pem`.
pub(crate) fn cert_der(pem: &str, what: &str) -> Result<Vec<u8>, PkiError> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|c| c.as_ref().to_vec())
        .map_err(|e| PkiError::cert(what, format!("no PEM CERTIFICATE block ({e})")))
}

/// The DER of every `CERTIFICATE` block in `pem` (a bundle), in order.
pub(crate) fn cert_ders(pem: &str, what: &str) -> Result<Vec<Vec<u8>>, PkiError> {
    let ders = CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::cert(what, format!("bad PEM: {e}")))?;
    if ders.is_empty() {
        return Err(PkiError::cert(what, "no PEM CERTIFICATE block"));
    }
    Ok(ders)
}

/// The DER of a CSR given as PEM (`CERTIFICATE REQUEST`) or as DER already.
pub(crate) fn csr_der(pem_or_der: &[u8]) -> Result<Vec<u8>, PkiError> {
    let trimmed = pem_or_der.trim_ascii_start();
    if trimmed.starts_with(b"-----BEGIN") {
        CertificateSigningRequestDer::from_pem_slice(trimmed)
            .map(|c| c.as_ref().to_vec())
            .map_err(|e| PkiError::InvalidCsr(format!("no PEM CERTIFICATE REQUEST block ({e})")))
    } else {
        Ok(pem_or_der.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_wraps_at_64_columns() {
        let pem = encode("TEST", &[0u8; 100]);
        let lines: Vec<_> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN TEST-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last().copied(), Some("-----END TEST-----"));
    }
}
