//! How lists and maps merge, shared by strategic merge patch and server-side apply.

/// The merge semantics of a list, as `x-kubernetes-list-type` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole (the default for lists without a declared type).
    Atomic,
    /// A set of scalars, merged by value.
    Set,
    /// A list of objects identified by these keys (`x-kubernetes-list-map-keys`);
    /// the first key is the strategic-merge `patchMergeKey`.
    Map(Vec<String>),
}

/// Answers merge questions about positions in an object. `path` holds the field
/// names from the root of the object; list items are transparent (the path of
/// `spec.template.spec.containers[0].env` is `["spec","template","spec","containers","env"]`).
pub trait MergeStrategy {
    fn list_type(&self, path: &[&str]) -> ListType;
    /// True where `x-kubernetes-map-type: atomic` makes a map replace as a whole.
    fn map_is_atomic(&self, _path: &[&str]) -> bool {
        false
    }
}

/// Every list atomic, every map granular: the behaviour for kinds without a schema.
#[derive(Debug, Clone, Copy, Default)]
pub struct AtomicLists;

impl MergeStrategy for AtomicLists {
    fn list_type(&self, _path: &[&str]) -> ListType {
        ListType::Atomic
    }
}
