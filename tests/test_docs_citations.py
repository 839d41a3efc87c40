"""Every id the code cites resolves in docs/ (docs/ is the source of truth).

Pure text scans of the repository's files; nothing is imported or run.

1. API facts. A citation is written `api-facts §N` (a range `api-facts §N-§M`
   cites each section from N to M). docs/api-facts.md must have a heading
   `## §N. <title>` for each cited N: that heading format is the one this test
   reads. The headings are numbered 1, 2, 3 ... once each, so a number never
   changes meaning.
2. No file cites the old notes outside the repository: no `crm-api-notes`, no
   `API notes §`, no `api-facts.md §` (write `api-facts §N`), and no absolute
   path to a notes file (e.g. `/work/....md`).
3. Fault-matrix ids (docs/reliability.md: a letter and a number, R3, P6, W9 ...;
   docs/budgets.md cites the same ids). The letters are the ones the matrix's
   rows use. Every id cited outside tests/ must appear in docs/; there, any
   letter-and-number token of those letters is a citation. In tests/, where
   records are named A1, O9 ... in fixtures, only citation forms count: a
   test named `test_<id>_...`, and, in comments and docstrings (not other
   strings), an id right after `(` or `/` or right before `)`, `,`, `;`, `:`,
   `/`, `'s` or the end of the comment.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FACTS = DOCS / "api-facts.md"
SELF = Path(__file__).resolve()

SUFFIXES = {".py", ".md", ".toml", ".txt", ".cfg", ".ini", ".sh", ".yml", ".yaml"}
NAMES = {"Makefile", "Dockerfile"}
SKIP_DIRS = {"__pycache__", "build", "dist", "demo-out", "node_modules"}

CITATION = re.compile(r"api-facts(?:\.md)?\s*§(\d+)(?:\s*-\s*§?(\d+))?")
HEADING = re.compile(r"^## §(\d+)\. \S", re.MULTILINE)
FORBIDDEN = {
    "crm-api-notes": re.compile(r"crm-api-notes"),
    "API notes §": re.compile(r"API notes\s*§"),
    "api-facts.md §": re.compile(r"api-facts\.md\s*§"),
    "absolute path to notes": re.compile(
        r"(?<![\w.~-])/(?:work|home|Users|tmp|root|mnt)/\S*\.md\b"
    ),
}


def _files() -> Iterator[Path]:
    """The repository's text files (no virtualenvs, VCS or build output)."""
    stack = [ROOT]
    while stack:
        d = stack.pop()
        for p in sorted(d.iterdir()):
            if p.is_dir():
                if (
                    not p.name.startswith(".")
                    and p.name not in SKIP_DIRS
                    and not p.name.endswith(".egg-info")
                ):
                    stack.append(p)
            elif (p.suffix in SUFFIXES or p.name in NAMES) and p.resolve() != SELF:
                yield p


@cache
def _texts() -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8", errors="replace") for p in _files()}


def _where(path: Path, text: str, pos: int) -> str:
    return f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, pos) + 1}"


# ---------------------------------------------------------------- api-facts §N


def _headings() -> list[int]:
    return [int(n) for n in HEADING.findall(FACTS.read_text(encoding="utf-8"))]


def test_api_facts_headings_are_numbered_once_each_in_order() -> None:
    numbers = _headings()
    assert numbers, f"{FACTS} has no '## §N. <title>' heading"
    assert numbers == list(range(1, len(numbers) + 1)), numbers


def test_every_cited_api_facts_section_has_a_heading() -> None:
    have = set(_headings())
    missing = []
    cited = 0
    for path, text in _texts().items():
        for m in CITATION.finditer(text):
            first = int(m.group(1))
            last = int(m.group(2) or first)
            for n in range(first, last + 1):
                cited += 1
                if n not in have:
                    missing.append(f"{_where(path, text, m.start())}: api-facts §{n}")
    assert cited, "no api-facts citation found: is the scan looking at the repository?"
    assert not missing, "cited sections without a '## §N.' heading in docs/api-facts.md:\n" + (
        "\n".join(missing)
    )


def test_nothing_cites_notes_outside_the_repository() -> None:
    found = [
        f"{_where(path, text, m.start())}: {what}: {m.group(0)!r}"
        for path, text in _texts().items()
        for what, pattern in FORBIDDEN.items()
        for m in pattern.finditer(text)
    ]
    assert not found, "cite docs/api-facts.md as 'api-facts §N' instead:\n" + "\n".join(found)


# ---------------------------------------------------------------- fault-matrix ids


@cache
def _letters() -> str:
    rows = re.findall(
        r"^\|\s*([A-Z])\d+\s*\|",
        (DOCS / "reliability.md").read_text(encoding="utf-8"),
        re.MULTILINE,
    )
    assert rows, "docs/reliability.md has no '| X1 |' rows"
    return "".join(sorted(set(rows)))


def _id_pattern() -> re.Pattern[str]:
    return re.compile(rf"(?<![\w.\-/#@])([{_letters()}]\d{{1,2}})(?![\w])")


def _documented() -> set[str]:
    pattern = _id_pattern()
    return {
        m.group(1)
        for p in DOCS.glob("*.md")
        for m in pattern.finditer(p.read_text(encoding="utf-8"))
    }


def _test_citations(path: Path, text: str) -> Iterator[tuple[str, int]]:
    """(id, offset) of the ids a test file cites, in the citation forms only."""
    letters = _letters()
    for m in re.finditer(rf"\bdef test_([{letters.lower()}]\d{{1,2}})_", text):
        yield m.group(1).upper(), m.start()
    cite = re.compile(
        rf"(?:(?<=[(/])([{letters}]\d{{1,2}})(?!\w))"
        rf"|(?:(?<![\w.\-/#@])([{letters}]\d{{1,2}})(?=[),;:/]|'s\b|\s*$))"
    )
    for chunk, offset in _prose(text):
        for m in cite.finditer(chunk):
            yield (m.group(1) or m.group(2)), offset + m.start()


def _prose(text: str) -> Iterator[tuple[str, int]]:
    """Comments and docstrings of a Python file, with their offsets in it."""
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    docstrings: set[tuple[int, int]] = set()
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docstrings.add((value.lineno, value.col_offset))
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        row, col = tok.start
        if tok.type == tokenize.COMMENT or (
            tok.type == tokenize.STRING and (row, col) in docstrings
        ):
            offset = starts[row - 1] + col
            for line in tok.string.split("\n"):
                yield line, offset
                offset += len(line) + 1


def test_every_cited_fault_matrix_id_is_in_docs() -> None:
    documented = _documented()
    assert {"R3", "P6", "W9"} <= documented, sorted(documented)
    pattern = _id_pattern()
    missing = []
    for path, text in _texts().items():
        rel = path.relative_to(ROOT)
        if rel.parts[0] == "docs":
            continue
        if rel.parts[0] == "tests":
            if path.suffix != ".py":
                continue
            found: Iterator[tuple[str, int]] = _test_citations(path, text)
        else:
            found = ((m.group(1), m.start()) for m in pattern.finditer(text))
        missing += [f"{_where(path, text, pos)}: {i}" for i, pos in found if i not in documented]
    assert not missing, "fault-matrix ids cited but not in docs/:\n" + "\n".join(missing)
