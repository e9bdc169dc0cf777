"""Entry point for raw inputs: one :func:`read` for every format, :func:`read_many` for several.

Why: commands (``import``, ``process``), the runner and notebooks should not care whether a
tester's fixes come from an e-mission export, a CSV, a GPX track or a GeoLife ``.plt``. They call
:func:`read` and get the same :class:`RawData`: schema-typed ``points``, ``motion`` and
``transitions`` tables, each user's time zone, and what was skipped. The format is chosen from
the file name, or from the first bytes when the name says nothing.
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Iterable

from ..errors import InputError
from ._common import RawData

FORMATS = ("auto", "emission", "csv", "gpx", "geolife")

__all__ = ["RawData", "read", "read_many", "detect_format", "FORMATS"]


def detect_format(path: str | Path) -> str:
    """Guess the format of ``path``: ``emission``, ``csv``, ``gpx`` or ``geolife``.

    By extension first (``.json``/``.json.gz`` -> emission, ``.csv``/``.csv.gz`` -> csv,
    ``.gpx`` -> gpx, ``.plt`` -> geolife), else by content (``[``/``{`` -> emission, ``<`` ->
    gpx, a ``Geolife`` first line -> geolife, otherwise csv).

    Raises
    ------
    InputError
        The file does not exist or cannot be opened.
    """
    p = Path(path)
    name = p.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for ext, fmt in ((".json", "emission"), (".csv", "csv"), (".gpx", "gpx"), (".plt", "geolife")):
        if name.endswith(ext):
            return fmt
    try:
        with open(p, "rb") as fh:
            head = fh.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(p, "rb") as fh:
            start = fh.read(512)
    except FileNotFoundError:
        raise InputError(str(path), "file not found") from None
    except (OSError, EOFError) as exc:
        raise InputError(str(path), f"cannot open: {exc}") from None
    text = start.lstrip(b"\xef\xbb\xbf").lstrip()
    if text[:1] in (b"[", b"{"):
        return "emission"
    if text[:1] == b"<":
        return "gpx"
    if text.lower().startswith(b"geolife"):
        return "geolife"
    return "csv"


def read(path: str | Path, fmt: str = "auto", skip_bad: bool = False,
         user_id: str | None = None, **options) -> RawData:
    """Read one raw input file.

    Parameters
    ----------
    path : str or Path
        The file.
    fmt : {"auto", "emission", "csv", "gpx", "geolife"}
        Input format; ``auto`` uses :func:`detect_format`.
    skip_bad : bool
        Keep going past malformed rows/entries: they are dropped, counted in
        ``RawData.skipped`` and listed in ``RawData.problems``. Without it the first one raises.
    user_id : str, optional
        User id to give every row. Default: from the data (e-mission ``user_id``, CSV column),
        the file stem (GPX) or the GeoLife user folder (``Data/000/Trajectory/x.plt`` -> ``000``).
    **options
        Format-specific: ``locations="filtered"|"raw"`` for e-mission.

    Returns
    -------
    RawData

    Raises
    ------
    InputError
        Unknown format, unreadable file, or malformed content (naming file, line or JSON entry,
        and field).
    """
    if fmt not in FORMATS:
        raise InputError(str(path), f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not Path(path).exists():
        raise InputError(str(path), "file not found")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "emission":
        from .emission import read_emission

        return read_emission(path, skip_bad=skip_bad, user_id=user_id, **options)
    if options:
        raise TypeError(f"options {sorted(options)} do not apply to the {fmt} format")
    if fmt == "csv":
        from .csv_points import read_csv_points

        return read_csv_points(path, skip_bad=skip_bad, user_id=user_id)
    if fmt == "gpx":
        from .gpx import read_gpx

        return read_gpx(path, skip_bad=skip_bad, user_id=user_id)
    from .geolife import read_plt

    return read_plt(path, skip_bad=skip_bad, user_id=user_id)


def read_many(paths: Iterable[str | Path], fmt: str = "auto", skip_bad: bool = False,
              user_id: str | None = None, **options) -> RawData:
    """Read several files with :func:`read` and concatenate them.

    Rows repeated across files (same table key) are kept once and counted in ``duplicates``.
    """
    return RawData.concat([read(p, fmt=fmt, skip_bad=skip_bad, user_id=user_id, **options)
                           for p in paths])
