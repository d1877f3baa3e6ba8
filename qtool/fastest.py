"""Which engine and precision decode fastest on a device class: measured, with the record behind every number.

The table (fastest.toml beside this file) is written by ``benchmarks/fastest_table.py`` from bench records:
`qtool bench` (torch and llama.cpp rows, measured in one run) and `qtool bench --engine vllm` (serving rows).
They were measured on real model shapes with random weights: speed only. ``plan`` and ``serve`` read it.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from qtool.machine import device_class

TABLE = Path(__file__).with_name("fastest.toml")
ENGINE_NAMES = {"torch": "transformers", "llamacpp": "llama.cpp", "vllm": "vLLM"}


@dataclass(frozen=True)
class Measured:
    device_class: str
    model: str            # the shape measured (random weights)
    engine: str           # torch, llamacpp or vllm
    profile: str
    kernel: str
    concurrency: int      # requests in flight (1 for qtool bench)
    tok_s: float          # decoded tokens per second over all requests in flight
    vs_bf16: float        # tok_s / the same engine's bf16 row in the same record (0 where it has none)
    record: str


def from_record(record: dict, path: str, model: str, klass: str | None = None) -> list[Measured]:
    """Rows of one bench record (bench.json or serving.json); ``klass`` only for records without cpu_flags."""
    flags = record["machine"].get("cpu_flags")
    gpu = record["machine"].get("gpu")
    klass = "cuda" if gpu else device_class("cpu", flags) if flags is not None else klass
    if klass is None:
        raise ValueError(f"{path} does not record its CPU's flags: give its device class")
    if "rows" in record:   # a serving record
        base = {r["concurrency"]: r["output_tok_s"] for r in record["rows"] if r["profile"] == "bf16"}
        return [Measured(klass, model, "vllm", r["profile"], record["settings"]["engine"], r["concurrency"],
                         round(r["output_tok_s"], 2), _ratio(r["output_tok_s"], base.get(r["concurrency"])), path)
                for r in record["rows"]]
    rows = []
    decode = {r["profile"]: r["lengths"][0]["decode_tok_s_median"] for r in record["records"]}
    for r in record["records"]:
        engine = "llamacpp" if r["kernel"].startswith("llama.cpp") else "torch"
        rows.append(Measured(klass, model, engine, r["profile"], r["kernel"], 1, round(decode[r["profile"]], 2),
                             _ratio(decode[r["profile"]], decode.get("bf16")), path))
    return rows


def _ratio(value: float, base: float | None) -> float:
    return round(value / base, 2) if base else 0.0


def to_toml(rows: list[Measured]) -> str:
    out = ["# Written by benchmarks/fastest_table.py from the records named; rerun it, do not edit by hand.\n"]
    for row in rows:
        out.append("[[measured]]")
        out += [f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in asdict(row).items()]
        out.append("")
    return "\n".join(out)


def load(table: Path = TABLE) -> list[Measured]:
    names = {f.name for f in fields(Measured)}
    return [Measured(**{k: v for k, v in r.items() if k in names})
            for r in tomllib.loads(table.read_text()).get("measured", [])]


def _line(row: Measured, engine: bool = True) -> str:
    ratio = f", {row.vs_bf16}x its bf16" if row.vs_bf16 and row.profile != "bf16" else ""
    return f"{ENGINE_NAMES[row.engine] + ' ' if engine else ''}{row.profile} {row.tok_s} tok/s{ratio}"


def _rows(klass: str, model: str | None, table: Path) -> list[Measured]:
    """One request at a time on ``klass``; ``model``'s own shape where it was measured, else every shape."""
    rows = [r for r in load(table) if r.device_class == klass and r.concurrency == 1]
    return [r for r in rows if r.model == model] or rows


def advice(device: str, model: str | None = None, too_big: set[str] = frozenset(), table: Path = TABLE) -> list[str]:
    """What plan prints: the fastest engine + precision measured on this device class (one request) and the
    best of each engine, leaving out the profiles in ``too_big``."""
    klass = device_class(device)
    rows = [r for r in _rows(klass, model, table) if r.profile not in too_big]
    if not rows:
        return [f"speed: nothing measured on {klass} yet; measure here with `qtool bench MODEL --engine all` "
                "and `qtool bench MODEL --engine vllm`"]
    best = {}
    for r in sorted(rows, key=lambda r: -r.tok_s):
        best.setdefault(r.engine, r)
    top = next(iter(best.values()))
    lines = [f"fastest measured on {klass} ({top.model} shape, random weights, one request): {_line(top)}"]
    lines += [f"  best in {ENGINE_NAMES[e]}: {_line(r, engine=False)} ({r.record})" for e, r in best.items()]
    return lines


# Closer than this is no clear win: the repeats of one row in the 2B-shape records differ by up to 7%.
CLEAR_WIN = 1.15


def serving_advice(device: str, profile: str, model: str | None = None, table: Path = TABLE) -> str | None:
    """What serve prints when vLLM was measured on this device class: how the served precision compares."""
    klass = device_class(device)
    rows = {r.profile: r for r in _rows(klass, model, table) if r.engine == "vllm"}
    if profile not in rows:
        return None
    best, mine = max(rows.values(), key=lambda r: r.tok_s), rows[profile]
    if best.tok_s < mine.tok_s * CLEAR_WIN:
        return f"{profile} is as fast as any precision measured in vLLM on {klass} ({mine.record})"
    return (f"on {klass} vLLM decoded {profile} at {mine.tok_s} tok/s and {best.profile} at {best.tok_s} "
            f"(one request, {best.model} shape; {best.record}): serve {best.profile} for speed where it fits")
