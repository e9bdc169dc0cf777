"""Pipeline stages: the steps the runner applies to each user's tables, in a fixed order.

Why: the runner must not know what each step computes, only what it reads and writes, so that
the segmentation, mode, fusion and footprint teams each add one small module here without
touching the runner. A stage module exposes:

``NAME``
    the stage name (``segment``, ``modes``, ``fuse``, ``footprint``);
``INPUTS`` / ``OUTPUTS``
    names of the tables it reads and (whole, per user) replaces;
``VERSION``
    optional string; bump it when the stage's results change so every user is redone;
``available()``
    optional; returns ``None`` when the stage can run, else the reason it cannot (e.g. its
    algorithm package is not installed yet). An ``ImportError`` while importing the module is
    reported the same way. Unavailable stages are *reported*, never silently skipped;
``run(inputs, ctx) -> dict``
    pure apart from what ``ctx`` hands it: ``inputs`` maps each INPUTS name to the user's frame
    (typed empty frame when the user has none), the result maps each OUTPUTS name to a frame.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Mapping

from ..schema import DEFAULT_TZ

#: The stages of a run, in order.
STAGE_ORDER: tuple[str, ...] = ("segment", "modes", "fuse", "footprint")

_RESOURCES: dict[str, Any] = {}


@dataclass(frozen=True)
class StageContext:
    """What a stage may use besides its input tables.

    Attributes
    ----------
    user_id : str
        The user being processed.
    tz : str
        The user's IANA time zone (tester profile, else the zone seen at import, else
        Europe/Paris).
    params : mapping
        Per-stage parameters, ``params[stage_name]`` (a dict or a parameter dataclass).
    """

    user_id: str
    tz: str = DEFAULT_TZ
    params: Mapping[str, Any] = field(default_factory=dict)

    def param(self, stage: str, default=None):
        """Parameters given for ``stage`` (``default`` when none)."""
        return self.params.get(stage, default)

    @staticmethod
    def resource(name: str, loader: Callable[[], Any]) -> Any:
        """Reference data or a model, loaded once per worker process by ``loader()`` and then
        shared by every user that process handles (e.g. the GTFS transit index)."""
        if name not in _RESOURCES:
            _RESOURCES[name] = loader()
        return _RESOURCES[name]


@dataclass(frozen=True)
class StageInfo:
    """A stage as found at run time: its module, or why it is not available."""

    name: str
    module: ModuleType | None
    reason: str | None = None

    @property
    def available(self) -> bool:
        return self.module is not None

    @property
    def version(self) -> str:
        return str(getattr(self.module, "VERSION", "1"))


def load_stage(name: str) -> StageInfo:
    """Import ``emission_ext.stages.<name>`` (or the module ``name`` itself when it is a dotted
    path, for plug-in stages) and check it can run."""
    modname = name if "." in name else f"{__name__}.{name}"
    try:
        mod = importlib.import_module(modname)
    except ModuleNotFoundError as exc:
        if exc.name == modname:
            return StageInfo(name, None, f"no stage module {modname}")
        return StageInfo(name, None, f"missing module {exc.name}")
    except ImportError as exc:
        return StageInfo(name, None, f"import failed: {exc}")
    missing = [a for a in ("NAME", "INPUTS", "OUTPUTS", "run") if not hasattr(mod, a)]
    if missing:
        return StageInfo(name, None, f"{modname} lacks {', '.join(missing)}")
    check = getattr(mod, "available", None)
    if callable(check):
        reason = check()
        if reason:
            return StageInfo(name, None, str(reason))
    return StageInfo(name, mod)


def load_stages(names: tuple[str, ...] = STAGE_ORDER) -> list[StageInfo]:
    """:func:`load_stage` for each name, in order."""
    return [load_stage(n) for n in names]
