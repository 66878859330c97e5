"""What verifying Parquet page checksums and fingerprinting the inputs cost a streamed fit.

``python -m benchmarks.checksums [--reps N]`` reads the 10M-row Parquet folder of the
``parquet_10m`` problem (written with page checksums; generated on first use and cached)
the way one pass of a streamed fit reads it, the model's columns in 1M-row batches,
alternately with and without page checksum verification, and times the fingerprint
(listing, sizes, mtimes and Parquet footers) a fit takes at each pass. Prints the medians
and the overhead of one pass, and writes them as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from . import problems

COLUMNS = ["y", "x1", "x2", "x3", "a", "b"]


def read_pass(folder: Path, verify: bool, batch_size: int = 1_000_000) -> float:
    """Seconds to read and decode the model's columns once (one pass of a streamed fit)."""
    import pyarrow.dataset as ds

    dataset = ds.dataset(str(folder), format="parquet")
    options = ds.ParquetFragmentScanOptions(page_checksum_verification=verify)
    start = time.perf_counter()
    rows = 0
    for batch in dataset.to_batches(
        columns=COLUMNS, batch_size=batch_size, fragment_scan_options=options
    ):
        rows += batch.num_rows
    if rows == 0:
        raise RuntimeError(f"{folder} holds no rows")
    return time.perf_counter() - start


def fingerprint_seconds(folder: Path) -> float:
    """Seconds to fingerprint the folder as a streamed fit does at each pass."""
    from sparselme.streaming.sources import ParquetSource

    source = ParquetSource.from_path(folder, 1_000_000)
    start = time.perf_counter()
    source.fingerprint()
    return time.perf_counter() - start


def measure(reps: int) -> dict:
    folder = problems.get("parquet_10m").make_data()
    read_pass(folder, True)  # the files in the page cache for both
    times: dict[str, list[float]] = {"verified": [], "unverified": [], "fingerprint": []}
    for _ in range(reps):
        times["verified"].append(read_pass(folder, True))
        times["unverified"].append(read_pass(folder, False))
        times["fingerprint"].append(fingerprint_seconds(folder))
    med = {k: statistics.median(v) for k, v in times.items()}
    extra = med["verified"] - med["unverified"]
    print(
        f"one pass over 10M rows: verified {med['verified']:.2f} s, unverified "
        f"{med['unverified']:.2f} s, checksums add {extra:.2f} s "
        f"({100 * extra / med['unverified']:.1f}% of the read); fingerprint "
        f"{1e3 * med['fingerprint']:.1f} ms per pass (medians of {reps})",
        flush=True,
    )
    return {"times": times, "medians": med}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.checksums", description=__doc__)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", type=Path, help="write the times here (JSON)")
    args = ap.parse_args(argv)
    result = measure(args.reps)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
