#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn ca() -> CertificateAuthority {
    CertificateAuthority::generate("flotilla-ca", 3650 * DAY).expect("generate CA")
}

fn der_of(pem: &str) -> Vec<u8> {
    certs_from_pem(pem).expect("pem").remove(0)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn which(tool: &str) -> bool {
    Command::new(tool).arg("version").output().map(|_| true).unwrap_or(false)
}

/// Verifies `leaf_pem` against `ca_pem` with rustls-webpki for a usage.
fn webpki_verify(ca_pem: &str, leaf_pem: &str, usage: webpki::KeyUsage) -> Result<(), String> {
    let ca_der = CertificateDer::from(der_of(ca_pem));
    let anchor = webpki::anchor_from_trusted_cert(&ca_der).map_err(|e| e.to_string())?;
    let leaf_der = CertificateDer::from(der_of(leaf_pem));
    let leaf = webpki::EndEntityCert::try_from(&leaf_der).map_err(|e| e.to_string())?;
    leaf.verify_for_usage(webpki::ALL_VERIFICATION_ALGS, &[anchor], &[], UnixTime::now(), usage, None, None)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn ca_is_a_ca_and_reloads_from_pem() {
    let ca = ca();
    let info = cert_info(ca.cert_pem()).unwrap();
    assert!(info.is_ca);
    assert_eq!(info.common_name, "flotilla-ca");
    assert!(info.not_after > jiff::Timestamp::now());
    assert!(info.not_before < jiff::Timestamp::now());
    assert!(ca.key_pem().contains("BEGIN PRIVATE KEY"));

    let again = CertificateAuthority::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
    assert_eq!(again.ca_hash(), ca.ca_hash());
    // A reloaded CA issues certificates that chain to the original.
    let server = again.issue_server_cert(&strings(&["localhost"]), DAY).unwrap();
    webpki_verify(ca.cert_pem(), &server.cert_pem, webpki::KeyUsage::server_auth()).unwrap();
}

#[test]
fn from_pem_rejects_wrong_key_and_non_ca() {
    let a = ca();
    let b = ca();
    let err = CertificateAuthority::from_pem(a.cert_pem(), b.key_pem()).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");

    let leaf = a.issue_client_cert("bob", &[], DAY).unwrap();
    let err = CertificateAuthority::from_pem(&leaf.cert_pem, &leaf.key_pem).unwrap_err();
    assert!(err.to_string().contains("not a CA"), "{err}");

    let err = CertificateAuthority::from_pem("garbage", a.key_pem()).unwrap_err();
    assert!(err.to_string().contains("CA certificate"), "{err}");
}

#[test]
fn server_cert_has_sans_and_server_auth() {
    let ca = ca();
    let sans = strings(&["hub.example.com", "localhost", "127.0.0.1", "::1"]);
    let server = ca.issue_server_cert(&sans, 30 * DAY).unwrap();

    webpki_verify(ca.cert_pem(), &server.cert_pem, webpki::KeyUsage::server_auth()).unwrap();
    // The EKU is serverAuth only.
    assert!(webpki_verify(ca.cert_pem(), &server.cert_pem, webpki::KeyUsage::client_auth()).is_err());

    let leaf_der = CertificateDer::from(der_of(&server.cert_pem));
    let leaf = webpki::EndEntityCert::try_from(&leaf_der).unwrap();
    for name in ["hub.example.com", "localhost", "127.0.0.1", "::1"] {
        let server_name = ServerName::try_from(name).unwrap();
        leaf.verify_is_valid_for_subject_name(&server_name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let other = ServerName::try_from("evil.example.com").unwrap();
    assert!(leaf.verify_is_valid_for_subject_name(&other).is_err());

    let info = cert_info(&server.cert_pem).unwrap();
    assert_eq!(info.common_name, "hub.example.com");
    assert_eq!(info.issuer_common_name, "flotilla-ca");
    assert_eq!(info.dns_names, ["hub.example.com", "localhost"]);
    assert_eq!(info.ip_addresses, ["127.0.0.1".parse::<std::net::IpAddr>().unwrap(), "::1".parse().unwrap()]);
    assert!(!info.is_ca);
    let life = info.not_after.duration_since(jiff::Timestamp::now());
    assert!(life.as_secs() > 29 * 86_400 && life.as_secs() <= 30 * 86_400);

    let der = der_of(&server.cert_pem);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
}

#[test]
fn server_cert_rejects_bad_input() {
    let ca = ca();
    assert!(ca.issue_server_cert(&[], DAY).is_err());
    let err = ca.issue_server_cert(&strings(&["bad name!"]), DAY).unwrap_err();
    assert!(err.to_string().contains("bad name!"), "{err}");
    assert!(ca.issue_server_cert(&strings(&["x"]), Duration::ZERO).is_err());
}

#[test]
fn client_cert_identity_round_trip() {
    let ca = ca();
    let groups = strings(&["system:masters", "flotilla:admins", "third"]);
    let client = ca.issue_client_cert("admin", &groups, DAY).unwrap();
    webpki_verify(ca.cert_pem(), &client.cert_pem, webpki::KeyUsage::client_auth()).unwrap();
    assert!(webpki_verify(ca.cert_pem(), &client.cert_pem, webpki::KeyUsage::server_auth()).is_err());

    let id = identity_from_cert_der(&der_of(&client.cert_pem)).unwrap();
    assert_eq!(id, ClientIdentity { user: "admin".into(), groups: groups.clone() });
    assert_eq!(identity_from_cert_pem(&client.cert_pem).unwrap(), id);

    // No groups is fine too; an empty CN is not.
    let lone = ca.issue_client_cert("lonely", &[], DAY).unwrap();
    assert!(identity_from_cert_pem(&lone.cert_pem).unwrap().groups.is_empty());
    assert!(ca.issue_client_cert("", &[], DAY).is_err());
}

#[test]
fn serials_are_unique() {
    let ca = ca();
    let a = cert_info(&ca.issue_client_cert("a", &[], DAY).unwrap().cert_pem).unwrap();
    let b = cert_info(&ca.issue_client_cert("a", &[], DAY).unwrap().cert_pem).unwrap();
    assert_ne!(a.serial_hex, b.serial_hex);
}

#[test]
fn csr_sign_round_trip_keeps_cn_and_o() {
    let ca = ca();
    let cn = "system:open-cluster-management:cluster1:agent-7f3a";
    let orgs = strings(&["system:open-cluster-management:cluster1", "system:open-cluster-management:managed-clusters"]);
    let (key_pem, csr_pem) = generate_key_and_csr(cn, &orgs).unwrap();
    assert!(csr_pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));

    let info = parse_csr(&csr_pem).unwrap();
    assert_eq!(info.common_name, cn);
    assert_eq!(info.organizations, orgs);
    // DER input works too.
    let csr_der = pem::csr_der(csr_pem.as_bytes()).unwrap();
    assert_eq!(parse_csr(&csr_der).unwrap(), info);

    let cert_pem = ca.sign_csr(&csr_pem, 30 * DAY).unwrap();
    webpki_verify(ca.cert_pem(), &cert_pem, webpki::KeyUsage::client_auth()).unwrap();
    let id = identity_from_cert_pem(&cert_pem).unwrap();
    assert_eq!(id.user, cn);
    assert_eq!(id.groups, orgs);

    // The certificate carries the CSR's key, which is the generated key.
    let der = der_of(&cert_pem);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(cert.public_key().raw, info.public_key_der.as_slice());
    let key = rcgen::KeyPair::from_pem(&key_pem).unwrap();
    assert_eq!(rcgen::PublicKeyData::subject_public_key_info(&key), info.public_key_der);
}

#[test]
fn csr_with_bad_signature_or_no_cn_is_rejected() {
    let ca = ca();
    let (_, csr_pem) = generate_key_and_csr("agent", &[]).unwrap();
    let mut der = pem::csr_der(csr_pem.as_bytes()).unwrap();
    // Flip a bit inside the subject's CN ("agent" appears in the DER).
    let pos = der.windows(5).position(|w| w == b"agent").unwrap();
    der[pos] ^= 0x01;
    let tampered = pem::encode("CERTIFICATE REQUEST", &der);
    let err = ca.sign_csr(&tampered, DAY).unwrap_err();
    assert!(err.to_string().contains("signature"), "{err}");
    assert!(parse_csr(&der).is_err());

    assert!(ca.sign_csr("not a csr", DAY).is_err());
    assert!(generate_key_and_csr("", &[]).is_err());

    // A CSR whose subject has no CN (built with rcgen directly) is refused by sign_csr.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "only-org");
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let err = ca.sign_csr(&csr, DAY).unwrap_err();
    assert!(err.to_string().contains("common name"), "{err}");
}

#[test]
fn ca_hash_is_sha256_of_spki() {
    let ca = ca();
    let hash = ca.ca_hash();
    assert!(hash.starts_with("sha256:"));
    assert_eq!(hash.len(), "sha256:".len() + 64);
    assert_eq!(ca.ca_hash(), hash, "stable");
    assert_eq!(ca_hash_of_pem(ca.cert_pem()).unwrap(), hash);

    let der = der_of(ca.cert_pem());
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let expected = format!("sha256:{}", hex::encode(Sha256::digest(cert.tbs_certificate.subject_pki.raw)));
    assert_eq!(hash, expected);
    // Different CAs, different hashes.
    assert_ne!(self::ca().ca_hash(), hash);
}

/// `openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256sum`, the kubeadm recipe.
#[test]
fn ca_hash_matches_openssl() {
    if !which("openssl") {
        println!("NOTICE: openssl not found, skipping the openssl cross-check");
        return;
    }
    let ca = ca();
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.crt");
    std::fs::write(&ca_path, ca.cert_pem()).unwrap();
    let pubkey = Command::new("openssl").args(["x509", "-pubkey", "-noout", "-in"]).arg(&ca_path).output().unwrap();
    assert!(pubkey.status.success());
    let pub_path = dir.path().join("pub.pem");
    std::fs::write(&pub_path, &pubkey.stdout).unwrap();
    let der =
        Command::new("openssl").args(["pkey", "-pubin", "-outform", "der", "-in"]).arg(&pub_path).output().unwrap();
    assert!(der.status.success());
    let expected = format!("sha256:{}", hex::encode(Sha256::digest(&der.stdout)));
    assert_eq!(ca.ca_hash(), expected);
}

/// OpenSSL (strict about DER) verifies the chains and shows every O.
#[test]
fn openssl_accepts_issued_certificates() {
    if !which("openssl") {
        println!("NOTICE: openssl not found, skipping the openssl cross-check");
        return;
    }
    let ca = ca();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let ca_path = write("ca.crt", ca.cert_pem());
    let server = ca.issue_server_cert(&strings(&["localhost", "127.0.0.1"]), DAY).unwrap();
    let client = ca.issue_client_cert("alice", &strings(&["dev", "ops"]), DAY).unwrap();
    let (_, csr) = generate_key_and_csr("agent", &strings(&["g1", "g2"])).unwrap();
    let csr_path = write("agent.csr", &csr);
    let signed = ca.sign_csr(&csr, DAY).unwrap();

    let out = Command::new("openssl").args(["req", "-verify", "-noout", "-in"]).arg(&csr_path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    for (name, pem, purpose) in [
        ("server.crt", &server.cert_pem, "sslserver"),
        ("client.crt", &client.cert_pem, "sslclient"),
        ("signed.crt", &signed, "sslclient"),
    ] {
        let path = write(name, pem);
        let out = Command::new("openssl")
            .args(["verify", "-purpose", purpose, "-CAfile"])
            .arg(&ca_path)
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let client_path = dir.path().join("client.crt");
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in"])
        .arg(&client_path)
        .output()
        .unwrap();
    let subject = String::from_utf8_lossy(&out.stdout);
    assert!(subject.contains("CN=alice,O=ops,O=dev"), "{subject}");
}

fn sample_kubeconfig(ca: &CertificateAuthority) -> (Kubeconfig, IssuedCert) {
    let client = ca.issue_client_cert("admin", &strings(&["system:masters"]), DAY).unwrap();
    let kc = Kubeconfig::for_client_cert(
        "flotilla",
        "https://127.0.0.1:6443",
        ca.cert_pem(),
        &client.cert_pem,
        &client.key_pem,
        "admin",
    );
    (kc, client)
}

#[test]
fn kubeconfig_round_trip_and_accessors() {
    let ca = ca();
    let (kc, client) = sample_kubeconfig(&ca);
    assert_eq!(kc.current_context, "admin@flotilla");
    let yaml = kc.to_yaml().unwrap();
    assert!(yaml.contains("apiVersion: v1"), "{yaml}");
    assert!(yaml.contains("kind: Config"), "{yaml}");
    assert!(yaml.contains("certificate-authority-data:"), "{yaml}");
    assert!(yaml.contains("current-context: admin@flotilla"), "{yaml}");
    assert!(!yaml.contains(": >"), "no folded scalars: {yaml}");

    let back = Kubeconfig::from_yaml(&yaml, None).unwrap();
    assert_eq!(back, kc);
    assert_eq!(back.server().unwrap(), "https://127.0.0.1:6443");
    assert_eq!(back.ca_pem().unwrap(), ca.cert_pem());
    assert_eq!(back.client_cert_pem().unwrap(), client.cert_pem);
    assert_eq!(back.client_key_pem().unwrap(), client.key_pem);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("admin.kubeconfig");
    kc.write(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Overwriting works and leaves no temp files behind.
    kc.write(&path).unwrap();
    let entries: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");

    let loaded = Kubeconfig::load(&path).unwrap();
    assert_eq!(loaded.source(), Some(path.as_path()));
    let resolved = loaded.resolve(None).unwrap();
    assert_eq!(resolved.user_name, "admin");
    assert_eq!(resolved.cluster_name, "flotilla");
    assert_eq!(resolved.client_key_pem.as_deref(), Some(client.key_pem.as_str()));
    assert!(resolved.token.is_none());
    let dbg = format!("{resolved:?}");
    assert!(!dbg.contains("PRIVATE KEY"));
}

#[test]
fn kubeconfig_errors_name_the_file_and_the_problem() {
    let ca = ca();
    let (kc, _) = sample_kubeconfig(&ca);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.kubeconfig");
    kc.write(&path).unwrap();
    let loaded = Kubeconfig::load(&path).unwrap();
    let err = loaded.resolve(Some("foo")).unwrap_err().to_string();
    assert_eq!(err, format!("kubeconfig {}: context \"foo\" not found", path.display()));

    let missing = dir.path().join("missing.kubeconfig");
    let err = Kubeconfig::load(&missing).unwrap_err().to_string();
    assert!(err.contains("missing.kubeconfig"), "{err}");

    let bad = dir.path().join("bad.kubeconfig");
    std::fs::write(&bad, "clusters: [ {name: 1").unwrap();
    let err = Kubeconfig::load(&bad).unwrap_err().to_string();
    assert!(err.starts_with(&format!("kubeconfig {}:", bad.display())), "{err}");

    let empty = Kubeconfig::default();
    let err = empty.server().unwrap_err().to_string();
    assert!(err.contains("current-context is not set"), "{err}");

    let mut broken = kc.clone();
    broken.users[0].user.client_certificate_data = Some("%%%".into());
    let err = broken.client_cert_pem().unwrap_err().to_string();
    assert!(err.contains("client-certificate-data is not valid base64"), "{err}");
}

/// The kind of file kubectl itself writes: file paths (relative to the kubeconfig), nulls,
/// preferences, an exec user; all of it must load and round-trip.
#[test]
fn kubeconfig_reads_file_paths_and_keeps_unknown_fields() {
    let ca = ca();
    let client = ca.issue_client_cert("dev", &[], DAY).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pki")).unwrap();
    std::fs::write(dir.path().join("pki/ca.crt"), ca.cert_pem()).unwrap();
    std::fs::write(dir.path().join("pki/dev.crt"), &client.cert_pem).unwrap();
    let abs_key = dir.path().join("dev.key");
    std::fs::write(&abs_key, &client.key_pem).unwrap();
    let yaml = format!(
        r#"apiVersion: v1
kind: Config
preferences: {{}}
clusters:
- name: hub
  cluster:
    server: https://hub:6443
    certificate-authority: pki/ca.crt
    extensions:
    - name: x
      extension: {{a: 1}}
users:
- name: dev
  user:
    client-certificate: pki/dev.crt
    client-key: {}
- name: exec-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: get-token
      args: ["--x"]
contexts:
- name: dev@hub
  context:
    cluster: hub
    user: dev
    namespace: team-a
current-context: dev@hub
"#,
        abs_key.display()
    );
    let path = dir.path().join("config");
    std::fs::write(&path, &yaml).unwrap();
    let kc = Kubeconfig::load(&path).unwrap();
    let resolved = kc.resolve(None).unwrap();
    assert_eq!(resolved.namespace.as_deref(), Some("team-a"));
    assert_eq!(resolved.ca_pem.as_deref(), Some(ca.cert_pem()));
    assert_eq!(resolved.client_cert_pem.as_deref(), Some(client.cert_pem.as_str()));
    assert_eq!(resolved.client_key_pem.as_deref(), Some(client.key_pem.as_str()));
    assert!(kc.extra.contains_key("preferences"));
    assert!(kc.users[1].user.extra.contains_key("exec"));
    assert!(kc.clusters[0].cluster.extra.contains_key("extensions"));

    let again = Kubeconfig::from_yaml(&kc.to_yaml().unwrap(), Some(&path)).unwrap();
    assert_eq!(again, kc);

    let nulls = "apiVersion: v1\nkind: Config\nclusters: null\nusers: null\ncontexts: null\ncurrent-context: \"\"\n";
    let kc = Kubeconfig::from_yaml(nulls, None).unwrap();
    assert!(kc.clusters.is_empty() && kc.current_context.is_empty());
    assert!(Kubeconfig::from_yaml("", None).unwrap().contexts.is_empty());
}

#[test]
fn token_kubeconfig() {
    let ca = ca();
    let kc = Kubeconfig::for_token("hub", "https://h:1", ca.cert_pem(), "abc.def", "bootstrap");
    let back = Kubeconfig::from_yaml(&kc.to_yaml().unwrap(), None).unwrap();
    let resolved = back.resolve(None).unwrap();
    assert_eq!(resolved.token.as_deref(), Some("abc.def"));
    assert!(resolved.client_cert_pem.is_none());
    assert!(back.client_cert_pem().is_err());
}

fn kubectl_view(path: &Path) -> serde_json::Value {
    let out = Command::new("kubectl")
        .args(["config", "view", "--raw", "-o", "json", "--kubeconfig"])
        .arg(path)
        .output()
        .expect("run kubectl");
    assert!(out.status.success(), "kubectl config view failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("kubectl prints JSON")
}

#[test]
fn kubectl_accepts_written_kubeconfig() {
    if !Path::new("/usr/bin/kubectl").exists() && !which("kubectl") {
        println!("NOTICE: kubectl not found, skipping the kubectl acceptance check");
        return;
    }
    let ca = ca();
    let (kc, client) = sample_kubeconfig(&ca);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.kubeconfig");
    kc.write(&path).unwrap();

    let view = kubectl_view(&path);
    assert_eq!(view["current-context"], "admin@flotilla");
    assert_eq!(view["clusters"][0]["cluster"]["server"], "https://127.0.0.1:6443");
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    assert_eq!(view["clusters"][0]["cluster"]["certificate-authority-data"], b64(ca.cert_pem()).as_str());
    assert_eq!(view["users"][0]["user"]["client-certificate-data"], b64(&client.cert_pem).as_str());
    assert_eq!(view["users"][0]["user"]["client-key-data"], b64(&client.key_pem).as_str());
    assert_eq!(view["contexts"][0]["context"]["user"], "admin");

    // And kubectl's own rewrite of it loads back into the same thing.
    let out = Command::new("kubectl").args(["config", "view", "--raw", "--kubeconfig"]).arg(&path).output().unwrap();
    let rewritten = dir.path().join("rewritten");
    std::fs::write(&rewritten, &out.stdout).unwrap();
    let reloaded = Kubeconfig::load(&rewritten).unwrap();
    assert_eq!(reloaded.client_key_pem().unwrap(), client.key_pem);
    assert_eq!(reloaded.ca_pem().unwrap(), ca.cert_pem());
}

#[test]
fn shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CertificateAuthority>();
    assert_send_sync::<Kubeconfig>();
    assert_send_sync::<PkiError>();
}
