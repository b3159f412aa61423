"""allowed-registries: a cluster complies when every Deployment's images come from allowed
registries; with ``rewriteTo``, each violation proposes a remediation (the spec is
``plugins/examples/README.md``).

Configuration::

    {"registries": ["ghcr.io/acme"], "namespace": "shop", "rewriteTo": "ghcr.io/acme"}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flotilla_sdk import Cluster, ConfigError, Kind, Reads, config_field
from flotilla_sdk.policy_check import CheckResult, ObjectRef, PolicyCheck, Spoke, Violation, export

DEPLOYMENT = Kind("apps/v1", "Deployment")
#: The container lists of a pod spec, in the order their images are checked.
LISTS = ("initContainers", "containers")


@dataclass(frozen=True)
class Config:
    registries: list[str] = config_field(description="Allowed registry prefixes.", minItems=1)
    namespace: str | None = config_field(default=None, description="Check only this namespace.")
    rewrite_to: str | None = config_field(default=None, description="Where remediation moves disallowed images.")

    def __post_init__(self) -> None:
        if not self.registries:
            raise ConfigError("registries must name at least one registry")

    def allowed(self, image: str) -> bool:
        return any(image.startswith(registry + "/") for registry in self.registries)


def repository(image: str) -> str:
    """The image without its registry host: ``docker.io/library/redis:7`` is
    ``library/redis:7``; ``busybox:1.36`` stays."""
    first, slash, rest = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return rest
    return image


def containers(deployment: dict[str, Any], list_name: str) -> list[Any]:
    spec = deployment.get("spec", {}).get("template", {}).get("spec", {})
    items = spec.get(list_name) if isinstance(spec, dict) else None
    return items if isinstance(items, list) else []


def image_of(container: Any) -> str | None:
    image = container.get("image") if isinstance(container, dict) else None
    return image if isinstance(image, str) else None


def images(items: list[Any]) -> list[str]:
    """The images of a container list (containers without one are skipped)."""
    return [image for image in map(image_of, items) if image is not None]


def violation(config: Config, deployment: dict[str, Any]) -> Violation | None:
    bad: list[str] = []
    for list_name in LISTS:
        for image in images(containers(deployment, list_name)):
            if not config.allowed(image) and image not in bad:
                bad.append(image)
    if not bad:
        return None
    found = Violation(f"images not from an allowed registry: {', '.join(bad)}", object=ObjectRef.of(deployment))
    if config.rewrite_to is None:
        return found
    spec: dict[str, Any] = {}
    for list_name in LISTS:
        items = containers(deployment, list_name)
        if all(config.allowed(i) for i in images(items)):
            continue
        moved = []
        for container in items:
            current = image_of(container)
            if current is not None and not config.allowed(current):
                container = {**container, "image": f"{config.rewrite_to}/{repository(current)}"}
            moved.append(container)
        spec[list_name] = moved
    found.remediation = {"spec": {"template": {"spec": spec}}}
    return found


class AllowedRegistries(PolicyCheck[Config]):
    name = "allowed-registries"
    version = "0.1.0"
    summary = "Every Deployment's images come from allowed registries; remediation rewrites them."

    def reads(self, config: Config) -> Reads:
        return Reads(kinds=[DEPLOYMENT])

    def check(self, config: Config, cluster: Cluster, spoke: Spoke) -> CheckResult:
        deployments = spoke.list(DEPLOYMENT, namespace=config.namespace)

        def key(d: dict[str, Any]) -> tuple[bool, str, str]:
            meta = d.get("metadata", {})
            namespace = meta.get("namespace")
            return (namespace is not None, namespace or "", meta.get("name", ""))

        deployments.sort(key=key)
        violations = [v for v in (violation(config, d) for d in deployments) if v is not None]
        n = len(deployments)
        if not violations:
            return CheckResult.compliant(f"all {n} deployment(s) use allowed registries")
        return CheckResult.non_compliant(
            f"{len(violations)} of {n} deployment(s) use images outside the allowed registries", violations
        )


Check = export(AllowedRegistries)
