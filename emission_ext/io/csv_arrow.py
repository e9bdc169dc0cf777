"""Fast path of the CSV point reader: pyarrow's C++ parser, startable early.

Why: a million-point CSV takes ~0.2 s to parse with pandas, about as long as importing
pandas itself. pyarrow parses it (on its thread pool, or on one thread beside the imports:
:func:`parse_threads`) and releases the GIL while doing so, so
``emission-ext process`` starts the parse in a background thread *before* importing pandas
and the pipeline, and the two overlap. This module therefore imports neither pandas nor
anything of ours that does (only pyarrow, which pandas imports anyway).

It only handles the clean common case: a plain (not gzipped) ``,``-separated file whose
columns parse as numbers (unix-time ``ts``) and text (``user_id``). Anything else -- ISO
timestamps, junk in a numeric column, ragged rows, a byte-order mark -- makes :meth:`result`
return None, and :func:`emission_ext.io.csv_points.read_csv_points` reads the file with
pandas as before, so every bad-input message keeps naming its file, line and field.
"""
from __future__ import annotations

import csv
import threading

#: Accepted column names per schema column (case-insensitive, surrounding spaces ignored).
ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": ("user_id", "user", "userid", "uid"),
    "ts": ("ts", "time", "timestamp", "datetime", "date_time"),
    "lat": ("lat", "latitude"),
    "lon": ("lon", "longitude", "lng", "long"),
    "accuracy_m": ("accuracy_m", "accuracy", "acc"),
    "speed_mps": ("speed_mps", "speed"),
    "heading": ("heading", "bearing", "course"),
}

#: Text read as missing, as in the pandas path.
NA_VALUES = ["", "nan", "NaN", "NAN", "null", "NULL", "None"]


def match_columns(header: list[str]) -> dict[str, str]:
    """Map each schema column found to the file's column name (first alias that matches)."""
    norm = {h.strip().lower(): h for h in header}
    found: dict[str, str] = {}
    for col, names in ALIASES.items():
        for n in names:
            if n in norm:
                found[col] = norm[n]
                break
    return found


def _header(path: str) -> list[str] | None:
    """Column names of a plain, comma-separated file with a clean header; else None."""
    if str(path).endswith(".gz"):
        return None
    try:
        with open(path, "rb") as fh:
            line = fh.readline()
        text = line.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if text.startswith("\ufeff") or text.count(";") > text.count(","):
        return None
    names = next(csv.reader([text.rstrip("\r\n")]), [])
    if not names or len(set(names)) != len(names) or any(n != n.strip() for n in names):
        return None
    return names


def read_arrow(path: str, user_id_given: bool = False, use_threads: bool = True):
    """Parse ``path`` with pyarrow: ``(table, columns)`` with the schema columns found (one
    chunk per column, user ids stripped of surrounding spaces), or None when the file is not
    the clean common case (see the module docstring). ``use_threads=False`` parses on the
    calling thread only (see :class:`Prefetch`)."""
    names = _header(path)
    if names is None:
        return None
    cols = match_columns(names)
    need = ("ts", "lat", "lon") + (() if user_id_given else ("user_id",))
    if any(c not in cols for c in need):
        return None  # the pandas path names the missing column
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        types = {cols[c]: (pa.string() if c == "user_id" else pa.float64()) for c in cols}
        # the parser's blocks come from the C allocator (which reuses what it frees, see
        # emission_ext.commands.process.keep_freed_memory), not from the default pool: with
        # jemalloc returning freed pages at once (process), every block was a fresh set of
        # page faults (~12,000 more per million rows, ~0.08 s of CPU); the table itself is
        # copied into the default pool just below (combine_chunks)
        table = pacsv.read_csv(
            path, memory_pool=pa.system_memory_pool(),
            read_options=pacsv.ReadOptions(use_threads=use_threads),
            parse_options=pacsv.ParseOptions(delimiter=","),
            convert_options=pacsv.ConvertOptions(
                column_types=types, include_columns=list(types), null_values=NA_VALUES,
                strings_can_be_null=True, quoted_strings_can_be_null=False))
        if table.num_rows == 0:
            return None
        # still in the background thread: one contiguous buffer per column (numpy views
        # later, no per-slice copies) and ids without surrounding spaces, as the checks want
        table = table.combine_chunks()
        if "user_id" in cols:
            i = table.schema.get_field_index(cols["user_id"])
            uid = table.column(i).chunk(0)
            if _may_have_space(uid):
                import pyarrow.compute as pc

                # one chunk in, one chunk out: no combine_chunks (it would copy it again)
                table = table.set_column(i, cols["user_id"],
                                         pa.chunked_array([pc.utf8_trim_whitespace(uid)]))
    except Exception:  # noqa: BLE001 - any parse problem: the pandas path reports it exactly
        return None
    return table, cols


