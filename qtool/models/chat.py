"""Chat messages, for every consumer: a calibration record's conversation, a question's user turn (for transformers'
chat template, or with the image as a data URL for OpenAI-style APIs: vLLM's server, llama.cpp), and the answer
length every consumer stops at.

Calibration follows Qwen's own recipe: Qwen calibrated its Qwen2-VL releases on image+caption conversations (the
user shows an image and asks for a description, the assistant answers with the caption). A record with
``messages`` keeps its own turns; its image goes in front of the first user turn.
"""

from __future__ import annotations

import base64
import io

DESCRIBE = "Describe this image."
ANSWER_TOKENS = 24   # every consumer's cap on a greedy answer, so answers compare across consumers


def qwen_chat(text: str, messages: list[dict] | None = None) -> list[dict]:
    if not messages:
        return [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": DESCRIBE}]},
            {"role": "assistant", "content": [{"type": "text", "text": text}]},
        ]
    out, placed = [], False
    for m in messages:
        content = [{"type": "text", "text": m["content"]}]
        if m["role"] == "user" and not placed:
            content.insert(0, {"type": "image"})
            placed = True
        out.append({"role": m["role"], "content": content})
    return out


def user_turn(image, text: str) -> dict:
    """One user message: the image (if any) before the text, as Qwen-VL's chat template expects."""
    content = ([{"type": "image"}] if image is not None else []) + [{"type": "text", "text": text}]
    return {"role": "user", "content": content}


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(image) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()


def openai_user_turn(image, text: str) -> dict:
    """The same user message for OpenAI-style chat APIs (vLLM's server, llama.cpp): the image as a data URL."""
    content = ([{"type": "image_url", "image_url": {"url": data_url(image)}}] if image is not None else []) + [
        {"type": "text", "text": text}]
    return {"role": "user", "content": content}


def first_token_logprobs(reply: dict) -> dict[str, float]:
    """An OpenAI-style chat completion's top log-probabilities of its first token, by token text."""
    return {t["token"]: float(t["logprob"]) for t in reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"]}


def logprob_gap(a: dict[str | int, float], b: dict[str | int, float]) -> tuple[int, float]:
    """Two engines' top log-probabilities by token id or text: how many tokens both list, and the largest difference
    on them (infinite if none). Tokens that decode to '' or a partial character share one text, so by text they
    are left out."""
    shared = [t for t in set(a) & set(b) if not isinstance(t, str) or t.strip("\ufffd")]
    return len(shared), max((abs(a[t] - b[t]) for t in shared), default=float("inf"))
