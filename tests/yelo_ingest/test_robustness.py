"""Property-based: whatever bytes an operator sends, ingest never crashes, never loses a row
and never makes two records of one id."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emission_ext.errors import InputError
from yelo_ingest.cardmap import empty_card_map
from yelo_ingest.ingest import ingest_bytes

from .helpers import CARD_MAP, ref_index, validations_csv

_CM = None


def card_map():
    global _CM
    if _CM is None:
        _CM = ingest_bytes(CARD_MAP.encode(), "card_map.csv", ref=ref_index(), card_map=empty_card_map()).card_map
    return _CM


def check(raw: bytes):
    try:
        res = ingest_bytes(raw, "yelo_validations.csv", ref=ref_index(), card_map=card_map())
    except InputError:
        return
    s = res.stats
    assert s["good"] + s["bad"] + s["duplicates"] == s["rows"]
    assert len(res.records) == s["good"]
    assert not res.records.duplicated(["source", "record_id"]).any()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes(raw):
    check(raw)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(0, 600), junk=st.text(max_size=30), pos=st.integers(0, 600),
       enc=st.sampled_from(["utf-8", "latin-1", "utf-8-sig"]), sep=st.sampled_from([",", ";"]))
def test_mangled_real_files(cut, junk, pos, enc, sep):
    text = validations_csv(sep=sep, dec="," if sep == ";" else ".")
    text = text[:pos] + junk + text[pos:]
    text = text[: max(cut, 1)]
    check(text.encode(enc, errors="replace"))
