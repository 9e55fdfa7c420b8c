"""report.html: self-contained (no external resources), every embedded image decodes."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser

import pytest
from PIL import Image

import neuralab
from neuralab.api import report
from tests.conftest import tiny_experiment


class Page(HTMLParser):
    """Collects headings, image sources and any external reference."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.external: list[str] = []
        self.headings: list[str] = []
        self._in_heading = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "img":
            self.images.append(attributes["src"])
        for key in ("src", "href"):
            value = attributes.get(key, "")
            if value.startswith(("http:", "https:", "//")) or tag in ("script", "link"):
                self.external.append(value or tag)
        self._in_heading = tag in ("h1", "h2", "h3")

    def handle_data(self, data):
        if self._in_heading and data.strip():
            self.headings.append(data.strip())

    def handle_endtag(self, tag):
        self._in_heading = False


def parse(path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    assert page.external == []
    for source in page.images:
        assert source.startswith("data:image/png;base64,")
        Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).verify()
    return page


def test_classification_report(tmp_path):
    run = neuralab.train(tiny_experiment(train={"epochs": 3}), out=tmp_path)
    page = parse(run.path / "report.html")
    for heading in (
        "Results",
        "Data",
        "Class balance",
        "Learning curves",
        "Test errors",
        "Per class",
        "Most confidently wrong test samples",
        "Training health",
        "Config",
    ):
        assert heading in page.headings
    assert len(page.images) >= 4  # curves, confusion, mistakes, gradient norms


@pytest.mark.parametrize(
    "spec",
    [
        {"data": {"dataset": "sine"}, "model": {"family": "mlp", "hidden_sizes": [8]}},
        {"data": {"dataset": "moons"}, "model": {"family": "logreg"}},
    ],
    ids=["regression", "baseline"],
)
def test_other_reports(tmp_path, spec):
    run = neuralab.train(tiny_experiment(**spec), out=tmp_path)
    page = parse(run.path / "report.html")
    assert "Results" in page.headings


def test_report_command_rewrites_it(tmp_path, run_cli):
    run = neuralab.train(tiny_experiment(train={"epochs": 1}), out=tmp_path)
    (run.path / "report.html").unlink()
    assert report(run.path) == run.path / "report.html"
    code, out, _ = run_cli("report", str(run.path))
    assert code == 0
    assert "report.html" in out
    parse(run.path / "report.html")


def test_comparison_report_links_every_run(tmp_path):
    comparison = neuralab.compare(
        tiny_experiment(train={"epochs": 1}), models=["logreg", "mlp"], seeds=1, out=tmp_path
    )
    text = (comparison.path / "report.html").read_text()
    parse(comparison.path / "report.html")
    for runs in comparison.runs.values():
        assert f"runs/{runs[0].path.name}/report.html" in text
        assert (runs[0].path / "report.html").is_file()
