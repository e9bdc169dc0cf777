"""``emission-ext export-carbon``: the monthly CO2e records for the cooperative aggregator.

Why: with each tester's consent, one ``co2-emissions-monthly`` record per tester per month,
plus the group total only when enough testers contribute. Consent will come from the
cooperative API; until then it is a file of consenting user ids (one per line, ``#`` comments
allowed, or a JSON list).
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import InputError
from ._carbon import carbon_options, footprint_of, read_inputs
from ._store import open_ctx_store, store_option


def read_consent(path: str) -> set[str]:
    """User ids from a consent file (JSON list of strings, or one id per line)."""
    text = Path(path).read_text(encoding="utf-8-sig")
    if text.lstrip().startswith("["):
        try:
            ids = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(path, f"invalid JSON ({exc.msg})", line=exc.lineno) from None
        if not all(isinstance(u, str) for u in ids):
            raise InputError(path, "a JSON consent file is a list of user-id strings")
        return set(ids)
    out = set()
    for i, line in enumerate(text.splitlines(), 1):
        u = line.split("#", 1)[0].strip()
        if not u:
            continue
        if any(c.isspace() for c in u) or "," in u:
            raise InputError(path, f"one user id per line, got {u!r}", line=i)
        out.add(u)
    return out


@click.command("export-carbon")
@click.option("--month", required=True, metavar="YYYY-MM", help="The month to export.")
@click.option("--consent-file", "consent_file", required=True, type=click.Path(dir_okay=False, exists=True),
              help="Consenting user ids: one per line, or a JSON list.")
@click.option("--threshold", type=click.IntRange(min=1), default=5, show_default=True,
              help="Publish the group total only with at least this many contributors.")
@click.option("--out", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the JSON here [default: stdout].")
@carbon_options
@store_option
@click.pass_context
def command(ctx, month, consent_file, threshold, out, construction, car_cost, occupancy, factors_path,
            tariffs_path, store, store_db):
    """Monthly co2-emissions-monthly records of the consenting testers (+ group total)."""
    from carbon.aggregator import monthly_export

    consenting = read_consent(consent_file)
    st = open_ctx_store(ctx, store, store_db)
    users = sorted(consenting & set(st.users("sections")))
    if users:
        data = read_inputs(st, users)
        fp, _, _ = footprint_of(data, construction, occupancy, car_cost, factors_path, tariffs_path)
    else:  # nobody who consented has data: an empty export, the group withheld
        from .. import schema

        data = read_inputs(st, ["-"])
        fp = schema.empty("footprint")
    payload = monthly_export(fp, data.sections, data.testers, consenting, month, threshold)
    if len(fp):
        payload["factor_version"] = fp["factor_version"].iloc[0]
    text = json.dumps(payload, indent=1, ensure_ascii=False)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
        click.echo(f"{len(payload['records'])} record(s) written to {out}; group "
                   + ("published" if payload["group"] else f"withheld ({payload['group_withheld_reason']})"),
                   err=True)
    else:
        click.echo(text)
