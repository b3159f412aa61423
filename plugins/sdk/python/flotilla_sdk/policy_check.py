"""The ``policy-check`` world: decide whether one managed cluster complies with a Policy.

::

    class ClusterInfoExists(PolicyCheck[Config]):
        def reads(self, config: Config) -> Reads:
            return Reads(kinds=[Kind("v1", "ConfigMap")])

        def check(self, config: Config, cluster: Cluster, spoke: Spoke) -> CheckResult:
            if spoke.get(Kind("v1", "ConfigMap"), "cluster-info", namespace="kube-public"):
                return CheckResult.compliant("cluster-info exists")
            return CheckResult.non_compliant("cluster-info is missing", [Violation(...)])

    Check = export(ClusterInfoExists)

The plugin reads spoke objects through :class:`Spoke`, only of the kinds its ``reads()``
declared. It writes nothing: a violation's ``remediation`` (a JSON merge patch) is applied by
the agent only when the Policy is enforced.
"""

from __future__ import annotations

from abc import abstractmethod
import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from componentize_py_types import Err
from wit_world.exports import check as wit
from wit_world.imports import spoke as wit_spoke

from .cluster import Cluster
from .errors import SpokeError
from .plugin import C, Plugin, _guard
from .types import Kind, Owner

__all__ = ["PolicyCheck", "Spoke", "CheckResult", "Compliance", "Violation", "ObjectRef", "export"]


class Compliance(enum.Enum):
    COMPLIANT = "Compliant"
    NON_COMPLIANT = "NonCompliant"
    #: Cannot be decided yet, for example while an object the policy needs is missing.
    PENDING = "Pending"


@dataclass(frozen=True)
class ObjectRef:
    """One object on the spoke; ``namespace`` is ``None`` for cluster-scoped objects."""

    kind: Kind
    name: str
    namespace: str | None = None

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectRef:
        """The reference of an object read from the spoke."""
        meta = obj.get("metadata") or {}
        return cls(Kind.of(obj), str(meta.get("name", "")), meta.get("namespace"))

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind.kind} {where}"


@dataclass
class Violation:
    """What is wrong, for people; the object at fault when there is one; and a JSON merge
    patch (RFC 7386) for that object that makes it comply (applied only when enforced)."""

    message: str
    object: ObjectRef | None = None
    remediation: Mapping[str, Any] | None = None


@dataclass
class CheckResult:
    compliance: Compliance
    #: A one-line summary for the Policy's status.
    message: str
    violations: Sequence[Violation] = field(default_factory=list)

    @classmethod
    def compliant(cls, message: str) -> CheckResult:
        return cls(Compliance.COMPLIANT, message)

    @classmethod
    def non_compliant(cls, message: str, violations: Sequence[Violation]) -> CheckResult:
        return cls(Compliance.NON_COMPLIANT, message, violations)

    @classmethod
    def pending(cls, message: str) -> CheckResult:
        return cls(Compliance.PENDING, message)


class Spoke:
    """Read-only access to the spoke cluster's objects, as dictionaries."""

    def list(
        self, kind: Kind, namespace: str | None = None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Objects of ``kind`` in ``namespace`` (``None``: all namespaces, or a
        cluster-scoped kind), optionally filtered by a label selector (``app=web,tier!=cache``).
        Raises :class:`SpokeError` when the read fails."""
        try:
            return [json.loads(o) for o in wit_spoke.list_objects(kind.to_wit(), namespace, selector)]
        except Err as e:
            raise SpokeError(f"listing {kind}: {e.value}") from None

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """One object, or ``None`` when it does not exist. Raises :class:`SpokeError` when
        the read fails."""
        try:
            found = wit_spoke.get_object(kind.to_wit(), namespace, name)
        except Err as e:
            raise SpokeError(f"getting {kind} {name}: {e.value}") from None
        return json.loads(found) if found is not None else None


class PolicyCheck(Plugin[C]):
    """Base class of a policy check: override :meth:`check` and :meth:`reads` (which must
    list the kinds the check reads)."""

    @abstractmethod
    def check(self, config: C, cluster: Cluster, spoke: Spoke) -> CheckResult:
        """Evaluates the policy on the cluster the agent runs for."""


def _encode(out: CheckResult) -> Any:
    compliance = {
        Compliance.COMPLIANT: wit.Compliance.COMPLIANT,
        Compliance.NON_COMPLIANT: wit.Compliance.NON_COMPLIANT,
        Compliance.PENDING: wit.Compliance.PENDING,
    }[out.compliance]
    violations = [
        wit.Violation(
            wit.ObjectRef(v.object.kind.to_wit(), v.object.namespace, v.object.name) if v.object else None,
            v.message,
            json.dumps(v.remediation) if v.remediation is not None else None,
        )
        for v in out.violations
    ]
    return wit.CheckResult(compliance, out.message, violations)


def export(cls: type[PolicyCheck[Any]]) -> type:
    """The class componentize-py calls for ``flotilla:policy-check/check``: assign it to
    ``Check`` in the app module (``Check = export(MyCheck)``)."""
    plugin = cls()
    spoke = Spoke()

    class Check:
        def describe(self) -> Any:
            return plugin._describe()

        def validate_config(self, config: str) -> Any:
            return plugin._validate_config(config)

        def check(self, config: str, owner: Any, cluster: Any) -> Any:
            def run() -> Any:
                parsed = plugin.parse(config)
                plugin.owner = Owner.from_wit(owner)
                return _encode(plugin.check(parsed, Cluster.from_wit(cluster), spoke))

            return _guard(run)

    Check.__qualname__ = Check.__name__ = f"Check[{cls.__name__}]"
    return Check
