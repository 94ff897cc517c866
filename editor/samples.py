"""Sample media for the contact sheet, the benchmark and the tests, made or shipped offline.

Photos come from scikit-image's bundled data (``astronaut``, ``coffee``, ``chelsea`` are in its
wheel; no download). Clips are synthesised with PyAV: moving colour gradients plus a sine tone,
so a test or benchmark needs no media files in the repository.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def sample_photo(name: str = "astronaut") -> np.ndarray:
    """A bundled scikit-image photograph as uint8 RGB."""
    import skimage.data

    if name not in PHOTOS:
        msg = f"unknown sample photo {name!r}; choose one of {', '.join(PHOTOS)}"
        raise ValueError(msg)
    return np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])


def synthetic_frame(width: int, height: int, t: float = 0.0, seed: int = 0) -> np.ndarray:
    """Gradients in all three channels, a moving bright disc (for bloom) and mild noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = x / max(width - 1, 1)
    g = y / max(height - 1, 1)
    b = 0.5 + 0.5 * np.sin(2 * np.pi * (r + g + t))
    img = np.stack([r, g, b], axis=-1)
    cx, cy = width * (0.3 + 0.4 * (t % 1)), height * 0.5
    disc = ((x - cx) ** 2 + (y - cy) ** 2) < (0.08 * min(width, height)) ** 2
    img[disc] = 0.97
    img += rng.normal(0, 0.01, img.shape).astype(np.float32)
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def make_clip(path: Path, width: int = 320, height: int = 240, frames: int = 24, fps: int = 24,
              audio: bool = True, audio_codec: str = "aac") -> Path:
    """Write a synthetic H.264 clip (and a 440 Hz tone) with PyAV; returns ``path``."""
    import av

    path = Path(path)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": "ultrafast", "crf": "18"}
        aus = out.add_stream(audio_codec, rate=48000) if audio else None
        if aus is not None:
            aus.layout = "mono"
        samples_per_frame = 48000 // fps
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(synthetic_frame(width, height, i / frames, seed=i), format="rgb24")
            out.mux(vs.encode(frame))
            if aus is not None:
                t = (np.arange(samples_per_frame) + i * samples_per_frame) / 48000
                tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
                af = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
                af.sample_rate = 48000
                af.pts = i * samples_per_frame
                out.mux(aus.encode(af))
        out.mux(vs.encode())
        if aus is not None:
            out.mux(aus.encode())
    return path
