"""The HTML reports as a reader sees them: rendered by headless Chromium, every image decoded,
and a screenshot that is not blank. CI installs Debian's chromium (.ci/run) and sets
PERFSUITE_REQUIRE_BROWSER=1, so there a missing browser fails; elsewhere the tests skip, saying
so, unless PERFSUITE_CHROMIUM names a Chromium binary."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch  # noqa: F401  (imported before pytester's runs change the environment)
from tiny_models import TINY_CONFIG

from perfsuite.cli import main

REPO = Path(__file__).resolve().parents[3]
CHROMIUM_ENV = "PERFSUITE_CHROMIUM"
REQUIRE_ENV = "PERFSUITE_REQUIRE_BROWSER"  # .ci/run sets it: there a missing Chromium fails
# Counts the page's images and those the browser decoded, once everything has loaded.
PROBE = ('<script>window.addEventListener("load", () => { const all = [...document.images]; '
         'document.body.dataset.images = all.length + ":" + all.filter(i => i.complete && '
         'i.naturalWidth > 0).length; });</script>')


def chromium() -> str:
    found = os.environ.get(CHROMIUM_ENV) or next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if not found and os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"no Chromium on PATH and {REQUIRE_ENV}=1 (CI): the reports must be looked "
                    "at in a browser; apt-get install chromium", pytrace=False)
    if not found:
        pytest.skip(f"no Chromium on PATH (apt-get install chromium, or set {CHROMIUM_ENV}); "
                    "the HTML reports' structure is still tested in test_reports.py")
    return found


def browse(browser: str, page: Path, *args: str) -> str:
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--virtual-time-budget=10000", *args,
                           page.as_uri()], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def images_loaded(browser: str, page: Path) -> tuple[int, int]:
    """(images on the page, images decoded) after the page loaded in Chromium."""
    probe = page.with_name(f"probe-{page.name}")
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    found = re.search(r'data-images="(\d+):(\d+)"', browse(browser, probe, "--dump-dom"))
    assert found, "the page did not finish loading"
    return int(found.group(1)), int(found.group(2))


def screenshot(browser: str, page: Path, out: Path) -> None:
    browse(browser, page, "--window-size=1280,2000", f"--screenshot={out}")
    from matplotlib.image import imread

    pixels = imread(out)
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels[..., :3].std() > 0.05, "the screenshot is blank"
    assert (pixels[..., :3].min(axis=2) < 0.5).mean() > 0.01, "next to nothing was drawn"


@pytest.fixture(scope="module")
def browser() -> str:
    return chromium()


@pytest.fixture(scope="module")
def reports(browser, tmp_path_factory) -> dict[str, Path]:
    """A tiny run's HTML report, and the page merging its results with another machine's."""
    root = tmp_path_factory.mktemp("browser")
    (root / "pyproject.toml").write_text(TINY_CONFIG)
    shutil.copy(REPO / "tests" / "tiny_models.py", root / "tiny_models.py")
    env = {**os.environ, "PERFSUITE_CACHE_DIR": str(root / "cache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "--perf-report=report.html", "--benchmark-json=a.json", "--perf-machine-key=box-a"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-3000:]
    other = json.loads((root / "a.json").read_text())
    other["machine_info"]["perfsuite"]["machine_key"] = "box-b"
    (root / "b.json").write_text(json.dumps(other))
    assert main(["merge", str(root / "a.json"), str(root / "b.json"),
                 "--out", str(root / "merged.html")]) == 0
    return {"run": root / "report.html", "merged": root / "merged.html"}


@pytest.mark.parametrize(("name", "images"), [("run", 3), ("merged", 2)])
def test_chromium_renders_the_report_with_its_plots(browser, reports, tmp_path, name, images):
    assert images_loaded(browser, reports[name]) == (images, images)
    screenshot(browser, reports[name], tmp_path / f"{name}.png")


def test_the_image_check_catches_a_broken_plot(browser, reports, tmp_path):
    text = reports["run"].read_text()
    broken = tmp_path / "broken.html"
    broken.write_text(text.replace("data:image/png;base64,iVBOR", "data:image/png;base64,AAAA", 1))
    assert images_loaded(browser, broken) == (3, 2)
