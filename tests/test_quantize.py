"""qtool quantize on the bundled tiny model: real GPTQModel runs, real artifacts, stock loaders."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import QUANTIZED as PROFILES
from conftest import GPTQ_SAMPLES, PACKED_AWQ_SAMPLES, REPO, TINY, assert_one_line_error, qtool_in_process
from safetensors import safe_open

from qtool.release import card

TEST_SET = REPO / "qtool" / "assets" / "qwen2-vl-tiny-test" / "questions.jsonl"
AGREEMENT = {"gptq-int8": 0.99, "gptq-int4": 0.95, "awq-int4": 0.95}
N_QUESTIONS = 40


@pytest.fixture(scope="module")
def stock_answers(artifacts) -> dict:
    """The float model's and every artifact's answers from stock transformers, in one fresh process."""
    folders = {"bf16": TINY, **{p: artifacts[p][0] for p in PROFILES}}
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "stock" / "answer.py"), str(TEST_SET),
                           str(N_QUESTIONS), *map(str, folders.values())], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    by_folder = json.loads(proc.stdout.strip().splitlines()[-1])
    return {name: by_folder[str(folder)] for name, folder in folders.items()}


def canonical(name: str) -> str:
    """transformers 5 module names for both the hub layout (visual.*, model.layers.*) and the new one."""
    if name.startswith("visual."):
        return "model." + name
    if name.startswith("model.") and not name.startswith(("model.visual.", "model.language_model.")):
        return "model.language_model." + name[len("model."):]
    return name


def tensors(path: Path) -> dict:
    out = {}
    for f in sorted(path.glob("*.safetensors")):
        with safe_open(f, "pt") as h:
            out.update({canonical(k): h.get_tensor(k) for k in h.keys()})
    return out


@pytest.mark.parametrize("profile", PROFILES)
def test_artifact_layout_and_manifest(artifacts, profile):
    path, result = artifacts[profile]
    assert result["profile"] == profile and result["layers"] == 4
    names = {p.name for p in path.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "qtool.json", "tokenizer.json",
            "chat_template.jinja", "processor_config.json"} <= names
    assert not names & {"quant_log.csv", "engine.log"}
    assert not list(path.parent.glob(f".{path.name}.partial-*"))
    qc = json.loads((path / "config.json").read_text())["quantization_config"]
    assert qc["bits"] == (8 if profile == "gptq-int8" else 4) and qc["group_size"] == 128
    assert "offload_to_disk_path" not in json.dumps(qc)
    if profile == "awq-int4":
        assert (qc["quant_method"], qc["version"], qc["zero_point"]) == ("awq", "gemm", True)
        assert qc["modules_to_not_convert"] == ["model.visual", "visual", "lm_head"]  # transformers, vLLM
        calibration = json.loads((path / "qtool.json").read_text())["calibration"]
        assert calibration["awq_fitted_to"] == "all conversations" and calibration["samples"] == PACKED_AWQ_SAMPLES
        assert calibration["packed"]["conversations"] == PACKED_AWQ_SAMPLES
        recipe = {r["field"]: r["value"] for r in card.recipe_rows(json.loads((path / "qtool.json").read_text()))}
        assert recipe["AWQ scales fitted to"] == "all conversations"
    else:
        assert (qc["quant_method"], qc["desc_act"], qc["sym"]) == ("gptq", False, True)
    # the engine sets do_sample=true; the artifact keeps the source's generation config
    assert json.loads((path / "generation_config.json").read_text()) == \
        json.loads((TINY / "generation_config.json").read_text())
    manifest = json.loads((path / "qtool.json").read_text())
    assert manifest["profile"]["_data"]["name"] == profile
    assert {"torch", "transformers", "gptqmodel"} <= set(manifest["versions"])
    assert manifest["result"]["wall_s"] > 0 and manifest["result"]["peak_rss_mb"] > 0
    assert len(manifest["result"]["layer_errors"]) == 4 * 7
    if profile == "rtn-int4":
        assert manifest["calibration"]["samples"] == 0
    elif profile != "awq-int4":
        assert manifest["calibration"]["samples"] == GPTQ_SAMPLES and len(manifest["calibration"]["sha256"]) == 64


@pytest.mark.parametrize("profile", PROFILES)
def test_vision_tower_bit_identical_and_decoder_packed(artifacts, profile):
    path, _ = artifacts[profile]
    src, dst = tensors(TINY), tensors(path)
    vision = [k for k in src if k.startswith("model.visual.")]
    assert vision and all(src[k].dtype == dst[k].dtype and src[k].equal(dst[k]) for k in vision)
    for keep in ("model.language_model.embed_tokens.weight", "lm_head.weight"):
        assert dst[keep].equal(src[keep])
    bits = 8 if profile == "gptq-int8" else 4
    for layer in range(4):
        for module, in_f, out_f in (("self_attn.q_proj", 256, 256), ("mlp.down_proj", 768, 256)):
            key = f"model.language_model.layers.{layer}.{module}"
            assert f"{key}.weight" not in dst
            qweight = dst[f"{key}.qweight"]
            assert str(qweight.dtype) == "torch.int32"
            # GPTQ packs 32/bits values per int32 along in-features, AWQ-GEMM along out-features
            expected = (in_f, out_f * bits // 32) if profile == "awq-int4" else (in_f * bits // 32, out_f)
            assert tuple(qweight.shape) == expected
    src_bytes = sum(t.numel() * t.element_size() for k, t in src.items() if ".layers." in k)
    dst_bytes = sum(t.numel() * t.element_size() for k, t in dst.items() if ".layers." in k)
    assert dst_bytes / src_bytes < (0.6 if bits == 8 else 0.35)


@pytest.mark.parametrize("profile", PROFILES)
def test_stock_transformers_loads_and_answers_like_float(stock_answers, profile):
    got, float_answers = stock_answers[profile], stock_answers["bf16"]["answers"]
    assert got["linear"] != "Linear" and stock_answers["bf16"]["linear"] == "Linear"  # a quantized kernel
    assert len(float_answers) == N_QUESTIONS
    agreement = sum(a == b for a, b in zip(got["answers"], float_answers)) / len(float_answers)
    assert agreement >= AGREEMENT.get(profile, 0.5), agreement


def test_existing_output_needs_force(artifacts, tmp_path):
    path, _ = artifacts["rtn-int4"]
    before = sorted(p.name for p in path.iterdir())
    proc = qtool_in_process("quantize", "qwen2-vl-tiny", "--profile", "rtn-int4", "--out", path)
    assert_one_line_error(proc, "already exists", "--force")
    assert sorted(p.name for p in path.iterdir()) == before


@pytest.mark.parametrize("args, needles", [
    (["--profile", "gptq-int4", "--device", "cuda"], ["cuda"]),
    (["--profile", "bf16"], ["float profile"]),
    (["--profile", "gptq-int4", "--quantize-vision"], ["--quantize-vision"]),
    (["--profile", "gptq-int4", "--group-size", "48"], ["group_size"]),
    (["--profile", "rtn-int4", "--bits", "3"], ["bits"]),
])
def test_bad_quantize_requests(tmp_path, args, needles):
    pytest.importorskip("torch")
    import torch

    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    proc = qtool_in_process("quantize", "qwen2-vl-tiny", *args, "--out", tmp_path / "o")
    assert_one_line_error(proc, *needles)
    assert not (tmp_path / "o").exists()


def test_calibration_set_without_valid_records(tmp_path):
    calib = tmp_path / "calib"
    calib.mkdir()
    (calib / "records.jsonl").write_text('{"id": "a", "image": "missing.png", "text": "x"}\n')
    proc = qtool_in_process("quantize", "qwen2-vl-tiny", "--profile", "gptq-int4", "--calib", calib,
                            "--out", tmp_path / "o")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_group_size_must_divide_in_features(tmp_path):
    from qtool.models.random_build import build_random

    model = build_random("qwen2-vl-test-odd", tmp_path / "odd").path
    proc = qtool_in_process("quantize", model, "--profile", "gptq-int4", "--group-size", "256", "--out", tmp_path / "o")
    assert_one_line_error(proc, "group_size 256 does not divide in-features 640", "mlp.down_proj")
    assert not (tmp_path / "o").exists()


def test_int8_runs_the_chosen_cpu_kernel_and_agrees_with_the_exact_one(artifacts, tmp_path, monkeypatch):
    """qtool loads GPTQ-Int8 with TorchInt8Linear (qtool.kernels); GPTQModel's own choice dequantizes exactly.
    The re-quantized kernel must give the same greedy answers and near logits; CUDA loads are left alone."""
    import torch
    from transformers import AutoModelForImageTextToText

    from qtool import infer, kernels
    from qtool.calibration.images import load_image
    from qtool.eval.dataset import TEST_SET, load_vqa

    path, _ = artifacts["gptq-int8"]
    qc = json.loads((path / "config.json").read_text())["quantization_config"]
    assert kernels.load_kwargs(path, "cuda") == {} and kernels.backend_for(dict(qc, bits=4), "cpu") is None
    fast, processor = infer.load_model(path)
    monkeypatch.chdir(tmp_path)   # GPTQModel writes ./logs while loading
    exact = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.bfloat16).eval()
    assert (kernels.kernel_name(fast), kernels.kernel_name(exact)) == ("TorchInt8Linear", "TorchLinear")
    items = load_vqa(TEST_SET, 24)
    images, questions = [load_image(it.image) for it in items], [it.question for it in items]
    same = sum(a == b for a, b in zip(infer.answer(fast, processor, images, questions),
                                      infer.answer(exact, processor, images, questions)))
    assert same >= 22, same
    enc = processor(text=[processor.apply_chat_template([infer.user_turn(images[0], questions[0])], tokenize=False,
                                                        add_generation_prompt=True)],
                    images=images[:1], return_tensors="pt")
    with torch.inference_mode():
        a, b = fast(**enc).logits.float(), exact(**enc).logits.float()
    assert 0 < float((a - b).norm() / b.norm()) < 0.05
