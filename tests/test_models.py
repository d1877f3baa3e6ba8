"""Model shapes, random-weight checkpoints, checkpoint inspection and `qtool models`."""

import hashlib
import json
import shutil
import subprocess
import sys

import pytest
from conftest import assert_one_line_error, qtool_in_process, run_qtool
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from qtool.errors import QtoolError
from qtool.models import checkpoint
from qtool.models.checkpoint import inspect_checkpoint, resolve_model
from qtool.models.random_build import MARKER, build_random
from qtool.models.shapes import SHAPES, config_for, param_count

QUIET = {"TORCH_LOGS": "-all", "PYTHONWARNINGS": "ignore"}
PUBLISHED_B = {  # total parameters (billions) on the model cards
    "qwen2-vl-2b": 2.21, "qwen2-vl-7b": 8.29, "qwen2-vl-72b": 73.4, "qvq-72b-preview": 73.4,
    "qwen2.5-vl-3b": 3.75, "qwen2.5-vl-7b": 8.29, "qwen3-vl-8b": 8.77,
}
UNPUBLISHED = {"qwen3-vl-2b", "qwen3-vl-4b", "qwen3-vl-32b"}   # no exact count found in a public source
VISION_B = {"qwen2_vl": (0.6, 0.7), "qwen2_5_vl": (0.6, 0.7), "qwen3_vl": (0.4, 0.6)}   # tower + merger(s)

LOAD_AND_RUN = r"""
import sys, torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor
for d in sys.argv[1:]:
    model, info = AutoModelForImageTextToText.from_pretrained(d, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    proc = AutoProcessor.from_pretrained(d)
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many shapes?"}]}]
    text = proc.apply_chat_template(msgs, add_generation_prompt=True)
    inputs = proc(text=[text], images=[Image.new("RGB", (112, 84), (200, 30, 30))], return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape[:2] == inputs["input_ids"].shape and torch.isfinite(logits).all()
    print(type(model).__name__, type(proc).__name__, model.dtype, tuple(logits.shape))
"""


@pytest.fixture(scope="module")
def q2(tmp_path_factory):
    """qwen2-vl-test in 1 MiB shards, so that it has an index."""
    result = build_random("qwen2-vl-test", tmp_path_factory.mktemp("built") / "qwen2-vl-test", shard_bytes=2**20)
    assert result.shards > 1
    return result.path


@pytest.fixture(scope="module")
def q25(tmp_path_factory):
    """qwen2.5-vl-test (tied embeddings) built in-process, one file."""
    return build_random("qwen2.5-vl-test", tmp_path_factory.mktemp("built") / "qwen2.5-vl-test").path


def _headers(folder):
    shapes = {}
    for f in sorted(folder.glob("*.safetensors")):
        with safe_open(f, "pt") as h:
            shapes.update({k: (f.name, tuple(h.get_slice(k).get_shape()), h.get_slice(k).get_dtype())
                           for k in h.keys()})
    return shapes


