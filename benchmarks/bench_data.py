"""Measure the data pipeline on a large text file: tokenizing speed, peak memory, cache opening.

The script writes a text file of ``--size-mb`` megabytes by repeating the training split of
the built-in ``stdlib`` corpus (real Python source), then runs ``prepare_data`` on it as a
``corpus: text`` file with the default 5 % validation and 5 % test held out by position.
Each phase runs in a fresh subprocess, so its peak resident set size (``ru_maxrss``) is its
own:

- ``prepare``: first call on an empty cache: content hash, vocabulary scan (char) or BPE
  training, then tokenizing and writing all three splits.
- ``open``: second call in a new process: the cache is opened without re-tokenizing.

Tokenizing speed is the source bytes of all splits divided by the time spent in
``pack_segments`` (reading, decoding, encoding and writing), from the cache metadata.
Targets for the char tokenizer: peak RSS under 2 GB, at least 20 MB/s, open under 1 s.

Writes ``benchmarks/results/data_<tokenizer>_<size>mb.json`` and prints a Markdown table row.

Usage::

    python benchmarks/bench_data.py                     # 1 GB, char tokenizer
    python benchmarks/bench_data.py --size-mb 100 --tokenizer bpe --vocab-size 4096
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
TARGETS = {"peak_rss_mb": 2000.0, "tokenize_mb_per_s": 20.0, "open_seconds": 1.0}

logger = logging.getLogger("bench_data")


def main() -> None:
    arguments = parse_arguments()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if arguments.phase:
        run_phase(arguments)
        return
    work_dir = Path(arguments.work_dir or tempfile.mkdtemp(prefix="bench_data_"))
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        result = run_benchmark(arguments, work_dir)
    finally:
        if not arguments.keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    output = Path(arguments.output or RESULTS_DIR / f"data_{arguments.tokenizer}_{arguments.size_mb}mb.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %s", output)
    print(table_row(result))


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the generated text file in MB (10^6 bytes)")
    parser.add_argument("--tokenizer", default="char", choices=["char", "bpe"], help="tokenizer to train and apply")
    parser.add_argument("--vocab-size", type=int, default=4096, help="BPE vocabulary size")
    parser.add_argument("--seq-len", type=int, default=1024, help="block length in tokens")
    parser.add_argument("--work-dir", help="folder for the text file and the cache (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder afterwards")
    parser.add_argument("--output", help="result JSON path (default: benchmarks/results/data_<tokenizer>_<size>mb.json)")
    parser.add_argument("--phase", choices=["prepare", "open"], help=argparse.SUPPRESS)
    parser.add_argument("--text-file", help=argparse.SUPPRESS)
    return parser.parse_args()


def run_benchmark(arguments: argparse.Namespace, work_dir: Path) -> dict:
    text_file = work_dir / "corpus.txt"
    started = time.perf_counter()
    written = write_text_file(text_file, arguments.size_mb * 10**6, work_dir / "stdlib-cache")
    generate_seconds = time.perf_counter() - started
    logger.info("wrote %.0f MB of text in %.1f s", written / 1e6, generate_seconds)

    phases = {}
    for phase in ("prepare", "open"):
        phases[phase] = run_subprocess(arguments, work_dir, text_file, phase)
        logger.info("%s: %s", phase, json.dumps(phases[phase]))
    prepare, opened = phases["prepare"], phases["open"]
    result = {
        "benchmark": "data pipeline on one large text file",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine_info(),
        "text_bytes": written,
        "tokenizer": arguments.tokenizer,
        "seq_len": arguments.seq_len,
        "generate_seconds": round(generate_seconds, 2),
        "prepare": prepare,
        "open": opened,
        "targets": TARGETS,
    }
    if arguments.tokenizer == "char":
        result["meets_targets"] = {
            "peak_rss_mb": prepare["peak_rss_mb"] < TARGETS["peak_rss_mb"],
            "tokenize_mb_per_s": prepare["tokenize_mb_per_s"] >= TARGETS["tokenize_mb_per_s"],
            "open_seconds": opened["prepare_data_seconds"] < TARGETS["open_seconds"],
        }
    return result


def write_text_file(path: Path, size: int, cache_dir: Path) -> int:
    """Write ``size`` bytes by repeating the stdlib training split; return the bytes written."""
    from sedd.data.corpora import build_corpus

    corpus = build_corpus({"corpus": "stdlib", "cache_dir": str(cache_dir)})
    source = "\n".join(corpus.splits["train"].documents()).encode("utf-8")
    written = 0
    with open(path, "wb") as file:
        while written < size:
            chunk = source[: size - written]
            file.write(chunk)
            written += len(chunk)
    return written


def run_subprocess(arguments: argparse.Namespace, work_dir: Path, text_file: Path, phase: str) -> dict:
    command = [
        sys.executable, __file__, "--phase", phase, "--work-dir", str(work_dir), "--text-file", str(text_file),
        "--tokenizer", arguments.tokenizer, "--vocab-size", str(arguments.vocab_size),
        "--seq-len", str(arguments.seq_len),
    ]
    completed = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO_ROOT)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run_phase(arguments: argparse.Namespace) -> None:
    """Run one ``prepare_data`` call and print its measurements as one JSON line."""
    started = time.perf_counter()
    from sedd.data import prepare_data

    import_seconds = time.perf_counter() - started
    settings = {
        "corpus": "text",
        "train_files": arguments.text_file,
        "tokenizer": arguments.tokenizer,
        "vocab_size": arguments.vocab_size,
        "seq_len": arguments.seq_len,
        "cache_dir": str(Path(arguments.work_dir) / "cache"),
    }
    started = time.perf_counter()
    bundle = prepare_data(settings, progress=False)
    prepare_seconds = time.perf_counter() - started
    measurements = {
        "import_seconds": round(import_seconds, 2),
        "prepare_data_seconds": round(prepare_seconds, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "train_blocks": len(bundle.train),
        "vocab_size": bundle.tokenizer.vocab_size,
    }
    if arguments.phase == "prepare":
        measurements.update(tokenize_measurements(bundle, prepare_seconds))
    print(json.dumps(measurements))


def tokenize_measurements(bundle, prepare_seconds: float) -> dict:
    """Sum the per-split counts and timings that the cache metadata files record."""
    metas = [
        json.loads(Path(info["token_file"]).with_suffix(".json").read_text(encoding="utf-8"))
        for info in bundle.fingerprint["splits"].values()
    ]
    source_bytes = sum(meta["source_bytes"] for meta in metas)
    tokenize_seconds = sum(meta["tokenize_seconds"] for meta in metas)
    return {
        "source_mb": round(source_bytes / 1e6, 1),
        "tokens": sum(meta["num_tokens"] for meta in metas),
        "tokenize_seconds": round(tokenize_seconds, 2),
        "tokenize_mb_per_s": round(source_bytes / 1e6 / max(tokenize_seconds, 1e-9), 1),
        "end_to_end_mb_per_s": round(source_bytes / 1e6 / prepare_seconds, 1),
    }


def machine_info() -> dict:
    import numpy

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
    }


def table_row(result: dict) -> str:
    prepare, opened = result["prepare"], result["open"]
    return (
        f"| {result['tokenizer']} | {result['text_bytes'] / 1e6:.0f} MB | {prepare['tokenize_mb_per_s']} MB/s | "
        f"{prepare['end_to_end_mb_per_s']} MB/s | {prepare['peak_rss_mb']:.0f} MB | "
        f"{opened['prepare_data_seconds']} s | {opened['peak_rss_mb']:.0f} MB |"
    )


if __name__ == "__main__":
    main()
