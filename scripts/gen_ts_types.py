#!/usr/bin/env python3
"""Write web/types/router.d.ts (the tRPC `AppRouter` type) from the procedure table.

    .venv/bin/python scripts/gen_ts_types.py          # write the file
    .venv/bin/python scripts/gen_ts_types.py --check  # exit 1 if the committed file is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rpc.procedures import all_procedures
from rpc.ts_types import render

TARGET = ROOT / "web" / "types" / "router.d.ts"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file instead of writing it")
    args = parser.parse_args()
    text = render(all_procedures())
    if args.check:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run scripts/gen_ts_types.py", file=sys.stderr)
            return 1
        print(f"{TARGET.relative_to(ROOT)} is up to date")
        return 0
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)} ({len(text.splitlines())} lines, {text.count('Procedure<')} procedures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
