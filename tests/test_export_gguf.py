"""qtool export gguf: real GGUF files loaded by real llama.cpp (llama-cpp-python), compared with torch."""

import json
import subprocess
import sys

import llama_cpp  # noqa: F401  the llama extra (make install) provides it; without it this suite fails, not vanishes
import pytest
from conftest import REPO, TINY, assert_one_line_error, qtool_in_process, run_qtool

from qtool.export import gguf_validate
from qtool.export.onnx_validate import synthetic_image
from qtool.fingerprint import sha256_file
from recipes.tiny_model import splits

QUANTS = ("f32", "f16", "q8_0", "q4_k_m")
N_QUESTIONS = 150


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    out = tmp_path_factory.mktemp("gguf") / "tiny"
    proc = run_qtool("--json", "export", "gguf", "qwen2-vl-tiny", "--out", out, "--quant", ",".join(QUANTS))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def questions():
    items = splits.items("test", scenes=N_QUESTIONS // 5)
    return [splits.image("test", i.scene) for i in items], [i.question for i in items]


@pytest.fixture(scope="module")
def float_answers(questions):
    from qtool.infer import answer, load_model

    model, processor = load_model(TINY, "float32")
    return answer(model, processor, *questions)


def test_files_manifest_and_tokenizer(export):
    out, result = export
    manifest = json.loads((out / "qtool.json").read_text())
    assert set(manifest["files"]) == set(QUANTS)
    for name in [*manifest["files"].values(), manifest["mmproj"]["file"]]:
        assert (out / name).stat().st_size == manifest["sizes"][name]
        assert sha256_file(out / name) == manifest["sha256"][name]
    assert manifest["tokenizer_check"]["mismatches"] == 0 and manifest["tokenizer_check"]["texts"] >= 50
    assert result["files"]["q4_k_m"] == "qwen2-vl-tiny-q4_k_m.gguf"
    sizes = {q: manifest["sizes"][f] for q, f in manifest["files"].items()}
    assert sizes["q4_k_m"] < sizes["q8_0"] < sizes["f16"] < sizes["f32"]
    assert not list(out.glob(".base-*"))


def test_gguf_metadata_as_llama_cpp_expects(export):
    from gguf import GGUFReader

    out, _ = export
    text = GGUFReader(out / "qwen2-vl-tiny-f16.gguf")
    fields = {k: f.contents() for k, f in text.fields.items() if not k.startswith("GGUF.")}
    assert fields["general.architecture"] == "qwen2vl"
    assert fields["qwen2vl.rope.dimension_sections"] == [8, 12, 12, 0]
    assert fields["tokenizer.ggml.pre"] == "qwen2" and fields["tokenizer.ggml.add_bos_token"] is False
    assert "<|vision_start|>" in fields["tokenizer.chat_template"]
    mmproj = GGUFReader(out / "mmproj-qwen2-vl-tiny-f16.gguf")
    fields = {k: f.contents() for k, f in mmproj.fields.items() if not k.startswith("GGUF.")}
    assert fields["clip.projector_type"] == "qwen2vl_merger" and fields["clip.vision.block_count"] == 4
    names = {t.name for t in mmproj.tensors}
    assert {"v.patch_embd.weight", "v.patch_embd.weight.1", "v.blk.3.attn_q.weight", "mm.0.weight",
            "mm.2.weight", "v.post_ln.weight"} <= names


def test_f32_logits_match_transformers(export, questions):
    out, _ = export
    report = gguf_validate.text_logits(out, "f32", TINY, questions[1][:12])
    assert report["top1_agreement"] == 1.0, report
    assert report["max_abs"] < 2e-2 * max(1.0, report["logit_scale"]), report


def test_mmproj_embeddings_match_torch(export):
    """Sides that are multiples of 28 px: same pixels on both sides. (Other sizes: llama.cpp letterboxes
    where transformers stretches, so the grids agree but the pixels do not; see docs/gguf.md.)"""
    out, _ = export
    images = [splits.image("test", 0), synthetic_image(168, 252, 1), synthetic_image(420, 280, 2)]
    report = gguf_validate.vision_embeddings(out, TINY, images)
    for row in report["images"]:
        assert row["gguf_tokens"] == row["tokens"], row
        assert row["rel_l2"] < 1e-3, row            # mmproj in F16


@pytest.mark.parametrize("quant,bar", [("f16", 0.98), ("q8_0", 0.98), ("q4_k_m", 0.90)])
def test_heldout_answers_match_float(export, questions, float_answers, quant, bar):
    out, _ = export
    report = gguf_validate.answers(out, quant, TINY, *questions, reference=float_answers)
    assert report["agreement"] >= bar, (report["agreement"], report["answers"][:10], report["reference"][:10])


def test_runtime_needs_no_torch(export, questions):
    out, _ = export
    image = out.parent / "q.png"
    questions[0][0].save(image)
    code = (
        "import sys\n"
        "from PIL import Image\n"
        "from qtool.runtime.llamacpp import GGUFModel\n"
        f"m = GGUFModel({str(out / 'qwen2-vl-tiny-q8_0.gguf')!r}, {str(out / 'mmproj-qwen2-vl-tiny-f16.gguf')!r})\n"
        f"print(m.answer(Image.open({str(image)!r}), {questions[1][0]!r}))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip()


def test_bench_llamacpp_profile(tmp_path):
    out = tmp_path / "bench"
    proc = run_qtool("--json", "bench", "qwen2-vl-tiny", "--profiles", "bf16,gguf-q4_k_m", "--gen", "16",
                     "--repeats", "1", "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = {r["profile"]: r for r in json.loads((out / "bench.json").read_text())["records"]}
    gguf = records["gguf-q4_k_m"]
    assert gguf["engine"] == "llama.cpp" and gguf["input_tokens"] > 64
    length = gguf["lengths"][0]
    assert all(run["new_tokens"] == 16 for run in length["runs"])
    assert length["decode_tok_s_median"] > 0 and length["peak_memory_mb"] > 0
    assert "gguf-q4_k_m" in (out / "table.md").read_text()


@pytest.mark.parametrize("args,needles", [
    (("--quant", "q3_x"), ("unknown gguf quant", "q4_k_m")),
    (("--mmproj", "q4_0"), ("q4_0",)),
])
def test_bad_quant_names(tmp_path, args, needles):
    proc = qtool_in_process("export", "gguf", "qwen2-vl-tiny", "--out", tmp_path / "x", *args)
    assert_one_line_error(proc, *needles)
    assert not (tmp_path / "x").exists()


def test_refuses_existing_output_and_quantized_input(tmp_path, export):
    out, _ = export
    proc = qtool_in_process("export", "gguf", "qwen2-vl-tiny", "--out", out)
    assert_one_line_error(proc, "exists", "--force")
    fake = tmp_path / "gptq"
    fake.mkdir()
    config = json.loads((TINY / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "gptq", "bits": 4}
    (fake / "config.json").write_text(json.dumps(config))
    (fake / "model.safetensors").write_bytes((TINY / "model.safetensors").read_bytes())
    proc = qtool_in_process("export", "gguf", fake, "--out", tmp_path / "y")
    assert_one_line_error(proc, "quantized")
    assert not (tmp_path / "y").exists()
