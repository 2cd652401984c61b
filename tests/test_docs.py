"""The user-facing docs stay true: links resolve, named CLI commands and flags exist, the README stays short."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from openjepa.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]
SETUP_COMMANDS = (
    "scripts/setup.sh && .venv/bin/openjepa demo",
    "scripts/setup.sh && .venv/bin/python -m pytest tests",
)
README_MAX_LINES = 250

LINK = re.compile(r"\]\(([^)\s]+)\)")  # [text](target) and ![alt](target); the text may span lines
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
HEADING = re.compile(r"^#{1,6} (.+)$", re.M)
INLINE = re.compile(r"`([^`\n]+)`")
COMMAND = re.compile(r"(?:^|[\s$])(?:\.venv/bin/)?openjepa\s+(.*)$")  # `openjepa ...`, `-m openjepa ...`
WORD = re.compile(r"[a-z][a-z_]*$")  # a real command name, not a placeholder such as SUITE or CONFIG.yaml
WITH_SUB = ("bench", "data")  # commands whose first argument picks a suite / subcommand


def _relative_links(path: Path) -> list[str]:
    return [t for t in LINK.findall(path.read_text()) if not re.match(r"[a-z]+:|#", t)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_files(doc):
    assert doc.is_file(), f"{doc} is missing"
    links = _relative_links(doc)
    broken = [t for t in links if not (doc.parent / t.split("#", 1)[0]).exists()]
    assert not broken, f"{doc.relative_to(ROOT)}: links to missing files: {broken}"


def _anchors(path: Path) -> set[str]:
    """GitHub's heading slugs (lower case, punctuation dropped, spaces to hyphens) plus explicit id= anchors."""
    text = FENCE.sub("", path.read_text())
    slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in HEADING.findall(text)}
    return slugs | set(re.findall(r'id="([^"]+)"', text))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_anchors_exist(doc):
    missing = []
    for link in LINK.findall(doc.read_text()):
        target, _, anchor = link.partition("#")
        if anchor and not re.match(r"[a-z]+:", target):
            page = doc.parent / target if target else doc
            if page.suffix == ".md" and anchor not in _anchors(page):
                missing.append(link)
    assert not missing, f"{doc.relative_to(ROOT)}: links to missing sections: {missing}"


def test_link_check_sees_links():
    """The link pattern finds the README's picture and its docs links, so the check above is not vacuous."""
    links = _relative_links(README)
    assert any(t.endswith(".png") for t in links)
    assert any(t.startswith("docs/") for t in links)
    assert {"current-results", "your-own-videos"} <= _anchors(ROOT / "docs" / "video-physics.md")


def _command_lines(text: str) -> list[str]:
    """Every `openjepa ...` invocation written in a fenced code block or an inline code span."""
    blocks = [b.replace("\\\n", " ") for b in FENCE.findall(text)]
    lines = [line for b in blocks for line in b.splitlines()]
    lines += INLINE.findall(FENCE.sub("", text))
    found = []
    for line in lines:
        m = COMMAND.search(line.split("  #", 1)[0])
        if m:
            found.append(m.group(1).strip())
    return found


def _invocation(args: str) -> tuple[str, ...]:
    words = args.split()
    if not words or not WORD.match(words[0]):
        return ()
    if words[0] in WITH_SUB and len(words) > 1 and WORD.match(words[1]):
        return (words[0], words[1])
    return (words[0],)


def _flags(args: str) -> set[str]:
    """Option names used on a command line (config overrides --section.key=value excluded)."""
    names = {w.strip("[]|,").split("=", 1)[0] for w in args.split() if w.lstrip("[").startswith("--")}
    return {n for n in names if "." not in n and n != "--"}


def _command_lines_of(doc: Path) -> list[tuple[str, ...]]:
    return [inv for inv in map(_invocation, _command_lines(doc.read_text())) if inv]


def _documented_commands() -> dict[tuple[str, ...], set[str]]:
    commands: dict[tuple[str, ...], set[str]] = {}
    for doc in DOCS:
        for args in _command_lines(doc.read_text()):
            if inv := _invocation(args):
                commands.setdefault(inv, set()).update(_flags(args))
    return commands


def _help(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0, f"openjepa {' '.join(argv)} --help exited with {exit_info.value.code}"
    return out.getvalue()


def test_readme_names_the_main_commands():
    """The README's tour covers the CLI's commands (guards the command extraction as much as the README)."""
    named = {inv[0] for inv in _command_lines_of(README)}
    assert {"demo", "train", "eval", "export", "embed", "surprise", "data", "plan", "bench"} <= named



def test_documented_commands_have_help_and_their_flags_exist():
    commands = _documented_commands()
    assert ("bench", "physics") in commands and ("data", "collect") in commands
    problems = []
    for inv, flags in sorted(commands.items()):
        text = _help(list(inv))
        missing = sorted(f for f in flags if not re.search(re.escape(f) + r"(?![\w-])", text))
        if missing:
            problems.append(f"openjepa {' '.join(inv)}: {missing} not in --help")
    assert not problems, "; ".join(problems)


def test_unknown_command_fails_help():
    """The help check can fail: a command that does not exist does not exit 0."""
    with pytest.raises(AssertionError):
        _help(["no_such_command"])


def test_readme_is_short_and_opens_with_the_setup_commands():
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    first_block = FENCE.search(text)
    assert first_block is not None
    assert "\n## " not in text[: first_block.start()], "the set-up commands come before any section"
    lines = first_block.group(1).splitlines()
    assert len(lines) == len(SETUP_COMMANDS)
    for line, command in zip(lines, SETUP_COMMANDS):
        assert line.startswith(command + " "), f"README set-up line changed: {line!r}"


def _architecture_names() -> tuple[set[str], set[str]]:
    """Module paths (`x.py`, `x/`) and registry names (`METHODS` ...) that docs/architecture.md mentions in code spans."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    spans = re.findall(r"`([^`]+)`", text)
    paths = {s for s in spans if re.fullmatch(r"[a-z_/]+(\.py|/)", s)}
    registries = {s for s in spans if re.fullmatch(r"[A-Z_]{4,}", s)}
    return paths, registries


def test_architecture_map_names_real_modules_and_registries():
    """Every module or folder the map names exists in the package (by its path in the package, or as the end of
    one: `vit.py` in the models row), or in the repository (`tests/...`); every registry it names is defined at
    module level somewhere in the package."""
    pkg = ROOT / "src" / "openjepa"
    paths, registries = _architecture_names()
    assert len(paths) > 30 and {"METHODS", "DATASETS", "ENCODERS", "ENVS", "SUITES", "PLANNERS"} <= registries
    every = {p.relative_to(pkg).as_posix() for p in pkg.rglob("*.py")}
    every |= {p.relative_to(pkg).as_posix() + "/" for p in pkg.rglob("*") if p.is_dir()}
    missing = [p for p in sorted(paths) if p not in every and not any(e.endswith("/" + p) for e in every)
               and not (ROOT / p).exists()]
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"
    source = "\n".join(p.read_text() for p in pkg.rglob("*.py"))
    undefined = [r for r in sorted(registries) if not re.search(rf"^{r}\b[^=\n]*=", source, re.M)]
    assert not undefined, f"docs/architecture.md names registries that are not defined: {undefined}"
