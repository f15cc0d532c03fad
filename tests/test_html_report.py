"""`dlcli compare --report FILE.html`: one self-contained file, checked byte by byte and
in a real browser (headless Chromium, where one is installed)."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import select
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_usage_refused, invoke, subprocess_env

from dlcli import html_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_PNG = "data:image/png;base64,"
XOR_ARGS = ["compare", "--task", "xor", "--what", "depth", "--epochs", "300", "--seeds", "2", "--quiet"]


# -- reading a report back ------------------------------------------------------------


class Page(HTMLParser):
    """The parts of a report the tests look at: tables (cell texts), images, every
    attribute that can point somewhere, and the tags used."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.images: list[dict] = []
        self.references: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.tags: set[str] = set()
        self.code: list[str] = []
        self._cell: list[str] | None = None
        self._in_code = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        attrs = dict(attrs)
        for name in ("src", "href", "srcset", "action", "data", "poster", "background", "xlink:href"):
            if name in attrs:
                self.references.append((tag, name, attrs[name]))
        if tag == "img":
            self.images.append(attrs)
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "code":
            self._in_code = True
            self.code.append("")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "code":
            self._in_code = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in_code:
            self.code[-1] += data


def decode_png(data: bytes) -> tuple[int, int]:
    """(width, height) of a whole, intact PNG: signature, every chunk's CRC, IHDR first
    and IEND last, and image data that inflates to exactly the rows IHDR promises
    (non-interlaced). Anything else fails the test."""
    assert data[:8] == PNG_SIGNATURE, f"not a PNG: {data[:8]!r}"
    at, chunks = 8, []
    while at < len(data):
        assert at + 12 <= len(data), "a chunk is cut short"
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        assert len(body) == length, f"{kind!r} is cut short"
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, f"{kind!r} fails its CRC"
        chunks.append((kind, body))
        at += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND", [k for k, _ in chunks]
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert width > 0 and height > 0 and interlace == 0
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    inflater = zlib.decompressobj()
    raw = inflater.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert inflater.eof, "the image data stream ends early"
    assert len(raw) == height * (1 + (width * channels * depth + 7) // 8), "the image data has the wrong size"
    return width, height


def pngs_of(page: Page) -> list[bytes]:
    """Every <img>'s picture: each must be a PNG data URI."""
    out = []
    for image in page.images:
        src = image.get("src", "")
        assert src.startswith(DATA_PNG), f"an image that is not an embedded PNG: {src[:80]}"
        out.append(base64.b64decode(src[len(DATA_PNG) :], validate=True))
    return out


def assert_self_contained(text: str) -> Page:
    """One file that needs nothing else: no scripts, no links, no URL anywhere outside
    the PNG data URIs, and every image an intact PNG."""
    page = Page(text)
    assert not page.tags & {"script", "link", "iframe", "object", "embed", "base", "video", "audio", "source"}
    # Only the embedded PNGs, and links within the page (#reading: nothing to fetch).
    assert not [ref for ref in page.references if not (ref[1] == "src" and ref[2].startswith(DATA_PNG))
                and not (ref[0] == "a" and ref[1] == "href" and ref[2].startswith("#"))], page.references  # fmt: skip
    outside = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    for needle in ("http:", "https:", "//", "url(", "@import"):
        assert needle not in outside, f"{needle!r} in the report: ...{outside[outside.find(needle) - 80:][:160]}..."
    assert page.images, "no pictures at all"
    for png in pngs_of(page):
        decode_png(png)
    return page


def results_table(page: Page) -> list[list[str]]:
    return page.tables[0]


# -- the real thing: tiny comparisons -------------------------------------------------


@pytest.fixture(scope="module")
def xor_report(tmp_path_factory):
    """A real xor comparison (3 depths x 2 seeds, 300 steps) made with --report in a
    fresh process, exactly as a user types it; its rows as JSON."""
    folder = tmp_path_factory.mktemp("xor-report")
    args = [*XOR_ARGS, "--format", "json", "--report", "the report.html"]
    out = subprocess.run([sys.executable, "-m", "dlcli", *args], cwd=folder, capture_output=True, text=True,
                         env=subprocess_env())  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "6 to train" in out.stderr
    return folder, json.loads(out.stdout), args


@pytest.mark.slow
def test_xor_report_is_one_self_contained_file_with_the_table_plots_and_boundaries(xor_report):
    from dlcli import comparison as comparisons
    from dlcli import report
    from dlcli.core.summaries import read_images

    folder, rows, args = xor_report
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoints", "logs", "the report.html"]  # no temp left
    text = (folder / "the report.html").read_text(encoding="utf-8")
    page = assert_self_contained(text)
    # The table: exactly the cells `dlcli compare` prints, one row per variant.
    headers, body = report.compare_cells(rows, ("layers",))
    assert results_table(page) == [headers, *[[str(c) for c in line] for line in body]]
    assert [line[0] for line in results_table(page)[1:]] == ["layers=1", "layers=2", "layers=4"]
    # The lines under the table: what the verdicts were adjusted for (XOR_ARGS have two seeds).
    assert html.escape("verdicts Holm-adjusted over 6 tests (both directions of 3 pairs) at alpha 0.05") in text
    verdicts = [line[headers.index("verdict")] for line in results_table(page)[1:]]
    assert verdicts == [r["verdict"] for r in rows]
    # No star column: a clearly best row says so in its verdict, and only then is it highlighted and explained.
    assert results_table(page)[0][0] == "variant" and ("highlighted row" in text) == any(map(comparisons.starred, rows))
    # The plot (3 panels, wide) and one boundary per variant: seed 0's last picture.
    pngs = pngs_of(page)
    assert len(pngs) == 4 and decode_png(pngs[0])[0] > 1000
    for variant, png in zip(["layers=1", "layers=2", "layers=4"], pngs[1:]):
        series = read_images(next((folder / "logs/compare").glob("xor-depth-*")) / f"{variant}-s0", "train")["boundary"]
        assert series[-1][0] == 300 and png == series[-1][1]
    if _has_matplotlib():
        import io

        import matplotlib.image

        for png in pngs:
            pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
            assert pixels.std() > 0.02  # a picture, not a blank
    # The settings, versions, machine and the command.
    assert "per variant (above)" in text and "per run (the seeds above)" in text
    runs = next(t for t in page.tables if t[0][:2] == ["variant", "seed"])
    assert len(runs) == 1 + 6 and {r[0] for r in runs[1:]} == {"layers=1", "layers=2", "layers=4"}
    from dlcli import __version__

    assert f"dlcli {__version__}, tensorflow " in text and f"CPUs</td><td>{os.cpu_count()}<" in text
    assert shlex.join(["dlcli", *args]) in page.code  # quoted: the file name has a space


@pytest.mark.slow
def test_the_reports_command_remakes_it_later_and_trains_nothing(runner, xor_report, monkeypatch):
    folder, _, _ = xor_report
    path = folder / "the report.html"
    before = Page(path.read_text(encoding="utf-8"))
    command = shlex.split(before.code[-1])
    where = before.code[-2]
    assert command[0] == "dlcli" and where == str(folder)
    inode = path.stat().st_ino
    # The command typed again where the report says, in this process (the report's own
    # process, in the fixture, is the real `python -m dlcli`): the same code, the same argv.
    monkeypatch.chdir(where)
    monkeypatch.setattr(sys, "argv", command)
    out = invoke(runner, *command[1:])
    assert "6 in the ledger, 0 to resume, 0 to train" in out.stderr
    assert path.stat().st_ino != inode  # written anew (atomically: a new file renamed over the old)
    after = Page(path.read_text(encoding="utf-8"))
    assert results_table(after) == results_table(before) and pngs_of(after)[1:] == pngs_of(before)[1:]


@pytest.mark.slow
def test_a_run_whose_logs_and_checkpoints_are_gone_is_left_out_and_said_so(runner, workdir, xor_report, monkeypatch):
    folder, _, _ = xor_report
    shutil.copytree(folder / "logs", workdir / "logs")  # the ledger and the event files, no checkpoints
    (gone,) = (workdir / "logs/compare").glob("xor-depth-*/layers=2-s0")
    shutil.rmtree(gone)
    monkeypatch.setattr(sys, "argv", ["dlcli", *XOR_ARGS, "--report", "later.html"])
    assert "6 in the ledger, 0 to resume, 0 to train" in invoke(runner, *XOR_ARGS, "--report", "later.html").stderr
    text = (workdir / "later.html").read_text(encoding="utf-8")
    page = assert_self_contained(text)
    assert f"The logs of 1 run (compare/{gone.parent.name}/layers=2-s0) are gone" in text
    assert "<strong>layers=2</strong> seed 1, step 300" in text and len(page.images) == 4  # the other seed's
    assert "not recorded (no run.json)</td><td>6<" in text
    assert len(results_table(page)) == 4


@pytest.mark.slow
def test_without_matplotlib_the_report_keeps_the_table_and_pictures_and_says_what_to_install(
    runner, workdir, xor_report, monkeypatch
):
    import importlib.util

    folder, _, _ = xor_report
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    where = ["--logdir", str(folder / "logs"), "--checkpoint-dir", str(folder / "checkpoints")]
    monkeypatch.setattr(sys, "argv", ["dlcli", *XOR_ARGS, *where, "--report", "plain.html"])
    result = invoke(runner, *XOR_ARGS, *where, "--report", "plain.html")
    assert "6 in the ledger, 0 to resume, 0 to train" in result.stderr
    text = (workdir / "plain.html").read_text(encoding="utf-8")
    page = assert_self_contained(text)
    assert html.escape(html_report.PLOT_HINT, quote=True) in text
    assert len(page.images) == 3  # the three boundaries; no plot
    assert len(results_table(page)) == 4


@pytest.mark.slow
def test_mnist_report_has_each_variants_last_confusion_matrix(runner, workdir, digits_npz, monkeypatch):
    from dlcli.core.summaries import read_images

    # Two steps an epoch on 64 digits: far from perfect, so each seed and epoch has its own matrix.
    args = ["compare", "--data", str(digits_npz), "--limit", "64", "--batch-size", "32", "--epochs", "2",
            "--seeds", "2", "--quiet", "--vary", "activation=sigmoid,relu", "--report", "mnist.html"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["dlcli", *args])
    invoke(runner, *args)
    text = (workdir / "mnist.html").read_text(encoding="utf-8")
    page = assert_self_contained(text)
    assert "rows are the true digit, columns the prediction" in text
    pngs = pngs_of(page)
    assert len(pngs) == 3  # the plot, then one confusion matrix per variant
    runs = next((workdir / "logs/compare").glob("vary-activation*"))
    for variant, png in zip(["activation=sigmoid", "activation=relu"], pngs[1:]):
        series = read_images(runs / f"{variant}-s0", "test")["confusion_matrix"]
        assert len(series) == 2 and series[0][1] != series[-1][1] and png == series[-1][1]  # seed 0, the last epoch's
        assert png != read_images(runs / f"{variant}-s1", "test")["confusion_matrix"][-1][1]
    assert shlex.join(["dlcli", *args]) in Page(text).code


@pytest.mark.parametrize("path,needle", [("missing/report.html", "cannot write"), (".", "is a directory")])
def test_an_unwritable_report_path_is_refused_before_training(runner, workdir, path, needle):
    assert_usage_refused(runner, workdir, [*XOR_ARGS, "--report", path], "--report", needle)


# -- the page itself (no training) ----------------------------------------------------


def made_up_report(**changes) -> html_report.Report:
    """A report with real PNGs (dlcli's own encoder) and hostile strings in it."""
    from dlcli.core import pictures

    picture = pictures.png(np.linspace(0, 255, 30 * 40 * 3).astype(np.uint8).reshape(30, 40, 3))
    fields = {
        "title": "dlcli compare/<b>x</b>", "summary": "xor: 2 variants", "headers": ["variant", "accuracy"],
        "body": [["a&b", "0.5000"], ["<i>c</i>", "0.2500"]], "best": [True, False],
        "verdict": ["a is not clearly ahead of <c>"], "plots": [html_report.Picture("plot", "caption", picture)],
        "plot_note": None, "pictures": [html_report.Picture("a&b", "seed 0, step 3", picture)],
        "picture_about": "decision boundary", "picture_note": None, "variants": [("a&b", [("layers", "2")])],
        "seeds": [0, 1], "base": [("model.units", "10"), ("logdir", "logs")],
        "runs": [["a&b", "0", "0.5000", "0.7000", "1.0", "compare/x/a&b-s0"]],
        "trained_with": [("dlcli 0.2.0", 2)], "machine": [("CPUs", "2")],
        "command": "dlcli compare --output '</code><script>alert(1)</script>'", "folder": "/tmp/<here>",
    }  # fmt: skip
    fields.update(changes)
    return html_report.Report(**fields)


def test_every_string_is_escaped_and_the_page_is_self_contained():
    text = html_report.render(made_up_report())
    page = assert_self_contained(text)
    assert "<script" not in text and "<i>c</i>" not in text and "<b>x</b>" not in text
    assert page.code == ["/tmp/<here>", "dlcli compare --output '</code><script>alert(1)</script>'"]
    assert results_table(page)[1:] == [["a&b", "0.5000"], ["<i>c</i>", "0.2500"]]
    assert 'http-equiv="Content-Security-Policy"' in text and "default-src &#x27;none&#x27;" in text


def test_the_command_is_the_one_given_shell_quoted():
    argv = ["/usr/lib/python3/dlcli/__main__.py", "compare", "--vary", "lr=0.1,0.01", "--report", "my report.html"]
    assert html_report.command_line(argv) == "dlcli compare --vary lr=0.1,0.01 --report 'my report.html'"
    assert shlex.split(html_report.command_line(argv))[1:] == argv[1:]


def broken_copies(text: str) -> dict[str, str]:
    """The report with one thing wrong each: what the checks are there to catch."""
    start = text.index(DATA_PNG) + len(DATA_PNG)
    end = text.index('"', start)
    middle = start + (end - start) // 2 // 4 * 4  # whole base64 quads: the PNG itself is cut short
    return {
        "a remote image": text.replace("</body>", '<img src="https://example.com/x.png" alt=""></body>'),
        "a remote style": text.replace("</style>", "body { background: url(https://example.com/x.png) }</style>"),
        "a linked file": text.replace("</body>", '<img src="other.png" alt=""></body>'),
        "a truncated picture": text[:middle] + text[end:],
        "not a picture": text[:start] + base64.b64encode(b"hello, world").decode() + text[end:],
    }


@pytest.mark.parametrize("fault", list(broken_copies(html_report.render(made_up_report()))))
def test_the_static_check_catches_each_broken_copy(fault):
    broken = broken_copies(html_report.render(made_up_report()))[fault]
    with pytest.raises(AssertionError):
        assert_self_contained(broken)


# -- a real browser ---------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium) for the browser check"
)


