"""What plan and serve call fastest: the shipped table against the records it cites, and the choice it makes."""

import json
from collections import defaultdict

from conftest import REPO, run_qtool

from benchmarks.fastest_table import rows_for
from qtool import fastest, machine
from qtool.fastest import Measured


def test_the_shipped_table_is_what_its_records_say():
    shipped = fastest.load()
    assert shipped
    by_record = defaultdict(list)
    for row in shipped:
        by_record[row.record, row.model, row.device_class].append(row)
    for (record, model, klass), rows in by_record.items():
        assert (REPO / record).is_file(), record
        assert rows_for(record, model, klass) == rows, f"{record} changed since the table was written: rerun it"


def test_device_class_is_the_widest_vector_extension():
    assert machine.device_class("cpu", ["avx2", "avx512f", "avx512_bf16", "amx_tile"]) == "cpu-amx_tile"
    assert machine.device_class("cpu", ["avx2", "avx512f", "avx512_bf16"]) == "cpu-avx512_bf16"
    assert machine.device_class("cpu", ["avx2"]) == "cpu-avx2"
    assert machine.device_class("cpu", []) == "cpu"
    assert machine.device_class("cuda") == "cuda"


def _table(tmp_path, here: str):
    def row(klass, engine, profile, tok_s, concurrency=1):
        return Measured(klass, "qwen2-vl-2b", engine, profile, "k", concurrency, tok_s, 0.0, f"{klass}.json")
    rows = [row(here, "torch", "bf16", 4.0), row(here, "torch", "gptq-int4", 9.0), row(here, "llamacpp", "gguf-q4_k_m", 12.0),
            row(here, "vllm", "bf16", 6.0), row(here, "vllm", "gptq-int4", 3.0), row(here, "vllm", "gptq-int4", 50.0, 16),
            row("cpu-other", "torch", "fp32", 99.0)]
    path = tmp_path / "fastest.toml"
    path.write_text(fastest.to_toml(rows))
    assert fastest.load(path) == rows
    return path


def test_advice_names_the_fastest_on_this_device_class_among_what_fits(tmp_path):
    table = _table(tmp_path, machine.device_class("cpu"))
    lines = fastest.advice("cpu", table=table)
    assert "llama.cpp gguf-q4_k_m 12.0 tok/s" in lines[0] and "fp32" not in "".join(lines)
    assert any("best in vLLM: bf16 6.0" in line for line in lines)   # one request, not the 16-in-flight row
    assert "transformers gptq-int4" in fastest.advice("cpu", too_big={"gguf-q4_k_m"}, table=table)[0]
    assert "nothing measured on cuda" in fastest.advice("cuda", table=table)[0]


def test_serving_advice_says_when_another_precision_is_clearly_faster(tmp_path):
    table = _table(tmp_path, machine.device_class("cpu"))
    assert "serve bf16 for speed" in fastest.serving_advice("cpu", "gptq-int4", table=table)
    assert "as fast as any" in fastest.serving_advice("cpu", "bf16", table=table)
    assert fastest.serving_advice("cpu", "awq-int4", table=table) is None
    assert fastest.serving_advice("cuda", "bf16", table=table) is None


def test_plan_prints_the_speed_measured_on_this_cpu():
    # one profile: the speed line reads the measured table whatever the profiles (each probes its runtime memory)
    proc = run_qtool("--json", "plan", "qwen2-vl-2b", "--gpu-mem", "16GiB", "--device", "cpu", "--profiles", "bf16")
    assert proc.returncode == 0, proc.stderr
    speed = json.loads(proc.stdout)["speed"]
    measured = [r for r in fastest.load() if r.device_class == machine.device_class("cpu") and r.concurrency == 1]
    if not measured:
        assert "nothing measured" in speed[0]
        return
    top = max(measured, key=lambda r: r.tok_s)
    assert f"{top.profile} {top.tok_s} tok/s" in speed[0] and top.record in "".join(speed)
