"""Write real HAPT recordings as CSV files plus an import spec: the README's own-recordings example.

Each recording becomes ``subject{NN}_rec{K}.csv`` with a time column in seconds, the accelerometer
at its 50 Hz, the gyroscope kept at every second sample (25 Hz: two rates in one file, empty cells
between gyroscope samples) and the activity name. ``spec.yaml`` beside them tells
``crossl data import`` how to read them.

    python scripts/hapt_to_csv.py --subjects 1-6 --out my_csv
    crossl data import my_csv --spec my_csv/spec.yaml --out my_data
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from crossl.data.datasets import hapt
from crossl.io import write_text_atomic

SPEC = """\
name: hapt-csv
files: "*.csv"
subject: {from: filename, pattern: "subject(\\\\d+)"}
time: {column: t}
modalities:
  acc: {columns: [acc_x, acc_y, acc_z], rate: 50}
  gyro: {columns: [gyro_x, gyro_y, gyro_z], rate: 25}
labels:
  column: activity
  rate: 50
  classes: {walking: 0, walking_upstairs: 1, walking_downstairs: 2, sitting: 3, standing: 4, lying: 5}
window: {seconds: 2.56, stride: 1.28, label_rule: pure}
split: {train: [1, 2, 3, 4], val: [5], test: [6]}
"""


def subjects_from(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def recording_csv(recording: hapt.Recording) -> str:
    """One recording as CSV text: t, acc (every row), gyro (every second row), activity name."""
    t = np.arange(len(recording.labels)) / hapt.SAMPLING_RATE_HZ
    names = np.array(["", *hapt.ACTIVITY_NAMES])[np.clip(recording.labels, 0, None)]
    lines = ["t,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,activity"]
    for i in range(len(t)):
        acc = ",".join(f"{v:.6f}" for v in recording.signal[i, :3])
        gyro = ",".join(f"{v:.6f}" for v in recording.signal[i, 3:]) if i % 2 == 0 else ",,"
        lines.append(f"{t[i]:.2f},{acc},{gyro},{names[i]}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", default="1-6", help="a subject or a range, e.g. 1-6 (HAPT has 1-30)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the CSV files and spec.yaml into")
    args = parser.parse_args()
    wanted = set(subjects_from(args.subjects))
    counts: dict[int, int] = {}
    for recording in hapt.read_recordings(hapt.fetch(quiet=True)):
        if recording.subject in wanted:
            counts[recording.subject] = counts.get(recording.subject, 0) + 1
            path = args.out / f"subject{recording.subject:02d}_rec{counts[recording.subject]}.csv"
            write_text_atomic(path, recording_csv(recording))
    write_text_atomic(args.out / "spec.yaml", SPEC)
    print(f"{sum(counts.values())} recordings of subjects {sorted(counts)} in {args.out}")


if __name__ == "__main__":
    main()
