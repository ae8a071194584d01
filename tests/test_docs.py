"""The documents a user reads: every relative link in them points at something that exists.

Covers README.md, the shipped model card and docs/*.md. A link to another Markdown file with a
#fragment must name a heading of that file (GitHub's anchor rule); links with a scheme
(https:, mailto:) are not followed. Links inside code blocks and inline code are not links.
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted(
    [ROOT / "README.md", ROOT / "hrsam_model" / "weights" / "MODEL_CARD.md"]
    + list((ROOT / "docs").glob("*.md"))
)

FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    return LINK.findall(prose(text))


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats."""
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", markdown)):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # a link's text stays
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in found:
            n += 1
            candidate = f"{slug}-{n}"
        found.add(candidate)
    return found


def broken_links(document: Path) -> list[str]:
    problems = []
    for target in links(document.read_text(encoding="utf-8")):
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
            continue
        path_part, _, fragment = unquote(target).partition("#")
        resolved = (document.parent / path_part).resolve() if path_part else document
        if not resolved.exists():
            problems.append(f"{target}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(
                resolved.read_text(encoding="utf-8")):
            problems.append(f"{target}: no heading #{fragment} in {resolved.name}")
    return problems


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_something_that_exists(document):
    problems = broken_links(document)
    assert not problems, f"broken links in {document.relative_to(ROOT)}: " + "; ".join(problems)


def test_the_checker_sees_a_broken_link_and_ignores_code(tmp_path):
    (tmp_path / "there.md").write_text("# A heading (with `code`)\n\ntext\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok too](there.md#a-heading-with-code) [web](https://example.org/x)\n"
        "[gone](missing.md) [bad anchor](there.md#nowhere) `[code](not-a-link.md)`\n"
        "```\n[fenced](also-not-a-link.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(page) == ["missing.md: no such file", "there.md#nowhere: no heading #nowhere in there.md"]


def test_the_documents_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in DOCUMENTS}
    assert {"README.md", "hrsam_model/weights/MODEL_CARD.md", "docs/napari.md"} <= names
