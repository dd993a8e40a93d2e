"""The README's own-recordings example, as written: real HAPT recordings as CSV -> import -> pretrain."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from crossl.cli import main
from crossl.data.container import WindowSet
from crossl.data.datasets import load_dataset

ROOT = Path(__file__).resolve().parents[2]


def test_readme_import_example_runs_and_matches_the_built_in_windows(use_home: Path, tmp_path: Path,
                                                                     monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    subprocess.run([sys.executable, str(ROOT / "scripts" / "hapt_to_csv.py"), "--subjects", "1-6", "--out", "my_csv"],
                   check=True, capture_output=True, text=True)
    assert main(["data", "import", "my_csv", "--spec", "my_csv/spec.yaml", "--out", "my_data"]) == 0
    imported = WindowSet.load(tmp_path / "my_data")
    assert imported.shapes == {"acc": (128, 3), "gyro": (64, 3)}  # gyro kept at its own 25 Hz
    built_in = load_dataset("hapt")
    # the same windows as the built-in set for those subjects, counted per class
    same_subjects = np.isin(built_in.subjects, [1, 2, 3, 4, 5, 6])
    assert np.bincount(imported.labels).tolist() == np.bincount(built_in.labels[same_subjects]).tolist()
    assert main(["pretrain", "--data", "my_data", "--epochs", "1", "--seeds", "0", "--no-progress", "--out", "run"]) == 0
    assert (tmp_path / "run" / "results.json").is_file()
