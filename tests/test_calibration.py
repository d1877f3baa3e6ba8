"""Calibration sets on real files: the default set, every listed bad input, CLI exit codes, fuzzing."""

import json
import os
import struct
import zlib

import pytest
from conftest import CALIB, assert_one_line_error, qtool_in_process, run_qtool
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from qtool.calibration.images import load_image
from qtool.calibration.records import load_records
from qtool.errors import QtoolError


def make_set(tmp_path, records, images=("ok.png",)):
    d = tmp_path / "set"
    (d / "img").mkdir(parents=True)
    for name in images:
        Image.new("RGB", (64, 48), (10, 200, 30)).save(d / "img" / name)
    (d / "records.jsonl").write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records),
                                      encoding="utf-8")
    return d


GOOD = {"id": "good", "image": "img/ok.png", "text": "a green rectangle"}


def test_default_set_is_clean_and_large_enough():
    calib = load_records(CALIB)
    assert len(calib.records) >= 128 and not calib.problems
    kinds = {r.id.split("-")[0] for r in calib.records}
    assert {"photo", "chart", "doc", "sign", "shapes"} <= kinds
    assert any(r.messages for r in calib.records)
    assert len(calib.sha256) == 64


def test_default_set_is_reproducible(tmp_path):
    from recipes.calib_set.build_default import build

    build(tmp_path / "calib")
    assert (tmp_path / "calib" / "records.jsonl").read_bytes() == (CALIB / "records.jsonl").read_bytes()


@pytest.mark.parametrize("record, needle", [
    ('{"id": "a", "image": "img/ok.png", "text": "x"', "not valid JSON"),
    ('["a"]', "JSON object"),
    ({"image": "img/ok.png", "text": "x"}, "missing or empty id"),
    ({"id": "b", "image": "img/ok.png", "text": "  "}, "empty text"),
    ({"id": "good", "image": "img/ok.png", "text": "again"}, "duplicate id"),
    ({"id": "c", "image": "../escape.png", "text": "x"}, "escapes"),
    ({"id": "d", "image": "/etc/passwd", "text": "x"}, "absolute"),
    ({"id": "e", "image": "img/missing.png", "text": "x"}, "does not exist"),
    ({"id": "f", "text": "x"}, "missing image"),
    ({"id": "f2", "image": 7, "text": "x"}, "image must be a path string"),
    ({"id": "t", "image": "img/ok.png", "text": 3}, "text must be a string"),
    ({"id": "u", "image": "img/ok.png"}, "missing text"),
    ({"id": "v", "image": "img/ok.png", "text": "x", "messages": "hi"}, "non-empty list"),
    ({"id": "g", "image": "img/ok.png", "messages": [{"role": "assistant", "content": "hi"}]}, "user turn"),
    ({"id": "h", "image": "img/ok.png", "messages": [{"role": "user", "content": ""}]}, "non-empty content"),
])
def test_bad_records_are_named(tmp_path, record, needle):
    d = make_set(tmp_path, [GOOD, record])
    (tmp_path / "escape.png").write_bytes((d / "img" / "ok.png").read_bytes())
    calib = load_records(d, strict=False)
    assert len(calib.records) == 1 and len(calib.problems) == 1
    assert needle in calib.problems[0] and "line 2" in calib.problems[0]
    with pytest.raises(QtoolError, match="line 2"):
        load_records(d)


def test_symlink_escaping_the_folder_is_rejected(tmp_path):
    d = make_set(tmp_path, [GOOD, {"id": "s", "image": "img/link.png", "text": "x"}])
    outside = tmp_path / "outside.png"
    Image.new("RGB", (8, 8)).save(outside)
    os.symlink(outside, d / "img" / "link.png")
    assert "escapes" in load_records(d, strict=False).problems[0]


def _zero_sized_png() -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def _write(path, make):
    make(path)
    return path


@pytest.mark.parametrize("name, make, needle", [
    ("corrupt.png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20), "cannot be decoded"),
    ("empty.png", lambda p: p.write_bytes(b""), "empty file"),
    ("deep.png", lambda p: Image.new("I;16", (32, 32)).save(p), "16-bit"),
    ("bomb.png", lambda p: Image.new("1", (9000, 6000)).save(p), "decompression bomb"),
    ("zero.png", lambda p: p.write_bytes(_zero_sized_png()), "cannot be decoded"),
    ("thin.png", lambda p: Image.new("RGB", (1000, 4)).save(p), "aspect ratio"),
    ("float.tiff", lambda p: Image.new("F", (8, 8)).save(p), "float"),
])
def test_bad_images(tmp_path, name, make, needle):
    path = _write(tmp_path / name, make)
    with pytest.raises(QtoolError, match=needle):
        load_image(path)


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGBA", "LA", "1"])
def test_eight_bit_modes_become_rgb(tmp_path, mode):
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    Image.new(mode, (20, 10)).save(path)
    image = load_image(path)
    assert image.mode == "RGB" and image.size == (20, 10)


def test_rgba_is_composited_on_white(tmp_path):
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(tmp_path / "t.png")
    assert load_image(tmp_path / "t.png").getpixel((0, 0)) == (255, 255, 255)


def test_missing_empty_and_all_invalid_sets(tmp_path):
    with pytest.raises(QtoolError, match="does not exist"):
        load_records(tmp_path / "nope")
    empty = make_set(tmp_path / "e", [])
    with pytest.raises(QtoolError, match="is empty"):
        load_records(empty)
    bad = make_set(tmp_path / "b", [{"id": "x", "image": "img/none.png", "text": "t"}])
    with pytest.raises(QtoolError, match="no valid records"):
        load_records(bad)


def test_cli_validate_and_inspect(tmp_path):
    ok = run_qtool("--json", "calib", "validate", CALIB)
    assert ok.returncode == 0 and json.loads(ok.stdout)["records"] >= 128
    d = make_set(tmp_path, [GOOD, {"id": "x", "image": "img/none.png", "text": "t"}, "{oops"])
    bad = run_qtool("calib", "validate", d)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 3 and "line 2" in lines[0] and "line 3" in lines[1] and "2 of 3" in lines[2]
    info = run_qtool("--json", "calib", "inspect", CALIB, "--model", "qwen2-vl-tiny")
    report = json.loads(info.stdout)
    assert report["records"] >= 128 and report["visual_tokens"]["max"] >= report["visual_tokens"]["min"] > 0
    first = report["samples"][0]
    assert first["visual_tokens"] > 0 and first["width"] > 0


def test_visual_tokens_follow_the_processor():
    from qtool.calibration.inspect import QWEN_DEFAULTS, visual_tokens

    assert visual_tokens(448, 448, QWEN_DEFAULTS) == 16 * 16
    assert visual_tokens(112, 112, QWEN_DEFAULTS) == 4 * 4


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=60), st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
                          st.fixed_dictionaries({"id": st.text(max_size=5), "image": st.text(max_size=12),
                                                 "text": st.text(max_size=8)}).map(json.dumps)), max_size=6))
