"""``toneflow teach``: label look requests with the configured teacher.

    toneflow teach "golden hour"                      # the edit JSON
    toneflow teach "golden hour" "make it moodier" --json   # one label per line, with provenance
    toneflow teach --input prompts.jsonl --output labels.jsonl   # resumable, with a progress bar
    toneflow teach --teacher openai "Morocco"         # any OpenAI-compatible endpoint (TONEFLOW_OPENAI_*)

Heavy imports (torch, transformers, openai) happen inside the handler, so ``toneflow --help``
stays instant.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from foundation.cli import add_command

# Exit code when some prompts could not be labelled *for now* (teacher busy, spend limit): the
# same command, rerun, picks them up. Distinct from 1 (an error) so scripts can loop on it.
EXIT_DEFERRED = 3


def register(sub: argparse._SubParsersAction) -> None:
    teach = add_command(
        sub, "teach", "label look requests with the teacher (offline or OpenAI-compatible)",
        "Turn look requests into edits with the teacher.\n\n"
        "  toneflow teach \"golden hour\"                      print the edit JSON\n"
        "  toneflow teach \"golden hour\" --json               a label line with provenance, tokens, cost\n"
        "  toneflow teach --input prompts.jsonl --output labels.jsonl\n"
        "      label a file of {\"id\", \"prompt\"} lines; rerun to resume (ids already in the output are\n"
        "      skipped). Exit code 3: some prompts were deferred (teacher busy / spend limit), rerun.\n\n"
        "The offline teacher needs no network (a curated look library + MiniLM); the openai teacher\n"
        "uses TONEFLOW_OPENAI_BASE_URL, TONEFLOW_OPENAI_API_KEY and TONEFLOW_OPENAI_MODEL.",
    )
    teach.add_argument("prompts", nargs="*", metavar="PROMPT", help="look request(s) to label")
    teach.add_argument("--teacher", choices=("offline", "openai"), default=None,
                       help="which teacher [env: TONEFLOW_TEACHER, default offline]")
    teach.add_argument("--json", action="store_true", help="print one JSON label per prompt (edit + provenance)")
    teach.add_argument("--input", type=Path, help='JSON Lines of {"id", "prompt"} to label (- for stdin)')
    teach.add_argument("--output", type=Path, help="JSON Lines of labels to append to (required with --input)")
    teach.add_argument("--batch-size", type=int, default=64, help="prompts per teacher call / per fsync")
    teach.add_argument("--temperature", type=float, default=None,
                       help="offline teacher: seeded LLM-like variation, 0..2 [env: TONEFLOW_TEACHER_TEMPERATURE]")
    teach.add_argument("--seed", type=int, default=None, help="offline teacher: noise seed [env: TONEFLOW_SEED]")
    teach.add_argument("--explain", action="store_true", help="offline teacher: show which looks each prompt matched")
    teach.set_defaults(func=_teach)


def _build(args: argparse.Namespace):  # -> Teacher (imported lazily)
    from foundation.settings import get_settings
    from teacher import get_teacher

    settings = get_settings()
    kind = args.teacher or settings.teacher
    overrides = {}
    if kind == "offline":
        if args.temperature is not None:
            overrides["temperature"] = args.temperature
        if args.seed is not None:
            overrides["seed"] = args.seed
    elif args.temperature is not None or args.seed is not None or args.explain:
        from teacher.exceptions import TeacherConfigError

        msg = "--temperature, --seed and --explain apply to the offline teacher only; drop them or use --teacher offline"
        raise TeacherConfigError(msg)
    return get_teacher(settings, kind, **overrides)


def _teach(args: argparse.Namespace) -> int:
    from teacher.exceptions import TeacherError

    if args.batch_size < 1:
        msg = "--batch-size must be at least 1"
        raise TeacherError(msg)
    if args.input is not None:
        if args.prompts:
            msg = "give prompts as arguments or with --input, not both"
            raise TeacherError(msg)
        if args.output is None:
            msg = "--input needs --output (the labels file, also what makes the run resumable)"
            raise TeacherError(msg)
        return _teach_file(args)
    if not args.prompts:
        msg = 'nothing to label: give a prompt (toneflow teach "golden hour") or --input prompts.jsonl'
        raise TeacherError(msg)
    return _teach_prompts(args)


def _teach_prompts(args: argparse.Namespace) -> int:
    import asyncio

    from teacher.exceptions import TeacherError

    teacher = _build(args)

    async def main():
        try:
            return await teacher.label(args.prompts)
        finally:
            await teacher.aclose()

    if args.explain and hasattr(teacher, "read"):
        for prompt, reading in zip(args.prompts, teacher.read(args.prompts), strict=True):
            parts = [str(a) for a in reading.adjustments]
            parts += [f"{m.clause.text!r} x{m.clause.scale:g} -> " + (
                ", ".join(f"{name} ({w:.2f})" for name, w in m.looks) or "nothing the tools can do")
                for m in reading.matches]
            print(f"# {prompt}: " + ("; ".join(parts) or "no clauses"), file=sys.stderr)
    labels = asyncio.run(main())
    failures = [lab for lab in labels if not lab.ok]
    for lab in labels:
        if args.json:
            print(json.dumps(lab.as_dict(), ensure_ascii=False))
        elif lab.ok:
            print(json.dumps(lab.edit.canonical_dict(), indent=2 if len(labels) == 1 else None, ensure_ascii=False))
    if failures and not args.json:
        first = failures[0]
        msg = f"{len(failures)} of {len(labels)} prompts failed; {first.prompt!r}: {first.error_kind}: {first.error}"
        raise TeacherError(msg)
    if any(lab.retryable for lab in failures):
        return EXIT_DEFERRED
    return 1 if failures else 0


def _teach_file(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from teacher.labelfile import read_prompts, run_label_file

    if str(args.input) == "-":
        items = list(read_prompts(sys.stdin, "<stdin>"))
    else:
        if not args.input.exists():
            from teacher.exceptions import TeacherError

            msg = f"input file {args.input} does not exist"
            raise TeacherError(msg)
        with args.input.open(encoding="utf-8") as fh:
            items = list(read_prompts(fh, str(args.input)))
    teacher = _build(args)
    with tqdm(total=len({rid for rid, _ in items}), unit="prompt", desc="teach", file=sys.stderr,
              disable=None) as bar:
        from teacher.labelfile import done_ids

        bar.update(len(done_ids(args.output) & {rid for rid, _ in items}))
        run = run_label_file(teacher, items, args.output, args.batch_size, bar.update)
    p50 = statistics.median(run.latencies_ms) if run.latencies_ms else 0.0
    print(f"labelled {run.labelled}, failed {run.failed}, skipped {run.skipped} already in {args.output}, "
          f"deferred {run.deferred}; teacher {teacher.name} {teacher.version}; cost ${run.cost:.4f}; "
          f"p50 latency {p50:.1f} ms", file=sys.stderr)
    if run.deferred:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(run.deferred_reasons.items()))
        print(f"{run.deferred} prompts deferred ({reasons}); rerun the same command to label them", file=sys.stderr)
        return EXIT_DEFERRED
    return 1 if run.failed else 0
