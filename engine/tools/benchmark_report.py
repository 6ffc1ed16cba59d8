"""The throughput benchmark's report as Markdown (BENCHMARKS.md tables), from the JSON
that engine/tools/throughput_benchmark.py writes."""

from __future__ import annotations

from typing import Any


def format_report(r: dict[str, Any]) -> str:
    """The BENCHMARKS.md tables."""
    b, s = r["baseline"], r["system"]
    lines = [
        f"{r['corpus']['files']} files, {r['corpus']['audio_s']:.0f} s of audio "
        f"({', '.join(r['corpus']['formats'])}; {min(r['corpus']['lengths_s']):.0f}-"
        f"{max(r['corpus']['lengths_s']):.0f} s), {r['models']}, ncpu {r['ncpu']}, "
        f"hotwords {' '.join(r['hotwords']) or '(none)'}"
        + (f", overrides {r['overrides']}" if r["overrides"] else ""),
        "",
        "| measure | baseline (plain funasr loop) | system (API + queue + worker) |",
        "|---|---|---|",
        f"| wall time | {b['wall_s']:.1f} s | {s['wall_s']:.1f} s |",
        f"| audio seconds per wall second | {b['audio_s_per_s']:.2f} | {s['audio_s_per_s']:.2f} |",
        f"| **ratio system / baseline** | | **{r['ratio_system_to_baseline']:.2f}x** |",
        f"| CPU time (all processes of each) | {b['cpu_s']:.1f} s | {s['cpu_s']:.1f} s |",
        f"| audio seconds per CPU second | {r['corpus']['audio_s'] / b['cpu_s']:.2f} | "
        f"{r['corpus']['audio_s'] / s['cpu_s']:.2f} |",
        f"| CPU ratio baseline / system | | {r['cpu_ratio_system_to_baseline']:.2f}x |",
        f"| peak RSS of the model process | {b['peak_rss_mb']:.0f} MB | "
        f"{(s['worker_peak_rss_mb'] or 0):.0f} MB |",
    ]
    if len(r.get("rounds", [])) > 1:
        lines += [
            "",
            "| round | baseline wall s | system wall s | ratio | baseline CPU s | system CPU s "
            "| CPU ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        for i, x in enumerate(r["rounds"], 1):
            lines.append(
                f"| {i} | {x['baseline_wall_s']:.1f} | {x['system_wall_s']:.1f} | "
                f"{x['ratio']:.2f}x | {x['baseline_cpu_s']:.1f} | {x['system_cpu_s']:.1f} | "
                f"{x['cpu_ratio']:.2f}x |"
            )
    lines += ["", "Last round:"] if len(r.get("rounds", [])) > 1 else []
    st, bs = s["stage_ms"], b["stage_s"]
    b_rest = b["wall_s"] - sum(bs.values())
    lines += [
        "",
        "| stage (summed over the corpus) | baseline s | system s |",
        "|---|---|---|",
        f"| decode (system: in the worker's path) | (in generate) | {st['decode'] / 1000:.1f} |",
        f"| VAD | {bs.get('vad', 0):.1f} | {st['vad'] / 1000:.1f} |",
        f"| ASR | {bs.get('asr', 0):.1f} | {st['asr'] / 1000:.1f} |",
        f"| punctuation | {bs.get('punc', 0):.1f} | {st['punc'] / 1000:.1f} |",
        f"| funasr glue (baseline: also its own decoding, twice per file) | {b_rest:.1f} | "
        f"{st['funasr_glue'] / 1000:.1f} |",
        f"| store and job bookkeeping | - | {st['store_and_bookkeeping'] / 1000:.1f} |",
        f"| between jobs (pickup, result write, upload overlap) | - | "
        f"{st['between_jobs'] / 1000:.1f} |",
    ]
    if r.get("idle_latency"):
        il = r["idle_latency"]
        lines += [
            "",
            f"Idle submit-to-start ({il['n']} jobs): p50 {il['p50_ms']:.0f} ms, "
            f"p95 {il['p95_ms']:.0f} ms.",
        ]
    lines += [
        "",
        "Decode to 16 kHz mono float32, one core: "
        + ", ".join(
            f"{k} {v['x_realtime_per_core']:.0f}x real time" for k, v in r["decode_speed"].items()
        ),
    ]
    if s["failed"]:
        lines += ["", f"FAILED jobs: {s['failed']}"]
    return "\n".join(lines)


def format_backlog(b: dict[str, Any]) -> str:
    vram = "not measured (no GPU)" if b["vram_mb"] is None else f"{b['vram_mb']:.0f} MB"
    return "\n".join(
        [
            f"{b['jobs']} jobs ({', '.join(b['files'])}) queued at once: {b['done']} done, "
            f"{b['failed']} failed in {b['wall_s']:.0f} s; one worker process throughout: "
            f"{b['same_worker_process']}",
            "",
            "| worker RSS | MB |",
            "|---|---|",
            f"| after 10 % of the jobs | {b['rss_mb_after_10pct']:.0f} |",
            f"| at the end | {b['rss_mb_final']:.0f} |",
            f"| peak | {b['rss_mb_max']:.0f} |",
            f"| trend from 10 % on, per 1000 jobs | {b['rss_mb_per_1000_jobs']:+.1f} |",
            f"| VRAM | {vram} |",
        ]
    )


def format_layouts(r: dict[str, Any]) -> str:
    """The worker-layout comparison (`seaco bench --layout A --layout B`) as Markdown: every
    run in order, then each layout's median."""
    c = r["corpus"]
    lines = [
        f"{c['files']} files, {c['audio_s']:.0f} s of audio ({', '.join(c['formats'])}; "
        f"{min(c['lengths_s']):.0f}-{max(c['lengths_s']):.0f} s), {r['models']}, hotwords "
        f"{' '.join(r['hotwords']) or '(none)'}; {r['machine']}; CPU flags "
        f"{' '.join(r['cpu_flags']) or '(unknown)'}"
        + (f"; overrides {r['overrides']}" if r["overrides"] else ""),
        "",
        "| round | SEACO_WORKERS | workers | wall s | CPU s | cores busy | RTF | "
        "audio s per s | peak RSS per worker MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for x in r["runs"]:
        rss = ", ".join(f"{m:.0f}" for m in x["workers_peak_rss_mb"] if m is not None) or "-"
        lines.append(
            f"| {x['round']} | `{x['layout']}` | {x['workers']} | {x['wall_s']:.1f} | "
            f"{x['cpu_s']:.1f} | {x['cores_busy']:.2f} | {x['rtf']:.4f} | "
            f"{x['audio_s_per_s']:.2f} | {rss} |"
        )
    lines += [
        "",
        "| SEACO_WORKERS | median wall s | median CPU s | median cores busy | median RTF |",
        "|---|---|---|---|---|",
    ]
    for layout, m in r["medians"].items():
        bold = "**" if layout == r["fastest"] else ""
        lines.append(
            f"| {bold}`{layout}`{bold} | {bold}{m['wall_s']:.1f}{bold} | {m['cpu_s']:.1f} | "
            f"{m['cores_busy']:.2f} | {m['rtf']:.4f} |"
        )
    failed = [f for x in r["runs"] for f in x["failed"]]
    if failed:
        lines += ["", f"FAILED jobs: {failed}"]
    return "\n".join(lines)
