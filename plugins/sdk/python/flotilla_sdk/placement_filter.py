"""The ``placement-filter`` world: remove clusters a Placement must not choose.

::

    @dataclass
    class Config:
        key: str
        values: list[str]

    class RegionFilter(PlacementFilter[Config]):
        name = "region-filter"

        def reads(self, config: Config) -> Reads:
            return Reads(labels=[config.key])

        def filter(self, config: Config, clusters: Clusters) -> Verdicts:
            reason = f"label {config.key} not in [{', '.join(config.values)}]"
            return clusters.label_column(config.key).map(
                lambda v: None if v in config.values else reason)

    Filter = export(RegionFilter)   # the name componentize-py looks for

The world is deterministic: no clock, no randomness.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

from wit_world.exports import filter as wit

from .cluster import Clusters
from .errors import PluginError
from .plugin import C, Plugin, _guard
from .types import Owner

__all__ = ["PlacementFilter", "Filtered", "Verdicts", "export"]


@dataclass
class Filtered:
    """A filter's answer: per cluster, in input order, ``None`` to keep it or the reason it is
    removed; and optionally when to run the cycle again even if nothing changed."""

    verdicts: Sequence[str | None]
    requeue_after_ms: int | None = None


#: What :meth:`PlacementFilter.filter` returns: a :class:`Filtered`, or just the verdicts.
Verdicts = Union[Filtered, Sequence[Union[str, None]]]


class PlacementFilter(Plugin[C]):
    """Base class of a placement filter: override :meth:`filter` (and :meth:`reads`)."""

    @abstractmethod
    def filter(self, config: C, clusters: Clusters) -> Verdicts:
        """Per cluster, in order: ``None`` keeps it, a string removes it for that reason
        (shown by ``flotilla placement explain``). Raise :class:`PluginError` to fail the
        whole call."""


def _encode(out: Verdicts, count: int) -> Any:
    result = out if isinstance(out, Filtered) else Filtered(out)
    verdicts = list(result.verdicts)
    if len(verdicts) != count:
        raise PluginError(f"filter returned {len(verdicts)} verdict(s) for {count} cluster(s)")
    reasons: dict[str, int] = {}
    encoded = []
    for v in verdicts:
        if v is None:
            encoded.append(0)
        else:
            encoded.append(reasons.setdefault(str(v), len(reasons) + 1))
    return wit.FilterResult(list(reasons), encoded, result.requeue_after_ms)


def export(cls: type[PlacementFilter[Any]]) -> type:
    """The class componentize-py calls for ``flotilla:placement-filter/filter``: assign it
    to ``Filter`` in the app module (``Filter = export(MyFilter)``)."""
    plugin = cls()

    class Filter:
        def describe(self) -> Any:
            return plugin._describe()

        def validate_config(self, config: str) -> Any:
            return plugin._validate_config(config)

        def filter(self, config: str, owner: Any, clusters: Any) -> Any:
            def run() -> Any:
                parsed = plugin.parse(config)
                plugin.owner = Owner.from_wit(owner)
                return _encode(plugin.filter(parsed, Clusters(clusters)), clusters.count)

            return _guard(run)

    Filter.__qualname__ = Filter.__name__ = f"Filter[{cls.__name__}]"
    return Filter
