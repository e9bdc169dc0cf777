"""Operator records: consistent with the true trips, exported with the configured faults."""
from __future__ import annotations

import numpy as np
import pandas as pd

from emission_ext import schema


def _window(world):
    s = world.truth_sections.set_index(["user_id", "section_id"])
    t = world.truth_trips.set_index(["user_id", "trip_id"])
    return s, t


def test_every_record_kind_occurs_and_maps_to_its_true_section(world):
    r, rt = world.records, world.record_truth
    assert {"yelo_bus", "yelo_car", "parking"} <= set(r["source"])
    assert len(rt) == len(r) and rt["record_id"].is_unique
    s, t = _window(world)
    m = r.merge(rt, on=["record_id", "source", "user_id"], suffixes=("", "_true"))
    seen = m[m["section_id_true"].notna()]
    sec = s.loc[list(zip(seen["user_id"], seen["section_id_true"]))]
    mode_of = dict(yelo_bus="BUS", yelo_boat="FERRY", yelo_bike="BIKESHARE", yelo_car="CARSHARE", parking="CAR")
    assert (sec["mode"].to_numpy() == seen["source"].map(mode_of).to_numpy()).all()
    start = seen["start_ts"].to_numpy()
    s0, s1 = sec["start_ts"].to_numpy(), sec["end_ts"].to_numpy()
    # validations inside the ride (a few seconds after boarding), rentals/bookings start with the
    # section, parking sessions start when the car arrives
    v = seen["source"].isin(["yelo_bus", "yelo_boat"]).to_numpy()
    assert ((start[v] >= s0[v]) & (start[v] <= s1[v])).all()
    other = seen["source"].isin(["yelo_bike", "yelo_car"]).to_numpy()
    assert (start[other] == s0[other]).all()
    pk = (seen["source"] == "parking").to_numpy()
    assert (start[pk] == s1[pk]).all()
    # records of trips the phone missed have no section but keep their trip
    missed = rt[rt["phone_missed"]]
    assert missed["section_id"].isna().all() and missed["trip_id"].notna().all()
    off = world.truth_trips.loc[world.truth_trips["phone_off"], ["user_id", "trip_id"]]
    assert set(zip(missed["user_id"], missed["trip_id"])) <= set(zip(off["user_id"], off["trip_id"]))


def _parse(s):
    return pd.to_datetime(s, utc=True, format="ISO8601", errors="coerce")


def test_operator_files_carry_skew_duplicates_missing_and_malformed_rows(world):
    f = world.operator_files
    rt = world.record_truth.set_index("record_id")
    v = f["yelo_validations.csv"]
    assert list(v.columns) == ["validation_id", "card_id", "validated_at", "stop_id", "route_id",
                               "fare_product", "amount_eur"]
    assert v["validation_id"].duplicated().any()                 # duplicated rows
    assert (rt["fault"] == "malformed").any()
    assert (rt.loc[rt["source"].isin(["yelo_bus", "yelo_boat"]), "fault"] == "missing").any() or len(v) < 20
    n_missing = (rt["fault"] == "missing").sum()
    bus = world.records[world.records["source"].isin(["yelo_bus", "yelo_boat"])]
    assert v["validation_id"].replace("", np.nan).dropna().nunique() + n_missing >= len(bus) - 3
    # clock skew: a minute or two, the same sign for the whole file
    ok = v[v["validation_id"] != ""].drop_duplicates("validation_id")
    t_file = _parse(ok["validated_at"])
    truth = world.records.set_index("record_id").loc[ok["validation_id"], "start_ts"]
    skew = schema.to_unix(t_file) - schema.to_unix(truth)
    good = ~np.isnan(skew)
    assert good.sum() > 0
    assert (np.abs(skew[good]) >= 50).all() and (np.abs(skew[good]) <= 130).all()
    assert len(np.unique(np.sign(skew[good]))) == 1
    # timestamps carry the Paris offset
    assert ok["validated_at"].str.contains(r"\+01:00$").mean() > 0.9


def test_no_faults_means_clean_exports(clean_world):
    f = clean_world.operator_files
    rt = clean_world.record_truth
    assert (rt["fault"].fillna("none") == "none").all()
    assert (rt["skew_s"].fillna(0) == 0).all()
    for name, df in f.items():
        if name != "card_map.csv" and len(df):
            assert not df.iloc[:, 0].duplicated().any()
    assert not rt["phone_missed"].any()


def test_card_map_maps_every_account(world):
    cm = world.operator_files["card_map.csv"]
    t = world.testers
    cards = t.dropna(subset=["yelo_card_id"])
    assert set(cm.loc[cm["operator"] == "yelo", "account_id"]) == set(cards["yelo_card_id"])
    pk = t.dropna(subset=["parking_account_id"])
    assert set(cm.loc[cm["operator"] == "parking", "account_id"]) == set(pk["parking_account_id"])
    assert set(world.records["user_id"]) <= set(t["user_id"])
    # parking accounts only for subscribers, whose sessions are at their car park
    p = world.records[world.records["source"] == "parking"].merge(t, on="user_id")
    assert (p["car_park_id"] == p["parking_subscription"]).all()


def test_transfer_trips_have_a_second_validation_on_another_line_within_the_hour(world):
    s = world.truth_sections
    bus = s[s["mode"] == "BUS"]
    two = bus.groupby(["user_id", "trip_id"]).filter(lambda g: len(g) >= 2)
    assert len(two) >= 2
    rt = world.record_truth.merge(world.records[["record_id", "source", "start_ts", "route_id", "amount_eur",
                                                 "fare_product"]], on=["record_id", "source"])
    n_checked = 0
    for (u, t), g in two.groupby(["user_id", "trip_id"]):
        v = rt[(rt["user_id"] == u) & (rt["trip_id"] == t) & (rt["source"] == "yelo_bus")].sort_values("start_ts")
        if len(v) < 2:
            continue   # no Yélo card: no record
        n_checked += 1
        assert v["route_id"].iloc[0] != v["route_id"].iloc[1]
        assert (v["start_ts"].iloc[1] - v["start_ts"].iloc[0]) < pd.Timedelta(hours=1)
        if v["fare_product"].iloc[1] == "TICKET_1H":
            assert v["amount_eur"].iloc[1] == 0.0       # the transfer is free within the hour
    assert n_checked >= 1


def test_parking_export_uses_naive_local_times(world):
    p = world.operator_files["parking_sessions.csv"]
    ok = p[p["session_id"] != ""].drop_duplicates("session_id")
    ok = ok[ok["entry_time"].str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")]
    assert len(ok) >= 1
    local = pd.to_datetime(ok["entry_time"]).dt.tz_localize("Europe/Paris")
    truth = world.records.set_index("record_id").loc[ok["session_id"], "start_ts"]
    rt = world.record_truth.set_index("record_id").loc[ok["session_id"], "skew_s"]
    err = schema.to_unix(local) - schema.to_unix(truth) - rt.to_numpy()
    assert np.abs(err).max() < 1.5        # naive Paris time + the file's skew = the true time
