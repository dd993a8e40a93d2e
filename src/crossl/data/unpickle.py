"""Unpickling of downloaded data files without running code they name.

A pickle can call any importable function while it loads (``os.system`` included), so pickles
that come from outside (WESAD's ``S{k}.pkl``, HAPT's mirror) are read by
:class:`RestrictedUnpickler`, which resolves only an explicit allow-list of globals: the ones
NumPy needs to rebuild arrays, dtypes and scalars, and a few harmless builtins. Everything else
raises :class:`pickle.UnpicklingError` when the pickle names it, before it can be called.

Python-2 pickles are read too: their ``str`` objects decode with ``encoding="latin1"`` (so the
raw bytes of a NumPy array survive unchanged), and their module names (``__builtin__``,
``copy_reg``) are mapped to Python 3's. NumPy 2 moved ``numpy.core`` to ``numpy._core``; both
spellings are accepted and resolved against the installed NumPy.
"""

from __future__ import annotations

import pickle
from typing import IO, Any

import numpy as np

#: Python 2 module names -> Python 3 module names (the part of ``fix_imports`` that we need).
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}

#: (module, name) that may be resolved, in Python 3 spelling with NumPy's pre-2.0 ``numpy.core``.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        # ndarray.__reduce__ (protocols 0-4) and the dtype in its state
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        # ndarray.__reduce_ex__ for protocol 5, and NumPy scalars (np.float64(1.0), ...)
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy.core.multiarray", "scalar"),
        # Python 3 writes bytes as _codecs.encode(str, "latin1") under protocols 0-2, b"" as bytes()
        ("_codecs", "encode"),
        ("builtins", "bytes"),
        # object.__reduce_ex__ for protocols 0-1 and plain containers
        ("copyreg", "_reconstructor"),
        ("builtins", "object"),
        ("builtins", "slice"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "bytearray"),
        ("builtins", "complex"),
    }
)


def _canonical_module(module: str) -> str:
    """The allow-list spelling of ``module``: Python 3 names, ``numpy.core`` for ``numpy._core``."""
    module = _PY2_MODULES.get(module, module)
    if module == "numpy._core" or module.startswith("numpy._core."):
        module = "numpy.core" + module[len("numpy._core") :]
    return module


def _installed_module(module: str) -> str:
    """Where a canonical module lives in this NumPy (``numpy.core`` is deprecated from 2.0)."""
    if module.startswith("numpy.core.") and hasattr(np, "_core"):
        return "numpy._core." + module[len("numpy.core.") :]
    return module


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED_GLOBALS` (subclasses may extend ``allowed``).

    Any other global (``os.system``, ``builtins.eval``, a class of some package) raises
    :class:`pickle.UnpicklingError` naming it, before anything is called.
    """

    allowed: frozenset[tuple[str, str]] = ALLOWED_GLOBALS

    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(*_checked_global(self.allowed, module, name))


def _checked_global(allowed: frozenset[tuple[str, str]], module: str, name: str) -> tuple[str, str]:
    """``(installed module, name)`` of an allowed global; anything else raises before it is resolved."""
    canonical = _canonical_module(module)
    if (canonical, name) not in allowed:
        raise pickle.UnpicklingError(f"forbidden global {module}.{name}")
    return _installed_module(canonical), name


#: Strings at least this long are not kept in a lean unpickler's memo (see :func:`lean_load`).
LARGE_STRING = 1 << 20


class BackReference(pickle.UnpicklingError):
    """The pickle refers back to a large string the lean unpickler did not keep."""


def _large(value: Any) -> bool:
    """A large string, or a tuple holding one (an array's state tuple holds its data string)."""
    if isinstance(value, (str, bytes)):
        return len(value) >= LARGE_STRING
    return isinstance(value, tuple) and any(isinstance(v, (str, bytes)) and len(v) >= LARGE_STRING for v in value)


class _LeanMemo(dict[Any, Any]):
    """A memo that keeps no large ``str``/``bytes`` (nor the state tuples that hold them): a Python-2
    pickle memoizes every string, so the decoded data of every array would stay alive until the
    whole file is loaded."""

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, _DROPPED if _large(value) else value)

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        if value is _DROPPED:
            raise BackReference("the pickle refers back to a large string")
        return value


_DROPPED = object()


class _LeanRestrictedUnpickler(pickle._Unpickler):
    """:class:`RestrictedUnpickler`'s allow-list on the pure-Python unpickler, with a lean memo."""

    allowed = ALLOWED_GLOBALS

    def __init__(self, fh: IO[bytes], encoding: str) -> None:
        super().__init__(fh, encoding=encoding)
        self.memo = _LeanMemo()

    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(*_checked_global(self.allowed, module, name))


def lean_load(fh: IO[bytes], encoding: str = "latin1") -> Any:
    """:func:`restricted_load` without keeping each large string until the end: an array's decoded
    data is freed once the array is built, so loading a file of arrays peaks near the arrays' own
    size instead of twice it. Runs the pure-Python unpickler (as fast for a few large arrays). A
    pickle that refers back to a dropped string is read again with :func:`restricted_load`."""
    start = fh.tell()
    try:
        return _LeanRestrictedUnpickler(fh, encoding).load()
    except BackReference:
        fh.seek(start)
        return restricted_load(fh, encoding)


def restricted_load(fh: IO[bytes], encoding: str = "latin1") -> Any:
    """Load one pickle from the binary file ``fh`` through :class:`RestrictedUnpickler`.

    ``encoding`` decodes Python 2 ``str`` objects; ``latin1`` (the default) maps every byte to one
    character, which is what NumPy expects when it rebuilds an array pickled by Python 2. Raises
    :class:`pickle.UnpicklingError` for a forbidden global and whatever the stream causes
    otherwise (``EOFError`` for a truncated file, ...): callers turn those into one-line errors.
    """
    return RestrictedUnpickler(fh, encoding=encoding).load()
