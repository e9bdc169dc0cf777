"""The ``emission-ext`` command line: a thin click shell over the runner, stores and algorithms.

Why: operators drive the product from here. Each command lives in its own module under
:mod:`emission_ext.commands` and exposes a click object named ``command``; this module finds
them, so adding a command never means editing a shared file. They are imported lazily (only
the one being run), so a command's start-up does not pay for the others' imports. Errors
caused by the user (:class:`~emission_ext.errors.EmissionExtError`, bad options) end with a
one-line message and exit code 2, never a traceback.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from . import __version__
from .errors import EmissionExtError

DEFAULT_DATA_DIR = "./traces-data"


class _LazyGroup(click.Group):
    """A group whose commands are imported only when used.

    ``emission-ext process`` must not pay for importing every other command (carbon tables,
    scikit-learn, geopandas...). A command is looked up by the module its name suggests
    (``export-carbon`` -> ``export_carbon``, ``import`` -> ``import_``); listing the commands
    (``--help``) or an unexpected name imports them all, so discovery stays by module.
    """

    def _load(self, module: str) -> click.Command | None:
        from . import commands

        try:
            mod = importlib.import_module(f"{commands.__name__}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{commands.__name__}.{module}":
                raise  # a real missing dependency inside the command module
            return None
        cmd = getattr(mod, "command", None)
        if isinstance(cmd, click.Command):
            self.add_command(cmd)
            return cmd
        return None

    def _load_all(self) -> None:
        from . import commands

        for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
            if not info.name.startswith("_"):
                self._load(info.name)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        base = cmd_name.replace("-", "_")
        if not base.startswith("_") and base.isidentifier():
            for module in (base, base + "_"):
                cmd = self._load(module)
                if cmd is not None and cmd.name == cmd_name:
                    return cmd
        self._load_all()
        return self.commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_all()
        return sorted(self.commands)


@click.group(cls=_LazyGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--data-dir", type=click.Path(file_okay=False), default=DEFAULT_DATA_DIR,
              envvar="EMISSION_EXT_DATA_DIR", show_default=True,
              help="Embedded store (Parquet files) directory.")
@click.version_option(__version__, prog_name="emission-ext")
@click.pass_context
def cli(ctx: click.Context, data_dir: str) -> None:
    """TRACES extension for La Rochelle: trips, modes, operator records, carbon and cost."""
    ctx.ensure_object(dict)
    ctx.obj["data_dir"] = data_dir




#: What a command returns when everything it did is on disk and its files are closed: run
#: as the program, ``emission-ext`` then ends at once (:func:`os._exit` after the ``atexit``
#: handlers and a flush of stdout/stderr) instead of tearing down the interpreter, its
#: modules and objects one by one (~20-35 ms once pandas and pyarrow are loaded).
EXIT_NOW = "exit-now"


def _exit_now() -> None:
    """End the program at once, status 0 (see :data:`EXIT_NOW`)."""
    import atexit
    import os

    run = getattr(atexit, "_run_exitfuncs", None)
    if run is not None:
        run()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more to say
            pass
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        rv = cli.main(args=argv, prog_name="emission-ext", standalone_mode=False)
        if argv is None:  # the program itself (not a call from Python): it ends now, and
            if rv == EXIT_NOW:
                _exit_now()
            import gc     # its objects with it; frozen, they skip the interpreter's final
            gc.freeze()   # full collection (~0.1 s once pandas and pyarrow are loaded)
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
