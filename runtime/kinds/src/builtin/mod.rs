//! Built-in Kubernetes kinds, defined in Rust with compact structural schemas and the
//! printer columns kubectl usually shows.

pub mod cluster;
pub mod core;
pub mod workloads;

use flotilla_apimachinery::resource::KindValidator;
use flotilla_apimachinery::{NameFormat, PrinterColumn, ResourceDef};
use serde_json::Value;

/// Builds a [`ResourceDef`] with Kubernetes' defaults: `listKind` is `kind + "List"`,
/// the singular is the lowercased kind, and the version is the storage version.
pub(crate) struct KindDef(ResourceDef);

pub(crate) fn kind(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> KindDef {
    KindDef(ResourceDef {
        group: group.to_string(),
        version: version.to_string(),
        kind: kind.to_string(),
        list_kind: format!("{kind}List"),
        plural: plural.to_string(),
        singular: kind.to_lowercase(),
        short_names: Vec::new(),
        categories: Vec::new(),
        namespaced,
        status_subresource: false,
        schema: None,
        printer_columns: Vec::new(),
        name_format: NameFormat::Dns1123Subdomain,
        validator: None,
        storage_version: true,
        scale: None,
    })
}

impl KindDef {
    /// Adds the `scale` subresource over `.spec.replicas` / `.status.replicas`.
    pub(crate) fn scale(mut self) -> Self {
        self.0.scale = Some(flotilla_apimachinery::ScaleSubresource::replicas());
        self
    }
    pub(crate) fn short(mut self, names: &[&str]) -> Self {
        self.0.short_names = names.iter().map(|n| n.to_string()).collect();
        self
    }

    pub(crate) fn categories(mut self, categories: &[&str]) -> Self {
        self.0.categories = categories.iter().map(|c| c.to_string()).collect();
        self
    }

    pub(crate) fn status(mut self) -> Self {
        self.0.status_subresource = true;
        self
    }

    pub(crate) fn schema(mut self, schema: Value) -> Self {
        self.0.schema = Some(schema);
        self
    }

    pub(crate) fn columns(mut self, columns: Vec<PrinterColumn>) -> Self {
        self.0.printer_columns = columns;
        self
    }

    pub(crate) fn validator(mut self, validator: KindValidator) -> Self {
        self.0.validator = Some(validator);
        self
    }

    pub(crate) fn name_format(mut self, format: NameFormat) -> Self {
        self.0.name_format = format;
        self
    }

    pub(crate) fn build(self) -> ResourceDef {
        self.0
    }
}

/// A column shown by default.
pub(crate) fn col(name: &str, type_: &str, json_path: &str) -> PrinterColumn {
    PrinterColumn {
        name: name.to_string(),
        type_: type_.to_string(),
        format: None,
        description: String::new(),
        priority: 0,
        json_path: json_path.to_string(),
    }
}

/// A column shown only with `-o wide`.
pub(crate) fn wide(name: &str, type_: &str, json_path: &str) -> PrinterColumn {
    PrinterColumn { priority: 1, ..col(name, type_, json_path) }
}

/// `AGE`, from the creation timestamp.
pub(crate) fn age() -> PrinterColumn {
    col("Age", "date", ".metadata.creationTimestamp")
}

/// The containers and images of a pod template at `spec` (wide columns).
pub(crate) fn template_columns(pod_spec_path: &str) -> Vec<PrinterColumn> {
    vec![
        wide("Containers", "string", &format!("{pod_spec_path}.containers[*].name")),
        wide("Images", "string", &format!("{pod_spec_path}.containers[*].image")),
    ]
}
