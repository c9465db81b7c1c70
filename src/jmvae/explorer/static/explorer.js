// jmvae explorer: the page's client. Talks only to this server's JSON API (/api/...).
"use strict";

const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const $ = (id) => document.getElementById(id);
const state = { info: null, map: null, selected: null, neighbour: null, cross: null };

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw new Error("the server did not answer (" + err.message + "); is jmvae serve still running?");
  }
  const text = await response.text();
  let body = null;
  try { body = JSON.parse(text); } catch (_) { /* not JSON */ }
  if (!response.ok) {
    const message = body && body.error ? body.error : `HTTP ${response.status} ${response.statusText}`;
    throw new Error(message);
  }
  if (body === null) throw new Error("the server's answer is not JSON");
  return body;
}

const postJSON = (path, body) => api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

function show(id, message) {
  const el = $(id);
  el.textContent = message || "";
  el.hidden = !message;
}

function colour(label) { return label === null || label === undefined ? "#555" : COLOURS[label % COLOURS.length]; }

function figure(src, caption) {
  const fig = document.createElement("figure");
  const img = document.createElement("img");
  img.src = src;
  img.alt = caption;
  const cap = document.createElement("figcaption");
  cap.textContent = caption;
  fig.append(img, cap);
  return fig;
}

// -- the run ---------------------------------------------------------------------------------
async function loadInfo() {
  const info = await api("/api/info");
  state.info = info;
  $("model-name").textContent = info.model;
  document.title = `jmvae explorer: ${info.model} on ${info.data}`;
  $("run-info").textContent = `${info.model} on ${info.data}, epoch ${info.epoch} (step ${info.step}); ` +
    `latent ${info.latent_dim}, hidden ${info.hidden_dim}; images ${info.image_shape.join("x")}; ` +
    `${info.test_size} test images; run folder ${info.run_name}`;
  $("run-info").title = info.run_dir;
  show("data-note", info.data_note);
  const caps = info.capabilities;
  const limits = info.limits;
  const rules = `${limits.formats.join(" or ")}, up to ${limits.max_upload_mb} MB and ${limits.max_side} pixels a side. `;
  $("upload-rules").textContent = info.colour
    ? rules + `A face: an aligned 178x218 CelebA image is cropped as the training faces, any other image to its centre square; ` +
      `then resized to ${info.image_shape.slice(1).join("x")} and standardised like the training faces.`
    : rules + `It is made grayscale, ${info.light_on_dark ? "inverted if mostly light (the data are light digits on dark)" : "inverted if mostly dark"}, ` +
      `padded to the model's aspect ratio, resized to ${info.image_shape.join("x")} and binarized at 0.5.`;

  // Samples.
  const buttons = $("label-buttons");
  buttons.textContent = "";
  if (caps.sample_label.ok) {
    info.classes.forEach((name, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = name;
      b.dataset.label = i;
      b.title = `samples given label ${i} (${name})`;
      b.addEventListener("click", () => sample(i, b));
      buttons.append(b);
    });
  }
  if (info.attributes) {
    $("samples-title").textContent = "Samples from attributes";
    $("samples-hint").textContent = "Tick attributes (the others are off), then sample: fresh images every click.";
    $("image-title").textContent = "A face: its attributes and reconstruction";
    const boxes = $("attribute-boxes");
    boxes.textContent = "";
    info.attributes.forEach((name) => {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = name;
      box.dataset.attribute = name;
      label.append(box, " " + name.replaceAll("_", " "));
      boxes.append(label);
    });
    $("attribute-picker").hidden = false;
    const button = $("attributes-button");
    button.disabled = !caps.sample_attributes.ok;
    button.title = caps.sample_attributes.ok ? caps.sample_attributes.uses : caps.sample_attributes.why;
    button.addEventListener("click", () => {
      const ticked = [...document.querySelectorAll("#attribute-boxes input:checked")].map((b) => b.value);
      sample(null, button, ticked);
    });
    show("samples-off", caps.sample_attributes.ok ? "" : "Attribute samples are off: " + caps.sample_attributes.why);
  } else {
    show("samples-off", caps.sample_label.ok ? "" : "Label samples are off: " + caps.sample_label.why);
  }
  const prior = $("prior-button");
  prior.disabled = !caps.sample_prior.ok;
  prior.title = caps.sample_prior.ok ? caps.sample_prior.uses : caps.sample_prior.why;
  prior.addEventListener("click", () => sample(null, prior));

  // Images.
  const reasons = [];
  if (!caps.predict.ok) reasons.push("Label prediction is off: " + caps.predict.why + ".");
  if (!caps.reconstruct.ok) reasons.push("Reconstruction from the image alone is off: " + caps.reconstruct.why +
    (caps.reconstruct.uses ? ` (shown for ${caps.reconstruct.uses})` : "") + ".");
  show("image-off", reasons.join(" "));
  const testOk = info.test_size > 0;
  $("test-index").max = Math.max(0, info.test_size - 1);
  for (const id of ["test-index", "pick-test", "random-test"]) $(id).disabled = !testOk;

  // Map.
  if (caps.latent_map.ok) {
    await loadMap();
  } else {
    show("map-off", "The latent map is off: " + caps.latent_map.why);
    $("map").hidden = true;
  }
}

