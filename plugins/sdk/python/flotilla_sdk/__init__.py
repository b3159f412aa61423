"""Flotilla's Python plugin SDK, for componentize-py.

Write a plugin as a subclass of one world's base class, with a dataclass configuration, and
export it under the name componentize-py looks for:

==================== ========================================= =================================
World                Module                                    App module defines
==================== ========================================= =================================
placement-filter     :mod:`flotilla_sdk.placement_filter`      ``Filter = export(MyFilter)``
placement-scorer     :mod:`flotilla_sdk.placement_scorer`      ``Scorer = export(MyScorer)``
policy-check         :mod:`flotilla_sdk.policy_check`          ``Check = export(MyCheck)``
rollout-strategy     :mod:`flotilla_sdk.rollout_strategy`      ``Strategy = export(MyStrategy)``
manifest-transform   :mod:`flotilla_sdk.manifest_transform`    ``Transform = export(MyTransform)``
==================== ========================================= =================================

This package itself imports no bindings, so configuration parsing and the cluster views can
be unit-tested in plain CPython; the world modules import the componentize-py bindings
(``wit_world``), which exist only while building the component.
"""

from .cluster import Cluster, Clusters, Column, Resource
from .config import config_field, json_schema, parse_config
from .errors import ConfigError, PluginError, Rejected, SpokeError
from .types import Kind, Owner, Reads

__all__ = [
    "Cluster",
    "Clusters",
    "Column",
    "ConfigError",
    "Kind",
    "Owner",
    "PluginError",
    "Reads",
    "Rejected",
    "Resource",
    "SpokeError",
    "config_field",
    "json_schema",
    "parse_config",
]

__version__ = "0.1.0"
