"""Video through PyAV (its wheel ships FFmpeg with libx264, so it works on a fresh machine).

Three threads joined by bounded queues (grading.md §2.5: 31 fps at 1080p vs 14 fps in one loop):

1. demux + decode: video packets → RGB arrays; audio packets are forwarded in demux order;
2. render: the compiled edit on each frame (itself split into strips across cores);
3. encode + mux: x264 for video; audio packets copied as is (``add_stream_from_template``), or
   transcoded to AAC when the output container cannot hold the source codec.

Memory is bounded by the queue sizes (a few frames), whatever the clip's length. Frame pts and
time base are copied from the source, so variable frame rate survives. Guarantees: the output has
one video frame per input frame, and the source's first audio track when it has one.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from editor.exceptions import MediaDecodeError, MediaNotFound, VideoError
from foundation.errors import ToneflowError

QUEUE_FRAMES = 8  # per queue: ≈ 3 × 8 × 6 MB at 1080p in flight, at most
_MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "opus", "alac", "flac"}
_DONE = object()


@dataclass
class VideoStats:
    frames: int
    seconds: float
    audio: str  # "copied", "transcoded" or "none"

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


class _Pipe:
    """A bounded queue whose put/get give up once any stage has failed (no deadlock on errors)."""

    def __init__(self, stop: threading.Event) -> None:
        self.q: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_FRAMES)
        self.stop = stop

    def put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self) -> Any:
        while not self.stop.is_set():
            try:
                return self.q.get(timeout=0.1)
            except queue.Empty:
                continue
        return _DONE


def open_input(src: Path):  # noqa: ANN201 - an av InputContainer
    import av

    if not Path(src).is_file():
        msg = f"input video {src} does not exist (check the path)"
        raise MediaNotFound(msg)
    try:
        container = av.open(str(src))
    except av.FFmpegError as err:
        msg = f"cannot open {src} as a video ({err}); is it a complete MP4/MOV file?"
        raise MediaDecodeError(msg) from None
    if not container.streams.video:
        container.close()
        msg = f"{src} has no video stream"
        raise MediaDecodeError(msg)
    return container


def render_video(src: Path, dst: Path, render: Callable[[np.ndarray], np.ndarray], *, preset: str = "veryfast",
                 crf: int = 20, progress: bool = True) -> VideoStats:
    """Decode ``src``, apply ``render`` to every frame, encode to ``dst`` with the audio kept."""
    import time

    import av
    from tqdm import tqdm

    inp = open_input(src)
    vin = inp.streams.video[0]
    vin.thread_type = "AUTO"  # frame + slice threads in the decoder
    ain = inp.streams.audio[0] if inp.streams.audio else None
    width, height = vin.codec_context.width & ~1, vin.codec_context.height & ~1  # yuv420p needs even sizes
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.stem}.{os.getpid()}.tmp{dst.suffix}")
    out = av.open(str(tmp), "w", format="mov" if dst.suffix.lower() == ".mov" else "mp4")
    vout = out.add_stream("libx264", rate=vin.average_rate or vin.guessed_rate or 30)
    vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
    vout.time_base = vin.time_base
    vout.options = {"preset": preset, "crf": str(crf)}
    audio_mode, aout = "none", None
    if ain is not None:
        if dst.suffix.lower() == ".mov" or ain.codec_context.name in _MP4_AUDIO:
            aout, audio_mode = out.add_stream_from_template(ain), "copied"
        else:
            aout, audio_mode = out.add_stream("aac", rate=ain.codec_context.sample_rate or 48000), "transcoded"

    stop, errors = threading.Event(), []
    decoded, rendered = _Pipe(stop), _Pipe(stop)
    bar = tqdm(total=vin.frames or None, unit="frame", desc=Path(src).name, disable=not progress)

    def guard(fn: Callable[[], None], pipe: _Pipe | None) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except Exception as err:  # noqa: BLE001 - handed to the caller below
                errors.append(err)
                stop.set()
            finally:
                if pipe is not None:
                    pipe.put(_DONE)
        return run

    def demux() -> None:
        streams = [vin] + ([ain] if ain is not None else [])
        for packet in inp.demux(*streams):
            if packet.stream is ain:
                if packet.dts is not None and not decoded.put(("a", packet)):
                    return
                continue
            for frame in packet.decode():
                rgb = frame.to_ndarray(format="rgb24")[:height, :width]
                if not decoded.put(("v", rgb, frame.pts, frame.time_base)):
                    return

    def process() -> None:
        while (item := decoded.get()) is not _DONE:
            if item[0] == "v":
                item = ("v", render(np.ascontiguousarray(item[1])), item[2], item[3])
            if not rendered.put(item):
                return

    def encode() -> None:
        frames = 0
        while (item := rendered.get()) is not _DONE:
            if item[0] == "a":
                packet = item[1]
                if audio_mode == "copied":
                    packet.stream = aout
                    out.mux(packet)
                else:
                    for frame in packet.decode():
                        frame.pts = None
                        out.mux(aout.encode(frame))
                continue
            frame = av.VideoFrame.from_ndarray(item[1], format="rgb24")
            frame.pts, frame.time_base = item[2], item[3]
            out.mux(vout.encode(frame))
            frames += 1
            bar.update(1)
        if stop.is_set():
            return
        out.mux(vout.encode())
        if audio_mode == "transcoded":
            out.mux(aout.encode())
        counted.append(frames)

    counted: list[int] = []
    start = time.perf_counter()
    threads = [threading.Thread(target=guard(demux, decoded), name="toneflow-demux"),
               threading.Thread(target=guard(process, rendered), name="toneflow-render"),
               threading.Thread(target=guard(encode, None), name="toneflow-encode")]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    except KeyboardInterrupt:
        stop.set()
        for t in threads:
            t.join()
        raise
    finally:
        bar.close()
        try:
            out.close()
        except av.FFmpegError as err:
            errors.append(err)
        inp.close()
    if errors or not counted:
        tmp.unlink(missing_ok=True)
        first = errors[0] if errors else RuntimeError("pipeline stopped")
        if isinstance(first, ToneflowError):
            raise first
        msg = f"video rendering of {src} failed: {type(first).__name__}: {first}"
        raise VideoError(msg) from first
    os.replace(tmp, dst)
    return VideoStats(counted[0], time.perf_counter() - start, audio_mode)
