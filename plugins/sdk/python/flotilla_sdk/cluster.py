"""Typed views of managed clusters.

Placement filters, scorers and manifest transforms receive the whole fleet as
:class:`Clusters`, a sequence over the host's columnar ``cluster-batch`` (one
dictionary-encoded column per label and claim, one integer column per resource). Policy
checks and rollout strategies receive :class:`Cluster` rows. Both give the same per-cluster
API: ``name``, ``labels``, ``claims``, ``resources``, ``fields`` and the ``label()``,
``claim()``, ``allocatable()`` and ``capacity()`` lookups.

Only what the plugin's ``reads()`` declared is present: a label not declared looks absent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, overload

__all__ = ["Cluster", "Clusters", "Column", "Resource"]

R = TypeVar("R")


@dataclass(frozen=True)
class Resource:
    """One resource of a cluster, in milli-units as Kubernetes' ``MilliValue``
    (``cpu: "4"`` is 4000, ``memory: "1Ki"`` is 1024000); ``None`` when not reported."""

    name: str
    capacity_milli: int | None
    allocatable_milli: int | None


class Cluster:
    """One managed cluster: its name and what the plugin declared it reads."""

    __slots__ = ("_name", "_labels", "_claims", "_resources", "_fields", "_fields_text")

    def __init__(
        self,
        name: str,
        labels: Mapping[str, str] | None = None,
        claims: Mapping[str, str] | None = None,
        resources: Mapping[str, Resource] | None = None,
        fields: Mapping[str, Any] | str | None = None,
    ) -> None:
        self._name = name
        self._labels: Mapping[str, str] = labels if labels is not None else {}
        self._claims: Mapping[str, str] = claims if claims is not None else {}
        self._resources: Mapping[str, Resource] = resources if resources is not None else {}
        self._fields: Mapping[str, Any] | None = None if isinstance(fields, str) else (fields or {})
        self._fields_text = fields if isinstance(fields, str) else None

    @property
    def name(self) -> str:
        """The ManagedCluster's name."""
        return self._name

    @property
    def labels(self) -> Mapping[str, str]:
        """The declared labels the cluster has."""
        return self._labels

    @property
    def claims(self) -> Mapping[str, str]:
        """The declared cluster claims (``status.clusterClaims``) the cluster has."""
        return self._claims

    @property
    def resources(self) -> Mapping[str, Resource]:
        """The declared resources the cluster reports, by name."""
        return self._resources

    @classmethod
    def from_wit(cls, record: Any) -> Cluster:
        """A view of the WIT ``cluster`` record."""
        resources = record.resources
        return cls(
            record.name,
            dict(record.labels),
            dict(record.claims),
            {r.name: Resource(r.name, r.capacity_milli, r.allocatable_milli) for r in resources} if resources else {},
            record.fields,
        )

    @property
    def fields(self) -> Mapping[str, Any]:
        """The declared ManagedCluster fields, by dotted path
        (``{"status.version.kubernetes": "v1.31.2"}``); a path the cluster lacks is absent."""
        if self._fields is None:
            self._fields = json.loads(self._fields_text) if self._fields_text else {}
        return self._fields

    def label(self, key: str, default: str | None = None) -> str | None:
        """The value of label ``key``, or ``default`` when the cluster lacks it."""
        return self.labels.get(key, default)

    def claim(self, name: str, default: str | None = None) -> str | None:
        """The value of cluster claim ``name``, or ``default`` when the cluster lacks it."""
        return self.claims.get(name, default)

    def has_label(self, key: str, value: str | None = None) -> bool:
        """Whether the cluster has label ``key`` (with ``value``, when given)."""
        v = self.label(key)
        return v is not None and (value is None or v == value)

    def allocatable(self, resource: str) -> int | None:
        """The allocatable amount of ``resource`` in milli-units, or ``None``."""
        r = self.resources.get(resource)
        return r.allocatable_milli if r else None

    def capacity(self, resource: str) -> int | None:
        """The capacity of ``resource`` in milli-units, or ``None``."""
        r = self.resources.get(resource)
        return r.capacity_milli if r else None

    def field(self, path: str, default: Any = None) -> Any:
        """The value of a declared field (``status.version.kubernetes``), or ``default``."""
        return self.fields.get(path, default)

    def __repr__(self) -> str:
        return f"Cluster({self.name!r}, labels={dict(self.labels)!r}, claims={dict(self.claims)!r})"


