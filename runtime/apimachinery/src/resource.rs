//! What the API server knows about one served resource (one group/version/kind).

use serde_json::Value;

use crate::status::FieldError;

/// How `metadata.name` of a kind is validated, as in Kubernetes' name validators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameFormat {
    /// RFC 1123 subdomain: lowercase alphanumerics, '-' and '.', at most 253 characters.
    #[default]
    Dns1123Subdomain,
    /// RFC 1123 label: lowercase alphanumerics and '-', at most 63 characters (Namespaces).
    Dns1123Label,
    /// Any name without '/' or '%' and not "." or ".." (path segment names).
    PathSegment,
}

/// Kind-specific validation beyond the structural schema. Receives the new object and,
/// on update, the stored one; returns every problem found (empty means valid).
pub type KindValidator = fn(obj: &Value, old: Option<&Value>) -> Vec<FieldError>;

/// An additional printer column, as in a CRD's `additionalPrinterColumns`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    /// OpenAPI type: string, integer, number, boolean or date.
    pub type_: String,
    pub format: Option<String>,
    pub description: String,
    /// 0 is shown by default; higher only with `-o wide`.
    pub priority: i32,
    /// A simple JSONPath such as `.spec.hubAcceptsClient` or `.status.conditions[?(@.type=="Ready")].status`.
    pub json_path: String,
}

/// The `scale` subresource, as a CRD's `subresources.scale` declares it: JSON paths
/// (`.spec.replicas`) into the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleSubresource {
    pub spec_replicas_path: String,
    pub status_replicas_path: String,
    /// Path of a string label selector in serialized form, as CRDs declare it.
    pub label_selector_path: Option<String>,
}

impl ScaleSubresource {
    /// The `.spec.replicas`-style paths of Deployments, StatefulSets and ReplicaSets.
    pub fn replicas() -> ScaleSubresource {
        ScaleSubresource {
            spec_replicas_path: ".spec.replicas".into(),
            status_replicas_path: ".status.replicas".into(),
            label_selector_path: None,
        }
    }
}

/// One served group/version/kind.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    /// API group; empty for the core group served under `/api/v1`.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    /// Whether `/status` is a subresource (then the main resource ignores status changes
    /// and `/status` ignores everything else).
    pub status_subresource: bool,
    /// The `openAPIV3Schema` of the kind, raw; the API server compiles it once.
    pub schema: Option<Value>,
    pub printer_columns: Vec<PrinterColumn>,
    pub name_format: NameFormat,
    pub validator: Option<KindValidator>,
    /// The version objects are stored in when a kind is served at several versions.
    pub storage_version: bool,
    /// Present when the kind has a `scale` subresource.
    pub scale: Option<ScaleSubresource>,
}

impl ResourceDef {
    /// `group/version`, or just `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// `plural.group`, or just `plural` for the core group (the RBAC/resource name form).
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() { self.plural.clone() } else { format!("{}.{}", self.plural, self.group) }
    }
}
