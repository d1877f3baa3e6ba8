"""Run an exported GGUF pair (language model + mmproj) with llama-cpp-python; no torch needed.

Images go through llama.cpp's own multimodal path (mtmd) and the prompt through the chat template
stored in the GGUF, exactly as a user of llama-cpp-python would run the files::

    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import MTMDChatHandler
    llm = Llama("model-q4_k_m.gguf", chat_handler=MTMDChatHandler("mmproj-model-f16.gguf"), n_ctx=4096)
    llm.create_chat_completion(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "file:///path/to/image.png"}},
        {"type": "text", "text": "What colour is the circle?"}]}], temperature=0)
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np
from PIL import Image

from qtool.errors import QtoolError
from qtool.models.chat import openai_user_turn, png_bytes

INSTALL_FIX = "install the llama extra: pip install -c constraints.txt -e '.[llama]' (make install does)"


def llama_cpp():
    """The llama_cpp module, or a one-line error saying how to install it."""
    try:
        import llama_cpp
    except ImportError:
        raise QtoolError("llama-cpp-python is not installed", INSTALL_FIX) from None
    return llama_cpp


def quiet_logs() -> None:
    """``verbose=False`` quiets llama.cpp; mtmd (the image path) logs through its own callbacks."""
    if getattr(quiet_logs, "callback", None) is not None:
        return
    lc = llama_cpp()
    from llama_cpp import mtmd_cpp

    @lc.llama_log_callback
    def drop(level, text, user_data):     # noqa: ARG001
        return None

    quiet_logs.callback = drop             # a ctypes callback must outlive its registration
    mtmd_cpp.mtmd_log_set(drop, ctypes.c_void_p(0))
    mtmd_cpp.mtmd_helper_log_set(drop, ctypes.c_void_p(0))


class GGUFModel:
    """A qwen2vl GGUF and its mmproj, answering image questions greedily."""

    def __init__(self, model: str | Path, mmproj: str | Path | None = None, *, n_ctx: int = 4096,
                 threads: int | None = None, logits_all: bool = False):
        lc = llama_cpp()
        from llama_cpp.llama_chat_format import MTMDChatHandler

        quiet_logs()
        for file in (model, mmproj):
            if file is not None and not Path(file).is_file():
                raise QtoolError(f"GGUF file {file} does not exist", "run `qtool export gguf` first")
        threads = threads or max(1, os.cpu_count() or 1)
        handler = MTMDChatHandler(clip_model_path=str(mmproj), verbose=False) if mmproj else None
        self.llm = lc.Llama(model_path=str(model), chat_handler=handler, n_ctx=n_ctx, n_threads=threads,
                            n_threads_batch=threads, logits_all=logits_all, verbose=False)

    def answer(self, image: Image.Image | None, question: str, max_tokens: int = 32) -> str:
        reply = self.llm.create_chat_completion(
            messages=[openai_user_turn(image, question)], max_tokens=max_tokens,
            temperature=0.0, top_k=1, repeat_penalty=1.0)
        return reply["choices"][0]["message"]["content"].strip()

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode(), add_bos=False, special=True)

    def logits(self, ids: list[int]) -> np.ndarray:
        """Logits at every position of a text-only prompt (needs ``logits_all=True``)."""
        self.llm.reset()
        self.llm.eval(ids)
        return np.array(self.llm.scores[: len(ids)], dtype=np.float32)


def image_embeddings(model: GGUFModel, image: Image.Image) -> np.ndarray:
    """The mmproj's output for one image: [tokens, the language model's input width], as it receives it."""
    from llama_cpp import mtmd_cpp

    handler = model.llm.chat_handler
    handler._init_mtmd_context(model.llm)          # noqa: SLF001 - the handler owns the mtmd context
    ctx = handler.mtmd_ctx
    bitmap = handler._create_bitmap_from_bytes(png_bytes(image))   # noqa: SLF001
    chunks = mtmd_cpp.mtmd_input_chunks_init()
    try:
        text = mtmd_cpp.mtmd_input_text()
        prompt = mtmd_cpp.mtmd_default_marker()
        text.text, text.text_len, text.add_special, text.parse_special = prompt, len(prompt), False, True
        bitmaps = (mtmd_cpp.mtmd_bitmap_p_ctypes * 1)(bitmap)
        if mtmd_cpp.mtmd_tokenize(ctx, chunks, ctypes.byref(text), bitmaps, 1) != 0:
            raise QtoolError("llama.cpp could not tokenize the image", "check the mmproj file matches the model")
        for i in range(mtmd_cpp.mtmd_input_chunks_size(chunks)):
            chunk = mtmd_cpp.mtmd_input_chunks_get(chunks, i)
            if mtmd_cpp.mtmd_input_chunk_get_type(chunk) != mtmd_cpp.MTMD_INPUT_CHUNK_TYPE_IMAGE:
                continue
            n = mtmd_cpp.mtmd_input_chunk_get_n_tokens(chunk)
            if mtmd_cpp.mtmd_encode_chunk(ctx, chunk) != 0:
                raise QtoolError("llama.cpp failed to encode the image", "check the mmproj file")
            # the language model's input width: Qwen3-VL's rows carry the DeepStack features after the merger's
            width = llama_cpp().llama_model_n_embd_inp(model.llm.model)
            out = mtmd_cpp.mtmd_get_output_embd(ctx)
            return np.ctypeslib.as_array(out, shape=(n * width,)).reshape(n, width).copy()
    finally:
        mtmd_cpp.mtmd_input_chunks_free(chunks)
        mtmd_cpp.mtmd_bitmap_free(bitmap)
    raise QtoolError("llama.cpp produced no image chunk", "check the mmproj file matches the model")
