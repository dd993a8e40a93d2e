"""Where downloaded and prepared data live, and how downloads are verified."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from crossl.errors import CrosslError


def crossl_home() -> Path:
    """The cache root: ``$CROSSL_HOME`` or ``~/.cache/crossl``."""
    return Path(os.environ.get("CROSSL_HOME", Path.home() / ".cache" / "crossl")).expanduser()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    """Raise if ``path`` does not hash to ``expected``."""
    actual = sha256_of(path)
    if actual != expected:
        raise CrosslError(
            f"{path} has SHA-256 {actual[:12]}..., expected {expected[:12]}...: the file is corrupt or "
            f"truncated; delete it and run `crossl data fetch` again"
        )
