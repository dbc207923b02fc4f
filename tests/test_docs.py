"""The README is a front page (under 150 lines) whose links all lead somewhere; the reference lives in
docs/, each page linked from the README."""

import re
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
README = PROJECT / "README.md"


def links(md: Path) -> list[str]:
    return [l for l in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", md.read_text()) if "://" not in l]


def test_readme_is_a_front_page():
    text = README.read_text()
    assert len(text.splitlines()) < 150
    for must in ("ci/main.sh", "ci/test.sh", "ktest doctor", "summary.md", "docs/report.png", "exit",
                 "undecided (exit 3): checks or metrics still in doubt after `--max-rounds`; not green",
                 "GitHub Actions"):
        assert must in text, must


def test_every_link_in_readme_and_docs_resolves():
    pages = [README, *sorted((PROJECT / "docs").glob("*.md"))]
    for page in pages:
        for target in links(page):
            assert (page.parent / target).exists(), f"{page.name} links {target}, which does not exist"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(PROJECT / l).resolve() for l in links(README)}
    for page in (PROJECT / "docs").glob("*.md"):
        assert page.resolve() in linked, f"docs/{page.name} is not linked from README.md"
