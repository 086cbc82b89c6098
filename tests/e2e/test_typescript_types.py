"""Strict TypeScript type test of the generated `AppRouter` (web/types/router.d.ts).

web/typecheck/ uses every `gastown.*` procedure the way the front end does (the @trpc/client
proxy and @trpc/tanstack-react-query, with exact-type assertions on inputs and outputs) and
lists misuses under `// @ts-expect-error TSxxxx`. Here we check that the committed types match
the procedure table, that `tsc --noEmit` accepts web/, that every procedure is really called,
and, as negative controls, that tsc rejects wrong calls: a small wrong file, and a copy of
web/typecheck/expect-errors.ts with its directives removed, which must fail with exactly the
errors the directives name, on exactly their lines.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
NODE_MODULES = WEB / "node_modules"
TSC = NODE_MODULES / ".bin" / "tsc"
TSCONFIG = WEB / "tsconfig.json"
ROUTER_DTS = WEB / "types" / "router.d.ts"
TYPECHECK = WEB / "typecheck"
EXPECT_ERRORS = TYPECHECK / "expect-errors.ts"

NPM_HINT = "web/node_modules is missing: run `npm ci --prefix web` (scripts/test does)"
TSC_TIMEOUT = 120

PROCEDURE_RE = re.compile(r"^    ([a-zA-Z]+): TRPC(Query|Mutation|Subscription)Procedure<", re.MULTILINE)
DIRECTIVE_RE = re.compile(r"^(\s*)// @ts-expect-error (TS\d+)\b(.*)$")
TSC_ERROR_RE = re.compile(
    r"^(?P<file>[^\s(][^(]*)\((?P<line>\d+),(?P<col>\d+)\): error (?P<code>TS\d+): ", re.MULTILINE
)
# What counts as calling a procedure, by kind (client proxy or tanstack options proxy).
CALLS = {
    "Query": ("query", "queryOptions"),
    "Mutation": ("mutate", "mutationOptions"),
    "Subscription": ("subscribe", "subscriptionOptions"),
}


def _tsc(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    if not TSC.exists() or not (NODE_MODULES / "@trpc" / "client").exists():
        pytest.fail(NPM_HINT, pytrace=False)
    started = time.monotonic()
    result = subprocess.run(
        [str(TSC), *args, "--pretty", "false"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TSC_TIMEOUT,
        check=False,
    )
    return result, time.monotonic() - started


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return (result.stdout + result.stderr).strip()


def _procedures() -> dict[str, str]:
    found = dict(PROCEDURE_RE.findall(ROUTER_DTS.read_text()))
    assert found, f"no procedures found in {ROUTER_DTS.relative_to(ROOT)}"
    return found


def _errors(output: str) -> list[tuple[str, int, str]]:
    return [(m["file"].strip(), int(m["line"]), m["code"]) for m in TSC_ERROR_RE.finditer(output)]


def _tmp_tsconfig(directory: Path, include: list[str], paths: dict[str, list[str]] | None = None) -> Path:
    """A tsconfig in a directory outside web/: web's compiler options and @types; with `paths`,
    `@trpc/*` and `@tanstack/*` (and the given aliases) resolve from web/node_modules."""
    options: dict[str, object] = {"typeRoots": [str(NODE_MODULES / "@types")]}
    if paths is not None:
        options["paths"] = {
            "@trpc/*": [str(NODE_MODULES / "@trpc" / "*")],
            "@tanstack/*": [str(NODE_MODULES / "@tanstack" / "*")],
            **paths,
        }
    config = {"extends": str(TSCONFIG), "compilerOptions": options, "include": include}
    path = directory / "tsconfig.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def _link_node_modules(directory: Path) -> None:
    """Resolve bare imports exactly as web/ does (one copy of each package, the same entry files)."""
    (directory / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)


# -- (a) the committed types are the generator's output ----------------------------------------


def test_router_types_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_ts_types.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (
        "web/types/router.d.ts is stale: it no longer matches the procedure table (rpc/procedures).\n"
        "Run `.venv/bin/python scripts/gen_ts_types.py` and commit the result.\n" + _output(result)
    )


# -- (b) tsc accepts web/ ----------------------------------------------------------------------


def test_tsc_accepts_web() -> None:
    result, elapsed = _tsc(["-p", str(TSCONFIG), "--noEmit", "--listFiles"], cwd=WEB)
    output = _output(result)
    assert result.returncode == 0, f"tsc -p web/tsconfig.json --noEmit failed ({elapsed:.1f} s):\n{output}"
    listed = {Path(line.strip()) for line in result.stdout.splitlines() if line.strip()}
    # The web app's own sources (web/src) are compiled strictly too.
    app_sources = [*(WEB / "src").rglob("*.ts"), *(WEB / "src").rglob("*.tsx")]
    assert app_sources, "web/src has no TypeScript"
    expected = {ROUTER_DTS, *TYPECHECK.glob("*.ts"), *TYPECHECK.glob("*.tsx"), *app_sources}
    missing = sorted(str(p.relative_to(WEB)) for p in expected if p.resolve() not in listed)
    assert not missing, f"web/tsconfig.json does not compile {missing}"


def _strip_expected_error_lines(text: str) -> str:
    """Drop each `@ts-expect-error` directive and the line it covers."""
    lines = text.splitlines()
    kept: list[str] = []
    skip = False
    for line in lines:
        if skip:
            skip = False
            continue
        if "@ts-expect-error" in line:
            skip = True
            continue
        kept.append(line)
    return "\n".join(kept)


def _group_bodies() -> dict[str, str]:
    """`export (async) function name(` → its text up to the next top-level export."""
    bodies: dict[str, str] = {}
    for path in [*TYPECHECK.glob("*.ts"), *TYPECHECK.glob("*.tsx")]:
        if path == EXPECT_ERRORS:
            continue
        text = _strip_expected_error_lines(path.read_text())
        starts = [
            (m.start(), m["name"])
            for m in re.finditer(r"^export (?:async )?function (?P<name>\w+)\b", text, re.MULTILINE)
        ]
        exports = [m.start() for m in re.finditer(r"^export ", text, re.MULTILINE)] + [len(text)]
        for start, name in starts:
            end = min(e for e in exports if e > start)
            bodies[name] = text[start:end]
    return bodies


def test_every_procedure_is_called() -> None:
    procedures = _procedures()
    map_text = (TYPECHECK / "procedures.ts").read_text()
    called_by = dict(re.findall(r"^  (\w+): (\w+),$", map_text, re.MULTILINE))
    assert set(called_by) == set(procedures), (
        "web/typecheck/procedures.ts `calledBy` and web/types/router.d.ts disagree: "
        f"missing {sorted(set(procedures) - set(called_by))}, extra {sorted(set(called_by) - set(procedures))}"
    )
    bodies = _group_bodies()
    react = _strip_expected_error_lines((TYPECHECK / "react.tsx").read_text())
    uncalled = []
    for name, kind in sorted(procedures.items()):
        group = called_by[name]
        assert group in bodies, (
            f"calledBy.{name} names {group}, which is no exported function in web/typecheck"
        )
        methods = "|".join(CALLS[kind])
        call = re.compile(rf"\.gastown\.{name}\.(?:{methods})\(")
        if not call.search(bodies[group]):
            uncalled.append(f"{name} ({kind.lower()}) in {group}()")
    assert not uncalled, "procedures not called where procedures.ts says: " + ", ".join(uncalled)
    # The tanstack side covers the front end's main hooks.
    for needed in (
        "getTown.queryOptions(",
        "forkTown.mutationOptions(",
        "watchTownEvents.subscriptionOptions(",
        "queryKey(",
    ):
        assert needed in react, f"web/typecheck/react.tsx no longer uses {needed}"
    print(f"{len(procedures)} procedures called")


# -- (c) negative controls: tsc rejects wrong calls ----------------------------------------------

WRONG_TS = """\
import { createTRPCClient, httpBatchLink } from '@trpc/client';
import type { AppRouter } from '@gastown/router';

