"""Command line: ``python -m sedd.train --config FILE --run-dir DIR [--resume [PATH]] [--set KEY=VALUE ...]``.

Exit codes: 0 when the run completed or was stopped by SIGTERM/SIGINT after its checkpoint,
1 when it diverged, 2 for an invalid config or arguments. A crash exits with Python's
traceback and code 1. Under ``torchrun`` only rank 0 logs below WARNING.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sedd.train", description="Train a SEDD model from an experiment config."
    )
    parser.add_argument("--config", required=True, help="experiment config YAML file")
    parser.add_argument("--run-dir", required=True, help="run directory for checkpoints, logs and the model")
    parser.add_argument(
        "--resume",
        nargs="?",
        const="",
        default=None,
        metavar="PATH",
        help="continue from a checkpoint file or run directory (without PATH: the run directory's newest checkpoint)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, value parsed as YAML (repeatable), e.g. --set training.lr=1e-4",
    )
    parser.add_argument("--quiet", action="store_true", help="log warnings and errors only")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    level = logging.WARNING if args.quiet or rank != 0 else logging.INFO
    logging.basicConfig(level=level, format=LOG_FORMAT)

    from sedd.config import ConfigError, load_config
    from sedd.train import train
    from sedd.train.setup import TrainingSetupError

    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as error:
        where = "config" if error.from_overrides else f"config {args.config}"
        print(f"Error: invalid {where}: {error}", file=sys.stderr)
        return 2
    resume = args.run_dir if args.resume == "" else args.resume
    try:
        result = train(config, args.run_dir, resume=resume)
    except TrainingSetupError as error:
        # The tracker has already recorded the run as failed; a traceback would add nothing.
        print(f"Error: {error}", file=sys.stderr)
        return 2
    return 1 if result.status == "diverged" else 0


if __name__ == "__main__":
    sys.exit(main())
