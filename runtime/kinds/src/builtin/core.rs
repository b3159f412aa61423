//! The core group (`/api/v1`).

use flotilla_apimachinery::{NameFormat, ResourceDef};
use serde_json::json;

use super::{age, col, kind, wide};
use crate::podspec::{pod_spec, pod_status};
use crate::schema::*;
use crate::validators;

pub fn namespace() -> ResourceDef {
    kind("", "v1", "Namespace", "namespaces", false)
        .short(&["ns"])
        .status()
        .name_format(NameFormat::Dns1123Label)
        .schema(spec_status(
            object(json!({"finalizers": atomic_strings()})),
            object(json!({
                "phase": string_enum(&["Active", "Terminating"]),
                "conditions": conditions(),
            })),
        ))
        .columns(vec![col("Status", "string", ".status.phase"), age()])
        .build()
}

pub fn event() -> ResourceDef {
    kind("", "v1", "Event", "events", true)
        .short(&["ev"])
        .schema(root(json!({
            "involvedObject": object_reference(),
            "reason": string(),
            "message": string(),
            "type": string(),
            "count": int32(),
            "firstTimestamp": date_time(),
            "lastTimestamp": date_time(),
            "eventTime": date_time(),
            "source": object(json!({"component": string(), "host": string()})),
            "series": object(json!({"count": int32(), "lastObservedTime": date_time()})),
            "action": string(),
            "related": object_reference(),
            "reportingComponent": string(),
            "reportingInstance": string(),
        })))
        .columns(vec![
            col("Last Seen", "date", ".lastTimestamp"),
            col("Type", "string", ".type"),
            col("Reason", "string", ".reason"),
            col("Object", "string", ".involvedObject.name"),
            col("Message", "string", ".message"),
            wide("Source", "string", ".source.component"),
            wide("First Seen", "date", ".firstTimestamp"),
            wide("Count", "integer", ".count"),
        ])
        .build()
}

pub fn node() -> ResourceDef {
    kind("", "v1", "Node", "nodes", false)
        .short(&["no"])
        .status()
        .schema(spec_status(
            open_object(json!({
                "podCIDR": string(),
                "podCIDRs": set_of(string()),
                "providerID": string(),
                "unschedulable": boolean(),
                "taints": atomic_list(with_required(
                    object(json!({
                        "key": string(),
                        "value": string(),
                        "effect": string_enum(&["NoSchedule", "PreferNoSchedule", "NoExecute"]),
                        "timeAdded": date_time(),
                    })),
                    &["key", "effect"],
                )),
            })),
            open_object(json!({
                "capacity": quantity_map(),
                "allocatable": quantity_map(),
                "phase": string(),
                "conditions": conditions(),
                "addresses": atomic_list(with_required(
                    object(json!({"type": string(), "address": string()})),
                    &["type", "address"],
                )),
                "nodeInfo": open_object(json!({
                    "machineID": string(),
                    "systemUUID": string(),
                    "bootID": string(),
                    "kernelVersion": string(),
                    "osImage": string(),
                    "containerRuntimeVersion": string(),
                    "kubeletVersion": string(),
                    "kubeProxyVersion": string(),
                    "operatingSystem": string(),
                    "architecture": string(),
                })),
                "daemonEndpoints": preserve(),
                "images": atomic_list(preserve()),
                "volumesInUse": atomic_strings(),
                "volumesAttached": atomic_list(preserve()),
            })),
        ))
        .columns(vec![
            col("Ready", "string", ".status.conditions[?(@.type==\"Ready\")].status"),
            age(),
            col("Version", "string", ".status.nodeInfo.kubeletVersion"),
            wide("Internal-IP", "string", ".status.addresses[?(@.type==\"InternalIP\")].address"),
            wide("External-IP", "string", ".status.addresses[?(@.type==\"ExternalIP\")].address"),
            wide("OS-Image", "string", ".status.nodeInfo.osImage"),
            wide("Kernel-Version", "string", ".status.nodeInfo.kernelVersion"),
            wide("Container-Runtime", "string", ".status.nodeInfo.containerRuntimeVersion"),
        ])
        .build()
}

