"""``crossl data download``: the paper's datasets from their publishers, resumable and checked.

- ``pamap2``: the UCI repository's zip (nested zips unpacked). UCI publishes no checksum: the
  SHA-256 of the first complete download is printed and kept next to the file; a later run
  verifies the kept file against it, so a truncated or altered copy is caught.
- ``sleepedf20`` / ``sleepedf78``: the sleep-cassette PSG and hypnogram files of the preset's
  subjects from PhysioNet, each verified against PhysioNet's published ``SHA256SUMS.txt``.
- ``wesad``: its publisher asks users to download it themselves; the command says where.

A download goes to ``<file>.part`` and continues from there after an interruption (an HTTP
``Range`` request); the file gets its final name only once complete and verified. Without a
network the command fails in one line and names the manual route (download the files yourself,
then ``crossl data prepare NAME --raw DIR``). ``$CROSSL_DATA_MIRROR`` replaces the publishers'
hosts with a mirror of the same layout (e.g. an institute's copy).
"""

from __future__ import annotations

import os
import re
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from crossl.data.cache import crossl_home, sha256_of
from crossl.errors import CrosslError

MIRROR_ENV = "CROSSL_DATA_MIRROR"
CHUNK = 1 << 20
TIMEOUT_S = 30

PAMAP2_URL = "https://archive.ics.uci.edu/static/public/231/pamap2+physical+activity+monitoring.zip"
PHYSIONET_SLEEP = "https://physionet.org/files/sleep-edfx/1.0.0/"
WESAD_NOTE = ("WESAD is not downloaded by crossl: its publisher hands it out from its own page (Schmidt et al., "
              "ICMI 2018; the WESAD page of the University of Siegen's ubiquitous computing group, "
              "ubicomp.eti.uni-siegen.de). Get WESAD.zip (about 2.5 GB), unpack it, then run "
              "`crossl data prepare wesad --raw DIR/WESAD` (DIR/WESAD holds S2/S2.pkl ... S17/S17.pkl)")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def mirrored(url: str) -> str:
    """``url`` on ``$CROSSL_DATA_MIRROR`` (scheme and host replaced, path kept), if it is set."""
    mirror = os.environ.get(MIRROR_ENV, "").rstrip("/")
    if not mirror:
        return url
    return mirror + urlsplit(url).path


def _offline(url: str, reason: object, manual: str) -> CrosslError:
    host = urlsplit(url).netloc
    return CrosslError(f"cannot download {url} from {host} ({reason}); check the network (or set ${MIRROR_ENV}), "
                       f"or {manual}")


def download_file(url: str, target: Path, sha256: str | None, manual: str,
                  log: Callable[[str], None] = _log) -> Path:
    """``url`` to ``target``, resuming ``<target>.part``; verified against ``sha256`` when given."""
    url = mirrored(url)
    if target.is_file():
        if sha256 is not None and sha256_of(target) != sha256:
            raise CrosslError(f"{target} does not match its published SHA-256: it is corrupt; delete it and run "
                              "`crossl data download` again")
        return target
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    start = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            resumed = start > 0 and response.status == 206
            mode = "ab" if resumed else "wb"
            if start and not resumed:
                log(f"{urlsplit(url).netloc} does not resume downloads: starting {target.name} again")
            length = response.headers.get("Content-Length")
            expected = (start if resumed else 0) + int(length) if length is not None else None
            with open(part, mode) as fh:
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    fh.write(chunk)
            if expected is not None and part.stat().st_size < expected:  # the connection dropped early
                raise OSError(f"the connection closed after {part.stat().st_size:,} of {expected:,} bytes")
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # the part is already whole
            pass
        else:
            raise _offline(url, f"HTTP {exc.code}", manual) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        kept = f"; the {part.stat().st_size:,} bytes so far are kept and the next run continues" if part.is_file() else ""
        raise CrosslError(f"{_offline(url, reason, manual)}{kept}") from exc
    if sha256 is not None and sha256_of(part) != sha256:
        part.unlink()
        raise CrosslError(f"{url} arrived with another SHA-256 than published ({target.name}); the partial file was "
                          "removed: run `crossl data download` again")
    os.replace(part, target)
    log(f"downloaded {target.name} ({target.stat().st_size:,} bytes)")
    return target


@dataclass(frozen=True)
class Listed:
    path: str
    sha256: str


def parse_sha256sums(text: str) -> list[Listed]:
    """PhysioNet's ``SHA256SUMS.txt``: ``<hex digest> <path>`` per line."""
    out = []
    for line in text.splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2 and re.fullmatch(r"[0-9a-fA-F]{64}", parts[0]):
            out.append(Listed(parts[1].lstrip("*"), parts[0].lower()))
    return out


