"""DDP: each process's share of a global batch and its masks, placement, and a 2-process CLI pretrain."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import small_model_configs
from test_cli import prepared_dataset

from crossl.cli import main
from crossl.config import PretrainConfig, RunConfig, TrainerConfig
from crossl.distributed import Placement, one_device, per_process_batch, placement
from crossl.errors import CrosslError
from crossl.method_options import CroSSLOptions
from crossl.methods.crossl import CroSSLMethod
from crossl.models.backbone import CrossModalBackbone
from crossl.run import RunDirectory
from crossl.training import IndexBatchSampler


def epoch_batches(world_size: int, rank: int, size: int = 40, batch_size: int = 16, epoch: int = 1,
                  drop_last: bool = True) -> list[torch.Tensor]:
    sampler = IndexBatchSampler(size, batch_size, shuffle=True, drop_last=drop_last, seed=3,
                                rank=rank, world_size=world_size)
    sampler.set_epoch(epoch)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    return batches


@pytest.mark.parametrize("world_size", [2, 4])
def test_shares_are_disjoint_and_make_up_the_one_process_batches(world_size: int) -> None:
    single = epoch_batches(1, 0)
    shares = [epoch_batches(world_size, r) for r in range(world_size)]
    assert all(len(s) == len(single) for s in shares)  # the same number of steps on every process
    for step, batch in enumerate(single):
        parts = [s[step] for s in shares]
        assert {len(p) for p in parts} == {len(batch) // world_size}
        assert torch.equal(torch.cat(parts), batch)  # disjoint, and in rank order the global batch


def test_a_short_global_batch_is_cut_to_equal_shares() -> None:
    shares = [epoch_batches(2, r, size=11, batch_size=16, drop_last=False) for r in range(2)]
    assert [len(s) for s in shares] == [1, 1]
    first, second = shares[0][0], shares[1][0]
    assert len(first) == len(second) == 5 and not set(first.tolist()) & set(second.tolist())


def test_shares_change_with_the_epoch() -> None:
    assert not torch.equal(epoch_batches(2, 0, epoch=0)[0], epoch_batches(2, 0, epoch=1)[0])


def masks_of(rank: int, world_size: int, presence: torch.Tensor, strategy: str) -> list[torch.Tensor]:
    model, _, _ = small_model_configs()
    model.modality_channels = {"acc": 3, "ecg": 1}
    module = CroSSLMethod(CrossModalBackbone(model), PretrainConfig(), CroSSLOptions(mask_strategy=strategy, mask_ratio=0.5))
    module._trainer = SimpleNamespace(world_size=world_size, global_rank=rank)  # type: ignore[assignment]
    q = torch.zeros(presence.shape[0], presence.shape[1], model.dim)
    return module.keep_masks(q, presence, torch.Generator().manual_seed(11))


@pytest.mark.parametrize("strategy", ["modality", "random", "feature"])
def test_each_process_masks_its_rows_as_one_process_would(strategy: str) -> None:
    presence = torch.rand(8, 2, generator=torch.Generator().manual_seed(0)) > 0.3
    single = masks_of(0, 1, presence, strategy)
    shares = [masks_of(r, 2, presence[r * 4:(r + 1) * 4], strategy) for r in range(2)]
    for view in range(2):
        torch.testing.assert_close(torch.cat([s[view] for s in shares]), single[view])
    assert not torch.equal(shares[0][0], shares[1][0])  # no pattern repeated on other windows


def test_batch_must_split_evenly_across_processes() -> None:
    assert per_process_batch(64, 4) == 16
    with pytest.raises(CrosslError, match="multiple of 3"):
        per_process_batch(64, 3)


def test_evaluation_runs_on_one_device() -> None:
    config = TrainerConfig(accelerator="gpu", devices="4", num_nodes=2, strategy="ddp")
    assert one_device(config) == TrainerConfig(accelerator="gpu", devices="1", num_nodes=1, strategy="auto")
    assert one_device(TrainerConfig(accelerator="gpu", devices="2,3")).devices == "2,"


def test_placement_reads_the_launchers_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = TrainerConfig(devices="2", strategy="ddp")
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert placement(config) == Placement(rank=0, world_size=2, external=False)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert placement(config).rank == 1 and placement(config).external


def test_processes_started_outside_need_an_explicit_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOCAL_RANK", "0")  # as srun or torchrun would set it
    monkeypatch.delenv("CROSSL_RUN_OUT", raising=False)
    assert main(["pretrain", "--devices", "2", "--strategy", "ddp"]) == 2
    assert "name the run with --out" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_resume_may_change_where_the_run_works_but_not_what_it_computes(tmp_path: Path) -> None:
    (tmp_path / "run.incomplete").mkdir()
    started = RunConfig(trainer=TrainerConfig(devices="4", num_nodes=2, strategy="ddp"))
    started.save(tmp_path / "run.incomplete" / "config.yaml")
    RunDirectory.open(tmp_path / "run", RunConfig(), resume=True)
    other = RunConfig()
    other.pretrain.batch_size = 32
    with pytest.raises(CrosslError, match="another config"):
        RunDirectory.open(tmp_path / "run", other, resume=True)


def logged_losses(run: Path) -> dict[str, list[float]]:
    """Per-epoch ``train/loss`` and ``val/loss`` from a run's CSV log."""
    with open(run / "logs" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {k: [float(r[k]) for r in rows if r[k]] for k in ("train/loss", "val/loss")}


def test_two_process_cli_pretrain_writes_one_run_equal_to_one_process(tmp_path: Path, crossl_home: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """``--devices 2 --strategy ddp`` on CPU (gloo), no ``--out``: Lightning re-runs the command for
    rank 1, which trains alongside rank 0, agrees on the default run name and writes nothing. Without
    dropout (the one draw that differs per process) the losses equal a one-process run's."""
    data = prepared_dataset(tmp_path / "toy")
    (tmp_path / "no_dropout.yaml").write_text("model:\n  dropout: 0.0\n")
    args = ["pretrain", "--data", str(data), "--config", "no_dropout.yaml", "--epochs", "2", "--batch-size", "16",
            "--fractions", "0.5,1", "--seeds", "0", "--no-progress", "--accelerator", "cpu",
            "--precision", "32-true"]  # bf16 (auto on some CPUs) rounds the two shards' sums apart by more
    env = {"CROSSL_HOME": str(crossl_home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    result = subprocess.run([sys.executable, "-m", "crossl.cli", *args, "--devices", "2", "--strategy", "ddp"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and not runs[0].name.endswith(".incomplete"), runs
    run = runs[0]
    assert result.stdout.strip() == str(Path("runs") / run.name)  # only rank 0 prints the run
    for name in ("checkpoints/last.ckpt", "checkpoints/best.ckpt", "model/model.safetensors", "results.json"):
        assert (run / name).is_file(), name
    assert sorted(r["label_fraction"] for r in json.loads((run / "results.json").read_text())) == [0.5, 1.0]
    assert result.stderr.count("pretraining crossl on") == 1 and result.stderr.count("[2/2] linear") == 1
    saved = RunConfig.load(run / "config.yaml").trainer
    assert (saved.devices, saved.strategy, saved.num_nodes) == ("2", "ddp", 1)

    monkeypatch.setenv("CROSSL_HOME", str(crossl_home))
    monkeypatch.chdir(tmp_path)
    assert main([*args, "--out", "one"]) == 0
    ddp, one = logged_losses(run), logged_losses(tmp_path / "one")
    assert len(ddp["train/loss"]) == 2  # both epochs, logged once
    for key in ddp:
        # float sums in another order (two shards, all-reduced; the one-process run's own thread
        # count): 1.7e-5 apart measured with one thread; a wrong shard or seed is off by far more
        assert ddp[key] == pytest.approx(one[key], rel=1e-4), key
