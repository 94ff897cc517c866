"""Editor benchmark: frames/s of a full edit on a 1080p still and through a 1080p video.

    .venv/bin/python benchmarks/bench_editor.py              # stills + video (~1–2 min on 2 cores)
    .venv/bin/python benchmarks/bench_editor.py --no-video   # stills only

Stills (1920×1080, a real photograph upscaled): the compiled renderer (one 3D LUT + spatial ops)
next to, in the same run, the plain numpy per-operation baseline and the bare LUT lookup (the
lower bound of any pointwise edit). Video (synthetic 1080p30 clip with AAC audio, x264): our
three-thread pipeline end to end (decode + render + encode, audio copied) for the full edit and
for its pointwise part alone, next to FFmpeg's own ``lut3d`` filter (PyAV filter graph, same
clip, same LUT, same encoder settings). Every number is the median of ``--repeats`` runs: the
machine is shared, so single runs are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

FULL_EDIT = {
    "adjust": {"exposure": 15, "contrast": 25, "brightness": 10, "highlights": -30, "shadows": 20,
               "saturation": 15, "vibrance": 25, "temperature": 20, "tint": 5, "hue": 3, "bloom": 20,
               "sharpen": 30, "structure": 25, "linearOffset": 5},
    "selective_adjust": {"orange": {"saturation": 15, "luminance": 10}, "blue": {"hue": -10, "saturation": 20}},
    "filter": {"name": "film_Portra", "intensity": 60},
}


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def row(name: str, ms: float, note: str = "") -> None:
    print(f"  {name:<44} {ms:8.1f} ms  {1000 / ms:7.1f} fps  {note}")


def bench_stills(repeats: int, cache: Path) -> None:
    import cv2

    from editor.lut import LutApplier
    from editor.render import Renderer, RenderOptions, reference_render
    from editor.samples import sample_photo

    frame = cv2.resize(sample_photo("astronaut"), (1920, 1080), interpolation=cv2.INTER_CUBIC)
    options = RenderOptions(cache_dir=cache)
    start = time.perf_counter()
    renderer = Renderer(FULL_EDIT, options)
    build_ms = (time.perf_counter() - start) * 1000
    print(f"stills: 1920×1080, full edit (14 adjust + 2 ranges + filter), LUT {options.lut_size}³, "
          f"backend {renderer.lut.backend}, {renderer.lut.threads} threads; medians of {repeats}")
    print(f"  compile edit (LUT build, look generated cold)  {build_ms:8.1f} ms")
    row("renderer: LUT + structure/sharpen/bloom", median_ms(lambda: renderer(frame), repeats), "<- target ≥ 30 fps")
    pointwise = Renderer({k: v for k, v in FULL_EDIT.items() if k != "adjust"} | {"adjust": {
        k: v for k, v in FULL_EDIT["adjust"].items() if k not in ("bloom", "sharpen", "structure")}}, options)
    row("renderer: pointwise part only (LUT)", median_ms(lambda: pointwise(frame), repeats))
    spatial = Renderer({"adjust": {k: FULL_EDIT["adjust"][k] for k in ("bloom", "sharpen", "structure")}}, options)
    row("renderer: spatial part only (no LUT)", median_ms(lambda: spatial(frame), repeats))
    bare = LutApplier(renderer.lut.table, "ocio", renderer.lut.threads)
    row("bare LUT lookup, OCIO tetrahedral (lower bound)", median_ms(lambda: bare(frame), repeats))
    one = LutApplier(renderer.lut.table, "ocio", 1)
    row("bare LUT lookup, OCIO, 1 thread", median_ms(lambda: one(frame), repeats))
    pil = LutApplier(renderer.lut.table, "pillow", renderer.lut.threads)
    row("bare LUT lookup, Pillow Color3DLUT", median_ms(lambda: pil(frame), repeats))
    row("numpy per-operation baseline (no LUT)", median_ms(lambda: reference_render(frame, FULL_EDIT),
                                                             max(3, repeats // 5), warmup=0))


def ffmpeg_lut3d(src: Path, dst: Path, cube: Path, preset: str, crf: int) -> tuple[int, float]:
    """FFmpeg's lut3d in a PyAV filter graph: decode → lut3d → yuv420p → x264, audio copied."""
    import av

    start = time.perf_counter()
    frames = 0
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        vin.thread_type = "AUTO"
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
        vout.time_base = vin.time_base
        vout.options = {"preset": preset, "crf": str(crf)}
        aout = out.add_stream_from_template(ain)
        graph = av.filter.Graph()
        buf = graph.add_buffer(template=vin)
        lut = graph.add("lut3d", f"file={cube}:interp=tetrahedral")
        fmt = graph.add("format", "yuv420p")
        sink = graph.add("buffersink")
        buf.link_to(lut)
        lut.link_to(fmt)
        fmt.link_to(sink)
        graph.configure()
        for packet in inp.demux(vin, ain):
            if packet.stream is ain:
                if packet.dts is not None:
                    packet.stream = aout
                    out.mux(packet)
                continue
            for frame in packet.decode():
                graph.vpush(frame)
                out.mux(vout.encode(graph.vpull()))
                frames += 1
        out.mux(vout.encode())
    return frames, time.perf_counter() - start


