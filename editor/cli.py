"""``toneflow edit``, ``toneflow contact-sheet`` and ``toneflow editor cubes``.

Heavy imports (numpy, OpenCV, PyAV, OCIO, the student, the teacher) happen inside the handlers,
so ``toneflow --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from foundation.cli import add_command

# (settings, prompts, "student[:NAME]" | "teacher[:KIND]") -> (edits, who made them). The CLI root
# passes one in (serving/edits.py), so the renderer never imports a model.
PredictEdits = Callable[[Any, Sequence[str], str], tuple[list[Any], str]]

_SAMPLE = "sample:"


def _env(field: str) -> str:
    return f"[env: TONEFLOW_{field.upper()}]"


def _render_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lut-size", type=int, default=None, help=f"3D LUT grid size (default 33) {_env('editor_lut_size')}")
    p.add_argument("--backend", choices=("auto", "ocio", "pillow", "numpy"), default=None,
                   help=f"3D LUT lookup backend {_env('editor_lut_backend')}")
    p.add_argument("--threads", type=int, default=None, help=f"render threads, 0 = all cores {_env('editor_threads')}")


def _model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--teacher", nargs="?", const="", default=None, metavar="KIND",
                   help="use the teacher instead of the student (KIND: offline|openai, default TONEFLOW_TEACHER)")
    p.add_argument("--student", default="current", metavar="NAME",
                   help="student to ask: current, previous or a version")


def register(sub: argparse._SubParsersAction, predict_edits: PredictEdits) -> None:
    edit = add_command(sub, "edit", "render an edit on an image or a video",
                       "Apply an edit to IN and write OUT. The edit comes from a JSON file (--edit), inline JSON\n"
                       "(--json), or a look request (--prompt) answered by the current student or, with\n"
                       "--teacher, by the teacher. Images: .jpg .png .webp .tif; videos: .mp4 .mov (audio kept).\n\n"
                       "  toneflow edit photo.jpg out.jpg --edit edit.json\n"
                       "  toneflow edit clip.mp4 out.mp4 --prompt 'golden hour' --teacher")
    edit.add_argument("input", type=Path, help="image or video to edit")
    edit.add_argument("output", type=Path, help="where to write the result (format from the extension)")
    src = edit.add_mutually_exclusive_group(required=True)
    src.add_argument("--edit", dest="edit_file", type=Path, help="edit JSON file (see `toneflow schemas validate`)")
    src.add_argument("--json", dest="edit_json", help="the edit as inline JSON")
    src.add_argument("--prompt", help="a look request, e.g. 'golden hour'")
    _model_flags(edit)
    _render_flags(edit)
    edit.add_argument("--preset", default=None, help=f"x264 preset for videos {_env('editor_video_preset')}")
    edit.add_argument("--crf", type=int, default=None, help=f"x264 CRF for videos {_env('editor_video_crf')}")
    edit.add_argument("--no-progress", action="store_true", help="hide the video progress bar")
    edit.set_defaults(func=_edit, predict_edits=predict_edits)

    sheet = add_command(sub, "contact-sheet", "render one image under several looks/prompts/models, side by side",
                        "Render IN (a photo, or sample:astronaut|coffee|chelsea|rocket) under every --look,\n"
                        "--edit file and --prompt (asked of every --model), into a labelled grid PNG and a\n"
                        "self-contained HTML page with each tile's edit JSON.\n\n"
                        "  toneflow contact-sheet sample:astronaut sheet.png --look film_Portra --look mono_Noir\n"
                        "  toneflow contact-sheet me.jpg sheet.png --prompt moody --prompt Morocco "
                        "--model student --model teacher")
    sheet.add_argument("input", help="image path, or sample:NAME for a bundled scikit-image photo")
    sheet.add_argument("output", type=Path, help="grid PNG to write (the HTML page goes next to it)")
    sheet.add_argument("--look", action="append", default=[], metavar="NAME", help="a catalogue filter at 100%%")
    sheet.add_argument("--all-looks", action="store_true", help="every filter in the catalogue")
    sheet.add_argument("--edit", action="append", default=[], type=Path, metavar="FILE", help="an edit JSON file")
    sheet.add_argument("--prompt", action="append", default=[], help="a look request")
    sheet.add_argument("--model", action="append", default=[], metavar="SPEC",
                       help="who answers --prompt: student[:NAME] or teacher[:KIND] (default: student)")
    sheet.add_argument("--columns", type=int, default=4, help="tiles per row")
    sheet.add_argument("--tile-width", type=int, default=320, help="tile width in pixels")
    sheet.add_argument("--no-original", action="store_true", help="leave out the unedited tile")
    sheet.add_argument("--no-html", action="store_true", help="write only the PNG")
    _render_flags(sheet)
    sheet.set_defaults(func=_contact_sheet, predict_edits=predict_edits)

    group = add_command(sub, "editor", "editor utilities (filter LUT files)")
    esub = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    cubes = add_command(esub, "cubes", "write the .cube file of every catalogue filter (33³, from its recipe)")
    cubes.add_argument("--out", type=Path, default=None, help="directory (default: the editor's cache dir)")
    cubes.add_argument("--size", type=int, default=33, help="LUT grid size")
    cubes.set_defaults(func=_cubes)


def _options(args: argparse.Namespace) -> Any:
    from editor.render import RenderOptions
    from foundation.settings import get_settings

    base = RenderOptions.from_settings(get_settings())
    return RenderOptions(args.lut_size or base.lut_size, args.backend or base.backend,
                         base.threads if args.threads is None else args.threads, base.cache_dir)


def load_edit_file(path: Path) -> Any:
    """Read and strictly validate an edit JSON file; errors name the file and the field path."""
    from editor.exceptions import EditFileError
    from schemas.exceptions import SchemaViolation
    from schemas.validation import validate_edit

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        msg = f"cannot read edit file {path}: {err.strerror}"
        raise EditFileError(msg) from None
    return _parse_edit(text, str(path), EditFileError, SchemaViolation, validate_edit)


def _parse_edit(text: str, where: str, error: Any, violation: Any, validate: Any) -> Any:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        msg = f"{where} is not JSON (line {err.lineno}, column {err.colno}: {err.msg})"
        raise error(msg) from None
    try:
        return validate(obj)
    except violation as err:
        msg = f"{where}: {err}"
        raise error(msg) from None


def _edit(args: argparse.Namespace) -> int:
    from editor.exceptions import EditFileError
    from editor.images import media_kind
    from foundation.settings import get_settings
    from schemas.exceptions import SchemaViolation
    from schemas.validation import validate_edit

    settings = get_settings()
    kind = media_kind(args.input)
    out_kind = media_kind(args.output)
    if kind != out_kind:
        msg = f"{args.input} is an {kind} but {args.output} names a {out_kind}; use the same kind of file"
        raise EditFileError(msg)
    if args.edit_file is not None:
        edit, who = load_edit_file(args.edit_file), str(args.edit_file)
    elif args.edit_json is not None:
        edit, who = _parse_edit(args.edit_json, "--json", EditFileError, SchemaViolation, validate_edit), "--json"
    else:
        model = f"teacher:{args.teacher}" if args.teacher is not None else f"student:{args.student}"
        edits, who = args.predict_edits(settings, [args.prompt], model)
        edit = edits[0]
    options = _options(args)
    from editor.render import Renderer

    renderer = Renderer(edit, options)
    start = time.perf_counter()
    if kind == "image":
        from editor.images import Still, read_image, write_image

        still = read_image(args.input)
        write_image(args.output, Still(renderer(still.rgb), still.alpha, still.info))
        detail = f"{still.rgb.shape[1]}×{still.rgb.shape[0]}"
    else:
        from editor.video import render_video

        stats = render_video(args.input, args.output, renderer,
                             preset=args.preset or settings.editor_video_preset,
                             crf=settings.editor_video_crf if args.crf is None else args.crf,
                             progress=not args.no_progress)
        detail = f"{stats.frames} frames, {stats.fps:.1f} fps, audio {stats.audio}"
    print(json.dumps({"output": str(args.output), "edit": edit.canonical_dict(), "by": who,
                      "seconds": round(time.perf_counter() - start, 3), "detail": detail}, ensure_ascii=False))
    return 0


def _read_sheet_input(spec: str) -> Any:
    from editor.images import read_image
    from editor.samples import sample_photo

    if spec.startswith(_SAMPLE):
        try:
            return sample_photo(spec[len(_SAMPLE):])
        except ValueError as err:
            from editor.exceptions import MediaNotFound

            raise MediaNotFound(str(err)) from None
    return read_image(Path(spec)).rgb


def _contact_sheet(args: argparse.Namespace) -> int:
    from editor.contact import build_sheet, fit_width, render_tiles, write_html
    from editor.exceptions import EditFileError, UnsupportedFormat
    from foundation.settings import get_settings
    from schemas.edit import Edit
    from schemas.filters import FILTER_NAMES

    if args.output.suffix.lower() != ".png":
        msg = f"the contact sheet is a PNG: name it {args.output.with_suffix('.png')}"
        raise UnsupportedFormat(msg)
    looks = list(FILTER_NAMES) if args.all_looks else args.look
    unknown = [n for n in looks if n not in FILTER_NAMES]
    if unknown:
        msg = f"unknown filter {unknown[0]!r}; see `toneflow schemas filters`"
        raise EditFileError(msg)
    entries: list[tuple[str, str, Any]] = [(n, "filter 100", Edit(filter={"name": n, "intensity": 100})) for n in looks]
    entries += [(p.name, "edit file", load_edit_file(p)) for p in args.edit]
    if args.prompt:
        for model in args.model or ["student"]:
            edits, who = args.predict_edits(get_settings(), args.prompt, model)
            entries += [(prompt, who, e) for prompt, e in zip(args.prompt, edits)]
    if not entries:
        msg = "nothing to render: give at least one --look, --all-looks, --edit or --prompt"
        raise EditFileError(msg)
    rgb = fit_width(_read_sheet_input(args.input), args.tile_width)
    tiles = render_tiles(rgb, entries, _options(args), include_original=not args.no_original)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    build_sheet(tiles, args.columns).save(args.output, optimize=True)
    written = [str(args.output)]
    if not args.no_html:
        page = args.output.with_suffix(".html")
        write_html(page, tiles, f"toneflow contact sheet: {args.input}", args.output.name)
        written.append(str(page))
    print(json.dumps({"written": written, "tiles": len(tiles)}))
    return 0


def _cubes(args: argparse.Namespace) -> int:
    from editor.cube import look_key, look_table
    from editor.render import RenderOptions
    from foundation.settings import get_settings
    from schemas.filters import FILTER_NAMES

    out = args.out or RenderOptions.from_settings(get_settings()).looks_dir
    for name in FILTER_NAMES:
        look_table(name, args.size, out)
        sys.stdout.write(f"{out / look_key(name, args.size)}\n")
    return 0
