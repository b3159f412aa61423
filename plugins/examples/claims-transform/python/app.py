"""claims-transform: per-cluster image registry and replica count from cluster claims (the
spec is ``plugins/examples/README.md``).

Configuration::

    {"registryClaim": "registry.example.com", "replicasClaim": "replicas.example.com"}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flotilla_sdk import Cluster, ConfigError, Reads, config_field
from flotilla_sdk.manifest_transform import Manifest, ManifestTransform, Rejected, export

#: Kinds whose pod spec is ``spec.template.spec``; a Pod's is ``spec``.
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")
#: Kinds that get ``spec.replicas``.
SCALABLE = ("Deployment", "StatefulSet")
#: The largest replica count (an unsigned 64-bit integer, as the other languages).
MAX_REPLICAS = 2**64 - 1


@dataclass(frozen=True)
class Config:
    registry_claim: str | None = config_field(default=None, description="The claim holding the registry host.")
    replicas_claim: str | None = config_field(default=None, description="The claim holding the replica count.")

    def __post_init__(self) -> None:
        if self.registry_claim is None and self.replicas_claim is None:
            raise ConfigError("set registryClaim or replicasClaim")


def repository(image: str) -> str:
    """The image without its registry host (``docker.io/library/redis:7`` is
    ``library/redis:7``; ``busybox:1.36`` stays)."""
    first, slash, rest = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return rest
    return image


def pod_spec(manifest: Manifest) -> Any:
    kind = manifest.get("kind")
    spec = manifest.get("spec")
    if kind == "Pod":
        return spec
    if kind in WORKLOADS and isinstance(spec, dict):
        template = spec.get("template")
        return template.get("spec") if isinstance(template, dict) else None
    return None


def replica_count(config: Config, cluster: Cluster) -> int | None:
    if config.replicas_claim is None:
        return None
    value = cluster.claim(config.replicas_claim)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_REPLICAS:
        raise Rejected(f"claim {config.replicas_claim} value {value} is not a replica count")
    return int(value)


class ClaimsTransform(ManifestTransform[Config]):
    name = "claims-transform"
    version = "0.1.0"
    summary = "Per-cluster image registry and replica count from cluster claims."

    def reads(self, config: Config) -> Reads:
        return Reads(claims=[c for c in (config.registry_claim, config.replicas_claim) if c is not None])

    def for_cluster(self, config: Config, manifests: list[Manifest], cluster: Cluster) -> list[Manifest]:
        registry = cluster.claim(config.registry_claim) if config.registry_claim is not None else None
        replicas = replica_count(config, cluster)
        for manifest in manifests:  # this cluster's own copy
            spec = pod_spec(manifest) if registry is not None else None
            if isinstance(spec, dict):
                for list_name in ("initContainers", "containers"):
                    items = spec.get(list_name)
                    for container in items if isinstance(items, list) else []:
                        if isinstance(container, dict) and isinstance(container.get("image"), str):
                            container["image"] = f"{registry}/{repository(container['image'])}"
            if replicas is not None and manifest.get("kind") in SCALABLE and isinstance(manifest.get("spec"), dict):
                manifest["spec"]["replicas"] = replicas
        return manifests


Transform = export(ClaimsTransform)
