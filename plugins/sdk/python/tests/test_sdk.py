"""Unit tests of the parts of flotilla_sdk that need no component: configuration parsing,
the JSON Schema and the cluster views. Run: ``python3 -m unittest discover -s tests``
(from ``plugins/sdk/python``) or ``pytest tests``."""

from __future__ import annotations

import enum
import sys
import unittest
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flotilla_sdk import (  # noqa: E402
    Cluster,
    Clusters,
    ConfigError,
    Resource,
    config_field,
    json_schema,
    parse_config,
)


class Mode(enum.Enum):
    FAST = "fast"
    SAFE = "safe"


@dataclass(frozen=True)
class Inner:
    weight: float = 1.0


@dataclass(frozen=True)
class Config:
    regions: list[str] = config_field(description="Allowed regions.", minItems=1)
    region_label: str = "region"
    min_allocatable_milli: dict[str, int] = config_field(default_factory=dict)
    namespace: str | None = None
    mode: Mode = Mode.FAST
    level: Literal["low", "high"] = "low"
    inner: Inner = config_field(default_factory=Inner)
    tag: str = config_field(default="", json="x-tag")

    def __post_init__(self) -> None:
        if not self.regions:
            raise ConfigError("regions must name at least one region")


def error(text: str) -> str:
    try:
        parse_config(Config, text)
    except ConfigError as e:
        return str(e)
    raise AssertionError(f"{text} parsed")


class ConfigTest(unittest.TestCase):
    def test_parses_camel_case_with_defaults(self) -> None:
        c = parse_config(Config, '{"regions": ["eu"], "minAllocatableMilli": {"cpu": 4000}, "mode": "safe", "x-tag": "t"}')
        self.assertEqual(c.regions, ["eu"])
        self.assertEqual(c.region_label, "region")
        self.assertEqual(c.min_allocatable_milli, {"cpu": 4000})
        self.assertIs(c.mode, Mode.SAFE)
        self.assertEqual(c.inner, Inner())
        self.assertEqual(c.tag, "t")

    def test_errors_name_the_field(self) -> None:
        self.assertEqual(
            error('{"regions": ["eu"], "regionLabels": "x"}'),
            "invalid configuration: unknown field `regionLabels`, expected one of `regions`, `regionLabel`, "
            "`minAllocatableMilli`, `namespace`, `mode`, `level`, `inner`, `x-tag`",
        )
        self.assertEqual(error("{}"), "invalid configuration: missing field `regions`")
        self.assertEqual(error('{"regions": ["eu", 3]}'), "invalid configuration: regions[1]: expected a string, got a number 3")
        self.assertIn("minAllocatableMilli.cpu: expected an integer", error('{"regions": ["eu"], "minAllocatableMilli": {"cpu": "4"}}'))
        self.assertIn('mode: expected one of "fast", "safe"', error('{"regions": ["eu"], "mode": "slow"}'))
        self.assertIn('level: expected one of "low", "high"', error('{"regions": ["eu"], "level": 1}'))
        self.assertIn("unknown field `w` in inner, expected `weight`", error('{"regions": ["eu"], "inner": {"w": 1}}'))
        self.assertIn("not JSON", error("{"))
        self.assertIn("expected an object, got an array", error("[]"))
        self.assertIn("expected a boolean", parse_error(Flags, '{"on": 1}'))

    def test_post_init_message_is_kept(self) -> None:
        self.assertEqual(error('{"regions": []}'), "regions must name at least one region")

    def test_empty_and_null_are_an_empty_object(self) -> None:
        self.assertEqual(parse_config(Flags, ""), Flags())
        self.assertEqual(parse_config(Flags, "null"), Flags())

    def test_schema(self) -> None:
        schema = json_schema(Config)
        self.assertEqual(schema["required"], ["regions"])
        self.assertFalse(schema["additionalProperties"])
        self.assertEqual(schema["properties"]["regions"], {"type": "array", "items": {"type": "string"}, "description": "Allowed regions.", "minItems": 1})
        self.assertEqual(schema["properties"]["minAllocatableMilli"]["additionalProperties"], {"type": "integer"})
        self.assertEqual(schema["properties"]["mode"], {"enum": ["fast", "safe"], "default": "fast"})
        self.assertIn("x-tag", schema["properties"])


@dataclass(frozen=True)
class Flags:
    on: bool = False


def parse_error(cls: type, text: str) -> str:
    try:
        parse_config(cls, text)
    except ConfigError as e:
        return str(e)
    raise AssertionError(f"{text} parsed")


class ClustersTest(unittest.TestCase):
    def setUp(self) -> None:
        self.clusters = Clusters.of(
            [
                Cluster("eu-1", {"region": "eu"}, {"id": "a"}, {"cpu": Resource("cpu", 8000, 7500)}, {"status.version": "v1"}),
                Cluster("us-1", {"region": "us"}),
                Cluster("bare"),
            ]
        )

    def test_views(self) -> None:
        c = self.clusters
        self.assertEqual(len(c), 3)
        self.assertEqual(c.names, ["eu-1", "us-1", "bare"])
        self.assertEqual([x.name for x in c], c.names)
        self.assertEqual([x.label("region") for x in c], ["eu", "us", None])
        self.assertEqual(c[2].label("region", "none"), "none")
        self.assertEqual(c[0].labels, {"region": "eu"})
        self.assertEqual(c[0].claims, {"id": "a"})
        self.assertEqual(c[0].claim("id"), "a")
        self.assertEqual(c[0].resources, {"cpu": Resource("cpu", 8000, 7500)})
        self.assertEqual([x.allocatable("cpu") for x in c], [7500, None, None])
        self.assertEqual(c[0].capacity("cpu"), 8000)
        self.assertEqual(c[0].field("status.version"), "v1")
        self.assertTrue(c[1].has_label("region", "us"))
        self.assertFalse(c[2].has_label("region"))

    def test_columns(self) -> None:
        c = self.clusters
        self.assertEqual(c.labels("region"), ["eu", "us", None])
        self.assertEqual(c.labels("zone"), [None, None, None])
        self.assertEqual(c.claims("id"), ["a", None, None])
        self.assertEqual(c.allocatable("cpu"), [7500, None, None])
        self.assertEqual(c.capacity("memory"), [None, None, None])
        calls: list[str | None] = []

        def keep(v: str | None) -> bool:
            calls.append(v)
            return v == "eu"

        self.assertEqual(c.label_column("region").map(keep), [True, False, False])
        self.assertEqual(len(calls), 3)  # None, "eu", "us": once each

    def test_empty_batch(self) -> None:
        empty = Clusters.of([])
        self.assertEqual(len(empty), 0)
        self.assertEqual(empty.names, [])
        self.assertEqual(empty.labels("region"), [])


if __name__ == "__main__":
    unittest.main()
