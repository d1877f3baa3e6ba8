"""Build qtool/calibration/default_set/: the default calibration set (deterministic).

    python -m recipes.calib_set.build_default [--out qtool/calibration/default_set]

Natural photographs come from scikit-image's bundled samples (offline; licences
in qtool/calibration/default_set/README.md) with captions written for this set (default_text.py);
charts, documents, signs and shape scenes are rendered here from one fixed seed.
Shape scenes use their own layouts (224 px, free placement, varied
backgrounds), disjoint from the tiny model's 112 px grid tasks.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from qtool import paths
from recipes.calib_set.default_text import CHART_TOPICS, ITEMS, PARAGRAPHS, PHOTOS, SHOPS, SIGN_WORDS, TABLES

SEED = 20241122
COLOURS = {"red": (210, 45, 45), "green": (40, 150, 70), "blue": (45, 90, 200), "orange": (240, 140, 30),
           "purple": (130, 60, 170), "black": (20, 20, 20), "yellow": (230, 200, 40), "grey": (130, 130, 130)}
BACKGROUNDS = {"white": (255, 255, 255), "pale blue": (225, 235, 250), "cream": (250, 240, 220),
               "light grey": (215, 215, 215)}
NUMBER = ("no", "one", "two", "three", "four")
INK = (20, 20, 20)


def _font(size: int):
    return ImageFont.load_default(size=size)


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _save(image: Image.Image, folder: Path, name: str) -> str:
    rel = f"images/{name}"
    if name.endswith(".jpg"):
        image.save(folder / rel, quality=85)
    else:
        image.save(folder / rel, optimize=True)
    return rel


def photos(folder: Path) -> list[dict]:
    import skimage.data as data

    out = []
    for name, (full, crop, (q, a)) in PHOTOS.items():
        array = getattr(data, name)()
        if array.dtype != np.uint8:
            array = (array * 255).astype(np.uint8)
        image = Image.fromarray(array).convert("RGB")
        image.thumbnail((448, 448))
        w, h = image.size
        centre = image.crop((w // 5, h // 5, w - w // 5, h - h // 5))
        small = image.resize((max(56, w // 2), max(56, h // 2)))
        out += [
            {"id": f"photo-{name}", "image": _save(image, folder, f"photo-{name}.jpg"), "text": full},
            {"id": f"photo-{name}-crop", "image": _save(centre, folder, f"photo-{name}-crop.jpg"), "text": crop},
            {"id": f"photo-{name}-qa", "image": _save(small, folder, f"photo-{name}-small.jpg"), "text": a,
             "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]},
        ]
    return out


def _chart_caption(kind: str, topic: tuple, values: list[int]) -> str:
    title, xl, yl, labels, _ = topic
    listing = ", ".join(f"{label} {v}" for label, v in zip(labels, values))
    top, low = labels[values.index(max(values))], labels[values.index(min(values))]
    if kind == "bar":
        return (f"A bar chart titled '{title}' with {xl} on the x axis and {yl} on the y axis. The bars read "
                f"{listing}; {top} is the highest at {max(values)}.")
    if kind == "line":
        return (f"A line chart, '{title}', plotting {yl} by {xl}: {listing}. The highest point is {top} "
                f"({max(values)}) and the lowest is {low} ({min(values)}).")
    if kind == "pie":
        share = round(100 * max(values) / sum(values))
        return (f"A pie chart titled '{title}' with {len(labels)} slices: {listing}. The largest slice is "
                f"{top}, about {share} percent of the total.")
    return (f"A scatter plot titled '{title}' with one dot per {xl}, showing {yl}: {listing}. The highest dot "
            f"is {top} at {max(values)}.")


def charts(folder: Path, rng: random.Random, n: int = 30) -> list[dict]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    for i in range(n):
        topic = CHART_TOPICS[i % len(CHART_TOPICS)]
        title, xl, yl, labels, (lo, hi) = topic
        kind = ("bar", "line", "pie", "scatter")[(i + i // len(CHART_TOPICS)) % 4]
        values = [rng.randint(lo, hi) for _ in labels]
        fig, ax = plt.subplots(figsize=(3.6, 2.7), dpi=100)
        if kind == "pie":
            ax.pie(values, labels=labels)
        elif kind == "line":
            ax.plot(labels, values, marker="o")
        elif kind == "scatter":
            ax.scatter(range(len(values)), values, color="tab:red")
            ax.set_xticks(range(len(labels)), labels)
        else:
            ax.bar(labels, values, color=rng.choice(["tab:blue", "tab:green", "tab:orange"]))
        ax.set_title(title)
        if kind != "pie":
            ax.set_xlabel(xl)
            ax.set_ylabel(yl)
        fig.tight_layout()
        path = folder / "images" / f"chart-{i:02d}.png"
        fig.savefig(path, metadata={"Software": None})
        plt.close(fig)
        out.append({"id": f"chart-{i:02d}", "image": f"images/{path.name}",
                    "text": _chart_caption(kind, topic, values)})
    return out


def _receipt(draw, i: int, rng: random.Random) -> str:
    shop, bought = SHOPS[i % len(SHOPS)], rng.sample(ITEMS, rng.randint(3, 5))
    prices = [rng.randint(100, 999) / 100 for _ in bought]
    draw.text((12, 8), shop, fill=INK, font=_font(18))
    draw.text((12, 32), f"Receipt no. {1000 + i}", fill=INK, font=_font(13))
    for k, (item, price) in enumerate(zip(bought, prices)):
        draw.text((12, 56 + 24 * k), item, fill=INK, font=_font(16))
        draw.text((250, 56 + 24 * k), f"{price:.2f}", fill=INK, font=_font(16))
    y = 62 + 24 * len(bought)
    draw.line((10, y, 350, y), fill=INK)
    draw.text((12, y + 6), "TOTAL", fill=INK, font=_font(16))
    draw.text((250, y + 6), f"{sum(prices):.2f}", fill=INK, font=_font(16))
    items = ", ".join(f"{it} {p:.2f}" for it, p in zip(bought, prices))
    return f"A receipt from {shop.title()}, number {1000 + i}, listing {items}, with a total of {sum(prices):.2f}."


def _table(draw, i: int, rng: random.Random) -> str:
    title, column, pool, unit, (lo, hi) = TABLES[i % len(TABLES)]
    rows = [(label, rng.randint(lo, hi)) for label in sorted(rng.sample(pool, 4))]
    draw.text((12, 8), title, fill=INK, font=_font(18))
    draw.text((200, 40), column, fill=INK, font=_font(14))
    for k, (label, value) in enumerate(rows):
        draw.line((10, 60 + 32 * k, 350, 60 + 32 * k), fill=(160, 160, 160))
        draw.text((16, 66 + 32 * k), label, fill=INK, font=_font(16))
        draw.text((200, 66 + 32 * k), f"{value} {unit}".strip(), fill=INK, font=_font(16))
    if unit == "°C":
        listing = ", ".join(f"{label} {v} degrees" for label, v in rows)
        return f"A table titled '{title}' giving the temperature in Celsius for four cities: {listing}."
    if column == "Platform":
        listing = ", ".join(f"the {label} from platform {v}" for label, v in rows)
        return f"A timetable titled '{title}' with four departures: {listing}."
    listing = ", ".join(f"{label} {v}" for label, v in rows)
    return f"A table titled '{title}' listing four students and their {column.lower()}s: {listing}."


def _paragraph(draw, i: int) -> str:
    title, body, caption = PARAGRAPHS[i % len(PARAGRAPHS)]
    draw.text((14, 10), title, fill=INK, font=_font(20))
    for k, line in enumerate(textwrap.wrap(body, 38)):
        draw.text((14, 44 + 21 * k), line, fill=INK, font=_font(15))
    return caption


def documents(folder: Path, rng: random.Random, n: int = 24) -> list[dict]:
    out = []
    for i in range(n):
        image = Image.new("RGB", (360, 260), rng.choice([(250, 250, 245), (255, 255, 255), (245, 242, 230)]))
        draw = ImageDraw.Draw(image)
        kind = i % 3
        text = _receipt(draw, i, rng) if kind == 0 else _table(draw, i // 3, rng) if kind == 1 else \
            _paragraph(draw, i // 3)
        out.append({"id": f"doc-{i:02d}", "image": _save(image, folder, f"doc-{i:02d}.png"), "text": text})
    return out


def signs(folder: Path, rng: random.Random) -> list[dict]:
    out = []
    for i, word in enumerate(SIGN_WORDS):
        bg_name, fg_name = rng.choice([("red", "white"), ("green", "white"), ("blue", "white"), ("black", "yellow"),
                                       ("yellow", "black"), ("purple", "white"), ("orange", "black")])
        rounded, border = rng.random() < 0.5, rng.random() < 0.5
        image = Image.new("RGB", (280, 120), (205, 205, 200))
        draw = ImageDraw.Draw(image)
        fg = (255, 255, 255) if fg_name == "white" else COLOURS[fg_name]
        draw.rounded_rectangle((6, 6, 273, 113), radius=24 if rounded else 0, fill=COLOURS[bg_name],
                               outline=fg if border else None, width=4)
        font = _font(36 if len(word) < 8 else 30)
        box = draw.textbbox((0, 0), word, font=font)
        draw.text(((280 - box[2]) // 2, (120 - box[3]) // 2), word, fill=fg, font=font)
        corners = "rounded corners" if rounded else "square corners"
        edge = f" and a thin {fg_name} border" if border else ""
        noun = "words" if " " in word else "word"
        text = f"{_a(bg_name).capitalize()} sign with {corners}{edge} showing the {noun} '{word}' in {fg_name} " \
               f"capital letters."
        out.append({"id": f"sign-{i:02d}", "image": _save(image, folder, f"sign-{i:02d}.png"), "text": text})
    return out


def _draw_shape(draw, shape: str, x: int, y: int, r: int, fill) -> None:
    if shape == "circle":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    elif shape == "square":
        draw.rectangle((x - r, y - r, x + r, y + r), fill=fill)
    elif shape == "triangle":
        draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=fill)
    else:
        draw.polygon([(x + (r if k % 2 == 0 else r / 2) * np.cos(np.pi * k / 5 - np.pi / 2),
                       y + (r if k % 2 == 0 else r / 2) * np.sin(np.pi * k / 5 - np.pi / 2)) for k in range(10)],
                     fill=fill)


def shapes(folder: Path, rng: random.Random, n: int = 20) -> list[dict]:
    out = []
    for i in range(n):
        bg_name = rng.choice(list(BACKGROUNDS))
        image = Image.new("RGB", (224, 224), BACKGROUNDS[bg_name])
        draw = ImageDraw.Draw(image)
        placed, parts = [], []
        for _ in range(rng.randint(1, 4)):
            for _try in range(50):       # no overlaps: each shape stays clear of the others
                x, y, r = rng.randint(34, 190), rng.randint(34, 190), rng.randint(14, 30)
                if all((x - px) ** 2 + (y - py) ** 2 > (r + pr + 6) ** 2 for px, py, pr in placed):
                    break
            else:
                continue
            placed.append((x, y, r))
            colour = rng.choice([c for c in COLOURS if COLOURS[c] != BACKGROUNDS[bg_name]])
            shape = rng.choice(["circle", "square", "triangle", "star"])
            _draw_shape(draw, shape, x, y, r, COLOURS[colour])
            where = ("top" if y < 80 else "bottom" if y > 144 else "middle") + " " + \
                    ("left" if x < 80 else "right" if x > 144 else "centre")
            size = "small " if r < 20 else "large " if r > 26 else ""
            parts.append(f"{_a(size + colour)} {shape} at the {where}".replace("middle centre", "centre"))
        count = NUMBER[len(parts)]
        text = (f"A simple drawing on a {bg_name} background with {count} flat shape"
                f"{'s' if len(parts) > 1 else ''}: " + ", ".join(parts) + ".")
        out.append({"id": f"shapes-{i:02d}", "image": _save(image, folder, f"shapes-{i:02d}.png"), "text": text})
    return out


def build(out: Path) -> int:
    """Write the set to ``out`` (replacing it, README.md kept); return the record count."""
    if out.exists() and any(out.iterdir()) and not (out / "records.jsonl").is_file():
        raise SystemExit(f"{out} is not empty and holds no records.jsonl; refusing to replace it")
    rng = random.Random(SEED)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    records = photos(tmp) + charts(tmp, rng) + documents(tmp, rng) + signs(tmp, rng) + shapes(tmp, rng)
    (tmp / "records.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                                       encoding="utf-8")
    readme = out / "README.md"
    if readme.exists():
        shutil.copy2(readme, tmp / "README.md")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return len(records)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=paths.CALIB_DATA)
    print(build(ap.parse_args(argv).out), "records")


if __name__ == "__main__":
    main()
