"""Typed exceptions shared by every package.

Why: the command line turns any :class:`EmissionExtError` into a one-line message and exit
code 2 (a user mistake), while anything else is a bug and keeps its traceback. Validation
code raises these, never ``assert``.
"""
from __future__ import annotations


class EmissionExtError(Exception):
    """Base class of every error caused by the user's input or configuration."""


class SchemaError(EmissionExtError):
    """A DataFrame does not match its table definition in :mod:`emission_ext.schema`.

    Parameters
    ----------
    table : str
        Table name (``points``, ``trips``...).
    column : str or None
        The offending column, when one is to blame.
    reason : str
        What is wrong, in words a user can act on.
    row : int or None
        Positional row index of the first offending row, when known.
    """

    def __init__(self, table: str, column: str | None, reason: str, row: int | None = None):
        self.table, self.column, self.reason, self.row = table, column, reason, row
        where = f"{table}"
        if column:
            where += f".{column}"
        if row is not None:
            where += f" (row {row})"
        super().__init__(f"{where}: {reason}")


class InputError(EmissionExtError):
    """Malformed input file.

    Parameters
    ----------
    path : str
        The file.
    reason : str
        What is wrong.
    line : int or None
        1-based line (CSV, GPX, PLT) or entry index (JSON arrays) where it went wrong.
    field : str or None
        The field/column at fault.
    unit : str
        What ``line`` counts, named in the message: ``"line"`` (default) or ``"entry"``
        (0-based position of an entry in a JSON array).
    """

    def __init__(self, path: str, reason: str, line: int | None = None, field: str | None = None,
                 unit: str = "line"):
        self.path, self.reason, self.line, self.field = str(path), reason, line, field
        self.unit = unit
        where = self.path
        if line is not None:
            where += f", {unit} {line}"
        if field:
            where += f", field '{field}'"
        super().__init__(f"{where}: {reason}")


class StoreError(EmissionExtError):
    """The store cannot do what was asked (locked user, unreachable server, corrupt file...)."""


class ConfigError(EmissionExtError):
    """A configuration value or reference data file is missing or invalid."""
