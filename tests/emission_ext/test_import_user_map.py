"""`import ... --user-map`: e-mission uuids renamed to tester ids, bad maps rejected."""
import pytest
from click.testing import CliRunner

from emission_ext.cli import cli
from emission_ext.commands.import_ import read_user_map
from emission_ext.errors import InputError
from emission_ext.io.readers import read
from emission_ext.reference import emission_real_days


def test_user_map_renames_uuids_in_every_table(tmp_path):
    day = emission_real_days()[0]
    raw = read(day)
    uuid = raw.users[0]
    m = tmp_path / "map.csv"
    m.write_text(f"emission_uuid,user_id\n{uuid},010\n")
    mapped = raw.with_user_ids(read_user_map(str(m)))
    assert mapped.users == ["010"]
    assert len(mapped.points) == len(raw.points) and set(mapped.tz) == {"010"}

    res = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "d"), "import", "emission",
                                   str(day), "--user-map", str(m)])
    assert res.exit_code == 0, res.output
    assert "users: 1 (010)" in res.output


@pytest.mark.parametrize("text,where", [
    ("uuid,tester\nabc,1\n", "field 'user_id'"),
    ("emission_uuid,user_id\nabc,\n", "line 2"),
    ("emission_uuid,user_id\nabc,1\nabc,2\n", "line 3"),
])
def test_bad_user_map_names_line_and_field(tmp_path, text, where):
    m = tmp_path / "map.csv"
    m.write_text(text)
    with pytest.raises(InputError) as err:
        read_user_map(str(m))
    assert where in str(err.value) and str(m) in str(err.value)


def test_import_testers_adds_then_updates_and_rejects_bad_values(tmp_path):
    csv = tmp_path / "testers.csv"
    csv.write_text("user_id,tz,car_fuel,car_size,car_fiscal_hp,yelo_pass,extra\n"
                   "001,Europe/Paris,petrol,petite,4,none,x\n002,Europe/Paris,,,,monthly,y\n")
    args = ["--data-dir", str(tmp_path / "d"), "import", "testers", str(csv)]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0 and "2 added or updated (0 unchanged)" in first.output
    assert "0 added or updated (2 unchanged)" in CliRunner().invoke(cli, args).output
    csv.write_text(csv.read_text().replace("petrol,petite", "electric,petite"))
    assert "1 added or updated (1 unchanged)" in CliRunner().invoke(cli, args).output
    from emission_ext.stores import open_store
    assert open_store(str(tmp_path / "d")).read("testers", ["001"])["car_fuel"].tolist() == ["electric"]

    csv.write_text(csv.read_text().replace("electric,petite", "coal,petite"))
    bad = CliRunner().invoke(cli, args)
    assert isinstance(bad.exception, InputError)  # main() turns it into exit code 2
    assert "line 2, field 'car_fuel'" in str(bad.exception)