def test_stock_transformers_loads_and_runs_both_architectures(q2, q25):
    proc = subprocess.run([sys.executable, "-c", LOAD_AND_RUN, str(q2), str(q25)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Qwen2VLForConditionalGeneration Qwen2VLProcessor torch.bfloat16" in proc.stdout
    assert "Qwen2_5_VLForConditionalGeneration Qwen2_5_VLProcessor torch.bfloat16" in proc.stdout


def test_index_and_shards_agree(q2):
    index = json.loads((q2 / "model.safetensors.index.json").read_text())
    headers = _headers(q2)
    assert {k: v[0] for k, v in headers.items()} == index["weight_map"]
    sizes = {f.name: f.stat().st_size for f in q2.glob("model-*.safetensors")}
    assert set(sizes) == set(index["weight_map"].values())
    assert all(size <= 2**20 + 2**16 for size in sizes.values())
    nbytes = sum(load_file(q2 / f)[k].nbytes for k, f in index["weight_map"].items())
    assert index["metadata"]["total_size"] == nbytes
    assert all(dtype == "BF16" for _, _, dtype in headers.values())


def test_names_and_shapes_match_save_pretrained(q2, q25, tmp_path):
    import transformers
    from transformers import AutoConfig

    for folder in (q2, q25):
        config = AutoConfig.from_pretrained(folder)
        model = getattr(transformers, config.architectures[0])(config)
        model.save_pretrained(tmp_path / folder.name)
        ours = {k: v[1] for k, v in _headers(folder).items()}
        theirs = {k: v[1] for k, v in _headers(tmp_path / folder.name).items()}
        assert ours == theirs
        assert not inspect_checkpoint(tmp_path / folder.name).random_weights
    assert "lm_head.weight" in _headers(q2) and "lm_head.weight" not in _headers(q25)  # q25 is tied


def test_config_uses_tokenizer_ids_and_marks_random(q2):
    from transformers import AutoTokenizer

    config = json.loads((q2 / "config.json").read_text())
    ids = AutoTokenizer.from_pretrained(q2).convert_tokens_to_ids
    assert config["image_token_id"] == ids("<|image_pad|>")
    assert config["video_token_id"] == ids("<|video_pad|>")
    assert config["vision_start_token_id"] == ids("<|vision_start|>")
    assert config["vision_end_token_id"] == ids("<|vision_end|>")
    assert config["text_config"]["eos_token_id"] == ids("<|im_end|>")
    assert config["text_config"]["bos_token_id"] == config["text_config"]["pad_token_id"] == ids("<|endoftext|>")
    assert config["dtype"] == "bfloat16" and config["architectures"] == ["Qwen2VLForConditionalGeneration"]
    marker = json.loads((q2 / MARKER).read_text())
    assert marker["random_weights"] is True and "speed and memory only" in marker["use"]
    info = inspect_checkpoint(q2)
    assert info.random_weights and info.dtype == "bfloat16" and info.adapter.model_type == "qwen2_vl"
    assert info.params == param_count(config_for("qwen2-vl-test"))["total"]


def test_weights_are_deterministic_per_seed(tmp_path):
    def digest(folder):
        return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()

    a = build_random("qwen2-vl-test", tmp_path / "a", seed=1).path
    b = build_random("qwen2-vl-test", tmp_path / "b", seed=1).path
    c = build_random("qwen2-vl-test", tmp_path / "c", seed=2).path
    assert digest(a) == digest(b) != digest(c)
    tensors = load_file(a / "model.safetensors")
    w = tensors["model.layers.0.mlp.up_proj.weight"].float()
    assert abs(w.std().item() - 0.02) < 0.002
    assert (tensors["model.layers.0.input_layernorm.weight"] == 1).all()
    assert (tensors["model.layers.0.self_attn.q_proj.bias"] == 0).all()


def test_existing_out_needs_force_and_force_is_careful(tmp_path):
    out = build_random("qwen2-vl-test", tmp_path / "m").path
    with pytest.raises(QtoolError, match="already exists"):
        build_random("qwen2-vl-test", out)
    assert build_random("qwen2-vl-test", out, force=True).path == out
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    with pytest.raises(QtoolError, match="refusing"):
        build_random("qwen2-vl-test", tmp_path / "precious", force=True)
    assert (tmp_path / "precious" / "notes.txt").read_text() == "keep me"


def test_interrupted_build_leaves_nothing(tmp_path):
    def interrupt(done, total, shard, shards):
        if shard == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_random("qwen2-vl-test", tmp_path / "m", shard_bytes=2**20, progress=interrupt)
    assert list(tmp_path.iterdir()) == []


def _copy(src, tmp_path, name="ckpt"):
    return shutil.copytree(src, tmp_path / name)


def _edit_config(folder, **fields):
    config = json.loads((folder / "config.json").read_text())
    for key, value in fields.items():
        target = config["text_config"] if key == "intermediate_size" else config
        target[key] = value
    (folder / "config.json").write_text(json.dumps(config))


def _truncate(folder):
    shard = sorted(folder.glob("model-*.safetensors"))[1]
    shard.write_bytes(shard.read_bytes()[:-100])


def _pickle_only(folder):
    _no_weights(folder)
    (folder / "pytorch_model.bin").write_bytes(b"not really a pickle")


def _no_weights(folder):
    for f in [*folder.glob("*.safetensors"), folder / "model.safetensors.index.json"]:
        f.unlink(missing_ok=True)


BAD = {
    "missing folder": (lambda f: shutil.rmtree(f), "does not exist"),
    "a file": (lambda f: (shutil.rmtree(f), f.write_text("x")), "not a model folder"),
    "no config": (lambda f: (f / "config.json").unlink(), "no config.json"),
    "bad json": (lambda f: (f / "config.json").write_text("{not json"), "not valid JSON"),
    "unsupported": (lambda f: _edit_config(f, model_type="llama"), "'llama'.*not supported.*qwen2_vl"),
    "no weights": (_no_weights, "no weights"),
    "pickle only": (_pickle_only, "only pickle weights.*--allow-pickle"),
    "truncated": (_truncate, "truncated or corrupt"),
    "missing shard": (lambda f: sorted(f.glob("model-*.safetensors"))[1].unlink(), "missing shard"),
    "shape mismatch": (lambda f: _edit_config(f, intermediate_size=640),
                       r"mlp\.\w+_proj\.weight .* has shape \[(512, 256|256, 512)\] but config.json implies"),
}


@pytest.mark.parametrize("case", BAD)
def test_inspect_rejects_bad_checkpoints(case, q2, tmp_path):
    folder = _copy(q2, tmp_path)
    break_it, message = BAD[case]
    break_it(folder)
    with pytest.raises(QtoolError, match=message) as err:
        inspect_checkpoint(folder)
    assert "\n" not in str(err.value) and err.value.fix


def test_inspect_missing_tensor_and_allow_pickle(q25, tmp_path):
    folder = _copy(q25, tmp_path)
    tensors = load_file(folder / "model.safetensors")
    del tensors["model.norm.weight"]
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(QtoolError, match="lacks 1 tensor.*model.norm.weight"):
        inspect_checkpoint(folder)
    _pickle_only(folder)
    info = inspect_checkpoint(folder, allow_pickle=True)
    assert info.format == "pickle" and info.weight_files[0].name == "pytorch_model.bin"


def test_inspect_accepts_hub_style_flat_config(q2, tmp_path):
    folder = _copy(q2, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    text = config.pop("text_config")
    rope = text.pop("rope_parameters")
    for key in ("layer_types", "model_type", "dtype"):
        text.pop(key, None)
    config.pop("dtype", None)
    config["vision_config"].pop("model_type")
    config.update(text, torch_dtype="bfloat16", rope_theta=rope["rope_theta"],
                  rope_scaling={"type": "mrope", "mrope_section": rope["mrope_section"]})
    (folder / "config.json").write_text(json.dumps(config))
    info = inspect_checkpoint(folder)
    assert info.config["text_config"]["num_hidden_layers"] == 2  # normalized to transformers 5's layout
    assert info.config["text_config"]["rope_parameters"]["mrope_section"] == [16, 24, 24]


def test_resolve_model(monkeypatch, tmp_path, q2):
    monkeypatch.setattr(checkpoint, "ASSETS", tmp_path)
    with pytest.raises(QtoolError, match="qwen2-vl-tiny is not built yet"):
        resolve_model("qwen2-vl-tiny")
    shutil.copytree(q2, tmp_path / "qwen2-vl-tiny")
    assert resolve_model("qwen2-vl-tiny") == tmp_path / "qwen2-vl-tiny"
    assert resolve_model(str(q2)) == q2
    with pytest.raises(QtoolError, match="build-random qwen2-vl-7b"):
        resolve_model("qwen2-vl-7b")


def test_models_json_lists_real_shapes_with_published_sizes():
    proc = run_qtool("--json", "models", env=QUIET)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert {a["model_type"] for a in report["architectures"]} == {"qwen2_vl", "qwen2_5_vl", "qwen3_vl"}
    assert [b["name"] for b in report["bundled"]] == ["qwen2-vl-tiny"]
    shapes = {s["name"]: s for s in report["shapes"]}
    assert set(shapes) == set(PUBLISHED_B) | UNPUBLISHED  # test shapes stay hidden
    for name, s in shapes.items():
        if name in PUBLISHED_B:
            billions = PUBLISHED_B[name]
            assert abs(s["params_total"] / 1e9 - billions) / billions < 0.05, (name, s["params_total"])
        assert s["params_total"] == s["params_text"] + s["params_vision"]
        low, high = VISION_B[SHAPES[name].model_type]
        assert low * 1e9 < s["params_vision"] < high * 1e9, name
        assert s["mirrors"] == SHAPES[name].repo_id


def test_published_text_fields():
    c = config_for("qwen2.5-vl-7b")
    text = c.text_config
    assert (text.hidden_size, text.num_hidden_layers, text.vocab_size) == (3584, 28, 152064)
    assert text.rope_parameters["mrope_section"] == [16, 24, 24]
    assert c.vision_config.out_hidden_size == 3584 and c.vision_config.fullatt_block_indexes == [7, 15, 23, 31]
    assert config_for("qwen2-vl-2b").vision_config.hidden_size == 1536
    assert config_for("qwen2-vl-2b").tie_word_embeddings and not config_for("qwen2-vl-7b").tie_word_embeddings


def test_cli_build_random_json(tmp_path):
    out = tmp_path / "m"
    proc = run_qtool("--json", "models", "build-random", "qwen2.5-vl-test", "--out", out, "--shard-mib", 1,
                     "--seed", 3, env=QUIET)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["path"] == str(out) and result["shards"] > 1 and result["name"] == "qwen2.5-vl-test"
    info = inspect_checkpoint(out)
    assert info.random_weights and info.params == result["params"] and info.total_bytes > result["bytes"]
    assert json.loads((out / MARKER).read_text())["seed"] == 3


def test_cli_errors_are_one_line(tmp_path):
    assert_one_line_error(qtool_in_process("models", "build-random", "unknown-name", env=QUIET),
                          "unknown model shape", "qwen2-vl-7b")
    assert_one_line_error(qtool_in_process("models", "build-random", "unknown-name", "--out", tmp_path, env=QUIET),
                          "unknown model shape")
    (tmp_path / "taken").mkdir()
    assert_one_line_error(qtool_in_process("models", "build-random", "qwen2-vl-test", "--out", tmp_path / "taken",
                                    env=QUIET), "already exists", "--force")