// -- samples -----------------------------------------------------------------------------------
async function sample(label, button, attributes = null) {
  const panel = $("panel-samples");
  panel.classList.add("busy");
  try {
    const body = attributes !== null ? { attributes } : label === null ? {} : { label };
    const out = await postJSON("/api/sample", body);
    const img = $("samples");
    img.src = out.grid;
    img.dataset.label = attributes !== null ? "attributes:" + attributes.join(",") : label === null ? "prior" : String(label);
    img.dataset.seed = out.seed;
    $("samples-caption").textContent = attributes !== null
      ? `${out.n} samples given ${attributes.length ? attributes.join(", ") : "no attribute"} (seed ${out.seed})`
      : label === null
      ? `${out.n} samples from p(z) (seed ${out.seed})`
      : `${out.n} samples given label ${out.label}${out.class_name !== String(out.label) ? " (" + out.class_name + ")" : ""} (seed ${out.seed})`;
    $("samples-uses").textContent = out.uses;
    document.querySelectorAll("#panel-samples button").forEach((b) => b.classList.toggle("active", b === button));
    show("samples-error", "");
  } catch (err) {
    show("samples-error", err.message);
  } finally {
    panel.classList.remove("busy");
  }
}

// -- an image ----------------------------------------------------------------------------------
async function analyze(request) {
  const panel = $("panel-image");
  panel.classList.add("busy");
  try {
    const out = await request();
    renderAnalysis(out);
    show("image-error", "");
  } catch (err) {
    show("image-error", err.message);
  } finally {
    panel.classList.remove("busy");
  }
}

function uploadFile(file) {
  const limits = state.info.limits;
  if (file.size > limits.max_upload_mb * 1024 * 1024) {
    show("image-error", `${file.name} is ${(file.size / 1048576).toFixed(1)} MB; the limit is ${limits.max_upload_mb} MB`);
    return;
  }
  const form = new FormData();
  form.append("image", file, file.name);
  analyze(() => api("/api/analyze", { method: "POST", body: form }));
}

function analyzeTest(index) {
  $("test-index").value = index;
  analyze(() => postJSON("/api/analyze", { test_index: index }));
}

// One row of the probability table: the name, a bar, the number; highlighted when ``best``.
function probabilityRow(text, value, highlighted) {
  const best = highlighted ? "best" : "";
  const name = document.createElement("span");
  name.textContent = text;
  name.className = best;
  const bar = document.createElement("div");
  bar.className = "bar " + best;
  const fill = document.createElement("div");
  fill.style.width = (100 * value).toFixed(1) + "%";
  bar.append(fill);
  const wrap = document.createElement("span");
  wrap.className = best;
  wrap.append(bar);
  const num = document.createElement("span");
  num.className = "num " + best;
  num.textContent = value.toFixed(3);
  $("probabilities").append(name, wrap, num);
}

