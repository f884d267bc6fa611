"""Every `humanlike ...` command the README and the docs/ pages show parses as written, and every sweep file they
pass to `sweep run` is a sweep file that validates (a training config there is an error a newcomer would hit)."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _commands():
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
            for line in block.splitlines():
                line = line.split("  #")[0].strip().rstrip("\\").strip()
                found = re.search(r"(?:^|\s)(?:humanlike|-m search\.cli)\s+(.*)$", line)
                if found:
                    yield pytest.param(found.group(1), id=f"{page.name}: {found.group(1)[:60]}")


@pytest.mark.parametrize("command", list(_commands()))
def test_documented_commands_parse_and_name_sweep_files(command, monkeypatch):
    from search.cli import build_parser
    from search.spec import sweep_from_dict
    from models.yamlfile import load_yaml

    monkeypatch.chdir(REPO)
    args = build_parser().parse_args(shlex.split(command.replace("$RAY_HEAD_IP", "10.0.0.1")))
    sweep_file = getattr(args, "sweep_file", None)
    if sweep_file:
        raw = load_yaml((REPO / sweep_file).read_text())
        raw.setdefault("name", Path(sweep_file).stem)
        sweep_from_dict(raw, check_data=False)  # a training config here fails: no search, no n_trials
