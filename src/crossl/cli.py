"""Command line: argument parsing; the training commands are a few lines over :mod:`crossl.pipeline`,
the others (``methods``, ``data``, ``bench``) live in :mod:`crossl.commands`."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from crossl import commands
from crossl.config import METHOD_NAMES, RunConfig, demo_config, options_for
from crossl.config_fields import plain_config
from crossl.errors import CrosslError
from crossl.method_options import METHOD_OPTIONS, option_owners
from crossl.openmp import choose_wait_policy


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got '{text}'") from exc


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'") from exc


def _strings(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


# (flag, config section, field, type, help); section "options" is the method's own.
OPTIONS: list[tuple[str, str, str, Callable[[str], Any], str]] = [
    ("--epochs", "pretrain", "epochs", int, "pretraining epochs"),
    ("--max-steps", "pretrain", "max_steps", int, "stop pretraining after this many steps (-1: all epochs)"),
    ("--batch-size", "pretrain", "batch_size", int,
     "pretraining batch size: the global batch, split evenly across devices x nodes"),
    ("--lr", "pretrain", "lr", float, "pretraining learning rate"),
    ("--mask-strategy", "options", "mask_strategy", str, "crossl: modality | random | feature | none"),
    ("--mask-ratio", "options", "mask_ratio", float, "crossl: fraction of latent entries masked; mae: of input patches"),
    ("--temperature", "options", "temperature", float, "simclr, cocoa: softmax temperature"),
    ("--augmentations", "options", "augmentations", _strings,
     "simclr, vicreg-aug: comma list of jitter, scaling, rotation, permutation, time_warp, channel_dropout"),
    ("--seed", "pretrain", "seed", int, "pretraining seed"),
    ("--fold", "split", "fold", int, "leave-one-subject-out sets (e.g. pamap2-loso): the held-out subject, 0..subjects-1"),
    ("--val-subjects", "split", "val_subjects", _ints,
     "subject-wise sets: comma list of subjects to validate on instead (the set's own join train; test unchanged)"),
    ("--aggregator", "model", "aggregator", str, "mlp | attention"),
    ("--elementwise", "model", "elementwise", str,
     "native (one built C kernel for the encoders' norm/activation/dropout; the default) | eager"),
    ("--input-norm", "model", "input_norm", str,
     "train (per-channel statistics of the training windows; the default) | subject (each window by its subject's first)"),
    ("--protocols", "evaluation", "protocols", _strings, "comma list of linear, mlp, finetune, supervised"),
    ("--fractions", "evaluation", "label_fractions", _floats, "comma list of label fractions, e.g. 0.01,0.1,1"),
    ("--seeds", "evaluation", "seeds", _ints, "comma list of evaluation seeds"),
    ("--steps", "evaluation", "steps", int, "least optimiser steps of each trainable downstream run"),
    ("--eval-epochs", "evaluation", "epochs", int, "least passes over the labeled windows downstream"),
    ("--head-input", "evaluation", "head_input", str,
     "auto (what the method trains) | aggregator | concat"),
    ("--accelerator", "trainer", "accelerator", str, "Lightning accelerator (cpu, gpu, auto)"),
    ("--devices", "trainer", "devices", str, "Lightning devices per node for pretraining (e.g. 1, 2, auto)"),
    ("--num-nodes", "trainer", "num_nodes", int, "machines pretraining runs on (each with --devices)"),
    ("--strategy", "trainer", "strategy", str, "Lightning strategy for pretraining: auto | ddp"),
    ("--precision", "trainer", "precision", str,
     "auto (bf16-mixed on a CPU with bf16 instructions, else 32-true) or Lightning's: 32-true, bf16-mixed, 16-mixed"),
    ("--logger", "trainer", "logger", str, "pretraining curves also to tensorboard | mlflow | wandb (csv is always written)"),
]


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML config to start from (flags override it)")
    parser.add_argument("--method", help=f"pretraining method: {' | '.join(METHOD_NAMES)} (see `crossl methods`)")
    parser.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option of the method, e.g. -o temperature=0.2 (repeatable; `crossl methods` lists them)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in <out>.incomplete")
    parser.add_argument("--mask-token", action="store_true", default=None,
                        help="masked entries become a learned per-modality token instead of zero")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--compile", action="store_true", default=None,
                        help="compile the encoders' elementwise work with torch.compile (see docs/performance.md)")
    for flag, _, _, kind, text in OPTIONS:
        parser.add_argument(flag, type=kind, help=text)


def _set_option(config: RunConfig, key: str, value: object, source: str) -> None:
    """Set the method's option ``key``, refusing (in one line) an option of another method."""
    if key not in plain_config(config.options):
        owners = option_owners(key)
        known = sorted(plain_config(config.options)) or ["none"]
        belongs = f"it is an option of {', '.join(owners)}" if owners else "no method has it"
        raise CrosslError(f"{source}: '{key}' is not an option of method {config.method} ({belongs}); "
                          f"{config.method}'s options: {', '.join(known)}")
    values = plain_config(config.options)
    values[key] = list(value) if isinstance(value, tuple) else value
    config.options = options_for(config.method, values)


