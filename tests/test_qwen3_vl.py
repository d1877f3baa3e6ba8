"""Qwen3-VL through qtool on a small random model (qwen3-vl-test: 3 decoder layers, 3 heads of 128 over hidden 256,
a 3-block tower with DeepStack taps at blocks 0 and 2, added after decoder layers 0 and 1): shapes, quantize with
every method, stock transformers, vLLM, plan, GGUF for llama.cpp, the ONNX tower with its DeepStack outputs. Random
weights: fidelity is checked as logits against the float model."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, qtool_in_process, run_qtool
from PIL import Image
from safetensors import safe_open

from qtool import infer, machine, profiles
from qtool.artifacts.gguf import LlamaCppModel
from qtool.eval.dataset import TEST_SET
from qtool.bench.plan import kv_bytes
from qtool.export import gguf_validate
from qtool.export.gguf_export import gguf_files
from qtool.quantization.deepstack import deepstack_in_layers
from qtool.models.chat import logprob_gap
from qtool.release import answers
from qtool.runtime.llamacpp import GGUFModel
from qtool.models import QWEN2_VL, QWEN3_VL
from qtool.models.random_build import build_random
from qtool.models.shapes import config_for, param_count
from qtool.serve import Server, client, free_port, servable, vllm_python

QUANTIZED = ("gptq-int8", "gptq-int4", "awq-int4", "rtn-int4")


@pytest.fixture(scope="module")
def q3(tmp_path_factory):
    return build_random("qwen3-vl-test", tmp_path_factory.mktemp("q3") / "qwen3-vl-test").path


@pytest.fixture(scope="module")
def q3_artifacts(q3, tmp_path_factory):
    root = tmp_path_factory.mktemp("q3-artifacts")
    out = {}
    for profile in QUANTIZED:
        proc = run_qtool("--json", "quantize", q3, "--profile", profile, "--samples", "8", "--out", root / profile)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[profile] = root / profile
    return out


def tensors(path) -> dict:
    out = {}
    for f in sorted(path.glob("*.safetensors")):
        with safe_open(f, "pt") as h:
            out.update({k: h.get_tensor(k) for k in h.keys()})
    return out


def test_published_shapes():
    """Values from the public config.json files (see qtool/models/shapes.py), and the counts they imply."""
    c4, c8 = config_for("qwen3-vl-4b"), config_for("qwen3-vl-8b")
    t4 = c4.text_config
    assert (t4.hidden_size, t4.num_attention_heads, t4.head_dim) == (2560, 32, 128)   # head_dim is not hidden/heads
    assert t4.rope_parameters["mrope_section"] == [24, 20, 20] and t4.rope_parameters["mrope_interleaved"]
    assert c4.vision_config.deepstack_visual_indexes == [5, 11, 17] and c4.vision_config.out_hidden_size == 2560
    assert c8.vision_config.deepstack_visual_indexes == [8, 16, 24] and c8.vision_config.patch_size == 16
    assert c4.tie_word_embeddings and not c8.tie_word_embeddings
    assert abs(param_count(c8)["total"] / 1e9 - 8.77) < 0.01       # 8.77B, as published for Qwen3-VL-8B


def test_random_checkpoint_loads_and_generates_in_stock_transformers(q3):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model, info = AutoModelForImageTextToText.from_pretrained(q3, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    processor = AutoProcessor.from_pretrained(q3)
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration" and type(processor).__name__ == "Qwen3VLProcessor"
    assert processor.image_processor.patch_size == 16
    inputs = _inputs(processor)
    out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 6


def _inputs(processor, text: str = "How many shapes?"):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    return processor(text=[prompt], images=[Image.new("RGB", (300, 220), (200, 30, 30))], return_tensors="pt")


def test_quantize_keeps_tower_and_deepstack_mergers_float(q3, q3_artifacts):
    src = tensors(q3)
    for profile, path in q3_artifacts.items():
        dst = tensors(path)
        tower = [k for k in src if ".visual." in f".{k}"]
        assert any("deepstack_merger_list" in k for k in tower)
        assert all(dst[k].dtype == src[k].dtype and dst[k].equal(src[k]) for k in tower), profile
        norms = [k for k in src if k.endswith(("q_norm.weight", "k_norm.weight"))]
        assert len(norms) == 6 and all(dst[k].equal(src[k]) for k in norms), profile
        q_proj = next(k for k in dst if k.endswith("layers.0.self_attn.q_proj.qweight"))
        bits = 8 if profile == "gptq-int8" else 4
        # q_proj: 256 -> 3 heads x 128; GPTQ packs along in-features, AWQ-GEMM along out-features
        expected = (256, 384 * bits // 32) if profile == "awq-int4" else (256 * bits // 32, 384)
        assert tuple(dst[q_proj].shape) == expected, profile
        calibration = json.loads((path / "qtool.json").read_text())["calibration"]
        if profile != "rtn-int4":   # both DeepStack layers' outputs fed the next layer's calibration, per batch
            assert calibration["deepstack_additions"] == {"0": 8, "1": 8}, profile
        assert calibration.get("awq_fitted_to") == ("last conversation" if profile == "awq-int4" else None)
        qc = json.loads((path / "config.json").read_text())["quantization_config"]
        if profile == "awq-int4":
            assert qc["modules_to_not_convert"] == ["model.visual", "visual", "lm_head"]


def test_quantized_logits_track_the_float_model(q3, q3_artifacts):
    """Teacher-forced on an image prompt through stock transformers (GPTQModel's CPU kernels): every variant's
    next-token distribution stays close to float's, and 8 bits closer than any 4-bit method."""
    model, processor = infer.load_model(q3)
    inputs = _inputs(processor, "Describe the colours and the shapes in this picture, one by one.")
    with torch.inference_mode():
        reference = model(**inputs).logits.float().log_softmax(-1)
    kl = {}
    for profile, path in q3_artifacts.items():
        quantized, _ = infer.load_model(path)
        assert type(quantized.model.language_model.layers[0].mlp.down_proj).__name__ != "Linear", profile
        with torch.inference_mode():
            logits = quantized(**inputs).logits.float().log_softmax(-1)
        kl[profile] = (reference.exp() * (reference - logits)).sum(-1).mean().item()
    assert all(0 < v < 0.05 for v in kl.values()), kl
    assert kl["gptq-int8"] < min(kl[p] for p in QUANTIZED if p != "gptq-int8") / 5, kl


def test_deepstack_in_layers_computes_what_transformers_computes(q3):
    """Under quantize's patch a full forward gives the same logits, and replaying the decoder one layer at a time
    from the first layer's captured inputs (as GPTQModel calibrates) reaches the model's own hidden states; without
    the patch that replay misses the DeepStack additions."""
    model, processor = infer.load_model(q3, "float32")
    inputs = _inputs(processor)
    with torch.inference_mode():
        stock = model(**inputs, output_hidden_states=True)
    replayed = {}
    for patched in (True, False):
        captured = {}

        def capture(_module, args, kwargs):
            captured.update(args=args, kwargs=dict(kwargs))

        layers = model.model.language_model.layers
        with deepstack_in_layers(QWEN3_VL if patched else QWEN2_VL) as added, torch.inference_mode():
            handle = layers[0].register_forward_pre_hook(capture, with_kwargs=True)
            logits = model(**inputs).logits
            handle.remove()
            hidden, kwargs = captured["args"][0], captured["kwargs"]
            for layer in layers:
                hidden = layer(hidden, **kwargs)
        replayed[patched] = hidden
        if patched:
            assert torch.equal(logits, stock.logits) and dict(added) == {0: 2, 1: 2}   # 1 full forward + 1 replay
    before_norm = stock.hidden_states[-1]   # transformers' last entry is after the final norm
    truth = model.model.language_model.norm
    assert torch.allclose(truth(replayed[True]), before_norm, atol=1e-5)
    assert not torch.allclose(truth(replayed[False]), before_norm, atol=1e-2)


def test_plan_kv_cache_is_what_transformers_allocates(q3):
    """Qwen3-VL states head_dim (here 128, while hidden / heads is 85): the plan's KV bytes per position must equal
    the cache transformers fills."""
    model, processor = infer.load_model(q3)
    inputs = _inputs(processor)
    with torch.inference_mode():
        cache = model(**inputs, use_cache=True).past_key_values
    filled = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    assert filled == kv_bytes(model.config.text_config, inputs["input_ids"].shape[1], profiles.load_profile("bf16"))


def test_plan_lists_the_qwen3_shapes():
    proc = run_qtool("--json", "plan", "qwen3-vl-8b", "--profiles", "bf16,gptq-int4,awq-int4", "--gpu-mem", "12GiB")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["profile"]: r for r in json.loads(proc.stdout)["rows"]}
    assert not rows["bf16"]["fits"] and rows["gptq-int4"]["fits"]      # 17.5 GB of bf16 weights; ~6 GB in int4
    assert rows["gptq-int4"]["weights_bytes"] < 0.45 * rows["bf16"]["weights_bytes"]   # embeddings, tower stay float


