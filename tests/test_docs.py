"""The documentation: the README is a short front door whose relative links all point
at files of the repository, and the MkDocs site (``mkdocs.yml``, ``docs/``) builds in
strict mode, so a broken link between its pages fails."""

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

#: ``[text](target)`` and ``![alt](target "title")``; reference definitions ``[x]: target``
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)


def readme_links() -> list[str]:
    """Returns every link target of the README outside fenced code blocks."""
    text = FENCE.sub("", README.read_text(encoding="utf-8"))
    return INLINE_LINK.findall(text) + REF_LINK.findall(text)


def test_readme_is_a_short_front_door():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n < 200, f"README.md has {n} lines; the reference belongs in docs/"


def test_readme_relative_links_point_at_files():
    links = readme_links()
    assert any(t.startswith("docs/") for t in links), "the README links no docs page"
    broken = []
    for target in links:
        parts = urlsplit(target)
        if parts.scheme or parts.netloc or not parts.path:     # URLs, mailto:, #anchors
            continue
        if not (ROOT / unquote(parts.path)).exists():
            broken.append(target)
    assert not broken, f"README.md links to missing files: {broken}"


def test_mkdocs_site_builds_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[docs]')")
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
         "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (site / "index.html").is_file()
    assert (site / "bench-schema" / "index.html").is_file(), "docs/bench-schema.md unreachable"