def sleepedf_files(listing: list[Listed], subjects: set[int] | None) -> list[Listed]:
    """The sleep-cassette PSG and hypnogram files of ``subjects`` (all when None) in the listing."""
    pattern = re.compile(r"^sleep-cassette/SC4(\d{2})\d..-(PSG|Hypnogram)\.edf$", re.IGNORECASE)
    chosen = []
    for item in listing:
        match = pattern.match(item.path)
        if match and (subjects is None or int(match.group(1)) in subjects):
            chosen.append(item)
    return chosen


def download_sleepedf(preset: str, target: Path, log: Callable[[str], None] = _log) -> Path:
    from crossl.data.presets import PRESETS

    subjects = PRESETS[preset].options.get("subjects")
    wanted = None if subjects is None else set(subjects)
    manual = (f"download the sleep-cassette files from {PHYSIONET_SLEEP} yourself, then run "
              f"`crossl data prepare {preset} --raw DIR`")
    sums = download_file(PHYSIONET_SLEEP + "SHA256SUMS.txt", target / "SHA256SUMS.txt.new", None, manual, log)
    listing = parse_sha256sums(sums.read_text(encoding="utf-8", errors="replace"))
    sums.unlink()
    files = sleepedf_files(listing, wanted)
    if not files:
        raise CrosslError(f"the checksum list of {PHYSIONET_SLEEP} names no sleep-cassette file of {preset}'s subjects; "
                          f"{manual}")
    found = {int(Path(f.path).name[3:5]) for f in files}
    if wanted is not None and found != wanted:
        log(f"the checksum list has files of {len(found)} of {preset}'s {len(wanted)} subjects; "
            f"missing: {sorted(wanted - found)}")
    total = len(files)
    for number, item in enumerate(files, start=1):
        log(f"[{number}/{total}] {item.path}")
        download_file(PHYSIONET_SLEEP + item.path, target / Path(item.path).name, item.sha256, manual, log)
    return target


def download_pamap2(target: Path, log: Callable[[str], None] = _log) -> Path:
    manual = f"download {PAMAP2_URL} yourself, unpack it, then run `crossl data prepare pamap2 --raw DIR`"
    archive = target / "pamap2.zip"
    recorded = archive.with_name(archive.name + ".sha256")
    known = recorded.read_text(encoding="utf-8").strip() if recorded.is_file() else None
    download_file(PAMAP2_URL, archive, known, manual, log)
    if known is None:
        digest = sha256_of(archive)
        recorded.write_text(digest + "\n", encoding="utf-8")
        log(f"pamap2.zip SHA-256 {digest} (UCI publishes none; kept in {recorded.name} to verify later runs)")
    unpack(archive, target / "unpacked")
    protocol = sorted((target / "unpacked").rglob("Protocol"))
    if not protocol:
        raise CrosslError(f"{archive} holds no Protocol/ folder; is it the PAMAP2 archive? Delete it and run again")
    return protocol[0].parent


def unpack(archive: Path, into: Path) -> None:
    """Unpack ``archive`` and every zip inside it (UCI zips nest the dataset's own zip)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                if member.startswith("/") or ".." in Path(member).parts:
                    raise CrosslError(f"{archive} holds an unsafe path '{member}'; not unpacking it")
            zf.extractall(into)
    except zipfile.BadZipFile as exc:
        raise CrosslError(f"{archive} is not a readable zip ({exc}); delete it and run `crossl data download` "
                          "again") from exc
    for inner in sorted(into.rglob("*.zip")):
        unpack(inner, inner.with_suffix(""))
        inner.unlink()


DOWNLOADS = ("pamap2", "sleepedf20", "sleepedf78", "wesad")


def download(name: str, target: Path | None = None, log: Callable[[str], None] = _log) -> Path | None:
    """Download ``name``'s raw files into ``target`` (default ``$CROSSL_HOME/raw/<name>``); returns the
    folder to pass to ``crossl data prepare --raw`` (None for WESAD, which is not downloaded)."""
    if name not in DOWNLOADS:
        raise CrosslError(f"no download for '{name}'; use one of {list(DOWNLOADS)} (HAPT: `crossl data fetch hapt`)")
    if name == "wesad":
        log(WESAD_NOTE)
        return None
    base = "sleepedf" if name.startswith("sleepedf") else name
    target = target or crossl_home() / "raw" / base
    if name == "pamap2":
        return download_pamap2(target, log)
    return download_sleepedf(name, target, log)
