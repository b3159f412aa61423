"""Configuration as typed dataclasses: parsing with errors that name the field, and the JSON
Schema that ``describe()`` returns.

A plugin declares its configuration as a dataclass::

    @dataclass
    class Config:
        key: str = config_field(description="The label to look at.", minLength=1)
        values: list[str] = config_field(description="Values that keep a cluster.", minItems=1)
        max_concurrent: int = config_field(default=1, minimum=1)   # JSON: "maxConcurrent"

        def __post_init__(self) -> None:
            if not self.values:
                raise ConfigError("values must name at least one value")

JSON keys are the camelCase of the field names (``max_concurrent`` is ``maxConcurrent``)
unless ``config_field(json="...")`` says otherwise. Unknown keys are refused, like serde's
``deny_unknown_fields``. Supported field types: ``str``, ``int``, ``float``, ``bool``,
``Any``, ``list[T]``, ``tuple[T, ...]``, ``dict[str, T]``, ``T | None``, ``Literal[...]``,
``enum.Enum`` subclasses (by value) and nested dataclasses.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from typing import Any, TypeVar

from .errors import ConfigError

__all__ = ["config_field", "parse_config", "json_schema", "json_name", "ConfigError"]

T = TypeVar("T")

_MISSING: Any = dataclasses.MISSING


def config_field(
    *,
    default: Any = _MISSING,
    default_factory: Any = _MISSING,
    json: str | None = None,
    description: str | None = None,
    **schema: Any,
) -> Any:
    """A dataclass field with its JSON name, description and extra JSON Schema keywords
    (``minLength=1``, ``minimum=0``, ``pattern=...``). The extra keywords only document:
    enforce rules in ``__post_init__``."""
    metadata: dict[str, Any] = {"schema": schema}
    if json is not None:
        metadata["json"] = json
    if description is not None:
        metadata["description"] = description
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def json_name(f: dataclasses.Field[Any]) -> str:
    """The JSON key of a dataclass field: ``config_field(json=...)``, else its camelCase."""
    explicit = f.metadata.get("json")
    if explicit:
        return str(explicit)
    head, *rest = f.name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def parse_config(cls: type[T], text: str) -> T:
    """Parses a configuration (the JSON text the host passes) into ``cls``.

    ``cls`` is a dataclass, or ``dict``/``Any`` for the raw JSON. An empty text or ``null``
    is an empty object. Raises :class:`ConfigError` with ``invalid configuration: ...`` and
    the path of the field at fault, for example
    ``invalid configuration: values[1]: expected a string, got 3``.
    """
    try:
        data = json.loads(text) if text.strip() else None
    except json.JSONDecodeError as e:
        raise ConfigError(f"invalid configuration: not JSON: {e}") from None
    if data is None:
        data = {}
    try:
        return typing.cast(T, _convert(cls, data, ""))
    except _FieldError as e:
        raise ConfigError(f"invalid configuration: {e}") from None


class _FieldError(Exception):
    pass


def _describe(value: Any) -> str:
    text = json.dumps(value)
    if len(text) > 40:
        text = text[:37] + "..."
    kind = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else "null"
    )
    return f"{kind} {text}" if kind not in ("an object", "an array", "null") else kind


def _at(path: str, message: str) -> _FieldError:
    return _FieldError(f"{path}: {message}" if path else message)


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return value
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _convert(options[0], value, path)
        errors = []
        for option in options:
            try:
                return _convert(option, value, path)
            except _FieldError as e:
                errors.append(str(e))
        raise _at(path, f"matches none of the allowed types ({'; '.join(errors)})")
    if origin is typing.Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return value
        allowed = ", ".join(json.dumps(a) for a in args)
        raise _at(path, f"expected one of {allowed}, got {_describe(value)}")
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass(tp, value, path)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if member.value == value:
                return member
        allowed = ", ".join(json.dumps(m.value) for m in tp)
        raise _at(path, f"expected one of {allowed}, got {_describe(value)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _at(path, f"expected a boolean, got {_describe(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _at(path, f"expected an integer, got {_describe(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _at(path, f"expected a number, got {_describe(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise _at(path, f"expected a string, got {_describe(value)}")
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple) or origin is _abc_sequence():
        if not isinstance(value, list):
            raise _at(path, f"expected an array, got {_describe(value)}")
        item = args[0] if args else Any
        items = [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin in (dict, typing.Mapping) or tp is dict or origin is _abc_mapping():
        if not isinstance(value, dict):
            raise _at(path, f"expected an object, got {_describe(value)}")
        item = args[1] if len(args) == 2 else Any
        return {k: _convert(item, v, f"{path}.{k}" if path else k) for k, v in value.items()}
    raise _at(path, f"unsupported configuration type {tp!r}")


def _abc_sequence() -> Any:
    import collections.abc

    return collections.abc.Sequence


def _abc_mapping() -> Any:
    import collections.abc

    return collections.abc.Mapping


def _dataclass(cls: type, value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise _at(path, f"expected an object, got {_describe(value)}")
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    by_json = {json_name(f): f for f in fields}
    for key in value:
        if key not in by_json:
            expected = [f"`{k}`" for k in by_json]
            if not expected:
                hint = "there are no fields"
            elif len(expected) == 1:
                hint = f"expected {expected[0]}"
            else:
                hint = f"expected one of {', '.join(expected)}"
            where = f" in {path}" if path else ""
            raise _FieldError(f"unknown field `{key}`{where}, {hint}")
    kwargs: dict[str, Any] = {}
    for key, f in by_json.items():
        sub = f"{path}.{key}" if path else key
        if key in value:
            kwargs[f.name] = _convert(hints.get(f.name, Any), value[key], sub)
        elif f.default is _MISSING and f.default_factory is _MISSING:
            raise _FieldError(f"missing field `{sub}`")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as e:
        raise _at(path, str(e)) from None


def json_schema(cls: type) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a configuration dataclass, for ``describe()``."""
    schema = _schema(cls)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def _schema(tp: Any) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return {}
    if origin is typing.Union or origin is types.UnionType:
        options = [_schema(a) for a in args]
        return {"anyOf": options}
    if tp is type(None):
        return {"type": "null"}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp)
        properties: dict[str, Any] = {}
        required: list[str] = []
        for f in dataclasses.fields(tp):
            if not f.init:
                continue
            key = json_name(f)
            prop = _schema(hints.get(f.name, Any))
            if f.metadata.get("description"):
                prop["description"] = f.metadata["description"]
            prop.update(f.metadata.get("schema", {}))
            default = f.default
            if default is _MISSING and f.default_factory is not _MISSING:
                factory: Any = f.default_factory
                default = factory()
            if default is _MISSING:
                required.append(key)
            elif isinstance(default, enum.Enum):
                prop["default"] = default.value
            elif _jsonable(default):
                prop["default"] = default
            properties[key] = prop
        out: dict[str, Any] = {"type": "object", "additionalProperties": False}
        if tp.__doc__ and not tp.__doc__.startswith(tp.__name__ + "("):
            out["description"] = " ".join(tp.__doc__.split())
        if required:
            out["required"] = required
        out["properties"] = properties
        return out
    simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if tp in simple:
        return {"type": simple[tp]}
    if origin in (list, tuple) or tp in (list, tuple) or origin is _abc_sequence():
        return {"type": "array", "items": _schema(args[0]) if args else {}}
    if origin in (dict,) or tp is dict or origin is _abc_mapping():
        return {"type": "object", "additionalProperties": _schema(args[1]) if len(args) == 2 else {}}
    return {}


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False
