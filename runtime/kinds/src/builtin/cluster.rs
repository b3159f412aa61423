//! Cluster plumbing: RBAC, networking, disruption budgets, leases, storage and
//! scheduling classes, CRDs and certificate signing requests.

use flotilla_apimachinery::ResourceDef;
use serde_json::{Value, json};

use super::{age, col, kind, wide};
use crate::schema::*;
use crate::validators;

const RBAC: &str = "rbac.authorization.k8s.io";

fn policy_rules() -> Value {
    atomic_list(with_required(
        object(json!({
            "apiGroups": atomic_strings(),
            "resources": atomic_strings(),
            "resourceNames": atomic_strings(),
            "verbs": atomic_strings(),
            "nonResourceURLs": atomic_strings(),
        })),
        &["verbs"],
    ))
}

fn binding_fields() -> Value {
    json!({
        "subjects": atomic_list(with_required(
            object(json!({
                "kind": string(),
                "apiGroup": string(),
                "name": string(),
                "namespace": string(),
            })),
            &["kind", "name"],
        )),
        "roleRef": with_required(
            object(json!({"apiGroup": string(), "kind": string(), "name": string()})),
            &["apiGroup", "kind", "name"],
        ),
    })
}

fn binding_columns() -> Vec<flotilla_apimachinery::PrinterColumn> {
    vec![
        col("Role", "string", ".roleRef.name"),
        age(),
        wide("Users", "string", ".subjects[?(@.kind==\"User\")].name"),
        wide("Groups", "string", ".subjects[?(@.kind==\"Group\")].name"),
        wide("ServiceAccounts", "string", ".subjects[?(@.kind==\"ServiceAccount\")].name"),
    ]
}

pub fn role() -> ResourceDef {
    kind(RBAC, "v1", "Role", "roles", true).schema(root(json!({"rules": policy_rules()}))).columns(vec![age()]).build()
}

pub fn cluster_role() -> ResourceDef {
    kind(RBAC, "v1", "ClusterRole", "clusterroles", false)
        .schema(root(json!({
            "rules": policy_rules(),
            "aggregationRule": object(json!({"clusterRoleSelectors": atomic_list(label_selector())})),
        })))
        .columns(vec![age()])
        .build()
}

pub fn role_binding() -> ResourceDef {
    kind(RBAC, "v1", "RoleBinding", "rolebindings", true)
        .schema(with_required(root(binding_fields()), &["roleRef"]))
        .columns(binding_columns())
        .validator(validators::role_binding)
        .build()
}

pub fn cluster_role_binding() -> ResourceDef {
    kind(RBAC, "v1", "ClusterRoleBinding", "clusterrolebindings", false)
        .schema(with_required(root(binding_fields()), &["roleRef"]))
        .columns(binding_columns())
        .validator(validators::role_binding)
        .build()
}

