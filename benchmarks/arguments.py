"""Command-line argument types the benchmark scripts share: a bad value is refused by
argparse, naming the option, before any run starts (not a traceback after all of them)."""

from __future__ import annotations

import argparse


def parse_seeds(text: str) -> list[int]:
    """``"10"`` -> seeds 0..9; ``"3,7,11"`` -> those seeds (each once, at least one)."""
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        else:
            seeds = list(range(int(text)))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of seeds (10: seeds 0-9) or a comma-separated list of seeds "
            f"(3,7,11), got {text!r}"
        ) from None
    if not seeds:
        raise argparse.ArgumentTypeError(f"needs at least one seed, got {text!r}")
    if len(set(seeds)) < len(seeds):
        # A seed fixes its source studies: counted twice, one seed would pass for two.
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        raise argparse.ArgumentTypeError(f"lists seed(s) {repeated} more than once")
    return seeds


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value
