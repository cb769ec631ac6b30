"""docs/compliance.md stays complete and honest (issue 5, item 13).

The table must list every clause id of the agreement exactly once. A clause the table
marks ``tested`` or ``partial`` must be cited by at least one test in tests/ (its id in
a test name, docstring or comment, dotted ``A10.3`` or underscored ``A10_3``, or in the
``desc`` of a vector file), and every test file the row names must exist and cite it.
Clauses marked ``not yet`` or ``organisational`` are exempt until someone flips them.
Every ``path.py`` and ``path.py::name`` the "Enforced where" column names must exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
DOC = ROOT / "docs" / "compliance.md"

# Every requirement id of ../shared/AGREEMENT.md, in its order. Copied here so that
# this test needs nothing outside the repository.
CLAUSES = (
    "A1", "A2.1", "A2.2", "A3.1", "A3.2", "A4", "A5", "A6.1", "A6.2", "A7", "A8.1", "A8.2",
    "A9.1", "A9.2", "A9.3", "A9.4", "A9.5", "A10.1", "A10.2", "A10.3", "A10.4", "A11.1",
    "A11.2", "A11.3", "A11.4", "A11.5", "A12", "A13", "A14", "A15", "A16", "A17",
)
NEEDS_A_TEST = {"tested", "partial"}
STATUSES = NEEDS_A_TEST | {"not yet", "organisational"}


@dataclass(frozen=True)
class Row:
    clause: str
    status: str
    where: str
    tests: tuple[str, ...]


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_table(text: str) -> list[Row]:
    """The rows of the table whose header starts ``| Clause | Status |``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if cells(line)[:2] == ["Clause", "Status"])
    header = cells(lines[start])
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        row = dict(zip(header, cells(line), strict=True))
        rows.append(Row(row["Clause"].strip("`*"), row["Status"].strip("`*").lower(),
                        row["Enforced where"],
                        tuple(re.findall(r"[\w/.-]+\.(?:py|json)\b", row["Tests"]))))
    return rows


def citation(clause: str) -> re.Pattern[str]:
    """``A10.3`` or ``A10_3`` as a whole id: not inside ``A10.31``, ``A110.3`` or
    ``BA10.3``; an underscore may precede it (``test_deadline_A10_3``)."""
    number = re.escape(clause[1:]).replace(r"\.", "[._]")
    return re.compile(rf"(?<![A-Za-z0-9.])A{number}(?![0-9]|[._][0-9])")


def read_test_texts() -> dict[str, str]:
    """Every test module (except this one, which lists every id) and every vector file."""
    paths = [p for p in TESTS.rglob("test_*.py") if p.name != Path(__file__).name]
    paths += list((TESTS / "vectors").rglob("*.json"))
    return {p.relative_to(TESTS).as_posix(): p.read_text(encoding="utf-8") for p in paths}


ROWS = parse_table(DOC.read_text(encoding="utf-8"))
BY_CLAUSE = {row.clause: row for row in ROWS}
TEXTS = read_test_texts()
# Clauses the table says are enforced and tested; an absent one fails the test above.
CLAIMED = [c for c in CLAUSES if c in BY_CLAUSE and BY_CLAUSE[c].status in NEEDS_A_TEST]


def citing(clause: str) -> list[str]:
    pattern = citation(clause)
    return sorted(name for name, text in TEXTS.items() if pattern.search(text))


def test_the_citation_pattern() -> None:
    a10_3, a1 = citation("A10.3"), citation("A1")
    for text in ("A10.3", "(A10.3)", "test_deadline_A10_3", "A10_3_and", "A10.3: day 0"):
        assert a10_3.search(text), text
    for text in ("A10.31", "A10_31", "A110.3", "BA10.3", "A10.3.1", "A10-3"):
        assert not a10_3.search(text), text
    assert a1.search("A1 scope") and a1.search("test_scope_A1")
    for text in ("A11", "A1.2", "A12", "A10.3", "A1_2"):
        assert not a1.search(text), text


def test_every_clause_is_in_the_table_once() -> None:
    """(a) a clause id of AGREEMENT.md missing from the table fails."""
    found = [row.clause for row in ROWS]
    assert [c for c in CLAUSES if c not in found] == [], "clauses missing from the table"
    assert [c for c in found if c not in CLAUSES] == [], "ids that are not clauses"
    assert len(found) == len(set(found)), "a clause listed twice"
    assert found == list(CLAUSES), "rows not in the agreement's order"


def test_status_is_one_of_the_four() -> None:
    assert {row.clause: row.status for row in ROWS if row.status not in STATUSES} == {}


@pytest.mark.parametrize("clause", CLAIMED)
def test_a_tested_clause_has_a_test_citing_it(clause: str) -> None:
    """(b) a clause marked tested or partial must be cited by a test in tests/."""
    assert citing(clause), f"{clause} is marked {BY_CLAUSE[clause].status} but no test " \
        "cites it"


@pytest.mark.parametrize("clause", CLAIMED)
def test_the_tests_named_in_a_row_exist_and_cite_it(clause: str) -> None:
    """The Tests column is a claim: each file it names exists and cites the clause."""
    row = BY_CLAUSE[clause]
    assert row.tests, f"{clause} is marked {row.status} but its row names no test"
    for name in row.tests:
        path = TESTS / name
        assert path.is_file(), f"{clause}: {name} does not exist"
        assert citation(clause).search(path.read_text(encoding="utf-8")), \
            f"{clause}: {name} does not cite {clause}"


def defines(text: str, name: str) -> bool:
    return re.search(rf"^\s*(?:async\s+def|def|class)\s+{re.escape(name)}\b|"
                     rf"^\s*{re.escape(name)}\s*(?::[^=]*)?=", text, re.MULTILINE) is not None


@pytest.mark.parametrize("row", ROWS, ids=[row.clause for row in ROWS])
def test_the_code_named_in_a_row_exists(row: Row) -> None:
    """The "Enforced where" column is a claim too: ``path.py`` and ``path.py::Name`` or
    ``path.py::Class.method`` must exist."""
    clause = row.clause
    for path_text, names in re.findall(r"`([\w/]+\.py)(?:::([\w.]+))?`", row.where):
        path = ROOT / path_text
        assert path.is_file(), f"{clause}: {path_text} does not exist"
        text = path.read_text(encoding="utf-8")
        for name in filter(None, names.split(".")):
            assert defines(text, name), f"{clause}: {path_text} defines no {name}"
