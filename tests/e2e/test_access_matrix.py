"""The full access matrix (tests/access_matrix.py): every procedure of the table × twelve kinds
of caller (seven people, five kinds of bad or limited token) → the code rpc.md §3 gives, through
the real server. `python -m tests.access_matrix` prints the table the README shows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from rpc.procedures import all_procedures
from tests.access_matrix import (
    CALLER_KINDS,
    SPEC_BY_NAME,
    SPECS,
    Matrix,
    declared_rule_agrees,
    render_table,
    run_matrix,
)
from tests.surface_world import SurfaceWorld, build_world

WIRE = {
    "NOT_FOUND": (-32004, 404),
    "FORBIDDEN": (-32003, 403),
    "UNAUTHORIZED": (-32001, 401),
    "PRECONDITION_FAILED": (-32012, 412),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SurfaceWorld]:
    root: Path = tmp_path_factory.mktemp("access-matrix")
    yield from build_world(root / "data")


@pytest.fixture(scope="module")
def matrix(world: SurfaceWorld) -> Matrix:
    return run_matrix(world)


def test_the_matrix_covers_every_procedure_of_the_table() -> None:
    table = {p.path.removeprefix("gastown."): p for p in all_procedures()}
    assert set(table) == set(SPEC_BY_NAME)
    assert len(SPECS) == len(SPEC_BY_NAME) == len(table)


def test_the_written_expectations_agree_with_the_declared_rules() -> None:
    table = {p.path.removeprefix("gastown."): p for p in all_procedures()}
    disagree = [s.name for s in SPECS if table[s.name].kind != s.kind or not declared_rule_agrees(s, table[s.name])]
    assert not disagree


def test_every_cell_answers_the_expected_code(matrix: Matrix) -> None:
    assert len(matrix.answers) == len(SPECS) * len(CALLER_KINDS) == len(SPECS) * 12
    assert not matrix.wrong(), f"(procedure, caller): (got, expected) {matrix.wrong()}"


def test_no_cell_is_an_internal_error_and_every_error_is_a_proper_envelope(matrix: Matrix) -> None:
    for cell, answer in matrix.answers.items():
        assert answer.code != "INTERNAL_SERVER_ERROR", (cell, answer.body)
        if answer.code == "OK":
            assert answer.status == 200 and set(answer.body) == {"result"}, cell
            continue
        error = answer.body["error"]
        assert (error["code"], error["data"]["httpStatus"]) == WIRE[answer.code], cell
        assert answer.status in (200, error["data"]["httpStatus"]), cell  # 200: inside an SSE stream
        assert error["message"] and "Traceback" not in error["message"], cell


def test_every_kind_of_refusal_occurs(matrix: Matrix) -> None:
    codes = Counter(a.code for a in matrix.answers.values())
    assert set(codes) == {"OK", "NOT_FOUND", "FORBIDDEN", "UNAUTHORIZED", "PRECONDITION_FAILED"}
    assert codes["UNAUTHORIZED"] == 4 * len(SPECS)


def test_the_table_renders_without_a_mark(matrix: Matrix) -> None:
    table = render_table(matrix)
    assert "!" not in table and "getTown" in table and "alg none" in table
