"""report.html in a real headless Chromium: one page, the headline table first, every plot loaded.

Skipped where no Chromium is installed (`apt-get install -y chromium`; `make test` installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fa_compress.report import write_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
BROWSER = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason=f"no headless browser ({', '.join(BROWSERS)}) installed; "
                                                         "apt-get install -y chromium")
# Flags that work as root on a machine without network or GPU (see the project's machine notes).
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars")
WINDOW = (1280, 2400)
# Appended to a copy of the page: after load, records whether every image decoded, for --dump-dom to show.
PROBE = """<script>window.addEventListener("load", () => {
  const imgs = [...document.images];
  document.body.dataset.images = imgs.length;
  document.body.dataset.decoded = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
});</script>"""


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    profile.mkdir()
    return subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture(scope="module")
def page(report_for_browser, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("html")
    write_report(folder, report_for_browser, gate_values={"stride 2": [0.1, 0.9, 1.0, 1.2] * 10})
    return folder / "report.html"


@pytest.fixture(scope="module")
def report_for_browser():
    from tests.report.conftest import sample_report

    return sample_report()


def test_the_page_renders_tables_first_and_every_plot_loads(page, tmp_path):
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    result = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    tables = re.findall(r'<table id="([^"]+)"', dom)
    assert tables[0] == "headline" and {"artifacts", "latency", "environment"} <= set(tables)
    first_h2 = re.search(r"<h2>([^<]+)</h2>", dom).group(1)
    assert first_h2 == "Headline"  # the headline table opens the page
    assert dom.index('id="headline"') < dom.index("Too noisy for a figure") < dom.index('id="artifacts"')
    body = re.search(r'<body[^>]*data-images="(\d+)"[^>]*data-decoded="(\d+)"', dom)
    assert body is not None, "the load probe did not run"
    images, decoded = map(int, body.groups())
    assert images == 4 and decoded == images  # accuracy/latency, ratios, size/MACs, gates: all decoded


def test_the_screenshot_shows_a_page_not_a_blank(page, tmp_path):
    from PIL import Image

    shot = tmp_path / "report.png"
    result = _chromium(tmp_path, f"--screenshot={shot}", f"--window-size={WINDOW[0]},{WINDOW[1]}", page.as_uri())
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == WINDOW
    pixels = np.asarray(image.resize((320, 600)))  # (H, W, 3)
    assert (pixels.min(axis=2) < 235).mean() > 0.03  # text, table borders and plots, not an empty page
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100  # many colours: the plots were painted
    top = np.asarray(image.crop((0, 0, WINDOW[0], 600)))  # (600, W, 3): title and headline table
    assert (top.min(axis=2) < 200).mean() > 0.01
