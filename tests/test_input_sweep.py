"""Odd inputs by class, over every option of every command: each is refused in one line with exit 2 before any
work, nothing is written, and what the line suggests is valid for the input at hand.

The cases are generated from the commands themselves (click's own option list), so an option added later is
swept too; BASE holds the minimal valid arguments that put each command at the option under test. Runs
in-process through qtool's real entry point; the logging and warning settings it makes are undone after each case.
"""

import codecs
import logging
import os
import re
import shutil
import warnings

import click
import pytest
from qtool import profiles
from qtool.calibration.records import load_records
from qtool.cli import cli, main
from qtool.eval.dataset import TEST_SET, load_vqa
from qtool.paths import CALIB_DATA

BASE = {
    "models build-random": ["qwen2-vl-2b", "--out", "{tmp}/out"],
    "calib validate": [str(CALIB_DATA)],
    "calib inspect": [str(CALIB_DATA)],
    "quantize": ["qwen2-vl-tiny", "--profile", "rtn-int4", "--out", "{tmp}/out"],
    "bench": ["qwen2-vl-tiny", "--profiles", "bf16", "--out", "{tmp}/out"],
    "plan": ["qwen2-vl-7b", "--gpu-mem", "8GiB"],
    "eval": ["qwen2-vl-tiny", "--profiles", "bf16", "--limit", "4", "--out", "{tmp}/out"],
    "export onnx": ["qwen2-vl-tiny", "--out", "{tmp}/out"],
    "export gguf": ["qwen2-vl-tiny", "--out", "{tmp}/out"],
    "release": ["qwen2-vl-tiny", "--out", "{tmp}/out"],
    "verify": ["{tmp}/out"],
    "serve": ["qwen2-vl-tiny"],
    "ask": ["qwen2-vl-tiny", "--heldout", "1"],
}
# Integer options whose valid values depend on the profile: refused by it, naming the values it takes.
BY_PROFILE = {("quantize", "--bits"): ("0", "-1", "99"), ("quantize", "--group-size"): ("0", "-7", "1000000")}
# Number lists and sizes given as text.
TEXT_NUMBERS = [("bench", "--gen", "0"), ("bench", "--gen", "-5"), ("bench", "--gen", "x"),
                ("bench", "--concurrency", "0"), ("bench", "--concurrency", "1,,x"),
                ("release", "--bench-gen", "0"), ("release", "--bench-gen", "x"),
                ("plan", "--gpu-mem", "0GiB"), ("plan", "--gpu-mem", "-1GiB"),
                ("plan", "--gpu-mem", "1e999GiB")]
SPECIAL_OUTPUTS = ["/dev/null", "/proc/qtool-sweep", "{tmp}/a-file/out"]


@pytest.fixture(autouse=True)
def restore_global_state():
    disabled, filters, env = logging.root.manager.disable, warnings.filters[:], dict(os.environ)
    yield
    logging.disable(disabled)
    warnings.filters[:] = filters
    os.environ.clear()
    os.environ.update(env)


