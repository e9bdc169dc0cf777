"""Card map lookups (yelo_ingest.cardmap.map_accounts)."""
from __future__ import annotations

import pandas as pd

from yelo_ingest.cardmap import map_accounts, normalise_card_map


def test_map_accounts_validity_and_ambiguity():
    cm = normalise_card_map(pd.DataFrame({
        "operator": ["yelo", "yelo", "yelo", "parking", "yelo", "yelo"],
        "account_id": ["A", "B", "B", "A", "C", "C"],
        "user_id": ["1", "2", "3", "9", "4", "5"],
        "valid_from": [None, "2026-01-01", "2026-03-01", None, None, None],
        "valid_to": [None, "2026-02-28", None, None, None, None],
    }))
    t = pd.Series(pd.to_datetime(["2026-02-28T22:30:00Z",   # 23:30 Paris, 28 Feb -> B is user 2
                                  "2026-02-28T23:30:00Z",   # 00:30 Paris, 1 Mar -> B is user 3
                                  "2026-02-28T12:00:00Z", "2026-02-28T12:00:00Z", "2025-12-31T12:00:00Z",
                                  "2026-02-28T12:00:00Z"], utc=True))
    acc = pd.Series(["B", "B", "A", "Z", "B", "C"])
    users, why = map_accounts(acc, t, "yelo", cm)
    assert list(users) == ["2", "3", "1", None, None, None]
    assert why[3].startswith("unknown yelo account")
    assert "validity" in why[4]
    assert "several testers" in why[5]
    users, _ = map_accounts(pd.Series(["A"]), t[:1], "parking", cm)
    assert list(users) == ["9"]
