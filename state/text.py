"""CRM text is hostile input: the one place that makes it safe for where it goes.

A CRM value is typed by anybody with edit rights in the CRM, or by a web form.
It must never become a terminal control sequence, rich markup, a spreadsheet
formula, a NUL in a CRM field, or an unbounded copy inside crmsync's own text.
Every layer imports these helpers (a leaf module: standard library only):

    clean_stored(text)     pull: NUL removed, lone surrogates replaced (both connectors)
    clean_fields(values)   the same over a record's values, in place; returns the fields fixed
    for_crm(value)         write: a NUL never goes back to the CRM
    printable(text)        a terminal: control and bidi-override characters removed
    clip(text, limit)      a CRM value quoted inside crmsync's sentences, one line, bounded
    fit(text, limit)       a whole field crmsync writes, bounded to the target's length
    csv_cell(value)        a CSV cell that no spreadsheet runs as a formula (OWASP)
    json_safe(text)        JSON text with C1 and bidi characters as \\u escapes (lossless)
    site_domain(value)     an account's website or domain as the bare domain the rules and
                           the identity links compare

Rich markup is not handled here: sync/ builds rich `Text` objects from
`printable()` text, never markup strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, MutableMapping
from functools import lru_cache
from typing import Any

ELLIPSIS = "\u2026"

# How much of a CRM value crmsync quotes inside its own sentences (explanations,
# contact reasons, task text). Real names and titles are far shorter; a CRM
# accepts 65,536 characters in a HubSpot text property.
NAME_MAX = 100  # a person's name
TITLE_MAX = 100  # a job title
ACCOUNT_MAX = 120  # an account (company) or opportunity name
EMAIL_MAX = 254  # RFC 5321's longest address
DETAIL_MAX = 200  # a mail server's bounce answer and similar free text

# Unicode bidirectional formatting characters: embeddings and overrides
# (U+202A-U+202E), isolates (U+2066-U+2069), marks (U+200E, U+200F, U+061C).
# They reorder what follows them on screen ("Trojan Source", CVE-2021-42574).
BIDI = frozenset([0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])
# Characters that end a line somewhere: shown as a space in a one-line context.
LINE_BREAKS = frozenset([0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029])


def _table(*, keep: str = "") -> dict[int, str | None]:
    """A str.translate table: controls and bidi dropped, breaks and tabs as spaces."""
    table: dict[int, str | None] = {}
    for cp in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), *BIDI]:
        table[cp] = " " if cp in LINE_BREAKS or cp == 0x09 else None
    table[0x2028] = table[0x2029] = " "
    for cp in range(0xD800, 0xE000):  # lone surrogates cannot be encoded: show U+FFFD
        table[cp] = "\ufffd"
    for ch in keep:
        table.pop(ord(ch), None)
    return table


_ONE_LINE = _table()
_LINES = _table(keep="\n")
_CSV = _table(keep="\t\n\r")
_CSV.update({cp: None for cp in LINE_BREAKS if chr(cp) not in "\n\r"})  # \x1c..., NEL: gone
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


# ---------------------------------------------------------------- pull and write


def clean_stored(text: str) -> tuple[str, str | None]:
    """(text, problem): NULs removed and lone surrogates replaced so the value stores
    losslessly in SQLite and can be written back (RELIABILITY X1). `problem` names what
    was done ("NUL removed"), never the value; None when the text was clean."""
    problem = None
    if "\x00" in text:
        text = text.replace("\x00", "")
        problem = "NUL removed"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
            problem = (
                f"{problem} and invalid surrogate replaced"
                if problem
                else ("invalid surrogate replaced")
            )
    return text, problem


def clean_fields(
    values: MutableMapping[str, Any], names: Iterable[str] | None = None
) -> list[tuple[str, str]]:
    """Clean the text values of a record in place; [(field, problem)] for those changed."""
    problems: list[tuple[str, str]] = []
    for key in list(values) if names is None else names:
        value = values.get(key)
        if isinstance(value, str) and ("\x00" in value or not value.isascii()):
            cleaned, problem = clean_stored(value)
            if problem:
                values[key] = cleaned
                problems.append((key, problem))
    return problems


def for_crm(value: Any, limit: int | None = None) -> Any:
    """A value as crmsync writes it: text without NULs, at most `limit` characters."""
    if not isinstance(value, str):
        return value
    text = clean_stored(value)[0]
    return fit(text, limit) if limit else text


# ---------------------------------------------------------------- crmsync's own text


def printable(text: Any, *, newlines: bool = False) -> str:
    """Text a terminal shows as text: C0 and C1 control characters (ESC, hence every
    escape sequence, CSI and OSC 8 hyperlinks), DEL and bidi overrides, isolates and
    marks removed; tabs and line breaks become spaces (with `newlines`, "\\n" stays)."""
    s = text if isinstance(text, str) else ("" if text is None else str(text))
    return s.translate(_LINES if newlines else _ONE_LINE)


def clip(text: Any, limit: int) -> str:
    """A CRM value quoted in a sentence: printable, on one line, at most `limit` characters
    (a longer value ends in an ellipsis)."""
    if type(text) is str:  # names, titles, addresses: quoted again and again in one run
        return _clip_text(text, limit)
    return _clip(text, limit)


def _clip(text: Any, limit: int) -> str:
    one = " ".join(printable(text).split())
    return one if len(one) <= limit else one[: max(limit - 1, 0)].rstrip() + ELLIPSIS


# A few hundred recurring texts (titles, role names) hit; names and summaries are unique and
# only churn through it, so more entries hold memory that grows with the org (bench/README.md).
@lru_cache(maxsize=512)
def _clip_text(text: str, limit: int) -> str:
    return _clip(text, limit)


def fit(text: str, limit: int) -> str:
    """A whole field value bounded to the target field's length, ending in an ellipsis
    when cut. Line breaks are kept (a task body has paragraphs)."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + ELLIPSIS


# ---------------------------------------------------------------- files


def csv_cell(value: Any) -> Any:
    """A CSV cell no spreadsheet runs: text starting with = + - @, tab, CR or LF gets a
    leading single quote (OWASP "CSV Injection"); ESC, C1 and bidi controls are removed.
    Numbers and None pass unchanged."""
    if not isinstance(value, str):
        return value
    text = value.translate(_CSV)
    return "'" + text if text.startswith(FORMULA_START) else text


_JSON_ESCAPES = {cp: f"\\u{cp:04x}" for cp in [0x7F, *range(0x80, 0xA0), *BIDI, 0x2028, 0x2029]}


def json_safe(text: str) -> str:
    """JSON text (from json.dumps) whose strings keep every character, with the controls
    json.dumps leaves raw (DEL, C1, bidi, line separators) written as \\u escapes: a
    JSON reader gets the same data, a terminal shows no control sequence."""
    return text.translate(_JSON_ESCAPES)


@lru_cache(maxsize=512)  # one per account: a bigger cache only churns
def site_domain(value: str | None) -> str | None:
    """`https://www.Acme.com/about` -> `acme.com` (accounts store a website or a domain)."""
    if not value:
        return None
    text = value.strip().lower()
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
    text = re.split(r"[/?#]", text, maxsplit=1)[0]
    text = text.rsplit("@", 1)[-1].split(":", 1)[0].strip(".")
    if text.startswith("www."):
        text = text[4:]
    return text or None
