"""Eval outputs: JSON, a markdown table in Qwen's layout (rows = precisions) with fidelity columns, a PNG."""

from __future__ import annotations

from pathlib import Path

from qtool import machine
from qtool.eval import EvalReport, fidelity
from qtool.reporting import finish_figure, markdown_table, write_results


def _pct(x) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def _kl(summary: dict) -> str:
    se = summary.get("se")     # records written before the standard error was added have none
    return f"{summary['mean']:.2e}" + ("" if se is None else f" ± {se:.1e}")


def rows(report: EvalReport) -> list[dict]:
    out = []
    for r in report.rows:
        acc = r["accuracy"]
        overall = acc["overall"]
        row = {"precision": r["profile"], "kernel": r.get("kernel", ""),
               "accuracy %": f"{_pct(overall['accuracy'])} ± {_pct(overall['se'])}"}
        row.update({f"{k} %": _pct(v["accuracy"]) for k, v in acc.items() if k != "overall"})
        row["recovery %"] = _pct(r["recovery"])
        if r.get("kl_answer") is None:   # a consumer without torch logits (llama.cpp, ONNX vision): answers only
            row.update(dict.fromkeys(("KL answer (mean ± se / p99)", "KL all text (mean ± se)", "top-1 answer %",
                                      "top-1 all %", "answer NLL", "caption ppl"), "-"))
        else:
            row.update({
                "KL answer (mean ± se / p99)": f"{_kl(r['kl_answer'])} / {r['kl_answer']['p99']:.2e}",
                "KL all text (mean ± se)": _kl(r["kl_all_text"]),
                "top-1 answer %": _pct(r["top1_answer"]), "top-1 all %": _pct(r["top1_all_text"]),
                "answer NLL": f"{r['answer_nll']:.4f}",
                "caption ppl": "" if r["caption_perplexity"] is None else f"{r['caption_perplexity']:.3f}",
            })
        out.append(row)
    return out


def paired_rows(report: EvalReport) -> list[dict]:
    """Every pair of quantized precisions, question by question: is one really closer to the float model?"""
    forced = [r for r in report.rows[1:] if r.get("kl_answer") and "per_question" in r["kl_answer"]]
    out = []
    for i, a in enumerate(forced):
        for b in forced[i + 1:]:
            row = {"pair": f"{a['profile']} − {b['profile']}"}
            for key, label in (("kl_answer", "KL answer"), ("kl_all_text", "KL all text")):
                d = fidelity.paired_difference(a[key], b[key])
                resolved = d["se"] is not None and d["se"] > 0
                row[f"{label}: difference ± se"] = f"{d['diff']:+.2e}" + (f" ± {d['se']:.1e}" if resolved else "")
                row[f"{label}: z"] = f"{d['diff'] / d['se']:+.1f}" if resolved else "-"
            out.append(row)
    return out


def markdown(report: EvalReport) -> str:
    ref = report.rows[0]["profile"] if report.rows else "?"
    paired = paired_rows(report)
    paired_section = ["## Precisions compared question by question", "",
                      markdown_table(paired), "",
                      "- difference of the two KL means on the same questions and positions, ± the standard error of "
                      "that difference (questions as the sampled unit); negative: the first precision is closer to "
                      f"{ref}. |z| above 2: a difference the questions resolve; below: not resolved by this set.",
                      "- z is about these quantized weights, not about the methods: quantizing again (another "
                      "calibration set, an equivalent model) rounds other weights the other way and can move a KL "
                      "mean by more than the questions' error. To compare methods, compare several quantizations "
                      "of each.",
                      ""] if paired else []
    return "\n".join([
        f"# qtool eval: {report.model}",
        "",
        f"Dataset: `{report.dataset}` ({report.questions} questions). Machine: {machine.label(report.machine)}.",
        "",
        markdown_table(rows(report)),
        "",
        f"- accuracy: exact match (case-insensitive) of greedy answers, ± one binomial standard error; "
        f"recovery = accuracy / {ref} accuracy.",
        f"- KL(float || quantized), top-1 agreement: teacher-forced on the gold answers, every precision against "
        f"{ref}; 'answer' = answer tokens, 'all text' = every position whose next token is text; ± one standard "
        f"error of the mean with the questions as the sampled unit.",
        "- caption ppl: perplexity of held-out image captions (disjoint from the calibration set).",
        "- '-': the profile's consumer (llama.cpp, ONNX Runtime vision) gives answers, not teacher-forced logits.",
        "",
        *paired_section,
    ])


def chart(report: EvalReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["profile"] for r in report.rows]
    fig, (acc, kl) = plt.subplots(1, 2, figsize=(10, 4))
    acc.bar(names, [100 * r["accuracy"]["overall"]["accuracy"] for r in report.rows],
            yerr=[100 * r["accuracy"]["overall"]["se"] for r in report.rows])
    acc.set_title("held-out accuracy (%)")
    kl.bar(names, [max(r["kl_answer"]["mean"], 1e-12) if r.get("kl_answer") else 0 for r in report.rows])
    kl.set_yscale("log")
    kl.set_title("KL(float || quantized), answer tokens")
    for ax in (acc, kl):
        ax.tick_params(axis="x", rotation=20)
    finish_figure(fig, f"{Path(report.model).name} on {machine.label(report.machine)}", path)


def write(report: EvalReport, out: Path, force: bool = False) -> Path:
    return write_results(out, force, "eval", report.to_dict(), markdown(report), lambda path: chart(report, path))
