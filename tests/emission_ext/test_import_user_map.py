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
