"""A short run of the shared benchmark kit, for CI: print hubbub's ratio to Node `ws`.

One scenario, one run of each server, deliveries verified. What it prints is a ratio
measured in one run on one machine (never an absolute time), so a regression shows in
every CI log. It fails only when hubbub errors (no successful run, or a delivery missing
or duplicated); a reference server that fails, or a slow run, is reported and passes.

    python -m bench.smoke                  # the kit at ../shared/bench beside the checkout
    HUBBUB_BENCH_KIT=/path/to/kit python -m bench.smoke
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KIT = ROOT.parent / "shared" / "bench"


def verdict(results: dict[str, Any]) -> tuple[bool, list[str]]:
    """Whether hubbub ran cleanly in every scenario of a kit result, and the lines to print."""
    lines: list[str] = []
    clean = True
    for row in results.get("summary", []):
        if row.get("kind") != "load":
            continue
        hubbub, reference = row.get("hubbub") or {}, row.get("reference") or {}
        if not hubbub.get("ok"):
            clean = False
            lines.append(f"benchmark smoke: {row['scenario']}: hubbub had no successful run")
            continue
        ours = hubbub["deliveries_per_s"]
        if reference.get("ok"):
            ratio = ours / reference["deliveries_per_s"]
            lines.append(f"benchmark smoke: {row['scenario']}: hubbub / Node ws deliveries/s "
                         f"= {ratio:.2f}x (one run each, same machine, same run)")
        else:
            lines.append(f"benchmark smoke: {row['scenario']}: hubbub {ours:,.0f} deliveries/s; "
                         "the reference failed, so no ratio")
    if not lines:
        clean = False
        lines.append("benchmark smoke: the kit reported no load scenario")
    return clean, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="100x2000")
    parser.add_argument("--kit", type=Path,
                        default=Path(os.environ.get("HUBBUB_BENCH_KIT", DEFAULT_KIT)))
    args = parser.parse_args(argv)
    runner = args.kit / "run.py"
    if not runner.is_file():
        print(f"benchmark smoke: no kit at {args.kit} (set HUBBUB_BENCH_KIT); not run")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.json"
        command = [sys.executable, str(runner), "--project", str(ROOT),
                   "--hubbub-cmd", f"{ROOT / '.venv' / 'bin' / 'hubbub'} serve",
                   "--hubbub-env", "HUBBUB_LOG_LEVEL=warning",
                   "--scenarios", args.scenarios, "--repeats", "1", "--verify",
                   "--json", str(out)]
        completed = subprocess.run(command, check=False, timeout=600)
        if not out.is_file():
            print(f"benchmark smoke: the kit wrote no result (exit {completed.returncode})")
            return 1
        clean, lines = verdict(json.loads(out.read_text()))
    print("\n".join(lines))
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
