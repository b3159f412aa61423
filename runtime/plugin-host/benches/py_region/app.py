"""A region filter in Python, built with componentize-py by the plugin host's benchmark as a
large component (CPython inside: about 18 MB) to compare a first load with a cached one.

Built with --stub-wasi: CPython imports wasi:sockets and wasi:filesystem, which no Flotilla
world grants; the stubs drop those imports (and trap if ever called).
"""
import json
from wit_world import exports
from wit_world.imports import types
from wit_world.exports import filter as f
from componentize_py_types import Err


class Filter(exports.Filter):
    def describe(self) -> types.Description:
        return types.Description(name="py-region", version="0.1.0", summary="region filter in Python",
                                 reads=types.Reads([], [], [], [], []), config_schema=None)

    def validate_config(self, config: str) -> types.Reads:
        try:
            c = json.loads(config)
        except Exception as e:
            raise Err(f"invalid configuration: {e}")
        return types.Reads(labels=["region"], claims=[], resources=[], fields=[], kinds=[])

    def filter(self, config: str, owner: types.OwnerRef, clusters: types.ClusterBatch) -> f.FilterResult:
        allowed = set(json.loads(config).get("regions", []))
        col = next((c for c in clusters.labels if c.key == "region"), None)
        ok = [False] + ([v in allowed for v in col.values] if col else [])
        verdicts = [0 if ok[i] else 1 for i in (col.index if col else [0] * clusters.count)]
        return f.FilterResult(reasons=["region not allowed"], verdicts=verdicts, requeue_after_ms=None)
