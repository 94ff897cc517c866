"""``toneflow edit`` / ``contact-sheet`` / ``editor cubes`` end to end, in-process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from editor.samples import make_clip, sample_photo
from toneflow.cli import main


@pytest.fixture
def photo_png(tmp_path: Path) -> Path:
    path = tmp_path / "in.png"
    Image.fromarray(sample_photo("coffee")[::4, ::4].copy()).save(path)
    return path


def _edit_file(tmp_path: Path, edit: dict) -> Path:
    path = tmp_path / "edit.json"
    path.write_text(json.dumps(edit))
    return path


def test_edit_image_with_an_edit_file(settings, tmp_path, photo_png, capsys) -> None:
    edit = _edit_file(tmp_path, {"adjust": {"exposure": 40}, "filter": {"name": "film_Portra", "intensity": 50}})
    out = tmp_path / "out.jpg"
    assert main(["edit", str(photo_png), str(out), "--edit", str(edit)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["edit"]["adjust"] == {"exposure": 40}
    src, dst = np.asarray(Image.open(photo_png)), np.asarray(Image.open(out))
    assert dst.shape == src.shape and dst.mean() > src.mean() + 5


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tif"])
def test_identity_edit_round_trips_lossless_formats(settings, tmp_path, photo_png, suffix) -> None:
    out = tmp_path / f"out{suffix}"
    extra = {".webp": []}.get(suffix, [])
    assert main(["edit", str(photo_png), str(out), "--json", "{}", *extra]) == 0
    if suffix != ".webp":  # WebP is lossy at quality 95
        assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), np.asarray(Image.open(photo_png)))


def test_alpha_is_kept(settings, tmp_path) -> None:
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 120, np.arange(30, dtype=np.uint8)[None, :] * 8
    src = tmp_path / "a.png"
    Image.fromarray(rgba).save(src)
    main(["edit", str(src), str(tmp_path / "b.png"), "--json", '{"adjust": {"exposure": 50}}'])
    out = np.asarray(Image.open(tmp_path / "b.png"))
    assert out.shape[2] == 4 and np.array_equal(out[..., 3], rgba[..., 3]) and out[..., 0].mean() > 120


def test_invalid_edit_file_names_the_field(settings, tmp_path, photo_png, capsys) -> None:
    bad = _edit_file(tmp_path, {"adjust": {"contrast": 300}})
    assert main(["edit", str(photo_png), str(tmp_path / "o.png"), "--edit", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "adjust.contrast" in err and "300" in err and err.count("\n") == 1


def test_edit_file_that_is_not_json(settings, tmp_path, photo_png, capsys) -> None:
    bad = tmp_path / "e.json"
    bad.write_text("{adjust: 1")
    assert main(["edit", str(photo_png), str(tmp_path / "o.png"), "--edit", str(bad)]) == 2
    assert "is not JSON (line 1" in capsys.readouterr().err


@pytest.mark.parametrize(("inp", "out", "needle"), [
    ("missing.png", "o.png", "does not exist"),
    ("in.png", "o.gif", "unsupported format '.gif'"),
    ("in.png", "o.mp4", "use the same kind of file"),
])
def test_bad_paths_give_one_line_errors(settings, tmp_path, photo_png, capsys, inp, out, needle) -> None:
    code = main(["edit", str(tmp_path / inp), str(tmp_path / out), "--json", "{}"])
    err = capsys.readouterr().err
    assert code != 0 and needle in err and err.startswith("error: ")


def test_corrupt_image_is_a_decode_error(settings, tmp_path, capsys) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    assert main(["edit", str(bad), str(tmp_path / "o.jpg"), "--json", "{}"]) == 1
    assert "cannot decode" in capsys.readouterr().err


def test_prompt_without_a_student_says_what_to_do(settings, tmp_path, photo_png, capsys) -> None:
    assert main(["edit", str(photo_png), str(tmp_path / "o.png"), "--prompt", "golden hour"]) == 1
    err = capsys.readouterr().err
    assert "toneflow train" in err and "--teacher" in err


@pytest.mark.slow
def test_prompt_through_the_offline_teacher(settings, tmp_path, photo_png, capsys) -> None:
    pytest.importorskip("teacher.offline")
    out = tmp_path / "o.png"
    assert main(["edit", str(photo_png), str(out), "--prompt", "black and white", "--teacher", "offline"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["by"].startswith("teacher:offline") and report["edit"]
    assert out.exists()


@pytest.mark.parametrize("audio", [True, False])
def test_edit_video_keeps_frames_and_audio(settings, tmp_path, capsys, audio) -> None:
    import av

    src = make_clip(tmp_path / "in.mp4", 96, 64, frames=12, fps=12, audio=audio)
    out = tmp_path / "out.mov"
    edit = '{"adjust": {"saturation": -100, "sharpen": 30}}'
    assert main(["edit", str(src), str(out), "--json", edit, "--no-progress", "--preset", "ultrafast"]) == 0
    assert "12 frames" in json.loads(capsys.readouterr().out)["detail"]
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        has_audio = bool(c.streams.audio)
    assert len(frames) == 12 and has_audio == audio
    frame = frames[5].astype(int)
    assert np.abs(frame - frame.mean(axis=2, keepdims=True)).max() < 12  # grey, up to yuv420 rounding
    assert not list(tmp_path.glob(".*.tmp*"))


def test_pcm_audio_is_transcoded_into_mp4(settings, tmp_path, capsys) -> None:
    import av

    src = make_clip(tmp_path / "in.mov", 64, 48, frames=6, fps=12, audio=True, audio_codec="pcm_s16le")
    out = tmp_path / "out.mp4"
    assert main(["edit", str(src), str(out), "--json", '{"adjust": {"hue": 40}}', "--no-progress"]) == 0
    assert "audio transcoded" in json.loads(capsys.readouterr().out)["detail"]
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"


def test_contact_sheet_png_and_html(settings, tmp_path, capsys) -> None:
    edit = _edit_file(tmp_path, {"adjust": {"temperature": 60}})
    out = tmp_path / "sheet" / "cs.png"
    args = ["contact-sheet", "sample:chelsea", str(out), "--look", "mono_Noir", "--look", "vivid_Pop",
            "--edit", str(edit), "--columns", "2", "--tile-width", "120"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["tiles"] == 4
    sheet = Image.open(out)
    assert sheet.width < 2 * 120 + 40 and sheet.height > 2 * 80
    page = out.with_suffix(".html").read_text()
    assert page.count("<figure>") == 4 and "mono_Noir" in page and "&quot;temperature&quot;: 60" in page


def test_contact_sheet_rejects_unknown_looks_and_empty_requests(settings, tmp_path, capsys) -> None:
    assert main(["contact-sheet", "sample:chelsea", str(tmp_path / "a.png"), "--look", "nope"]) == 2
    assert main(["contact-sheet", "sample:chelsea", str(tmp_path / "a.png")]) == 2
    assert "nothing to render" in capsys.readouterr().err


def test_editor_cubes_writes_every_look(settings, tmp_path, capsys) -> None:
    assert main(["editor", "cubes", "--out", str(tmp_path), "--size", "9"]) == 0
    paths = capsys.readouterr().out.split()
    assert len(paths) == 28 and all(Path(p).exists() for p in paths)
    assert "LUT_3D_SIZE 9" in Path(paths[0]).read_text()
