//! The embedded descriptor pool (compiled from `proto/` by build.rs), the apiVersion/kind →
//! message table, and the set of fields the Kubernetes sources mark `+optional`.

use std::collections::HashSet;
use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, MessageDescriptor};

use crate::DecodeError;

/// The `FileDescriptorSet` build.rs compiled from the vendored `generated.proto` files.
static DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kubernetes.fds"));

/// Kinds whose protobuf bodies are decoded: (apiVersion, kind, protobuf message name without
/// package prefix). Only those whose proto file is vendored are offered, see [`Schema::kinds`].
const KINDS: &[(&str, &str, &str)] = &[
    ("v1", "Namespace", "api.core.v1.Namespace"),
    ("v1", "Secret", "api.core.v1.Secret"),
    ("v1", "ConfigMap", "api.core.v1.ConfigMap"),
    ("v1", "ServiceAccount", "api.core.v1.ServiceAccount"),
    ("v1", "Service", "api.core.v1.Service"),
    ("v1", "ResourceQuota", "api.core.v1.ResourceQuota"),
    ("v1", "LimitRange", "api.core.v1.LimitRange"),
    ("v1", "Event", "api.core.v1.Event"),
    ("v1", "Pod", "api.core.v1.Pod"),
    ("v1", "PersistentVolumeClaim", "api.core.v1.PersistentVolumeClaim"),
    ("v1", "Endpoints", "api.core.v1.Endpoints"),
    ("v1", "DeleteOptions", "apimachinery.pkg.apis.meta.v1.DeleteOptions"),
    ("meta.k8s.io/v1", "DeleteOptions", "apimachinery.pkg.apis.meta.v1.DeleteOptions"),
    ("apps/v1", "Deployment", "api.apps.v1.Deployment"),
    ("apps/v1", "StatefulSet", "api.apps.v1.StatefulSet"),
    ("apps/v1", "DaemonSet", "api.apps.v1.DaemonSet"),
    ("apps/v1", "ReplicaSet", "api.apps.v1.ReplicaSet"),
    ("batch/v1", "Job", "api.batch.v1.Job"),
    ("batch/v1", "CronJob", "api.batch.v1.CronJob"),
    ("rbac.authorization.k8s.io/v1", "Role", "api.rbac.v1.Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "api.rbac.v1.RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "api.rbac.v1.ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "api.rbac.v1.ClusterRoleBinding"),
    ("networking.k8s.io/v1", "Ingress", "api.networking.v1.Ingress"),
    ("policy/v1", "PodDisruptionBudget", "api.policy.v1.PodDisruptionBudget"),
    ("scheduling.k8s.io/v1", "PriorityClass", "api.scheduling.v1.PriorityClass"),
    ("coordination.k8s.io/v1", "Lease", "api.coordination.v1.Lease"),
    ("certificates.k8s.io/v1", "CertificateSigningRequest", "api.certificates.v1.CertificateSigningRequest"),
    ("events.k8s.io/v1", "Event", "api.events.v1.Event"),
];

/// The loaded pool plus what the decoder derives from it once.
pub struct Schema {
    pool: DescriptorPool,
    optional: HashSet<String>,
    kinds: Vec<(&'static str, &'static str, MessageDescriptor)>,
}

impl Schema {
    /// The process-wide schema, loaded on first use.
    pub fn get() -> Result<&'static Schema, DecodeError> {
        static SCHEMA: OnceLock<Result<Schema, String>> = OnceLock::new();
        SCHEMA.get_or_init(Schema::load).as_ref().map_err(|err| DecodeError::Descriptors(err.clone()))
    }

    /// Decodes the embedded descriptor set and indexes it.
    fn load() -> Result<Schema, String> {
        let pool = DescriptorPool::decode(DESCRIPTOR_SET).map_err(|err| err.to_string())?;
        let kinds = KINDS
            .iter()
            .filter_map(|(api_version, kind, message)| lookup(&pool, message).map(|desc| (*api_version, *kind, desc)))
            .collect();
        let optional = optional_fields(&pool);
        Ok(Schema { pool, optional, kinds })
    }

    /// The message type for an apiVersion/kind, if supported.
    pub fn message_for(&self, api_version: &str, kind: &str) -> Option<MessageDescriptor> {
        self.kinds.iter().find(|(v, k, _)| *v == api_version && *k == kind).map(|(_, _, desc)| desc.clone())
    }

    /// The supported (apiVersion, kind) pairs.
    pub fn kinds(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.kinds.iter().map(|(v, k, _)| (*v, *k))
    }

    /// A message by its name without package prefix (`apimachinery.pkg.runtime.Unknown`).
    pub fn message(&self, name: &str) -> Option<MessageDescriptor> {
        lookup(&self.pool, name)
    }

    /// Whether the Kubernetes source marks this field (`package.Message.field`) `+optional`,
    /// which by the API conventions means `json:",omitempty"` in Go.
    pub fn is_optional(&self, full_field_name: &str) -> bool {
        self.optional.contains(canonical(full_field_name))
    }
}

/// Finds a message whether the vendored packages are `k8s.io.api...` (upstream) or `api...`
/// (the kube-rs/k8s-pb mirror's rewrite).
fn lookup(pool: &DescriptorPool, name: &str) -> Option<MessageDescriptor> {
    pool.get_message_by_name(name).or_else(|| pool.get_message_by_name(&format!("k8s.io.{name}")))
}

/// A full name without the upstream `k8s.io.` package prefix.
pub fn canonical(name: &str) -> &str {
    name.strip_prefix("k8s.io.").unwrap_or(name)
}

/// Fields of top-level messages whose leading comment carries the `+optional` marker, as
/// canonical `package.Message.field` names. Source info path `[4, m, 2, f]` is field `f` of
/// message `m`.
fn optional_fields(pool: &DescriptorPool) -> HashSet<String> {
    let mut out = HashSet::new();
    for file in pool.files() {
        let proto = file.file_descriptor_proto();
        let Some(info) = &proto.source_code_info else { continue };
        let package = proto.package();
        for location in &info.location {
            let [4, m, 2, f] = location.path[..] else { continue };
            if !location.leading_comments().lines().any(|line| line.trim() == "+optional") {
                continue;
            }
            let message = usize::try_from(m).ok().and_then(|m| proto.message_type.get(m));
            let field = message.and_then(|msg| usize::try_from(f).ok().and_then(|f| msg.field.get(f)));
            if let (Some(message), Some(field)) = (message, field) {
                let full = format!("{package}.{}.{}", message.name(), field.name());
                out.insert(canonical(&full).to_string());
            }
        }
    }
    out
}
