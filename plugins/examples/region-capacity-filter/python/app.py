"""region-capacity-filter: keeps clusters in allowed regions with enough allocatable
resources (the spec is ``plugins/examples/README.md``).

Configuration::

    {"regions": ["eu-west-1"], "regionLabel": "region", "minAllocatableMilli": {"cpu": 4000}}
"""

from __future__ import annotations

from dataclasses import dataclass

from flotilla_sdk import Cluster, Clusters, ConfigError, Reads, config_field
from flotilla_sdk.placement_filter import PlacementFilter, Verdicts, export


@dataclass(frozen=True)
class Config:
    regions: list[str] = config_field(description="Allowed values of the region label.", minItems=1)
    region_label: str = config_field(default="region", description="The label that holds a cluster's region.")
    min_allocatable_milli: dict[str, int] = config_field(
        default_factory=dict,
        description="Minimum allocatable amount per resource, in milli-units.",
    )

    def __post_init__(self) -> None:
        if not self.regions:
            raise ConfigError("regions must name at least one region")
        if not self.region_label:
            raise ConfigError("regionLabel must not be empty")
        for resource, minimum in sorted(self.min_allocatable_milli.items()):
            if minimum < 0:
                raise ConfigError(f"minAllocatableMilli.{resource} must not be negative")

    @property
    def resources(self) -> list[str]:
        """The resources to check, in name order."""
        return sorted(self.min_allocatable_milli)


class RegionCapacityFilter(PlacementFilter[Config]):
    name = "region-capacity-filter"
    version = "0.1.0"
    summary = "Keeps clusters in allowed regions with enough allocatable resources."

    def reads(self, config: Config) -> Reads:
        return Reads(labels=[config.region_label], resources=config.resources)

    def filter(self, config: Config, clusters: Clusters) -> Verdicts:
        return [self.reason(config, cluster) for cluster in clusters]

    @staticmethod
    def reason(config: Config, cluster: Cluster) -> str | None:
        """Why ``cluster`` is removed (the first failing check), or ``None`` to keep it."""
        region = cluster.label(config.region_label)
        if region is None:
            return f"label {config.region_label} missing"
        if region not in config.regions:
            return f"region {region} not allowed"
        for resource in config.resources:
            got = cluster.allocatable(resource)
            minimum = config.min_allocatable_milli[resource]
            if got is None:
                return f"{resource} not reported"
            if got < minimum:
                return f"{resource} allocatable {got}m below {minimum}m"
        return None


Filter = export(RegionCapacityFilter)