@pytest.fixture(scope="module")
def q3_onnx(q3, tmp_path_factory):
    out = tmp_path_factory.mktemp("q3-onnx") / "onnx"
    proc = run_qtool("--json", "export", "onnx", q3, "--out", out, "--precision", "fp32,int8")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_onnx_tower_returns_merger_and_deepstack_features_at_unseen_sizes(q3, q3_onnx):
    """One graph for every size: the merged embeddings and both DeepStack taps' features equal the stock tower's
    (float32) at sizes the exporter never traced, several images in one call, inputs computed in numpy."""
    from transformers import AutoConfig

    from qtool.export.onnx_validate import case_images, outputs_of, rel_l2, torch_outputs
    from qtool.export.vision_tower import load_vision_tower
    from qtool.runtime import onnx_io as io
    from qtool.runtime.vision import VisionEncoder, preprocess

    validation = json.loads((q3_onnx / io.VALIDATION_FILE).read_text())
    assert validation["passed"] and all(c["outputs"] == 3 for c in validation["cases"])
    visual = load_vision_tower(q3, AutoConfig.from_pretrained(q3))
    encoder = VisionEncoder(q3_onnx)
    traced = {(h * 16, w * 16) for h, w in io.EXPORT_GRIDS}
    for seed, sizes in enumerate((((512, 384),), ((352, 800), (300, 220), (1024, 96)))):
        images = case_images(sizes, seed=20 + seed)
        out = encoder.encode(images)
        assert not {(g[1] * 16, g[2] * 16) for g in out.grids} & traced
        ref = torch_outputs(visual, np.concatenate([preprocess(im, encoder.config)[0] for im in images]), out.grids)
        assert out.deepstack.shape == (2, *out.embeds.shape) and len(ref) == 3
        assert all(rel_l2(mine, want) <= io.FP32_MAX_REL_L2 for mine, want in zip(outputs_of(out), ref)), sizes
        assert [len(tap) for tap in out.deepstack_per_image()] == [len(sizes)] * 2
    child = ("import sys, numpy as np; from PIL import Image; from qtool.runtime.vision import VisionEncoder; "
             "out = VisionEncoder(sys.argv[1]).encode([Image.new('RGB', (400, 300), (9, 99, 199))]); "
             "assert 'torch' not in sys.modules; print(out.embeds.shape, out.deepstack.shape)")
    proc = subprocess.run([sys.executable, "-c", child, str(q3_onnx)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.split() == ["(108,", "256)", "(2,", "108,", "256)"], proc.stderr[-2000:]


def test_onnx_runtime_preprocessing_equals_the_qwen3_processor(q3, q3_onnx):
    """Patch 16, mean/std 0.5 and Qwen3-VL's pixel limits, as the stock processor's PIL path computes them."""
    from transformers import AutoProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from qtool.export.onnx_validate import case_images
    from qtool.runtime.vision import VisionConfig, preprocess

    stock = AutoProcessor.from_pretrained(q3).image_processor
    keys = ("size", "image_mean", "image_std", "patch_size", "merge_size", "temporal_patch_size", "resample")
    pil = Qwen2VLImageProcessorPil(**{k: v for k, v in stock.to_dict().items() if k in keys})
    config = VisionConfig.load(q3_onnx)
    for image in case_images(((224, 224), (333, 250), (40, 900)), seed=5):
        patches, grid = preprocess(image, config)
        np.testing.assert_array_equal(patches, pil(images=[image], return_tensors="np")["pixel_values"])
        assert [list(grid)] == stock(images=[image], return_tensors="np")["image_grid_thw"].tolist()


def test_onnx_features_drive_the_language_model_as_the_torch_tower_does(q3, q3_onnx):
    """The ORT embeddings and DeepStack features, handed to stock transformers as ``mm_encoder_outputs`` (as eval,
    ask and bench do), give the torch tower's next-token distribution; dropping the DeepStack part does not."""
    from qtool.runtime.vision import VisionEncoder

    model, processor = infer.load_model(q3, "float32")
    image = _picture(4, (448, 320))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many shapes?"}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=[prompt], images=[image], return_tensors="pt")
    out = VisionEncoder(q3_onnx).encode([image])
    assert [list(out.grids[0])] == inputs["image_grid_thw"].tolist()
    pixels = inputs.pop("pixel_values")
    with torch.inference_mode():
        want = model(**inputs, pixel_values=pixels).logits[0, -1].log_softmax(-1)
        mine = model(**inputs, mm_encoder_outputs=infer.encoder_outputs([out], torch.float32)).logits[0, -1]
        flat = infer.encoder_outputs([out], torch.float32)
        taps = flat["image"].deepstack_features
        flat["image"].deepstack_features = [tuple(torch.zeros_like(t) for t in tap) for tap in taps]
        without = model(**inputs, mm_encoder_outputs=flat).logits[0, -1]
    gap = lambda logits: (want - logits.log_softmax(-1)).abs().max().item()   # noqa: E731
    assert gap(mine) < 1e-3 < gap(without), (gap(mine), gap(without))


def test_onnx_variant_answers_like_the_torch_tower(q3, q3_onnx):
    """The onnx-vision consumer path of eval, ask and release (ORT tower + torch language model) gives the float32
    torch model's held-out answers."""
    from qtool.eval.agreement import heldout_agreement

    result = heldout_agreement(q3, q3_onnx, "fp32", limit=8)
    assert result.questions == 8 and result.rate >= 7 / 8, result


@pytest.fixture(scope="module")
def q3_gguf(q3, tmp_path_factory):
    out = tmp_path_factory.mktemp("q3-gguf") / "gguf"
    proc = run_qtool("export", "gguf", q3, "--quant", "f32,q4_k_m", "--mmproj", "f32", "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _picture(seed: int, size=(512, 384)) -> Image.Image:
    """Noise at a size both preprocessors leave as is (llama.cpp's lower pixel limit is not the processor's)."""
    return Image.fromarray((np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype("uint8"))


def test_gguf_text_model_matches_transformers(q3, q3_gguf):
    """q/k norms, interleaved M-RoPE sections and the stated head_dim as llama.cpp's qwen3vl reads them."""
    result = gguf_validate.text_logits(q3_gguf, "f32", q3, ["How many shapes are there?", "Describe a red square."])
    assert result["top1_agreement"] == 1.0 and result["max_abs"] < 1e-2 * result["logit_scale"], result


def test_gguf_mmproj_returns_merger_and_deepstack_features(q3, q3_gguf):
    """llama.cpp's mmproj row per token = the merger's features then each DeepStack merger's, as transformers'."""
    result = gguf_validate.vision_embeddings(q3_gguf, q3, [_picture(0), _picture(1, (640, 480))], quant="f32")
    assert all(r["gguf_tokens"] == r["tokens"] for r in result["images"]), result
    assert result["worst_rel_l2"] < 1e-2, result


def test_consumers_cut_an_endless_answer_at_the_same_length(q3, q3_gguf):
    """On these release questions the random model repeats one token until stopped, in llama.cpp and in
    transformers alike: both consumers stop it after the same number of tokens, so their answers compare."""
    _, images, asked = answers.questions()
    gguf = LlamaCppModel(q3_gguf, profiles.profile_from_dict({"method": "gguf", "quant": "f32", "mmproj": "f32"}))
    ref = infer.TorchModel(*infer.load_model(q3, "float32")).answer(images[3:8], asked[3:8])
    assert all(ref) and gguf.answer(images[3:8], asked[3:8]) == ref


def test_gguf_answers_an_image_question_like_transformers(q3, q3_gguf):
    """The first answer token's distribution after an image question (image through the mmproj, DeepStack
    features into the first decoder layers), llama.cpp against transformers."""
    result = gguf_validate.next_token_logprobs(q3_gguf, "f32", q3, _picture(2), "How many shapes?")
    shared, gap = logprob_gap(result["gguf"], result["transformers"])
    assert shared >= 3 and gap < 1e-2, result
    quantized = GGUFModel(*gguf_files(q3_gguf, "q4_k_m"), n_ctx=1024)
    assert isinstance(quantized.answer(_picture(3), "How many shapes?"), str)


AVX512 = machine.vllm_avx512()   # vLLM's CPU build has its 4-bit kernel only there


def test_vllm_serves_qwen3_awq(q3_artifacts):
    """vLLM loads the AWQ artifact where its CPU build has the 4-bit kernel (AVX-512) and streams greedy tokens
    from an image prompt; elsewhere it refuses it with the fix. (GPTQ-Int4 in vLLM: test_release_verify_and_eval,
    whose verify makes the same log-probability check; float serving on such CPUs is tests/test_serve.py's; a vLLM
    start costs over 3 minutes there.)"""
    vllm_python()
    folder = q3_artifacts["awq-int4"]
    if not AVX512:
        assert_one_line_error(run_qtool("serve", folder), "AVX-512")
        return
    image = Image.new("RGB", (300, 220), (20, 90, 200))
    with Server(servable(folder), port=free_port(), max_model_len=1024) as server:
        reply = client.chat(server.port, server.served.name, image, "How many shapes?", max_tokens=8, ignore_eos=True)
        served = client.next_token_logprobs(server.port, server.served.name, _picture(2), "How many shapes?",
                                             by_id=True)
    assert reply.error is None and reply.output_tokens == 8, reply
    # the same artifact in transformers (GPTQModel's kernel): vLLM's image path, DeepStack and 4-bit GEMM agree
    ref = infer.next_token_logprobs(*infer.load_model(folder), _picture(2), "How many shapes?", by_id=True)
    shared, gap = logprob_gap(served, ref)
    assert shared >= 2 and gap < 2e-2, (served, ref)


def test_release_verify_and_eval(q3, tmp_path):
    """release (quantize, ONNX export, bench, held-out answers, cards, checksums) then verify; eval's fidelity
    table. The ONNX variant's bench and verify answers run its tower in ONNX Runtime, DeepStack features included
    (release skips eval and answer agreement for random weights)."""
    out = tmp_path / "release"
    proc = run_qtool("release", q3, "--profiles", "gptq-int4,onnx-vision-fp32", "--samples", "8", "--eval-limit", "10",
                     "--bench-gen", "4", "--bench-repeats", "1", "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = {r["profile"]: r for r in json.loads((out / "bench" / "bench.json").read_text())["records"]}
    assert set(records) == {"bf16", "gptq-int4", "onnx-vision-fp32"}
    assert "ORT fp32 vision" in records["onnx-vision-fp32"]["kernel"]
    proc = run_qtool("--json", "verify", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["variant"]: r for r in json.loads(proc.stdout)["variants"]}
    gptq = next(r for name, r in rows.items() if name.endswith("gptq-int4"))
    assert gptq["load"].startswith("Qwen3VLForConditionalGeneration") and gptq["answers as released"] == "20/20"
    # served by vLLM where its CPU build has the 4-bit kernel: random weights' answers are shown, their first-token
    # log-probabilities checked against transformers'
    if AVX512:
        served = re.fullmatch(r"\d+/20 \(random weights\); first token: (\d+)\+ of top 20 shared, log-probs within "
                              r"(\S+)", gptq["vLLM = transformers"])
        assert served and int(served[1]) >= 10 and float(served[2]) < 2e-2, gptq   # 0.01 measured
    else:
        assert gptq["vLLM = transformers"].startswith("- (vLLM's CPU build"), gptq
    assert next(r for name, r in rows.items() if name.endswith("onnx-vision-fp32"))["load"].startswith("onnxruntime")
    released = next(out.glob("*-gptq-int4"))     # evaluated as released, not quantized again
    proc = run_qtool("eval", q3, "--dataset", TEST_SET, "--profiles", f"bf16,{released}", "--limit", "8",
                     "--out", tmp_path / "eval")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["profile"]: r for r in json.loads((tmp_path / "eval" / "eval.json").read_text())["rows"]}
    assert 0 < rows["gptq-int4"]["kl_answer"]["mean"] < 0.05 and rows["gptq-int4"]["kernel"] != "Linear"
    assert rows["gptq-int4"]["artifact"] == str(released)


def test_an_artifact_of_other_weights_is_refused(q3_artifacts, tmp_path):
    proc = qtool_in_process("eval", "qwen2-vl-tiny", "--profiles", f"bf16,{q3_artifacts['rtn-int4']}",
                            "--out", tmp_path / "eval")
    assert_one_line_error(proc, "built from other weights", "pass the model it was built from")
    assert not (tmp_path / "eval").exists()
