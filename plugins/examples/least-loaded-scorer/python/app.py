"""least-loaded-scorer: prefers the clusters with the largest free share of one resource
(the spec is ``plugins/examples/README.md``).

Configuration::

    {"resource": "cpu"}
"""

from __future__ import annotations

from dataclasses import dataclass

from flotilla_sdk import Clusters, ConfigError, Reads, config_field
from flotilla_sdk.placement_scorer import MAX_SCORE, MIN_SCORE, PlacementScorer, Scores, export


@dataclass(frozen=True)
class Config:
    resource: str = config_field(default="cpu", description="The resource to score.", minLength=1)

    def __post_init__(self) -> None:
        if not self.resource:
            raise ConfigError("resource must not be empty")


def free_share(allocatable: int | None, capacity: int | None) -> int:
    """100 for an idle cluster, 0 for a half-loaded one, -100 for a full one or one that
    does not report the resource."""
    if allocatable is None or capacity is None or capacity <= 0:
        return MIN_SCORE
    return min(MAX_SCORE, 200 * allocatable // capacity - 100)


class LeastLoadedScorer(PlacementScorer[Config]):
    name = "least-loaded-scorer"
    version = "0.1.0"
    summary = "Prefers the clusters with the largest free share of one resource."

    def reads(self, config: Config) -> Reads:
        return Reads(resources=[config.resource])

    def score(self, config: Config, clusters: Clusters) -> Scores:
        return [
            free_share(a, c)
            for a, c in zip(clusters.allocatable(config.resource), clusters.capacity(config.resource))
        ]


Scorer = export(LeastLoadedScorer)
