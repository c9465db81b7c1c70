"""``jmvae serve``: the explorer's JSON API (Flask's test client) and its page in a real browser.

The browser tests drive Debian's chromium (``/usr/bin/chromium``, or ``$JMVAE_CHROMIUM``) with
Playwright against the real server on a free port. Without that browser they are skipped, unless
``JMVAE_REQUIRE_BROWSER=1`` (``.ci/run`` sets it): then they fail.

``JMVAE_EXPLORER_SCREENSHOT=docs/explorer.png pytest tests/test_explorer.py -k screenshot``
retakes the documentation's screenshot.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from jmvae import TrainConfig, train
from jmvae.explorer import create_app
from jmvae.imageio import MAX_SIDE, MAX_UPLOAD_BYTES, UploadError, prepare_upload

from helpers import tiny_config

CHROMIUM = os.environ.get("JMVAE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


# -- fixtures ----------------------------------------------------------------------------------
def train_run(data, folder: Path, kind: str, epochs: int, latent: int = 8, hidden: int = 64) -> Path:
    train(tiny_config(data, kind, alpha=0.1, latent=latent, hidden=hidden), TrainConfig(epochs=epochs, batch_size=100, seed=0),
          data, folder, progress=False)
    return folder


@pytest.fixture(scope="module")
def run_dir(digits, tmp_path_factory) -> Path:
    return train_run(digits, tmp_path_factory.mktemp("explorer") / "kl", "jmvae-kl", epochs=5)


@pytest.fixture(scope="module")
def app(run_dir):
    return create_app(run_dir)


@pytest.fixture()
def client(app):
    return app.test_client()


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def decode_data_url(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def upscaled_test_digit(digits, index: int, scale: int = 8, dark_on_light: bool = True) -> Image.Image:
    """Test image ``index`` as a big picture, dark strokes on white like a drawing on paper."""
    pixels = digits.test["image"][index].numpy()
    if dark_on_light:
        pixels = 1.0 - pixels
    image = Image.fromarray((pixels * 255).astype(np.uint8), mode="L")
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST)


def upload(client, data: bytes, name: str = "digit.png"):
    return client.post("/api/analyze", data={"image": (io.BytesIO(data), name)}, content_type="multipart/form-data")


# -- the API ----------------------------------------------------------------------------------
def test_info_names_the_run_and_its_capabilities(client, run_dir):
    info = client.get("/api/info").get_json()
    assert info["model"] == "jmvae-kl(alpha=0.1)" and info["data"] == "digits" and info["epoch"] == 5
    assert info["image_shape"] == [8, 8] and info["classes"] == [str(i) for i in range(10)]
    assert info["light_on_dark"] is True and info["test_size"] > 0
    caps = info["capabilities"]
    assert all(c["ok"] for c in caps.values()), caps
    assert caps["sample_label"]["uses"].startswith("z ~ q(z|w)")
    assert "q(z|x)" in caps["predict"]["uses"] and "p(w|z)" in caps["predict"]["uses"]
    assert caps["latent_map"]["posterior"] == "q(z|x,w)"


def test_page_and_its_assets_are_local(client):
    with client.get("/") as page:
        assert page.status_code == 200 and page.mimetype == "text/html"
        html = page.get_data(as_text=True)
    assert 'src="/static/explorer.js"' in html and 'href="/static/explorer.css"' in html
    for asset in ("/static/explorer.js", "/static/explorer.css"):
        with client.get(asset) as response:
            assert response.status_code == 200
            text = response.get_data(as_text=True)
        assert "http://" not in text and "https://" not in text, f"{asset} refers to another site"
    assert "http://" not in html and "https://" not in html


def test_samples_are_fresh_png_grids_and_a_seed_repeats_them(client):
    first = client.post("/api/sample", json={"label": 3}).get_json()
    second = client.post("/api/sample", json={"label": 3}).get_json()
    assert first["label"] == 3 and first["class_name"] == "3" and first["n"] == 16
    grid = decode_data_url(first["grid"])
    assert grid.shape == (4 * 9 + 1, 4 * 9 + 1) and grid.dtype == np.uint8  # 4x4 images of 8x8, 1 px apart
    assert first["grid"] != second["grid"]
    again = client.post("/api/sample", json={"label": 3, "seed": first["seed"]}).get_json()
    assert again["grid"] == first["grid"]
    by_name = client.post("/api/sample", json={"label": "7", "n": 4}).get_json()
    assert by_name["label"] == 7 and decode_data_url(by_name["grid"]).shape == (2 * 9 + 1, 2 * 9 + 1)
    prior = client.post("/api/sample", json={}).get_json()
    assert "p(z)" in prior["uses"] and "label" not in prior


@pytest.mark.parametrize("body, message", [
    ({"label": 10}, "is not a class; give an index 0..9"),
    ({"label": "seven"}, "'seven' is not a class"),
    ({"label": 1.5}, "class index"),
    ({"label": 1, "n": 0}, "n must be"),
    ({"label": 1, "n": 1000}, "n must be"),
    ({"label": 1, "seed": "x"}, "seed must be"),
    ([1, 2], "JSON object"),
])
def test_bad_sample_requests_get_a_clear_400(client, body, message):
    response = client.post("/api/sample", json=body)
    assert response.status_code == 400 and message in response.get_json()["error"]


def test_broken_json_gets_a_400(client):
    response = client.post("/api/sample", data="{label:", content_type="application/json")
    assert response.status_code == 400 and "not valid JSON" in response.get_json()["error"]


def test_a_test_image_gets_a_prediction_and_a_reconstruction(client, digits):
    out = client.post("/api/analyze", json={"test_index": 4}).get_json()
    assert out["true_label"] == int(digits.test["label"][4])
    assert np.array_equal(decode_data_url(out["input"]) / 255, digits.test["image"][4].numpy())
    probs = out["prediction"]["probabilities"]
    assert len(probs) == 10 and abs(sum(probs) - 1) < 1e-4
    assert out["prediction"]["label"] == int(np.argmax(probs))
    assert decode_data_url(out["reconstruction"]["image"]).shape == (8, 8)
    assert "q(z|x)" in out["reconstruction"]["uses"]
    for bad in (-1, 10**6, "3", None):
        response = client.post("/api/analyze", json={"test_index": bad})
        assert response.status_code == 400 and "test_index" in response.get_json()["error"]


def test_an_upload_is_inverted_resized_and_binarized_then_predicted(client, app, digits):
    """A test digit drawn dark on white at 64x64 comes back as exactly that test digit."""
    explorer = app.extensions["jmvae_explorer"]
    for fmt, name in (("PNG", "digit.png"), ("JPEG", "digit.jpg")):
        data = png_bytes(upscaled_test_digit(digits, 4), fmt)
        response = upload(client, data, name)
        assert response.status_code == 200, response.get_json()
        out = response.get_json()
        assert out["source"] == f"upload {name}"
        assert any(n.startswith("inverted") for n in out["notes"]) and "resized from 64x64 to 8x8" in out["notes"]
        assert np.array_equal(decode_data_url(out["input"]) / 255, digits.test["image"][4].numpy()), fmt
        expected = explorer.analyze(digits.test["image"][4])["prediction"]
        assert out["prediction"]["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-6)


def test_prepare_upload_padding_transparency_and_polarity():
    # A light-on-dark bar on a wide canvas: no inversion, padded to a square, centred.
    wide = np.zeros((40, 80), dtype=np.uint8)
    wide[10:30, 30:50] = 255
    image, notes = prepare_upload(png_bytes(Image.fromarray(wide)), (8, 8))
    assert not any(n.startswith("inverted") for n in notes) and any(n.startswith("padded to 80x80") for n in notes)
    assert image.shape == (8, 8) and image[:2].sum() == 0 and image[-2:].sum() == 0 and image[3:5, 3:5].all()
    # Black strokes on a transparent background: shown as on white, then inverted.
    rgba = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).rectangle([12, 4, 19, 27], fill=(0, 0, 0, 255))
    image, notes = prepare_upload(png_bytes(rgba), (8, 8))
    assert "transparent pixels shown as white" in notes and any(n.startswith("inverted") for n in notes)
    assert image[1:7, 3:5].all() and image[:, :2].sum() == 0 and image[0].sum() == 0
    # Dark-on-light data (mean > 0.5) keep dark-on-light uploads as they are.
    _, notes = prepare_upload(png_bytes(Image.new("L", (16, 16), 255)), (8, 8), light_on_dark=False)
    assert not any(n.startswith("inverted") for n in notes)


def bad_uploads() -> list[tuple[str, bytes, str, int, str]]:
    gif = png_bytes(Image.new("L", (16, 16)), "GIF")
    wide = png_bytes(Image.new("L", (MAX_SIDE + 1, 4)))
    tiny = png_bytes(Image.new("L", (2, 2)))
    truncated = png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)))[:300]
    huge = b"\x89PNG\r\n\x1a\n" + bytes(MAX_UPLOAD_BYTES + 100 * 1024)
    return [
        ("text", b"this is not an image", "notes.png", 400, "not an image"),
        ("empty", b"", "empty.png", 400, "empty"),
        ("gif", gif, "anim.gif", 400, "GIF images are not accepted"),
        ("too wide", wide, "wide.png", 400, f"the limit is {MAX_SIDE} pixels a side"),
        ("too small", tiny, "tiny.png", 400, "at least 4 pixels"),
        ("truncated", truncated, "cut.png", 400, "damaged or truncated"),
        ("over 5 MB", huge, "huge.png", 413, "too large; the limit is 5 MB"),
    ]


@pytest.mark.parametrize("what, data, name, status, message", bad_uploads(), ids=[b[0] for b in bad_uploads()])
def test_bad_uploads_get_a_clear_message_and_the_server_keeps_serving(client, what, data, name, status, message):
    response = upload(client, data, name)
    assert response.status_code == status, (what, response.get_data(as_text=True))
    assert message in response.get_json()["error"]
    assert client.get("/api/info").status_code == 200
    assert client.post("/api/sample", json={"label": 1}).status_code == 200


def test_a_decompression_bomb_is_refused_before_decoding():
    """A 4096x4096 PNG of zeros is a few kB; its size is refused from the header, never decoded."""
    data = png_bytes(Image.new("1", (MAX_SIDE, MAX_SIDE)))
    assert len(data) < 100_000
    prepare_upload(data, (8, 8))  # at the limit: accepted
    big = png_bytes(Image.new("1", (MAX_SIDE + 1, MAX_SIDE + 1)))
    with pytest.raises(UploadError, match="pixels a side"):
        prepare_upload(big, (8, 8))


def test_upload_without_the_image_field(client):
    response = client.post("/api/analyze", data={"file": (io.BytesIO(b"x"), "a.png")}, content_type="multipart/form-data")
    assert response.status_code == 400 and "'image'" in response.get_json()["error"]
    response = client.post("/api/analyze", json={})
    assert response.status_code == 400 and "test_index" in response.get_json()["error"]


def test_latent_map_points_and_neighbours(client, app, digits):
    out = client.get("/api/latent").get_json()
    n = min(2000, len(digits.test["label"]))
    assert len(out["points"]) == len(out["labels"]) == len(out["test_indices"]) == n
    assert out["posterior"] == "q(z|x,w)" and 0 < sum(out["explained_variance"]) <= 1 + 1e-6
    assert out["labels"] == [int(digits.test["label"][i]) for i in out["test_indices"]]
    point = client.get("/api/point/5").get_json()
    assert point["point"] == 5 and point["test_index"] == out["test_indices"][5]
    assert np.array_equal(decode_data_url(point["image"]) / 255, digits.test["image"][point["test_index"]].numpy())
    neighbour = point["neighbour"]
    assert neighbour["point"] != 5 and neighbour["distance"] >= 0
    z = app.extensions["jmvae_explorer"].latent["z"]
    distances = (z - z[5]).norm(dim=-1)
    distances[5] = float("inf")
    assert neighbour["point"] == int(distances.argmin())
    decoded = client.post("/api/decode", json={"x": 0.0, "y": 0.0}).get_json()
    assert decode_data_url(decoded["decoded"]).shape == (8, 8)
    assert client.get(f"/api/point/{n}").status_code == 400
    assert client.get("/api/point/-1").status_code == 404  # not a route: a JSON 404
    assert "error" in client.get("/api/point/-1").get_json()
    assert client.post("/api/decode", json={"x": "a", "y": 0}).status_code == 400


@pytest.fixture(scope="module")
def baseline_runs(digits, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("baselines")
    return {kind: train_run(digits, root / kind, kind, epochs=1) for kind in ("vae", "cvae", "cmma", "jmvae-zero")}


def test_vae_has_no_label_panels_but_samples_from_the_prior(baseline_runs):
    client = create_app(baseline_runs["vae"]).test_client()
    caps = client.get("/api/info").get_json()["capabilities"]
    assert not caps["sample_label"]["ok"] and "no label" in caps["sample_label"]["why"]
    assert not caps["predict"]["ok"] and caps["reconstruct"]["ok"] and caps["sample_prior"]["ok"]
    response = client.post("/api/sample", json={"label": 1})
    assert response.status_code == 400 and "no label" in response.get_json()["error"]
    assert client.post("/api/sample", json={}).status_code == 200
    out = client.post("/api/analyze", json={"test_index": 0}).get_json()
    assert "prediction" not in out and "no label" in out["prediction_off"] and "reconstruction" in out
    assert client.get("/api/latent").get_json()["posterior"] == "q(z|x)"


@pytest.mark.parametrize("kind", ["cvae", "cmma"])
def test_cvae_and_cmma_generate_from_labels_but_cannot_read_an_image_alone(baseline_runs, digits, kind):
    client = create_app(baseline_runs[kind]).test_client()
    caps = client.get("/api/info").get_json()["capabilities"]
    assert caps["sample_label"]["ok"] and not caps["sample_prior"]["ok"]
    assert not caps["predict"]["ok"] and "q(z|x,w) needs the label" in caps["predict"]["why"]
    assert client.post("/api/sample", json={"label": 2}).status_code == 200
    out = upload(client, png_bytes(upscaled_test_digit(digits, 0))).get_json()
    assert "prediction" not in out and "reconstruction" not in out and "image alone" in out["reconstruction_off"]
    out = client.post("/api/analyze", json={"test_index": 0}).get_json()
    assert "q(z|x,w)" in out["reconstruction"]["uses"] and "true label given" in out["reconstruction"]["uses"]
    assert client.get("/api/point/0").status_code == 200  # decoded with the point's own label
    assert (client.post("/api/decode", json={"x": 0, "y": 0}).status_code == 200) == (kind == "cmma")


def test_jmvae_zero_predicts_through_its_joint_encoder(baseline_runs):
    client = create_app(baseline_runs["jmvae-zero"]).test_client()
    caps = client.get("/api/info").get_json()["capabilities"]
    assert all(c["ok"] for c in caps.values())
    assert "zero-filled" in caps["predict"]["uses"] and "zero-filled" in caps["sample_label"]["uses"]


def test_without_test_data_the_map_is_off_and_the_rest_works(run_dir, tmp_path, monkeypatch):
    """A run whose data set cannot be loaded: sampling and uploads work, the map says why it is off."""
    copy = tmp_path / "run"
    subprocess.run(["cp", "-r", str(run_dir), str(copy)], check=True)
    config = json.loads((copy / "config.json").read_text())
    config["data"]["name"] = "mnist"
    (copy / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("JMVAE_MIRROR", "http://127.0.0.1:9")  # no download: a port nothing listens on
    client = create_app(copy, data_dir=tmp_path / "no-data").test_client()
    info = client.get("/api/info").get_json()
    assert info["test_size"] == 0 and "test images unavailable" in info["data_note"]
    assert not info["capabilities"]["latent_map"]["ok"]
    assert client.post("/api/sample", json={"label": 1}).status_code == 200
    response = client.get("/api/latent")
    assert response.status_code == 400 and "test images unavailable" in response.get_json()["error"]
    assert upload(client, png_bytes(Image.new("L", (8, 8)))).status_code == 200


# -- the command -------------------------------------------------------------------------------
@pytest.mark.parametrize("inherited", ["default", "ignored"])
def test_jmvae_serve_prints_its_url_serves_the_page_and_stops_on_ctrl_c(run_dir, inherited):
    """Ctrl-C stops the server, also when the launcher left SIGINT ignored (which Python keeps)."""
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if inherited == "ignored" else None
    process = subprocess.Popen([sys.executable, "-m", "jmvae", "serve", str(run_dir), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ignore)
    try:
        line = process.stdout.readline()
        assert "jmvae serve: exploring jmvae-kl(alpha=0.1) on digits at http://127.0.0.1:" in line, (line, process.stderr.read() if process.poll() is not None else "")
        url = line.split(" at ", 1)[1].split()[0]
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200 and b"jmvae explorer" in response.read()
        with urllib.request.urlopen(url + "api/info", timeout=30) as response:
            assert json.load(response)["model"] == "jmvae-kl(alpha=0.1)"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "jmvae serve: stopped" in out and "Traceback" not in err


def test_jmvae_serve_reports_a_busy_port_and_a_bad_run_in_one_line(run_dir, tmp_path):
    from werkzeug.serving import make_server

    busy = make_server("127.0.0.1", 0, lambda environ, start: [])
    try:
        done = subprocess.run([sys.executable, "-m", "jmvae", "serve", str(run_dir), "--port", str(busy.port)],
                              capture_output=True, text=True, timeout=120)
    finally:
        busy.server_close()
    assert done.returncode == 2 and done.stderr.startswith("jmvae serve: error: cannot listen on 127.0.0.1:"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = subprocess.run([sys.executable, "-m", "jmvae", "serve", str(tmp_path / "nothing")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "is not a folder" in done.stderr and len(done.stderr.strip().splitlines()) == 1


# -- the page in a real browser ------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    required = os.environ.get("JMVAE_REQUIRE_BROWSER") == "1"
    why = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        why = "the Python package playwright is not installed (pip install -e '.[test]')"
    if why is None and not Path(CHROMIUM).is_file():
        why = f"no chromium at {CHROMIUM} (apt-get install -y chromium, or set JMVAE_CHROMIUM)"
    if why:
        if required:
            pytest.fail(f"JMVAE_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(f"browser tests need a headless chromium: {why}; JMVAE_REQUIRE_BROWSER=1 makes this a failure")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception:
        playwright.stop()
        raise
    yield browser
    browser.close()
    playwright.stop()


class LiveServer:
    """The real werkzeug server on a free port of 127.0.0.1, in a thread."""

    def __init__(self, app) -> None:
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture(scope="module")
def live(app):
    server = LiveServer(app)
    yield server.url
    server.close()


@pytest.fixture()
def page(browser, live):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.errors = []
    page.foreign = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
    page.on("request", lambda req: None if req.url.startswith((live, "data:")) else page.foreign.append(req.url))
    page.goto(live + "/")
    page.wait_for_selector("body[data-ready='1']")
    yield page
    context.close()


def test_browser_page_loads_and_shows_the_model(page):
    assert page.inner_text("#model-name") == "jmvae-kl(alpha=0.1)"
    assert "digits, epoch 5" in page.inner_text("#run-info")
    assert page.locator("#label-buttons button").count() == 10
    assert page.evaluate("window.explorer.state.map.points.length") > 0
    assert page.errors == [] and page.foreign == []


def test_browser_label_click_shows_new_samples(page):
    samples = page.locator("#samples")
    assert samples.get_attribute("src") is None
    page.click("#label-buttons button[data-label='3']")
    page.wait_for_function("document.querySelector('#samples').dataset.label === '3'")
    first = samples.get_attribute("src")
    assert first.startswith("data:image/png;base64,")
    assert "given label 3" in page.inner_text("#samples-caption")
    page.click("#label-buttons button[data-label='3']")
    page.wait_for_function("src => document.querySelector('#samples').src !== src", arg=first)
    assert samples.get_attribute("src") != first
    page.click("#label-buttons button[data-label='8']")
    page.wait_for_function("document.querySelector('#samples').dataset.label === '8'")
    assert page.evaluate("document.querySelector('#samples').naturalWidth") == 37
    assert page.errors == []


def test_browser_upload_shows_a_prediction(page, digits, tmp_path):
    path = tmp_path / "digit.png"
    upscaled_test_digit(digits, 4).save(path)
    page.set_input_files("#upload", str(path))
    page.wait_for_selector("#prediction[data-label]")
    text = page.inner_text("#prediction")
    assert text.startswith("Predicted label: ") and "with probability" in text
    assert page.locator("#probabilities .bar").count() == 10
    assert page.locator("#reconstruction").get_attribute("src").startswith("data:image/png")
    assert "resized from 64x64 to 8x8" in page.inner_text("#notes")
    assert page.is_hidden("#image-error") and page.errors == []


def test_browser_bad_upload_shows_the_error_and_the_server_keeps_serving(page, tmp_path, live):
    bad = tmp_path / "not-an-image.png"
    bad.write_text("hello, I am text")
    page.set_input_files("#upload", str(bad))
    page.wait_for_selector("#image-error:not([hidden])")
    assert "not an image" in page.inner_text("#image-error")
    page.click("#label-buttons button[data-label='1']")  # the server still answers
    page.wait_for_function("document.querySelector('#samples').dataset.label === '1'")
    with urllib.request.urlopen(live + "/api/info", timeout=30) as response:
        assert response.status == 200
    page.click("#pick-test")  # and a good image clears the error
    page.wait_for_selector("#prediction[data-label]")
    assert page.is_hidden("#image-error")


def test_browser_too_large_upload_is_refused(page, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(MAX_UPLOAD_BYTES + 1))
    page.set_input_files("#upload", str(big))  # the page refuses it before sending
    page.wait_for_selector("#image-error:not([hidden])")
    assert "the limit is 5 MB" in page.inner_text("#image-error")
    # Sent anyway, the server answers 413 with its message (not a reset connection).
    answer = page.evaluate("""async (size) => {
        const form = new FormData();
        form.append("image", new Blob([new Uint8Array(size)], {type: "image/png"}), "big.png");
        const response = await fetch("/api/analyze", {method: "POST", body: form});
        return [response.status, (await response.json()).error];
    }""", MAX_UPLOAD_BYTES + 200_000)
    assert answer == [413, "the upload is too large; the limit is 5 MB"]
    assert page.evaluate("fetch('/api/info').then(r => r.status)") == 200


def test_browser_map_click_shows_a_point_and_its_neighbour(page):
    position = page.evaluate("window.explorer.pointPosition(7)")
    page.mouse.click(position["x"], position["y"])
    page.wait_for_selector("#point-details[data-point]")
    assert page.locator("#point-details img").count() == 4
    text = page.inner_text("#point-details")
    assert "nearest neighbour: test image" in text and "decoded from its latent" in text
    page.mouse.click(*page.evaluate("(() => { const r = document.querySelector('#map').getBoundingClientRect(); return [r.left + 3, r.top + 3]; })()"))
    page.wait_for_selector("#point-details:not([data-point])")
    assert "decoded at map position" in page.inner_text("#point-details")
    assert page.errors == []


@pytest.mark.skipif(not os.environ.get("JMVAE_EXPLORER_SCREENSHOT"), reason="retakes docs/explorer.png only when JMVAE_EXPLORER_SCREENSHOT=PATH")
def test_screenshot(browser, digits, tmp_path):
    run = train_run(digits, tmp_path / "digits-kl", "jmvae-kl", epochs=30, latent=16, hidden=256)
    server = LiveServer(create_app(run))
    try:
        context = browser.new_context(viewport={"width": 1360, "height": 900}, device_scale_factor=1)
        page = context.new_page()
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready='1']")
        page.click("#label-buttons button[data-label='4']")
        page.wait_for_function("document.querySelector('#samples').dataset.label === '4'")
        drawing = Image.new("L", (160, 160), 255)  # a 7 drawn dark on white
        ImageDraw.Draw(drawing).line([(32, 30), (128, 30), (72, 140)], fill=0, width=24)
        drawing.save(tmp_path / "seven.png")
        page.set_input_files("#upload", str(tmp_path / "seven.png"))
        page.wait_for_selector("#prediction[data-label]")
        position = page.evaluate("window.explorer.pointPosition(11)")
        page.mouse.click(position["x"], position["y"])
        page.wait_for_selector("#point-details[data-point]")
        page.screenshot(path=os.environ["JMVAE_EXPLORER_SCREENSHOT"], full_page=True)
        context.close()
    finally:
        server.close()


# -- a face run (CelebA format: colour images, 40 attributes) ------------------------------------
@pytest.fixture(scope="module")
def face_run(tmp_path_factory):
    from jmvae import ModelConfig, load_dataset
    from test_celeba import make_celeba

    root = tmp_path_factory.mktemp("faces")
    make_celeba(root / "data", n=8, partition=[0, 0, 0, 0, 1, 2, 2, 2])
    data = load_dataset("celeba", root / "data")
    config = ModelConfig("jmvae-kl", data.modalities, latent_dim=4, hidden_dim=16, alpha=0.1)
    train(config, TrainConfig(epochs=1, batch_size=2, seed=0), data, root / "run", progress=False, data_info=data.run_info())
    return root / "run", root / "data"


@pytest.fixture(scope="module")
def face_app(face_run):
    run, data_dir = face_run
    return create_app(run, data_dir=data_dir)


def test_face_run_info_offers_attributes_instead_of_labels(face_app):
    info = face_app.test_client().get("/api/info").get_json()
    assert info["colour"] is True and info["image_shape"] == [3, 64, 64] and len(info["attributes"]) == 40
    caps = info["capabilities"]
    assert caps["sample_attributes"]["ok"] and caps["predict"]["ok"] and caps["latent_map"]["ok"]
    assert not caps["sample_label"]["ok"] and "tick attributes" in caps["sample_label"]["why"]
    assert info["map_classes"] == ["not Male", "Male"]


def test_faces_from_ticked_attributes_are_colour_grids(face_app):
    client = face_app.test_client()
    out = client.post("/api/sample", json={"attributes": ["Male", "Smiling"], "n": 4, "seed": 3}).get_json()
    grid = decode_data_url(out["grid"])
    assert grid.shape == (2 * 65 + 1, 2 * 65 + 1, 3) and out["attributes"] == ["Male", "Smiling"]
    assert out == client.post("/api/sample", json={"attributes": ["Male", "Smiling"], "n": 4, "seed": 3}).get_json()
    bad = client.post("/api/sample", json={"attributes": ["Smile"]})
    assert bad.status_code == 400 and "unknown attribute 'Smile'" in bad.get_json()["error"]
    bad = client.post("/api/sample", json={"attributes": "Male"})
    assert bad.status_code == 400 and "a list of attribute names" in bad.get_json()["error"]


def test_a_face_upload_gets_attribute_probabilities(face_app, face_run):
    _, data_dir = face_run
    face = next((data_dir / "celeba" / "img_align_celeba").glob("*.jpg"))
    out = upload(face_app.test_client(), png_bytes(Image.open(face).convert("RGBA")), "face.png").get_json()
    attributes = out["prediction"]["attributes"]
    assert len(attributes) == 40 and all(0 <= a["probability"] <= 1 for a in attributes)
    assert [a["probability"] for a in attributes] == sorted((a["probability"] for a in attributes), reverse=True)
    assert decode_data_url(out["input"]).shape == (64, 64, 3) and decode_data_url(out["reconstruction"]["image"]).shape == (64, 64, 3)
    assert "converted from mode RGBA to RGB" in out["notes"]


def test_face_map_is_coloured_by_an_attribute(face_app):
    client = face_app.test_client()
    latent = client.get("/api/latent").get_json()
    assert latent["classes"] == ["not Male", "Male"] and set(latent["labels"]) <= {0, 1}
    point = client.get("/api/point/0").get_json()
    assert point["class_name"] in ("not Male", "Male") and decode_data_url(point["image"]).shape == (64, 64, 3)


def test_browser_face_page_samples_ticked_attributes_and_reads_an_upload(browser, face_app, face_run, tmp_path):
    server = LiveServer(face_app)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready='1']")
        assert page.inner_text("#samples-title") == "Samples from attributes"
        assert page.locator("#attribute-boxes input").count() == 40 and page.is_hidden("#samples-off")
        page.check("#attribute-boxes input[data-attribute='Smiling']")
        page.check("#attribute-boxes input[data-attribute='Male']")
        page.click("#attributes-button")
        page.wait_for_function("document.querySelector('#samples').dataset.label === 'attributes:Male,Smiling'")
        assert "given Male, Smiling" in page.inner_text("#samples-caption")
        face = next((face_run[1] / "celeba" / "img_align_celeba").glob("*.jpg"))
        page.set_input_files("#upload", str(face))
        page.wait_for_selector("#prediction[data-label]")
        assert page.inner_text("#prediction").startswith("Most probable attributes: ")
        assert page.locator("#probabilities .bar").count() == 12
        assert page.locator("#map-legend span").count() == 2 and errors == []
    finally:
        context.close()
        server.close()
