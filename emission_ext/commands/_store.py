"""The ``--store`` option shared by the commands that read or write the data store.

Why: by default commands use the embedded Parquet store at the top-level ``--data-dir``;
``--store mongodb://...`` (or ``EMISSION_EXT_STORE``) points them at a TRACES MongoDB instead.
One decorator and one opener keep that identical across commands.
"""
from __future__ import annotations

import click

from ..stores import STORE_ENV, Store, open_store
from ._common import data_dir


def store_option(fn):
    """Add ``--store LOCATION`` and ``--store-db NAME`` to a command."""
    fn = click.option("--store-db", "store_db", default=None, metavar="NAME",
                      help="MongoDB database of a mongodb:// store [default: Stage_database].")(fn)
    return click.option("--store", "store", default=None, envvar=STORE_ENV, metavar="DIR|URL",
                        help="Store to use: a data directory or a mongodb:// URL "
                             "[default: the --data-dir of emission-ext].")(fn)


def open_ctx_store(ctx: click.Context, store: str | None, store_db: str | None = None) -> Store:
    """The store named by ``--store``, else the Parquet store at ``--data-dir``."""
    return open_store(store or data_dir(ctx), db=store_db)