pub fn pod() -> ResourceDef {
    kind("", "v1", "Pod", "pods", true)
        .short(&["po"])
        .categories(&["all"])
        .status()
        .schema(spec_status(pod_spec(), pod_status()))
        .columns(vec![
            col("Ready", "string", ".status.conditions[?(@.type==\"Ready\")].status"),
            col("Status", "string", ".status.phase"),
            col("Restarts", "integer", ".status.containerStatuses[0].restartCount"),
            age(),
            wide("IP", "string", ".status.podIP"),
            wide("Node", "string", ".spec.nodeName"),
        ])
        .build()
}

pub fn service() -> ResourceDef {
    let port = with_required(
        open_object(json!({
            "name": string(),
            "protocol": {"type": "string", "default": "TCP"},
            "appProtocol": string(),
            "port": int32(),
            "targetPort": int_or_string(),
            "nodePort": int32(),
        })),
        &["port"],
    );
    kind("", "v1", "Service", "services", true)
        .short(&["svc"])
        .categories(&["all"])
        .status()
        .schema(spec_status(
            open_object(json!({
                "ports": map_list(port, &["port", "protocol"]),
                "selector": atomic_string_map(),
                "type": string_enum(&["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]),
                "clusterIP": string(),
                "clusterIPs": atomic_strings(),
                "externalIPs": atomic_strings(),
                "externalName": string(),
                "sessionAffinity": string(),
                "loadBalancerIP": string(),
                "loadBalancerSourceRanges": atomic_strings(),
                "externalTrafficPolicy": string(),
                "internalTrafficPolicy": string(),
                "ipFamilies": atomic_strings(),
                "ipFamilyPolicy": string(),
                "publishNotReadyAddresses": boolean(),
            })),
            open_object(json!({
                "loadBalancer": open_object(json!({"ingress": atomic_list(preserve())})),
                "conditions": conditions(),
            })),
        ))
        .columns(vec![
            col("Type", "string", ".spec.type"),
            col("Cluster-IP", "string", ".spec.clusterIP"),
            col("External-IP", "string", ".status.loadBalancer.ingress[*].ip"),
            col("Port(s)", "string", ".spec.ports[*].port"),
            age(),
            wide("Selector", "string", ".spec.selector"),
        ])
        .build()
}

pub fn config_map() -> ResourceDef {
    kind("", "v1", "ConfigMap", "configmaps", true)
        .short(&["cm"])
        .schema(root(json!({
            "data": string_map(),
            "binaryData": string_map(),
            "immutable": boolean(),
        })))
        .columns(vec![age()])
        .validator(validators::config_map)
        .build()
}

pub fn secret() -> ResourceDef {
    kind("", "v1", "Secret", "secrets", true)
        .schema(root(json!({
            "data": described(string_map(), "base64-encoded values"),
            "stringData": described(string_map(), "write-only: folded into data by the server"),
            "type": string(),
            "immutable": boolean(),
        })))
        .columns(vec![col("Type", "string", ".type"), age()])
        .validator(validators::secret)
        .build()
}

pub fn service_account() -> ResourceDef {
    kind("", "v1", "ServiceAccount", "serviceaccounts", true)
        .short(&["sa"])
        .schema(root(json!({
            "secrets": map_list(with_required(object_reference(), &["name"]), &["name"]),
            "imagePullSecrets": map_list(with_required(object(json!({"name": string()})), &["name"]), &["name"]),
            "automountServiceAccountToken": boolean(),
        })))
        .columns(vec![age()])
        .build()
}

pub fn endpoints() -> ResourceDef {
    let address = open_object(json!({
        "ip": string(),
        "hostname": string(),
        "nodeName": string(),
        "targetRef": object_reference(),
    }));
    kind("", "v1", "Endpoints", "endpoints", true)
        .short(&["ep"])
        .schema(root(json!({
            "subsets": atomic_list(object(json!({
                "addresses": atomic_list(address.clone()),
                "notReadyAddresses": atomic_list(address),
                "ports": atomic_list(open_object(json!({
                    "name": string(),
                    "port": int32(),
                    "protocol": string(),
                    "appProtocol": string(),
                }))),
            }))),
        })))
        .columns(vec![col("Endpoints", "string", ".subsets[*].addresses[*].ip"), age()])
        .build()
}

pub fn persistent_volume_claim() -> ResourceDef {
    kind("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true)
        .short(&["pvc"])
        .status()
        .schema(spec_status(
            open_object(json!({
                "accessModes": atomic_strings(),
                "resources": open_object(json!({"requests": quantity_map(), "limits": quantity_map()})),
                "storageClassName": string(),
                "volumeName": string(),
                "volumeMode": string_enum(&["Filesystem", "Block"]),
                "selector": label_selector(),
                "dataSource": preserve(),
                "dataSourceRef": preserve(),
            })),
            open_object(json!({
                "phase": string_enum(&["Pending", "Bound", "Lost"]),
                "accessModes": atomic_strings(),
                "capacity": quantity_map(),
                "conditions": conditions(),
            })),
        ))
        .columns(vec![
            col("Status", "string", ".status.phase"),
            col("Volume", "string", ".spec.volumeName"),
            col("Capacity", "string", ".status.capacity.storage"),
            col("Access Modes", "string", ".status.accessModes"),
            col("StorageClass", "string", ".spec.storageClassName"),
            age(),
            wide("VolumeMode", "string", ".spec.volumeMode"),
        ])
        .build()
}

pub fn persistent_volume() -> ResourceDef {
    kind("", "v1", "PersistentVolume", "persistentvolumes", false)
        .short(&["pv"])
        .status()
        .schema(spec_status(
            open_object(json!({
                "capacity": quantity_map(),
                "accessModes": atomic_strings(),
                "persistentVolumeReclaimPolicy": string_enum(&["Retain", "Delete", "Recycle"]),
                "storageClassName": string(),
                "claimRef": object_reference(),
                "volumeMode": string_enum(&["Filesystem", "Block"]),
                "mountOptions": atomic_strings(),
                "nodeAffinity": preserve(),
            })),
            open_object(json!({
                "phase": string_enum(&["Pending", "Available", "Bound", "Released", "Failed"]),
                "message": string(),
                "reason": string(),
                "lastPhaseTransitionTime": date_time(),
            })),
        ))
        .columns(vec![
            col("Capacity", "string", ".spec.capacity.storage"),
            col("Access Modes", "string", ".spec.accessModes"),
            col("Reclaim Policy", "string", ".spec.persistentVolumeReclaimPolicy"),
            col("Status", "string", ".status.phase"),
            col("Claim", "string", ".spec.claimRef.name"),
            col("StorageClass", "string", ".spec.storageClassName"),
            col("Reason", "string", ".status.reason"),
            age(),
        ])
        .build()
}

pub fn resource_quota() -> ResourceDef {
    kind("", "v1", "ResourceQuota", "resourcequotas", true)
        .short(&["quota"])
        .status()
        .schema(spec_status(
            open_object(json!({
                "hard": quantity_map(),
                "scopes": atomic_strings(),
                "scopeSelector": preserve(),
            })),
            object(json!({"hard": quantity_map(), "used": quantity_map()})),
        ))
        .columns(vec![age()])
        .build()
}

pub fn limit_range() -> ResourceDef {
    let item = with_required(
        open_object(json!({
            "type": string(),
            "max": quantity_map(),
            "min": quantity_map(),
            "default": quantity_map(),
            "defaultRequest": quantity_map(),
            "maxLimitRequestRatio": quantity_map(),
        })),
        &["type"],
    );
    kind("", "v1", "LimitRange", "limitranges", true)
        .short(&["limits"])
        .schema(root(json!({
            "spec": with_required(object(json!({"limits": atomic_list(item)})), &["limits"]),
        })))
        .columns(vec![age()])
        .build()
}
