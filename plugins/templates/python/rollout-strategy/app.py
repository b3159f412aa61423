"""{{name}}: a rollout strategy that rolls out to at most ``maxConcurrent`` clusters at a
time, in decision group order, and stops at the first failure.

Configuration::

    {"maxConcurrent": 2}

The host calls ``decide`` once per rollout cycle with every cluster of the rollout and its
status. The world is deterministic: ``now`` is an argument; there is no clock and no
randomness, so the same input always gives the same decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from flotilla_sdk import ConfigError, config_field
from flotilla_sdk.rollout_strategy import Decision, RolloutCluster, RolloutStrategy, Status, export


@dataclass(frozen=True)
class Config:
    max_concurrent: int = config_field(
        default=1,
        minimum=1,
        description="How many clusters may be in flight (applied, not yet succeeded) at once.",
    )

    def __post_init__(self) -> None:
        if self.max_concurrent < 1:
            raise ConfigError("maxConcurrent must be at least 1")


class Throttled(RolloutStrategy[Config]):
    name = "{{name}}"
    version = "0.1.0"
    summary = "Rolls out to a few clusters at a time, in decision group order; stops at the first failure."

    def decide(self, config: Config, now: int, clusters: list[RolloutCluster]) -> Decision:
        def named(*statuses: Status) -> list[str]:
            return [c.name for s in statuses for c in clusters if c.status is s]

        failed = named(Status.FAILED, Status.TIME_OUT)
        # Clusters in flight keep getting the revision.
        proceed = named(Status.PROGRESSING)
        stop = bool(failed)
        if not stop:
            # New clusters, by decision group, until maxConcurrent are in flight.
            waiting = sorted(
                (c for c in clusters if c.status is Status.TO_APPLY), key=lambda c: c.group_index
            )
            room = max(config.max_concurrent - len(proceed), 0)
            proceed += [c.name for c in waiting[:room]]
        if stop:
            message = f"stopped: {len(failed)} cluster(s) failed"
        else:
            succeeded = len(named(Status.SUCCEEDED))
            total = sum(c.status is not Status.SKIP for c in clusters)
            message = f"{succeeded} of {total} cluster(s) succeeded, {len(proceed)} in flight"
        return Decision(proceed=proceed, failed=failed, stop=stop, message=message)


Strategy = export(Throttled)
