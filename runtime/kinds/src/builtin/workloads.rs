//! Workloads: `apps/v1` and `batch/v1`. Every pod template uses the one pod spec schema.

use flotilla_apimachinery::ResourceDef;
use serde_json::{Value, json};

use super::{age, col, kind, template_columns, wide};
use crate::podspec::pod_template;
use crate::schema::*;

fn columns_with_template(
    mut columns: Vec<flotilla_apimachinery::PrinterColumn>,
    pod_spec_path: &str,
) -> Vec<flotilla_apimachinery::PrinterColumn> {
    columns.extend(template_columns(pod_spec_path));
    columns
}

pub fn deployment() -> ResourceDef {
    kind("apps", "v1", "Deployment", "deployments", true)
        .scale()
        .short(&["deploy"])
        .categories(&["all"])
        .status()
        .schema(spec_status(
            with_required(
                open_object(json!({
                    "replicas": int32(),
                    "selector": label_selector(),
                    "template": pod_template(),
                    "strategy": open_object(json!({
                        "type": string_enum(&["Recreate", "RollingUpdate"]),
                        "rollingUpdate": object(json!({
                            "maxSurge": int_or_string(),
                            "maxUnavailable": int_or_string(),
                        })),
                    })),
                    "minReadySeconds": int32(),
                    "revisionHistoryLimit": int32(),
                    "paused": boolean(),
                    "progressDeadlineSeconds": int32(),
                })),
                &["selector", "template"],
            ),
            open_object(json!({
                "observedGeneration": int64(),
                "replicas": int32(),
                "updatedReplicas": int32(),
                "readyReplicas": int32(),
                "availableReplicas": int32(),
                "unavailableReplicas": int32(),
                "terminatingReplicas": int32(),
                "collisionCount": int32(),
                "conditions": conditions(),
            })),
        ))
        .columns(columns_with_template(
            vec![
                col("Ready", "integer", ".status.readyReplicas"),
                col("Up-to-date", "integer", ".status.updatedReplicas"),
                col("Available", "integer", ".status.availableReplicas"),
                age(),
                wide("Selector", "string", ".spec.selector.matchLabels"),
            ],
            ".spec.template.spec",
        ))
        .build()
}

pub fn stateful_set() -> ResourceDef {
    kind("apps", "v1", "StatefulSet", "statefulsets", true)
        .scale()
        .short(&["sts"])
        .categories(&["all"])
        .status()
        .schema(spec_status(
            with_required(
                open_object(json!({
                    "replicas": int32(),
                    "selector": label_selector(),
                    "template": pod_template(),
                    "serviceName": string(),
                    "podManagementPolicy": string_enum(&["OrderedReady", "Parallel"]),
                    "updateStrategy": preserve(),
                    "volumeClaimTemplates": atomic_list(preserve()),
                    "revisionHistoryLimit": int32(),
                    "minReadySeconds": int32(),
                    "persistentVolumeClaimRetentionPolicy": preserve(),
                    "ordinals": preserve(),
                })),
                &["selector", "template"],
            ),
            open_object(json!({
                "observedGeneration": int64(),
                "replicas": int32(),
                "readyReplicas": int32(),
                "currentReplicas": int32(),
                "updatedReplicas": int32(),
                "availableReplicas": int32(),
                "currentRevision": string(),
                "updateRevision": string(),
                "collisionCount": int32(),
                "conditions": conditions(),
            })),
        ))
        .columns(columns_with_template(
            vec![col("Ready", "integer", ".status.readyReplicas"), col("Replicas", "integer", ".spec.replicas"), age()],
            ".spec.template.spec",
        ))
        .build()
}

pub fn daemon_set() -> ResourceDef {
    kind("apps", "v1", "DaemonSet", "daemonsets", true)
        .short(&["ds"])
        .categories(&["all"])
        .status()
        .schema(spec_status(
            with_required(
                open_object(json!({
                    "selector": label_selector(),
                    "template": pod_template(),
                    "updateStrategy": preserve(),
                    "minReadySeconds": int32(),
                    "revisionHistoryLimit": int32(),
                })),
                &["selector", "template"],
            ),
            open_object(json!({
                "observedGeneration": int64(),
                "currentNumberScheduled": int32(),
                "numberMisscheduled": int32(),
                "desiredNumberScheduled": int32(),
                "numberReady": int32(),
                "updatedNumberScheduled": int32(),
                "numberAvailable": int32(),
                "numberUnavailable": int32(),
                "collisionCount": int32(),
                "conditions": conditions(),
            })),
        ))
        .columns(columns_with_template(
            vec![
                col("Desired", "integer", ".status.desiredNumberScheduled"),
                col("Current", "integer", ".status.currentNumberScheduled"),
                col("Ready", "integer", ".status.numberReady"),
                col("Up-to-date", "integer", ".status.updatedNumberScheduled"),
                col("Available", "integer", ".status.numberAvailable"),
                col("Node Selector", "string", ".spec.template.spec.nodeSelector"),
                age(),
            ],
            ".spec.template.spec",
        ))
        .build()
}

