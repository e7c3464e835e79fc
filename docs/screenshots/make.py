"""Rebuild the UI screenshots in this folder (SVG, 100x30 cells) from a seeded store.

Usage, from the repository root::

    python docs/screenshots/make.py                  # every screenshot, about a minute on a CPU
    python docs/screenshots/make.py --skip-training  # all but sampling.svg and infill.svg

The store is the synthetic demo store (``workbench.tui.demo_store``) with the UI clock fixed at
its ``DEMO_NOW``, plus a run that resumed a stopped one. The sampling and infilling screenshots
need a real model, so the script also trains a one-block model on a few kilobytes of the Python
standard library for 40 steps, on the CPU, and generates with it. Those two screenshots show
real (nearly random) text and may differ between machines. Everything is written to a temporary
folder that is removed at the end, except the SVG files.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

# Import the UI of this checkout, even where another copy of the package is installed.
REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from textual.pilot import Pilot  # noqa: E402
from textual.widgets import Input, Static, TextArea  # noqa: E402

from workbench.services import Workbench  # noqa: E402
from workbench.store import RunStatus  # noqa: E402
from workbench.tui.app import WorkbenchApp, create_app  # noqa: E402
from workbench.tui.demo_store import DEMO_NOW, seed_demo_store, seed_resumed_run  # noqa: E402
from workbench.tui.system import SystemReading  # noqa: E402
from workbench.tui.testing import settle  # noqa: E402

SIZE = (100, 30)
GIB = 1024**3
TINY_EXP_ID = "tiny-char"
GENERATION_TIMEOUT_S = 300.0
TRAINING_TIMEOUT_S = 600.0

Steps = Callable[[Pilot], Awaitable[None]]


def tiny_config(cache_dir: Path) -> str:
    """Return a config that trains in seconds on a CPU: a one-block model over 32-character blocks."""
    return f"""exp_id: {TINY_EXP_ID}
gpu: cpu
tags: [char, stdlib]
data:
  corpus: stdlib
  seq_len: 32
  max_bytes: 40000
  cache_dir: {cache_dir}
model:
  hidden_size: 32
  cond_dim: 16
  n_blocks: 1
  n_heads: 2
  dropout: 0.0
diffusion:
  sampling:
    steps: 16
training:
  batch_size: 8
  steps: 40
  lr: 3.0e-3
  warmup: 5
  ema: 0.9
  log_every: 2
  eval_every: 10
  eval_blocks: 8
  eval_times: 2
  snapshot_every: 0
  checkpoint_every: 20
