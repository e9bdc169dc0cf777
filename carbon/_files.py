"""Small helpers shared by the carbon data loaders: default paths, versions and local time.

Why: every carbon data file (factors, tariffs, references) is versioned the same way — the
declared version of its metadata sidecar plus a hash of the file bytes — so a result always
records exactly which data produced it, even when an operator edits a value and forgets to
bump the declared version. Local-time conversion is shared by cost (calendar months for pass
amortisation), budgets and the aggregator.
"""
from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import pandas as pd

from emission_ext.errors import ConfigError
from emission_ext.schema import DEFAULT_TZ

DATA = Path(str(resources.files("carbon") / "data"))


def require(path: str | Path) -> Path:
    """Return ``path`` as a Path or raise :class:`ConfigError` when it does not exist."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: carbon data file not found")
    return p


def read_meta(path: str | Path) -> dict:
    """Read a JSON metadata sidecar (must hold a ``version``)."""
    p = require(path)
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{p}: invalid JSON ({exc})") from None
    if not isinstance(meta, dict) or "version" not in meta:
        raise ConfigError(f"{p}: metadata needs a 'version' field")
    return meta


def content_version(declared: str, paths: list[Path]) -> str:
    """``<declared>+<first 10 hex of sha256 over the files' bytes>``."""
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).read_bytes())
    return f"{declared}+{h.hexdigest()[:10]}"


def local_naive(ts: pd.Series, tz: pd.Series) -> pd.Series:
    """Wall-clock local time (tz-naive) of UTC timestamps ``ts``, each in its row's zone ``tz``.

    Vectorised per distinct zone (a panel has one or two). Null zones use Europe/Paris.
    """
    tz = tz.fillna(DEFAULT_TZ).astype(str)
    out = pd.Series(pd.NaT, index=ts.index, dtype="datetime64[ns]")
    for zone in pd.unique(tz):
        m = (tz == zone).to_numpy()
        out.loc[m] = ts[m].dt.tz_convert(zone).dt.tz_localize(None).astype("datetime64[ns]")
    return out
