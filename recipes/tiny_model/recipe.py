"""The bundled model's whole training, stage by stage, then its publication.

    python -m recipes.tiny_model.recipe          (or: make tiny-model)

Each stage is one ``recipes.tiny_model.train`` run in its own folder under training/, started from the previous
stage's weights. The command resumes after the last finished stage (a stage is finished when its state is
at its last step), continues an interrupted stage from its checkpoint, and ends with ``recipes.tiny_model.finish``
on the last stage. Thread counts are the recorded ones: float reductions depend on them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from recipes import ROOT
from recipes.tiny_model import finish, train

TRAINING = ROOT / "training"
ONE_QUESTION = ("--questions-per-image", "1", "--objects-schedule", "0,0", "--eval-every", "250",
                "--eval-scenes", "60", "--threads", "1")


@dataclass(frozen=True)
class Stage:
    folder: str
    last_step: int
    args: tuple[str, ...]


STAGES = (
    # vision tower and language model together; five question types, multi-turn chats, one object first
    Stage("qwen2-vl-tiny", 4500, ("--kinds", "colour,shape,count,describe,position", "--steps", "8000",
                                  "--eval-every", "500", "--eval-scenes", "100", "--threads", "2")),
    # a new language model on stage 1's vision tower, one question per chat, up to three objects throughout
    Stage("qwen2-vl-tiny-stage2", 2800, ("--init-vision-only", "--kinds", "colour,shape,count,describe",
                                         "--lr", "1e-3", "--steps", "4000", *ONE_QUESTION)),
    # colour questions (the last to be learned) three times as often
    Stage("qwen2-vl-tiny-stage3", 1300, ("--kinds", "colour,colour,colour,shape,count,describe",
                                         "--lr", "5e-4", "--steps", "3000", *ONE_QUESTION)),
    # colour and describe (three-object order) twice as often, lower learning rate
    Stage("qwen2-vl-tiny-stage4", 2000, ("--kinds", "colour,colour,shape,count,describe,describe",
                                         "--lr", "3e-4", "--steps", "2000", *ONE_QUESTION)),
)


def finished(stage: Stage) -> bool:
    state = TRAINING / stage.folder / "state.json"
    return state.is_file() and json.loads(state.read_text())["step"] >= stage.last_step


def stage_argv(index: int) -> list[str]:
    stage = STAGES[index]
    argv = ["--work", str(TRAINING / stage.folder), "--until", str(stage.last_step), *stage.args]
    if index:
        argv += ["--init-from", str(TRAINING / STAGES[index - 1].folder)]
    return argv


def main() -> None:
    done = [i for i, s in enumerate(STAGES) if finished(s)]
    for index in range(done[-1] + 1 if done else 0, len(STAGES)):
        train.main(stage_argv(index))
        if not finished(STAGES[index]):
            raise SystemExit(f"stage {STAGES[index].folder} stopped before step {STAGES[index].last_step}; "
                             "run the same command again to continue it")
    finish.main(["--work", str(TRAINING / STAGES[-1].folder)])


if __name__ == "__main__":
    main()
