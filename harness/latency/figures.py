"""From per-measurement rows to the record's metrics and details.

Rows (``examples/latency.jsonl``) are the source of truth: each holds the pytest-benchmark entry
with its raw round times, so a resumed run and a fresh one derive their metrics the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.latency.cost import FlopsModel, parameter_counts, peak_gflops, size_on_disk
from harness.latency.timing import entry_seconds, quantiles, stability, summarise
from harness.records import Metric
from harness.stats import t_mean_ci

Row = Mapping[str, Any]
MS = 1000.0
STABILITY_DOC = (
    "|p50 of the first half of the rounds − p50 of the second half| / p50; a gate should not "
    "judge a measurement above the suite's stability_threshold."
)


def _ms(value: float | None) -> float | None:
    return None if value is None else value * MS


def latency_metrics(prefix: str, row: Row, *, full: bool, label: str) -> list[Metric]:
    """p50/p90/p99 with order-statistic CIs; with ``full`` also mean (t CI), stddev, stability."""
    seconds = entry_seconds(row["benchmark"])
    n = len(seconds)
    out: list[Metric] = []
    for est in quantiles(seconds):
        pct = round(est.q * 100)
        if full or pct != 90:
            out.append(
                Metric(name=f"{prefix}.p{pct}_ms", value=est.value * MS, higher_is_better=False,
                       ci_low=_ms(est.low), ci_high=_ms(est.high), ci_method=est.method, n=n,
                       unit="ms", description=f"{pct}th percentile latency of {label}.")
            )
    if full:
        summary = summarise(seconds)
        ci = t_mean_ci(seconds)
        out += [
            Metric(name=f"{prefix}.mean_ms", value=summary["mean_ms"], higher_is_better=False,
                   ci_low=_ms(ci.low), ci_high=_ms(ci.high), ci_method=ci.method, n=n, unit="ms",
                   description=f"Mean latency of {label}."),
            Metric(name=f"{prefix}.stddev_ms", value=summary["stddev_ms"], higher_is_better=False,
                   n=n, unit="ms", description=f"Standard deviation of the latency of {label}."),
            Metric(name=f"{prefix}.stability_rel_diff", value=stability(seconds),
                   higher_is_better=False, n=n, description=STABILITY_DOC),
        ]
    return out


def _inverse(numerator: float, value: float | None) -> float | None:
    return numerator / value if value else None


def offline_figures(row: Row, flops: FlopsModel, peak: float | None) -> dict[str, Any]:
    """Throughput of one grid cell from its median round; the CI is the median's, inverted."""
    entry = row["benchmark"]
    seconds = entry_seconds(entry)
    median = quantiles(seconds, (0.5,))[0]
    batch = int(entry["params"]["batch_size"])
    tokens = int(entry["extra_info"]["tokens"])
    padded = int(entry["extra_info"]["padded_tokens"])
    gflops = batch * flops.per_example(padded / batch) / median.value / 1e9
    return {
        "batch_size": batch,
        "seq_len": int(entry["params"]["seq_len"]),
        "p50_ms": median.value * MS,
        "examples_per_s": batch / median.value,
        "examples_per_s_ci": [_inverse(batch, median.high), _inverse(batch, median.low)],
        "tokens_per_s": tokens / median.value,
        "tokens_per_s_ci": [_inverse(tokens, median.high), _inverse(tokens, median.low)],
        "gflops": gflops,
        "peak_fraction": gflops / peak if peak else None,
        "rounds": len(seconds),
        "ci_method": median.method,
    }


def offline_metrics(key: str, fig: Mapping[str, Any]) -> list[Metric]:
    label = f"batch {fig['batch_size']} × {fig['seq_len']} tokens"
    common: dict[str, Any] = {"n": fig["rounds"], "higher_is_better": True}
    ex_lo, ex_hi = fig["examples_per_s_ci"]
    tok_lo, tok_hi = fig["tokens_per_s_ci"]
    return [
        Metric(name=f"offline.{key}.examples_per_s", value=fig["examples_per_s"], ci_low=ex_lo,
               ci_high=ex_hi, ci_method=fig["ci_method"], unit="examples/s",
               description=f"Offline throughput at {label} (median round).", **common),
        Metric(name=f"offline.{key}.tokens_per_s", value=fig["tokens_per_s"], ci_low=tok_lo,
               ci_high=tok_hi, ci_method=fig["ci_method"], unit="tokens/s",
               description=f"Offline throughput at {label}, real (unpadded) tokens.", **common),
        Metric(name=f"offline.{key}.peak_fraction", value=fig["peak_fraction"],
               description=f"Estimated GFLOP/s at {label} over this machine's matmul peak.",
               **common),
    ]


