#!/usr/bin/env python3
"""Check web/types/router.d.ts against upstream's generated router declaration.

    .venv/bin/python scripts/check_upstream_types.py /path/to/upstream/router.d.ts

Upstream's file (Kilo-Org/cloud apps/web/src/lib/gastown/types/router.d.ts) is read from where
you point, copied into a temporary folder next to the comparison and never committed. For each
procedure both routers have: upstream's input assignable to ours, our output assignable to
upstream's, same kind; and no upstream procedure missing. Exit 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent / "upstream_types"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("upstream", type=Path, help="upstream's router.d.ts")
    args = parser.parse_args()
    work = HERE / "upstream"
    work.mkdir(exist_ok=True)
    try:
        shutil.copyfile(args.upstream, work / "router.d.ts")
        # Upstream's declaration imports its context type; the comparison does not need it.
        (work / "init.d.ts").write_text("export type TRPCContext = object;\n")
        done = subprocess.run(["node", str(HERE / "report.cjs")], capture_output=True, text=True, check=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if done.returncode != 0 or not done.stdout.strip():
        print(done.stdout + done.stderr, file=sys.stderr)
        return 1
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"shared procedures: {len(report['Shared'])}")
    print(f"missing here: {', '.join(report['Missing']) or 'none'}")
    print(f"failing: {', '.join(report['Failing']) or 'none'} (waived: debugAgentMetadata, see README)")
    if done.stderr:
        print(done.stderr, file=sys.stderr)
    return 0 if not report["Missing"] and not report["Failing"] and not report["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