function renderAnalysis(out) {
  $("image-result").hidden = false;
  $("input-image").src = out.input;
  $("input-caption").textContent = out.true_class !== undefined
    ? `${out.source}, label ${out.true_class}` : `${out.source} (as the model sees it)`;
  const recon = $("reconstruction");
  if (out.reconstruction) {
    recon.src = out.reconstruction.image;
    recon.parentElement.hidden = false;
  } else {
    recon.removeAttribute("src");
    recon.parentElement.hidden = true;
  }
  const prediction = $("prediction");
  const probabilities = $("probabilities");
  probabilities.textContent = "";
  const uses = [];
  if (out.prediction && out.prediction.attributes) {
    const top = out.prediction.attributes;
    prediction.innerHTML = "";
    prediction.append("Most probable attributes: ");
    const b = document.createElement("b");
    b.textContent = top.slice(0, 3).map((a) => a.name.replaceAll("_", " ")).join(", ");
    prediction.append(b);
    prediction.dataset.label = top[0].name;
    top.slice(0, 12).forEach((a) => probabilityRow(a.name.replaceAll("_", " "), a.probability, a.probability > 0.5));
    uses.push("prediction: " + out.prediction.uses);
  } else if (out.prediction) {
    const p = out.prediction;
    prediction.innerHTML = "";
    prediction.append("Predicted label: ");
    const b = document.createElement("b");
    b.textContent = p.class_name;
    prediction.append(b, ` with probability ${p.probability.toFixed(3)}`);
    if (out.true_class !== undefined) prediction.append(` (true label: ${out.true_class})`);
    prediction.dataset.label = p.label;
    p.probabilities.forEach((value, i) => probabilityRow(state.info.classes[i], value, i === p.label));
    uses.push("prediction: " + p.uses);
  } else {
    prediction.textContent = "No label prediction: " + out.prediction_off;
    delete prediction.dataset.label;
  }
  if (out.reconstruction) uses.push("reconstruction: " + out.reconstruction.uses);
  else if (out.reconstruction_off) uses.push("no reconstruction: " + out.reconstruction_off);
  $("image-uses").textContent = uses.join("; ");
  const notes = $("notes");
  notes.textContent = "";
  for (const note of out.notes || []) {
    const li = document.createElement("li");
    li.textContent = note;
    notes.append(li);
  }
}

// -- the latent map ---------------------------------------------------------------------------
async function loadMap() {
  const map = await api("/api/latent");
  const xs = map.points.map((p) => p[0]);
  const ys = map.points.map((p) => p[1]);
  const pad = 0.05;
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const dx = (x1 - x0) || 1, dy = (y1 - y0) || 1;
  map.bounds = { x0: x0 - pad * dx, x1: x1 + pad * dx, y0: y0 - pad * dy, y1: y1 + pad * dy };
  state.map = map;
  $("map-uses").textContent = `${map.points.length} test points; ${map.uses}; PCA explains ` +
    `${(100 * map.explained_variance[0]).toFixed(0)}% + ${(100 * map.explained_variance[1]).toFixed(0)}% of their variance`;
  const legend = $("map-legend");
  legend.textContent = "";
  if (map.labels) {
    map.classes.forEach((name, i) => {
      const item = document.createElement("span");
      const dot = document.createElement("i");
      dot.style.background = colour(i);
      item.append(dot, name);
      legend.append(item);
    });
  }
  drawMap();
}

function toCanvas(x, y) {
  const c = $("map"), b = state.map.bounds;
  return [(x - b.x0) / (b.x1 - b.x0) * c.width, (1 - (y - b.y0) / (b.y1 - b.y0)) * c.height];
}

function fromCanvas(cx, cy) {
  const c = $("map"), b = state.map.bounds;
  return [b.x0 + cx / c.width * (b.x1 - b.x0), b.y0 + (1 - cy / c.height) * (b.y1 - b.y0)];
}

function drawMap() {
  const canvas = $("map");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const map = state.map;
  ctx.globalAlpha = 0.75;
  map.points.forEach((p, k) => {
    const [cx, cy] = toCanvas(p[0], p[1]);
    ctx.fillStyle = colour(map.labels ? map.labels[k] : null);
    ctx.beginPath();
    ctx.arc(cx, cy, 2.6, 0, 2 * Math.PI);
    ctx.fill();
  });
  ctx.globalAlpha = 1;
  const ring = (k, style, r) => {
    if (k === null) return;
    const [cx, cy] = toCanvas(map.points[k][0], map.points[k][1]);
    ctx.strokeStyle = style;
    ctx.lineWidth = 2.5;
    ctx.beginPath();
    ctx.arc(cx, cy, r, 0, 2 * Math.PI);
    ctx.stroke();
  };
  ring(state.selected, "#000", 7);
  ring(state.neighbour, "#000", 4.5);
  if (state.cross) {
    const [cx, cy] = toCanvas(state.cross[0], state.cross[1]);
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(cx - 7, cy); ctx.lineTo(cx + 7, cy); ctx.moveTo(cx, cy - 7); ctx.lineTo(cx, cy + 7);
    ctx.stroke();
  }
}

