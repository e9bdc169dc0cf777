"""CLI commands, one module each; every module exposes a click object named ``command``.

:mod:`emission_ext.cli` discovers them. Helpers shared by several commands live in
:mod:`emission_ext.commands._common`.
"""
