//! The certificate authority: a self-signed CA that issues server certificates, client
//! certificates (CN → user, O → groups) and signs agents' CSRs.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType, SerialNumber, SubjectPublicKeyInfo,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{PkiError, der, pem};

/// How far `notBefore` is backdated, to tolerate clock skew between hub and agents.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// Indices of the elements of a v3 TBSCertificate that we replace.
const TBS_ISSUER: usize = 3;
const TBS_SUBJECT: usize = 5;
const TBS_SPKI: usize = 6;

/// rsaEncryption (1.2.840.113549.1.1.1).
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// A certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCert {
    pub cert_pem: String,
    /// PKCS#8 `PRIVATE KEY` PEM (ECDSA P-256).
    pub key_pem: String,
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert").field("cert_pem", &self.cert_pem).field("key_pem", &"<redacted>").finish()
    }
}

/// A CA able to issue certificates. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct CertificateAuthority {
    cert_pem: String,
    key_pem: String,
    /// Raw DER of the CA certificate's subject Name, written verbatim as the issuer of
    /// everything we sign so that chains always link, whatever the CA's subject holds.
    subject_der: Vec<u8>,
    /// Raw DER of the CA certificate's SubjectPublicKeyInfo.
    spki_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority").field("ca_hash", &self.ca_hash()).finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Generates a new self-signed CA (ECDSA P-256) valid for `validity` from now.
    pub fn generate(common_name: &str, validity: Duration) -> Result<Self, PkiError> {
        if common_name.trim().is_empty() {
            return Err(PkiError::InvalidArgument("CA common name is empty".to_string()));
        }
        let key = KeyPair::generate().map_err(PkiError::rcgen("generating CA key"))?;
        let mut params = base_params(validity)?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).map_err(PkiError::rcgen("self-signing CA certificate"))?;
        Self::from_pem(&cert.pem(), &key.serialize_pem())
    }

    /// Loads a CA from its certificate and PKCS#8 private key (both PEM). Checks that the
    /// certificate is a CA and that the key belongs to it.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let what = "CA certificate";
        let cert_der = pem::cert_der(cert_pem, what)?;
        let (_, cert) = X509Certificate::from_der(&cert_der).map_err(|e| PkiError::cert(what, e))?;
        if !cert.is_ca() {
            return Err(PkiError::cert(
                what,
                format!("{} is not a CA (basicConstraints CA:TRUE missing)", cert.subject()),
            ));
        }
        let subject_der = cert.subject().as_raw().to_vec();
        let spki_der = cert.public_key().raw.to_vec();
        let key = KeyPair::from_pem(key_pem).map_err(|e| {
            PkiError::key("CA key", format!("{e} (expected an unencrypted PKCS#8 \"PRIVATE KEY\" PEM)"))
        })?;
        if key.subject_public_key_info() != spki_der {
            return Err(PkiError::key("CA key", "does not match the CA certificate's public key"));
        }
        let issuer = Issuer::from_ca_cert_der(&cert_der.clone().into(), key)
            .map_err(PkiError::rcgen("loading CA certificate as issuer"))?;
        Ok(Self { cert_pem: cert_pem.to_string(), key_pem: key_pem.to_string(), subject_der, spki_der, issuer })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key, PKCS#8 PEM (for saving it; keep it 0600).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// `sha256:<hex>` of the CA certificate's DER SubjectPublicKeyInfo: kubeadm's
    /// `--discovery-token-ca-cert-hash` scheme.
    pub fn ca_hash(&self) -> String {
        spki_hash(&self.spki_der)
    }

    /// Issues a TLS server certificate. Each SAN is a DNS name or an IP address literal (IP
    /// SAN); the CN is the first SAN; EKU serverAuth.
    pub fn issue_server_cert(&self, sans: &[String], validity: Duration) -> Result<IssuedCert, PkiError> {
        let Some(first) = sans.first() else {
            return Err(PkiError::InvalidArgument(
                "a server certificate needs at least one DNS name or IP address".to_string(),
            ));
        };
        let mut params = base_params(validity)?;
        for san in sans {
            let san = san.trim();
            let entry = match san.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => {
                    validate_dns_name(san)?;
                    SanType::DnsName(
                        san.try_into().map_err(|e| PkiError::InvalidArgument(format!("DNS name {san:?}: {e}")))?,
                    )
                }
            };
            params.subject_alt_names.push(entry);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let subject = der::encode_name(first.trim(), &[]);
        self.issue_with_new_key(params, &subject, "server certificate")
    }

    /// Issues a TLS client certificate: subject CN = `common_name` (the Kubernetes user) and
    /// one O per organization (the groups); EKU clientAuth.
    pub fn issue_client_cert(
        &self,
        common_name: &str,
        organizations: &[String],
        validity: Duration,
    ) -> Result<IssuedCert, PkiError> {
        validate_subject(common_name, organizations)?;
        let mut params = base_params(validity)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let subject = der::encode_name(common_name, organizations);
        self.issue_with_new_key(params, &subject, "client certificate")
    }

    /// Signs a PKCS#10 CSR (PEM) as a client certificate: the subject is copied verbatim from
    /// the CSR, EKU clientAuth, and nothing else the CSR asks for (no SANs, no CA) is honoured.
    /// The CSR's signature is verified and it must carry a non-empty CN.
    pub fn sign_csr(&self, csr_pem: &str, validity: Duration) -> Result<String, PkiError> {
        let csr_der = pem::csr_der(csr_pem.as_bytes())?;
        let parsed = crate::csr::parse_verified(&csr_der)?;
        if parsed.info.common_name.trim().is_empty() {
            return Err(PkiError::InvalidCsr("subject has no common name".to_string()));
        }
        let public_key = SubjectPublicKeyInfo::from_der(&parsed.info.public_key_der)
            .map_err(|e| PkiError::InvalidCsr(format!("unsupported public key: {e}")))?;
        let mut params = base_params(validity)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if parsed.key_algorithm_oid == OID_RSA_ENCRYPTION {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        let cert = params.signed_by(&public_key, &self.issuer).map_err(PkiError::rcgen("signing CSR"))?;
        let der = der::replace_and_resign(
            cert.der(),
            &[
                (TBS_ISSUER, &self.subject_der),
                (TBS_SUBJECT, &parsed.subject_der),
                (TBS_SPKI, &parsed.info.public_key_der),
            ],
            self.issuer.key(),
        )
        .map_err(|e| PkiError::cert("signing CSR", e))?;
        Ok(pem::encode("CERTIFICATE", &der))
    }

    fn issue_with_new_key(
        &self,
        params: CertificateParams,
        subject_der: &[u8],
        what: &str,
    ) -> Result<IssuedCert, PkiError> {
        let key = KeyPair::generate().map_err(PkiError::rcgen(format!("generating {what} key")))?;
        let cert = params.signed_by(&key, &self.issuer).map_err(PkiError::rcgen(format!("signing {what}")))?;
        let der = der::replace_and_resign(
            cert.der(),
            &[(TBS_ISSUER, &self.subject_der), (TBS_SUBJECT, subject_der)],
            self.issuer.key(),
        )
        .map_err(|e| PkiError::cert(what, e))?;
        Ok(IssuedCert { cert_pem: pem::encode("CERTIFICATE", &der), key_pem: key.serialize_pem() })
    }
}

