"""Small helpers shared by the CLI commands (store opening, progress bars)."""
from __future__ import annotations

import click
from tqdm import tqdm


def data_dir(ctx: click.Context) -> str:
    """The ``--data-dir`` given to the top-level group."""
    return ctx.find_root().obj["data_dir"]


def progress(iterable=None, *, total=None, desc: str = "", unit: str = "it", disable=None):
    """A tqdm progress bar on stderr, hidden when stderr is not a terminal unless forced."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, leave=False,
                dynamic_ncols=True)
