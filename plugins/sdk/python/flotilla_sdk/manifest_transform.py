"""The ``manifest-transform`` world: change a work's manifests for each cluster before the
hub creates that cluster's ManifestWork.

::

    class AddClusterLabel(ManifestTransform[Config]):
        def for_cluster(self, config: Config, manifests: list[dict], cluster: Cluster) -> list[dict]:
            if len(cluster.name) > 63:
                raise Rejected("...")          # this cluster gets no work, with this reason
            for m in manifests:
                m.setdefault("metadata", {}).setdefault("labels", {})[config.label_key] = cluster.name
            return manifests

    Transform = export(AddClusterLabel)

``for_cluster`` receives its own deep copy of the manifests, so it may change them in place.
Override :meth:`ManifestTransform.transform` instead to work on the whole batch at once.
"""

from __future__ import annotations

from abc import abstractmethod
import json
from collections.abc import Sequence
from typing import Any, Union

from componentize_py_types import Err, Ok

from .cluster import Cluster, Clusters
from .errors import PluginError, Rejected
from .plugin import C, Plugin, _guard
from .types import Owner

__all__ = ["ManifestTransform", "Rejected", "Manifest", "export"]

#: One Kubernetes object, as parsed JSON.
Manifest = dict[str, Any]


class ManifestTransform(Plugin[C]):
    """Base class of a manifest transform: override :meth:`for_cluster`, and
    :meth:`transform` as well to handle the whole batch at once."""

    @abstractmethod
    def for_cluster(self, config: C, manifests: list[Manifest], cluster: Cluster) -> list[Manifest]:
        """The manifests for one cluster (``manifests`` is this cluster's own copy). Raise
        :class:`Rejected` when this cluster cannot have the work."""

    def transform(
        self, config: C, manifests: list[Manifest], clusters: Clusters
    ) -> Sequence[Union[list[Manifest], Rejected]]:
        """Per cluster, in order: its manifests, or a :class:`Rejected` with the reason it
        gets no work. By default, :meth:`for_cluster` for each cluster on a deep copy."""
        # A copy per cluster, parsed from JSON text: several times faster than copy.deepcopy.
        texts = [json.dumps(m) for m in manifests]
        out: list[Union[list[Manifest], Rejected]] = []
        for cluster in clusters:
            try:
                out.append(self.for_cluster(config, [json.loads(t) for t in texts], cluster))
            except Rejected as e:
                out.append(e)
        return out


def _encode(out: Sequence[Union[list[Manifest], Rejected]], count: int) -> Any:
    results = list(out)
    if len(results) != count:
        raise PluginError(f"transform returned {len(results)} result(s) for {count} cluster(s)")
    encoded: list[Any] = []
    for r in results:
        if isinstance(r, Rejected):
            encoded.append(Err(r.reason))
        else:
            encoded.append(Ok([json.dumps(m, separators=(",", ":")) for m in r]))
    return encoded


def export(cls: type[ManifestTransform[Any]]) -> type:
    """The class componentize-py calls for ``flotilla:manifest-transform/transform``: assign
    it to ``Transform`` in the app module (``Transform = export(MyTransform)``)."""
    plugin = cls()

    class Transform:
        def describe(self) -> Any:
            return plugin._describe()

        def validate_config(self, config: str) -> Any:
            return plugin._validate_config(config)

        def transform(self, config: str, owner: Any, manifests: list[str], clusters: Any) -> Any:
            def run() -> Any:
                parsed = plugin.parse(config)
                plugin.owner = Owner.from_wit(owner)
                objects = []
                for i, text in enumerate(manifests):
                    try:
                        objects.append(json.loads(text))
                    except json.JSONDecodeError as e:
                        raise PluginError(f"manifest {i} is not JSON: {e}") from None
                return _encode(plugin.transform(parsed, objects, Clusters(clusters)), clusters.count)

            return _guard(run)

    Transform.__qualname__ = Transform.__name__ = f"Transform[{cls.__name__}]"
    return Transform
