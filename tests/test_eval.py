"""qtool eval end to end on the tiny model (CI-sized), and dataset validation."""

import json

import pytest
from conftest import assert_one_line_error, qtool_in_process, run_qtool
from PIL import Image

from qtool.eval import fidelity
from recipes.tiny_model import tasks


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "res"
    proc = run_qtool("--json", "eval", "qwen2-vl-tiny", "--profiles", "bf16,rtn-int4,fp32,onnx-vision-fp32",
                     "--limit", "40", "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads(proc.stdout)


def test_float_against_itself_is_exact(eval_run):
    _, report = eval_run
    ref = report["rows"][0]
    assert ref["profile"] == "bf16" and ref["reference"] == "bf16"
    assert ref["kl_answer"]["mean"] == 0 and ref["kl_all_text"]["p99"] == 0
    assert ref["top1_answer"] == 1.0 and ref["top1_all_text"] == 1.0 and ref["recovery"] == 1.0


def test_quantized_row_is_measured(eval_run):
    out, report = eval_run
    q = report["rows"][1]
    assert q["profile"] == "rtn-int4"
    assert q["kl_answer"]["mean"] > 0 and q["kl_answer"]["p99"] >= q["kl_answer"]["mean"]
    assert 0 < q["top1_all_text"] <= 1 and q["caption_perplexity"] > 1
    acc = q["accuracy"]
    assert acc["overall"]["n"] == 40 and set(tasks.QUESTION_TYPES) <= set(acc)
    assert all(0 <= v["accuracy"] <= 1 and v["se"] >= 0 for v in acc.values())
    table = (out / "table.md").read_text()
    assert "| rtn-int4 |" in table and "KL answer" in table
    assert (out / "chart.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "eval.json").read_text()) == report


def test_precisions_are_compared_question_by_question(eval_run):
    """fp32 differs from bf16 by rounding only, int4 by quantization: question by question, fp32 is closer."""
    out, report = eval_run
    rtn, fp32 = report["rows"][1:3]
    assert fp32["profile"] == "fp32" and len(rtn["kl_answer"]["per_question"]) == 40
    assert rtn["kl_all_text"]["positions"] == fp32["kl_all_text"]["positions"]
    d = fidelity.paired_difference(rtn["kl_all_text"], fp32["kl_all_text"])
    assert d["diff"] == pytest.approx(rtn["kl_all_text"]["mean"] - fp32["kl_all_text"]["mean"])
    assert d["diff"] > 2 * d["se"] > 0
    table = (out / "table.md").read_text()
    assert "| rtn-int4 − fp32 |" in table


def _dataset(tmp_path, lines):
    d = tmp_path / "set"
    d.mkdir()
    Image.new("RGB", (56, 56), (200, 0, 0)).save(d / "ok.png")
    (d / "bad.png").write_bytes(b"not an image")
    (d / "q.jsonl").write_text("\n".join(lines) + "\n")
    return d / "q.jsonl"


@pytest.mark.parametrize("line, needle", [
    ('{"image": "ok.png", "question": "q?"}', "answer"),
    ('{"image": "ok.png", "question": "", "answer": "a"}', "question"),
    ('{"image": "../ok.png", "question": "q?", "answer": "a"}', "escapes"),
    ('{"image": "ok\\u0000.png", "question": "q?", "answer": "a"}', "NUL"),
    ('{"image": "missing.png", "question": "q?", "answer": "a"}', "missing.png"),
    ('{"image": "bad.png", "question": "q?", "answer": "a"}', "bad.png"),
    ('{"image": "ok.png", "question": "q?", "answer": "a"', "not valid JSON"),
    ('[1, 2]', "JSON object"),
])
def test_bad_dataset_records_rejected_in_one_line(tmp_path, line, needle):
    data = _dataset(tmp_path, ['{"image": "ok.png", "question": "q?", "answer": "a"}', line])
    proc = qtool_in_process("eval", "qwen2-vl-tiny", "--profiles", "bf16", "--dataset", data, "--out", tmp_path / "o")
    assert_one_line_error(proc, needle, "line 2")
    assert not (tmp_path / "o").exists()


def test_duplicate_ids_rejected(tmp_path):
    line = '{"id": "x", "image": "ok.png", "question": "q?", "answer": "a"}'
    proc = qtool_in_process("eval", "qwen2-vl-tiny", "--profiles", "bf16", "--dataset",
                            _dataset(tmp_path, [line, line]), "--out", tmp_path / "o")
    assert_one_line_error(proc, "duplicate id")


def test_an_exported_profile_is_evaluated_through_its_own_consumer(eval_run):
    """ONNX Runtime answers for the vision tower: accuracy and agreement with bf16's answers, no logits."""
    out, report = eval_run
    ref, onnx = report["rows"][0], report["rows"][3]
    assert (ref["consumer"], onnx["consumer"]) == ("transformers", "onnxruntime")
    assert onnx["accuracy"]["overall"]["n"] == 40 and onnx["same_answers"] >= 0.9
    assert onnx["kl_answer"] is None and ref["kl_answer"]["mean"] == 0
    assert "| onnx-vision-fp32 |" in (out / "table.md").read_text()
