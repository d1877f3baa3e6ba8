"""qtool plan: its arithmetic against hand-computed cases and real checkpoints."""

import json

import pytest
from conftest import assert_one_line_error, qtool_in_process, run_qtool
from safetensors import safe_open

from qtool import paths, profiles
from qtool.bench import plan as qplan
from qtool.errors import QtoolError
from qtool.models import ADAPTERS

TINY = paths.ASSETS / "qwen2-vl-tiny"


@pytest.fixture(scope="module")
def tiny_config():
    return qplan.model_config("qwen2-vl-tiny")


def weights(config, name):
    return qplan.weight_bytes(config, ADAPTERS[config.model_type], profiles.load_profile(name))


def test_bf16_weights_are_the_checkpoints_tensor_bytes(tiny_config):
    with safe_open(TINY / "model.safetensors", "pt") as f:
        stored = sum(_numel(f.get_slice(k).get_shape()) for k in f.keys()) * 2   # a bf16 checkpoint
    assert weights(tiny_config, "bf16") == stored
    assert weights(tiny_config, "fp32") == 2 * stored


def _numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def test_gptq_int4_packing_by_hand(tiny_config):
    # per decoder layer, (in, out) of q, k, v, o, gate, up, down: hidden 256, kv 2 heads x 64, mlp 768
    linears = [(256, 256), (256, 128), (256, 128), (256, 256), (256, 768), (256, 768), (768, 256)]
    saved = 0
    for in_f, out_f in linears:
        groups = in_f // 128
        packed = in_f * out_f // 2 + groups * out_f * 2 + groups * out_f // 2 + in_f * 4  # qweight, fp16 scales, qzeros, g_idx
        saved += in_f * out_f * 2 - packed
    assert saved == 1155072
    assert weights(tiny_config, "bf16") - weights(tiny_config, "gptq-int4") == 4 * saved
    # AWQ stores no g_idx: 4 bytes per in-feature per linear per layer less
    assert weights(tiny_config, "gptq-int4") - weights(tiny_config, "awq-int4") == 4 * 4 * sum(i for i, _ in linears)


def test_load_transient_by_hand(tiny_config):
    adapter = ADAPTERS[tiny_config.model_type]

    def load(name, device="cpu", flags=("avx2", "avx512f")):
        return qplan.load_transient_bytes(tiny_config, adapter, profiles.load_profile(name), device, list(flags))

    # 4 layers of the linears above: 4 x 786,432 weights, repacked at 4 or 8 bits
    assert load("gptq-int4") == 4 * 786432 // 2 and load("gptq-int8") == 4 * 786432
    # AWQ's ATen kernel (no AVX-512) unpacks through int32 temporaries: twice the packed bytes
    assert load("awq-int4") == 4 * 786432 // 2 and load("awq-int4", flags=("avx2",)) == 4 * 786432
    assert load("gptq-int4", flags=("avx2",)) == load("gptq-int4")
    assert load("fp32") == weights(tiny_config, "bf16")   # the bf16 checkpoint is alive while cast to fp32
    assert load("bf16") == 0 and load("fp32", device="cuda") == 0


def test_kv_cache_by_hand(tiny_config):
    # 2 (K and V) x 4 layers x 2 kv heads x 64 head dim, per position
    assert qplan.kv_bytes(tiny_config.text_config, 1000, profiles.load_profile("bf16")) == 1024 * 1000 * 2
    assert qplan.kv_bytes(tiny_config.text_config, 1000, profiles.load_profile("fp32")) == 1024 * 1000 * 4


def test_real_shape_parameter_count():
    # Qwen2-VL-7B-Instruct publishes 8.29 B parameters (8,291,375,616)
    config = qplan.model_config("qwen2-vl-7b")
    assert abs(weights(config, "bf16") / 2 / 8_291_375_616 - 1) < 0.005


@pytest.mark.parametrize("text, expected", [("8GiB", 8 * 2**30), ("24GB", 24 * 10**9), ("80000MiB", 80000 * 2**20),
                                            ("1.5 gib", int(1.5 * 2**30)), ("16", 16 * 2**30)])