def disturbed_peak_warning(metrics: Sequence[Metric]) -> str | None:
    """No model outruns a bare matmul of its own dtype: a peak fraction of 1 or more means the
    peak's rounds were slowed down (a busy machine), which this says."""
    fraction = next((m.value for m in metrics if m.name == "cost.peak_fraction"), None)
    if fraction is None or fraction < 1:
        return None
    return (
        f"latency: the matmul peak was measured below the model's own rate (peak fraction "
        f"{fraction:.2f}); the machine was busy then, so peak fractions in this run are not "
        "meaningful"
    )


def cost_metrics(model: Any, rows: Mapping[str, Row], flops: FlopsModel,
                 peak_memory: int | None, best: Mapping[str, Any] | None) -> list[Metric]:
    total, embedding = parameter_counts(model.model)
    tokens = float(rows["single_stream/forward"]["benchmark"]["extra_info"]["mean_tokens"])
    matmul = rows.get("cost/matmul")
    peak = peak_gflops(matmul["benchmark"]) if matmul else None
    lower: dict[str, Any] = {"higher_is_better": False}
    return [
        Metric(name="cost.parameters", value=total, unit="parameters",
               description="All parameters of the model.", **lower),
        Metric(name="cost.non_embedding_parameters", value=total - embedding, unit="parameters",
               description="Parameters outside embedding tables (N in the FLOPs estimate).",
               **lower),
        Metric(name="cost.size_on_disk_bytes", value=size_on_disk(model.info()), unit="bytes",
               description="Model weight, config and tokenizer files.", **lower),
        Metric(name="cost.peak_memory_bytes", value=peak_memory, unit="bytes",
               description="Peak memory while measuring (RSS on CPU, CUDA max allocated).",
               **lower),
        Metric(name="cost.flops_per_example", value=flops.per_example(tokens), unit="FLOP",
               description=f"Estimated forward FLOPs at the evaluation texts' mean length "
               f"({tokens:.1f} tokens): 2·N·T + 4·layers·T²·hidden.", **lower),
        Metric(name="cost.matmul_peak_gflops", value=peak, higher_is_better=None,
               unit="GFLOP/s",
               description="Best-round n×n matmul on this machine, same run, threads and dtype."),
        Metric(name="cost.achieved_gflops", value=best["gflops"] if best else None,
               higher_is_better=True, unit="GFLOP/s",
               description="Best estimated GFLOP/s over the offline grid."),
        Metric(name="cost.peak_fraction", value=best["peak_fraction"] if best else None,
               higher_is_better=True, description="Best offline GFLOP/s over the matmul peak."),
    ]


def server_metrics(row: Row) -> list[Metric]:
    entry = row["benchmark"]
    extra = entry["extra_info"]
    label = "a query from arrival to completion (queueing included)"
    return [
        *latency_metrics("server", row, full=False, label=label),
        Metric(name="server.target_qps", value=entry["params"]["rate_qps"], higher_is_better=None,
               unit="queries/s", description="Poisson arrival rate."),
        Metric(name="server.achieved_qps", value=extra["achieved_qps"], higher_is_better=True,
               unit="queries/s", description="Queries served per second of wall time."),
        Metric(name="server.mean_queueing_ms", value=extra["mean_queueing_ms"],
               higher_is_better=False, unit="ms", description="Mean wait before service."),
    ]


def int8_metrics(d: Mapping[str, Any]) -> list[Metric]:
    return variant_metrics("int8", d)


