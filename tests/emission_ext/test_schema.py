"""The data model: coercion, validation errors that name table/column/row."""
import numpy as np
import pandas as pd
import pytest

from emission_ext import schema
from emission_ext.errors import SchemaError


def _points(**over):
    d = {"user_id": ["010", "010"], "ts": [1.7e9, 1.7e9 + 30], "lat": [46.15, 46.16],
         "lon": [-1.15, -1.14], "accuracy_m": [5.0, 8.0], "source": ["csv", "csv"]}
    d.update(over)
    return pd.DataFrame(d)


def test_every_table_has_a_typed_empty_frame():
    for name, t in schema.TABLES.items():
        df = schema.empty(name)
        assert list(df.columns) == t.names
        schema.validate(df, name)


def test_coerce_converts_unix_seconds_and_keeps_leading_zero_ids():
    df = schema.coerce(_points(), "points")
    assert str(df["ts"].dtype) == schema.UTC_TS
    assert df["user_id"].tolist() == ["010", "010"]
    np.testing.assert_allclose(schema.to_unix(df["ts"]), [1.7e9, 1.7e9 + 30])
    schema.validate(df, "points")


def test_coerce_reads_iso_strings_with_offsets():
    df = schema.coerce(_points(ts=["2026-03-29T01:59:00+01:00", "2026-03-29T03:01:00+02:00"]), "points")
    assert (schema.to_unix(df["ts"])[1] - schema.to_unix(df["ts"])[0]) == 120


@pytest.mark.parametrize("column,value,reason", [
    ("lat", 91.0, "outside"),
    ("lon", np.nan, "null"),
    ("source", "fax", "not in"),
    ("accuracy_m", -1.0, "outside"),
])
def test_validate_names_table_column_and_row(column, value, reason):
    df = schema.coerce(_points(), "points")
    df.loc[1, column] = value
    with pytest.raises(SchemaError) as err:
        schema.validate(df, "points")
    assert err.value.column == column and err.value.row == 1 and reason in str(err.value)


def test_missing_required_column_and_duplicate_key():
    with pytest.raises(SchemaError, match="points.lat: required column is missing"):
        schema.coerce(_points().drop(columns="lat"), "points")
    df = schema.coerce(_points(ts=[1.7e9, 1.7e9]), "points")
    with pytest.raises(SchemaError, match="duplicate key"):
        schema.validate(df, "points")


def test_mode_vocabulary_is_the_spec_list():
    assert schema.MODES == ("WALKING", "BICYCLING", "E_BIKE", "BIKESHARE", "BUS", "FERRY", "CAR",
                            "CARSHARE", "TRAIN", "TRAM", "SUBWAY", "AIR", "UNKNOWN")


def test_unix_seconds_to_timestamps_match_pandas_bit_for_bit():
    from emission_ext.schema import _to_utc

    rng = np.random.default_rng(0)
    v = np.concatenate([1.7e9 + rng.uniform(0, 1e8, 200_000),
                        np.round(1.7e9 + rng.uniform(0, 1e6, 50_000), 3),
                        rng.uniform(-1e9, 4e9, 50_000), np.arange(-3, 3) * 0.5,
                        [1.0000000005, -1.0000000005, 1e-9, 1700000180.637]])
    s = pd.Series(v, index=np.arange(v.size) * 2, name="ts")
    ref = pd.to_datetime(s, unit="s", utc=True).astype(schema.UTC_TS)
    got = _to_utc(s, "points", "ts")
    pd.testing.assert_series_equal(got, ref)
    # NaN and out-of-range values go through pandas itself
    odd = pd.Series([1.7e9, np.nan, 1.5])
    pd.testing.assert_series_equal(_to_utc(odd, "points", "ts"),
                                   pd.to_datetime(odd, unit="s", utc=True).astype(schema.UTC_TS))
    # an already-UTC column comes back as it is
    assert _to_utc(ref, "points", "ts") is ref
    # from_unix: the same rounding, NaN as NaT, the pipeline's way to its timestamp columns
    with_nan = np.concatenate([v, [np.nan, np.nan]])
    pd.testing.assert_series_equal(
        schema.from_unix(with_nan),
        pd.Series(pd.to_datetime(with_nan, unit="s", utc=True)).astype(schema.UTC_TS))
    assert schema.from_unix([]).dtype == schema.UTC_TS
    with pytest.raises(pd.errors.OutOfBoundsDatetime):  # year 5138: pandas says why
        schema.from_unix([1e11])


def test_conforms_only_when_coerce_would_change_nothing():
    import pandas as pd

    from emission_ext import schema

    t = schema.empty("places")
    assert schema.conforms(t, "places")
    assert schema.conforms(t.assign(extra=[]), "places")  # extra columns after: kept as is
    assert not schema.conforms(t[list(t.columns[::-1])], "places")  # order
    assert not schema.conforms(t.drop(columns=["tz"]), "places")  # a column missing
    assert not schema.conforms(t.assign(lat=t["lat"].astype(object)), "places")  # dtype
    assert not schema.conforms(t.assign(user_id=pd.Series([], dtype=object)), "places")
