"""Property tests of the renderer: identity, directions, ranges, extremes, LUT accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from editor.colour import linear_to_oklab, srgb_to_linear
from editor.exceptions import EditorError
from editor.pointwise import POINTWISE_ADJUST, apply_pointwise
from editor.render import Renderer, RenderOptions, reference_render
from editor.samples import sample_photo, synthetic_frame
from schemas.edit import ADJUST_PARAMS, COLOUR_RANGES


@pytest.fixture(scope="module")
def options(tmp_path_factory: pytest.TempPathFactory) -> RenderOptions:
    return RenderOptions(cache_dir=tmp_path_factory.mktemp("looks"))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return sample_photo("astronaut")[::2, ::2].copy()  # 256×256 keeps the suite fast


def _lab(img: np.ndarray) -> np.ndarray:
    return linear_to_oklab(srgb_to_linear(img.astype(np.float32) / 255.0))


def _luma(img: np.ndarray) -> float:
    return float(_lab(img)[..., 0].mean())


def _chroma(img: np.ndarray) -> np.ndarray:
    lab = _lab(img)
    return np.hypot(lab[..., 1], lab[..., 2])


def _render(img: np.ndarray, edit: dict, options: RenderOptions) -> np.ndarray:
    return Renderer(edit, options)(img)


@pytest.mark.parametrize("edit", [
    {}, {"adjust": dict.fromkeys(ADJUST_PARAMS, 0)},
    {"selective_adjust": {c: {"hue": 0, "saturation": 0, "luminance": 0} for c in COLOUR_RANGES}},
    {"filter": {"name": "mono_Noir", "intensity": 0}},
])
def test_zero_edit_is_bit_exact_identity(photo: np.ndarray, options: RenderOptions, edit: dict) -> None:
    renderer = Renderer(edit, options)
    out = renderer(photo)
    assert renderer.is_identity
    assert out is not photo and np.array_equal(out, photo)


@pytest.mark.parametrize("param", ["exposure", "brightness", "shadows", "highlights", "linearOffset"])
def test_brightening_params_move_mean_luminance_with_their_sign(photo, options, param) -> None:
    base = _luma(photo)
    up = _luma(_render(photo, {"adjust": {param: 60}}, options))
    down = _luma(_render(photo, {"adjust": {param: -60}}, options))
    assert up > base + 0.005 and down < base - 0.005


def test_exposure_is_monotone_in_its_parameter(photo, options) -> None:
    means = [_luma(_render(photo, {"adjust": {"exposure": v}}, options)) for v in (-100, -50, -10, 10, 50, 100)]
    assert means == sorted(means)


def test_contrast_spreads_luminance(photo, options) -> None:
    spread = lambda img: float(_lab(img)[..., 0].std())  # noqa: E731
    assert spread(_render(photo, {"adjust": {"contrast": 60}}, options)) > spread(photo) + 0.01
    assert spread(_render(photo, {"adjust": {"contrast": -60}}, options)) < spread(photo) - 0.01


def test_saturation_minus_100_is_grey(photo, options) -> None:
    out = _render(photo, {"adjust": {"saturation": -100}}, options)
    assert _chroma(out).max() < 0.02
    assert np.abs(out.astype(int) - out.mean(axis=2, keepdims=True)).max() <= 3


def test_saturation_and_vibrance_raise_chroma(photo, options) -> None:
    base = _chroma(photo).mean()
    assert _chroma(_render(photo, {"adjust": {"saturation": 50}}, options)).mean() > base * 1.2
    assert _chroma(_render(photo, {"adjust": {"vibrance": -50}}, options)).mean() < base * 0.9


def test_vibrance_boosts_muted_colours_more_than_saturated_ones(options) -> None:
    muted = np.full((8, 8, 3), (150, 130, 120), np.uint8)
    vivid = np.full((8, 8, 3), (40, 90, 220), np.uint8)  # saturated blue, far from skin hues
    gain = lambda img: _chroma(_render(img, {"adjust": {"vibrance": 80}}, options)).mean() / _chroma(img).mean()  # noqa: E731
    assert gain(muted) > gain(vivid) > 0.99


@pytest.mark.parametrize("sign", [1, -1])
def test_temperature_moves_red_over_blue(photo, options, sign) -> None:
    ratio = lambda img: img[..., 0].astype(float).mean() / img[..., 2].astype(float).mean()  # noqa: E731
    out = _render(photo, {"adjust": {"temperature": 50 * sign}}, options)
    assert (ratio(out) - ratio(photo)) * sign > 0.05


def test_tint_plus_is_magenta(photo, options) -> None:
    out = _render(photo, {"adjust": {"tint": 60}}, options).astype(float)
    src = photo.astype(float)
    assert out[..., 1].mean() - (out[..., 0].mean() + out[..., 2].mean()) / 2 < \
        src[..., 1].mean() - (src[..., 0].mean() + src[..., 2].mean()) / 2 - 3


def _range_patches() -> tuple[np.ndarray, dict[str, slice]]:
    colours = {"red": (200, 40, 40), "orange": (230, 130, 30), "yellow": (220, 210, 40),
               "green": (40, 170, 50), "cyan": (40, 190, 200), "blue": (40, 60, 210),
               "purple": (130, 50, 210), "magenta": (200, 50, 190)}
    img = np.zeros((16, 16 * len(colours), 3), np.uint8)
    where = {}
    for i, (name, rgb) in enumerate(colours.items()):
        img[:, 16 * i:16 * (i + 1)] = rgb
        where[name] = slice(16 * i, 16 * (i + 1))
    return img, where


@pytest.mark.parametrize("target", ["red", "green", "blue", "magenta"])
def test_range_edit_changes_its_range_and_leaves_far_ranges_alone(options, target) -> None:
    img, where = _range_patches()
    out = _render(img, {"selective_adjust": {target: {"hue": 60, "saturation": -80, "luminance": 50}}}, options)
    diff = np.abs(out.astype(int) - img.astype(int)).max(axis=(0, 2))
    order = list(COLOUR_RANGES)
    i = order.index(target)
    neighbours = {order[(i - 1) % 8], order[(i + 1) % 8], target}
    assert diff[where[target]].max() > 20
    for name in order:
        if name not in neighbours:
            assert diff[where[name]].max() <= 2, name


def test_range_edit_leaves_greys_alone(options) -> None:
    ramp = np.repeat(np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 4, axis=0), 3, axis=2)
    edit = {"selective_adjust": {c: {"hue": 100, "saturation": 100, "luminance": 100} for c in COLOUR_RANGES}}
    assert np.abs(_render(ramp, edit, options).astype(int) - ramp).max() <= 1


EXTREMES = [{"adjust": {p: v}} for p in ADJUST_PARAMS for v in (-100, 100)] + [
    {"adjust": dict.fromkeys(ADJUST_PARAMS, 100)}, {"adjust": dict.fromkeys(ADJUST_PARAMS, -100)},
    {"selective_adjust": {c: {"hue": -100, "saturation": 100, "luminance": -100} for c in COLOUR_RANGES}},
]


@pytest.mark.parametrize("edit", EXTREMES, ids=lambda e: str(e)[:60])
def test_extremes_stay_finite_in_range_and_unbroken(options, edit) -> None:
    grid = np.random.default_rng(0).random((4096, 3), dtype=np.float32)
    pw = apply_pointwise(grid, edit.get("adjust", {}), edit.get("selective_adjust", {}))
    assert np.isfinite(pw).all() and pw.min() >= 0 and pw.max() <= 1
    out = _render(synthetic_frame(96, 64), edit, options)
    assert out.dtype == np.uint8 and out.shape == (64, 96, 3)


@pytest.mark.parametrize("param", [p for p in POINTWISE_ADJUST if p not in ("hue", "saturation", "vibrance")])
@pytest.mark.parametrize("value", [-100, 100])
def test_tone_params_keep_a_grey_ramp_monotone_and_smooth(options, param, value) -> None:
    ramp = np.repeat(np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 2, axis=0), 3, axis=2)
    out = _render(ramp, {"adjust": {param: value}}, options)[0].astype(int)
    luma = out @ np.array([299, 587, 114]) / 1000
    assert np.all(np.diff(luma) >= -1.0), "tone inverted (wrap-around)"
    assert np.abs(np.diff(out, axis=0)).max() <= 8, "posterised: gaps between neighbouring codes"


def test_lut_path_matches_the_per_operation_reference(photo, options) -> None:
    edit = {"adjust": {"exposure": 25, "contrast": 30, "highlights": -30, "shadows": 25, "saturation": 30,
                       "vibrance": 20, "temperature": 25, "tint": -10, "hue": 5, "linearOffset": 10},
            "selective_adjust": {"orange": {"saturation": 20, "luminance": 10}, "blue": {"hue": -20}},
            "filter": {"name": "film_Kodachrome", "intensity": 60}}
    diff = np.abs(_render(photo, edit, options).astype(int) - reference_render(photo, edit).astype(int))
    assert diff.mean() < 0.8 and np.percentile(diff, 99) <= 4


def test_backends_agree(photo, options) -> None:
    edit = {"adjust": {"contrast": 40, "saturation": 40, "temperature": 30}, "filter": {"name": "cine_TealOrange"}}
    outs = [Renderer(edit, RenderOptions(33, b, 2, options.cache_dir))(photo).astype(int) for b in ("ocio", "pillow", "numpy")]
    for other in outs[1:]:
        assert np.percentile(np.abs(outs[0] - other), 99) <= 2


def test_filter_intensity_blends_between_identity_and_the_look(photo, options) -> None:
    full = _chroma(_render(photo, {"filter": {"name": "mono_Classic", "intensity": 100}}, options)).mean()
    half = _chroma(_render(photo, {"filter": {"name": "mono_Classic", "intensity": 50}}, options)).mean()
    assert full < 0.01 < half < _chroma(photo).mean()


def _laplacian_var(img: np.ndarray) -> float:
    import cv2

    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def test_sharpen_and_structure_add_detail_and_negative_softens(photo, options) -> None:
    base = _laplacian_var(photo)
    assert _laplacian_var(_render(photo, {"adjust": {"sharpen": 80}}, options)) > base * 1.3
    assert _laplacian_var(_render(photo, {"adjust": {"sharpen": -80}}, options)) < base * 0.8
    coarse = lambda img: float(np.abs(img.astype(float) - img.mean()).mean())  # noqa: E731
    assert coarse(_render(photo, {"adjust": {"structure": 80}}, options)) > coarse(photo)


def test_bloom_glows_around_highlights_only(options) -> None:
    img = np.full((120, 160, 3), 60, np.uint8)
    img[50:70, 70:90] = 250
    out = _render(img, {"adjust": {"bloom": 80}}, options).astype(int)
    assert out[45:50, 70:90].mean() > 65  # halo next to the bright patch
    assert np.abs(out[:10, :10] - 60).max() <= 1  # far away: untouched
    assert _render(img, {"adjust": {"bloom": -80}}, options)[45:50, 70:90].mean() < 60


def test_rejects_non_rgb8_frames(options) -> None:
    with pytest.raises(EditorError, match="uint8"):
        Renderer({"adjust": {"exposure": 10}}, options)(np.zeros((4, 4, 3), np.float32))


def test_input_is_never_modified(photo, options) -> None:
    before = photo.copy()
    _render(photo, {"adjust": {"exposure": 50, "sharpen": 50, "bloom": 50}}, options)
    assert np.array_equal(photo, before)


def test_options_from_settings_use_the_data_dir(settings) -> None:
    opts = RenderOptions.from_settings(settings)
    assert opts.lut_size == 33 and Path(opts.looks_dir).is_relative_to(settings.data_path)


def test_public_api_renders_like_the_renderer(photo, options) -> None:
    from editor import render_image

    edit = {"adjust": {"contrast": 20}}
    assert np.array_equal(render_image(photo, edit, options), Renderer(edit, options)(photo))


def test_cli_registration_stays_light() -> None:
    import subprocess
    import sys

    code = "import sys, editor.cli; print(sorted(m for m in ('cv2', 'av', 'PyOpenColorIO', 'PIL') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _spatial_oracle(img: np.ndarray, sharpen: float, structure: float, bloom: float) -> np.ndarray:
    """The spatial ops written plainly (fresh arrays, one mixed uint8+int16 add, screen as
    a + g·(255 − a)/255): the optimised ``apply_spatial`` must match it bit for bit."""
    import cv2

    from editor import spatial as sp

    def down(p: np.ndarray) -> np.ndarray:
        return cv2.resize(p, (max(1, p.shape[1] // 4), max(1, p.shape[0] // 4)), interpolation=cv2.INTER_AREA)

    def up(p: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return cv2.resize(p, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)

    out, short = img, min(img.shape[:2])
    if sharpen or structure:
        y = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        detail = np.zeros(y.shape, np.int16)
        if sharpen:
            blur = cv2.GaussianBlur(y, (0, 0), max(0.5, sp.SHARPEN_SIGMA_1080 * short / 1080))
            k = sp.SHARPEN_AMOUNT * sharpen if sharpen > 0 else sharpen
            detail = cv2.addWeighted(y, k, blur, -k, 0, dtype=cv2.CV_16S)
        if structure:
            base = up(cv2.GaussianBlur(down(y), (0, 0), max(0.5, sp.STRUCTURE_SIGMA * short / 4)), y.shape)
            d = cv2.multiply(cv2.subtract(y, base, dtype=cv2.CV_16S), cv2.LUT(y, sp._MIDTONE_WEIGHT),
                             scale=sp.STRUCTURE_AMOUNT * structure / 255, dtype=cv2.CV_16S)
            detail = cv2.add(detail, d)
        out = cv2.add(img, cv2.merge([detail, detail, detail]), dtype=cv2.CV_8U)
    if bloom:
        small = down(out)
        mask = cv2.LUT(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), sp._SMOOTH_MASK)
        bright = cv2.multiply(small, cv2.merge([mask, mask, mask]), scale=sp.BLOOM_STRENGTH * abs(bloom) / 255)
        glow = up(cv2.GaussianBlur(bright, (0, 0), max(0.5, sp.BLOOM_SIGMA * short / 4)), out.shape)
        if bloom > 0:
            out = cv2.add(out, cv2.multiply(cv2.bitwise_not(out), glow, scale=1 / 255))
        else:
            out = cv2.subtract(out, cv2.multiply(out, glow, scale=1 / 255))
    return out


_SPATIAL_AMOUNTS = [(0.3, 0.25, 0.2), (1, 1, 1), (-1, -1, -1), (0.5, 0, 0), (0, 0.7, 0), (0, 0, 0.6),
                    (0, 0, -0.6), (-0.4, 0.8, 0), (0.8, -0.6, 0.9)]


@pytest.mark.parametrize("size", [(1080, 1920), (257, 331), (9, 7)])
def test_spatial_matches_the_plain_formulation_bit_exactly(photo, size) -> None:
    import cv2

    from editor.spatial import apply_spatial

    img = cv2.resize(photo, size[::-1], interpolation=cv2.INTER_CUBIC) if size[0] > 200 else \
        np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    for amounts in _SPATIAL_AMOUNTS:
        expected = _spatial_oracle(img, *amounts)
        for threads in (1, 2, 3):  # row strips in parallel: the same bits
            assert np.array_equal(apply_spatial(img, *amounts, threads=threads), expected), (amounts, threads)
            inplace = img.copy()  # out=img (how the renderer finishes its LUT output)
            assert apply_spatial(inplace, *amounts, out=inplace, threads=threads) is inplace
            assert np.array_equal(inplace, expected), (amounts, threads)


def test_spatial_scratch_buffers_are_per_thread(photo) -> None:
    """Concurrent calls on frames of different sizes (each thread reuses its own scratch)
    give the same frames as sequential calls."""
    from concurrent.futures import ThreadPoolExecutor

    from editor.spatial import apply_spatial

    frames = [photo, photo[:200, :150].copy(), np.ascontiguousarray(photo[::-1]), photo[:97, :255].copy()] * 3
    expected = [apply_spatial(f, 0.6, 0.5, 0.4) for f in frames]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda f: apply_spatial(f, 0.6, 0.5, 0.4, threads=2), frames))
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))