/// `sha256:<hex>` of the SubjectPublicKeyInfo of the first certificate in `cert_pem`.
pub fn ca_hash_of_pem(cert_pem: &str) -> Result<String, PkiError> {
    let der = pem::cert_der(cert_pem, "CA certificate")?;
    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| PkiError::cert("CA certificate", e))?;
    Ok(spki_hash(cert.public_key().raw))
}

fn spki_hash(spki_der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(spki_der)))
}

/// Parameters shared by everything we issue: validity window, random serial, leaf defaults
/// (digitalSignature, CA:FALSE, authority key identifier). The CA overrides what differs.
fn base_params(validity: Duration) -> Result<CertificateParams, PkiError> {
    if validity.is_zero() {
        return Err(PkiError::InvalidArgument("certificate validity is zero".to_string()));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| PkiError::InvalidArgument(format!("system clock before 1970: {e}")))?;
    let to_time = |d: Duration| {
        i64::try_from(d.as_secs())
            .ok()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .ok_or_else(|| PkiError::InvalidArgument(format!("validity {d:?} out of range")))
    };
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.not_before = to_time(now.saturating_sub(BACKDATE))?;
    params.not_after = to_time(now.saturating_add(validity))?;
    params.serial_number = Some(random_serial()?);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// 128 random bits, positive and of fixed length.
fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| PkiError::InvalidArgument(format!("no randomness for serial number: {e}")))?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn validate_subject(common_name: &str, organizations: &[String]) -> Result<(), PkiError> {
    if common_name.trim().is_empty() {
        return Err(PkiError::InvalidArgument("common name (user) is empty".to_string()));
    }
    if organizations.iter().any(|o| o.trim().is_empty()) {
        return Err(PkiError::InvalidArgument("an organization (group) is empty".to_string()));
    }
    Ok(())
}

/// A DNS SAN: non-empty labels of letters, digits, '-' and '_', optional leading "*.".
fn validate_dns_name(name: &str) -> Result<(), PkiError> {
    let bad = |why: &str| PkiError::InvalidArgument(format!("DNS name {name:?}: {why}"));
    let rest = name.strip_prefix("*.").unwrap_or(name);
    if rest.is_empty() || rest.len() > 253 {
        return Err(bad("empty or longer than 253 characters"));
    }
    for label in rest.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(bad("empty label or label longer than 63 characters"));
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(bad("only letters, digits, '-' and '_' are allowed (or an IP address)"));
        }
    }
    Ok(())
}
