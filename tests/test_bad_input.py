"""Bad input and faults, as a careful or adversarial user makes them: one line, nothing lost.

Every command-line case runs ``crossl.cli.main`` in this process and checks: the exit status, that
the last line of stderr is ``crossl: error: ...`` naming the problem, that no exception escapes
(nothing a user would see as a traceback), and that no output is left half-written (no final run
directory, no temporary files; a run directory only where the run had started and can resume).
Every Python API case checks the exception type and its one-line message.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import small_model_configs, synthetic_arrays
from test_cli import prepared_dataset

from crossl.api import CroSSL
from crossl.cli import main
from crossl.config import EvalConfig, PretrainConfig
from crossl.data.container import DatasetMeta, WindowSet
from crossl.data.splits import split_by_subjects
from crossl.errors import CrosslError
from crossl.method_options import CroSSLOptions

TOY = ["--epochs", "1", "--batch-size", "16", "--fractions", "0.5,1", "--seeds", "0", "--no-progress"]


@dataclass
class Workspace:
    root: Path
    toy: Path  # a prepared dataset directory (acc 40x3 + ecg 80x1, 3 classes, 6 subjects)
    pretrained: Path  # a finished `crossl pretrain` run on it (random-init: instant)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("shared")
    toy = prepared_dataset(root / "toy")
    mp = pytest.MonkeyPatch()
    mp.setenv("CROSSL_HOME", str(root / "home"))
    mp.chdir(root)
    try:
        assert main(["pretrain", "--data", str(toy), "--method", "random-init", "--out", str(root / "pre"), *TOY]) == 0
    finally:
        mp.undo()
    return toy, root / "pre"


@pytest.fixture()
def ws(shared: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("CROSSL_HOME", str(tmp_path / "home"))
    # set (empty: no fault) so that the cases' own settings are undone after each test
    monkeypatch.setenv("CROSSL_INJECT_FAULT", "")
    monkeypatch.chdir(tmp_path)
    pretrained = tmp_path / "pre"
    shutil.copytree(shared[1], pretrained)
    return Workspace(tmp_path, shared[0], pretrained)


def toy_variant(ws: Workspace, name: str, labels: np.ndarray | None = None, one_modality: bool = False) -> Path:
    """A prepared dataset like the toy one, with other labels or only its ecg modality."""
    arrays = synthetic_arrays(n=60)
    if one_modality:
        arrays = {"ecg": arrays["ecg"]}
    meta = DatasetMeta(name=name, modality_names=tuple(arrays),
                       channel_names={"acc": ("x", "y", "z"), "ecg": ("ecg",)} if not one_modality else {"ecg": ("ecg",)},
                       sampling_rates={m: 50.0 for m in arrays}, class_names=("a", "b", "c"),
                       extra={"default_split": {"train": [0, 1, 2, 3], "val": [4], "test": [5]}})
    labels = np.arange(60) % 3 if labels is None else labels
    WindowSet(arrays, np.ones((60, len(arrays)), bool), labels, np.arange(60) % 6, meta).save(ws.root / name)
    return ws.root / name


def write(ws: Workspace, relative: str, text: str) -> Path:
    path = ws.root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def damage_model(ws: Workspace, change: Callable[[Path], None]) -> list[str]:
    change(ws.pretrained / "model")
    return ["evaluate", "--data", str(ws.toy), "--pretrained", str(ws.pretrained), "--out", "run", *TOY]


def edit_model_json(key_path: list[str], value: object) -> Callable[[Path], None]:
    def edit(model_dir: Path) -> None:
        header = json.loads((model_dir / "model.json").read_text())
        target = header
        for key in key_path[:-1]:
            target = target[key]
        if value is DELETE:
            del target[key_path[-1]]
        else:
            target[key_path[-1]] = value
        (model_dir / "model.json").write_text(json.dumps(header))
    return edit


DELETE = object()


def truncate(name: str, keep: int) -> Callable[[Path], None]:
    def cut(model_dir: Path) -> None:
        data = (model_dir / name).read_bytes()
        (model_dir / name).write_bytes(data[:keep])
    return cut


def drop_statistics(model_dir: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = {k: v for k, v in load_file(str(model_dir / "model.safetensors")).items() if not k.startswith("stats.")}
    save_file(tensors, str(model_dir / "model.safetensors"))


def pre(ws: Workspace, *args: str) -> list[str]:
    return ["pretrain", "--data", str(ws.toy), "--out", "run", *TOY, *args]


def config_file(ws: Workspace, text: str) -> list[str]:
    return pre(ws, "--config", str(write(ws, "c.yaml", text)))


# (id, argv from the workspace, what the last line must say); the run is "run" under the workspace.
CLI_CASES: list[tuple[str, Callable[[Workspace], list[str]], str]] = [
    # flags
    ("negative-epochs", lambda ws: pre(ws, "--epochs", "-3"), "pretrain.epochs: must be zero or positive"),
    ("zero-lr", lambda ws: pre(ws, "--lr", "0"), "pretrain.lr: must be positive"),
    ("batch-one", lambda ws: pre(ws, "--batch-size", "1"), "pretrain.batch_size: must be at least 2"),
    ("fraction-zero", lambda ws: pre(ws, "--fractions", "0,1"), "fractions must lie in (0, 1]"),
    ("fraction-above-one", lambda ws: pre(ws, "--fractions", "1.5"), "fractions must lie in (0, 1]"),
    ("fraction-twice", lambda ws: pre(ws, "--fractions", "0.5,0.5"), "lists a value twice"),
    ("negative-seed", lambda ws: pre(ws, "--seeds", "-1"), "seeds must be zero or positive"),
    ("no-protocols", lambda ws: pre(ws, "--protocols", ","), "evaluation.protocols: must not be empty"),
    ("unknown-protocol", lambda ws: ["evaluate", "--data", str(ws.toy), "--protocols", "knn", "--out", "run"],
     "evaluation.protocols: unknown value(s) ['knn']"),
    ("unknown-method", lambda ws: pre(ws, "--method", "byol"), "unknown method 'byol'"),
    ("option-of-other-method", lambda ws: pre(ws, "--method", "simclr", "--mask-ratio", "0.3"),
     "'mask_ratio' is not an option of method simclr (it is an option of crossl, mae)"),
    ("option-without-value", lambda ws: pre(ws, "-o", "temperature"), "write an option as KEY=VALUE"),
    ("unknown-option", lambda ws: pre(ws, "-o", "colour=red"), "'colour' is not an option of method crossl (no method has it)"),
    ("negative-temperature", lambda ws: pre(ws, "--method", "cocoa", "-o", "temperature=-1"),
     "cocoa.temperature: must be positive"),
    ("unknown-augmentation", lambda ws: pre(ws, "--method", "vicreg-aug", "--augmentations", "flip"),
     "vicreg-aug.augmentations: unknown value(s) ['flip']"),
    ("mae-one-patch", lambda ws: pre(ws, "--method", "mae", "-o", "patches=1"), "mae.patches: must be at least 2"),
    ("unknown-head-input", lambda ws: pre(ws, "--head-input", "encoder"), "evaluation.head_input: unknown value 'encoder'"),
    ("untrained-aggregator", lambda ws: pre(ws, "--method", "mae", "--head-input", "aggregator"),
     "mae does not train the aggregator"),
    ("unknown-aggregator", lambda ws: pre(ws, "--aggregator", "gru"), "model.aggregator: unknown value 'gru'"),
    ("unknown-strategy", lambda ws: pre(ws, "--strategy", "fsdp"), "trainer.strategy: unknown value 'fsdp'"),
    ("zero-nodes", lambda ws: pre(ws, "--num-nodes", "0"), "trainer.num_nodes: number of nodes must be a positive integer"),
    ("mask-ratio-one", lambda ws: pre(ws, "--mask-ratio", "1.0"), "masking ratio 1.0 must lie in [0, 1)"),
    ("unknown-mask-strategy", lambda ws: pre(ws, "--mask-strategy", "temporal"), "crossl.mask_strategy: unknown value"),
    ("no-training-budget", lambda ws: pre(ws, "--steps", "0", "--eval-epochs", "0"), "steps and epochs are both 0"),
    ("zero-max-steps", lambda ws: pre(ws, "--max-steps", "0"), "pretrain.max_steps: must be -1"),
    # config files
    ("config-missing", lambda ws: pre(ws, "--config", "absent.yaml"), "cannot read config absent.yaml"),
    ("config-malformed", lambda ws: config_file(ws, "model: [unclosed\n"), "cannot read config"),
    ("config-epochs-word", lambda ws: config_file(ws, "pretrain:\n  epochs: two\n"),
     "pretrain.epochs must be an integer, got the string 'two'"),
    ("config-lr-string", lambda ws: config_file(ws, "pretrain:\n  lr: 1e-3\n"), "pretrain.lr must be a number"),
    ("config-batch-string", lambda ws: config_file(ws, "pretrain:\n  batch_size: '64'\n"), "pretrain.batch_size must be an integer"),
    ("config-fractions-string", lambda ws: config_file(ws, "evaluation:\n  label_fractions: '0.1,1'\n"),
     "evaluation.label_fractions must be a list of a number"),
    ("config-seeds-string", lambda ws: config_file(ws, "evaluation:\n  seeds: '0'\n"), "evaluation.seeds must be a list of an integer"),
    ("config-seeds-empty", lambda ws: config_file(ws, "evaluation:\n  seeds: []\n"), "evaluation.seeds: must not be empty"),
    ("config-unknown-key", lambda ws: config_file(ws, "epochs: 3\n"), "unknown config key(s) ['epochs']"),
    ("config-other-method-section", lambda ws: config_file(ws, "method: simclr\ncrossl:\n  mask_ratio: 0.2\n"),
     "belong to other methods than 'simclr'"),
    ("config-a-list", lambda ws: config_file(ws, "- 1\n- 2\n"), "config must be a mapping"),
    ("config-unknown-method", lambda ws: config_file(ws, "method: byol\n"), "unknown method 'byol'"),
    ("config-bool-as-int", lambda ws: config_file(ws, "model:\n  mask_token: 1\n"), "model.mask_token must be true or false"),
    ("config-nan-lr", lambda ws: config_file(ws, "pretrain:\n  lr: .nan\n"), "pretrain.lr must be a number"),
    # data
    ("unknown-dataset", lambda ws: ["pretrain", "--data", "wisdm", "--out", "run"], "unknown dataset 'wisdm'"),
    ("data-dir-without-meta", lambda ws: ["pretrain", "--data", str(write(ws, "plain/readme.txt", "hi").parent),
                                          "--out", "run"], "is not a crossl dataset directory"),
    ("data-one-class", lambda ws: ["pretrain", "--data", str(toy_variant(ws, "one", labels=np.zeros(60, int))),
                                   "--out", "run", *TOY], "has labels of 1 class(es)"),
    ("data-no-labels", lambda ws: ["pretrain", "--data", str(toy_variant(ws, "none", labels=np.full(60, -1))),
                                   "--out", "run", *TOY], "has labels of 0 class(es)"),
    ("data-truncated-array", lambda ws: ["pretrain", "--data", str(_truncated_toy(ws)), "--out", "run", *TOY],
     "is unreadable or corrupt"),
    ("data-meta-a-list", lambda ws: ["pretrain", "--data", str(_meta_as_list(ws)), "--out", "run"],
     "is unreadable or corrupt"),
    ("cocoa-one-modality", lambda ws: ["pretrain", "--data", str(toy_variant(ws, "ecg", one_modality=True)),
                                       "--method", "cocoa", "--out", "run", *TOY], "cocoa needs at least 2 modalities"),
    ("rotation-one-channel", lambda ws: ["pretrain", "--data", str(toy_variant(ws, "ecg", one_modality=True)),
                                         "--method", "simclr", "--augmentations", "rotation", "--out", "run", *TOY],
     "rotation"),
    # runs and files
    ("out-below-a-file", lambda ws: ["pretrain", "--data", str(ws.toy), "--out", str(write(ws, "f.txt", "x") / "run"),
                                     *TOY], "f.txt"),
    ("home-is-a-file", lambda ws: _home_is_a_file(ws), "home"),
    ("read-only-out", lambda ws: _fault(ws, "EROFS:config.yaml"), "Read-only file system (injected"),
    ("disk-full-at-split", lambda ws: _fault(ws, "ENOSPC:split.json"), "No space left on device (injected"),
    ("existing-out", lambda ws: ["evaluate", "--data", str(ws.toy), "--out", str(ws.pretrained), *TOY], "already exists"),
    ("interrupted-without-resume", lambda ws: _interrupted(ws, resume=False), "pass --resume to continue it"),
    ("resume-with-other-config", lambda ws: _interrupted(ws, resume=True), "was started with another config"),
    ("resume-nothing", lambda ws: ["pretrain", "--data", str(ws.toy), "--resume", *TOY], "no interrupted pretrain run"),
    # pretrained runs and model files
    ("pretrained-missing", lambda ws: ["evaluate", "--data", str(ws.toy), "--pretrained", "nowhere", "--out", "run"],
     "cannot read nowhere/model/model.json"),
    ("pretrained-other-method", lambda ws: ["evaluate", "--data", str(ws.toy), "--pretrained", str(ws.pretrained),
                                            "--method", "simclr", "--out", "run"], "does not match the pretrained run"),
    ("model-json-a-list", lambda ws: damage_model(ws, lambda d: (d / "model.json").write_text("[1, 2]")),
     "is not a crossl model file"),
    ("model-json-empty", lambda ws: damage_model(ws, lambda d: (d / "model.json").write_text("")), "cannot read"),
    ("model-json-no-model", lambda ws: damage_model(ws, edit_model_json(["model"], DELETE)), "lacks a valid 'model' section"),
    ("model-json-string-number", lambda ws: damage_model(ws, edit_model_json(["model", "dim"], "96")),
     "model.dim must be an integer"),
    ("model-json-old-version", lambda ws: damage_model(ws, edit_model_json(["version"], 1)), "format version 1"),
    ("model-json-unknown-method", lambda ws: damage_model(ws, edit_model_json(["method"], "byol")), "unknown method 'byol'"),
    ("weights-empty", lambda ws: damage_model(ws, truncate("model.safetensors", 0)), "cannot read the weights"),
    ("weights-truncated", lambda ws: damage_model(ws, truncate("model.safetensors", 200)), "cannot read the weights"),
    ("weights-without-statistics", lambda ws: damage_model(ws, drop_statistics), "lacks the normalisation statistics"),
    ("split-damaged", lambda ws: damage_model(ws, lambda d: (d.parent / "split.json").write_text("{")),
     "cannot read the split"),
    ("split-of-other-data", lambda ws: ["evaluate", "--data", str(toy_variant(ws, "other", labels=(np.arange(60) + 1) % 3)),
                                        "--pretrained", str(ws.pretrained), "--out", "run", *TOY],
     "was made on toy (60 windows"),
]


def _truncated_toy(ws: Workspace) -> Path:
    data = ws.root / "cut"
    shutil.copytree(ws.toy, data)
    blob = (data / "modality_0.npy").read_bytes()
    (data / "modality_0.npy").write_bytes(blob[: len(blob) // 2])
    return data


def _meta_as_list(ws: Workspace) -> Path:
    data = ws.root / "listmeta"
    shutil.copytree(ws.toy, data)
    (data / "meta.json").write_text("[]")
    return data


def _home_is_a_file(ws: Workspace) -> list[str]:
    home = write(ws, "home", "not a directory")
    import os

    os.environ["CROSSL_HOME"] = str(home)  # restored by the monkeypatch of the fixture
    return ["data", "fetch", "hapt"]


def _fault(ws: Workspace, spec: str) -> list[str]:
    import os

    os.environ["CROSSL_INJECT_FAULT"] = spec
    return pre(ws)


def _interrupted(ws: Workspace, resume: bool) -> list[str]:
    write(ws, "run.incomplete/config.yaml", "dataset: toy\npretrain:\n  epochs: 7\n")
    return pre(ws, *(["--resume"] if resume else []))


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.tmp"))


@pytest.mark.parametrize(("argv_of", "expected"), [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_command_line_case_is_one_line_and_leaves_nothing_half_written(
        ws: Workspace, argv_of: Callable[[Workspace], list[str]], expected: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    argv = argv_of(ws)
    started_before = (ws.root / "run.incomplete").exists()
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        status = int(exc.code or 0)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2, err
    assert err and err[-1].startswith("crossl: error: "), err
    assert expected in err[-1], err[-1]
    assert "Traceback" not in "\n".join(err)
    assert not (ws.root / "run").exists()
    assert leftovers(ws.root) == []
    faults = bool(__import__("os").environ.get("CROSSL_INJECT_FAULT"))
    if not started_before and not faults:
        assert not (ws.root / "run.incomplete").exists(), "an error before any work left a run directory"


def test_there_are_enough_cases() -> None:
    assert len(CLI_CASES) + len(API_CASES) >= 60


# ------------------------------------------------------------------ Python API
def fitted_model() -> CroSSL:
    return CroSSL(*small_model_configs(epochs=0)).fit(synthetic_arrays(n=24))


def labeled_windows() -> WindowSet:
    return WindowSet.from_arrays(synthetic_arrays(n=48), labels=np.arange(48) % 3, subjects=np.arange(48) % 6)


API_CASES: list[tuple[str, Callable[[], object], str]] = [
    ("array-4d", lambda: WindowSet.from_arrays({"acc": np.zeros((4, 8, 3, 1))}), "expected (N, time, channels)"),
    ("zero-time-steps", lambda: WindowSet.from_arrays({"acc": np.zeros((4, 0, 3))}), "at least one time step"),
    ("zero-channels", lambda: WindowSet.from_arrays({"acc": np.zeros((4, 8, 0))}), "at least one time step and one channel"),
    ("string-array", lambda: WindowSet.from_arrays({"acc": np.full((4, 8, 3), "x")}), "pass real numbers"),
    ("fractional-labels", lambda: WindowSet.from_arrays({"acc": np.zeros((4, 8, 3))}, labels=[0, 1.5, 1, 0]),
     "labels must be whole numbers; found 1.5"),
    ("nan-labels", lambda: WindowSet.from_arrays({"acc": np.zeros((2, 8, 3))}, labels=[0, np.nan]), "whole numbers"),
    ("string-subjects", lambda: WindowSet.from_arrays({"acc": np.zeros((2, 8, 3))}, subjects=["a", "b"]),
     "subjects have dtype"),
    ("window-counts-differ", lambda: WindowSet.from_arrays({"a": np.zeros((4, 8, 3)), "b": np.zeros((5, 8, 1))}),
     "different numbers of windows"),
    ("presence-shape", lambda: WindowSet.from_arrays({"a": np.zeros((4, 8, 3))}, presence=np.ones((4, 2), bool)),
     "presence mask must be bool of shape"),
    ("no-modalities", lambda: WindowSet.from_arrays({}), "no modalities given"),
    ("epochs-string", lambda: CroSSL(pretrain=PretrainConfig(epochs="two")),  # type: ignore[arg-type]
     "pretrain.epochs must be an integer"),
    ("lr-negative", lambda: CroSSL(pretrain=PretrainConfig(lr=-1.0)), "pretrain.lr: must be positive"),
    ("options-of-other-method", lambda: CroSSL(method="simclr", options=CroSSLOptions()),
     "options of method 'simclr' must be a SimCLROptions"),
    ("encode-before-fit", lambda: CroSSL().encode(synthetic_arrays(n=2)), "not fitted"),
    ("encode-unknown-modality", lambda: fitted_model().encode({"eeg": np.zeros((2, 40, 1), np.float32)}),
     "unknown modality"),
    ("encode-wrong-channels", lambda: fitted_model().encode({"acc": np.zeros((2, 40, 2), np.float32)}),
     "channels; the model expects 3"),
    ("load-empty-directory", lambda: CroSSL.load(Path("/nonexistent-crossl-model")), "cannot read"),
    ("evaluate-empty-seeds", lambda: fitted_model().evaluate(labeled_windows(), split_by_subjects(
        labeled_windows().subjects, {"train": [0, 1, 2, 3], "val": [4], "test": [5]}), EvalConfig(seeds=())),
     "evaluation.seeds: must not be empty"),
    ("fit-one-window", lambda: CroSSL(*small_model_configs()).fit(synthetic_arrays(n=1)), "at least 2 windows"),
]


@pytest.mark.parametrize(("call", "expected"), [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_python_api_case_raises_one_line_crossl_error(call: Callable[[], object], expected: str) -> None:
    with pytest.raises(CrosslError) as info:
        call()
    message = str(info.value)
    assert expected in message and "\n" not in message


# ------------------------------------------------------------------ faults that need a run
def test_full_disk_during_a_checkpoint_then_resume_finishes(ws: Workspace, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["pretrain", "--data", str(ws.toy), "--out", "run", *TOY, "--epochs", "2"]
    monkeypatch.setenv("CROSSL_INJECT_FAULT", "ENOSPC:last.ckpt")
    assert main(argv) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "last.ckpt" in last and "--resume" in last
    assert not (ws.root / "run.incomplete" / "checkpoints" / "last.ckpt").exists()  # never a truncated one
    assert leftovers(ws.root) == []
    monkeypatch.setenv("CROSSL_INJECT_FAULT", "")
    assert main([*argv, "--resume"]) == 0
    assert (ws.root / "run" / "results.json").is_file()


def test_resume_from_a_damaged_last_checkpoint_falls_back_to_best(ws: Workspace,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    straight = ["pretrain", "--data", str(ws.toy), *TOY, "--epochs", "2"]
    assert main([*straight, "--out", "straight"]) == 0
    assert main([*straight, "--out", "broken"]) == 0
    broken = ws.root / "broken"
    broken.rename(ws.root / "broken.incomplete")  # as if the run had been interrupted after pretraining
    (ws.root / "broken.incomplete" / "model").rename(ws.root / "broken.incomplete" / "model-away")
    (ws.root / "broken.incomplete" / "checkpoints" / "last.ckpt").write_bytes(b"garbage")
    assert main([*straight, "--out", "broken", "--resume"]) == 0
    assert "last.ckpt (UnpicklingError) in" in capsys.readouterr().err
    a = json.loads((ws.root / "straight" / "results.json").read_text())
    b = json.loads((ws.root / "broken" / "results.json").read_text())
    assert [r["macro_f1"] for r in a] == [r["macro_f1"] for r in b]


def test_files_are_readable_as_the_umask_allows(ws: Workspace) -> None:
    import os
    import stat

    previous = os.umask(0o022)
    try:
        assert main(["evaluate", "--data", str(ws.toy), "--protocols", "supervised", "--out", "run", *TOY,
                     "--steps", "2", "--eval-epochs", "0"]) == 0
    finally:
        os.umask(previous)
    for name in ("results.json", "config.yaml", "report.md", "split.json"):
        assert stat.S_IMODE((ws.root / "run" / name).stat().st_mode) == 0o644, name


def test_ctrl_c_during_pretraining_exits_130_with_the_resume_hint(ws: Workspace) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    argv = [sys.executable, "-m", "crossl.cli", "pretrain", "--data", str(ws.toy), "--out", "run", *TOY,
            "--epochs", "500"]
    env = {**os.environ, "CROSSL_HOME": str(ws.root / "home")}
    process = subprocess.Popen(argv, cwd=ws.root, env=env, stderr=subprocess.PIPE, text=True)
    logs = ws.root / "run.incomplete" / "logs"
    deadline = time.monotonic() + 120
    while not logs.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)  # inside the fit
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == ("crossl: interrupted; finished parts are kept: rerun with --resume "
                                            "to continue")
    assert "Traceback" not in err and (ws.root / "run.incomplete").is_dir() and not (ws.root / "run").exists()
