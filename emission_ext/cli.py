"""The ``emission-ext`` command line: a thin click shell over the runner, stores and algorithms.

Why: operators drive the product from here. Each command lives in its own module under
:mod:`emission_ext.commands` and exposes a click object named ``command``; this module finds
them, so adding a command never means editing a shared file. Errors caused by the user
(:class:`~emission_ext.errors.EmissionExtError`, bad options) end with a one-line message and
exit code 2, never a traceback.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from . import __version__
from .errors import EmissionExtError

DEFAULT_DATA_DIR = "./traces-data"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--data-dir", type=click.Path(file_okay=False), default=DEFAULT_DATA_DIR,
              envvar="EMISSION_EXT_DATA_DIR", show_default=True,
              help="Embedded store (Parquet files) directory.")
@click.version_option(__version__, prog_name="emission-ext")
@click.pass_context
def cli(ctx: click.Context, data_dir: str) -> None:
    """TRACES extension for La Rochelle: trips, modes, operator records, carbon and cost."""
    ctx.ensure_object(dict)
    ctx.obj["data_dir"] = data_dir


def _register() -> None:
    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{commands.__name__}.{info.name}")
        cmd = getattr(mod, "command", None)
        if isinstance(cmd, click.Command):
            cli.add_command(cmd)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="emission-ext", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.exceptions.ClickException as exc:  # bad options/arguments
        exc.show()
        sys.exit(2)
    except EmissionExtError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
