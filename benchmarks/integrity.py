"""Pipe integrity: the derating against known crossings and corrosion growth recovered from two ILI runs.

Runs both integrity benchmarks and exits 1 when either misses its target:

- ``benchmarks.integrity_derating``: synthetic lines whose feature's safe pressure is crossed at a
  throughput known in closed form; the twin's derating must find it within 1 %.
- ``benchmarks.integrity_growth``: two simulated ILI runs five years apart with sizing noise and
  odometer error; the true growth rates must fall inside the stated 95 % interval about 95 % of the
  time (within 5 points).

Each writes its own JSON (``integrity_derating.json``, ``integrity_growth.json``) under the bench folder.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks import integrity_derating, integrity_growth


def main(argv: list[str] | None = None) -> int:
    """Run both benchmarks on the same seeds; 0 when both meet their targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds for both (default: each one's own, 10 seeds)")
    args = parser.parse_args(argv)
    seeds = [] if args.seeds is None else ["--seeds", *map(str, args.seeds)]
    codes = {}
    for name, module in (("derating", integrity_derating), ("growth", integrity_growth)):
        print(f"--- integrity {name} ---")
        codes[name] = module.main(seeds)
    missed = [name for name, code in codes.items() if code]
    if missed:
        print(f"target missed: {', '.join(missed)}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
