"""Plain Python versions of the shared WIT types: what a plugin reads, kinds, owners."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Kind", "Owner", "Reads"]


@dataclass(frozen=True)
class Kind:
    """A Kubernetes kind: ``Kind("v1", "ConfigMap")``, ``Kind("apps/v1", "Deployment")``."""

    api_version: str
    kind: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Kind:
        """The kind of an object (its ``apiVersion`` and ``kind``)."""
        return cls(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))

    def to_wit(self) -> Any:
        from wit_world.imports import types as wit

        return wit.KindRef(self.api_version, self.kind)

    def __str__(self) -> str:
        return f"{self.api_version}/{self.kind}" if self.api_version else self.kind


@dataclass(frozen=True)
class Owner:
    """The object on whose behalf the host calls the plugin (a Placement, a Policy, a
    ManifestWorkReplicaSet); ``namespace`` is empty for cluster-scoped objects."""

    kind: str = ""
    namespace: str = ""
    name: str = ""

    @classmethod
    def from_wit(cls, owner: Any) -> Owner:
        return cls(owner.kind, owner.namespace, owner.name)


@dataclass
class Reads:
    """What a plugin reads: the host passes each cluster with exactly these and nothing else
    (``"*"`` in a list means every key, at the cost of copying all of them into every call).
    ``kinds`` are the spoke kinds a policy check lists and gets."""

    labels: Sequence[str] = field(default_factory=list)
    claims: Sequence[str] = field(default_factory=list)
    resources: Sequence[str] = field(default_factory=list)
    #: Dotted paths into the ManagedCluster, for example ``status.version.kubernetes``.
    fields: Sequence[str] = field(default_factory=list)
    kinds: Sequence[Kind] = field(default_factory=list)

    def to_wit(self) -> Any:
        from wit_world.imports import types as wit

        return wit.Reads(
            list(self.labels),
            list(self.claims),
            list(self.resources),
            list(self.fields),
            [k.to_wit() for k in self.kinds],
        )
