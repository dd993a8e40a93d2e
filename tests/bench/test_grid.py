"""Grid files: every bad value is refused with its line before anything runs; cells are shared, not repeated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny_grid import make_data, write_grid

from crossl.bench.grid import load_grid, proper_subsets
from crossl.bench.gridfile import shipped_grids
from crossl.errors import CrosslError

GOOD = """\
protocols: [linear, finetune]
label_fractions: [0.5, 1.0]
pretrain_seeds: [0, 1]
label_seeds: [0, 1]
methods:
  - crossl
  - {method: simclr, pretrain_seeds: [0]}
analyses:
  masking_ratio: {strategies: [modality, random], ratios: [0.3, 0.5], label_seeds: [0]}
  missing_modalities: {methods: [crossl, supervised], modality_dropout: [0.0, 0.5], ceiling: [crossl]}
  embedding: {method: crossl, max_windows: 30}
"""


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    return make_data(tmp_path)


def test_a_grid_compiles_to_one_cell_per_pretraining_shared_by_every_part(data: Path) -> None:
    grid = load_grid(write_grid(data.parent, GOOD))
    pretrained = [(c.method, c.pretrain_seed, c.config["crossl"]["mask_strategy"] if c.method == "crossl" else None,
                   c.config["crossl"]["mask_ratio"] if c.method == "crossl" else None, c.kept)
                  for c in grid.cells if c.method is not None]
    # crossl seeds 0 and 1 and simclr seed 0 (main), 3 more sweep points (modality 0.5 is the main
    # crossl cell), 2 ceilings (crossl trained on acc only and on ecg only)
    assert len(pretrained) == 3 + 3 + 2 == len(set(pretrained))
    main = next(c for c in grid.cells if c.method == "crossl" and c.pretrain_seed == 0 and c.kept is None
                and c.config["crossl"]["mask_ratio"] == 0.5)
    analyses = {r["analysis"] for r in main.roles}
    assert analyses == {"main", "masking_ratio", "missing_modalities", "embedding"}
    assert main.embedding == 30
    supervised = [c for c in grid.cells if c.method is None]
    assert [c.kept for c in supervised] == [None]  # the supervised ceiling was not asked for
    assert {c.kept for c in grid.cells if c.kept} == {("acc",), ("ecg",)}
    assert len({c.id for c in grid.cells}) == len(grid.cells)


def test_cell_ids_are_stable_and_change_with_what_the_cell_computes(data: Path) -> None:
    first = [c.id for c in load_grid(write_grid(data.parent, GOOD)).cells]
    assert first == [c.id for c in load_grid(write_grid(data.parent, GOOD)).cells]
    changed = [c.id for c in load_grid(write_grid(data.parent, GOOD.replace("[0.5, 1.0]", "[0.25, 1.0]"))).cells]
    assert set(first) != set(changed)


def test_proper_subsets_are_every_non_empty_proper_subset() -> None:
    assert proper_subsets(["a", "b", "c"]) == [("a",), ("b",), ("c",), ("a", "b"), ("a", "c"), ("b", "c")]
    assert proper_subsets(["a"]) == []


@pytest.mark.parametrize(("old", "new", "line", "message"), [
    ("  - crossl\n", "  - crossl\n  - {method: byol}\n", 13, "unknown method 'byol'"),
    ("protocols: [linear, finetune]", "protocols: [linear, probe]", 7, "unknown protocol 'probe'"),
    ("label_fractions: [0.5, 1.0]", "label_fractions: [0.5, 1.5]", 8, "must lie in (0, 1]"),
    ("label_seeds: [0, 1]", "label_seeds: []", 10, "must not be empty"),
    ("pretrain_seeds: [0, 1]", "pretrain_seeds: [0, -1]", 9, "zero or positive"),
    ("  - crossl\n", "  - {method: crossl, options: {mask_rate: 0.5}}\n", 12, "mask_rate"),
    ("{method: simclr, pretrain_seeds: [0]}", "{method: simclr, options: {temperature: -1}}", 13, "temperature"),
    ("ceiling: [crossl]}", "ceiling: [crossl], remove: [[acc, ecg]]}", 16, "removes every modality"),
    ("ceiling: [crossl]}", "ceiling: [crossl], remove: [[gyro]]}", 16, "remove lists modalities of the data"),
    ("ratios: [0.3, 0.5]", "ratios: [0.3, 1.0]", 15, "masking ratios must lie in (0, 1)"),
    ("embedding: {method: crossl", "embedding: {method: mae", 17, "unknown variant 'mae'"),
    ("analyses:\n", "seed: 3\nanalyses:\n", 14, "unknown key in the grid"),
    ("analyses:\n", "comparisons: [[simclr, byol]]\nanalyses:\n", 14, "'byol' is not a variant of this grid"),
    ("analyses:\n", "comparisons: [[supervised, crossl]]\nanalyses:\n", 14, "'supervised' is not the first of a pair"),
    ("analyses:\n", "comparisons: [simclr]\nanalyses:\n", 14, "must be a pair of variant names"),
])
def test_a_bad_grid_is_refused_with_its_line(data: Path, old: str, new: str, line: int, message: str) -> None:
    assert old in GOOD
    path = write_grid(data.parent, GOOD.replace(old, new))
    with pytest.raises(CrosslError) as caught:
        load_grid(path)
    text = str(caught.value)
    assert f"{path} line {line}:" in text and message in text and "\n" not in text


def test_an_unknown_dataset_is_refused_with_its_line(data: Path) -> None:
    path = data.parent / "grid.yaml"
    path.write_text("datasets: [hapt, no-such-data]\nmethods: [crossl]\n", encoding="utf-8")
    with pytest.raises(CrosslError, match=r"line 1: datasets.1: unknown dataset 'no-such-data'"):
        load_grid(path)


def test_missing_modalities_on_one_modality_data_is_refused(data: Path, tmp_path: Path) -> None:
    from crossl.data.container import WindowSet

    single = WindowSet.load(data).only_modalities(["acc"]).subset(list(range(120)))
    single.save(tmp_path / "single")
    path = tmp_path / "grid.yaml"
    path.write_text(f"datasets: [{tmp_path / 'single'}]\nmethods: [crossl]\nanalyses:\n  missing_modalities: {{}}\n",
                    encoding="utf-8")
    with pytest.raises(CrosslError, match="line 4: analyses.missing_modalities: the data has one modality"):
        load_grid(path)


def test_the_cli_refuses_a_bad_grid_in_one_line_and_writes_nothing(data: Path, tmp_path: Path) -> None:
    path = write_grid(data.parent, GOOD.replace("[0.5, 1.0]", "[0.5, 2.0]"))
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "crossl.cli", "bench", str(path), "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "line 8: label_fractions" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("name", shipped_grids())
def test_every_shipped_grid_compiles(name: str) -> None:
    grid = load_grid(name)
    assert grid.cells and grid.reference in grid.plans


def test_a_method_entry_overrides_the_grid_config_for_its_own_cells(data: Path) -> None:
    body = GOOD.replace("  - {method: simclr, pretrain_seeds: [0]}\n",
                        "  - {method: crossl, name: crossl-b32, pretrain_seeds: [0], config: {pretrain: {batch_size: 32},"
                        " evaluation: {backbone_lr_scale: 0.1}}}\n")
    grid = load_grid(write_grid(data.parent, body))
    b32 = [c for c in grid.cells if any(r.get("variant") == "crossl-b32" for r in c.roles)]
    assert [c.config["pretrain"]["batch_size"] for c in b32] == [32]
    assert b32[0].config["evaluation"]["backbone_lr_scale"] == 0.1
    assert b32[0].config["model"]["dim"] == 16  # the grid's shared settings still apply
    others = [c for c in grid.cells if c.method == "crossl" and c not in b32]
    assert {c.config["pretrain"]["batch_size"] for c in others} == {16}


def test_a_grid_trains_in_float32_unless_it_names_a_precision(data: Path) -> None:
    body = GOOD.replace("  - {method: simclr, pretrain_seeds: [0]}\n",
                        "  - {method: crossl, name: bf16, pretrain_seeds: [0], config: {trainer: {precision: bf16-mixed}}}\n")
    grid = load_grid(write_grid(data.parent, body))
    bf16 = {c.id for c in grid.cells if any(r.get("variant") == "bf16" for r in c.roles)}
    precisions = {c.id: c.config["trainer"]["precision"] for c in grid.cells}
    assert bf16 and all(precisions[i] == "bf16-mixed" for i in bf16)
    assert {p for i, p in precisions.items() if i not in bf16} == {"32-true"}


def test_a_grid_may_set_the_validation_subjects_of_its_cells(data: Path) -> None:
    body = GOOD.replace("  - crossl\n", "  - {method: crossl, config: {split: {val_subjects: [2]}}}\n")
    grid = load_grid(write_grid(data.parent, body))
    crossl = [c for c in grid.cells if c.method == "crossl"]
    assert crossl and all(c.config["split"]["val_subjects"] == [2] for c in crossl)
    others = [c for c in grid.cells if c.method != "crossl"]
    assert others and all(c.config["split"]["val_subjects"] == [] for c in others)


def test_a_seed_inside_a_config_section_is_refused(data: Path) -> None:
    body = GOOD.replace("  - crossl\n", "  - {method: crossl, config: {pretrain: {seed: 4}}}\n")
    with pytest.raises(CrosslError, match=r"line 12: methods.0.config.pretrain.seed: seeds, protocols and fractions"):
        load_grid(write_grid(data.parent, body))


def test_the_masking_sweep_may_have_settings_of_its_own(data: Path) -> None:
    body = GOOD.replace("label_seeds: [0]}", "label_seeds: [0], config: {pretrain: {epochs: 3}}}")
    grid = load_grid(write_grid(data.parent, body))
    sweep = [c for c in grid.cells if any(r["analysis"] == "masking_ratio" for r in c.roles)]
    assert len(sweep) == 4 and {c.config["pretrain"]["epochs"] for c in sweep} == {3}
    main = [c for c in grid.cells if any(r["analysis"] == "main" for r in c.roles) and c.method == "crossl"]
    assert {c.config["pretrain"]["epochs"] for c in main} == {1}


def test_a_setting_added_later_at_its_neutral_value_keeps_the_cell_id(data: Path) -> None:
    from crossl.bench.spec import NEUTRAL_DEFAULTS

    cell = next(c for c in load_grid(write_grid(data.parent, GOOD)).cells if c.method == "crossl")
    for (section, key), neutral in NEUTRAL_DEFAULTS.items():
        cell.config[section][key] = neutral  # each setting at the value that computes what it did before
    before = cell.id
    for section, key in NEUTRAL_DEFAULTS:
        cell.config[section].pop(key)  # as a config made before the setting existed
        if not cell.config[section]:
            del cell.config[section]  # a section added later: absent before
    assert cell.id == before
    cell.config["pretrain"]["lr_schedule"] = "cosine"  # any other value computes something else
    assert cell.id != before


PUBLISHED = Path(__file__).parents[2] / "docs" / "results"


def test_the_published_recipe_study_cells_are_cells_of_the_shipped_grid() -> None:
    # The study pins its starting recipe: changing the package's defaults must not orphan its cells.
    ids = {c.id for c in load_grid("hapt-recipe").cells}
    found = {p.name for p in (PUBLISHED / "hapt-recipe" / "cells").iterdir() if p.is_dir()}
    assert len(found) >= 34 and found <= ids, sorted(found - ids)


def _published_under_their_grid_name() -> list[str]:
    """Folders of docs/results named after the grid that made them; a folder under another name
    (hapt-release-recipe) is the record of an earlier run of a grid whose cells have moved on."""
    return sorted(p.parent.name for p in PUBLISHED.glob("*/grid.yaml")
                  if yaml.safe_load(p.read_text())["name"] == p.parent.name)


def test_the_published_grids_include_the_validation_studies() -> None:
    assert {"hapt-recipe", "hapt-subjectnorm-val-21-24"} <= set(_published_under_their_grid_name())


@pytest.mark.parametrize("name", _published_under_their_grid_name())
def test_a_published_grid_holds_only_cells_of_the_shipped_grid(name: str) -> None:
    # Each shipped grid pins what its published cells were computed with (kernels, input
    # standardisation, recipe): a new default must not turn them into records of nothing.
    ids = {c.id for c in load_grid(name).cells}
    found = {p.name for p in (PUBLISHED / name / "cells").iterdir() if p.is_dir()}
    assert found and found <= ids, sorted(found - ids)
