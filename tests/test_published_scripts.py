"""Everything that publishes a number still starts: every script and benchmark answers --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYTHON_FILES = sorted([*ROOT.glob("scripts/*.py"), *ROOT.glob("benchmarks/*.py")])
SHELL_FILES = sorted(ROOT.glob("scripts/*.sh"))


def test_there_are_scripts_to_check() -> None:
    assert len(PYTHON_FILES) >= 3 and SHELL_FILES


@pytest.mark.parametrize("path", PYTHON_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_file_imports_and_answers_help(path: Path) -> None:
    result = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower()


@pytest.mark.parametrize("path", SHELL_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shell_script_parses(path: Path) -> None:
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_method_step_benchmark_runs_through_the_package(tmp_path: Path) -> None:
    """The methods mode builds each method as training does: a change to a method's module shows here."""
    out = tmp_path / "records.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "pretrain_speed.py"), "--methods", "crossl,simclr", "--shapes", "hapt",
         "--batch", "8", "--precision", "32", "--repeats", "1", "--warmup", "0", "--threads", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    records = json.loads(out.read_text())
    assert [r["method"] for r in records] == ["crossl", "simclr"]
    assert all(r["windows_per_s"] > 0 for r in records)


def test_pretrain_benchmark_times_the_native_kernel_beside_eager(tmp_path: Path) -> None:
    """``--impl crossl-native`` runs the package's native elementwise kernel in the same process as eager."""
    out = tmp_path / "records.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "pretrain_speed.py"), "--impl", "crossl,crossl-native",
         "--modes", "pretrain", "--shapes", "hapt", "--batch", "8", "--precision", "32", "--repeats", "1",
         "--warmup", "0", "--threads", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    records = json.loads(out.read_text())
    assert [r["implementation"] for r in records] == ["crossl", "crossl-native"]
    assert all(r["windows_per_s"] > 0 for r in records)


def test_hash_dropout_benchmark_checks_compiled_against_eager_decisions() -> None:
    """The rejected hash dropout's compiled keep decisions equal the eager ones bit for bit (the script exits 1 if not)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "hash_dropout.py"), "--check-only", "--shape", "3,50,24",
         "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "compiled == eager bit for bit" in result.stdout


def test_oversubscription_benchmark_measures_each_policy_and_load_in_its_own_process(tmp_path: Path) -> None:
    out = tmp_path / "records.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "oversubscription.py"), "--shape", "hapt", "--batch", "4",
         "--threads", "1", "--load", "0,1", "--competitor", "busy", "--policies", "default,passive", "--rounds", "1",
         "--repeats", "1", "--warmup", "0", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    records = json.loads(out.read_text())
    assert sorted((r["policy"], r["load"]) for r in records) == [("default", 0), ("default", 1), ("passive", 0),
                                                                 ("passive", 1)]
    assert all(r["windows_per_s"] > 0 for r in records)


def test_convolution_pieces_benchmark_runs_under_bf16_autocast(tmp_path: Path) -> None:
    """``conv_layers.py --precision bf16-mixed`` times every layer's three pieces and records the precision."""
    out = tmp_path / "pieces.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "conv_layers.py"), "--shape", "hapt", "--batch", "4",
         "--threads", "1", "--repeats", "1", "--warmup", "0", "--precision", "bf16-mixed", "--json", str(out)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    payload = json.loads(out.read_text())
    assert payload["precision"] == "bf16-mixed"
    assert sorted({(p["layer"], p["piece"]) for p in payload["pieces"]}) == sorted(
        (layer, piece) for layer in (1, 2, 3) for piece in ("forward", "grad input", "grad weight"))
    assert all(p["median_ms"] > 0 for p in payload["pieces"] if p["piece"] == "forward")


def test_pair_grids_gives_the_mean_paired_difference_of_one_variant(tmp_path: Path) -> None:
    header = "cell,variants,method,pretrain_seed,kept,protocol,label_fraction,seed,missing,macro_f1\n"
    for name, scores in (("a", [0.90, 0.80, 0.70]), ("b", [0.85, 0.70, 0.70])):
        (tmp_path / name).mkdir()
        rows = [f'c,"[""crossl""]",crossl,{p},,linear,0.01,0,[],{score}\n' for p, score in enumerate(scores)]
        rows.append('s,"[""supervised""]",,,,supervised,0.01,0,[],0.5\n')  # another variant: not paired
        (tmp_path / name / "results.csv").write_text(header + "".join(rows))
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "pair_grids.py"), str(tmp_path / "a"),
                             str(tmp_path / "b"), "--variant", "crossl"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "| crossl | linear | 1% | 3 | +0.050 [" in result.stdout
    assert "| 2 / 0 / 1 |" in result.stdout
