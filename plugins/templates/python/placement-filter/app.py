"""{{name}}: a placement filter that keeps the clusters whose label ``key`` has one of
``values``.

Configuration::

    {"key": "region", "values": ["eu-west-1", "eu-central-1"]}

The host calls ``filter`` once per scheduling cycle with every candidate cluster; the
cluster views carry exactly the labels ``reads()`` declares.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flotilla_sdk import Clusters, ConfigError, Reads, config_field
from flotilla_sdk.placement_filter import PlacementFilter, Verdicts, export

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """The configuration, from the JSON that the Placement gives the plugin."""

    key: str = config_field(description="The label to look at.", minLength=1)
    values: list[str] = config_field(description="The values that keep a cluster.", minItems=1)

    def __post_init__(self) -> None:
        if not self.key:
            raise ConfigError("key must not be empty")
        if not self.values:
            raise ConfigError("values must name at least one value")


class LabelFilter(PlacementFilter[Config]):
    name = "{{name}}"
    version = "0.1.0"
    summary = "Keeps the clusters whose label has one of the configured values."

    def reads(self, config: Config) -> Reads:
        return Reads(labels=[config.key])

    def filter(self, config: Config, clusters: Clusters) -> Verdicts:
        reason = f"label {config.key} not in [{', '.join(config.values)}]"
        # Decided once per distinct value of the label; None keeps a cluster.
        verdicts = clusters.label_column(config.key).map(
            lambda value: None if value in config.values else reason
        )
        removed = sum(v is not None for v in verdicts)
        # Log lines land in the hub's log, tagged with the plugin's name.
        log.debug("removing %d of %d cluster(s)", removed, len(clusters))
        return verdicts


# The class componentize-py calls for the world's `filter` interface.
Filter = export(LabelFilter)
