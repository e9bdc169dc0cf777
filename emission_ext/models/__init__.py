"""The shipped travel-mode model: where it lives, how it is saved and loaded safely.

Why: `process` and `run` classify sections with a model trained offline (``emission-ext model
train``) and shipped in the package, next to its model card (``MODEL_CARD.md``). Loading a
model file must never execute arbitrary code, so the artefact is a skops file (no pickle) and
only the scikit-learn types listed in :data:`TRUSTED_TYPES` are accepted; anything else is
refused with a :class:`~emission_ext.errors.ConfigError`. The file carries a format version
and the feature list it was trained on; both are checked at load.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import ConfigError

MODELS_DIR = Path(str(resources.files("emission_ext") / "models"))
DEFAULT_MODEL_PATH = MODELS_DIR / "mode_classifier.skops"
MODEL_FORMAT = "emission-ext/mode-classifier"
MODEL_FORMAT_VERSION = 1

#: Types outside skops' default trust list that a mode-classifier file may contain. Reviewed
#: by hand: plain scikit-learn estimator internals, no callables.
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


def save_model(model, path: str | Path, info: dict | None = None) -> Path:
    """Write a fitted :class:`pipeline.modes.ModeClassifier` to ``path`` (skops format).

    ``info`` (JSON-like: training data, metrics, date...) is stored with the model.
    """
    import skops.io as sio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "params": model.get_params(),
        "classes": [str(c) for c in model.classes_],
        "features_in": list(model.features_in_),
        "estimator": model.estimator_,
        "info": info or {},
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    sio.dump(state, tmp)
    tmp.replace(path)
    return path


def read_model(path: str | Path):
    """Load a model file written by :func:`save_model`; returns ``(ModeClassifier, info)``.

    Raises
    ------
    ConfigError
        Missing file, not a skops file, a type outside :data:`TRUSTED_TYPES`, another format
        or format version, or features this version of the code does not compute.
    """
    import skops.io as sio

    from pipeline.features import FEATURES
    from pipeline.modes import ModeClassifier

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: model file not found (train one with `emission-ext model train`)")
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        # skops refuses, before building anything, every type outside its safe defaults and
        # the explicit list below
        state = sio.load(path, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException as exc:
        raise ConfigError(f"{path}: refusing to load untrusted types ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not a model file"
        raise ConfigError(f"{path}: not a loadable skops model file ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != MODEL_FORMAT:
        raise ConfigError(f"{path}: not an emission-ext mode-classifier file")
    if state.get("format_version") != MODEL_FORMAT_VERSION:
        raise ConfigError(f"{path}: model format version {state.get('format_version')}, this code "
                          f"reads version {MODEL_FORMAT_VERSION}; retrain with `emission-ext model train`")
    params = dict(state["params"])
    unknown = sorted(set(params.get("features", ())) - set(FEATURES)
                     | set(state.get("features_in", ())) - set(FEATURES))
    if unknown:
        raise ConfigError(f"{path}: model uses features this version does not compute: {unknown}")
    model = ModeClassifier(**params)
    model.estimator_ = state["estimator"]
    model.classes_ = np.asarray(state["classes"]).astype(str)
    model.features_in_ = tuple(state.get("features_in", params.get("features", ())))
    return model, dict(state.get("info") or {})


def _cache_dir() -> Path:
    import os

    root = os.environ.get("EMISSION_EXT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "emission-ext")
    return Path(root)


def _compiled_path(path: Path) -> Path:
    import hashlib

    from .compiled import COMPILED_VERSION

    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:24]
    return _cache_dir() / f"model-{digest}-v{COMPILED_VERSION}-f{MODEL_FORMAT_VERSION}.npz"


def _from_compiled(arrays: dict):
    """A :class:`pipeline.modes.ModeClassifier` predicting through numpy only."""
    import json

    from pipeline.features import FEATURES
    from pipeline.modes import ModeClassifier

    from .compiled import CompiledEstimator

    meta = json.loads(str(arrays.pop("meta_json")))
    if set(meta["params"].get("features", ())) - set(FEATURES) or set(meta["features_in"]) - set(FEATURES):
        raise ValueError("features this version does not compute")
    model = ModeClassifier(**meta["params"])
    model.estimator_ = CompiledEstimator(arrays)
    model.classes_ = np.asarray(meta["classes"]).astype(str)
    model.features_in_ = tuple(meta["features_in"])
    return model, meta["info"]


@lru_cache(maxsize=4)
def _cached(path: str, mtime: float):
    """Load once per process. The skops file is read (scikit-learn and skops imported,
    1.5-2.5 s) only the first time a given file is seen: its trees and calibration are then
    written as a plain ``.npz`` (no pickle) in ``$EMISSION_EXT_CACHE`` keyed by the file's
    SHA-256, and later processes predict from that through numpy alone, with the same
    probabilities. A missing, corrupt or unwritable cache only costs the skops load."""
    import json

    try:
        compiled = _compiled_path(Path(path))
    except OSError:
        compiled = None
    if compiled is not None and compiled.exists():
        try:
            with np.load(compiled, allow_pickle=False) as npz:
                return _from_compiled({k: npz[k] for k in npz.files})
        except Exception:  # noqa: BLE001 - a corrupt cache is rebuilt from the skops file
            pass
    model, info = read_model(path)
    if compiled is None:
        return model, info
    from .compiled import CompiledEstimator, compile_estimator

    try:
        arrays = compile_estimator(model.estimator_)
    except NotImplementedError:
        return model, info  # predicted by scikit-learn itself
    meta = {"params": model.get_params(), "classes": [str(c) for c in model.classes_],
            "features_in": list(model.features_in_), "info": info}
    try:
        arrays["meta_json"] = np.array(json.dumps(meta, default=str))
    except (TypeError, ValueError):
        return model, info
    try:
        compiled.parent.mkdir(parents=True, exist_ok=True)
        tmp = compiled.with_name(f"{compiled.stem}.{__import__('os').getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(compiled)
    except OSError:
        pass
    arrays.pop("meta_json")
    model.estimator_ = CompiledEstimator(arrays)
    return model, info


def load_model(path: str | Path | None = None):
    """The model at ``path`` (default: the shipped one), cached per file and modification time.

    Returns ``None`` when no path is given and no model is shipped (callers then fall back to
    the rules); raises :class:`ConfigError` for an explicit path that cannot be loaded.
    """
    if path is None:
        if not DEFAULT_MODEL_PATH.exists():
            return None
        path = DEFAULT_MODEL_PATH
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: model file not found")
    return _cached(str(path.resolve()), path.stat().st_mtime)[0]
