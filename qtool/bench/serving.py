"""``bench --engine vllm``: a serving table per profile, measured against a real vLLM server.

Each profile's artifact is served by vLLM (``qtool.serve``) and hit with streamed image requests at each
concurrency: requests/s, output tok/s, time to first token and inter-token latency (p50/p99), and the server's
resident memory. Every request is one image of ``image_tokens`` visual tokens plus the bench prompt and asks for
exactly ``max_tokens`` new tokens (``ignore_eos``), so every profile does the same work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qtool import artifacts as registry
from qtool import machine
from qtool.bench.measure import PROMPT, image_for
from qtool.errors import QtoolError
from qtool.models.checkpoint import checkpoint_of
from qtool.reporting import RANDOM_NOTE, finish_figure, markdown_table, write_results
from qtool.serve import VLLM_VERSION, Server, client, refusal, servable

Status = Callable[[str], None]


@dataclass(frozen=True)
class ServingSettings:
    concurrency: tuple[int, ...] = (1, 4, 16)
    rounds: int = 4                  # requests per concurrency = rounds x concurrency
    image_tokens: int = 64
    max_tokens: int = 64
    tp: int = 1
    port: int = 8123
    max_model_len: int = 2048

    def check(self) -> None:
        if not self.concurrency or min(self.concurrency) < 1:
            raise QtoolError("--concurrency values must be at least 1", "pass e.g. --concurrency 1,4,16")
        if self.rounds < 1 or self.max_tokens < 2 or self.tp < 1:
            raise QtoolError("--repeats, --gen and --tp must be positive (--gen at least 2)",
                             "pass e.g. --repeats 4 --gen 64 --tp 1")
        if self.image_tokens + self.max_tokens + 64 > self.max_model_len:
            raise QtoolError("image tokens + --gen exceed the server's max model length",
                             "use fewer --image-tokens or a shorter --gen")


@dataclass
class ServingReport:
    model: str
    random_weights: bool
    settings: dict
    machine: dict
    rows: list[dict] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def run(model: str | Path, profile_names: list[str], settings: ServingSettings, *, calib: Path | None = None,
        samples: int | None = None, status: Status | None = None, progress=None) -> ServingReport:
    settings.check()
    say = status or (lambda _m: None)
    info = checkpoint_of(model)
    chosen, given = registry.resolve(info, profile_names, samples)
    for profile in chosen:   # before any artifact is built
        refused = refusal(profile, "cpu", settings.tp)
        if refused:
            raise QtoolError(f"vLLM cannot serve {profile.name} on cpu: {refused[0]}", refused[1])
    report = ServingReport(str(model), info.random_weights,
                           {**asdict(settings), "engine": f"vLLM {VLLM_VERSION}"}, machine.info())
    image = image_for(settings.image_tokens)
    for profile in chosen:
        say(f"{profile.name}: preparing artifact")
        path = given.get(profile.name) or registry.artifact_for(info, profile, calib=calib, progress=progress)
        try:
            served = servable(path, tp=settings.tp)
        except QtoolError as e:
            report.failed[profile.name] = e.problem
            say(f"{profile.name}: not served: {e.problem}")
            continue
        with Server(served, port=settings.port, tp=settings.tp, max_model_len=settings.max_model_len,
                    status=say) as server:
            for c in settings.concurrency:
                say(f"{profile.name}: {settings.rounds * c} requests, {c} in flight")
                requests = [(image, PROMPT)] * (settings.rounds * c)
                client.run_load(server.port, served.name, requests[:c], c, settings.max_tokens)   # warm-up
                replies, wall = client.run_load(server.port, served.name, requests, c, settings.max_tokens,
                                                ignore_eos=True)
                report.rows.append({"profile": profile.name, **client.summarize(replies, wall, c),
                                    "server_rss_mib": server.rss_mib()})
    return report


def table(report: ServingReport) -> list[dict]:
    def ms(x):
        return "-" if x is None else round(x, 1)

    return [{"profile": r["profile"], "concurrency": r["concurrency"], "requests": r["requests"],
             "failed": r["failed"], "req/s": round(r["requests_per_s"], 2), "output tok/s": round(r["output_tok_s"], 1),
             "TTFT p50 ms": ms(r["ttft_p50_ms"]), "TTFT p99 ms": ms(r["ttft_p99_ms"]),
             "ITL p50 ms": ms(r["itl_p50_ms"]), "ITL p99 ms": ms(r["itl_p99_ms"]),
             "server RSS MiB": round(r["server_rss_mib"])} for r in report.rows]


def markdown(report: ServingReport) -> str:
    s = report.settings
    parts = [f"# qtool bench --engine vllm: {report.model}", "",
             f"Machine: {machine.label(report.machine)}. {s['engine']}, tensor parallel {s['tp']}. Each request: one "
             f"image of {s['image_tokens']} visual tokens + a short prompt, streamed, exactly {s['max_tokens']} new "
             f"tokens; {s['rounds']} x concurrency requests after a warm-up.", ""]
    if report.random_weights:
        parts += [RANDOM_NOTE, ""]
    parts += [markdown_table(table(report)), "",
              "- TTFT: request sent to first streamed token; ITL: a request's mean time per output token after the "
              "first; p50/p99 over the row's requests.", "- server RSS: vLLM's process and its workers after the row.", ""]
    parts += [f"**Not served: {name}**: {why}." for name, why in report.failed.items()]
    return "\n".join(parts)


def chart(report: ServingReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (tput, ttft) = plt.subplots(1, 2, figsize=(11, 4))
    for name in dict.fromkeys(r["profile"] for r in report.rows):
        rows = [r for r in report.rows if r["profile"] == name]
        tput.plot([r["concurrency"] for r in rows], [r["output_tok_s"] for r in rows], marker="o", label=name)
        ttft.plot([r["concurrency"] for r in rows], [r["ttft_p50_ms"] or 0 for r in rows], marker="o", label=name)
    for ax, title in ((tput, "output tok/s"), (ttft, "TTFT p50 (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("requests in flight")
        ax.set_title(title)
        ax.legend()
    finish_figure(fig, f"{Path(report.model).name}: vLLM serving on {machine.label(report.machine)}", path)


def write(report: ServingReport, out: Path, force: bool = False) -> Path:
    return write_results(out, force, "serving", report.to_dict(), markdown(report), lambda p: chart(report, p))
