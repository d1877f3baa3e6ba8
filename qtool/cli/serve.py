"""``qtool serve``: one model or artifact behind vLLM's OpenAI-compatible server."""

from __future__ import annotations

import click

from qtool.cli.output import status
from qtool.serve import serve


@click.command("serve")
@click.argument("model")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--tp", type=click.IntRange(min=1), default=1, show_default=True, help="Tensor-parallel ranks.")
@click.option("--max-model-len", type=click.IntRange(min=64), default=2048, show_default=True,
              help="Longest prompt + answer in tokens (an image takes its visual tokens).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="What the vLLM environment runs on (make serve-env builds the CPU one).")
def command(model, port, tp, max_model_len, device):
    """Serve MODEL (a checkpoint, a bundled name or a gptq/awq artifact) with vLLM until Ctrl-C.

    \b
    Images go in as OpenAI image_url content parts (data: URLs). Example:
      qtool serve out/tiny-gptq-int4 --port 8000
      curl localhost:8000/v1/chat/completions -d '{"model": "tiny-gptq-int4", "messages": [...]}'
    """
    serve(model, port=port, tp=tp, max_model_len=max_model_len, device=device, status=status.print)