def _may_have_space(text) -> bool:
    """False when no value of the Arrow string array ``text`` can start or end with
    whitespace: all its bytes are printable ASCII (``!`` to ``~``), which holds no Unicode
    whitespace. Trimming 1M ids copies them (~12 MB, ~3,000 page faults); this check reads
    the bytes twice and writes nothing."""
    import numpy as np

    offsets, data = text.buffers()[1:3]
    if data is None:
        return False
    start = np.frombuffer(offsets, np.int32, 1, text.offset * 4)[0]
    end = np.frombuffer(offsets, np.int32, 1, (text.offset + len(text)) * 4)[0]
    b = np.frombuffer(data, np.uint8, end - start, start)
    return len(b) > 0 and (b.min() < 0x21 or b.max() > 0x7E)  # no temporary arrays


def user_starts(table, cols: dict[str, str]):
    """First row of each run of equal user ids in a :func:`read_arrow` table (int64 array),
    or None when the ids are not sorted (rising at every change), have nulls or are absent.

    One comparison of neighbours over the ids; with :class:`Prefetch` it runs in the
    background thread too, so ``process`` finds its cut between workers ready."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if "user_id" not in cols:
        return None
    uid = table.column(cols["user_id"])
    n = len(uid)
    if uid.null_count or n < 2:
        return None
    # one chunk already (read_arrow), ids stripped as checked; combine_chunks would copy it
    uid = uid.chunk(0) if uid.num_chunks == 1 else uid.combine_chunks()
    a, b = uid.slice(0, n - 1), uid.slice(1)
    idx = pc.indices_nonzero(pc.not_equal(a, b))  # where the id changes
    if pc.all(pc.less(a.take(idx), b.take(idx))).as_py() is False:  # sorted: rising at changes
        return None
    # read from the buffer: Array.to_numpy and pa.array(ndarray) import pandas (pyarrow looks
    # for pandas types first), and in the background parse they then waited for the main
    # thread to finish importing it (~10-30 ms more before the parse's result was ready)
    at = (np.frombuffer(idx.buffers()[1], np.uint64, len(idx), idx.offset * 8) if len(idx)
          else np.empty(0, np.uint64))
    return np.r_[0, at.astype(np.int64) + 1]


def parse_threads() -> bool:
    """Whether a background parse (:class:`Prefetch`) should use pyarrow's thread pool:
    only with 3+ usable cores.

    Why: the parse runs while the main thread imports pandas and the pipeline, which keeps
    one core busy. On two cores a pool of two parse threads made three busy threads on two
    cores: the imports (the longer of the two) were slowed down, and the parse's blocks,
    spread over threads, cost more page faults. On one thread the parse ends no later than
    the imports: ``process`` on 1M points forked its workers at 0.25-0.33 s instead of
    0.30-0.45 s (12 runs, timeline of the fork), with ~11,000 fewer page faults.
    """
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cores or 1) > 2


class Prefetch:
    """:func:`read_arrow` running in a background thread (pyarrow releases the GIL).

    ``Prefetch(path).result()`` waits for it and returns what :func:`read_arrow` returned.
    ``then``: a function the thread calls after the parse (and :func:`user_starts`), while the
    main thread may still be importing (``process`` trims the C heap there).
    The parse starts as soon as ``pyarrow.csv`` is loaded: ``pyarrow.compute`` (~25 ms,
    wanted only after the parse, by :func:`user_starts`) loads in the thread after it, or in
    the main thread if pandas asks for it first (the import system makes one wait for the
    other).
    """

    def __init__(self, path: str, user_id_given: bool = False, then=None):
        import pyarrow.csv  # noqa: F401 - imported here, not in the thread (import locks)

        self.path = str(path)
        self._out = None
        self._starts = None
        self._then = then
        self._thread = threading.Thread(target=self._run, args=(user_id_given,), daemon=True)
        self._thread.start()

    def _run(self, user_id_given: bool) -> None:
        out = read_arrow(self.path, user_id_given, use_threads=parse_threads())
        if out is not None:
            try:
                self._starts = user_starts(*out)
            except Exception:  # noqa: BLE001 - computed again (and failing) where needed
                self._starts = None
        self._out = out
        if self._then is not None:  # ``then``: called in the thread once the parse is over
            try:
                self._then()
            except Exception:  # noqa: BLE001 - an optional extra, never the parse's result
                pass

    def result(self):
        self._thread.join()
        return self._out

    def user_starts(self):
        """:func:`user_starts` of the result (None: unsorted, or no result)."""
        self._thread.join()
        return self._starts

    def release(self) -> None:
        """Forget the result (the caller holds the only reference to the table now)."""
        self._thread.join()
        self._out = self._starts = None