function nearestPoint(cx, cy, radius) {
  let best = null, bestD = radius * radius;
  state.map.points.forEach((p, k) => {
    const [px, py] = toCanvas(p[0], p[1]);
    const d = (px - cx) ** 2 + (py - cy) ** 2;
    if (d <= bestD) { best = k; bestD = d; }
  });
  return best;
}

async function clickMap(event) {
  if (!state.map) return;
  const canvas = $("map");
  const rect = canvas.getBoundingClientRect();
  const cx = (event.clientX - rect.left) * canvas.width / rect.width;
  const cy = (event.clientY - rect.top) * canvas.height / rect.height;
  const k = nearestPoint(cx, cy, 6);
  try {
    if (k !== null) await selectPoint(k);
    else await decodePosition(...fromCanvas(cx, cy));
    show("map-error", "");
  } catch (err) {
    show("map-error", err.message);
  }
}

async function selectPoint(k) {
  const out = await api(`/api/point/${k}`);
  state.selected = k;
  state.neighbour = out.neighbour.point;
  state.cross = null;
  drawMap();
  const details = $("point-details");
  details.textContent = "";
  const name = (p) => p.class_name === null ? "" : `, label ${p.class_name}`;
  details.append(
    figure(out.image, `test image ${out.test_index}${name(out)}`),
    figure(out.decoded, "decoded from its latent"),
    figure(out.neighbour.image, `nearest neighbour: test image ${out.neighbour.test_index}${name(out.neighbour)}`),
    figure(out.neighbour.decoded, `neighbour decoded (distance ${out.neighbour.distance})`),
  );
  details.dataset.point = k;
  const uses = document.createElement("p");
  uses.className = "uses";
  uses.textContent = out.uses;
  details.append(uses);
}

async function decodePosition(x, y) {
  if (!state.info.capabilities.decode_position.ok) {
    throw new Error("Decoding a map position is off: " + state.info.capabilities.decode_position.why);
  }
  const out = await postJSON("/api/decode", { x, y });
  state.selected = state.neighbour = null;
  state.cross = [x, y];
  drawMap();
  const details = $("point-details");
  details.textContent = "";
  details.append(figure(out.decoded, `decoded at map position (${x.toFixed(2)}, ${y.toFixed(2)})`));
  delete details.dataset.point;
  const uses = document.createElement("p");
  uses.className = "uses";
  uses.textContent = out.uses;
  details.append(uses);
}

// -- wiring ----------------------------------------------------------------------------------------
function wire() {
  $("upload").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) uploadFile(file);
    event.target.value = "";
  });
  const panel = $("panel-image");
  panel.addEventListener("dragover", (event) => event.preventDefault());
  panel.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) uploadFile(file);
  });
  $("pick-test").addEventListener("click", () => {
    const value = Number($("test-index").value);
    if (!Number.isInteger(value)) { show("image-error", "the test image number must be a whole number"); return; }
    analyzeTest(value);
  });
  $("random-test").addEventListener("click", () => analyzeTest(Math.floor(Math.random() * state.info.test_size)));
  $("map").addEventListener("click", clickMap);
}

// For tests and the curious: where map point k is on the screen.
window.explorer = {
  state,
  pointPosition(k) {
    const canvas = $("map"), rect = canvas.getBoundingClientRect();
    const [cx, cy] = toCanvas(state.map.points[k][0], state.map.points[k][1]);
    return { x: rect.left + cx * rect.width / canvas.width, y: rect.top + cy * rect.height / canvas.height };
  },
};

wire();
loadInfo()
  .then(() => { document.body.dataset.ready = "1"; })
  .catch((err) => { show("page-error", "Could not load the run: " + err.message); document.body.dataset.ready = "error"; });
