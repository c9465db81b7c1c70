"""``jmvae serve RUN_DIR``: a small local web page to explore one trained run.

One page (``static/``: HTML, CSS and JavaScript, no external assets) and a JSON API,
served by Flask:

- ``GET  /api/info``: the run, the model's capabilities and, for each panel, the distributions it
  uses (or why the panel is off for this kind of model);
- ``POST /api/sample``: fresh images given a label (JMVAE: z ~ q(z|w); CVAE: z ~ p(z) and p(x|z,w);
  CMMA: z ~ p(z|w)) or from the prior p(z); the images are the means of p(x|z);
- ``POST /api/analyze``: an uploaded PNG/JPEG (multipart field ``image``) or a test image
  (JSON ``{"test_index": i}``) -> the label predicted by p(w|z) at the mean of q(z|x), with the
  probabilities, and the reconstruction, the mean of p(x|z) at the same z;
- ``GET  /api/latent``: a 2-D PCA of the latent means of up to 2,000 test points under the
  training posterior (q(z|x,w); the VAE's q(z|x)), with their labels;
- ``GET  /api/point/<k>``: map point k: its test image, the decoding of its own latent mean and
  its nearest neighbour in the full latent space (image and decoding);
- ``POST /api/decode``: the decoding of the latent at a map position (the PCA's inverse).

Uploads are read by Pillow, never written to disk, and checked: PNG or JPEG only, at most
``MAX_UPLOAD_BYTES`` and ``MAX_SIDE`` pixels a side. They are turned into the model's input like
the training images: grayscale, inverted when the data set is light-on-dark and the upload is
mostly light (mean > 0.5), padded to the model's aspect ratio, resized to its image shape and
binarized at 0.5 (``jmvae.imageio``). A bad upload gets a JSON error (HTTP 400, or 413 when too
large) that the page shows; the server keeps serving.

Face runs (colour (3, H, W) images with named attributes, e.g. CelebA) get the same panels with
attributes in place of labels: ``/api/sample`` takes ``{"attributes": [names]}`` (those on, the
others off), ``/api/analyze`` answers every attribute's probability p(w_j = 1 | z), most probable
first, an uploaded face is cropped, resized and standardised like the training faces
(``jmvae.imageio.face_tensor``), images are shown with the standardisation undone, and the map
is coloured by ``MAP_ATTRIBUTE``.

The package: ``session`` (``Explorer``: the run and the computation behind each panel),
``capabilities`` (what each panel can do with the run's kind of model), ``latent`` (the map's
PCA of the latent means), ``app`` (``create_app``: the Flask app, which the tests use directly)
and ``server`` (``serve``: werkzeug's threaded server, bound to 127.0.0.1 unless told otherwise,
stopped by Ctrl-C or SIGTERM).
"""

from __future__ import annotations

from jmvae.explorer.app import create_app
from jmvae.explorer.server import serve
from jmvae.explorer.session import Explorer

__all__ = ["Explorer", "create_app", "serve"]
