"""The exceptions a plugin raises; the SDK turns each into the error the host expects."""

from __future__ import annotations

__all__ = ["PluginError", "ConfigError", "Rejected", "SpokeError"]


class PluginError(Exception):
    """Fails the whole call with this message (the WIT function's `err`).

    For example a rollout strategy that cannot decide, or a policy check whose spoke read
    failed. The host applies the plugin reference's failure policy.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(PluginError):
    """The configuration is invalid. Raised by :func:`flotilla_sdk.config.parse_config`, and
    by a configuration dataclass's ``__post_init__`` for rules its types cannot say.

    From ``validate-config`` the host makes the object that refers to the plugin
    ``Misconfigured`` with this message.
    """


class Rejected(Exception):
    """One cluster cannot have the work: raised from
    :meth:`flotilla_sdk.manifest_transform.ManifestTransform.for_cluster`. The host creates
    no work on that cluster and records the reason; the other clusters are unaffected."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class SpokeError(PluginError):
    """A read of spoke objects failed (for example a kind the plugin did not declare in
    ``reads.kinds``). Uncaught, it fails the check with the host's message."""
