"""Stores behind one interface: the embedded Parquet store (default) and the e-mission
MongoDB store.

Why this module: commands, the API and notebooks open "the store" from one string, a data
directory or a ``mongodb://`` URL, without knowing the classes.
"""
from __future__ import annotations

import os

from ..errors import StoreError
from .base import AppendResult, Store
from .parquet import ParquetStore

__all__ = ["Store", "AppendResult", "ParquetStore", "open_store", "STORE_ENV"]

#: Environment variable naming the store (a directory or a mongodb:// URL).
STORE_ENV = "EMISSION_EXT_STORE"


def open_store(location: str | os.PathLike, db: str | None = None) -> Store:
    """Open the store at ``location``.

    Parameters
    ----------
    location : str or path
        A data directory (Parquet store, created when missing) or a ``mongodb://`` /
        ``mongodb+srv://`` URL (MongoDB store).
    db : str, optional
        MongoDB database name (default ``Stage_database``, e-mission's).
    """
    loc = os.fspath(location)
    if loc.startswith(("mongodb://", "mongodb+srv://")):
        from .mongo import DEFAULT_DB, MongoStore

        return MongoStore(loc, db=db or DEFAULT_DB)
    if "://" in loc:
        raise StoreError(f"unsupported store URL {loc!r}: give a directory or a mongodb:// URL")
    return ParquetStore(loc)
