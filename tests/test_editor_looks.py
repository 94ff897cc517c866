"""The filter catalogue: every look has a recipe, bakes to a valid .cube, and looks like its name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from editor.colour import linear_to_oklab, srgb_to_linear
from editor.cube import generate_look, identity_table, look_key, look_table, read_cube, sample_table, write_cube
from editor.exceptions import EditorError
from editor.looks import RECIPES
from editor.samples import sample_photo
from schemas.filters import FILTER_NAMES


def test_every_catalogue_name_has_a_recipe_with_its_description() -> None:
    assert set(RECIPES) == set(FILTER_NAMES)
    assert all(r.ops and r.description for r in RECIPES.values())


def test_cube_round_trip_and_red_fastest_order(tmp_path: Path) -> None:
    table = identity_table(5)
    write_cube(tmp_path / "id.cube", table, "identity")
    lines = [ln for ln in (tmp_path / "id.cube").read_text().splitlines() if ln[:1].isdigit()]
    assert lines[1].split() == ["0.250000", "0.000000", "0.000000"]  # red changes fastest
    assert np.allclose(read_cube(tmp_path / "id.cube"), table, atol=1e-6)
    pts = np.random.default_rng(1).random((100, 3), dtype=np.float32)
    assert np.allclose(sample_table(table, pts), pts, atol=1e-5)


def test_read_cube_honours_domain_and_rejects_truncated_files(tmp_path: Path) -> None:
    body = "\n".join(f"{r * 2} {g * 2} {b * 2}" for b in (0, 1) for g in (0, 1) for r in (0, 1))
    (tmp_path / "d.cube").write_text(f"LUT_3D_SIZE 2\nDOMAIN_MIN 0 0 0\nDOMAIN_MAX 2 2 2\n{body}\n")
    assert np.allclose(read_cube(tmp_path / "d.cube"), identity_table(2))
    (tmp_path / "t.cube").write_text("LUT_3D_SIZE 3\n0 0 0\n")
    with pytest.raises(EditorError, match="regenerate"):
        read_cube(tmp_path / "t.cube")


def test_look_files_are_generated_once_and_reused(tmp_path: Path) -> None:
    look_table.cache_clear()
    table = look_table("film_Portra", 17, tmp_path)
    path = tmp_path / look_key("film_Portra", 17)
    assert path.exists() and np.allclose(table, generate_look("film_Portra", 17), atol=1e-5)
    stamp = path.stat().st_mtime_ns
    look_table.cache_clear()
    look_table("film_Portra", 17, tmp_path)
    assert path.stat().st_mtime_ns == stamp
    assert look_key("film_Portra", 17) != look_key("film_Velvia", 17)
    assert not list(tmp_path.glob(".*.tmp"))


def test_unknown_look_is_a_clear_error() -> None:
    with pytest.raises(EditorError, match="toneflow schemas filters"):
        generate_look("not_A_Look")


@pytest.mark.parametrize("name", FILTER_NAMES)
def test_every_look_is_finite_monotone_on_grey_and_changes_the_image(name: str) -> None:
    table = generate_look(name, 17)
    assert np.isfinite(table).all() and table.min() >= 0 and table.max() <= 1
    greys = table[np.arange(17), np.arange(17), np.arange(17)] @ np.array([0.299, 0.587, 0.114])
    assert np.all(np.diff(greys) >= -1e-4), "grey ramp inverted"
    assert np.abs(table - identity_table(17)).max() > 0.03


# ---- looks look like their names: reference-free statistics (grading.md §5) --------------------

@pytest.fixture(scope="module")
def stats() -> dict[str, dict[str, float]]:
    photo = np.concatenate([sample_photo("astronaut")[::4, ::4], sample_photo("chelsea")[:128, :128]], axis=1)
    x = photo.astype(np.float32) / 255.0

    def measure(img: np.ndarray) -> dict[str, float]:
        lab = linear_to_oklab(srgb_to_linear(img))
        chroma = np.hypot(lab[..., 1], lab[..., 2])
        return {"L": float(lab[..., 0].mean()), "Lstd": float(lab[..., 0].std()), "C": float(chroma.mean()),
                "b": float(lab[..., 2].mean()), "a": float(lab[..., 1].mean()),
                "p1": float(np.percentile(lab[..., 0], 1)),
                # mean resultant length of hue, weighted by chroma: 1 = one hue everywhere (toned mono)
                "hue_unity": float(np.abs((lab[..., 1] + 1j * lab[..., 2]).sum()) / max(chroma.sum(), 1e-9))}

    out = {"original": measure(x)}
    for name in FILTER_NAMES:
        out[name] = measure(RECIPES[name](x))
    return out


def _delta(stats: dict, name: str, key: str) -> float:
    return stats[name][key] - stats["original"][key]


@pytest.mark.parametrize("name", ["mono_Classic", "mono_Noir"])
def test_mono_looks_are_grey(stats, name) -> None:
    assert stats[name]["C"] < 0.005


def test_sepia_is_brown_and_nearly_monochrome(stats) -> None:
    sepia = stats["mono_Sepia"]
    assert sepia["hue_unity"] > 0.97 > stats["original"]["hue_unity"]
    assert sepia["b"] > 0.01 and sepia["a"] > 0.0  # yellow-red, i.e. brown


@pytest.mark.parametrize("name", ["warm_GoldenHour", "warm_Desert", "vintage_70s", "autumn_Leaves"])
def test_warm_looks_shift_towards_yellow(stats, name) -> None:
    assert _delta(stats, name, "b") > 0.005


@pytest.mark.parametrize("name", ["cool_BlueHour", "cool_Nordic", "winter_Frost"])
def test_cool_looks_shift_towards_blue(stats, name) -> None:
    assert _delta(stats, name, "b") < -0.01


@pytest.mark.parametrize("name", ["film_Velvia", "vivid_Pop", "tropical_Lush"])
def test_saturated_looks_raise_chroma(stats, name) -> None:
    assert stats[name]["C"] > stats["original"]["C"] * 1.1


@pytest.mark.parametrize("name", ["cine_BleachBypass", "urban_Grit", "matte_Fade", "cool_Nordic", "dusty_Rose"])
def test_muted_looks_lower_chroma(stats, name) -> None:
    assert stats[name]["C"] < stats["original"]["C"] * 0.85


@pytest.mark.parametrize("name", ["faded_HighNoon", "matte_Fade", "vintage_Polaroid", "pastel_Dream", "film_Expired"])
def test_faded_looks_lift_the_black_floor(stats, name) -> None:
    assert _delta(stats, name, "p1") > 0.05


def test_noir_and_bleach_bypass_add_contrast_pastel_removes_it(stats) -> None:
    assert _delta(stats, "mono_Noir", "Lstd") > 0.02 and _delta(stats, "cine_BleachBypass", "Lstd") > 0.01
    assert _delta(stats, "pastel_Dream", "Lstd") < -0.03 and _delta(stats, "pastel_Dream", "L") > 0.03


def test_moody_forest_is_darker(stats) -> None:
    assert _delta(stats, "moody_Forest", "L") < -0.03
