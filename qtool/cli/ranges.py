"""The range of every integer option, so click refuses 0, negative and absurd values in one line before any work.

Options whose valid values depend on the profile (``--bits``, ``--group-size``) are checked by the profile.
"""

import click

COUNT = click.IntRange(min=1)                 # samples, repeats, questions, records
THREADS = click.IntRange(1, 1024)
IMAGE_TOKENS = click.IntRange(1, 16384)       # what one image can take in Qwen2-VL's processor limits
TOKENS = click.IntRange(64, 1 << 20)          # context and model lengths
SEED = click.IntRange(0, 2**63 - 1)


def int_list(text: str) -> tuple[int, ...]:
    """A comma-separated list of integers (``--gen 64,256``)."""
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of integers") from None
