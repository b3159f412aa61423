"""What every world's plugin class shares: identity, configuration, reads, and the bridge to
the raw componentize-py bindings (``describe``, ``validate-config``, errors)."""

from __future__ import annotations

import json
import logging
import traceback
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

# The bindings componentize-py generates for the world being built. Every import happens
# here, while componentize-py pre-initializes the component: an import at call time would
# look for files, and a component has no filesystem.
from componentize_py_types import Err
from wit_world.imports import log as _wit_log  # noqa: F401  (used by flotilla_sdk.log)
from wit_world.imports import types as _wit_types

from . import log as _log
from .config import json_schema, parse_config
from .errors import PluginError
from .types import Owner, Reads

__all__ = ["Plugin", "C"]

_log.install()

#: The plugin's configuration type: a dataclass (see :mod:`flotilla_sdk.config`).
C = TypeVar("C")
T = TypeVar("T")

logger = logging.getLogger("flotilla_sdk")


class Plugin(ABC, Generic[C]):
    """The base of every world's plugin class.

    Subclasses set ``name``, ``version`` and ``summary``, and say their configuration type
    as the generic argument (``class MyFilter(PlacementFilter[MyConfig])``) or as
    ``config_type``. They override :meth:`reads` when what they read depends on the
    configuration (it usually does).
    """

    #: A short machine-friendly name, for example ``label-requirements``.
    name: ClassVar[str] = "plugin"
    #: The plugin's own semantic version.
    version: ClassVar[str] = "0.1.0"
    #: One or two sentences for people.
    summary: ClassVar[str] = ""
    #: The configuration dataclass; inferred from ``Plugin[Config]`` when not set. ``dict``
    #: (or no type at all) passes the parsed JSON as is.
    config_type: ClassVar[Any] = None
    #: What the plugin reads whatever its configuration (``describe().reads``).
    always_reads: ClassVar[Reads] = Reads()
    #: The JSON Schema of the configuration; generated from ``config_type`` when ``None``.
    config_schema: ClassVar[dict[str, Any] | None] = None

    #: The object the current call is for (a Placement, Policy, ManifestWorkReplicaSet).
    owner: Owner = Owner()

    def reads(self, config: C) -> Reads:
        """What the plugin reads under ``config``: the host passes exactly these labels,
        claims, resources and fields (and, for policy checks, allows reads of these kinds).
        By default, ``always_reads``."""
        return self.always_reads

    # --- the bridge, used by the world modules -------------------------------------------

    @classmethod
    def _config_cls(cls) -> Any:
        if cls.config_type is not None:
            return cls.config_type
        for klass in cls.__mro__:
            for base in getattr(klass, "__orig_bases__", ()):
                args = typing.get_args(base)
                if args and not isinstance(args[0], TypeVar):
                    return args[0]
        return Any

    def parse(self, text: str) -> C:
        """Parses the host's configuration text (raises :class:`ConfigError`)."""
        return typing.cast(C, parse_config(self._config_cls(), text))

    def _schema(self) -> str | None:
        if self.config_schema is not None:
            return json.dumps(self.config_schema)
        cls = self._config_cls()
        if cls is Any or cls is dict:
            return None
        return json.dumps(json_schema(cls))

    def _describe(self) -> Any:
        return _wit_types.Description(self.name, self.version, self.summary, self.always_reads.to_wit(), self._schema())

    def _validate_config(self, text: str) -> Any:
        return _guard(lambda: self.reads(self.parse(text)).to_wit())


def _guard(fn: Callable[[], T]) -> T:
    """Runs one export: a :class:`PluginError` becomes the WIT ``err`` with its message; any
    other exception too, with its type, and its traceback goes to the host's log (a
    componentize-py component must not let an exception escape: it would trap)."""
    try:
        return fn()
    except Err:
        raise
    except PluginError as e:
        raise Err(e.message) from None
    except Exception as e:  # a plugin bug: say what, keep the traceback in the log
        logger.error("plugin raised %s: %s\n%s", type(e).__name__, e, _where(e))
        raise Err(f"plugin error: {type(e).__name__}: {e}") from None


def _where(e: BaseException) -> str:
    """The traceback's frames, without source lines: reading a source file would need the
    filesystem, which a component does not have."""
    frames = traceback.walk_tb(e.__traceback__)
    return "\n".join(f"  at {f.f_code.co_filename}:{line} in {f.f_code.co_name}" for f, line in frames)
