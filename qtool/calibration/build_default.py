"""Build calib_data/: the default calibration set (deterministic).

    python -m qtool.calibration.build_default [--out calib_data]

Natural photographs come from scikit-image's bundled samples (offline; licences
in calib_data/README.md) with captions written for this set; charts,
documents, signs and shape scenes are rendered here with fixed seeds. Shape
scenes use their own layouts (224 px, free placement), disjoint from the tiny
model's training and held-out streams.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from qtool import paths

# name -> (full-image caption, centre-crop caption, (question, answer))
PHOTOS = {
    "astronaut": ("A portrait of astronaut Eileen Collins smiling in an orange flight suit with mission patches, "
                  "an American flag behind her on the left and a space shuttle model and a white helmet on the right.",
                  "A close-up of a smiling woman with short light-brown hair wearing an orange suit with a round "
                  "blue mission patch on the chest.",
                  ("What is the person wearing?", "An orange flight suit with patches, like a shuttle astronaut.")),
    "coffee": ("A cup of espresso with a golden crema in a red cup on a red saucer, a small spoon resting on the "
               "saucer, on a wooden table.",
               "A close-up of the coffee's light brown foam inside the red cup's white interior.",
               ("What drink is shown?", "A small cup of espresso coffee on a saucer.")),
    "chelsea": ("A tabby cat with green eyes and orange-brown striped fur looking straight at the camera.",
                "A close-up of a cat's face: two large yellow-green eyes, a pink nose and striped fur.",
                ("What animal is this?", "A tabby cat with green eyes.")),
    "rocket": ("A SpaceX Falcon 9 rocket standing upright on its launch pad at dusk, lit by floodlights and "
               "surrounded by tall lightning towers against a deep blue sky.",
               "A white rocket on the pad in the middle of the frame, with bright lights at its base.",
               ("Is it day or night?", "It is dusk or night: the sky is dark blue and the pad lights are on.")),
    "coins": ("A black-and-white photograph of twenty-four ancient coins arranged in four rows on a dark "
              "background, of different sizes, some showing heads and figures.",
              "A close-up of several worn silver coins in rows, with faint embossed figures.",
              ("How many rows of coins are there?", "Four rows of coins.")),
    "camera": ("A black-and-white photograph of a man in a dark coat looking through a camera mounted on a "
               "tripod, standing on a lawn with buildings in the distance.",
               "A close-up of a man bending to look into a camera on a tripod.",
               ("What is the man doing?", "He is taking a photograph with a camera on a tripod.")),
    "hubble_deep_field": ("The Hubble deep field: thousands of distant galaxies of many colours and shapes, small "
                          "points and smudges of light scattered over a black background.",
                          "A close-up of a patch of black sky with small red, white and blue galaxies.",
                          ("What does this image show?", "A deep-space view full of distant galaxies.")),
    "immunohistochemistry": ("A microscope image of stained tissue: brown-stained colonic glands with curved "
                             "outlines surrounded by pale tissue with small blue nuclei.",
                             "A close-up of brown glandular tissue next to light blue stained cells.",
                             ("What kind of image is this?", "A stained tissue section seen under a microscope.")),
    "retina": ("A fundus photograph of a healthy left eye: an orange-red retina in a black circle, with blood "
               "vessels branching from the bright optic disc on the left.",
               "A close-up of the orange retina with thin red blood vessels and a darker macula.",
               ("What part of the body is shown?", "The back of the eye, the retina.")),
    "moon": ("A grey, low-contrast image of the moon's surface with small craters and darker patches.",
             "A close-up of the lunar surface: grey ground with a few small round craters.",
             ("Is this image in colour?", "No, it is a grey, low-contrast image of the moon's surface.")),
    "page": ("A scanned page of printed text titled 'Region-based segmentation', with a paragraph about markers of "
             "coins and background and a line of code at the bottom.",
             "A close-up of printed text in a serif font on unevenly lit paper.",
             ("What is the title of the page?", "Region-based segmentation.")),
    "text": ("Handwritten mathematical formulas written in chalk on a grey surface, photographed at an angle.",
             "A close-up of chalk symbols and letters written on pavement.",
             ("What is written here?", "Mathematical formulas in chalk handwriting.")),
    "cell": ("A grey quantitative phase image of a single round cell floating in saline, a bright disc on the "
             "right with faint bands in the background.",
             "A close-up of the grey background around a small bright round cell.",
             ("How many cells are visible?", "One cell.")),
    "clock": ("A motion-blurred photograph of a round wall clock on a grey wall, smeared horizontally so the "
              "hands and numbers cannot be read.",
              "A close-up of the blurred white clock face.",
              ("Can you read the time?", "No, the clock is too blurred to read the time.")),
    "brick": ("A grey brick wall seen in perspective, with long rows of rectangular bricks and mortar lines.",
              "A close-up of grey bricks in a regular running-bond pattern.",
              ("What material is shown?", "Bricks laid in rows with mortar between them.")),
    "grass": ("A grey texture of a grass lawn seen from above, dense blades in every direction.",
              "A close-up of many thin overlapping grass blades.",
              ("What is in the picture?", "Grass, seen from above as a texture.")),
}
LICENCES = {
    "astronaut": "NASA, public domain", "coffee": "CC0 (Rachel Michetti)", "chelsea": "CC0 (Stefan van der Walt)",
    "rocket": "SpaceX, public domain", "coins": "Brooklyn Museum, no known copyright restrictions",
    "camera": "CC0 (Lav Varshney)", "hubble_deep_field": "NASA/ESA, public domain",
    "immunohistochemistry": "public domain (scikit-image sample)", "retina": "CC0 (Mikael Häggström)",
    "moon": "public domain (scikit-image sample)", "page": "public domain (scikit-image sample)",
    "text": "public domain (Wikipedia File:Corner.png)", "cell": "public domain (scikit-image sample)",
    "clock": "public domain (Stefan van der Walt)", "brick": "CC0 (CC0Textures)", "grass": "CC0 (DeviantArt linolafett)",
}
COLOURS = {"red": (210, 45, 45), "green": (40, 150, 70), "blue": (45, 90, 200), "orange": (240, 140, 30),
           "purple": (130, 60, 170), "black": (20, 20, 20), "yellow": (230, 200, 40), "grey": (130, 130, 130)}
WORDS = ["EXIT", "OPEN", "STOP", "SALE", "CAFE", "PARKING", "NO ENTRY", "PUSH", "PULL", "HOTEL", "PHARMACY",
         "BUS STOP", "WELCOME", "CLOSED", "TAXI", "LIBRARY"]


def _font(size: int):
    return ImageFont.load_default(size=size)


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


def charts(folder: Path, rng: random.Random, n: int = 30) -> list[dict]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    topics = [("Monthly sales", "month", "units", ["Jan", "Feb", "Mar", "Apr", "May", "Jun"]),
              ("Rainfall by season", "season", "mm", ["Spring", "Summer", "Autumn", "Winter"]),
              ("Votes per option", "option", "votes", ["A", "B", "C", "D", "E"]),
              ("Visitors per day", "day", "visitors", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])]
    out = []
    for i in range(n):
        title, xl, yl, labels = topics[i % len(topics)]
        kind = ["bar", "line", "pie", "scatter"][(i // len(topics)) % 4]
        values = [rng.randint(5, 95) for _ in labels]
        fig, ax = plt.subplots(figsize=(3.6, 2.7), dpi=100)
        listing = ", ".join(f"{label} {v}" for label, v in zip(labels, values))
        if kind == "pie":
            ax.pie(values, labels=labels)
            text = f"A pie chart titled '{title}' with {len(labels)} slices: {listing}."
        elif kind == "line":
            ax.plot(labels, values, marker="o")
            text = f"A line chart titled '{title}' of {yl} per {xl}: {listing}."
        elif kind == "scatter":
            ax.scatter(range(len(values)), values)
            ax.set_xticks(range(len(labels)), labels)
            text = f"A scatter plot titled '{title}' showing {yl} for each {xl}: {listing}."
        else:
            ax.bar(labels, values, color="tab:blue")
            text = f"A bar chart titled '{title}' of {yl} per {xl}: {listing}."
        top = labels[values.index(max(values))]
        text += f" The largest value is {max(values)} for {top}."
        ax.set_title(title)
        if kind != "pie":
            ax.set_xlabel(xl)
            ax.set_ylabel(yl)
        fig.tight_layout()
        path = folder / "images" / f"chart-{i:02d}.png"
        fig.savefig(path)
        plt.close(fig)
        out.append({"id": f"chart-{i:02d}", "image": f"images/{path.name}", "text": text})
    return out


def documents(folder: Path, rng: random.Random, n: int = 20) -> list[dict]:
    items = ["coffee", "bread", "apples", "milk", "tea", "rice", "soap", "pasta", "eggs", "juice"]
    out = []
    for i in range(n):
        image = Image.new("RGB", (320, 240), (250, 250, 245))
        draw = ImageDraw.Draw(image)
        if i % 2 == 0:
            bought = rng.sample(items, 4)
            prices = [rng.randint(1, 9) + rng.randint(0, 99) / 100 for _ in bought]
            draw.text((12, 10), f"RECEIPT #{1000 + i}", fill=(0, 0, 0), font=_font(18))
            for k, (item, price) in enumerate(zip(bought, prices)):
                draw.text((12, 44 + 26 * k), item, fill=(0, 0, 0), font=_font(16))
                draw.text((230, 44 + 26 * k), f"{price:.2f}", fill=(0, 0, 0), font=_font(16))
            draw.text((12, 160), "TOTAL", fill=(0, 0, 0), font=_font(16))
            draw.text((230, 160), f"{sum(prices):.2f}", fill=(0, 0, 0), font=_font(16))
            text = (f"A shop receipt numbered {1000 + i} listing " +
                    ", ".join(f"{it} {p:.2f}" for it, p in zip(bought, prices)) + f", with a total of {sum(prices):.2f}.")
        else:
            rows = [(rng.choice(["Oslo", "Lima", "Pune", "Kyiv", "Doha", "Nice"]), rng.randint(-5, 35)) for _ in range(4)]
            draw.text((12, 10), "City temperatures", fill=(0, 0, 0), font=_font(18))
            for k, (city, temp) in enumerate(rows):
                draw.line((10, 40 + 30 * k, 310, 40 + 30 * k), fill=(160, 160, 160))
                draw.text((16, 46 + 30 * k), city, fill=(0, 0, 0), font=_font(16))
                draw.text((200, 46 + 30 * k), f"{temp} C", fill=(0, 0, 0), font=_font(16))
            text = "A table titled 'City temperatures' with rows " + \
                ", ".join(f"{c} {t} degrees Celsius" for c, t in rows) + "."
        out.append({"id": f"doc-{i:02d}", "image": _save(image, folder, f"doc-{i:02d}.png"), "text": text})
    return out


def signs(folder: Path, rng: random.Random) -> list[dict]:
    out = []
    for i, word in enumerate(WORDS):
        bg_name, fg_name = rng.sample(["red", "green", "blue", "black", "orange", "purple"], 2)
        image = Image.new("RGB", (280, 120), COLOURS[bg_name])
        draw = ImageDraw.Draw(image)
        font = _font(36)
        box = draw.textbbox((0, 0), word, font=font)
        draw.text(((280 - box[2]) // 2, (120 - box[3]) // 2), word, fill=(255, 255, 255), font=font)
        article = "An" if bg_name[0] in "aeiou" else "A"
        text = f"{article} {bg_name} rectangular sign with the words '{word}' written in white capital letters."
        out.append({"id": f"sign-{i:02d}", "image": _save(image, folder, f"sign-{i:02d}.png"), "text": text})
    return out


def shapes(folder: Path, rng: random.Random, n: int = 20) -> list[dict]:
    out = []
    for i in range(n):
        image = Image.new("RGB", (224, 224), rng.choice([(255, 255, 255), (235, 240, 250), (250, 240, 230)]))
        draw = ImageDraw.Draw(image)
        parts = []
        for _ in range(rng.randint(1, 4)):
            colour = rng.choice(list(COLOURS))
            shape = rng.choice(["circle", "square", "triangle", "star"])
            x, y, r = rng.randint(30, 194), rng.randint(30, 194), rng.randint(14, 30)
            fill = COLOURS[colour]
            if shape == "circle":
                draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
            elif shape == "square":
                draw.rectangle((x - r, y - r, x + r, y + r), fill=fill)
            elif shape == "triangle":
                draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=fill)
            else:
                pts = [(x + (r if k % 2 == 0 else r // 2) * np.cos(np.pi * k / 5 - np.pi / 2),
                        y + (r if k % 2 == 0 else r // 2) * np.sin(np.pi * k / 5 - np.pi / 2)) for k in range(10)]
                draw.polygon(pts, fill=fill)
            where = ("top" if y < 90 else "bottom" if y > 134 else "middle") + " " + \
                    ("left" if x < 90 else "right" if x > 134 else "centre")
            parts.append(f"{'an' if colour[0] in 'aeiou' else 'a'} {colour} {shape} near the {where}")
        text = f"A drawing of {len(parts)} flat shape{'s' if len(parts) > 1 else ''}: " + "; ".join(parts) + "."
        out.append({"id": f"shapes-{i:02d}", "image": _save(image, folder, f"shapes-{i:02d}.png"), "text": text})
    return out


def build(out: Path) -> int:
    rng = random.Random(20241122)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    records = photos(tmp) + charts(tmp, rng) + documents(tmp, rng) + signs(tmp, rng) + shapes(tmp, rng)
    (tmp / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
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
