//! A minimal DER reader/writer, just enough to put exact subject and issuer names into
//! certificates and CSRs that rcgen produced.
//!
//! Why: rcgen's `DistinguishedName` is a map keyed by attribute type, so it cannot express a
//! subject with several `O` attributes. Kubernetes reads client certificate groups from
//! *every* `O` attribute, so we need that. We let rcgen build the whole structure (validity,
//! extensions, key identifiers, algorithm identifiers), then replace the name elements of the
//! to-be-signed part and sign it again with the same key. The signature algorithm does not
//! change, so the algorithm identifiers rcgen wrote stay correct.

use rcgen::SigningKey;

pub(crate) const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
const TAG_OID: u8 = 0x06;
const TAG_UTF8_STRING: u8 = 0x0c;
const TAG_BIT_STRING: u8 = 0x03;

/// id-at-commonName (2.5.4.3), content octets.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// id-at-organizationName (2.5.4.10), content octets.
const OID_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];

/// One parsed tag-length-value element.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    /// The whole element: header and content.
    pub raw: &'a [u8],
}

/// Reads one element from the front of `input`, returning it and the rest.
pub(crate) fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), String> {
    let (&tag, rest) = input.split_first().ok_or("truncated DER: missing tag")?;
    if tag & 0x1f == 0x1f {
        return Err("unsupported multi-byte DER tag".into());
    }
    let (&first, rest) = rest.split_first().ok_or("truncated DER: missing length")?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err("invalid DER length".into());
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err("truncated DER: content shorter than its length".into());
    }
    let header_len = input.len() - rest.len();
    Ok((Tlv { tag, content: &rest[..len], raw: &input[..header_len + len] }, &rest[len..]))
}

/// Splits the content of a constructed element into its child elements.
pub(crate) fn children(content: &[u8]) -> Result<Vec<Tlv<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        let (tlv, r) = read_tlv(rest)?;
        out.push(tlv);
        rest = r;
    }
    Ok(out)
}

/// Encodes a definite length.
fn write_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Encodes one element.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    write_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

fn attribute(oid: &[u8], value: &str) -> Vec<u8> {
    let mut atv = tlv(TAG_OID, oid);
    atv.extend(tlv(TAG_UTF8_STRING, value.as_bytes()));
    tlv(TAG_SET, &tlv(TAG_SEQUENCE, &atv))
}

/// Encodes an X.501 Name with one RDN per organization (in order) followed by the common
/// name, the order Go's crypto/x509 and kubeadm use (`O = system:masters, CN = admin`).
pub(crate) fn encode_name(common_name: &str, organizations: &[String]) -> Vec<u8> {
    let mut rdns = Vec::new();
    for org in organizations {
        rdns.extend(attribute(OID_ORGANIZATION, org));
    }
    rdns.extend(attribute(OID_COMMON_NAME, common_name));
    tlv(TAG_SEQUENCE, &rdns)
}

/// Takes a signed structure (`SEQUENCE { tbs, algorithm, BIT STRING signature }`, the shape
/// of both certificates and CSRs), replaces child elements of `tbs` by index with the given
/// raw elements, and signs the new `tbs` with `signer`.
pub(crate) fn replace_and_resign(
    signed_der: &[u8],
    replacements: &[(usize, &[u8])],
    signer: &impl SigningKey,
) -> Result<Vec<u8>, String> {
    let (outer, trailing) = read_tlv(signed_der)?;
    if outer.tag != TAG_SEQUENCE || !trailing.is_empty() {
        return Err("signed structure is not a single SEQUENCE".into());
    }
    let parts = children(outer.content)?;
    let [tbs, algorithm, _signature] = parts.as_slice() else {
        return Err(format!("signed structure has {} elements, expected 3", parts.len()));
    };
    let elements = children(tbs.content)?;
    let mut content = Vec::with_capacity(tbs.content.len() + 256);
    for (i, element) in elements.iter().enumerate() {
        match replacements.iter().find(|(idx, _)| *idx == i) {
            Some((_, raw)) => content.extend_from_slice(raw),
            None => content.extend_from_slice(element.raw),
        }
    }
    if let Some((idx, _)) = replacements.iter().find(|(idx, _)| *idx >= elements.len()) {
        return Err(format!("element {idx} does not exist (to-be-signed part has {})", elements.len()));
    }
    let new_tbs = tlv(tbs.tag, &content);
    let signature = signer.sign(&new_tbs).map_err(|e| format!("signing failed: {e}"))?;
    let mut bits = Vec::with_capacity(signature.len() + 1);
    bits.push(0); // no unused bits
    bits.extend(signature);
    let mut body = new_tbs;
    body.extend_from_slice(algorithm.raw);
    body.extend(tlv(TAG_BIT_STRING, &bits));
    Ok(tlv(TAG_SEQUENCE, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 65_535, 70_000] {
            let content = vec![7u8; len];
            let encoded = tlv(0x04, &content);
            let (parsed, rest) = read_tlv(&encoded).expect("parse");
            assert!(rest.is_empty());
            assert_eq!(parsed.tag, 0x04);
            assert_eq!(parsed.content.len(), len);
            assert_eq!(parsed.raw.len(), encoded.len());
        }
    }

    #[test]
    fn truncated_input_is_an_error() {
        assert!(read_tlv(&[]).is_err());
        assert!(read_tlv(&[0x30]).is_err());
        assert!(read_tlv(&[0x30, 0x05, 0x00]).is_err());
        assert!(read_tlv(&[0x30, 0x85, 0, 0, 0, 0, 1]).is_err());
    }

    #[test]
    fn name_parses_with_x509_parser() {
        use x509_parser::prelude::FromDer;
        let der = encode_name("alice", &["dev".to_string(), "ops".to_string()]);
        let (rest, name) = x509_parser::x509::X509Name::from_der(&der).expect("name parses");
        assert!(rest.is_empty());
        let cns: Vec<_> = name.iter_common_name().filter_map(|a| a.as_str().ok()).collect();
        let orgs: Vec<_> = name.iter_organization().filter_map(|a| a.as_str().ok()).collect();
        assert_eq!(cns, ["alice"]);
        assert_eq!(orgs, ["dev", "ops"]);
    }
}