class _StringColumn(Protocol):
    key: str
    values: list[str]
    index: list[int]


class Column:
    """A label or claim across the batch, dictionary-encoded: ``values`` holds the distinct
    values, ``index[i]`` is 0 when cluster ``i`` lacks the key, else 1 + the index of its value.

    ``column[i]`` is cluster ``i``'s value or ``None``; :meth:`map` computes a function once
    per distinct value (the fast way over a large fleet)."""

    __slots__ = ("key", "values", "index")

    def __init__(self, key: str, values: list[str], index: list[int]) -> None:
        self.key = key
        self.values = values
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> str | None:
        n = self.index[i]
        return self.values[n - 1] if n else None

    def __iter__(self) -> Iterator[str | None]:
        lookup: list[str | None] = [None, *self.values]
        return (lookup[n] for n in self.index)

    def map(self, fn: Callable[[str | None], R]) -> list[R]:
        """``[fn(value of cluster i) for each cluster]``, calling ``fn`` once per distinct
        value (and once for ``None``, a cluster without the key)."""
        table = [fn(None), *(fn(v) for v in self.values)]
        return [table[n] for n in self.index]


class Clusters(Sequence[Cluster]):
    """The clusters of one call, in input order, over the host's ``cluster-batch``.

    Iterate for :class:`Cluster` views, or read whole columns: ``label_column(key)``,
    ``claim_column(name)``, ``allocatable(resource)``, ``capacity(resource)``. Results go
    back in the same order: one entry per cluster.
    """

    def __init__(self, batch: Any) -> None:
        self._batch = batch
        self._count: int = batch.count
        #: The cluster names, in order.
        self.names: list[str] = batch.names.split("\n")[: batch.count] if batch.count else []
        self._labels = {c.key: c for c in batch.labels}
        self._claims = {c.key: c for c in batch.claims}
        self._resources = {c.name: c for c in batch.resources}
        self._fields: list[str] = list(batch.fields)
        self._views: list[Cluster] | None = None
        self._label_cache: dict[str, list[str | None]] = {}
        self._claim_cache: dict[str, list[str | None]] = {}

    @classmethod
    def of(cls, clusters: Sequence[Cluster]) -> Clusters:
        """A batch of clusters made in Python, for unit tests of plugin logic."""
        from types import SimpleNamespace as NS

        def columns(attr: str) -> list[Any]:
            keys = sorted({k for c in clusters for k in getattr(c, attr)})
            out = []
            for key in keys:
                values = sorted({getattr(c, attr)[key] for c in clusters if key in getattr(c, attr)})
                pos = {v: i + 1 for i, v in enumerate(values)}
                out.append(NS(key=key, values=values, index=[pos.get(getattr(c, attr).get(key), 0) for c in clusters]))
            return out

        names = sorted({r for c in clusters for r in c.resources})
        resources = [
            NS(
                name=r,
                capacity_milli=[_or_minus_one(c.capacity(r)) for c in clusters],
                allocatable_milli=[_or_minus_one(c.allocatable(r)) for c in clusters],
            )
            for r in names
        ]
        fields = [json.dumps(dict(c.fields)) for c in clusters] if any(c.fields for c in clusters) else []
        return cls(
            NS(
                count=len(clusters),
                names="\n".join(c.name for c in clusters),
                labels=columns("labels"),
                claims=columns("claims"),
                resources=resources,
                fields=fields,
            )
        )

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, i: int) -> Cluster: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Cluster]: ...
    def __getitem__(self, i: int | slice) -> Cluster | Sequence[Cluster]:
        return self._all()[i]

    def __iter__(self) -> Iterator[Cluster]:
        return iter(self._all())

    def _all(self) -> list[Cluster]:
        if self._views is None:
            self._views = [_BatchCluster(self, i) for i in range(self._count)]
        return self._views

    def _label_values(self, key: str) -> list[str | None]:
        values = self._label_cache.get(key)
        if values is None:
            col = self._labels.get(key)
            values = _decode(col)[1] if col is not None else [None] * self._count
            self._label_cache[key] = values
        return values

    def _claim_values(self, name: str) -> list[str | None]:
        values = self._claim_cache.get(name)
        if values is None:
            col = self._claims.get(name)
            values = _decode(col)[1] if col is not None else [None] * self._count
            self._claim_cache[name] = values
        return values

    def label_column(self, key: str) -> Column:
        """Label ``key`` across the batch (every entry ``None`` when no cluster has it)."""
        return self._column(self._labels.get(key), key)

    def claim_column(self, name: str) -> Column:
        """Cluster claim ``name`` across the batch."""
        return self._column(self._claims.get(name), name)

    def _column(self, col: _StringColumn | None, key: str) -> Column:
        if col is None:
            return Column(key, [], [0] * self._count)
        return Column(col.key, list(col.values), list(col.index))

    def labels(self, key: str) -> list[str | None]:
        """Each cluster's value of label ``key``, or ``None``."""
        return list(self.label_column(key))

    def claims(self, name: str) -> list[str | None]:
        """Each cluster's value of claim ``name``, or ``None``."""
        return list(self.claim_column(name))

    def allocatable(self, resource: str) -> list[int | None]:
        """Each cluster's allocatable ``resource`` in milli-units, or ``None``."""
        col = self._resources.get(resource)
        if col is None:
            return [None] * self._count
        return [v if v >= 0 else None for v in col.allocatable_milli]

    def capacity(self, resource: str) -> list[int | None]:
        """Each cluster's ``resource`` capacity in milli-units, or ``None``."""
        col = self._resources.get(resource)
        if col is None:
            return [None] * self._count
        return [v if v >= 0 else None for v in col.capacity_milli]

    def __repr__(self) -> str:
        return f"Clusters({self.names!r})"