pub fn network_policy() -> ResourceDef {
    kind("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true)
        .short(&["netpol"])
        .schema(root(json!({
            "spec": open_object(json!({
                "podSelector": label_selector(),
                "policyTypes": atomic_list(string_enum(&["Ingress", "Egress"])),
                "ingress": atomic_list(preserve()),
                "egress": atomic_list(preserve()),
            })),
        })))
        .columns(vec![col("Pod-Selector", "string", ".spec.podSelector.matchLabels"), age()])
        .build()
}

pub fn ingress() -> ResourceDef {
    kind("networking.k8s.io", "v1", "Ingress", "ingresses", true)
        .short(&["ing"])
        .status()
        .schema(spec_status(
            open_object(json!({
                "ingressClassName": string(),
                "defaultBackend": preserve(),
                "tls": atomic_list(preserve()),
                "rules": atomic_list(open_object(json!({"host": string(), "http": preserve()}))),
            })),
            open_object(json!({
                "loadBalancer": open_object(json!({"ingress": atomic_list(preserve())})),
            })),
        ))
        .columns(vec![
            col("Class", "string", ".spec.ingressClassName"),
            col("Hosts", "string", ".spec.rules[*].host"),
            col("Address", "string", ".status.loadBalancer.ingress[*].ip"),
            age(),
        ])
        .build()
}

pub fn pod_disruption_budget() -> ResourceDef {
    kind("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true)
        .short(&["pdb"])
        .status()
        .schema(spec_status(
            open_object(json!({
                "minAvailable": int_or_string(),
                "maxUnavailable": int_or_string(),
                "selector": label_selector(),
                "unhealthyPodEvictionPolicy": string_enum(&["IfHealthyBudget", "AlwaysAllow"]),
            })),
            open_object(json!({
                "observedGeneration": int64(),
                "disruptedPods": {"type": "object", "additionalProperties": date_time()},
                "disruptionsAllowed": int32(),
                "currentHealthy": int32(),
                "desiredHealthy": int32(),
                "expectedPods": int32(),
                "conditions": conditions(),
            })),
        ))
        .columns(vec![
            col("Min Available", "string", ".spec.minAvailable"),
            col("Max Unavailable", "string", ".spec.maxUnavailable"),
            col("Allowed Disruptions", "integer", ".status.disruptionsAllowed"),
            age(),
        ])
        .build()
}

/// `coordination.k8s.io/v1` Lease: heartbeats of agents and leader election.
pub fn lease() -> ResourceDef {
    kind("coordination.k8s.io", "v1", "Lease", "leases", true)
        .schema(root(json!({
            "spec": object(json!({
                "holderIdentity": string(),
                "leaseDurationSeconds": int32(),
                "acquireTime": described(date_time(), "MicroTime: RFC 3339 with microseconds"),
                "renewTime": described(date_time(), "MicroTime: RFC 3339 with microseconds"),
                "leaseTransitions": int32(),
                "strategy": string(),
                "preferredHolder": string(),
            })),
        })))
        .columns(vec![col("Holder", "string", ".spec.holderIdentity"), age()])
        .build()
}

pub fn storage_class() -> ResourceDef {
    kind("storage.k8s.io", "v1", "StorageClass", "storageclasses", false)
        .short(&["sc"])
        .schema(with_required(
            root(json!({
                "provisioner": string(),
                "parameters": string_map(),
                "reclaimPolicy": string_enum(&["Retain", "Delete", "Recycle"]),
                "mountOptions": atomic_strings(),
                "allowVolumeExpansion": boolean(),
                "volumeBindingMode": string_enum(&["Immediate", "WaitForFirstConsumer"]),
                "allowedTopologies": atomic_list(preserve()),
            })),
            &["provisioner"],
        ))
        .columns(vec![
            col("Provisioner", "string", ".provisioner"),
            col("ReclaimPolicy", "string", ".reclaimPolicy"),
            col("VolumeBindingMode", "string", ".volumeBindingMode"),
            col("AllowVolumeExpansion", "boolean", ".allowVolumeExpansion"),
            age(),
        ])
        .build()
}

pub fn priority_class() -> ResourceDef {
    kind("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", false)
        .short(&["pc"])
        .schema(with_required(
            root(json!({
                "value": int32(),
                "globalDefault": boolean(),
                "description": string(),
                "preemptionPolicy": string_enum(&["Never", "PreemptLowerPriority"]),
            })),
            &["value"],
        ))
        .columns(vec![
            col("Value", "integer", ".value"),
            col("Global-Default", "boolean", ".globalDefault"),
            col("PreemptionPolicy", "string", ".preemptionPolicy"),
            age(),
        ])
        .build()
}

/// `apiextensions.k8s.io/v1` CustomResourceDefinition, so a spoke can install CRDs.
pub fn custom_resource_definition() -> ResourceDef {
    kind("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", false)
        .short(&["crd", "crds"])
        .categories(&["api-extensions"])
        .status()
        .schema(spec_status(
            with_required(
                open_object(json!({
                    "group": string(),
                    "names": open_object(json!({
                        "kind": string(),
                        "listKind": string(),
                        "plural": string(),
                        "singular": string(),
                        "shortNames": atomic_strings(),
                        "categories": atomic_strings(),
                    })),
                    "scope": string(),
                    "versions": atomic_list(open_object(json!({
                        "name": string(),
                        "served": boolean(),
                        "storage": boolean(),
                        "schema": preserve(),
                        "subresources": preserve(),
                        "additionalPrinterColumns": atomic_list(preserve()),
                    }))),
                    "conversion": preserve(),
                    "preserveUnknownFields": boolean(),
                })),
                &["group", "names", "scope", "versions"],
            ),
            preserve(),
        ))
        .columns(vec![col("Created At", "date", ".metadata.creationTimestamp")])
        .validator(validators::custom_resource_definition)
        .build()
}

/// The key usages Kubernetes accepts in a CertificateSigningRequest.
pub const KEY_USAGES: &[&str] = &[
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
];

/// `certificates.k8s.io/v1` CertificateSigningRequest: how agents get their client
/// certificates. The spec is immutable once created.
pub fn certificate_signing_request() -> ResourceDef {
    let condition = with_required(
        object(json!({
            "type": string(),
            "status": string_enum(&["True", "False", "Unknown"]),
            "reason": string(),
            "message": string(),
            "lastUpdateTime": date_time(),
            "lastTransitionTime": date_time(),
        })),
        &["type", "status"],
    );
    kind("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests", false)
        .short(&["csr"])
        .status()
        .schema(with_required(
            spec_status(
                with_required(
                    object(json!({
                        "request": described(string_format("byte"), "a PEM-encoded PKCS#10 CERTIFICATE REQUEST, base64-encoded"),
                        "signerName": string(),
                        "expirationSeconds": int32_min(600),
                        "usages": atomic_list(string_enum(KEY_USAGES)),
                        "username": string(),
                        "uid": string(),
                        "groups": atomic_strings(),
                        "extra": {"type": "object", "additionalProperties": atomic_strings()},
                    })),
                    &["request", "signerName"],
                ),
                object(json!({
                    "conditions": map_list(condition, &["type"]),
                    "certificate": described(
                        string_format("byte"),
                        "the issued certificate chain, PEM, base64-encoded",
                    ),
                })),
            ),
            &["spec"],
        ))
        .columns(vec![
            age(),
            col("SignerName", "string", ".spec.signerName"),
            col("Requestor", "string", ".spec.username"),
            col("RequestedDuration", "integer", ".spec.expirationSeconds"),
            col("Condition", "string", ".status.conditions[*].type"),
        ])
        .validator(validators::certificate_signing_request)
        .build()
}
