"""An OpenAI-compatible chat client for measuring and checking a server: image requests, streamed answers,
time to first token and inter-token latency per request, many requests in flight at once."""

from __future__ import annotations

import http.client
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image

from qtool.models.chat import first_token_logprobs, openai_user_turn


@dataclass
class Reply:
    text: str = ""
    output_tokens: int = 0
    ttft_s: float | None = None
    last_s: float | None = None      # when the last token arrived
    total_s: float = 0.0
    error: str | None = None

    @property
    def itl_s(self) -> float | None:
        """Mean time between this request's output tokens after the first (chunks may carry several tokens
        and arrive in one read, so per-chunk gaps would not measure the server)."""
        if self.ttft_s is None or self.output_tokens < 2:
            return None
        return (self.last_s - self.ttft_s) / (self.output_tokens - 1)


def next_token_logprobs(port: int, model: str, image: Image.Image, question: str, k: int = 5,
                        by_id: bool = False) -> dict[str | int, float]:
    """The top-``k`` log-probabilities of the first answer token, by token text or, ``by_id``, by token id (vLLM's
    OpenAI API)."""
    body = {"model": model, "temperature": 0, "max_tokens": 1, "logprobs": True, "top_logprobs": k,
            "return_tokens_as_token_ids": by_id, "messages": [openai_user_turn(image, question)]}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
        reply = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    got = first_token_logprobs(reply)
    return {int(t.removeprefix("token_id:")): v for t, v in got.items()} if by_id else got


def chat(port: int, model: str, image: Image.Image, question: str, *, max_tokens: int = 32,
         ignore_eos: bool = False, disconnect_after: int | None = None, timeout: float = 600) -> Reply:
    """One greedy, streamed chat completion; ``ignore_eos``: exactly ``max_tokens`` new tokens (vLLM's extension);
    ``disconnect_after`` chunks: drop the connection mid-stream."""
    # logprobs: every streamed token is listed, also one whose text is empty (a random-weight model's special or
    # partial-UTF-8 tokens), so time to first token and inter-token latency count tokens, not visible text
    body = {"model": model, "temperature": 0, "max_tokens": max_tokens, "stream": True, "ignore_eos": ignore_eos,
            "stream_options": {"include_usage": True}, "logprobs": True,
            "messages": [openai_user_turn(image, question)]}
    reply, start = Reply(), time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            reply.error = f"HTTP {resp.status}: {resp.read()[:200]!r}"
            return reply
        chunks = 0
        for raw in resp:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if event.get("usage"):
                reply.output_tokens = event["usage"]["completion_tokens"]
            for choice in event.get("choices", []):
                piece = choice.get("delta", {}).get("content") or ""
                if not piece and not (choice.get("logprobs") or {}).get("content"):
                    continue
                now = time.perf_counter() - start
                reply.ttft_s = now if reply.ttft_s is None else reply.ttft_s
                reply.last_s, chunks = now, chunks + 1
                reply.text += piece
            if disconnect_after is not None and chunks >= disconnect_after:
                return reply
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reply.error = f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
        reply.total_s = time.perf_counter() - start
    reply.text = reply.text.strip()
    return reply


def run_load(port: int, model: str, requests: list[tuple[Image.Image, str]], concurrency: int,
             max_tokens: int = 32, ignore_eos: bool = False) -> tuple[list[Reply], float]:
    """Every request, at most ``concurrency`` in flight; the replies in request order and the wall time."""
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        replies = list(pool.map(lambda r: chat(port, model, r[0], r[1], max_tokens=max_tokens, ignore_eos=ignore_eos),
                                requests))
    return replies, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summarize(replies: list[Reply], wall_s: float, concurrency: int) -> dict:
    ok = [r for r in replies if r.error is None]
    ttft = [r.ttft_s for r in ok if r.ttft_s is not None]
    itl = [r.itl_s for r in ok if r.itl_s is not None]
    tokens = sum(r.output_tokens for r in ok)
    return {"concurrency": concurrency, "requests": len(replies), "failed": len(replies) - len(ok),
            "requests_per_s": len(ok) / wall_s, "output_tok_s": tokens / wall_s,
            "ttft_p50_ms": 1000 * percentile(ttft, 50) if ttft else None,
            "ttft_p99_ms": 1000 * percentile(ttft, 99) if ttft else None,
            "itl_p50_ms": 1000 * percentile(itl, 50) if itl else None,
            "itl_p99_ms": 1000 * percentile(itl, 99) if itl else None,
            "mean_output_tokens": statistics.mean(r.output_tokens for r in ok) if ok else None, "wall_s": wall_s}