class _BatchCluster(Cluster):
    """Cluster ``i`` of a batch: lookups read the columns, nothing is copied up front."""

    __slots__ = ("_batch", "_i")

    def __init__(self, batch: Clusters, i: int) -> None:  # noqa: super().__init__ not wanted
        self._batch = batch
        self._i = i

    @property
    def name(self) -> str:
        return self._batch.names[self._i]

    @property
    def labels(self) -> Mapping[str, str]:
        b, i = self._batch, self._i
        return {k: v for k in b._labels if (v := b._label_values(k)[i]) is not None}

    @property
    def claims(self) -> Mapping[str, str]:
        b, i = self._batch, self._i
        return {k: v for k in b._claims if (v := b._claim_values(k)[i]) is not None}

    @property
    def resources(self) -> Mapping[str, Resource]:
        i = self._i
        return {
            r.name: Resource(r.name, _none_if_negative(r.capacity_milli[i]), _none_if_negative(r.allocatable_milli[i]))
            for r in self._batch._resources.values()
            if r.capacity_milli[i] >= 0 or r.allocatable_milli[i] >= 0
        }

    @property
    def fields(self) -> Mapping[str, Any]:
        f = self._batch._fields
        return json.loads(f[self._i]) if f else {}

    def label(self, key: str, default: str | None = None) -> str | None:
        v = self._batch._label_values(key)[self._i]
        return default if v is None else v

    def claim(self, name: str, default: str | None = None) -> str | None:
        v = self._batch._claim_values(name)[self._i]
        return default if v is None else v

    def allocatable(self, resource: str) -> int | None:
        col = self._batch._resources.get(resource)
        return _none_if_negative(col.allocatable_milli[self._i]) if col is not None else None

    def capacity(self, resource: str) -> int | None:
        col = self._batch._resources.get(resource)
        return _none_if_negative(col.capacity_milli[self._i]) if col is not None else None


def _decode(col: _StringColumn) -> tuple[str, list[str | None]]:
    lookup: list[str | None] = [None, *col.values]
    return col.key, [lookup[n] for n in col.index]


def _none_if_negative(v: int) -> int | None:
    return v if v >= 0 else None


def _or_minus_one(v: int | None) -> int:
    return -1 if v is None else v