const client = createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: 'http://127.0.0.1:8787/trpc' })] });

export async function wrong(): Promise<string> {
  const town = await client.gastown.getTown.query({ townId: 42 });
  await client.gastown.updateBead.mutate({ rigId: 'r', beadId: 'b', status: 'done' });
  return town.name;
}
"""


def test_negative_control_wrong_call_fails(tmp_path: Path) -> None:
    (tmp_path / "wrong.ts").write_text(WRONG_TS)
    config = _tmp_tsconfig(
        tmp_path,
        include=["wrong.ts", str(ROUTER_DTS)],
        paths={"@gastown/router": [str(ROUTER_DTS)]},
    )
    # First the same file made right must compile: the failure below is then the wrong calls'.
    right = tmp_path / "right"
    right.mkdir()
    (right / "wrong.ts").write_text(
        WRONG_TS.replace("townId: 42", "townId: 'x'").replace("'done'", "'closed'")
    )
    shutil.copy(config, right / "tsconfig.json")
    ok, _ = _tsc(["-p", str(right / "tsconfig.json"), "--noEmit"], cwd=right)
    assert ok.returncode == 0, (
        f"the corrected control file does not compile, so the control proves nothing:\n{_output(ok)}"
    )

    result, _ = _tsc(["-p", str(config), "--noEmit"], cwd=tmp_path)
    output = _output(result)
    assert result.returncode != 0, f"tsc accepted a wrong call:\n{output}"
    errors = _errors(output)
    assert ("wrong.ts", 7, "TS2322") in errors, f"no error for `townId: 42`:\n{output}"
    assert ("wrong.ts", 8, "TS2322") in errors, f"no error for `status: 'done'`:\n{output}"
    assert "Type 'number' is not assignable to type 'string'" in output, output
    assert "'\"done\"' is not assignable" in output, output
    assert len(errors) == 2, f"unexpected errors besides the two wrong calls:\n{output}"


def test_expect_error_directives_are_the_intended_errors(tmp_path: Path) -> None:
    """Each `// @ts-expect-error TSxxxx` must cover exactly that error; remove them and see."""
    shutil.copytree(TYPECHECK, tmp_path / "typecheck")
    shutil.copytree(WEB / "types", tmp_path / "types")
    _link_node_modules(tmp_path)  # the same package entry files as web/ itself resolves
    config = _tmp_tsconfig(tmp_path, include=["types", "typecheck"])

    baseline, _ = _tsc(["-p", str(config), "--noEmit"], cwd=tmp_path)
    assert baseline.returncode == 0, f"the copy of web/typecheck does not compile as is:\n{_output(baseline)}"

    copy = tmp_path / "typecheck" / EXPECT_ERRORS.name
    lines = copy.read_text().splitlines()
    expected: dict[int, str] = {}
    for index, line in enumerate(lines):
        m = DIRECTIVE_RE.match(line)
        if m is not None:
            expected[index + 2] = m[2]  # 1-based number of the line the directive covers
            lines[index] = f"{m[1]}// (expected {m[2]}){m[3]}"
        else:
            assert not line.lstrip().startswith("// @ts-expect-error"), (
                f"directive without a TS code: {line.strip()}"
            )
    assert len(expected) >= 10, f"only {len(expected)} @ts-expect-error directives in {EXPECT_ERRORS.name}"
    copy.write_text("\n".join(lines) + "\n")

    result, _ = _tsc(["-p", str(config), "--noEmit"], cwd=tmp_path)
    output = _output(result)
    assert result.returncode != 0, f"with its directives removed, {EXPECT_ERRORS.name} compiled:\n{output}"
    errors = _errors(output)
    elsewhere = [e for e in errors if e[0] != f"typecheck/{EXPECT_ERRORS.name}"]
    assert not elsewhere, f"errors outside {EXPECT_ERRORS.name}:\n{output}"
    found: dict[int, set[str]] = {}
    for _, line, code in errors:
        found.setdefault(line, set()).add(code)
    wrong = {
        line: (code, sorted(found.get(line, set())))
        for line, code in expected.items()
        if code not in found.get(line, set())
    }
    assert not wrong, f"directive lines without their named error (line: (expected, got)): {wrong}\n{output}"
    stray = sorted(set(found) - set(expected))
    assert not stray, f"errors on lines no directive covers: {stray}\n{output}"
