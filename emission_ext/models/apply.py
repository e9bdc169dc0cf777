"""Classify segmented sections with the shipped model: the one call `process` and the runner use.

Why: features need the GTFS transit index and the model, both loaded once per process and
then reused for every user; this module owns that caching so the pure algorithms
(:mod:`pipeline.features`, :mod:`pipeline.modes`) never touch files.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from emission_ext.schema import DEFAULT_TZ


#: Bump when :class:`pipeline.transit.TransitIndex` changes what it stores (2: a folder of
#: memory-mapped ``.npy`` files instead of one ``.npz``).
TRANSIT_CACHE_VERSION = 2


def _cache_dir() -> Path:
    root = os.environ.get("EMISSION_EXT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "emission-ext")
    return Path(root)


@lru_cache(maxsize=2)
def transit_index(path: str | None = None):
    """The :class:`pipeline.transit.TransitIndex` of the shipped Yélo feed (or of the GTFS zip
    at ``path``), built once per process.

    The built index is cached in ``$EMISSION_EXT_CACHE`` (default ``~/.cache/emission-ext``)
    as a folder of plain ``.npy`` files (no pickle), keyed by the feed's SHA-256, the index
    parameters and :data:`TRANSIT_CACHE_VERSION`. Later processes map those files into
    memory (~3 ms, against ~30 ms to read an ``.npz`` of the same 21 MB; only the raster cells
    queried are ever read from disk). A missing, corrupt or unwritable cache only costs the build.
    """
    from emission_ext.reference import GTFS_PATH, load_gtfs
    from pipeline.transit import TransitIndex, TransitParams

    gtfs_path = Path(path or GTFS_PATH)
    params = TransitParams()
    digest = hashlib.sha256(gtfs_path.read_bytes()).hexdigest()[:20] if gtfs_path.exists() else None
    key = hashlib.sha256(f"{digest}|{params}|{TRANSIT_CACHE_VERSION}".encode()).hexdigest()[:24]
    cached = _cache_dir() / f"transit-{key}"
    if digest and cached.is_dir():
        try:
            order = np.load(cached / "_order.npy", allow_pickle=False)  # keys as written
            arrays = {str(k): np.load(cached / f"{k}.npy", mmap_mode="r", allow_pickle=False)
                      for k in order}
            return TransitIndex.from_arrays(arrays, params)
        except Exception:  # noqa: BLE001 - a corrupt cache is rebuilt
            pass
    index = TransitIndex.from_gtfs(load_gtfs(gtfs_path), params)
    if digest:
        tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        try:
            tmp.mkdir(parents=True, exist_ok=True)
            arrays = index.to_arrays()
            for k, v in arrays.items():
                np.save(tmp / f"{k}.npy", v, allow_pickle=False)
            np.save(tmp / "_order.npy", np.array(list(arrays), dtype=str), allow_pickle=False)
            if cached.is_dir():  # a corrupt earlier copy
                shutil.rmtree(cached, ignore_errors=True)
            os.replace(tmp, cached)  # readers see a complete folder or none
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return index


def preload() -> None:
    """Load the shipped model and the transit index now (each cached per process), e.g.
    while an input file parses in another thread; forked workers then inherit both."""
    from . import load_model

    load_model()
    transit_index()


def apply_modes(sections: pd.DataFrame, labelled_points,
                motion: pd.DataFrame | None = None, *, tz: str = DEFAULT_TZ,
                model="default", transit="default") -> pd.DataFrame:
    """Sections with ``mode``, ``mode_confidence`` and ``mode_source`` set.

    Parameters
    ----------
    sections, labelled_points, motion : DataFrame
        Output of :func:`pipeline.segment.segment_user` and the phone's motion (optional);
        ``labelled_points`` may instead be its ``section_points``
        (:class:`pipeline.features.SectionPoints`, ``labelled="arrays"``: much cheaper).
    tz : str
        Time zone of the hour-of-day features for users without a ``tz`` column in
        ``labelled_points``.
    model : "default", None, path or ModeClassifier
        ``"default"``: the shipped model (rules when none is shipped); ``None``: the rules.
    transit : "default", None or TransitIndex
        ``"default"``: the shipped Yélo feed; ``None``: no transit features.
    """
    from pipeline.features import FeatureParams, SectionPoints, section_features
    from pipeline.modes import ModeClassifier, classify_sections

    from . import load_model

    if isinstance(model, str):
        model = load_model(None if model == "default" else model)
    elif model is not None and not isinstance(model, ModeClassifier):
        raise TypeError(f"model must be a ModeClassifier, a path, 'default' or None, not {type(model)}")
    if isinstance(transit, str) and transit == "default":
        transit = transit_index()
    sec = sections.reset_index(drop=True)
    zones = tz
    if isinstance(labelled_points, SectionPoints):
        if labelled_points.tz is not None and len(labelled_points.tz):
            per_user = pd.Series(labelled_points.tz, index=labelled_points.user_ids.astype(str))
            per_user = per_user[~per_user.index.duplicated()]
            zones = sec["user_id"].astype(str).map(per_user).fillna(tz).astype(str).to_numpy()
    elif "tz" in labelled_points.columns and len(labelled_points):
        # the users' own zones (e.g. `process` on several users' files), else ``tz``
        per_user = labelled_points.drop_duplicates("user_id").set_index("user_id")["tz"]
        zones = sec["user_id"].map(per_user).fillna(tz).astype(str).to_numpy()
    feats = section_features(labelled_points, sec,
                             motion if motion is not None and len(motion) else None, transit,
                             FeatureParams(tz=tz), tz=zones)
    return classify_sections(sec, feats, model)
