"""`crossl data download` against a loopback HTTP server laid out like the publishers: checksums,
resuming an interrupted file, a corrupt file, no network, and nested zips."""

from __future__ import annotations

import hashlib
import http.server
import io
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossl.data import download as dl
from crossl.errors import CrosslError


class Publisher(http.server.ThreadingHTTPServer):
    """Serves ``files`` (URL path -> bytes) with ``Range`` support; ``cut`` (path -> n) makes the first
    request of that path stop after n bytes, as a dropped connection does."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.ranges: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(http.server.BaseHTTPRequestHandler):
    server: Publisher

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if "Range" in self.headers:
            self.server.ranges.append((self.path, self.headers["Range"]))
            start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        cut = self.server.cut.pop(self.path, None)
        self.wfile.write(payload if cut is None else payload[:cut])
        if cut is not None:
            self.close_connection = True


@pytest.fixture()
def publisher(monkeypatch: pytest.MonkeyPatch) -> Iterator[Publisher]:
    server = Publisher()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(dl.MIRROR_ENV, server.url)
    yield server
    server.shutdown()
    server.server_close()


SLEEP = "/files/sleep-edfx/1.0.0/"


def serve_sleep(publisher: Publisher, names: dict[str, bytes], wrong: str | None = None) -> None:
    lines = []
    for name, body in names.items():
        publisher.files[SLEEP + "sleep-cassette/" + name] = body
        digest = hashlib.sha256(b"other" if name == wrong else body).hexdigest()
        lines.append(f"{digest} sleep-cassette/{name}")
    lines.append(f"{'0' * 64} sleep-telemetry/ST7011J0-PSG.edf")  # another part of the dataset: not fetched
    publisher.files[SLEEP + "SHA256SUMS.txt"] = ("\n".join(lines) + "\n").encode()


FILES = {"SC4001E0-PSG.edf": b"psg 1 " * 5000, "SC4001EC-Hypnogram.edf": b"hyp 1",
         "SC4991E0-PSG.edf": b"psg 99", "SC4991EC-Hypnogram.edf": b"hyp 99"}


def test_sleepedf_downloads_the_presets_subjects_verified_against_the_published_checksums(
        publisher: Publisher, tmp_path: Path) -> None:
    serve_sleep(publisher, FILES)
    logged: list[str] = []
    raw = dl.download("sleepedf20", tmp_path / "raw", log=logged.append)
    assert raw is not None
    # subject 99 is not in Sleep-EDF-20 (subjects 0-19), the telemetry file not in the cassette part
    assert sorted(p.name for p in raw.iterdir()) == ["SC4001E0-PSG.edf", "SC4001EC-Hypnogram.edf"]
    assert (raw / "SC4001E0-PSG.edf").read_bytes() == FILES["SC4001E0-PSG.edf"]
    assert any("files of 1 of sleepedf20's 20 subjects" in line for line in logged)


def test_an_interrupted_file_continues_where_it_stopped(publisher: Publisher, tmp_path: Path) -> None:
    serve_sleep(publisher, FILES)
    path = SLEEP + "sleep-cassette/SC4001E0-PSG.edf"
    publisher.cut[path] = 10_000
    with pytest.raises(CrosslError, match="bytes so far are kept and the next run continues"):
        dl.download("sleepedf20", tmp_path / "raw", log=lambda _: None)
    part = tmp_path / "raw" / "SC4001E0-PSG.edf.part"
    assert part.stat().st_size == 10_000 and not (tmp_path / "raw" / "SC4001E0-PSG.edf").exists()
    dl.download("sleepedf20", tmp_path / "raw", log=lambda _: None)
    assert (path, "bytes=10000-") in publisher.ranges
    assert (tmp_path / "raw" / "SC4001E0-PSG.edf").read_bytes() == FILES["SC4001E0-PSG.edf"]
    assert not part.exists()


def test_a_file_that_does_not_match_its_checksum_is_refused_and_not_kept(publisher: Publisher, tmp_path: Path) -> None:
    serve_sleep(publisher, FILES, wrong="SC4001EC-Hypnogram.edf")
    with pytest.raises(CrosslError, match="arrived with another SHA-256 than published"):
        dl.download("sleepedf20", tmp_path / "raw", log=lambda _: None)
    assert not list((tmp_path / "raw").glob("SC4001EC-Hypnogram.edf*"))


def test_without_a_network_the_error_names_the_host_and_the_manual_route(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(dl.MIRROR_ENV, "http://127.0.0.1:9")  # the discard port: nothing listens
    result = subprocess.run([sys.executable, "-m", "crossl.cli", "data", "download", "sleepedf20", "--to",
                             str(tmp_path / "raw")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("crossl: error: cannot download http://127.0.0.1:9/files/sleep-edfx/1.0.0/SHA256SUMS.txt")
    assert "crossl data prepare sleepedf20 --raw DIR" in line


def nested_pamap2() -> bytes:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("PAMAP2_Dataset/Protocol/subject101.dat", "1.0 0 100 " + "NaN " * 51 + "\n")
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("PAMAP2_Dataset.zip", inner.getvalue())
    return outer.getvalue()


def test_pamap2_is_unpacked_to_the_folder_prepare_reads_and_its_first_checksum_is_kept(
        publisher: Publisher, tmp_path: Path) -> None:
    body = nested_pamap2()
    publisher.files["/static/public/231/pamap2+physical+activity+monitoring.zip"] = body
    raw = dl.download("pamap2", tmp_path / "raw", log=lambda _: None)
    assert raw is not None and (raw / "Protocol" / "subject101.dat").is_file()
    recorded = (tmp_path / "raw" / "pamap2.zip.sha256").read_text().strip()
    assert recorded == hashlib.sha256(body).hexdigest()
    (tmp_path / "raw" / "pamap2.zip").write_bytes(body[:-10])  # a later, damaged copy is caught
    with pytest.raises(CrosslError, match="does not match its published SHA-256"):
        dl.download("pamap2", tmp_path / "raw", log=lambda _: None)


def test_wesad_says_where_to_get_it_and_downloads_nothing(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "crossl.cli", "data", "download", "wesad", "--to",
                             str(tmp_path / "raw")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "crossl data prepare wesad --raw" in result.stderr and not (tmp_path / "raw").exists()


def test_an_unknown_download_is_refused() -> None:
    with pytest.raises(CrosslError, match="no download for 'hapt12'"):
        dl.download("hapt12")