def bench_video(repeats: int, cache: Path, frames: int, preset: str, crf: int) -> None:
    from editor.cube import write_cube
    from editor.render import Renderer, RenderOptions
    from editor.samples import make_clip
    from editor.video import render_video

    work = Path(tempfile.mkdtemp(prefix="toneflow-bench-"))
    src = make_clip(work / "in.mp4", 1920, 1080, frames=frames, fps=30, audio=True)
    options = RenderOptions(cache_dir=cache)
    full = Renderer(FULL_EDIT, options)
    pointwise_edit = {k: v for k, v in FULL_EDIT.items() if k != "adjust"} | {"adjust": {
        k: v for k, v in FULL_EDIT["adjust"].items() if k not in ("bloom", "sharpen", "structure")}}
    pointwise = Renderer(pointwise_edit, options)
    cube = work / "edit.cube"
    write_cube(cube, pointwise.lut.table, "bench edit")
    print(f"\nvideo: synthetic 1920×1080 30 fps, {frames} frames + AAC audio, x264 {preset} crf {crf}; "
          f"decode + render + encode, medians of {repeats}")

    def ours(renderer: Renderer) -> float:
        fps = []
        for _ in range(repeats):
            stats = render_video(src, work / "out.mp4", renderer, preset=preset, crf=crf, progress=False)
            assert stats.frames == frames and stats.audio == "copied"
            fps.append(stats.fps)
        return statistics.median(fps)

    def theirs() -> float:
        fps = []
        for _ in range(repeats):
            n, seconds = ffmpeg_lut3d(src, work / "ff.mp4", cube, preset, crf)
            assert n == frames
            fps.append(n / seconds)
        return statistics.median(fps)

    identity = Renderer({}, options)
    print(f"  {'toneflow, no edit (decode + encode only)':<44} {ours(identity):7.1f} fps")
    print(f"  {'toneflow, full edit (LUT + spatial)':<44} {ours(full):7.1f} fps")
    print(f"  {'toneflow, pointwise part only (same LUT)':<44} {ours(pointwise):7.1f} fps")
    print(f"  {'ffmpeg lut3d (PyAV graph), same LUT':<44} {theirs():7.1f} fps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per still measurement")
    parser.add_argument("--video-repeats", type=int, default=3, help="runs per video measurement")
    parser.add_argument("--frames", type=int, default=150, help="frames in the 1080p test clip")
    parser.add_argument("--preset", default="veryfast", help="x264 preset on both sides")
    parser.add_argument("--crf", type=int, default=20)
    parser.add_argument("--no-video", action="store_true")
    args = parser.parse_args()
    cache = Path(tempfile.mkdtemp(prefix="toneflow-bench-looks-"))
    bench_stills(args.repeats, cache)
    if not args.no_video:
        bench_video(args.video_repeats, cache, args.frames, args.preset, args.crf)


if __name__ == "__main__":
    main()
