"""The ``qtool`` command: thin Click commands over the library.

Exit codes: 0 ok; 2 bad input (one line on stderr, no traceback); 130
interrupted; 1 only for an unexpected internal failure.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings

import click

from qtool import __version__
from qtool.errors import Interrupted, QtoolError

# command -> the module that defines it: imported only when the command runs (or --help lists them), so a
# command loads only what it uses, and a bad input is answered before torch and transformers are imported
COMMANDS = {
    "models": "models", "calib": "calib", "quantize": "quantize", "bench": "bench", "plan": "plan",
    "eval": "eval", "export": "export", "release": "release", "verify": "release", "serve": "serve", "ask": "ask",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"qtool.cli.{COMMANDS[name]}")
        commands = module.command if isinstance(module.command, tuple) else (module.command,)
        return next(c for c in commands if c.name == name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qtool")
@click.option("json_", "--json", is_flag=True, help="Machine-readable JSON on stdout.")
@click.option("--verbose", is_flag=True, help="Also show third-party libraries' logs, warnings and progress bars.")
@click.pass_context
def cli(ctx: click.Context, json_: bool, verbose: bool) -> None:
    """Quantize, export, benchmark and release Qwen-VL-family models."""
    ctx.obj = {"json": json_}
    if not verbose:
        quiet_libraries()


def quiet_libraries() -> None:
    """qtool prints its own progress and results; the libraries under it (transformers, torch.onnx, onnxscript,
    gguf, GPTQModel) log INFO lines, warnings and load bars of their own. Set before any of them is imported,
    and inherited by the worker processes commands start."""
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    for var in ("HF_HUB_DISABLE_PROGRESS_BARS", "TQDM_DISABLE", "TRANSFORMERS_NO_ADVISORY_WARNINGS"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    os.environ.setdefault("TORCH_LOGS", "-all")


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
