"""Train the embedded tiny Qwen2-VL on synthetic shape tasks.

    python -m recipes.tiny_model.train [--steps N] [--minutes M]

Resumable: state lives in ``--work`` (model, optimizer, step) and is written
every ``--ckpt-every`` steps and on SIGTERM/SIGINT; re-running continues from
it. Data are a pure function of (seed, step), so a resumed run sees the same
batches an uninterrupted one would. ``--export`` writes the final model folder.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoProcessor, GenerationConfig, Qwen2VLConfig, Qwen2VLForConditionalGeneration

from qtool import infer
from qtool.infer import answer_mask
from recipes.tiny_model import build, splits, tasks


def curriculum(step: int, schedule: tuple[int, int] = (1000, 2000)) -> int:
    """Most objects per scene at ``step``: one object first, two from ``schedule[0]``, three from ``schedule[1]``."""
    return 1 if step < schedule[0] else 2 if step < schedule[1] else 3


class VisionProbe(torch.nn.Module):
    """Training-only deep supervision of the vision tower (never exported).

    Trained through the language model alone, the vision tower collapsed into a colour detector whose
    output broadcast the object's colour to every token (red vs blue circle: cosine 0.05 on background
    tokens) while circle and square differed by ~1% (cosine 0.9998), and shape and position stayed at
    chance for 1750 steps. This probe asks every merged visual token for the shape and colour of the
    object in its grid cell, so the tower has to keep local shape information.
    """

    def __init__(self, width: int):
        super().__init__()
        self.shape = torch.nn.Linear(width, len(tasks.SHAPES) + 1)
        self.colour = torch.nn.Linear(width, len(tasks.COLOURS) + 1)

    def loss(self, tokens: torch.Tensor, scenes) -> torch.Tensor:
        shape_ids, colour_ids = cell_labels(scenes)
        return (torch.nn.functional.cross_entropy(self.shape(tokens), shape_ids)
                + torch.nn.functional.cross_entropy(self.colour(tokens), colour_ids))


def cell_labels(scenes) -> tuple[torch.Tensor, torch.Tensor]:
    """Per merged token (raster order over the 4x4 grid of 28 px tokens), the shape and colour ids of
    the object in the token's 2x2 grid cell (0 = empty)."""
    side = tasks.CANVAS // 28
    shapes, colours = [], []
    for scene in scenes:
        by_cell = {t.cell: t for t in scene.things}
        for r in range(side):
            for c in range(side):
                t = by_cell.get((r // (side // 2)) * 2 + c // (side // 2))
                shapes.append(0 if t is None else tasks.SHAPES.index(t.shape) + 1)
                colours.append(0 if t is None else list(tasks.COLOURS).index(t.colour) + 1)
    return torch.tensor(shapes), torch.tensor(colours)


def conversation(index: int, step: int, args):
    """A chat about one training scene: 1 to ``questions_per_image`` questions, kinds drawn from ``args.kinds``
    (a kind listed twice comes first twice as often)."""
    scene, qs = tasks.sample("train", index, curriculum(step, args.objects_schedule))
    by_kind = {q.kind: q for q in qs}
    rng = np.random.default_rng([args.seed, index])
    kinds = list(dict.fromkeys(args.kinds[i] for i in rng.permutation(len(args.kinds))))
    turns = [by_kind[k] for k in kinds[: int(rng.integers(1, min(len(kinds), args.questions_per_image) + 1))]]
    messages = []
    for turn, q in enumerate(turns):
        messages.append(infer.user_turn(scene if turn == 0 else None, q.question))  # image placeholder
        messages.append({"role": "assistant", "content": q.answer})
    return scene, messages


def make_batch(processor, step: int, args):
    scenes, texts = [], []
    for i in range(args.batch):
        scene, messages = conversation(step * args.batch + i, step, args)
        scenes.append(scene)
        texts.append(processor.apply_chat_template(messages, tokenize=False))
    images = [s.render() for s in scenes]
    enc = processor(text=texts, images=images, padding=True, return_tensors="pt")
    tok = processor.tokenizer
    prefix = tok.encode("<|im_start|>assistant\n")
    enc["labels"] = answer_mask(enc["input_ids"], prefix, tok.convert_tokens_to_ids("<|im_end|>"))
    return enc, scenes


def evaluate(model, processor, scenes: int, kinds: tuple[str, ...] = tasks.QUESTION_TYPES,
             split: str = "validation") -> dict[str, float]:
    model.eval()
    items = splits.items(split, scenes, kinds)
    images = {i: splits.image(split, i) for i in range(scenes)}
    got = infer.answer(model, processor, [images[it.scene] for it in items], [it.question for it in items],
                       batch_size=64)
    model.train()
    acc: dict[str, list[bool]] = {}
    for it, a in zip(items, got):
        acc.setdefault(it.kind, []).append(a == it.answer)
    result = {k: float(np.mean(v)) for k, v in acc.items()}
    result["overall"] = float(np.mean([a == it.answer for it, a in zip(items, got)]))
    return result


def lr_at(step: int, steps: int, peak: float, warmup: int = 100) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


class Run:
    def __init__(self, work: Path, args):
        self.work, self.args = work, args
        work.mkdir(parents=True, exist_ok=True)
        if not (work / "processor" / "tokenizer.json").exists():
            processor = build.build_processor()
            processor.save_pretrained(work / "processor")
            build.build_config(processor.tokenizer).save_pretrained(work / "processor")
        self.processor = AutoProcessor.from_pretrained(work / "processor")
        config = Qwen2VLConfig.from_pretrained(work / "processor")
        torch.manual_seed(args.seed)
        self.model = Qwen2VLForConditionalGeneration(config).float()
        self.probe = VisionProbe(config.text_config.hidden_size)
        vision = [p for n, p in self.model.named_parameters() if n.startswith("model.visual")]
        vision += list(self.probe.parameters())
        text = [p for n, p in self.model.named_parameters() if not n.startswith("model.visual")]
        self.opt = torch.optim.AdamW(
            [{"params": text, "scale": 1.0}, {"params": vision, "scale": args.vision_lr_scale}],
            lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01,
        )
        self.step = 0
        if (work / "state.json").exists():
            self.model.load_state_dict(load_file(work / "model.safetensors"), strict=True)
            if (work / "probe.safetensors").exists():
                self.probe.load_state_dict(load_file(work / "probe.safetensors"))
            if (work / "optimizer.pt").exists():
                self.opt.load_state_dict(torch.load(work / "optimizer.pt", weights_only=True))
            self.step = json.loads((work / "state.json").read_text())["step"]
        elif args.init_from:
            state = load_file(args.init_from / "model.safetensors")
            if args.init_vision_only:  # the language model starts afresh on top of the trained vision tower
                state = {k: v for k, v in state.items() if k.startswith("model.visual")}
            self.model.load_state_dict(state, strict=not args.init_vision_only)
            self.probe.load_state_dict(load_file(args.init_from / "probe.safetensors"))

    def save(self) -> None:
        tmp = self.work / "tmp"
        tmp.mkdir(exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.model.state_dict().items()}, tmp / "model.safetensors")
        save_file(self.probe.state_dict(), tmp / "probe.safetensors")
        torch.save(self.opt.state_dict(), tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps({"step": self.step, "seed": self.args.seed}))
        for name in ("model.safetensors", "probe.safetensors", "optimizer.pt", "state.json"):  # state.json last
            (tmp / name).replace(self.work / name)

    def log(self, record: dict) -> None:
        with open(self.work / "train_log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)

    def export(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        tok = self.processor.tokenizer
        self.model.generation_config = GenerationConfig(
            do_sample=False, max_new_tokens=32, pad_token_id=tok.pad_token_id,
            bos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
            eos_token_id=[tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")],
        )
        self.model.save_pretrained(out)
        self.processor.save_pretrained(out)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("training/qwen2-vl-tiny"))
    ap.add_argument("--export", type=Path, default=None, help="write the model folder here at the end")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--minutes", type=float, default=None, help="stop (and checkpoint) after this long")
    ap.add_argument("--until", type=int, default=None, help="stop (and checkpoint) at this step; the schedule "
                    "still runs over --steps")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--vision-lr-scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ckpt-every", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-scenes", type=int, default=60)
    ap.add_argument("--probe-weight", type=float, default=1.0, help="weight of the vision-probe loss")
    ap.add_argument("--kinds", type=lambda v: tuple(v.split(",")), default=tasks.QUESTION_TYPES,
                    help="question types trained and evaluated")
    ap.add_argument("--questions-per-image", type=int, default=5, help="most turns per conversation")
    ap.add_argument("--objects-schedule", type=lambda v: tuple(int(x) for x in v.split(",")), default=(1000, 2000),
                    help="steps at which scenes get up to two, then three objects")
    ap.add_argument("--init-from", type=Path, default=None,
                    help="start a new run from the weights (model and probe) of another run's state")
    ap.add_argument("--init-vision-only", action="store_true", help="with --init-from: take only the vision tower")
    return ap.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    run = Run(args.work, args)
    stop = {"now": False}
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.update(now=True))
    deadline = time.time() + args.minutes * 60 if args.minutes else math.inf
    merged: list[torch.Tensor] = []
    run.model.model.visual.merger.register_forward_hook(lambda m, i, o: merged.append(o))
    run.model.train()
    t0, losses = time.time(), []
    first, last = run.step, min(args.steps, args.until or args.steps)
    eval_kinds = tuple(dict.fromkeys(args.kinds))
    if run.step >= last:
        print(f"{args.work}: already at step {run.step}, nothing to train")
    else:
        run.log({"step": run.step, "start": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}})
    while run.step < last and not stop["now"] and time.time() < deadline:
        lr = lr_at(run.step, args.steps, args.lr)
        for group in run.opt.param_groups:
            group["lr"] = lr * group["scale"]
        batch, scenes = make_batch(run.processor, run.step, args)
        merged.clear()
        lm_loss = run.model(**batch).loss
        probe_loss = run.probe.loss(merged[-1], scenes)
        loss = lm_loss + args.probe_weight * probe_loss
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(run.model.parameters()) + list(run.probe.parameters()), 1.0)
        run.opt.step()
        run.step += 1
        losses.append((float(lm_loss), float(probe_loss)))
        if run.step % 25 == 0:
            run.log({"step": run.step, "loss": float(np.mean([x[0] for x in losses])),
                     "probe_loss": float(np.mean([x[1] for x in losses])), "lr": lr,
                     "s_per_step": (time.time() - t0) / len(losses),
                     "image_token_norm": float(merged[-1].detach().norm(dim=-1).mean()),
                     "max_objects": curriculum(run.step, args.objects_schedule)})
            t0, losses = time.time(), []
        if run.step % args.ckpt_every == 0:
            run.save()
        if run.step % args.eval_every == 0:
            accuracy = evaluate(run.model, run.processor, args.eval_scenes, eval_kinds)
            run.log({"step": run.step, "validation_accuracy": accuracy})
    if run.step > first:
        run.save()
    if args.export and run.step >= args.steps:
        run.export(args.export)


if __name__ == "__main__":
    main()
