"""The ``qtool`` command: thin Click commands over the library.

Exit codes: 0 ok; 2 bad input (one line on stderr, no traceback); 130
interrupted; 1 only for an unexpected internal failure.
"""

from __future__ import annotations

import logging
import sys

import click

from qtool import __version__
from qtool.errors import Interrupted, QtoolError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qtool")
@click.option("json_", "--json", is_flag=True, help="Machine-readable JSON on stdout.")
@click.pass_context
def cli(ctx: click.Context, json_: bool) -> None:
    """Quantize, export, benchmark and release Qwen-VL-family models."""
    ctx.obj = {"json": json_}


def _register() -> None:
    from qtool.cli import ask, bench, calib, eval, export, models, plan, quantize, release

    for module in (models, calib, quantize, bench, plan, eval, export, release, ask):
        for command in module.command if isinstance(module.command, tuple) else (module.command,):
            cli.add_command(command)


_register()

# The CLI owns its stderr: keep library chatter that is not ours off it (torch warns when torchao,
# pulled in by gptqmodel, registers its enums; transformers logs load details).
for _noisy in ("torch.utils._pytree", "transformers", "gptqmodel"):
    logging.getLogger(_noisy).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, standalone_mode=False)
    except Interrupted as exc:
        click.echo(f"interrupted: {exc}", err=True)
        sys.exit(exc.exit_code)
    except QtoolError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("interrupted: stopped cleanly, no partial output was kept", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted: stopped cleanly, no partial output was kept", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        hint = f"; run '{exc.ctx.command_path} --help'" if exc.ctx else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(0)
