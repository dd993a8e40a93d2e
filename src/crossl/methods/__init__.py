"""Every pretraining method behind one registry; all share the backbone and the evaluation.

Adding a method: one module here with a :class:`~crossl.methods.base.PretrainMethod` subclass
(its objective, its heads), its options dataclass in :mod:`crossl.config` (``METHOD_OPTIONS`` and
the ``MethodName`` literal), and one line in ``METHODS`` below. ``tests/methods/test_every_method.py``
then fits, saves, loads, resumes and evaluates it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crossl.config import METHOD_NAMES, PretrainConfig, options_for
from crossl.errors import CrosslError
from crossl.methods.base import PretrainMethod
from crossl.methods.cocoa import CocoaMethod
from crossl.methods.crossl import CroSSLMethod
from crossl.methods.mae import MAEMethod
from crossl.methods.random_init import RandomInitMethod
from crossl.methods.simclr import SimCLRMethod
from crossl.methods.vicreg_aug import VICRegAugMethod
from crossl.models.backbone import CrossModalBackbone

METHODS: dict[str, type[PretrainMethod]] = {
    cls.name: cls
    for cls in (CroSSLMethod, RandomInitMethod, SimCLRMethod, VICRegAugMethod, CocoaMethod, MAEMethod)
}


def method_class(name: str) -> type[PretrainMethod]:
    if name not in METHODS:
        raise CrosslError(f"unknown method '{name}'; use one of {list(METHOD_NAMES)} (`crossl methods` lists them)")
    return METHODS[name]


def check_method_data(name: str, options: Any, modality_channels: Mapping[str, int]) -> None:
    """Refuse, in one line, a method that cannot run on these modalities (before any output)."""
    method_class(name).check_data(options if options is not None else options_for(name), modality_channels)


def build_method(name: str, backbone: CrossModalBackbone, pretrain: PretrainConfig, options: Any) -> PretrainMethod:
    return method_class(name)(backbone, pretrain, options)


def resolve_head_input(head_input: str, method: str | None) -> str:
    """The features a head reads: ``auto`` is what ``method`` trains; an untrained aggregator is refused."""
    trains_aggregator = method is None or method_class(method).trains_aggregator
    if head_input == "auto":
        return "aggregator" if trains_aggregator else "concat"
    if head_input == "aggregator" and not trains_aggregator:
        raise CrosslError(f"{method} does not train the aggregator, so its output is random: "
                          "use --head-input concat (or auto)")
    return head_input


def method_lines() -> list[str]:
    """One line per method: ``name  summary``."""
    width = max(len(n) for n in METHODS)
    return [f"{name:<{width}}  {cls.summary}" for name, cls in METHODS.items()]


__all__ = ["METHODS", "PretrainMethod", "build_method", "check_method_data", "method_class", "method_lines",
           "resolve_head_input"]