def commands(group=cli, prefix=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if isinstance(cmd, click.Group):
            yield from commands(cmd, prefix + (name,))
        else:
            yield " ".join(prefix + (name,)), cmd


def option_name(option: click.Option) -> str:
    return max(option.opts, key=len)


def int_cases():
    for name, cmd in commands():
        for opt in cmd.params:
            if not isinstance(opt, click.Option) or not isinstance(opt.type, (click.types.IntParamType,)):
                continue
            flag = option_name(opt)
            if (name, flag) in BY_PROFILE:
                yield from ((name, flag, v) for v in BY_PROFILE[name, flag])
                continue
            rng = opt.type
            assert isinstance(rng, click.IntRange) and rng.min is not None, f"{name} {flag} has no range"
            yield name, flag, str(rng.min - 1)
            if rng.min - 1 != -1:
                yield name, flag, "-1"
            if rng.max is not None:
                yield name, flag, str(rng.max + 1)


def out_cases():
    for name, cmd in commands():
        if any(isinstance(o, click.Option) and "--out" in o.opts for o in cmd.params):
            yield from ((name, "--out", path) for path in SPECIAL_OUTPUTS)


def argv(name: str, tmp, flag: str, value: str) -> list[str]:
    base = [a.format(tmp=tmp) for a in BASE[name]]
    if flag in base:
        i = base.index(flag)
        base[i:i + 2] = []
    return [*name.split(), *base, flag, value.format(tmp=tmp)]


def run(args, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code, capsys.readouterr().err


def assert_refused(name, flag, value, tmp_path, capsys):
    (tmp_path / "a-file").write_text("x")
    code, err = run(argv(name, tmp_path, flag, value), capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (name, flag, value, code, err)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))
    return lines[0]


def test_every_command_has_base_arguments():
    assert {name for name, _ in commands()} == set(BASE)


@pytest.mark.parametrize("name,flag,value", list(int_cases()))
def test_integers_out_of_range(name, flag, value, tmp_path, capsys):
    line = assert_refused(name, flag, value, tmp_path, capsys)
    assert flag in line or flag.lstrip("-").replace("-", "_") in line, line
    suggested = re.search(r"use one of ([\w, -]+)", line)
    for choice in (suggested.group(1).split(", ") if suggested else []):   # every suggested value is accepted
        assert choice.strip() != value


@pytest.mark.parametrize("name,flag,value", TEXT_NUMBERS)
def test_numbers_given_as_text(name, flag, value, tmp_path, capsys):
    assert_refused(name, flag, value, tmp_path, capsys)


@pytest.mark.parametrize("name,flag,value", list(out_cases()))
def test_outputs_that_cannot_be_written(name, flag, value, tmp_path, capsys):
    assert_refused(name, flag, value, tmp_path, capsys)


@pytest.mark.parametrize("flag,name", [("--profile", "quantize"), ("--profiles", "bench"), ("--profiles", "eval")])
def test_unknown_profile_suggestions_are_usable_by_that_command(flag, name, tmp_path, capsys):
    line = assert_refused(name, flag, "nope", tmp_path, capsys)
    suggested = re.search(r"use one of (.+?) or a path", line).group(1).split(", ")
    assert suggested and set(suggested) <= set(profiles.available())
    if name == "quantize":   # every suggestion quantizes: the float, GGUF and ONNX profiles do not
        for choice in suggested:
            assert profiles.load_profile(choice).__class__.__name__ in {"GPTQProfile", "AWQProfile", "RTNProfile"}


def test_vllm_bench_refuses_what_vllm_cannot_serve_before_building_it(tmp_path, capsys):
    code, err = run(["bench", "qwen2-vl-tiny", "--engine", "vllm", "--profiles", "gguf-q8_0",
                     "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "llama-server" in err, err
    assert not (tmp_path / "out").exists()


ENCODINGS = {
    "utf-8 with BOM (Windows Notepad)": lambda t: codecs.BOM_UTF8 + t.encode("utf-8"),
    "CRLF line ends": lambda t: t.replace("\n", "\r\n").encode("utf-8"),
    "CR line ends (classic Mac)": lambda t: t.replace("\n", "\r").encode("utf-8"),
    "UTF-16 LE with BOM (Windows 'Unicode')": lambda t: t.replace("\n", "\r\n").encode("utf-16"),
}


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_jsonl_as_editors_write_it_reads_the_same(encoding, tmp_path):
    """The evaluation set and the calibration set, re-saved as a common editor would, read the same records."""
    questions = tmp_path / "questions.jsonl"
    shutil.copytree(TEST_SET.parent / "images", tmp_path / "images")
    lines = TEST_SET.read_text(encoding="utf-8").splitlines(keepends=True)[:8]
    questions.write_bytes(ENCODINGS[encoding]("".join(lines)))
    def seen(items):
        return [(it.id, it.image.name, it.question, it.answer, it.type) for it in items]
    assert seen(load_vqa(questions)) == seen(load_vqa(TEST_SET, 8))

    calib = tmp_path / "calib"
    shutil.copytree(CALIB_DATA, calib)
    records = calib / "records.jsonl"
    records.write_bytes(ENCODINGS[encoding](records.read_text(encoding="utf-8")))
    assert [r.id for r in load_records(calib).records] == [r.id for r in load_records(CALIB_DATA).records]
