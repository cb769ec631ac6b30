"""``python -m gateway.cli``: the same as the ``gateway`` command."""

from gateway.cli.main import cli

cli(prog_name="gateway")
