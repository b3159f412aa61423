"""{{name}}: a policy check under which a cluster complies when one object exists on it.

Configuration::

    {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "kube-public", "name": "cluster-info"}

The agent calls ``check`` once per evaluation on its own cluster; the plugin reads spoke
objects through ``spoke``, only of the kinds ``reads()`` declares.
"""

from __future__ import annotations

from dataclasses import dataclass

from flotilla_sdk import Cluster, ConfigError, Kind, Reads, config_field
from flotilla_sdk.policy_check import CheckResult, ObjectRef, PolicyCheck, Spoke, Violation, export


@dataclass(frozen=True)
class Config:
    api_version: str = config_field(minLength=1)
    kind: str = config_field(minLength=1)
    name: str = config_field(minLength=1)
    namespace: str | None = config_field(default=None, description="Absent for a cluster-scoped kind.")

    def __post_init__(self) -> None:
        if not self.api_version or not self.kind or not self.name:
            raise ConfigError("apiVersion, kind and name must not be empty")

    @property
    def object(self) -> ObjectRef:
        return ObjectRef(Kind(self.api_version, self.kind), self.name, self.namespace)


class ObjectExists(PolicyCheck[Config]):
    name = "{{name}}"
    version = "0.1.0"
    summary = "A cluster complies when the configured object exists on it."

    def reads(self, config: Config) -> Reads:
        return Reads(kinds=[config.object.kind])

    def check(self, config: Config, cluster: Cluster, spoke: Spoke) -> CheckResult:
        target = config.object  # shown as "ConfigMap kube-public/cluster-info"
        if spoke.get(target.kind, target.name, namespace=target.namespace) is not None:
            return CheckResult.compliant(f"{target} exists on {cluster.name}")
        # A remediation (a JSON merge patch for the object) would be applied only when the
        # Policy is enforced; a missing object cannot be patched into existence.
        return CheckResult.non_compliant(
            f"{target} is missing on {cluster.name}",
            [Violation(f"{target} does not exist", object=target)],
        )


Check = export(ObjectExists)