"""


def fixed_probe() -> SystemReading:
    return SystemReading(cpu_percent=37.0, ram_used=5.5 * GIB, ram_total=31.3 * GIB)


def train_tiny_run(workbench: Workbench, cache_dir: Path) -> int:
    """Train the tiny model to completion and return its run id. Raises ``RuntimeError`` if it fails."""
    workbench.create_experiment(config_text=tiny_config(cache_dir))
    run = workbench.wait(workbench.launch(TINY_EXP_ID).id, timeout=TRAINING_TIMEOUT_S)
    if run.status is not RunStatus.COMPLETED:
        raise RuntimeError(f"the tiny run {run.id} ended {run.status.value}: {run.message}; see {run.run_dir}/run.log")
    return run.id


def press(*keys: str) -> Steps:
    async def steps(pilot: Pilot) -> None:
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return steps


def set_run(run_id: int, *keys: str) -> Steps:
    async def steps(pilot: Pilot) -> None:
        pilot.app.run_id = run_id
        await press(*keys)(pilot)

    return steps


def generate(run_id: int, pane_key: str, fields: dict[str, str]) -> Steps:
    """Open a generation pane on ``run_id``, fill the fields by id, generate and wait for the texts."""

    async def steps(pilot: Pilot) -> None:
        await set_run(run_id, pane_key)(pilot)
        screen = pilot.app.screen
        for field_id, value in fields.items():
            screen.query_one(f"#{field_id}", Input).value = value
        await pilot.press("ctrl+g")
        waited = 0.0
        while screen.is_generating:
            if waited > GENERATION_TIMEOUT_S:
                raise RuntimeError(f"generation in pane {pane_key} did not finish within {GENERATION_TIMEOUT_S:.0f} s")
            await pilot.pause(0.5)
            waited += 0.5
        await settle(pilot)
        if str(screen.query_one("#progress-text", Static).render()).startswith("failed"):
            errors = [notification.message for notification in pilot.app._notifications]
            raise RuntimeError(f"generation in pane {pane_key} failed: {errors}")
        screen.query_one("#results").focus()
        await settle(pilot)

    return steps


async def edited_clone(pilot: Pilot) -> None:
    """Clone the experiment under the cursor, change two values in the editor and show the diff."""
    await press("down", "c", "enter")(pilot)
    await settle(pilot)
    editor = pilot.app.screen.query_one("#config-text", TextArea)
    editor.load_text(editor.text.replace("lr: 0.001", "lr: 0.003").replace("n_heads: 4", "n_heads: 5"))
    await pilot.pause(0.5)
    await press("ctrl+t")(pilot)


async def shoot(app: WorkbenchApp, steps: Steps, path: Path) -> None:
    """Start the app headless, run ``steps`` and write the screen to ``path`` as SVG."""
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await steps(pilot)
        for widget in app.screen.query("TextArea, Input"):
            if isinstance(widget, (TextArea, Input)):
                widget.cursor_blink = False
        await pilot.pause()
        path.write_text(app.export_screenshot(title="SEDD workbench"), encoding="utf-8")
    print(f"wrote {path}")


def screenshots(resumed_run: int, tiny_run: int | None) -> dict[str, Steps]:
    """Return the steps of each screenshot by file stem. Their order matters: the clone adds an experiment."""
    compare = (2, 3, 5)

    async def compare_tab(pilot: Pilot, *keys: str) -> None:
        pilot.app.compare_ids = compare
        await press("6", *keys)(pilot)

    shots: dict[str, Steps] = {
        "experiments": press("down", "space"),
        "editor": press("down", "2"),
        "monitor": press("enter"),
        "monitor-zoomed": press("enter", "z", "z"),
        "monitor-resumed": set_run(resumed_run, "3"),
        "compare": lambda pilot: compare_tab(pilot),
        "compare-curves": lambda pilot: compare_tab(pilot, "right"),
        "compare-config": lambda pilot: compare_tab(pilot, "right", "right"),
        "help": press("f1"),
        "editor-diff": edited_clone,
    }
    if tiny_run is not None:
        shots["sampling"] = generate(tiny_run, "4", {"num": "3", "length": "32"})
        template = "def [MASK:10](self, [MASK:6]):"
        shots["infill"] = generate(tiny_run, "5", {"num": "3", "template": template})
    return shots


async def make(out_dir: Path, skip_training: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="sedd-screenshots-") as tmp:
        root = Path(tmp)
        workbench = Workbench(str(root / "screenshots.db"), checkpoint_root=root / "checkpoints")
        try:
            seed_demo_store(workbench.store)
            # Run 3 (demo-0002) stopped at step 125; its resumed run restarted from step 100.
            resumed_run = seed_resumed_run(workbench.store, 3, from_step=100, last_step=160)
            tiny_run = None if skip_training else train_tiny_run(workbench, root / "cache")
            for stem, steps in screenshots(resumed_run, tiny_run).items():
                app = create_app(
                    workbench, keymap={}, clock=lambda: DEMO_NOW, probe=fixed_probe, poll_interval=0, reconcile_interval=0
                )
                await shoot(app, steps, out_dir / f"{stem}.svg")
        finally:
            workbench.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="folder for the SVG files")
    parser.add_argument(
        "--skip-training", action="store_true", help="skip the tiny training run and leave sampling.svg and infill.svg as they are"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(make(args.out, args.skip_training))


if __name__ == "__main__":
    main()
