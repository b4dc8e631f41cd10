"""``python -m tests.support.tiny_model [--out DIR] [--refresh]``: print the tiny model's directory."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from tests.support.tiny_model import CACHE_ENV, SHIPPED_DIR, build_tiny_model, refresh_shipped


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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.refresh:
        info = refresh_shipped()
        logging.info(
            "refreshed %s: inputs %s, %d steps, %.0f s", SHIPPED_DIR, info.key, info.steps, info.train_seconds
        )
        print(SHIPPED_DIR)
    else:
        print(build_tiny_model(args.out))


if __name__ == "__main__":
    main()
