//! The one error type of this crate: every way a protobuf request body can be refused.

/// Why a Kubernetes protobuf body could not be turned into JSON. The messages are meant for the
/// client (they end up in a 400/415 Status), so they say what to send instead.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The body does not start with the 4-byte `k8s\0` magic of the Kubernetes protobuf envelope.
    #[error("not a Kubernetes protobuf body: it must start with the 4-byte magic \"k8s\\x00\"")]
    MissingMagic,

    /// The `runtime.Unknown` envelope after the magic is not a valid message.
    #[error("malformed protobuf envelope (runtime.Unknown): {0}")]
    Envelope(String),

    /// The envelope has no `typeMeta.apiVersion` or `typeMeta.kind`.
    #[error("protobuf envelope has no {0}: typeMeta.apiVersion and typeMeta.kind are required")]
    MissingTypeMeta(&'static str),

    /// The envelope says `raw` is compressed or otherwise encoded.
    #[error("unsupported protobuf contentEncoding {0:?}: only unencoded raw bytes are supported")]
    UnsupportedContentEncoding(String),

    /// The envelope says `raw` holds something other than protobuf.
    #[error("unsupported contentType {0:?} inside the protobuf envelope")]
    UnsupportedContentType(String),

    /// The apiVersion/kind has no message type here.
    #[error("protobuf bodies are supported for {supported}; send JSON for {api_version} {kind}")]
    UnsupportedKind {
        /// The envelope's apiVersion.
        api_version: String,
        /// The envelope's kind.
        kind: String,
        /// A comma-separated list of the supported `apiVersion/Kind` pairs.
        supported: String,
    },

    /// `raw` is not a valid encoding of the message for the kind. `detail` names the field.
    #[error("malformed protobuf {api_version} {kind}: {detail}")]
    Malformed {
        /// The envelope's apiVersion.
        api_version: String,
        /// The envelope's kind.
        kind: String,
        /// What prost reported, including the message.field path where decoding stopped.
        detail: String,
    },

    /// A field decoded but its value has no JSON form (a timestamp out of range, a RawExtension
    /// that is not JSON, an IntOrString of unknown type ...).
    #[error("invalid value at {path}: {reason}")]
    InvalidValue {
        /// The JSON path of the field, like `spec.template.metadata.creationTimestamp`.
        path: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The embedded descriptor set could not be loaded (a build problem, not a client one).
    #[error("internal error: embedded Kubernetes protobuf descriptors are unusable: {0}")]
    Descriptors(String),
}
