"""{{name}}: a placement scorer that ranks clusters by the allocatable amount of one
resource, from -100 for a cluster without it to 100 for the one with the most.

Configuration::

    {"resource": "cpu"}

The host calls ``score`` once per scheduling cycle with every cluster that passed the
filters; resources are in milli-units (``cpu: "4"`` is 4000).
"""

from __future__ import annotations

from dataclasses import dataclass

from flotilla_sdk import Clusters, ConfigError, Reads, config_field
from flotilla_sdk.placement_scorer import PlacementScorer, Scores, export


@dataclass(frozen=True)
class Config:
    resource: str = config_field(
        default="cpu",
        description="The resource to rank by, as in ManagedCluster.status.allocatable.",
        minLength=1,
    )

    def __post_init__(self) -> None:
        if not self.resource:
            raise ConfigError("resource must not be empty")


class AllocatableScorer(PlacementScorer[Config]):
    name = "{{name}}"
    version = "0.1.0"
    summary = "Ranks clusters by the allocatable amount of one resource."

    def reads(self, config: Config) -> Reads:
        return Reads(resources=[config.resource])

    def score(self, config: Config, clusters: Clusters) -> Scores:
        """Each cluster's allocatable amount against the largest: 100 for the largest, -100
        for none. One score per cluster, in input order, within [-100, 100]."""
        allocatable = clusters.allocatable(config.resource)
        largest = max((a for a in allocatable if a is not None), default=0)
        return [
            -100 if milli is None or largest <= 0 else milli * 200 // largest - 100
            for milli in allocatable
        ]


Scorer = export(AllocatableScorer)
