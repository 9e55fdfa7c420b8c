"""The docs' listings of families and datasets hold exactly what the registries hold, so a
family or dataset added to the code cannot be missing from the docs (nor a removed one
linger there)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from neuralab.baselines import BASELINES
from neuralab.data import DATASETS
from neuralab.models import FAMILIES

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _names(classes: tuple, key: str) -> set[str]:
    names = {cls.model_fields[key].default for cls in classes}
    assert len(names) == len(classes) > 0  # a registry to check against, one name each
    return names


FAMILY_NAMES = _names(FAMILIES + BASELINES, "family")
DATASET_NAMES = _names(DATASETS, "name")


def _section(page: str, heading: str) -> str:
    """The text under `heading` (a whole line, e.g. '## models') up to the next heading."""
    lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("#")), len(lines))
    return "\n".join(lines[start:end])


def _listed(page: str, heading: str) -> set[str]:
    """The names in the first column of a CLI listing printed under `heading`: rows start
    with one space and the name; wrapped description lines start with many spaces."""
    block = re.search(r"```\n\$ neuralab \w+\n(.*?)```", _section(page, heading), re.S)
    assert block is not None, f"no listing under {heading} in {page}"
    header, *rows = block.group(1).splitlines()
    return {match.group(1) for row in rows if (match := re.match(r" (\S+)", row))}


def _tabled(page: str, heading: str) -> set[str]:
    """Every backticked name in the first column of the table under `heading` (its
    header row and the `|---|` line below it left out)."""
    table = [line for line in _section(page, heading).splitlines() if line.startswith("|")]
    rows = table[2:]
    assert rows, f"no table under {heading} in {page}"
    return {name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])}


@pytest.mark.parametrize(
    ("page", "heading", "read", "registered"),
    [
        ("cli.md", "## datasets", _listed, DATASET_NAMES),
        ("cli.md", "## models", _listed, FAMILY_NAMES),
        ("configuration.md", "### data.dataset", _tabled, DATASET_NAMES),
        ("configuration.md", "## model", _tabled, FAMILY_NAMES),
    ],
    ids=["cli-datasets", "cli-models", "configuration-datasets", "configuration-models"],
)
def test_docs_list_every_registered_name_and_no_other(page, heading, read, registered):
    documented = read(page, heading)
    assert sorted(registered - documented) == [], f"missing from {page} {heading}"
    assert sorted(documented - registered) == [], f"not registered, yet in {page} {heading}"
