"""`python -m hubbub.contract [--check] [DIR]`: write the documents (default docs/contract),
or with --check exit 1 naming each one that differs from what the types give."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hubbub.contract.documents import DIRECTORY, documents


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hubbub.contract", description=__doc__)
    parser.add_argument("directory", nargs="?", default=DIRECTORY, type=Path)
    parser.add_argument("--check", action="store_true",
                        help="compare, write nothing; exit 1 when a document is stale")
    args = parser.parse_args(argv)
    stale = []
    for name, content in documents().items():
        path = args.directory / name
        if args.check:
            if not path.is_file() or path.read_bytes() != content:
                stale.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        print(f"wrote {path}")
    for name in stale:
        print(f"{args.directory / name} is stale: run python -m hubbub.contract",
              file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
