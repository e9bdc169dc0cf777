"""The card map: which operator card/account belongs to which tester, and when.

Why: operators know cards and accounts, not testers. Every record is attached to a tester
through this map, so the map is validated like any operator file (plus its own cross-row
rule: one account cannot belong to two testers over overlapping periods) and the lookup is
one vectorised join, shared by the Yélo and parking ingest.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .rows import LINE_COLUMN, ParsedFile, RowCheck, move_to_bad

LINE_O = LINE_COLUMN + "_o"
CARD_MAP_COLUMNS = ("operator", "account_id", "user_id", "valid_from", "valid_to")


def empty_card_map() -> pd.DataFrame:
    """A typed empty card map (``valid_from``/``valid_to`` are naive dates, NaT = open)."""
    return pd.DataFrame({"operator": pd.Series([], dtype=object), "account_id": pd.Series([], dtype=object),
                         "user_id": pd.Series([], dtype=object),
                         "valid_from": pd.Series([], dtype="datetime64[ns]"),
                         "valid_to": pd.Series([], dtype="datetime64[ns]")})


def normalise_card_map(df: pd.DataFrame) -> pd.DataFrame:
    """Card map columns only, ids as strings, dates as ``datetime64[ns]`` (naive local days)."""
    out = pd.DataFrame({c: df[c] if c in df else None for c in CARD_MAP_COLUMNS})
    for c in ("operator", "account_id", "user_id"):
        out[c] = out[c].astype(object)
    for c in ("valid_from", "valid_to"):
        v = pd.to_datetime(out[c], errors="coerce")
        if isinstance(v.dtype, pd.DatetimeTZDtype):
            v = v.dt.tz_localize(None)
        out[c] = v.astype("datetime64[ns]")
    return out.reset_index(drop=True)


def _days(s: pd.Series, fill: float) -> np.ndarray:
    """Dates as float days since the epoch; missing = ``fill`` (open-ended)."""
    v = pd.DatetimeIndex(s).as_unit("ns")
    out = v.asi8.astype("float64") / 86_400e9
    out[v.isna()] = fill
    return out


def check_card_map(check: RowCheck, parsed: ParsedFile, known_users=None) -> RowCheck:
    """Cross-row checks of a card map whose rows already passed :func:`rows.check_rows`.

    Parameters
    ----------
    check : RowCheck
        Row check of the card map file.
    parsed : ParsedFile
        The parsed file (for the raw rows of newly rejected lines).
    known_users : array-like of str or None
        Tester ids known to the store. When given, a mapping to another id is rejected
        ("unknown tester").

    Returns
    -------
    RowCheck
        With rows moved to ``bad`` when the user is unknown or when the same
        ``(operator, account_id)`` is mapped to a different tester over an overlapping period
        (the later line is rejected; an identical mapping repeated is harmless).
    """
    good = check.good
    if known_users is not None and len(good):
        unknown = ~good["user_id"].astype(str).isin(pd.Index(np.asarray(known_users, dtype=object))).to_numpy()
        check = move_to_bad(check, parsed, unknown, "user_id", "unknown tester (not in the testers table)",
                            good["user_id"].to_numpy()[unknown])
        good = check.good
    if len(good) < 2:
        return check
    g = good[["operator", "account_id", "user_id", "valid_from", "valid_to", LINE_COLUMN]].reset_index()
    pairs = g.merge(g, on=["operator", "account_id"], suffixes=("", "_o"))
    a0 = _days(pairs["valid_from"], -np.inf)
    a1 = _days(pairs["valid_to"], np.inf)
    b0 = _days(pairs["valid_from_o"], -np.inf)
    b1 = _days(pairs["valid_to_o"], np.inf)
    clash = (pairs[LINE_O] < pairs[LINE_COLUMN]) & (pairs["user_id"] != pairs["user_id_o"]) & (
        a0 <= b1) & (b0 <= a1)
    c = pairs[clash.to_numpy()].drop_duplicates("index")
    mask = good.index.isin(c["index"].to_numpy())
    if not mask.any():
        return check
    first = c.set_index("index").reindex(good.index[mask])
    reasons = [f"account already mapped to tester {u} for an overlapping period (line {ln})"
               for u, ln in zip(first["user_id_o"], first[LINE_O])]
    return move_to_bad(check, parsed, mask, "account_id", np.array(reasons, dtype=object),
                       good["account_id"].to_numpy()[mask])


def map_accounts(accounts: pd.Series, times: pd.Series, operator: str, card_map: pd.DataFrame,
                 tz: str = "Europe/Paris") -> tuple[np.ndarray, np.ndarray]:
    """Tester id of each operator account at each time.

    Parameters
    ----------
    accounts : Series of str
        Card/account ids at ``operator``.
    times : Series of datetime64[ns, UTC]
        When each record happened; compared, as a local day in ``tz``, with the map's
        inclusive ``valid_from``/``valid_to`` days (missing = open-ended).
    operator : str
        ``yelo`` or ``parking``.
    card_map : DataFrame
        From :func:`normalise_card_map`.

    Returns
    -------
    (user_ids, reasons) : two object arrays
        ``user_ids[i]`` is the tester or None; ``reasons[i]`` is "" when mapped, else why not
        (unknown account, or mapped to several testers at that time).
    """
    n = len(accounts)
    users = np.full(n, None, dtype=object)
    reasons = np.full(n, "", dtype=object)
    if n == 0:
        return users, reasons
    cm = card_map[card_map["operator"] == operator]
    day = pd.DatetimeIndex(times).tz_convert(tz).tz_localize(None).normalize().as_unit("ns")
    left = pd.DataFrame({"_i": np.arange(n), "account_id": accounts.astype(str).to_numpy(), "_day": day})
    m = left.merge(cm, on="account_id", how="inner")
    ok = (m["valid_from"].isna() | (m["valid_from"] <= m["_day"])) & (
        m["valid_to"].isna() | (m["_day"] <= m["valid_to"]))
    m = m[ok.to_numpy()].drop_duplicates(["_i", "user_id"])
    count = np.bincount(m["_i"].to_numpy(), minlength=n)
    one = m[count[m["_i"].to_numpy()] == 1]
    users[one["_i"].to_numpy()] = one["user_id"].to_numpy()
    known_acc = left["account_id"].isin(cm["account_id"]).to_numpy()
    reasons[(count == 0) & ~known_acc] = f"unknown {operator} account (not in the card map): unknown tester"
    reasons[(count == 0) & known_acc] = "account not mapped to a tester on that day (card map validity)"
    reasons[count > 1] = "account mapped to several testers on that day"
    return users, reasons
