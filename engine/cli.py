"""The `seaco` command: serve, worker, models, submit, status, config, migrate, eval, bench."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from engine.config import SETTINGS, load_settings, settings_markdown
from engine.errors import SeacoError
from engine.logging_setup import configure_logging


def cmd_serve(args: argparse.Namespace) -> int:
    from engine.worker.supervisor import serve

    configure_logging("supervisor")
    return serve(load_settings())


def cmd_stop(args: argparse.Namespace) -> int:
    from engine.worker.supervisor import stop_instance

    configure_logging("supervisor")
    stopped = stop_instance(load_settings())
    print("stopped" if stopped else "not running")
    return 0


TEST_PIPELINE_ENV = "SEACO_TEST_PIPELINE"


def cmd_worker(args: argparse.Namespace) -> int:
    from engine.lifeline import die_with_supervisor
    from engine.worker.queue_worker import load_pipeline, run_worker

    die_with_supervisor()
    configure_logging("worker")
    factory = load_pipeline
    # Test seam, not a setting: "module:function" building the pipeline instead of
    # load_pipeline. tests/fault_pipeline.py wraps the real pipeline with it to make a worker
    # hang or crash on a marked job (README, Development).
    spec = os.environ.get(TEST_PIPELINE_ENV)
    if spec:
        import importlib

        module, _, name = spec.partition(":")
        factory = getattr(importlib.import_module(module), name)
    return run_worker(
        load_settings(),
        burst=args.burst,
        max_jobs=args.max_jobs,
        pipeline_factory=factory,
        slot=args.slot,
    )


def cmd_models_build_test(args: argparse.Namespace) -> int:
    from engine.recognition.random_models import build_test_models

    configure_logging("models")
    started = time.monotonic()
    paths = build_test_models(Path(args.dir), size=args.size, seed=args.seed)
    print(f"Built RANDOM-WEIGHT {args.size} test models in {time.monotonic() - started:.1f} s.")
    print("They run the real FunASR code but their text is meaningless. Use them with:")
    for kind, path in paths.items():
        print(f"  SEACO_{kind.upper()}_MODEL={path.resolve()}")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from engine.errors import ApiError
    from engine.tools.submit_client import ApiClient, default_url, submit_files

    settings = load_settings()
    token = args.token or os.environ.get("SEACO_API_TOKEN") or next(iter(settings.token_list), None)
    client = ApiClient(args.url or default_url(settings), token)
    paths = [Path(p) for p in args.files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        jobs = submit_files(
            client,
            paths,
            hotwords=args.hotwords,
            wait=args.wait,
            fmt=args.format,
            out_dir=Path(args.out) if args.out else None,
        )
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the service is not running, or not at that address
        print(f"error: cannot reach {client.base_url}: {exc}", file=sys.stderr)
        return 2
    if args.wait and any(j.state != "done" for j in jobs):
        return 1
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from engine.ops.health import health
    from engine.store import open_store

    settings = load_settings()
    settings.ensure_dirs()
    store = open_store(settings.db_path)
    report = health(store, settings)
    report["jobs"] = store.counts_by_state()
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0 if report["status"] != "down" else 1


def cmd_config(args: argparse.Namespace) -> int:
    if args.markdown:  # the declarations only: no settings are read
        print(settings_markdown(), end="")
        return 0
    settings = load_settings()
    for spec in SETTINGS:
        value = settings.display_value(spec.name)
        print(f"{spec.env}={value}    # {settings.sources[spec.name]}: {spec.plain_description}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from engine.store import open_store

    settings = load_settings()
    settings.ensure_dirs()
    store = open_store(settings.db_path)
    print(f"{settings.db_path}: schema version {store.schema_version()}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from engine.tools.evaluation import run_eval

    run_eval(
        load_settings(),
        Path(args.manifest),
        hotwords_file=Path(args.hotwords_file) if args.hotwords_file else None,
        json_path=Path(args.json) if args.json else None,
        max_diffs=args.diffs,
        missed_below=args.missed_below,
        # funasr logs a line per call with hotwords at INFO: only warnings, unless asked
        log_level=os.environ.get("SEACO_LOG_LEVEL", "WARNING"),
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seaco", description="Self-hosted Chinese speech recognition (SeACo-Paraformer)."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run web + worker in the foreground, restarting the worker")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("stop", help="stop the instance recorded in <data>/seaco.pid")
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("worker", help="run only the worker process (the one that owns the model)")
    p.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    p.add_argument("--max-jobs", type=int, default=None, help="exit after this many jobs")
    p.add_argument(
        "--slot",
        type=int,
        default=0,
        help="which of SEACO_WORKERS' workers to run (0, 1, ...; seaco serve gives each its own)",
    )
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("models", help="model utilities")
    models = p.add_subparsers(dest="models_command", required=True)
    b = models.add_parser(
        "build-test", help="write RANDOM-WEIGHT SeACo/VAD/punc models in FunASR's format"
    )
    b.add_argument("dir", help="output directory")
    b.add_argument("--size", choices=["tiny", "full"], default="tiny")
    b.add_argument("--seed", type=int, default=0)
    b.set_defaults(func=cmd_models_build_test)

    p = sub.add_parser("submit", help="queue audio files through the HTTP API")
    p.add_argument("files", nargs="+")
    p.add_argument("--hotwords", default=None, help="e.g. '科哥,Paraformer'")
    p.add_argument("--wait", action="store_true", help="wait for the results and print them")
    p.add_argument(
        "--format",
        choices=["txt", "srt", "vtt", "json", "csv", "docx"],
        default=None,
        help="with --wait: fetch each transcript in this format",
    )
    p.add_argument("--out", default=None, help="with --format: write files here (else stdout)")
    p.add_argument("--url", default=None, help="service URL (default from SEACO_HOST/PORT)")
    p.add_argument("--token", default=None, help="API token (default SEACO_API_TOKEN)")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("status", help="print the health report and job counts as JSON")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("config", help="print every setting, its value and where it came from")
    p.add_argument(
        "--markdown",
        action="store_true",
        help="print the README's settings table (names, defaults, meanings) instead",
    )
    p.set_defaults(func=cmd_config)
    p = sub.add_parser("migrate", help="create or upgrade jobs.db")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser(
        "eval", help="CER and hotword recall/precision on a manifest, with and without hotwords"
    )
    p.add_argument("manifest", help="JSON lines: audio, text (the reference), optional hotwords")
    p.add_argument(
        "--hotwords-file",
        default=None,
        help="one hotword per line, added to every utterance (e.g. AISHELL-1 NE hotword.txt)",
    )
    p.add_argument("--json", default=None, help="write the full report (per utterance) here")
    p.add_argument("--diffs", type=int, default=20, help="utterance diffs shown in the table")
    p.add_argument(
        "--missed-below",
        type=float,
        default=0.4,
        help="a hotword counts as missed by the baseline below this recall (paper's R1: 0.4)",
    )
    p.set_defaults(func=cmd_eval)

    # Its options belong to engine.tools.throughput_benchmark (`seaco bench --help`); main()
    # hands them over before this parser sees them, so the CLI does not import the benchmark
    # to start.
    p = sub.add_parser("bench", help="throughput: the service against a plain funasr loop")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        from engine.tools.throughput_benchmark import main as bench_main

        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SeacoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