def _parse_option(text: str) -> tuple[str, object]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise CrosslError(f"-o {text}: write an option as KEY=VALUE, e.g. -o temperature=0.2")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str) and "," in value:
        # a comma list: each item read as YAML too, so that 64,64 is two numbers and jitter,scaling two names
        value = tuple(_yaml_item(v.strip()) for v in value.split(",") if v.strip())
    return key.strip(), value


def _yaml_item(text: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _config_from(args: argparse.Namespace, base: RunConfig) -> RunConfig:
    config = RunConfig.load(args.config) if args.config else base
    if args.method is not None:
        if args.method not in METHOD_OPTIONS:
            raise CrosslError(f"unknown method '{args.method}'; use one of {list(METHOD_NAMES)} (`crossl methods`)")
        config.set_method(args.method)
    for flag, section, field, _, _ in OPTIONS:
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is None:
            continue
        if section == "options":
            _set_option(config, field, value, flag)
        else:
            setattr(getattr(config, section), field, value)
    for text in args.option:
        key, value = _parse_option(text)
        _set_option(config, key, value, f"-o {text}")
    if args.mask_token:
        config.model.mask_token = True
    if args.no_progress:
        config.trainer.progress = False
    if args.compile:
        config.trainer.compile = True
    if getattr(args, "data", None):
        config.dataset = args.data
    return config


def _default_out(prefix: str) -> Path:
    return Path("runs") / f"{prefix}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _latest_incomplete(prefix: str) -> Path | None:
    found = sorted(Path("runs").glob(f"{prefix}-*.incomplete"))
    return found[-1].with_name(found[-1].name.removesuffix(".incomplete")) if found else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crossl", description="Cross-modal self-supervised learning for multimodal time series")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="HAPT: pretrain CroSSL, compare with supervised at 1/10/100%% labels")
    demo.add_argument("--out", type=Path, help="output directory (default runs/demo-<time>)")
    demo.add_argument("--quick", action="store_true", help="smoke run: 2 epochs, 20 steps, 1 seed")
    _add_run_options(demo)

    pre = sub.add_parser("pretrain", help="pretrain CroSSL on a dataset's training split")
    pre.add_argument("--data", default="hapt", help="built-in dataset name or prepared dataset directory")
    pre.add_argument("--out", type=Path, help="output directory (default runs/pretrain-<time>)")
    _add_run_options(pre)

    ev = sub.add_parser("evaluate", help="label efficiency of a pretrained run against supervised training")
    ev.add_argument("--data", default="hapt", help="built-in dataset name or prepared dataset directory")
    ev.add_argument("--pretrained", type=Path, help="a `crossl pretrain` output directory (omit: supervised only)")
    ev.add_argument("--out", type=Path, help="output directory (default runs/evaluate-<time>)")
    _add_run_options(ev)

    sub.add_parser("methods", help="list the pretraining methods and their options")

    bench = sub.add_parser("bench", help="run a benchmark grid (methods x protocols x fractions x seeds) and its report")
    bench.add_argument("grid", nargs="?", help="a grid YAML file, or the name of a shipped grid (`--grids` lists them)")
    bench.add_argument("--out", type=Path, help="grid directory (default runs/bench-<grid name>); rerun to resume")
    bench.add_argument("--jobs", type=int, default=1, help="cells run at once, each in its own process (default 1)")
    bench.add_argument("--threads", type=int, help="compute threads per cell (default: cores / jobs)")
    bench.add_argument("--retry-failed", action="store_true", help="run the cells that failed before again")
    what = bench.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true", help="print the cells (number, status, id, what it computes)")
    what.add_argument("--cell", help="compute only cell K, its number or id in --list (one task of a cluster job array)")
    what.add_argument("--report", action="store_true", help="collect the finished cells and write the report only")
    what.add_argument("--grids", action="store_true", help="list the grids shipped with crossl")

    data = sub.add_parser("data", help="fetch or describe datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    prepare = data_sub.add_parser("prepare", help="prepare a preset (pamap2, wesad, sleepedf20, ...) from its raw files")
    prepare.add_argument("name", help="preset name (`crossl data presets` lists them)")
    prepare.add_argument("--raw", type=Path, required=True, help="folder of the downloaded raw files")
    prepare.add_argument("--strict", action="store_true", help="stop at the first unreadable recording instead of skipping it")
    data_sub.add_parser("presets", help="list the dataset presets")
    imp = data_sub.add_parser("import", help="your own recordings (a folder of CSV files + a YAML spec), or the "
                                             "authors' release's preprocessed files, as a prepared dataset")
    imp.add_argument("folder", type=Path, help="the folder of CSV files (or of the release's .npy/.npz files)")
    source = imp.add_mutually_exclusive_group(required=True)
    source.add_argument("--spec", type=Path, help="YAML import spec (README: 'Your own recordings')")
    source.add_argument("--release", choices=("sleepedf", "wesad", "pamap2"),
                        help="the release's layout: sleep/*.npz, wesad/x_*.npy or pamap2/X_*.npy")
    imp.add_argument("--release-split", action="store_true",
                     help="with --release: keep the release's split (wesad: each subject's train/test files; pamap2: "
                          "leave-one-subject-out, --fold K) instead of a subject-wise one")
    imp.add_argument("--out", type=Path, help="where to write the prepared dataset (default $CROSSL_HOME/datasets/NAME)")
    imp.add_argument("--strict", action="store_true", help="stop at the first unreadable file instead of skipping it")
    down = data_sub.add_parser("download", help="download a preset's raw files (pamap2, sleepedf20, sleepedf78; "
                                                "wesad: where to get it), resumable and checked")
    down.add_argument("name", help="pamap2 | sleepedf20 | sleepedf78 | wesad")
    down.add_argument("--to", type=Path, help="folder for the raw files (default $CROSSL_HOME/raw/<dataset>)")
    fetch = data_sub.add_parser("fetch", help="download and prepare a built-in dataset")
    fetch.add_argument("name", nargs="?", default="hapt")
    info = data_sub.add_parser("info", help="describe a built-in dataset or a prepared directory")
    info.add_argument("name", nargs="?", default="hapt")
    return parser


#: Set while a command runs. Lightning's ddp launcher starts the other processes of a fit by
#: re-running this command line; they read the output directory from here instead of naming their
#: own (a default name holds the time, which differs between processes).
OUT_ENV = "CROSSL_RUN_OUT"


@contextmanager
def _shared_out(out: Path) -> Iterator[Path]:
    previous = os.environ.get(OUT_ENV)
    os.environ[OUT_ENV] = str(out)
    try:
        yield out
    finally:
        if previous is None:
            os.environ.pop(OUT_ENV, None)
        else:
            os.environ[OUT_ENV] = previous


def _out(args: argparse.Namespace, prefix: str, config: RunConfig) -> Path:
    if args.out is not None:
        return args.out
    if os.environ.get(OUT_ENV):
        return Path(os.environ[OUT_ENV])
    config.validate()
    from crossl.distributed import placement

    place = placement(config.trainer)
    if place.world_size > 1 and (place.external or config.trainer.num_nodes > 1):
        raise CrosslError("name the run with --out: processes started by srun or torchrun, or on several nodes, "
                          "cannot agree on a default name")
    if args.resume:
        latest = _latest_incomplete(prefix)
        if latest is None:
            raise CrosslError(f"no interrupted {prefix} run under runs/; pass --out to name the run to resume")
        return latest
    return _default_out(prefix)




def run(argv: Sequence[str] | None = None) -> Path | None:
    args = build_parser().parse_args(argv)
    if args.command == "methods":
        commands.print_methods()
        return None
    if args.command == "bench":
        return commands.run_bench(args)
    if args.command in ("demo", "pretrain", "evaluate"):
        # Check every value before torch and Lightning are imported: a wrong flag fails at once.
        base = RunConfig()
        if args.command == "demo":
            base = demo_config(args.quick)
        config = _config_from(args, base)
        config.validate()
        # torch and Lightning come in here, for the commands that train; `data` commands never load them
        from crossl import pipeline

    if args.command == "demo":
        with _shared_out(_out(args, "demo-quick" if args.quick else "demo", config)) as out:
            return pipeline.run_demo(out, args.quick, args.resume, config)
    if args.command == "pretrain":
        with _shared_out(_out(args, "pretrain", config)) as out:
            return pipeline.run_pretrain(args.data, out, config, args.resume)
    if args.command == "evaluate":
        with _shared_out(_out(args, "evaluate", config)) as out:
            return pipeline.run_evaluate(args.pretrained, args.data, out, config, args.resume, method=args.method)
    commands.run_data(args)
    return None


class Interrupted(BaseException):
    """Ctrl-C, raised as our own exception: Lightning turns a KeyboardInterrupt inside a fit into
    ``sys.exit(1)``, and the user would never see the hint nor the conventional status 130."""


def _interrupt(signum: int, frame: object) -> None:
    raise Interrupted


def main(argv: Sequence[str] | None = None) -> int:
    previous = signal.signal(signal.SIGINT, _interrupt)
    try:
        choose_wait_policy()  # before anything imports torch: OpenMP reads it once, at start
        out = run(argv)
    except CrosslError as exc:
        print(f"crossl: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader of our output went away (`crossl bench G --list | head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        from crossl.io import describe_os_error

        print(f"crossl: error: {describe_os_error(exc)}", file=sys.stderr)
        return 2
    except (Interrupted, KeyboardInterrupt):
        words = list(sys.argv[1:] if argv is None else argv)
        again = "rerun the same command" if words[:1] == ["bench"] else "rerun with --resume"
        print(f"crossl: interrupted; finished parts are kept: {again} to continue", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
    if out is not None:
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
