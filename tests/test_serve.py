"""qtool serve: the tiny model and its GPTQ-Int4 and AWQ-Int4 artifacts behind a real vLLM server (CPU build, in
its own environment: `make serve-env`), at tensor parallelism 1 and 2, answering held-out image questions.
vLLM's CPU build has its 4-bit kernel and its tensor-parallel communicator only for AVX-512 CPUs: on an AVX2 CPU
those cases check the refusal."""

import threading
import time

import pytest
from conftest import assert_one_line_error, qtool_in_process

from qtool import infer, machine
from qtool.calibration.images import load_image
from qtool.eval.dataset import TEST_SET, load_vqa
from qtool.paths import ASSETS
from qtool.serve import Server, VLLMModel, client, free_port, servable, vllm_python

QUESTIONS = 40
AVX512 = machine.vllm_avx512()   # vLLM's CPU build: 4-bit kernel and tensor parallelism
# what the load test serves: an int4 variant where vLLM has the kernel, else the float model
LOADED = "gptq-int4" if AVX512 else "bf16"


@pytest.fixture(scope="module")
def heldout():
    items = load_vqa(TEST_SET, QUESTIONS)
    return items, [load_image(it.image) for it in items], [it.question for it in items]


@pytest.fixture(scope="module")
def folders(artifacts):
    return {"bf16": ASSETS / "qwen2-vl-tiny", **{p: artifacts[p][0] for p in ("gptq-int4", "awq-int4")}}


# AVX-512: both int4 variants at TP 1 and 2. Elsewhere: the float model, and the refusals with their fixes.
CASES = ([("gptq-int4", 1), ("awq-int4", 1), ("gptq-int4", 2), ("awq-int4", 2)] if AVX512 else
         [("bf16", 1), ("gptq-int4", 1), ("awq-int4", 1), ("bf16", 2)])
SERVED = ("gptq-int4", "awq-int4") if AVX512 else ("bf16",)


@pytest.fixture(scope="module")
def offline(folders, heldout):
    """Each served model's greedy answers from stock transformers in this process: what vLLM must reproduce."""
    _, images, questions = heldout
    out = {}
    for profile in SERVED:
        model, processor = infer.load_model(folders[profile])
        out[profile] = infer.answer(model, processor, images, questions)
    return out


@pytest.fixture(scope="module")
def loaded_server(folders):
    """One server for LOADED at TP 1, shared by its answer test and the load test (a vLLM start is ~40 s on CPU)."""
    with Server(servable(folders[LOADED]), port=free_port(), max_model_len=1024) as server:
        yield server


@pytest.mark.parametrize("profile, tp", CASES)
def test_vllm_serves_the_artifact_and_answers_like_transformers(request, folders, heldout, profile, tp):
    vllm_python()   # fails with the fix (make serve-env) if the environment is missing
    if profile != "bf16" and not AVX512:
        assert_one_line_error(qtool_in_process("serve", folders[profile]), "4-bit", "AVX-512", "qtool serve MODEL")
        return
    if tp > 1 and not AVX512:
        assert_one_line_error(qtool_in_process("serve", folders[profile], "--tp", tp), "tensor parallelism", "--tp 1")
        return
    items, images, questions = heldout
    offline = request.getfixturevalue("offline")
    if (profile, tp) == (LOADED, 1):
        answers = VLLMModel(request.getfixturevalue("loaded_server")).answer(images, questions)
    else:
        with Server(servable(folders[profile]), port=free_port(), tp=tp, max_model_len=1024) as server:
            answers = VLLMModel(server).answer(images, questions)
    same = sum(a == b for a, b in zip(answers, offline[profile]))
    correct = sum(a == it.answer for a, it in zip(answers, items))
    assert same >= 0.95 * len(items), list(zip(answers, offline[profile]))
    assert correct >= 0.9 * len(items), correct


def test_load_many_clients_one_disconnecting(loaded_server, heldout, offline):
    """64 requests, 16 in flight: none fails, greedy answers equal the offline ones, the server's memory does not
    grow across rounds, and a client that drops its connection mid-stream leaves the server serving."""
    items, images, questions = heldout
    requests = [(images[i % len(items)], questions[i % len(items)]) for i in range(64)]
    expected = [offline[LOADED][i % len(items)] for i in range(64)]
    server = loaded_server
    name = server.served.name
    client.run_load(server.port, name, requests[:16], 16)          # warm-up: allocator, caches
    rss = []
    for _ in range(3):
        replies, wall = client.run_load(server.port, name, requests, 16)
        rss.append(server.rss_mib())
        assert not [r.error for r in replies if r.error]
        same = sum(r.text == e for r, e in zip(replies, expected))
        assert same >= 0.99 * len(requests), same
    assert max(rss) - min(rss) < 0.05 * min(rss), rss
    dropped = threading.Thread(target=client.chat, args=(server.port, name, images[0], "Describe the image."),
                               kwargs={"max_tokens": 64, "disconnect_after": 1})
    dropped.start()
    dropped.join(60)
    time.sleep(1)
    after = client.chat(server.port, name, images[0], questions[0])
    assert after.error is None and after.text == offline[LOADED][0]


def test_int8_on_cpu_is_refused_with_the_fix(artifacts):
    proc = qtool_in_process("serve", artifacts["gptq-int8"][0])
    assert_one_line_error(proc, "8-bit", "gptq-int4")


def test_missing_vllm_environment_says_how_to_build_it(tmp_path):
    proc = qtool_in_process("serve", "qwen2-vl-tiny", env={"QTOOL_VLLM_ENV": str(tmp_path / "none")})
    assert_one_line_error(proc, "make serve-env")
