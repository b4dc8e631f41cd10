"""``python -m tests.support.tiny_model [--out DIR] [--refresh] [--search]``: print the tiny model's directory
(``--search``: the searching model's)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from tests.support.tiny_model import CACHE_ENV, SHIPPED_DIR, build_tiny_model, refresh_shipped, shipped_dir


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Print the tiny model's directory: the shipped one if current, else one trained into the cache."
    )
    parser.add_argument(
        "--out",
        type=Path,
        help=f"cache directory for a retrained model (default ${CACHE_ENV} or ~/.cache/vllm-mcp-ext)",
    )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help=f"retrain the shipped model ({SHIPPED_DIR}) from the current scripts, template and trainer",
    )
    parser.add_argument("--search", action="store_true", help="the searching model (model-search)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.refresh:
        info = refresh_shipped(args.search)
        target = shipped_dir(args.search)
        logging.info(
            "refreshed %s: inputs %s, %d steps, %.0f s", target, info.key, info.steps, info.train_seconds
        )
        print(target)
    else:
        print(build_tiny_model(args.out, args.search))


if __name__ == "__main__":
    main()
