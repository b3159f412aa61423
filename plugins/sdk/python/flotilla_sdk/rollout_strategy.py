"""The ``rollout-strategy`` world: decide which clusters a ManifestWorkReplicaSet rolls out
to next.

::

    class OneAtATime(RolloutStrategy[Config]):
        def decide(self, config: Config, now: int, clusters: list[RolloutCluster]) -> Decision:
            in_flight = [c.name for c in clusters if c.status is Status.PROGRESSING]
            ...
            return Decision(proceed=in_flight, message="...")

    Strategy = export(OneAtATime)

The world is deterministic: ``now`` (milliseconds since the Unix epoch) is an argument, and
there is no clock and no randomness.
"""

from __future__ import annotations

from abc import abstractmethod
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wit_world.exports import strategy as wit

from .cluster import Cluster
from .errors import PluginError
from .plugin import C, Plugin, _guard
from .types import Owner

__all__ = ["RolloutStrategy", "RolloutCluster", "Status", "Decision", "export"]


class Status(enum.Enum):
    """A cluster's rollout status, as sdk-go's ``RolloutStatus``."""

    #: The current revision is not applied yet.
    TO_APPLY = "ToApply"
    #: Applied, not yet healthy.
    PROGRESSING = "Progressing"
    #: Applied and healthy.
    SUCCEEDED = "Succeeded"
    #: Applied and degraded.
    FAILED = "Failed"
    #: Did not succeed within the progress deadline.
    TIME_OUT = "TimeOut"
    #: Left out of this rollout.
    SKIP = "Skip"


#: The WIT enum's values (0 for ``to-apply``...), in declaration order.
_FROM_WIT = [Status.TO_APPLY, Status.PROGRESSING, Status.SUCCEEDED, Status.FAILED, Status.TIME_OUT, Status.SKIP]


class RolloutCluster:
    """One cluster of the rollout: the cluster (with what the plugin reads), its
    PlacementDecision group and its status."""

    __slots__ = ("cluster", "group_index", "group_name", "status", "last_transition_time")

    def __init__(
        self,
        cluster: Cluster,
        group_index: int = 0,
        group_name: str = "",
        status: Status = Status.TO_APPLY,
        last_transition_time: int | None = None,
    ) -> None:
        self.cluster = cluster
        #: The PlacementDecision group, by index and name (empty for unnamed groups).
        self.group_index = group_index
        self.group_name = group_name
        self.status = status
        #: When ``status`` last changed (ms since the Unix epoch); ``None`` for ``TO_APPLY``.
        self.last_transition_time = last_transition_time

    @property
    def name(self) -> str:
        return self.cluster.name

    @classmethod
    def from_wit(cls, rc: Any) -> RolloutCluster:
        return cls(
            Cluster.from_wit(rc.cluster),
            rc.group_index,
            rc.group_name,
            _FROM_WIT[rc.status.value],
            rc.last_transition_time,
        )

    def __repr__(self) -> str:
        return f"RolloutCluster({self.name!r}, group={self.group_index}, status={self.status.name})"


@dataclass
class Decision:
    """One rollout cycle's decision. Every name must be one of the input clusters."""

    #: Clusters that get (or keep getting) the current revision now.
    proceed: Sequence[str] = field(default_factory=list)
    #: Clusters whose progress deadline passed; the host records them as ``TimeOut``.
    timed_out: Sequence[str] = field(default_factory=list)
    #: Clusters the strategy declares failed (rolled back with automatic rollback).
    failed: Sequence[str] = field(default_factory=list)
    #: The rollout must stop: failures exceed what the strategy tolerates.
    stop: bool = False
    #: When to decide again even if no status changes, in milliseconds after ``now``.
    recheck_after_ms: int | None = None
    #: A one-line summary for the rollout's status.
    message: str | None = None


class RolloutStrategy(Plugin[C]):
    """Base class of a rollout strategy: override :meth:`decide`."""

    @abstractmethod
    def decide(self, config: C, now: int, clusters: list[RolloutCluster]) -> Decision:
        """Decides one rollout cycle at ``now`` (ms since the Unix epoch)."""


def _encode(out: Decision, names: set[str]) -> Any:
    for what in (out.proceed, out.timed_out, out.failed):
        for name in what:
            if name not in names:
                raise PluginError(f"decision names cluster {name}, which is not in the rollout")
    return wit.RolloutDecision(
        list(out.proceed), list(out.timed_out), list(out.failed), bool(out.stop), out.recheck_after_ms, out.message
    )


def export(cls: type[RolloutStrategy[Any]]) -> type:
    """The class componentize-py calls for ``flotilla:rollout-strategy/strategy``: assign it
    to ``Strategy`` in the app module (``Strategy = export(MyStrategy)``)."""
    plugin = cls()

    class Strategy:
        def describe(self) -> Any:
            return plugin._describe()

        def validate_config(self, config: str) -> Any:
            return plugin._validate_config(config)

        def decide(self, config: str, owner: Any, now: int, clusters: list[Any]) -> Any:
            def run() -> Any:
                parsed = plugin.parse(config)
                plugin.owner = Owner.from_wit(owner)
                views = [RolloutCluster.from_wit(c) for c in clusters]
                return _encode(plugin.decide(parsed, now, views), {c.name for c in views})

            return _guard(run)

    Strategy.__qualname__ = Strategy.__name__ = f"Strategy[{cls.__name__}]"
    return Strategy
