"""The playground page in a real browser: headless Chromium (Debian's chromium +
chromium-driver) driven by selenium against a real server.

The page's script must fill the model list and replace the image when a
control moves: a broken script can do neither, so these tests fail with it.
The grid on screen is decoded from the page itself (the <img> drawn into a
canvas) and judged by the project's MNIST classifier.
"""

from __future__ import annotations

import io
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from ..conftest import BIN
from .conftest import call

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# Without these, Chromium stalls on a machine with no network (it tries to reach Google services).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1100,1300",
]
PAD = 2

# The <img> as the browser decoded it: its pixels (red channel; the grids are grey), read back through a canvas.
READ_PIXELS = """
const img = document.getElementById(arguments[0]);
const canvas = document.createElement("canvas");
canvas.width = img.naturalWidth;
canvas.height = img.naturalHeight;
const ctx = canvas.getContext("2d");
ctx.drawImage(img, 0, 0);
const rgba = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
const red = [];
for (let i = 0; i < rgba.length; i += 4) red.push(rgba[i]);
return [canvas.width, canvas.height, red];
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(
            "chromium and chromedriver are not installed "
            "(Debian: apt-get install chromium chromium-driver; `make test` installs them as root)"
        )
    options = Options()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path_factory.getbasetemp())
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def _wait(driver, predicate, what: str, timeout: float = 30):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: predicate(d))
    except TimeoutException:
        logs = [e["message"] for e in driver.get_log("browser")]
        pytest.fail(f"timed out waiting for {what}; browser console: {logs}")


def _shown(driver, which: str) -> tuple[str, str]:
    """(src, path) of a figure's image once it is loaded and its figure says ready."""
    return driver.execute_script(
        f"const img = document.getElementById('{which}');"
        "return img.complete && img.naturalWidth > 0 && img.closest('figure').dataset.state === 'ready'"
        " ? [img.src, img.dataset.path] : null;"
    )


def _pixels(driver, which: str) -> np.ndarray:
    width, height, red = driver.execute_script(READ_PIXELS, which)
    return np.asarray(red, dtype=np.uint8).reshape(height, width)


def _cells(grid: np.ndarray, n: int, size: int = 28) -> np.ndarray:
    """The n images of a make_grid grid (row-major, ``PAD`` pixels around each), as (n, size, size)."""
    cols = (grid.shape[1] - PAD) // (size + PAD)
    out = []
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = PAD + r * (size + PAD), PAD + c * (size + PAD)
        out.append(grid[y : y + size, x : x + size])
    return np.stack(out)


def test_playground_draws_sevens_and_a_moved_slider_changes_the_grid(browser, http_server, tmp_path: Path) -> None:
    started = time.monotonic()
    classifier = pytest.importorskip("gan_training.classifier", reason="the training extra (torch) is not installed")
    models = call(http_server.http_url + "/v1/models").json()["models"]
    browser.get(http_server.http_url + "/")

    # The script filled the model list from /v1/models.
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-models"), "the model list")
    options = [o.get_attribute("value") for o in Select(browser.find_element(By.ID, "model")).options]
    assert options == [m["name"] for m in models]

    Select(browser.find_element(By.ID, "model")).select_by_value("infogan")
    Select(browser.find_element(By.ID, "digit")).select_by_value("7")
    src, path = _wait(browser, lambda d: (s := _shown(d, "sample")) and "digit=7" in s[1] and s, "the grid of sevens")
    before = _pixels(browser, "sample")

    # Move the first continuous-code slider with the keyboard, as a user would.
    slider = browser.find_element(By.ID, "code-0")
    start_value = float(slider.get_attribute("value"))
    slider.send_keys(Keys.ARROW_RIGHT * 6)
    moved = float(slider.get_attribute("value"))
    assert moved > start_value
    src2, path2 = _wait(
        browser, lambda d: (s := _shown(d, "sample")) and s[0] != src and f"code={moved:g}" in s[1] and s, "a new grid"
    )
    assert path2 != path
    after = _pixels(browser, "sample")
    assert after.shape == before.shape == (4 * 30 + PAD, 4 * 30 + PAD)  # 16 cells, 28 x 28, pad 2
    assert not np.array_equal(after, before), "moving the slider did not change the image"

    # What the page shows is what its curl line fetches ...
    curl_line = browser.find_element(By.ID, "sample-curl").text
    url = shlex.split(curl_line)[-1]
    assert url == http_server.http_url + path2
    fetched = call(url)
    with Image.open(io.BytesIO(fetched.body)) as png:
        assert np.array_equal(np.asarray(png), after)
    # ... and what its gan-client line writes.
    cli = shlex.split(browser.find_element(By.ID, "sample-cli").text)
    assert cli[0] == "gan-client" and "--code" in cli
    done = subprocess.run([str(BIN / "gan-client"), *cli[1:]], cwd=tmp_path, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / cli[cli.index("--out") + 1]).read_bytes() == fetched.body

    # The project's MNIST classifier reads the cells on screen as sevens.
    labels = np.asarray(classifier.classify(_cells(after, 16)[..., None], classifier.load_classifier()))
    share = float(np.mean(labels == 7))
    assert share >= 0.9, f"only {share:.0%} of the cells are sevens: {labels.tolist()}"

    # The interpolation strip came too.
    _wait(browser, lambda d: _shown(d, "strip"), "the interpolation strip")
    assert _pixels(browser, "strip").shape == (28 + 2 * PAD, 8 * 30 + PAD)

    browser.find_element(By.TAG_NAME, "body").screenshot(str(tmp_path / "playground.png"))
    assert (tmp_path / "playground.png").stat().st_size > 10_000
    print(f"playground test: {time.monotonic() - started:.1f} s; screenshot {tmp_path / 'playground.png'}")


def test_playground_shows_server_errors_as_messages(browser, http_server) -> None:
    browser.get(http_server.http_url + "/")
    _wait(browser, lambda d: _shown(d, "sample"), "the first grid")
    seed = browser.find_element(By.ID, "seed")
    seed.clear()
    seed.send_keys("-5")
    box = browser.find_element(By.ID, "sample-error")
    _wait(browser, lambda d: box.is_displayed() and box.text, "an error message")
    assert box.text.startswith("seed: must be an integer in [0, 18446744073709551615], got '-5'"), box.text


@pytest.fixture(scope="module")
def token_server(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory):
    from ..conftest import start_server, stop_server

    d = tmp_path_factory.mktemp("playground-token")
    (d / "token").write_text("browser-token\n")
    srv = start_server(bundled_models, d / "log", "--http-port", "0", "--token-file", str(d / "token"))
    yield srv
    assert stop_server(srv) == 0


def test_playground_asks_for_the_token_and_sends_it(browser, token_server) -> None:
    browser.get(token_server.http_url + "/")
    box = browser.find_element(By.ID, "error")
    _wait(browser, lambda d: box.is_displayed() and box.text, "the 401 message")
    assert "missing bearer token" in box.text and "token" in box.text.lower()
    field = browser.find_element(By.ID, "token")
    assert field.get_attribute("type") == "password"
    field.send_keys("browser-token", Keys.ENTER)
    field.send_keys(Keys.TAB)  # change fires on blur
    _wait(browser, lambda d: _shown(d, "sample"), "a grid with the token")
    assert not box.is_displayed()
    assert '-H "Authorization: Bearer $GAN_TOKEN"' in browser.find_element(By.ID, "sample-curl").text
    # kept in the page's memory only, never in the browser's storage
    assert browser.execute_script("return localStorage.length + sessionStorage.length") == 0
    assert "browser-token" not in browser.execute_script("return document.cookie")
