"""The embedded tiny model: deterministic tasks, a stock-loadable model, consistent generation."""

import hashlib
import json
import subprocess
import sys

import torch
from conftest import REPO, TINY

from qtool import infer
from recipes.tiny_model import heldout, tasks

HELDOUT = REPO / "qtool" / "assets" / "qwen2-vl-tiny-heldout"


def test_generator_is_deterministic_and_splits_differ():
    a, qa = tasks.sample("train", 17)
    b, qb = tasks.sample("train", 17)
    assert a == b and qa == qb and a.render().tobytes() == b.render().tobytes()
    assert tasks.scene("heldout", 17) != tasks.scene("train", 17)


def test_committed_heldout_set_regenerates_bit_identically(tmp_path):
    heldout.write(tmp_path, scenes=20)
    committed = (HELDOUT / "questions.jsonl").read_text().splitlines()
    fresh = (tmp_path / "questions.jsonl").read_text().splitlines()
    assert fresh == committed[:len(fresh)]
    for i in range(20):
        name = f"images/scene-{i:04d}.png"
        assert hashlib.sha256((tmp_path / name).read_bytes()).digest() == \
            hashlib.sha256((HELDOUT / name).read_bytes()).digest()
    rows = [json.loads(line) for line in committed]
    assert len(rows) == len(tasks.QUESTION_TYPES) * heldout.SCENES
    assert {r["type"] for r in rows} == set(tasks.QUESTION_TYPES)


def test_stock_transformers_loads_it_in_a_fresh_process():
    code = ("import sys, json; from transformers import AutoModelForImageTextToText, AutoProcessor;"
            f"m = AutoModelForImageTextToText.from_pretrained({str(TINY)!r}); "
            f"p = AutoProcessor.from_pretrained({str(TINY)!r});"
            "print(json.dumps([type(m).__name__, type(p).__name__, 'qtool' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["Qwen2VLForConditionalGeneration",
                                                               "Qwen2VLProcessor", False]


def test_reload_gives_identical_logits():
    items = heldout.items(2)
    images = [heldout.image(it.scene) for it in items]
    outs = []
    for _ in range(2):
        model, processor = infer.load_model(TINY)
        text = processor.apply_chat_template([infer.user_turn(images[0], items[0].question)], tokenize=False,
                                             add_generation_prompt=True)
        enc = processor(text=[text], images=[images[0]], return_tensors="pt")
        with torch.inference_mode():
            outs.append(model(**enc).logits)
    assert torch.equal(outs[0], outs[1])


def test_batched_generation_equals_one_by_one():
    model, processor = infer.load_model(TINY)
    items = heldout.items(6)
    images = [heldout.image(it.scene) for it in items]
    questions = [it.question for it in items]
    batched = infer.answer(model, processor, images, questions, batch_size=len(items))
    single = [infer.answer(model, processor, [im], [q])[0] for im, q in zip(images, questions)]
    assert batched == single


def test_heldout_accuracy_meets_the_bar():
    """400 held-out questions (the first 100 scenes): the training bar, 95% overall and 90% per type, holds on
    them (untrained weights score ~0: answers are free text), and each type is within 4 standard errors of
    the accuracy on the whole set recorded in training/accuracy.json."""
    recorded = json.loads((REPO / "training" / "accuracy.json").read_text())["accuracy"]
    model, processor = infer.load_model(TINY)
    items = heldout.items(100)
    got = infer.answer(model, processor, [heldout.image(it.scene) for it in items], [it.question for it in items])
    for kind in tasks.QUESTION_TYPES:
        pairs = [(g, it.answer) for g, it in zip(got, items) if it.kind == kind]
        accuracy = sum(g == a for g, a in pairs) / len(pairs)
        p = recorded[kind]
        se = max((p * (1 - p) / len(pairs)) ** 0.5, 1 / len(pairs))
        assert accuracy >= 0.90 and abs(accuracy - p) <= 4 * se, (kind, accuracy, p)
    overall = sum(g == it.answer for g, it in zip(got, items)) / len(items)
    assert overall >= 0.95, overall


def test_published_weights_are_the_last_recipe_stage_in_bf16():
    """Every stage of the training recipe is a valid train command chained to the one before, the shipped
    weights are the ones the last stage's publication recorded (training/ keeps no weights: their hash), and
    where the recipe has been run here, exactly the last stage's fp32 weights cast to bf16."""
    from safetensors.torch import load_file

    from recipes.tiny_model import recipe, train
    from recipes.tiny_model.finish import tensors_sha256

    for i, stage in enumerate(recipe.STAGES):
        args = train.parse_args(recipe.stage_argv(i))
        assert args.until == stage.last_step <= args.steps
        assert args.init_from == (recipe.TRAINING / recipe.STAGES[i - 1].folder if i else None)
    last = recipe.STAGES[-1]
    published = json.loads((REPO / "training" / "accuracy.json").read_text())
    assert published["stage"] == last.folder and published["step"] == last.last_step
    shipped = infer.load_model(TINY)[0].state_dict()   # the checkpoint stores Qwen2-VL's original key names
    assert tensors_sha256(shipped) == published["weights_sha256"]
    weights = recipe.TRAINING / last.folder / "model.safetensors"
    if recipe.finished(last) and weights.is_file():
        trained = load_file(weights)
        assert set(shipped) == set(trained)
        assert all(torch.equal(shipped[k], trained[k].to(torch.bfloat16)) for k in trained)
