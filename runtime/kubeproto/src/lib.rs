//! Decodes Kubernetes protobuf request bodies (`Content-Type: application/vnd.kubernetes.protobuf`)
//! into the JSON object the client would have sent as JSON.
//!
//! kubectl's imperative commands (`create namespace|secret|configmap|deployment|...`,
//! `certificate approve`) and client-go typed clients send built-in kinds as protobuf: the 4-byte
//! magic `k8s\0`, then a `runtime.Unknown` whose `typeMeta` names the apiVersion/kind and whose
//! `raw` is the encoded object. [`decode`] looks the message type up in a descriptor pool compiled
//! from the real Kubernetes `generated.proto` files (vendored in `proto/`) and walks the decoded
//! message into Kubernetes JSON (RFC 3339 times, quantities and int-or-strings as scalars, int64
//! as numbers, base64 bytes, omitted empty optional strings).
//!
//! Go's protobuf encoding writes every non-pointer field, even empty ones, while its JSON drops
//! `omitempty` zero values; the wire cannot tell a non-pointer zero from an explicitly set
//! pointer zero (`replicas: 0`). The decoder therefore drops `""` in fields the sources mark
//! `+optional` and the zero integers/bools listed in `json::OMIT_ZERO`, and keeps every other
//! zero it sees, so the JSON means what the client meant even where it is not byte-for-byte
//! what Go would print (an unlisted non-pointer `false` shows up as `false`).

mod error;
mod gofmt;
mod json;
mod locate;
mod schema;

#[cfg(test)]
mod tests;

use prost_reflect::{DynamicMessage, Value};
use serde_json::{Map, Value as Json};

pub use error::DecodeError;
use schema::Schema;

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The 4 bytes every Kubernetes protobuf body starts with.
const MAGIC: &[u8; 4] = b"k8s\x00";

/// The envelope message type.
const UNKNOWN: &str = "apimachinery.pkg.runtime.Unknown";

/// Decodes a Kubernetes protobuf body into the JSON object (with `apiVersion` and `kind` set)
/// that the same request would have carried as JSON.
pub fn decode(body: &[u8]) -> Result<Json, DecodeError> {
    let schema = Schema::get()?;
    let envelope = Envelope::parse(schema, body)?;
    let Some(desc) = schema.message_for(&envelope.api_version, &envelope.kind) else {
        return Err(DecodeError::UnsupportedKind {
            supported: supported_list(schema),
            api_version: envelope.api_version,
            kind: envelope.kind,
        });
    };
    let object = DynamicMessage::decode(desc.clone(), envelope.raw.as_slice()).map_err(|err| {
        let detail = match locate::locate(&desc, &envelope.raw) {
            Some(place) => format!("{place} ({err})"),
            None => err.to_string(),
        };
        DecodeError::Malformed { api_version: envelope.api_version.clone(), kind: envelope.kind.clone(), detail }
    })?;
    let body = json::message(schema, &object, "")?;
    Ok(with_type_meta(&envelope.api_version, &envelope.kind, body))
}

/// The (apiVersion, kind) pairs [`decode`] accepts.
pub fn supported_kinds() -> Vec<(&'static str, &'static str)> {
    Schema::get().map(|schema| schema.kinds().collect()).unwrap_or_default()
}

/// `apiVersion/Kind, ...` for error messages.
fn supported_list(schema: &Schema) -> String {
    schema.kinds().map(|(v, k)| format!("{v}/{k}")).collect::<Vec<_>>().join(", ")
}

/// `{"apiVersion", "kind", ...body}`: type meta first, as Go marshals it.
fn with_type_meta(api_version: &str, kind: &str, body: Json) -> Json {
    let mut out = Map::new();
    out.insert("apiVersion".to_string(), Json::String(api_version.to_string()));
    out.insert("kind".to_string(), Json::String(kind.to_string()));
    if let Json::Object(fields) = body {
        out.extend(fields);
    }
    Json::Object(out)
}

/// The parts of the `runtime.Unknown` envelope the decoder needs.
struct Envelope {
    api_version: String,
    kind: String,
    raw: Vec<u8>,
}

impl Envelope {
    /// Checks the magic, decodes the `runtime.Unknown` and validates its type meta and encoding.
    fn parse(schema: &Schema, body: &[u8]) -> Result<Envelope, DecodeError> {
        let rest = body.strip_prefix(MAGIC.as_slice()).ok_or(DecodeError::MissingMagic)?;
        let desc = schema.message(UNKNOWN).ok_or_else(|| DecodeError::Descriptors(format!("no {UNKNOWN}")))?;
        let unknown = DynamicMessage::decode(desc, rest).map_err(|err| DecodeError::Envelope(err.to_string()))?;

        let type_meta = match unknown.get_field_by_name("typeMeta").as_deref() {
            Some(Value::Message(meta)) if unknown.has_field_by_name("typeMeta") => meta.clone(),
            _ => return Err(DecodeError::MissingTypeMeta("typeMeta")),
        };
        let api_version =
            non_empty_string(&type_meta, "apiVersion").ok_or(DecodeError::MissingTypeMeta("apiVersion"))?;
        let kind = non_empty_string(&type_meta, "kind").ok_or(DecodeError::MissingTypeMeta("kind"))?;

        if let Some(encoding) = non_empty_string(&unknown, "contentEncoding") {
            return Err(DecodeError::UnsupportedContentEncoding(encoding));
        }
        if let Some(content_type) = non_empty_string(&unknown, "contentType")
            && content_type != CONTENT_TYPE
        {
            return Err(DecodeError::UnsupportedContentType(content_type));
        }
        let raw = match unknown.get_field_by_name("raw").as_deref() {
            Some(Value::Bytes(raw)) => raw.to_vec(),
            _ => Vec::new(),
        };
        Ok(Envelope { api_version, kind, raw })
    }
}

/// A string field's value when set and non-empty.
fn non_empty_string(msg: &DynamicMessage, name: &str) -> Option<String> {
    match msg.get_field_by_name(name).as_deref() {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}
