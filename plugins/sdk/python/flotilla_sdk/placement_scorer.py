"""The ``placement-scorer`` world: rank the clusters that passed every filter.

::

    class LeastLoaded(PlacementScorer[Config]):
        def reads(self, config: Config) -> Reads:
            return Reads(resources=["cpu"])

        def score(self, config: Config, clusters: Clusters) -> Scores:
            return [... one int in [-100, 100] per cluster ...]

    Scorer = export(LeastLoaded)

Scores are weighted by the plugin reference's weight and added to the built-in
prioritizers'. The world is deterministic: no clock, no randomness.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

from wit_world.exports import scorer as wit

from .cluster import Clusters
from .errors import PluginError
from .plugin import C, Plugin, _guard
from .types import Owner

__all__ = ["PlacementScorer", "Scored", "Scores", "export", "MIN_SCORE", "MAX_SCORE"]

MIN_SCORE = -100
MAX_SCORE = 100


@dataclass
class Scored:
    """A scorer's answer: one score per cluster, in input order, within [-100, 100]; and
    optionally when to score again even if nothing changed."""

    scores: Sequence[int]
    requeue_after_ms: int | None = None


#: What :meth:`PlacementScorer.score` returns: a :class:`Scored`, or just the scores.
Scores = Union[Scored, Sequence[int]]


class PlacementScorer(Plugin[C]):
    """Base class of a placement scorer: override :meth:`score` (and :meth:`reads`)."""

    @abstractmethod
    def score(self, config: C, clusters: Clusters) -> Scores:
        """One integer score per cluster, in order, within [-100, 100]."""


def _encode(out: Scores, clusters: Clusters) -> Any:
    result = out if isinstance(out, Scored) else Scored(out)
    scores = list(result.scores)
    if len(scores) != len(clusters):
        raise PluginError(f"score returned {len(scores)} score(s) for {len(clusters)} cluster(s)")
    for name, s in zip(clusters.names, scores):
        if isinstance(s, bool) or not isinstance(s, int) or not MIN_SCORE <= s <= MAX_SCORE:
            raise PluginError(f"score {s!r} of cluster {name} is not an integer within [-100, 100]")
    return wit.ScoreResult(scores, result.requeue_after_ms)


def export(cls: type[PlacementScorer[Any]]) -> type:
    """The class componentize-py calls for ``flotilla:placement-scorer/scorer``: assign it
    to ``Scorer`` in the app module (``Scorer = export(MyScorer)``)."""
    plugin = cls()

    class Scorer:
        def describe(self) -> Any:
            return plugin._describe()

        def validate_config(self, config: str) -> Any:
            return plugin._validate_config(config)

        def score(self, config: str, owner: Any, clusters: Any) -> Any:
            def run() -> Any:
                parsed = plugin.parse(config)
                plugin.owner = Owner.from_wit(owner)
                view = Clusters(clusters)
                return _encode(plugin.score(parsed, view), view)

            return _guard(run)

    Scorer.__qualname__ = Scorer.__name__ = f"Scorer[{cls.__name__}]"
    return Scorer
