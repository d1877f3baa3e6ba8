"""qtool bench on the tiny model with tiny lengths: real subprocesses, real files."""

import json
import os
from pathlib import Path

import gguf
import numpy as np
import pytest
from conftest import assert_one_line_error, qtool_in_process, run_qtool

from qtool.bench.worker_llamacpp import decoder_bytes


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "res"
    proc = run_qtool("--json", "bench", "qwen2-vl-tiny", "--profiles", "bf16,rtn-int4,onnx-vision-fp32", "--gen", "4,8",
                     "--repeats", "2", "--image-tokens", "16", "--threads", "1", "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads(proc.stdout)


def test_outputs_well_formed_with_positive_numbers(bench_run):
    out, printed = bench_run
    saved = json.loads((out / "bench.json").read_text())
    assert saved == printed
    assert saved["machine"]["cpu"] and saved["machine"]["versions"]["torch"]
    assert [r["profile"] for r in saved["records"]] == ["bf16", "rtn-int4", "onnx-vision-fp32"]
    for r in saved["records"]:
        assert r["load_s"] > 0 and r["weights_in_memory_bytes"] > 0 and r["bandwidth_gbs"] > 0
        assert [x["gen"] for x in r["lengths"]] == [4, 8]
        for length in r["lengths"]:
            assert len(length["runs"]) == 2
            assert all(run["new_tokens"] == length["gen"] for run in length["runs"])
            assert length["decode_tok_s_median"] > 0 and length["prefill_tok_s_median"] > 0
            assert length["e2e_tok_s_median"] > 0 and length["peak_memory_mb"] > 0
            assert 0 < length["bound_efficiency"]
            assert 0 < length["vision_s_median"] < length["prefill_s_median"]
    assert saved["records"][0]["kernel"] == "Linear" and saved["records"][1]["kernel"] != "Linear"
    # int4 weights really are smaller in memory
    assert saved["records"][1]["weights_in_memory_bytes"] < saved["records"][0]["weights_in_memory_bytes"]
    table = (out / "table.md").read_text()
    assert "| bf16 |" in table and "| rtn-int4 |" in table and "decode tok/s (8)" in table
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_onnx_vision_profile_runs_the_tower_in_onnx_runtime(bench_run):
    _, saved = bench_run
    torch_bf16, onnx = saved["records"][0], saved["records"][2]
    assert onnx["kernel"] == "Linear + ORT fp32 vision" and onnx["artifact"] != torch_bf16["artifact"]
    assert (Path(onnx["artifact"]) / "vision.onnx").is_file()
    # the torch vision blocks were not loaded: only the ONNX graph's bytes stand in for them
    assert onnx["input_tokens"] == torch_bf16["input_tokens"]
    assert all(run["new_tokens"] == 8 for run in onnx["lengths"][1]["runs"])


def test_one_subprocess_per_profile(bench_run):
    out, saved = bench_run
    # each profile was measured by a process of its own, none of them the CLI's
    pids = [r["pid"] for r in saved["records"]]
    assert len(set(pids)) == len(pids) and os.getpid() not in pids
    assert all(r["baseline_rss_mb"] > 0 and r["artifact"] for r in saved["records"])


@pytest.mark.parametrize("args, needles", [
    (["--device", "tpu"], ["device"]),
    (["--repeats", "0"], ["--repeats"]),
    (["--gen", "1"], ["--gen"]),
    (["--gen", "9000"], ["context"]),
    (["--profiles", "gptq-int3"], ["unknown profile"]),
])
def test_bad_bench_requests_are_one_line(tmp_path, args, needles):
    proc = qtool_in_process("bench", "qwen2-vl-tiny", "--profiles", "bf16", *args, "--out", tmp_path / "o") \
        if "--profiles" not in args else qtool_in_process("bench", "qwen2-vl-tiny", *args, "--out", tmp_path / "o")
    assert_one_line_error(proc, *needles)
    assert not (tmp_path / "o").exists()


def test_a_crashed_profile_keeps_the_others(tmp_path):
    # a GGUF file llama.cpp cannot load: its worker dies, bf16 is still measured and reported
    from qtool import bench
    from qtool.bench.report import markdown

    broken = tmp_path / "broken-gguf"
    broken.mkdir()
    (broken / "model.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    (broken / "mmproj.gguf").write_bytes(b"not a gguf")
    (broken / "qtool.json").write_text(json.dumps({"files": {"q8_0": "model.gguf"}, "mmproj": {"file": "mmproj.gguf"}}))
    settings = bench.BenchSettings(image_tokens=16, gen=(4,), repeats=1, threads=1)
    report = bench.run("qwen2-vl-tiny", ["bf16", "gguf-q8_0"], settings, artifacts={"gguf-q8_0": broken})
    assert [r["profile"] for r in report.records] == ["bf16"]
    assert list(report.failed) == ["gguf-q8_0"] and report.failed["gguf-q8_0"]
    assert "Not measured: gguf-q8_0" in markdown(report)


@pytest.mark.parametrize("tied", [False, True])
def test_llamacpp_bytes_per_token_count_a_tied_output_layer(tmp_path, tied):
    path = tmp_path / "m.gguf"
    writer = gguf.GGUFWriter(str(path), "qwen2vl")
    tensors = {"token_embd.weight": (64, 16), "blk.0.ffn_up.weight": (32, 16), "output_norm.weight": (16,)}
    if not tied:
        tensors["output.weight"] = (32, 16)       # a size of its own, so the two cases differ
    for name, shape in tensors.items():
        writer.add_tensor(name, np.ones(shape, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    # float32: embedding 4096 bytes, block 2048, norm 64, untied output layer 2048; the embedding counts only when tied
    assert decoder_bytes(str(path)) == (4096 + 2048 + 64 if tied else 2048 + 64 + 2048)