def test_parse_size(text, expected):
    assert qplan.parse_size(text) == expected


def test_parse_size_rejects_words():
    with pytest.raises(QtoolError):
        qplan.parse_size("eight gigs")


def test_recommendation_is_the_most_precise_profile_that_fits():
    rows = [qplan.PlanRow(n, 0, 0, 0, 0, t, t <= 10) for n, t in (("bf16", 16), ("gptq-int8", 11), ("awq-int4", 7),
                                                                    ("gptq-int4", 6))]
    assert qplan.recommend(rows) == "awq-int4"
    assert qplan.recommend(rows[:2]) is None


def test_plan_cli_on_a_real_shape():
    proc = run_qtool("--json", "plan", "qwen2-vl-7b", "--gpu-mem", "12GiB")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    rows = {r["profile"]: r for r in out["rows"]}
    assert all(r["fits"] == (r["total_bytes"] <= 12 * 2**30) for r in rows.values())
    assert not rows["bf16"]["fits"] and rows["gptq-int4"]["fits"]
    assert out["recommended"] == next(r["profile"] for r in out["rows"] if r["fits"])
    assert rows["gptq-int4"]["weights_bytes"] < 0.45 * rows["bf16"]["weights_bytes"]


def test_plan_bad_memory_is_one_line():
    assert_one_line_error(qtool_in_process("plan", "qwen2-vl-7b", "--gpu-mem", "lots"), "lots", "8GiB")


def test_cpu_runtime_term_is_measured_on_a_one_layer_probe():
    """The runtime term loads the probe model as the bench worker does: the weights it reports holding are the
    probe checkpoint's tensors (one decoder layer), and the process around them holds far more."""
    from safetensors.torch import load_file

    from qtool.bench import runtime_probe

    probe = runtime_probe.measure(profiles.load_profile("bf16"))
    tensors = load_file(runtime_probe.probe_model() / "model.safetensors")
    assert not any(".layers.1." in name for name in tensors)
    # plus a few hundred bytes of rotary buffers that are not in the checkpoint
    assert probe["weights_mib"] * 2**20 == pytest.approx(sum(t.numel() * t.element_size() for t in tensors.values()),
                                                         abs=4096)
    assert probe["peak_mib"] > probe["weights_mib"] + 200   # interpreter, torch, transformers
    assert qplan.runtime_bytes("cpu", "bf16") > 200 * 2**20 and qplan.runtime_bytes("cuda", "bf16") == 0


def test_tensor_parallel_readiness_names_the_first_layer_that_does_not_split():
    """Qwen2-VL-72B's MLP (29568) at TP 8 is the real case: 3696 per rank is not a multiple of 128."""
    from qtool import profiles
    from qtool.models.shapes import config_for
    from qtool.serve import tp

    int4, bf16 = profiles.load_profile("gptq-int4"), profiles.load_profile("bf16")
    big = config_for("qwen2-vl-72b")
    ready = tp.readiness(big, [bf16, int4], 8, gpu=False)
    assert ready["bf16"] == "ok"
    assert "mlp.down_proj: 3696 input features per rank are not a multiple of group_size 128" in ready["gptq-int4"]
    assert "29568 -> 29696" in ready["gptq-int4"]
    assert "gate_proj" in tp.readiness(big, [int4], 8, gpu=True)["gptq-int4"]     # Marlin's 64-multiple of N
    assert tp.readiness(config_for("qwen2-vl-7b"), [int4], 4)["gptq-int4"] == "ok"
    assert "12 attention heads" in tp.readiness(config_for("qwen2-vl-2b"), [bf16], 8)["bf16"]


def test_plan_tp_flag_prints_the_readiness(tmp_path):
    proc = run_qtool("--json", "plan", "qwen2-vl-72b", "--gpu-mem", "80GiB", "--tp", "8", "--profiles", "bf16,gptq-int4")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["tp"] == 8 and data["tp_readiness"]["bf16"] == "ok" and "mlp." in data["tp_readiness"]["gptq-int4"]
