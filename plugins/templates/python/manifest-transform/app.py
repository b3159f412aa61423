"""{{name}}: a manifest transform that labels every manifest with the name of the cluster
it goes to.

Configuration::

    {"labelKey": "example.com/cluster"}

The host calls ``transform`` once per rollout cycle with the work's manifests and every
cluster that gets a work in that cycle; ``for_cluster`` answers one cluster's manifests, or
raises ``Rejected`` with why that cluster cannot have the work.
"""

from __future__ import annotations

from dataclasses import dataclass

from flotilla_sdk import Cluster, ConfigError, config_field
from flotilla_sdk.manifest_transform import Manifest, ManifestTransform, Rejected, export

#: Kubernetes label values are at most 63 characters.
MAX_LABEL_VALUE = 63


@dataclass(frozen=True)
class Config:
    label_key: str = config_field(
        default="flotilla.dev/cluster", minLength=1, description="The label that carries the cluster's name."
    )

    def __post_init__(self) -> None:
        if not self.label_key:
            raise ConfigError("labelKey must not be empty")


class ClusterLabel(ManifestTransform[Config]):
    name = "{{name}}"
    version = "0.1.0"
    summary = "Labels every manifest with the name of the cluster it goes to."

    def for_cluster(self, config: Config, manifests: list[Manifest], cluster: Cluster) -> list[Manifest]:
        if len(cluster.name) > MAX_LABEL_VALUE:
            raise Rejected(
                f"cluster name {cluster.name} is longer than a label value may be ({MAX_LABEL_VALUE})"
            )
        for manifest in manifests:  # this cluster's own copy: change it in place
            if not isinstance(manifest, dict):
                raise Rejected("a manifest is not a JSON object")
            metadata = manifest.setdefault("metadata", {})
            if not isinstance(metadata, dict):
                raise Rejected("a manifest's metadata is not an object")
            labels = metadata.setdefault("labels", {})
            if not isinstance(labels, dict):
                raise Rejected("a manifest's labels are not an object")
            labels[config.label_key] = cluster.name
        return manifests


Transform = export(ClusterLabel)
