//! The pod spec schema shared by Pods and every workload's pod template. It declares
//! the merge semantics strategic merge patch and server-side apply need (which lists
//! are maps, and by which keys) and keeps every field it does not declare.

use serde_json::{Value, json};

use crate::schema::*;

/// `corev1.PodSpec`.
pub fn pod_spec() -> Value {
    with_required(
        open_object(json!({
            "containers": map_list(container(), &["name"]),
            "initContainers": map_list(container(), &["name"]),
            "ephemeralContainers": map_list(container(), &["name"]),
            "volumes": map_list(
                with_required(open_object(json!({"name": string()})), &["name"]),
                &["name"],
            ),
            "imagePullSecrets": map_list(
                with_required(object(json!({"name": string()})), &["name"]),
                &["name"],
            ),
            "tolerations": atomic_list(open_object(json!({
                "key": string(),
                "operator": string(),
                "value": string(),
                "effect": string(),
                "tolerationSeconds": int64(),
            }))),
            "nodeSelector": atomic_string_map(),
            "nodeName": string(),
            "serviceAccountName": string(),
            "serviceAccount": string(),
            "automountServiceAccountToken": boolean(),
            "restartPolicy": string_enum(&["Always", "OnFailure", "Never"]),
            "terminationGracePeriodSeconds": int64(),
            "activeDeadlineSeconds": int64(),
            "dnsPolicy": string(),
            "hostNetwork": boolean(),
            "hostPID": boolean(),
            "hostIPC": boolean(),
            "hostname": string(),
            "subdomain": string(),
            "schedulerName": string(),
            "priorityClassName": string(),
            "priority": int32(),
            "runtimeClassName": string(),
            "preemptionPolicy": string(),
            "affinity": preserve(),
            "securityContext": preserve(),
            "topologySpreadConstraints": map_list(
                with_required(
                    open_object(json!({
                        "topologyKey": string(),
                        "whenUnsatisfiable": string(),
                        "maxSkew": int32(),
                        "labelSelector": label_selector(),
                    })),
                    &["topologyKey", "whenUnsatisfiable"],
                ),
                &["topologyKey", "whenUnsatisfiable"],
            ),
        })),
        &["containers"],
    )
}

/// `corev1.PodTemplateSpec`.
pub fn pod_template() -> Value {
    object(json!({
        "metadata": template_metadata(),
        "spec": pod_spec(),
    }))
}

/// `corev1.Container` (also used for init and ephemeral containers).
fn container() -> Value {
    with_required(
        open_object(json!({
            "name": string(),
            "image": string(),
            "imagePullPolicy": string_enum(&["Always", "Never", "IfNotPresent"]),
            "command": atomic_strings(),
            "args": atomic_strings(),
            "workingDir": string(),
            "ports": map_list(
                with_required(
                    open_object(json!({
                        "containerPort": int32(),
                        "protocol": {"type": "string", "default": "TCP"},
                        "name": string(),
                        "hostPort": int32(),
                        "hostIP": string(),
                    })),
                    &["containerPort"],
                ),
                &["containerPort", "protocol"],
            ),
            "env": map_list(
                with_required(
                    open_object(json!({
                        "name": string(),
                        "value": string(),
                        "valueFrom": preserve(),
                    })),
                    &["name"],
                ),
                &["name"],
            ),
            "envFrom": atomic_list(preserve()),
            "resources": open_object(json!({
                "limits": quantity_map(),
                "requests": quantity_map(),
            })),
            "volumeMounts": map_list(
                with_required(
                    open_object(json!({
                        "name": string(),
                        "mountPath": string(),
                        "readOnly": boolean(),
                        "subPath": string(),
                        "mountPropagation": string(),
                    })),
                    &["name", "mountPath"],
                ),
                &["mountPath"],
            ),
            "volumeDevices": map_list(
                with_required(open_object(json!({"name": string(), "devicePath": string()})), &["name", "devicePath"]),
                &["devicePath"],
            ),
            "livenessProbe": preserve(),
            "readinessProbe": preserve(),
            "startupProbe": preserve(),
            "lifecycle": preserve(),
            "securityContext": preserve(),
            "stdin": boolean(),
            "tty": boolean(),
            "terminationMessagePath": string(),
            "terminationMessagePolicy": string(),
        })),
        &["name"],
    )
}

/// `corev1.PodStatus`.
pub fn pod_status() -> Value {
    let container_status = open_object(json!({
        "name": string(),
        "ready": boolean(),
        "restartCount": int32(),
        "image": string(),
        "imageID": string(),
        "containerID": string(),
        "started": boolean(),
        "state": preserve(),
        "lastState": preserve(),
    }));
    open_object(json!({
        "phase": string_enum(&["Pending", "Running", "Succeeded", "Failed", "Unknown"]),
        "conditions": conditions(),
        "message": string(),
        "reason": string(),
        "hostIP": string(),
        "podIP": string(),
        "podIPs": atomic_list(open_object(json!({"ip": string()}))),
        "startTime": date_time(),
        "qosClass": string(),
        "containerStatuses": atomic_list(container_status.clone()),
        "initContainerStatuses": atomic_list(container_status.clone()),
        "ephemeralContainerStatuses": atomic_list(container_status),
    }))
}
