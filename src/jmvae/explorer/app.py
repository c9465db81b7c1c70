"""The explorer's Flask app: the page, its static files and the JSON API over an ``Explorer``
(the routes are listed in ``jmvae.explorer``). Errors are JSON ``{"error": message}``: a user's
mistake 400 (413 for a too large upload), anything else 500, and the server keeps serving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from jmvae.errors import JMVAEError
from jmvae.explorer.session import DEFAULT_SAMPLES, MAP_POINTS, Explorer, RequestError
from jmvae.imageio import MAX_UPLOAD_BYTES, UploadError, prepare_upload

STATIC = Path(__file__).with_name("static")


def create_app(run_dir: str | Path, device: str = "cpu", data_dir: str | Path | None = None, map_points: int = MAP_POINTS) -> Flask:
    """The Flask app of the explorer for one run folder (loads the model and test data now)."""
    explorer = Explorer(run_dir, device, data_dir, map_points)
    app = Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES + 64 * 1024  # the file plus its multipart envelope
    app.json.sort_keys = False  # keep the API's key order
    app.extensions["jmvae_explorer"] = explorer

    def error(message: str, status: int):
        response = jsonify(error=message)
        response.status_code = status
        return response

    @app.errorhandler(JMVAEError)
    def user_error(exc: JMVAEError):
        return error(" ".join(str(exc).split()), getattr(exc, "status", 400))

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge):
        return error(f"the upload is too large; the limit is {MAX_UPLOAD_BYTES // 2**20} MB", 413)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path.startswith("/api/"):
            return error(f"{exc.code} {exc.name}: {exc.description}", exc.code or 500)
        return exc

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        app.logger.exception("error in %s", request.path)
        return error(f"internal error ({type(exc).__name__}: {' '.join(str(exc).split())})", 500)

    @app.after_request
    def no_cache(response):
        if request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    def json_body() -> dict[str, Any]:
        body = request.get_json(silent=True)
        if body is None and request.content_length:
            raise RequestError("the request body is not valid JSON")
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise RequestError("the request body must be a JSON object")
        return body

    @app.get("/")
    def index():
        return app.send_static_file("index.html")

    @app.get("/api/info")
    def info():
        return jsonify(explorer.info())

    @app.post("/api/sample")
    def sample():
        body = json_body()
        return jsonify(explorer.sample(body.get("label"), body.get("n", DEFAULT_SAMPLES), body.get("seed"), body.get("attributes")))

    @app.post("/api/analyze")
    def analyze():
        if request.mimetype == "multipart/form-data" or request.files:
            upload = request.files.get("image")
            if upload is None:
                raise UploadError("no file in the upload; send it as the form field 'image'")
            data = upload.stream.read(MAX_UPLOAD_BYTES + 1)
            if explorer.colour:
                image, notes = explorer.prepare_face(data)
            else:
                image, notes = prepare_upload(data, explorer.image_shape, explorer.light_on_dark)
            return jsonify(explorer.analyze(image, None, f"upload {upload.filename or ''}".strip(), notes))
        body = json_body()
        if "test_index" not in body:
            raise RequestError("send an image (multipart field 'image') or JSON {\"test_index\": i}")
        image, label = explorer.test_image(body["test_index"])
        return jsonify(explorer.analyze(image, label, f"test image {body['test_index']}"))

    @app.get("/api/latent")
    def latent():
        return jsonify(explorer.latent_points())

    @app.get("/api/point/<int:k>")
    def point(k: int):
        return jsonify(explorer.point(k))

    @app.post("/api/decode")
    def decode():
        body = json_body()
        return jsonify(explorer.decode_position(body.get("x"), body.get("y")))

    return app