pub fn replica_set() -> ResourceDef {
    kind("apps", "v1", "ReplicaSet", "replicasets", true)
        .scale()
        .short(&["rs"])
        .categories(&["all"])
        .status()
        .schema(spec_status(
            with_required(
                open_object(json!({
                    "replicas": int32(),
                    "minReadySeconds": int32(),
                    "selector": label_selector(),
                    "template": pod_template(),
                })),
                &["selector"],
            ),
            open_object(json!({
                "replicas": int32(),
                "fullyLabeledReplicas": int32(),
                "readyReplicas": int32(),
                "availableReplicas": int32(),
                "terminatingReplicas": int32(),
                "observedGeneration": int64(),
                "conditions": conditions(),
            })),
        ))
        .columns(columns_with_template(
            vec![
                col("Desired", "integer", ".spec.replicas"),
                col("Current", "integer", ".status.replicas"),
                col("Ready", "integer", ".status.readyReplicas"),
                age(),
            ],
            ".spec.template.spec",
        ))
        .build()
}

pub fn controller_revision() -> ResourceDef {
    kind("apps", "v1", "ControllerRevision", "controllerrevisions", true)
        .schema(root(json!({
            "data": preserve(),
            "revision": int64(),
        })))
        .columns(vec![
            col("Controller", "string", ".metadata.ownerReferences[0].name"),
            col("Revision", "integer", ".revision"),
            age(),
        ])
        .build()
}

/// `batchv1.JobSpec`, shared by Jobs and CronJob job templates.
fn job_spec() -> Value {
    with_required(
        open_object(json!({
            "parallelism": int32(),
            "completions": int32(),
            "activeDeadlineSeconds": int64(),
            "backoffLimit": int32(),
            "backoffLimitPerIndex": int32(),
            "maxFailedIndexes": int32(),
            "selector": label_selector(),
            "manualSelector": boolean(),
            "template": pod_template(),
            "ttlSecondsAfterFinished": int32(),
            "completionMode": string_enum(&["NonIndexed", "Indexed"]),
            "suspend": boolean(),
            "podFailurePolicy": preserve(),
            "successPolicy": preserve(),
            "podReplacementPolicy": string(),
            "managedBy": string(),
        })),
        &["template"],
    )
}

pub fn job() -> ResourceDef {
    kind("batch", "v1", "Job", "jobs", true)
        .categories(&["all"])
        .status()
        .schema(spec_status(
            job_spec(),
            open_object(json!({
                "conditions": conditions(),
                "startTime": date_time(),
                "completionTime": date_time(),
                "active": int32(),
                "succeeded": int32(),
                "failed": int32(),
                "terminating": int32(),
                "ready": int32(),
                "completedIndexes": string(),
                "failedIndexes": string(),
                "uncountedTerminatedPods": preserve(),
            })),
        ))
        .columns(columns_with_template(
            vec![
                col("Completions", "integer", ".spec.completions"),
                col("Succeeded", "integer", ".status.succeeded"),
                age(),
                wide("Selector", "string", ".spec.selector.matchLabels"),
            ],
            ".spec.template.spec",
        ))
        .build()
}

pub fn cron_job() -> ResourceDef {
    kind("batch", "v1", "CronJob", "cronjobs", true)
        .short(&["cj"])
        .categories(&["all"])
        .status()
        .schema(spec_status(
            with_required(
                open_object(json!({
                    "schedule": string(),
                    "timeZone": string(),
                    "startingDeadlineSeconds": int64(),
                    "concurrencyPolicy": string_enum(&["Allow", "Forbid", "Replace"]),
                    "suspend": boolean(),
                    "jobTemplate": with_required(
                        object(json!({"metadata": template_metadata(), "spec": job_spec()})),
                        &["spec"],
                    ),
                    "successfulJobsHistoryLimit": int32(),
                    "failedJobsHistoryLimit": int32(),
                })),
                &["schedule", "jobTemplate"],
            ),
            open_object(json!({
                "active": atomic_list(object_reference()),
                "lastScheduleTime": date_time(),
                "lastSuccessfulTime": date_time(),
            })),
        ))
        .columns(columns_with_template(
            vec![
                col("Schedule", "string", ".spec.schedule"),
                col("Timezone", "string", ".spec.timeZone"),
                col("Suspend", "boolean", ".spec.suspend"),
                col("Active", "string", ".status.active[*].name"),
                col("Last Schedule", "date", ".status.lastScheduleTime"),
                age(),
            ],
            ".spec.jobTemplate.spec.template.spec",
        ))
        .build()
}
