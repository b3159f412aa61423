"""canary-waves: a canary, then percentage waves, each gated on the health of everything
before it (the spec is ``plugins/examples/README.md``).

Configuration::

    {"canary": 1, "waves": [25, 50, 100], "maxFailures": 0}
"""

from __future__ import annotations

from dataclasses import dataclass

from flotilla_sdk import ConfigError, config_field
from flotilla_sdk.rollout_strategy import Decision, RolloutCluster, RolloutStrategy, Status, export

SETTLED = (Status.SUCCEEDED, Status.FAILED, Status.TIME_OUT)


@dataclass(frozen=True)
class Config:
    canary: int = config_field(default=1, minimum=0, description="Clusters in the first stage.")
    waves: list[int] = config_field(
        default_factory=lambda: [100],
        description="Each wave extends the rollout to this percentage of all clusters.",
    )
    max_failures: int = config_field(default=0, minimum=0, description="Failures tolerated before the rollout stops.")

    def __post_init__(self) -> None:
        if self.canary < 0:
            raise ConfigError("canary must not be negative")
        if self.max_failures < 0:
            raise ConfigError("maxFailures must not be negative")
        if any(not 1 <= p <= 100 for p in self.waves):
            raise ConfigError("waves must be percentages from 1 to 100")


def stage_bounds(config: Config, total: int) -> list[int]:
    """Where each stage ends: stage ``k`` covers the first ``bounds[k]`` clusters."""
    bounds = [min(config.canary, total)]
    for p in config.waves:
        bounds.append(min(max((total * p + 99) // 100, bounds[-1]), total))
    if bounds[-1] < total:
        bounds.append(total)
    out: list[int] = []
    for b in bounds:  # drop consecutive duplicates, then zeros
        if not out or out[-1] != b:
            out.append(b)
    return [b for b in out if b > 0]


class CanaryWaves(RolloutStrategy[Config]):
    name = "canary-waves"
    version = "0.1.0"
    summary = "A canary, then percentage waves, each gated on the health of everything before it."

    def decide(self, config: Config, now: int, clusters: list[RolloutCluster]) -> Decision:
        live = sorted((c for c in clusters if c.status is not Status.SKIP), key=lambda c: (c.group_index, c.name))
        total = len(live)
        failed = [c.name for c in live if c.status in (Status.FAILED, Status.TIME_OUT)]
        if len(failed) > config.max_failures:
            return Decision(
                proceed=[c.name for c in live if c.status is Status.PROGRESSING],
                failed=failed,
                stop=True,
                message=f"stopped: {len(failed)} failure(s), more than maxFailures {config.max_failures}",
            )
        bounds = stage_bounds(config, total)
        for k, end in enumerate(bounds):
            waiting = [c for c in live[:end] if c.status not in SETTLED]
            if waiting:
                return Decision(
                    proceed=[c.name for c in waiting if c.status in (Status.TO_APPLY, Status.PROGRESSING)],
                    failed=failed,
                    message=f"stage {k + 1} of {len(bounds)}: waiting for {len(waiting)} of {end} cluster(s)",
                )
        return Decision(failed=failed, message=f"complete: {total} cluster(s)")


Strategy = export(CanaryWaves)