def variant_metrics(kind: str, d: Mapping[str, Any]) -> list[Metric]:
    """The figures of one reduced-precision variant (``int8``, ``bf16``) beside the original."""
    acc = d["accuracy"]
    cfg = d["offline_config"]
    where = f"batch {cfg['batch_size']} × {cfg['seq_len']} tokens"
    return [
        Metric(name=f"{kind}.single_stream.p50_ms", value=d["single_stream_p50_ms"],
               higher_is_better=False, unit="ms",
               description=f"p50 forward latency of the {kind} variant at batch 1."),
        Metric(name=f"{kind}.single_stream.speedup", value=d["single_stream_speedup"],
               higher_is_better=True, description=f"original p50 / {kind} p50 at batch 1."),
        Metric(name=f"{kind}.offline.speedup", value=d["offline_speedup"], higher_is_better=True,
               description=f"original / {kind} median batch time at {where}."),
        Metric(name=f"{kind}.accuracy", value=acc["accuracy"], higher_is_better=True, n=acc["n"],
               description=f"Accuracy of the {kind} variant on the evaluated examples."),
        Metric(name=f"{kind}.accuracy_delta", value=acc["delta"], higher_is_better=True,
               ci_low=acc["ci"][0], ci_high=acc["ci"][1], ci_method=acc["ci_method"],
               n=acc["n"], description=f"{kind} accuracy − original accuracy, same examples."),
        Metric(name=f"{kind}.agreement", value=acc["agreement"], higher_is_better=True, n=acc["n"],
               description=f"Share of examples where the {kind} variant predicts the original's label."),
    ]


def stability_details(rows: Mapping[str, Row], threshold: float) -> dict[str, Any]:
    """Per-measurement stability; ``stable`` judges the single-stream measurements."""
    per = {rid: stability(entry_seconds(r["benchmark"])) for rid, r in rows.items()
           if "benchmark" in r}
    headline = per.get("single_stream/forward")
    unstable = [rid for rid, v in per.items()
                if rid.startswith("single_stream/") and v is not None and v > threshold]
    return {"threshold": threshold, "single_stream_rel_diff": headline,
            "stable": headline is not None and not unstable, "unstable": unstable,
            "per_measurement": per}


def suite_figures(model: Any, rows: Mapping[str, Row], peak_memory: int | None,
                  threshold: float) -> tuple[list[Metric], dict[str, Any]]:
    """Every metric of the suite but the int8 ones, and the details that go with them."""
    flops = FlopsModel.of(model.model)
    metrics = [
        *latency_metrics("single_stream", rows["single_stream/forward"], full=True,
                         label="the model forward at batch 1 (tokenised input)"),
        *latency_metrics("single_stream.tokenize", rows["single_stream/tokenize"], full=False,
                         label="tokenising one text"),
        *latency_metrics("single_stream.end_to_end", rows["single_stream/end_to_end"],
                         full=False, label="tokenising and classifying one text"),
    ]
    matmul = rows.get("cost/matmul")
    peak = peak_gflops(matmul["benchmark"]) if matmul else None
    offline: dict[str, Any] = {}
    for rid, row in rows.items():
        if rid.startswith("offline/") and rid.endswith("/forward"):
            key = ".".join(rid.split("/")[1:3])
            offline[key] = offline_figures(row, flops, peak)
            metrics += offline_metrics(key, offline[key])
    best = max(offline.values(), key=lambda f: f["gflops"]) if offline else None
    metrics += cost_metrics(model, rows, flops, peak_memory, best)
    if "server/end_to_end" in rows:
        metrics += server_metrics(rows["server/end_to_end"])
    details = {
        "offline": offline,
        "stability": stability_details(rows, threshold),
        "summaries": {rid: r["summary"] for rid, r in rows.items() if "summary" in r},
        "flops": {"non_embedding_parameters": flops.non_embedding_params,
                  "layers": flops.layers, "hidden": flops.hidden,
                  "cls_only_last_layer_params": flops.cls_only_last_layer_params,
                  "formula": "2*N*T + 4*layers*T^2*hidden per example of T tokens, less the "
                             "last layer's non-[CLS] work when it runs for [CLS] only"},
    }
    return metrics, details