def test_parser_fuzz_only_raises_qtool_error(tmp_path_factory, lines):
    d = tmp_path_factory.mktemp("fuzz")
    Image.new("RGB", (8, 8)).save(d / "a.png")
    (d / "records.jsonl").write_text("\n".join(line.replace("\n", " ") for line in lines), encoding="utf-8",
                                     errors="surrogatepass")
    try:
        calib = load_records(d, strict=False)
    except QtoolError as exc:
        assert "\n" not in str(exc)
    else:
        assert all("\n" not in p for p in calib.problems)


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6                         # rotate 90 degrees clockwise to display
    Image.new("RGB", (40, 20), (200, 10, 10)).save(tmp_path / "o.jpg", exif=exif)
    assert load_image(tmp_path / "o.jpg").size == (20, 40)


def test_default_captions_are_sentences():
    calib = load_records(CALIB)
    for r in calib.records:
        if r.messages is None:
            assert 10 <= len(r.text.split()) <= 60 and r.text[0].isupper() and r.text.endswith("."), r.id
    assert len({r.text for r in calib.records}) == len(calib.records)


def test_readme_names_every_photo_and_its_licence():
    from recipes.calib_set.default_text import PHOTOS

    readme = (CALIB / "README.md").read_text()
    for name in PHOTOS:
        assert f"| {name} |" in readme, name


def test_build_refuses_to_replace_a_folder_that_is_not_a_set(tmp_path):
    from recipes.calib_set.build_default import build

    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(SystemExit):
        build(tmp_path)
    assert (tmp_path / "precious.txt").exists()


def test_validate_lists_every_problem_even_when_none_is_valid(tmp_path):
    d = make_set(tmp_path, [{"id": "x", "image": "img/none.png", "text": "t"}, "{oops", ["list"]])
    proc = qtool_in_process("calib", "validate", d / "records.jsonl")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert [line.split(":")[0] for line in lines] == ["problem"] * 3 + ["error"] and "3 of 3" in lines[-1]


def test_inspect_reads_the_models_processor_limits(tmp_path):
    from qtool.calibration.inspect import inspect_set, pixel_limits, visual_tokens

    model = tmp_path / "model" / "processor"
    model.mkdir(parents=True)
    (model / "processor_config.json").write_text(json.dumps(
        {"image_processor": {"patch_size": 14, "merge_size": 2, "size": {"shortest_edge": 3136,
                                                                          "longest_edge": 56 * 56}}}))
    limits = pixel_limits(tmp_path / "model")
    assert limits["max_pixels"] == 3136 and limits["source"].endswith("processor_config.json")
    assert visual_tokens(448, 448, limits) == 4
    d = make_set(tmp_path, [GOOD])
    report = inspect_set(d, tmp_path / "model")
    assert report["samples"][0]["visual_tokens"] == 4      # 64x48 -> 56x56 (min pixels) -> 2x2 tokens
    (model / "processor_config.json").write_text("{not json")
    assert_one_line_error(run_qtool("calib", "inspect", d, "--model", tmp_path / "model"), "processor config")
    assert_one_line_error(run_qtool("calib", "inspect", tmp_path / "missing"), "does not exist")


def test_unicode_line_separators_stay_inside_their_record(tmp_path):
    d = make_set(tmp_path, [json.dumps({"id": "a", "image": "img/ok.png", "text": "one\u2028two"},
                                       ensure_ascii=False), "{bad"])
    assert "\u2028" in (d / "records.jsonl").read_text(encoding="utf-8")
    calib = load_records(d, strict=False)
    assert [r.text for r in calib.records] == ["one\u2028two"] and "line 2" in calib.problems[0]


def test_calibration_modality_decides_which_conversations_keep_their_image():
    from qtool.calibration.records import load_records
    from qtool.calibration.samples import conversations, pick
    from qtool.models import ADAPTERS

    picked = pick(load_records(CALIB), 4)

    def images(modality):
        return [sum(item.get("type") == "image" for m in conv for item in m["content"])
                for conv in conversations(picked, ADAPTERS["qwen2_vl"], modality)]

    assert images("image-text") == [1, 1, 1, 1] and images("text") == [0, 0, 0, 0] and images("mixed") == [1, 0, 1, 0]
    text_only = conversations(picked, ADAPTERS["qwen2_vl"], "text")[0]
    assert [m["role"] for m in text_only] == ["user", "assistant"] and text_only[1]["content"][0]["text"]
