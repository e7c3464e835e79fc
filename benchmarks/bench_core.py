"""Time the DDiT model against a bare transformer of the same widths, for training and sampling.

For each shape the workloads run interleaved (DDiT, bare, DDiT, ...), so load from other processes
affects both models alike. The median time per iteration is reported for:

- training step: forward, backward of a stand-in loss (mean square of the output, same cost
  for both models), AdamW step;
- forward: one network evaluation under ``torch.no_grad`` in eval mode;
- sampling step: ``sedd.sampling.EulerPredictor.update`` with ``model_score_fn`` (one forward
  in eval mode, ratios ``exp(log_score)``, reverse rates and a float64 categorical draw) under the
  log-linear schedule. Without ``sedd.sampling`` the same step is assembled from ``sedd.graph``.

The bare transformer has pre-norm blocks with the same attention call
(``scaled_dot_product_attention``), MLP and output width, but no noise conditioning, no adaLN
and no rotary embeddings. On CUDA both models run under bf16 autocast.

Writes ``benchmarks/results/core_<device>.json`` and the "Core model" section of
``docs/benchmarks.md``.

Usage::

    python benchmarks/bench_core.py                      # CPU, both shapes
    python benchmarks/bench_core.py --device cuda
    python benchmarks/bench_core.py --shapes small --iterations 5 --no-docs
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sedd.graph import get_graph
from sedd.model import SEDD, ModelConfig
from sedd.noise import LogLinearNoise

try:
    from sedd.sampling import EulerPredictor, model_score_fn
except ImportError:  # sedd.sampling is optional so that this script also times older checkouts
    EulerPredictor = None

logger = logging.getLogger("bench_core")

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
DOCS_PAGE = REPO_ROOT / "docs" / "benchmarks.md"
SECTION_TITLE = "## Core model"
OVERHEAD_TARGET_PERCENT = 15.0
# A fixed time and Euler step (128 steps over [0, 1]): the timings do not depend on their values.
TIME = 0.5
STEP_SIZE = 1 / 128


@dataclass(frozen=True)
class Shape:
    """One benchmarked model size; batch and iteration counts differ between CPU and CUDA."""

    name: str
    num_tokens: int
    hidden_size: int
    n_blocks: int
    n_heads: int
    cond_dim: int
    length: int
    batch: dict[str, int]
    warmup: dict[str, int]
    iterations: dict[str, int]


SHAPES = {
    # Byte-sized vocabulary, so the output head does not dominate the small blocks.
    "small": Shape("small", 256, 128, 4, 4, 64, 128, {"cpu": 8, "cuda": 64}, {"cpu": 3, "cuda": 5}, {"cpu": 30, "cuda": 30}),
    # SEDD small of Lou, Meng and Ermon (arXiv:2310.16834): GPT-2 vocabulary, 768 wide, 12 blocks
    # of 12 heads, length 1024.
    "paper": Shape("paper", 50257, 768, 12, 12, 128, 1024, {"cpu": 1, "cuda": 16}, {"cpu": 1, "cuda": 3}, {"cpu": 5, "cuda": 20}),
}


class BareBlock(nn.Module):
    """Pre-norm transformer block with the DDiT block's attention and MLP, unconditioned."""

    def __init__(self, hidden_size: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.dropout = dropout
        self.norm1 = nn.LayerNorm(hidden_size, bias=False)
        self.attn_qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=False)
        self.attn_out = nn.Linear(hidden_size, hidden_size, bias=False)
        self.norm2 = nn.LayerNorm(hidden_size, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(hidden_size, 4 * hidden_size), nn.GELU(approximate="tanh"), nn.Linear(4 * hidden_size, hidden_size)
        )

    def forward(self, x: Tensor) -> Tensor:
        batch, length, hidden = x.shape
        qkv = self.attn_qkv(self.norm1(x)).view(batch, length, 3, self.n_heads, hidden // self.n_heads)  # (B, L, 3, N, E)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, N, L, E) each
        attended = F.scaled_dot_product_attention(q, k, v)  # (B, N, L, E)
        attended = attended.transpose(1, 2).reshape(batch, length, hidden)  # (B, L, H)
        x = x + F.dropout(self.attn_out(attended), self.dropout, self.training)
        return x + F.dropout(self.mlp(self.norm2(x)), self.dropout, self.training)


class BareTransformer(nn.Module):
    """Token embedding, pre-norm blocks, final norm and linear head; ignores sigma."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
        self.blocks = nn.ModuleList(
            BareBlock(config.hidden_size, config.n_heads, config.dropout) for _ in range(config.n_blocks)
        )
        self.norm_final = nn.LayerNorm(config.hidden_size, bias=False)
        self.head = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, indices: Tensor, sigma: Tensor) -> Tensor:
        """Map int64 ``(B, L)`` tokens to float32 ``(B, L, D)`` outputs."""
        with torch.autocast(indices.device.type, dtype=torch.bfloat16, enabled=indices.device.type == "cuda"):
            x = self.embed(indices)  # (B, L, H)
            for block in self.blocks:
                x = block(x)
            return self.head(self.norm_final(x)).float()


def training_step(model: nn.Module, optimizer: torch.optim.Optimizer, indices: Tensor, sigma: Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    model(indices, sigma).square().mean().backward()
    optimizer.step()


@torch.no_grad()
def forward_only(model: nn.Module, indices: Tensor, sigma: Tensor) -> Tensor:
    return model(indices, sigma)


def make_sampling_step(model: nn.Module, graph, indices: Tensor) -> Callable[[], Tensor]:
    """Return a callable that runs one Euler sampling step from time TIME on ``indices``."""
    noise = LogLinearNoise()
    t = torch.full((indices.shape[0], 1), TIME, device=indices.device)  # (B, 1)
    if EulerPredictor is not None:
        predictor, score_fn = EulerPredictor(graph, noise), model_score_fn(model)
        return lambda: predictor.update(score_fn, indices, t, STEP_SIZE)

    @torch.no_grad()
    def graph_euler_step() -> Tensor:
        sigma, dsigma = noise(t)  # (B, 1) each
        score = model(indices, sigma[:, 0]).exp()  # (B, L, D)
        rate = (dsigma * STEP_SIZE)[..., None] * graph.reverse_rate(indices, score)  # (B, L, D)
        return graph.sample_rate(indices, rate)  # (B, L)

    return graph_euler_step


def time_interleaved(
    tasks: dict[str, Callable[[], object]], warmup: int, iterations: int, device: torch.device
) -> dict[str, list[float]]:
    """Run every task ``warmup`` times, then time them round-robin and return the seconds per task."""

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        for task in tasks.values():
            task()
    synchronize()

    seconds: dict[str, list[float]] = {name: [] for name in tasks}
    for iteration in range(iterations):
        for name, task in tasks.items():
            start = time.perf_counter()
            task()
            synchronize()
            seconds[name].append(time.perf_counter() - start)
        logger.info("  round %d/%d: %s", iteration + 1, iterations, ", ".join(f"{n} {s[-1]:.3f}s" for n, s in seconds.items()))
    return seconds


def benchmark_shape(shape: Shape, device: torch.device, batch: int, warmup: int, iterations: int) -> dict:
    """Time training, forward and sampling for the DDiT and the bare model of one shape."""
    config = ModelConfig(
        num_tokens=shape.num_tokens,
        hidden_size=shape.hidden_size,
        cond_dim=shape.cond_dim,
        n_blocks=shape.n_blocks,
        n_heads=shape.n_heads,
        length=shape.length,
    )
    torch.manual_seed(0)
    models = {"ddit": SEDD(config).to(device), "bare": BareTransformer(config).to(device)}
    graph = get_graph("absorbing", config.num_tokens)
    indices = torch.randint(0, config.num_tokens, (batch, shape.length), device=device)
    # Half the positions masked, as midway through sampling.
    indices = torch.where(torch.rand(indices.shape, device=device) < 0.5, graph.mask_index, indices)
    sigma = LogLinearNoise()(torch.full((batch,), TIME, device=device))[0]  # (B,)
    tokens = batch * shape.length

    logger.info("shape %s: batch %d, %d tokens per step, training", shape.name, batch, tokens)
    optimizers = {name: torch.optim.AdamW(model.parameters(), lr=1e-4) for name, model in models.items()}
    for model in models.values():
        model.train()
    train_seconds = time_interleaved(
        {name: (lambda m=m, o=optimizers[name]: training_step(m, o, indices, sigma)) for name, m in models.items()},
        warmup, iterations, device,
    )
    del optimizers  # frees the AdamW state before the inference timings

    logger.info("shape %s: forward and sampling step", shape.name)
    for model in models.values():
        model.eval().zero_grad(set_to_none=True)
    inference_tasks = {}
    for name, model in models.items():
        inference_tasks[f"{name}_forward"] = lambda m=model: forward_only(m, indices, sigma)
        inference_tasks[f"{name}_sampling"] = make_sampling_step(model, graph, indices)
    inference_seconds = time_interleaved(inference_tasks, warmup, iterations, device)

    all_seconds = {**{f"{name}_train": values for name, values in train_seconds.items()}, **inference_seconds}
    train = {name: statistics.median(values) for name, values in train_seconds.items()}
    inference = {name: statistics.median(values) for name, values in inference_seconds.items()}

    return {
        "shape": {key: value for key, value in asdict(shape).items() if key not in ("batch", "warmup", "iterations")},
        "batch": batch,
        "warmup": warmup,
        "iterations": iterations,
        "parameters": {name: sum(p.numel() for p in model.parameters()) for name, model in models.items()},
        "median_seconds": {name: statistics.median(values) for name, values in all_seconds.items()},
        "all_seconds": all_seconds,
        "train_tokens_per_s": {name: tokens / train[name] for name in models},
        "sampling_tokens_per_s": {name: tokens / inference[f"{name}_sampling"] for name in models},
        "train_overhead_percent": 100 * (paired_ratio(all_seconds, "ddit_train", "bare_train") - 1),
        "sampling_overhead_percent": 100 * (paired_ratio(all_seconds, "ddit_sampling", "bare_sampling") - 1),
        "forward_overhead_percent": 100 * (paired_ratio(all_seconds, "ddit_forward", "bare_forward") - 1),
        "ddit_sampling_step_over_forward": paired_ratio(all_seconds, "ddit_sampling", "ddit_forward"),
        "sampling_step": "sedd.sampling.EulerPredictor" if EulerPredictor is not None else "Euler step from sedd.graph",
    }


def paired_ratio(seconds: dict[str, list[float]], numerator: str, denominator: str) -> float:
    """Return the median over rounds of the time ratio of two workloads timed in the same round.

    Pairing within a round cancels changes in background load between rounds, which a ratio of
    two medians would mix in.
    """
    return statistics.median(a / b for a, b in zip(seconds[numerator], seconds[denominator]))


def load_average() -> float | None:
    """Return the 1-minute load average, or None where the OS does not report one."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def machine_info(device: torch.device) -> dict:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "precision": "bf16 autocast" if device.type == "cuda" else "float32",
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def render_section(results_dir: Path) -> str:
    """Render the "Core model" section of the benchmarks page from every core_*.json result."""
    lines = [
        SECTION_TITLE,
        "",
        "DDiT score network (`sedd.model.SEDD`) against a bare transformer of the same widths: pre-norm",
        "blocks with the same `scaled_dot_product_attention` call and MLP, no noise conditioning, adaLN",
        "or rotary embeddings. A training step is forward, backward of the mean square of the output",
        "and an AdamW step. A sampling step is one `EulerPredictor` update of `sedd.sampling` (one",
        "forward under `no_grad`, ratios, reverse rates, float64 categorical draw) on a half-masked",
        "batch. Tokens/s counts batch times length per step, from the median of the timed iterations.",
        "The workloads take turns within each round, so background load hits both models alike.",
        "Overhead is DDiT time over bare time minus 1, as the median over rounds of the ratio within a",
        f"round; the target is at most {OVERHEAD_TARGET_PERCENT:.0f}%. The last column is such a ratio too.",
        "",
        "The DDiT overhead is elementwise work over `(B, L, H)` tensors: adaLN shift, scale and gate",
        "around both branches of every block, and rotary embeddings on queries and keys. Matmul work",
        "grows as H² but this work only as H, so its share is largest at the small shape. On a shared",
        "machine, read a load average above the core count as a sign that the timings are noisy.",
        "",
        "Shapes: `small` is V=256, H=128, 4 blocks, 4 heads, C=64, L=128. `paper` is SEDD small of",
        "Lou, Meng and Ermon (arXiv:2310.16834): V=50257 (GPT-2), H=768, 12 blocks, 12 heads, C=128,",
        "L=1024. The result JSON keeps every timed iteration and the load average of the machine",
        "before and after the run, which shows how much other processes competed for the cores.",
    ]
    for path in sorted(results_dir.glob("core_*.json")):
        record = json.loads(path.read_text())
        machine = record["machine"]
        hardware = machine.get("gpu", f"{machine['cpu']}, {machine['cores']} cores, torch threads: {machine['torch_threads']}")
        load = record.get("load_average_1min", {})
        lines += [
            "",
            f"### {machine['device']} ({machine['precision']})",
            "",
            f"{hardware}; torch {machine['torch']}; {record['date'][:10]}; 1-minute load average "
            f"{load.get('before')} before and {load.get('after')} after. Command: `{record['command']}`",
            "",
            "| shape | batch | train tok/s DDiT | train tok/s bare | train overhead | forward overhead "
            "| sample tok/s DDiT | sample tok/s bare | sample overhead | sampling step / forward |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for result in record["results"]:
            train, sample = result["train_tokens_per_s"], result["sampling_tokens_per_s"]
            lines.append(
                f"| {result['shape']['name']} | {result['batch']} | {train['ddit']:,.0f} | {train['bare']:,.0f} "
                f"| {result['train_overhead_percent']:+.1f}% | {result['forward_overhead_percent']:+.1f}% "
                f"| {sample['ddit']:,.0f} | {sample['bare']:,.0f} "
                f"| {result['sampling_overhead_percent']:+.1f}% | {result['ddit_sampling_step_over_forward']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def update_docs(page: Path, section: str) -> None:
    """Replace the "Core model" section of the page (up to the next ``## `` heading), or append it."""
    text = page.read_text() if page.is_file() else "# Benchmarks\n\nMeasured speeds, one section per component.\n"
    start = text.find(SECTION_TITLE + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(SECTION_TITLE))
        rest = "" if end < 0 else text[end + 1 :]
        text = text[:start] + section + ("\n" + rest if rest else "")
    page.write_text(text)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="torch device to time on, e.g. cpu or cuda (default: cpu)")
    parser.add_argument("--shapes", default="small,paper", help=f"comma-separated shapes among {sorted(SHAPES)}")
    parser.add_argument("--batch", type=int, help="batch size for every shape (default: per shape and device)")
    parser.add_argument("--warmup", type=int, help="untimed iterations per workload (default: per shape and device)")
    parser.add_argument("--iterations", type=int, help="timed iterations per workload (default: per shape and device)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--output", type=Path, help="result JSON path (default: benchmarks/results/core_<device>.json)")
    parser.add_argument("--no-docs", action="store_true", help=f"do not rewrite the '{SECTION_TITLE[3:]}' section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.shapes.split(",")) - set(SHAPES))
    if unknown:
        parser.error(f"unknown shapes {unknown}: choose among {sorted(SHAPES)}")
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    kind = "cuda" if device.type == "cuda" else "cpu"
    logger.info("device %s, precision %s", device, machine_info(device)["precision"])
    load_before = load_average()

    results = []
    for name in args.shapes.split(","):
        shape = SHAPES[name]
        results.append(
            benchmark_shape(
                shape,
                device,
                batch=args.batch or shape.batch[kind],
                warmup=shape.warmup[kind] if args.warmup is None else args.warmup,
                iterations=args.iterations or shape.iterations[kind],
            )
        )
        logger.info("shape %s: %s", name, json.dumps({k: v for k, v in results[-1].items() if "overhead" in k or "over" in k}))

    record = {
        "benchmark": "core",
        "command": "python benchmarks/bench_core.py" + "".join(f" {shlex.quote(a)}" for a in argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(device),
        "load_average_1min": {"before": load_before, "after": load_average()},
        "results": results,
    }
    output = args.output or RESULTS_DIR / f"core_{device.type}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, indent=2) + "\n")
    logger.info("wrote %s", output)
    if not args.no_docs:
        update_docs(DOCS_PAGE, render_section(output.parent))
        logger.info("updated %s", DOCS_PAGE)


if __name__ == "__main__":
    main()