def browse(path: Path, *, limit: float = 120.0) -> tuple[list[list[int]], list[str], list[dict]]:
    """Open `path` in headless Chromium through the DevTools protocol (over a pipe):
    ([width, height] of every <img> once decoded, [0, 0] for one that failed), every
    URL the page asked for (recorded even when the page's CSP blocks the request),
    and the browser's log entries. Host names resolve nowhere, so nothing leaves."""
    browser_in, to_browser = os.pipe()  # (read end, write end)
    from_browser, browser_out = os.pipe()
    # The browser's ends above 4, so that moving them to 3 and 4 cannot clobber either.
    browser_in, browser_out = (_above(fd, 10) for fd in (browser_in, browser_out))
    profile = tempfile.mkdtemp(prefix="dlcli-chromium-")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--no-first-run",
             f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND", "about:blank"]  # fmt: skip
    # DevTools reads fd 3 and writes fd 4 (bash: dash refuses descriptors above 9).
    proc = subprocess.Popen(["bash", "-c", f'exec "$0" "$@" 3<&{browser_in} 4>&{browser_out}', CHROMIUM, *flags],
                            pass_fds=(browser_in, browser_out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    os.close(browser_in)
    os.close(browser_out)
    deadline = time.monotonic() + limit
    pending, events, ids = b"", [], iter(range(1, 1000))

    def receive() -> dict:
        nonlocal pending
        while b"\0" not in pending:
            ready, _, _ = select.select([from_browser], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"Chromium said nothing for {limit} s"
            chunk = os.read(from_browser, 1 << 20)
            assert chunk, "Chromium closed its DevTools pipe"
            pending += chunk
        message, _, pending = pending.partition(b"\0")
        return json.loads(message)

    def call(method: str, session: str | None = None, **params) -> dict:
        number = next(ids)
        message = {"id": number, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = receive()
            if reply.get("id") == number:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return reply["result"]
            events.append(reply)

    try:
        target = call("Target.createTarget", url="about:blank")["targetId"]
        session = call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Network", "Log", "Page", "Runtime"):
            call(f"{domain}.enable", session)
        call("Page.navigate", session, url=path.resolve().as_uri())
        while not any(e.get("method") == "Page.loadEventFired" for e in events):
            events.append(receive())
        decoded = (
            "Promise.all(Array.from(document.images, i => i.decode().then("
            "() => [i.naturalWidth, i.naturalHeight], () => [0, 0]))).then(JSON.stringify)"
        )
        result = call("Runtime.evaluate", session, expression=decoded, awaitPromise=True, returnByValue=True)
        sizes = json.loads(result["result"]["value"])
        call("Browser.close")
    finally:
        os.close(to_browser)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(from_browser)
        shutil.rmtree(profile, ignore_errors=True)
    requested = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    logs = [e["params"]["entry"] for e in events if e.get("method") == "Log.entryAdded"]
    return sizes, requested, logs


def _above(fd: int, lowest: int) -> int:
    import fcntl

    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest)
    os.close(fd)
    return moved


def browser_problems(path: Path) -> tuple[list[str], list[list[int]]]:
    """What Chromium found wrong with the page (an image it could not decode, a URL
    it asked for besides the page and its data URIs, an error it logged), and the
    decoded images' sizes."""
    sizes, requested, logs = browse(path)
    problems = [f"image {i + 1} did not decode" for i, size in enumerate(sizes) if size == [0, 0]]
    page = path.resolve().as_uri()
    problems += [f"asked for {url}" for url in requested if not url.startswith("data:") and url != page]
    problems += [f"logged {entry['text']}" for entry in logs if entry["level"] == "error"]
    return problems, sizes


@pytest.fixture(scope="module")
def good_page_in_chromium(tmp_path_factory) -> tuple[str, list[str]]:
    """The made-up report's page, and what Chromium found wrong with it: opened once."""
    good = tmp_path_factory.mktemp("good-page") / "good.html"
    good.write_text(html_report.render(made_up_report()), encoding="utf-8")
    return good.read_text(encoding="utf-8"), browser_problems(good)[0]


@pytest.mark.slow
@needs_chromium
def test_chromium_decodes_every_image_of_a_real_report_and_fetches_nothing(xor_report):
    folder, _, _ = xor_report
    path = folder / "the report.html"
    problems, sizes = browser_problems(path)
    assert problems == []
    assert sizes == [list(decode_png(png)) for png in pngs_of(Page(path.read_text(encoding="utf-8")))]


@pytest.mark.slow
@needs_chromium
@pytest.mark.parametrize(
    "fault,needle",
    [
        ("a remote image", "asked for https://example.com/x.png"),
        ("a remote style", "asked for https://example.com/x.png"),
        ("a linked file", "asked for file://"),
        ("not a picture", "image 1 did not decode"),
    ],
)
def test_the_browser_check_catches_a_broken_copy(workdir, good_page_in_chromium, fault, needle):
    # (Chromium draws a truncated PNG in part, without an error: decode_png catches that one.)
    # The page each broken copy is made from, clean in the browser (opened once for the file).
    page, problems_of_the_good_one = good_page_in_chromium
    assert problems_of_the_good_one == []
    good = workdir / "good.html"
    good.write_text(page, encoding="utf-8")
    broken = workdir / "broken.html"
    broken.write_text(broken_copies(good.read_text(encoding="utf-8"))[fault], encoding="utf-8")
    problems, _ = browser_problems(broken)
    assert any(problem.startswith(needle) for problem in problems), problems


def _has_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None
