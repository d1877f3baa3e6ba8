"""Write tasks.TEST_LAYOUTS_FILE: the three-object layouts no other split draws, which the test split uses.

    python -m recipes.tiny_model.test_layouts

Run once; the file is committed. Scenes are compared by layout (which colour and shape sit in which cell), so a
test scene is new to the model in what it shows, not only in where and how large the shapes are drawn.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

from recipes.tiny_model import recipe, splits, tasks, train


def drawn() -> Iterator[tasks.Scene]:
    """Every scene the recipe's training stages draw and the whole validation split, as first drawn."""
    for i, stage in enumerate(recipe.STAGES):
        args = train.parse_args(recipe.stage_argv(i))
        for step in range(stage.last_step):
            most = train.curriculum(step, args.objects_schedule)
            for b in range(args.batch):
                yield tasks.first_draw("train", step * args.batch + b, most)
    for i in range(splits.SCENES):
        yield tasks.first_draw("validation", i)


def three_object_layouts() -> Iterator[tasks.Layout]:
    for cells in itertools.combinations(range(len(tasks.CELLS)), 3):
        for colours in itertools.permutations(tasks.COLOURS, 3):
            for shapes in itertools.permutations(tasks.SHAPES, 3):
                yield frozenset(zip(colours, shapes, cells))


def main() -> None:
    seen = {tasks.layout(s) for s in drawn()}
    free = sorted(sorted(lay, key=lambda t: t[2]) for lay in three_object_layouts() if lay not in seen)
    tasks.TEST_LAYOUTS_FILE.write_text(json.dumps(free, separators=(",", ":")) + "\n")
    print(f"{len(free)} test layouts -> {tasks.TEST_LAYOUTS_FILE}")


if __name__ == "__main__":
    main()
