"""The PostgreSQL server the cooperative state will live in: reachable, transactional.

CI makes these mandatory (``EMISSION_EXT_REQUIRE_POSTGRES=1`` in ``.ci/run``): an unreachable
server fails the run instead of skipping. No product feature stores data in PostgreSQL yet.
"""
import uuid

import pytest

pytestmark = pytest.mark.postgres


def test_server_keeps_committed_rows_and_discards_rolled_back_ones(postgres_url):
    import sqlalchemy as sa

    name = f"emission_ext_check_{uuid.uuid4().hex[:8]}"
    eng = sa.create_engine(postgres_url)
    try:
        with eng.begin() as conn:
            conn.execute(sa.text(f"create table {name} (id text primary key, n int)"))
            conn.execute(sa.text(f"insert into {name} values ('010', 1)"))
        with pytest.raises(sa.exc.IntegrityError):
            with eng.begin() as conn:
                conn.execute(sa.text(f"insert into {name} values ('011', 2)"))
                conn.execute(sa.text(f"insert into {name} values ('010', 3)"))  # duplicate key
        with eng.connect() as conn:
            rows = conn.execute(sa.text(f"select id, n from {name} order by id")).all()
        assert rows == [("010", 1)]  # leading zero kept, the failed transaction left nothing
    finally:
        with eng.begin() as conn:
            conn.execute(sa.text(f"drop table if exists {name}"))
        eng.dispose()
