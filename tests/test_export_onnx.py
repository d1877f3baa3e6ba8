"""qtool export onnx: real dynamo exports, real ONNX Runtime sessions, the torch-free runtime."""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from conftest import REPO, TINY, assert_one_line_error, qtool_in_process, run_qtool
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from qtool.export.onnx_quant import gemm_to_matmul
from qtool.export.onnx_validate import case_images, rel_l2, torch_embeds
from qtool.export.onnx_vision import export_onnx
from qtool.export.vision_tower import load_vision_tower, reference_inputs
from qtool.runtime import onnx_io as io
from qtool.runtime import vision as rv

torch.set_num_threads(1)
LOOSE = {"fp16": 1e-2, "int8": 0.05, "int4": 0.15}   # worst relative L2 vs torch, quantized variants
UNSEEN = {  # sizes in neither EXPORT_GRIDS nor VALIDATION_CASES
    "56x588": ((56, 588),),
    "420x252": ((420, 252),),
    "three images": ((112, 112), (250, 190), (28, 84)),
}


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "tiny"
    proc = run_qtool("--json", "export", "onnx", "qwen2-vl-tiny", "--out", out, "--precision", "fp32,fp16,int8,int4",
                     env={"OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def q25_export(tmp_path_factory):
    from qtool.models.random_build import build_random

    root = tmp_path_factory.mktemp("q25")
    build_random("qwen2.5-vl-test", root / "model")
    result = export_onnx(root / "model", root / "onnx", precisions=("fp32", "int8"))
    return root / "model", result


def tower(path):
    from transformers import AutoConfig

    return load_vision_tower(path, AutoConfig.from_pretrained(path))


def test_tiny_export_writes_every_precision_and_validation(tiny_export):
    out, report = tiny_export
    assert set(report["files"]) == set(io.PRECISIONS)
    for precision, name in io.PRECISIONS.items():
        assert (out / name).is_file() and report["sizes"][precision] == (out / name).stat().st_size
    assert report["sizes"]["int4"] < report["sizes"]["int8"] < report["sizes"]["fp16"] < report["sizes"]["fp32"]
    validation = json.loads((out / io.VALIDATION_FILE).read_text())
    assert validation["passed"] and validation == report["validation"]
    cases = validation["cases"]
    assert sum(len(c["images"]) == 1 for c in cases) >= 3 and any(len(c["images"]) == 2 for c in cases)
    seen = {(h * 14, w * 14) for h, w in io.EXPORT_GRIDS}
    assert all(tuple(s) not in seen for c in cases for s in c["images"])
    for case in cases:
        assert case["precisions"]["fp32"]["rel_l2"] <= io.FP32_MAX_REL_L2, case
        for precision, bound in LOOSE.items():
            assert case["precisions"][precision]["rel_l2"] <= bound, (precision, case)
    assert not list(out.parent.glob(".tiny.partial-*"))


def test_graph_has_dynamic_patch_axis_and_no_grid_input(tiny_export, q25_export):
    for folder, model_type in ((tiny_export[0], "qwen2_vl"), (q25_export[1].out, "qwen2_5_vl")):
        model = onnx.load(str(folder / io.PRECISIONS["fp32"]))
        assert [i.name for i in model.graph.input] == list(io.INPUTS[model_type])
        assert [o.name for o in model.graph.output] == list(io.OUTPUTS[model_type])
        for value in (*model.graph.input, *model.graph.output):
            assert value.type.tensor_type.shape.dim[0].dim_param == io.DYNAMIC_AXES[value.name][0]
        config = json.loads((folder / io.CONFIG_FILE).read_text())
        assert config["model_type"] == model_type and config["inputs"] == list(io.INPUTS[model_type])


@pytest.mark.parametrize("which", ["tiny", "qwen2.5"])
def test_ort_matches_torch_at_unseen_resolutions(which, tiny_export, q25_export):
    folder, model_dir = (tiny_export[0], TINY) if which == "tiny" else (q25_export[1].out, q25_export[0])
    visual = tower(model_dir)
    encoder = rv.VisionEncoder(folder, threads=2)
    for seed, (name, sizes) in enumerate(UNSEEN.items()):
        images = case_images(sizes, seed=7 + seed)
        result = encoder.encode(images)
        patches = np.concatenate([rv.preprocess(im, encoder.config)[0] for im in images])
        ref = torch_embeds(visual, patches, result.grids)
        assert result.embeds.shape == ref.shape
        assert rel_l2(result.embeds, ref) <= io.FP32_MAX_REL_L2, name
        assert [len(e) for e in result.per_image()] == [t * h * w // 4 for t, h, w in result.grids]


def test_quantized_variants_load_and_stay_close(q25_export):
    model_dir, result = q25_export
    visual = tower(model_dir)
    images = case_images(((196, 280),), seed=3)
    fp32 = rv.VisionEncoder(result.out, "fp32").encode(images)
    int8 = rv.VisionEncoder(result.out, "int8").encode(images)
    patches = rv.preprocess(images[0], rv.VisionConfig.load(result.out))[0]
    ref = torch_embeds(visual, patches, fp32.grids)
    assert rel_l2(fp32.embeds, ref) <= io.FP32_MAX_REL_L2
    assert rel_l2(int8.embeds, ref) <= LOOSE["int8"]
    assert result.sizes["int8"] < result.sizes["fp32"]
    with pytest.raises(Exception, match="no int4 graph"):
        rv.VisionEncoder(result.out, "int4")


@pytest.fixture(scope="module")
def q3_model(tmp_path_factory):
    from qtool.models.random_build import build_random

    return build_random("qwen3-vl-test", tmp_path_factory.mktemp("q3") / "model").path


@pytest.mark.parametrize("which", ["tiny", "qwen2.5", "qwen3"])
def test_runtime_aux_inputs_equal_transformers_helpers(which, request):
    """Rotary angles, image and window ids, Qwen3-VL's position-table taps: numpy against transformers."""
    from transformers import AutoConfig

    from qtool.export.onnx_vision import runtime_config

    model_dir = {"tiny": lambda: TINY, "qwen2.5": lambda: request.getfixturevalue("q25_export")[0],
                 "qwen3": lambda: request.getfixturevalue("q3_model")}[which]()
    config = AutoConfig.from_pretrained(model_dir)
    visual = load_vision_tower(model_dir, config)
    data = runtime_config(config, visual, model_dir)
    cfg = rv.VisionConfig.from_dict(data)
    grids = [(1, 16, 24), (1, 4, 4), (1, 10, 30), (2, 8, 12), (1, 22, 14)]
    ref = reference_inputs(visual, torch.tensor(grids), config.model_type)
    n = sum(t * h * w for t, h, w in grids)
    mine = rv.graph_inputs(np.zeros((n, 1176), np.float32), grids, cfg)
    assert set(mine) == set(io.INPUTS[config.model_type])
    for name, value in ref.items():
        assert mine[name].dtype == value.numpy().dtype
        np.testing.assert_allclose(mine[name], value.numpy(), atol=1e-6, rtol=0, err_msg=name)


def test_runtime_preprocessing_equals_the_processor():
    from transformers import AutoProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    stock = AutoProcessor.from_pretrained(TINY).image_processor
    keys = ("size", "image_mean", "image_std", "patch_size", "merge_size", "temporal_patch_size", "resample")
    pil = Qwen2VLImageProcessorPil(**{k: v for k, v in stock.to_dict().items() if k in keys})
    cfg = rv.VisionConfig.from_dict(_tiny_config())
    rgba = Image.new("RGBA", (90, 60), (10, 200, 30, 128))
    for image in [*case_images(((112, 112), (333, 250), (40, 900), (57, 57)), seed=1), rgba]:
        patches, grid = rv.preprocess(image, cfg)
        want = pil(images=[image], return_tensors="np")
        np.testing.assert_array_equal(patches, want["pixel_values"])
        assert [list(grid)] == stock(images=[image], return_tensors="np")["image_grid_thw"].tolist()


def _tiny_config() -> dict:
    from transformers import AutoConfig

    from qtool.export.onnx_vision import runtime_config

    config = AutoConfig.from_pretrained(TINY)
    return runtime_config(config, load_vision_tower(TINY, config), TINY)


RUNTIME_CHILD = """
import json, sys
import numpy as np
from PIL import Image
from qtool.runtime.vision import VisionEncoder
folder, out = sys.argv[1], sys.argv[2]
images = [Image.open(p) for p in sys.argv[3:]]
result = VisionEncoder(folder, "int8").encode(images)
np.save(out, result.embeds)
assert "torch" not in sys.modules and "transformers" not in sys.modules, "runtime imported torch"
print(json.dumps({"grids": result.grids, "shape": list(result.embeds.shape)}))
"""


def test_runtime_runs_without_torch(tiny_export, tmp_path):
    folder = tiny_export[0]
    paths = []
    for i, image in enumerate(case_images(((140, 196), (84, 84)), seed=11)):
        paths.append(tmp_path / f"im{i}.png")
        image.save(paths[-1])
    proc = subprocess.run([sys.executable, "-c", RUNTIME_CHILD, str(folder), str(tmp_path / "e.npy"), *map(str, paths)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["grids"] == [[1, 10, 14], [1, 6, 6]] and info["shape"] == [35 + 9, 256]
    visual = tower(TINY)
    images = [Image.open(p) for p in paths]
    cfg = rv.VisionConfig.load(folder)
    patches = np.concatenate([rv.preprocess(im, cfg)[0] for im in images])
    ref = torch_embeds(visual, patches, [tuple(g) for g in info["grids"]])
    assert rel_l2(np.load(tmp_path / "e.npy"), ref) <= LOOSE["int8"]


def test_heldout_answers_agree_on_a_sample(tiny_export):
    from qtool.eval.agreement import heldout_agreement

    result = heldout_agreement("qwen2-vl-tiny", tiny_export[0], "fp32", limit=60)
    assert result.questions == 60
    assert result.rate >= 0.99, result


def test_gemm_rewrite_keeps_the_numbers(tmp_path):
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1, name="g")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    rewritten = gemm_to_matmul(onnx.ModelProto.FromString(model.SerializeToString()))
    assert [n.op_type for n in rewritten.graph.node] == ["MatMul", "Add"]
    x = rng.standard_normal((4, 3)).astype(np.float32)
    run = lambda m: ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})[0]  # noqa: E731
    np.testing.assert_allclose(run(rewritten), run(model), rtol=1e-6, atol=1e-6)


def test_tables_have_no_duplicates():
    for model_type, names in io.INPUTS.items():
        assert len(set(names)) == len(names) and set(names) <= set(io.DYNAMIC_AXES), model_type
    assert len(set(io.PRECISIONS.values())) == len(io.PRECISIONS)
    sizes = [tuple(s) for sizes in io.VALIDATION_CASES.values() for s in sizes]
    assert not set(sizes) & {(h * patch, w * patch) for h, w in io.EXPORT_GRIDS for patch in (14, 16)}
    assert set(io.OUTPUTS) == set(io.INPUTS) and all(set(o) <= set(io.DYNAMIC_AXES) for o in io.OUTPUTS.values())


def test_bad_inputs_are_one_line_errors(tmp_path, tiny_export):
    not_model = tmp_path / "llama"
    not_model.mkdir()
    (not_model / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert_one_line_error(qtool_in_process("export", "onnx", not_model, "--out", tmp_path / "o1"), "not supported")
    assert_one_line_error(qtool_in_process("export", "onnx", tmp_path / "missing", "--out", tmp_path / "o2"),
                          "does not exist")
    existing = tiny_export[0]
    assert_one_line_error(qtool_in_process("export", "onnx", "qwen2-vl-tiny", "--out", existing),
                          "already exists", "--force")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert_one_line_error(qtool_in_process("export", "onnx", "qwen2-vl-tiny", "--out", a_file), "is not a folder")
    assert_one_line_error(qtool_in_process("export", "onnx", "qwen2-vl-tiny", "--out", a_file / "sub"), "not a folder")
    assert_one_line_error(qtool_in_process("export", "onnx", "qwen2-vl-tiny", "--out", tmp_path / "o3",
                                    "--precision", "fp32,fp8"), "unknown precision")
    proc = qtool_in_process("export", "onnx", "qwen2-vl-tiny", "--out", tmp_path / "o4", "--opset", "11")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert not any(p.name.startswith(("o1", "o2", "o3", "o4", ".o")) for p in tmp_path.iterdir())
