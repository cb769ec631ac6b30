"""The root ``gateway`` group: error handling, and the subgroups.

Every coded failure (``CODED_ERRORS``) becomes one line on stderr,
``error: <code>: <message>``, and exit status 1. Anything else is a bug: it prints
``error: internal.bug: <type>`` and exits 70, with the traceback only when
``GATEWAY_DEBUG=1`` (a traceback could carry data we never want in a terminal log).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from gateway.errors import CODED_ERRORS


class CodedFailure(click.ClickException):
    exit_code = 1

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.code}: {self.message}", err=True)


class GatewayGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CODED_ERRORS as e:
            raise CodedFailure(getattr(e, "code", "error"), getattr(e, "message", str(e))) from e
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            raise click.exceptions.Exit(130) from None
        except Exception as e:
            if os.environ.get("GATEWAY_DEBUG") == "1":
                raise
            click.echo(f"error: internal.bug: {type(e).__name__} (GATEWAY_DEBUG=1 shows more)",
                       err=True)
            sys.exit(70)


@click.group(cls=GatewayGroup)
@click.version_option(package_name="kzby-gateway")
def cli() -> None:
    """KZ-BY secure document-exchange gateway."""


def _register() -> None:
    from gateway.cli import admin, client, demo, envelope, keys, ledger, node, retention

    for module in (keys, envelope, ledger, node, admin, client, retention, demo):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()
