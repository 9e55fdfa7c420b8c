// neuralab dashboard: runs, a run page with a playground, and comparisons.
// Plain JavaScript over the /v1 API; every value from the server is escaped before display.
"use strict";

const view = document.getElementById("view");
const esc = (value) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const fmt = (value) => (typeof value === "number" ? value.toFixed(4) : "");
const MAIN_METRIC = { classification: "accuracy", regression: "r2", reconstruction: "loss" };

async function api(path, options = {}) {
  const token = sessionStorage.getItem("neuralab-token");
  const headers = { ...(options.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(`/v1${path}`, { ...options, headers });
  if (response.status === 401) {
    document.getElementById("token-form").hidden = false;
    throw new Error("this server needs a token: enter it at the top right");
  }
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const e = body.error || {};
    throw new Error(`${e.where}: ${e.what}${e.hint ? ` (${e.hint})` : ""}`);
  }
  return body;
}

const post = (path, data) =>
  api(path, { method: "POST", headers: { "Content-Type": "application/json" },
              body: JSON.stringify(data) });

function stamp(name) {
  const m = name.match(/(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})(?:-\d+)?$/);
  return m ? `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]}` : "";
}

async function runsPage() {
  const { models } = await api("/models");
  if (!models.length) {
    view.innerHTML = "<h1>Runs</h1><p>No finished runs in the served folder yet.</p>";
    return;
  }
  const rows = models.map((m) => {
    const metric = MAIN_METRIC[m.task] || "loss";
    return `<tr><td><a class="run-link" href="#/run/${encodeURIComponent(m.name)}">${esc(m.name)}</a></td>
      <td>${esc(m.family)}</td><td>${esc(m.dataset)}</td>
      <td class="number">${esc(metric)} ${fmt(m.metrics.test[metric])}</td>
      <td>${esc(stamp(m.name))}</td></tr>`;
  });
  view.innerHTML = `<h1>Runs</h1><table id="runs"><thead><tr><th>run</th><th>family</th>
    <th>dataset</th><th>test</th><th>date</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

async function runPage(name) {
  const path = `/models/${encodeURIComponent(name)}`;
  const [model, history] = await Promise.all([api(path), api(`${path}/history`)]);
  view.innerHTML = `<h1>${esc(name)}</h1>
    <p class="muted">${esc(model.family)} · ${esc(model.task)} · ${esc(model.dataset)} ·
      input ${esc(JSON.stringify(model.input.shape))}</p>
    <div class="grid">
      <section class="card"><h2>Playground</h2><div id="playground"></div></section>
      <section class="card"><h2>Learning curves</h2><div id="curves"></div></section>
      <section class="card"><h2>Test metrics</h2><div id="metrics"></div></section>
      <section class="card" id="confusion-card"><h2>Confusion matrix (test)</h2>
        <div id="confusion"></div></section>
    </div>
    <h2>Config</h2><pre id="config"></pre>
    <h2>Report</h2><iframe id="report" title="report" sandbox></iframe>`;
  document.getElementById("metrics").innerHTML = metricsTable(model.metrics.test);
  document.getElementById("curves").innerHTML = curves(history.epochs, MAIN_METRIC[model.task]);
  showConfusion(model);
  playground(model, document.getElementById("playground"));
  api(`${path}/config`).then((text) => { document.getElementById("config").textContent = text; });
  api(`${path}/report`).then(
    (html) => { document.getElementById("report").srcdoc = html; },
    () => { document.getElementById("report").replaceWith("This run has no report."); });
}

function metricsTable(metrics) {
  const rows = Object.entries(metrics).map(
    ([k, v]) => `<tr><td>${esc(k)}</td><td class="number">${fmt(v)}</td></tr>`);
  return `<table>${rows.join("")}</table>`;
}

function showConfusion(model) {
  const matrix = model.confusion_matrix;
  if (!matrix) { document.getElementById("confusion-card").hidden = true; return; }
  const labels = model.input.labels || matrix.map((_, i) => i);
  const max = Math.max(...matrix.flat(), 1);
  const head = `<tr><th>true \\ predicted</th>${labels.map((l) => `<th>${esc(l)}</th>`).join("")}</tr>`;
  const body = matrix.map((row, i) => `<tr><th>${esc(labels[i])}</th>${row.map((n) =>
    `<td style="background: rgba(47,111,223,${(n / max).toFixed(2)})">${n}</td>`).join("")}</tr>`);
  document.getElementById("confusion").innerHTML =
    `<table class="matrix">${head}${body.join("")}</table>`;
}

// Train and validation series per epoch as one small SVG: loss, and the main metric.
function curves(epochs, metric) {
  if (!epochs.length) return "<p class='muted'>No per-epoch metrics (a baseline run).</p>";
  return ["loss", metric].filter(Boolean).map((name) => {
    const series = [`train_${name}`, `val_${name}`].filter((k) => k in epochs[0]);
    return series.length ? chart(name, epochs, series) : "";
  }).join("");
}

function chart(title, epochs, series) {
  const w = 320, h = 140, pad = 28;
  const values = series.flatMap((k) => epochs.map((e) => e[k]));
  const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
  const x = (i) => pad + (i * (w - 2 * pad)) / Math.max(epochs.length - 1, 1);
  const y = (v) => h - pad - ((v - lo) * (h - 2 * pad)) / span;
  const colours = ["#2f6fdf", "#e0672f"];
  const lines = series.map((k, s) => `<polyline fill="none" stroke="${colours[s]}" stroke-width="2"
    points="${epochs.map((e, i) => `${x(i)},${y(e[k])}`).join(" ")}"/>
    <text x="${w - pad - 60}" y="${14 + 12 * s}" style="fill:${colours[s]}">${esc(k)}</text>`);
  return `<svg class="curve" width="${w}" height="${h}" role="img" aria-label="${esc(title)}">
    <text x="${pad}" y="14">${esc(title)}</text>
    <text x="2" y="${pad}">${hi.toPrecision(3)}</text><text x="2" y="${h - pad}">${lo.toPrecision(3)}</text>
    ${lines.join("")}</svg>`;
}

function playground(model, box) {
  const shape = model.input.shape;
  if (model.generates) return generator(model, box);
  if (model.task === "seq2seq") return translator(model, box);
  if (model.input.kind === "image" && shape[0] === 1) return drawingPad(model, box);
  if (model.input.kind === "tabular") return inputForm(model, box);
  box.innerHTML = `<p class="muted">No playground for ${esc(model.input.kind)} inputs;
    POST to <code>/v1/models/${esc(model.name)}/predict</code>.</p>`;
}

// Draw a digit; it is averaged down to the model's grid and scaled to the data's range
// (0-16 for scikit-learn's digits, 0-255 for MNIST-like images).
function drawingPad(model, box) {
  const [, rows, cols] = model.input.shape;
  const top = model.dataset === "digits" ? 16 : 255;
  box.innerHTML = `<canvas id="pad" width="224" height="224"></canvas>
    <p><button id="clear">Clear</button> <span class="muted">Draw a digit.</span></p>
    <div id="probabilities" class="bars"></div>`;
  const canvas = document.getElementById("pad"), ctx = canvas.getContext("2d");
  ctx.lineWidth = 22; ctx.lineCap = "round"; ctx.strokeStyle = "#fff";
  let drawing = false, pending = false;
  const point = (e) => { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  canvas.addEventListener("pointerdown", (e) => {
    drawing = true; ctx.beginPath(); ctx.moveTo(...point(e)); canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    ctx.lineTo(...point(e)); ctx.stroke();
    if (!pending) { pending = true; setTimeout(() => { pending = false; predict(); }, 120); }
  });
  canvas.addEventListener("pointerup", () => { drawing = false; predict(); });
  document.getElementById("clear").onclick = () => {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    document.getElementById("probabilities").innerHTML = "";
  };
  async function predict() {
    const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const cellW = canvas.width / cols, cellH = canvas.height / rows;
    const image = [];
    for (let r = 0; r < rows; r++) {
      const row = [];
      for (let c = 0; c < cols; c++) {
        let sum = 0, n = 0;
        for (let yy = Math.floor(r * cellH); yy < (r + 1) * cellH; yy++)
          for (let xx = Math.floor(c * cellW); xx < (c + 1) * cellW; xx++) {
            sum += pixels[4 * (yy * canvas.width + xx)]; n++;
          }
        row.push((sum / n / 255) * top);
      }
      image.push(row);
    }
    show(await post(`/models/${encodeURIComponent(model.name)}/predict`, { inputs: [[image]] }));
  }
}

function inputForm(model, box) {
  const features = model.input.features ||
    Array.from({ length: model.input.shape[0] }, (_, i) => ({ name: `x${i}`, kind: "numeric" }));
  const fields = features.map((f) => f.kind === "categorical"
    ? `<label>${esc(f.name)}<select name="${esc(f.name)}">${f.categories.map(
        (c) => `<option>${esc(c)}</option>`).join("")}</select></label>`
    : `<label>${esc(f.name)}<input name="${esc(f.name)}" type="number" step="any" value="0"></label>`);
  box.innerHTML = `<form class="inputs">${fields.join("")}<button>Predict</button></form>
    <div id="probabilities" class="bars"></div>`;
  box.querySelector("form").onsubmit = async (event) => {
    event.preventDefault();
    const data = new FormData(event.target);
    const sample = model.input.features
      ? Object.fromEntries(features.map((f) => [f.name,
          f.kind === "numeric" ? Number(data.get(f.name)) : data.get(f.name)]))
      : features.map((f) => Number(data.get(f.name)));
    show(await post(`/models/${encodeURIComponent(model.name)}/predict`, { inputs: [sample] }));
  };
}

function generator(model, box) {
  const text = model.task === "language_model";
  box.innerHTML = `${text ? '<textarea id="prompt" placeholder="Prompt"></textarea>' : ""}
    <p><button id="generate">Generate</button></p><div id="generated"></div>`;
  document.getElementById("generate").onclick = async () => {
    const prompt = text ? document.getElementById("prompt").value : "";
    const { samples } = await post(`/models/${encodeURIComponent(model.name)}/generate`,
      text ? { prompt, max_tokens: 200 } : { num_samples: 8, seed: Date.now() % 1e6 });
    const out = document.getElementById("generated");
    if (text) { out.innerHTML = "<pre></pre>"; out.firstChild.textContent = samples.join("\n\n"); }
    else out.replaceChildren(...samples.map(sampleImage));
  };
}

// A generated single-channel image as a small grey canvas, scaled to its own range.
function sampleImage(sample) {
  const pixels = sample.flat(Infinity), rows = sample[0].length, cols = sample[0][0].length;
  const lo = Math.min(...pixels), span = Math.max(...pixels) - lo || 1;
  const canvas = Object.assign(document.createElement("canvas"), { width: cols, height: rows });
  canvas.className = "sample";
  const ctx = canvas.getContext("2d"), image = ctx.createImageData(cols, rows);
  pixels.forEach((v, i) => {
    const grey = (255 * (v - lo)) / span;
    image.data.set([grey, grey, grey, 255], 4 * i);
  });
  ctx.putImageData(image, 0, 0);
  return canvas;
}

function translator(model, box) {
  box.innerHTML = `<form class="inputs"><label>Source<input id="source"></label>
    <button>Predict</button></form><pre id="translation"></pre>`;
  box.querySelector("form").onsubmit = async (event) => {
    event.preventDefault();
    const source = document.getElementById("source").value;
    const { predictions } = await post(`/models/${encodeURIComponent(model.name)}/predict`,
      { inputs: [source] });
    document.getElementById("translation").textContent = predictions[0].text;
  };
}

function show({ predictions }) {
  const out = document.getElementById("probabilities");
  const p = predictions[0];
  if (!p.probabilities) {
    out.innerHTML = `<span>value</span><strong>${esc(JSON.stringify(p.value ?? p.anomaly_score))}</strong><span></span>`;
    return;
  }
  out.innerHTML = Object.entries(p.probabilities).map(([label, prob]) =>
    `<span class="prob ${label === p.label ? "best" : ""}">${esc(label)}</span>
     <div class="bar" style="width:${(100 * prob).toFixed(1)}%"></div>
     <span class="number">${(100 * prob).toFixed(1)}%</span>`).join("");
}

async function comparePage() {
  const { comparisons } = await api("/comparisons");
  if (!comparisons.length) {
    view.innerHTML = `<h1>Comparisons</h1><p>No leaderboards yet: <code>neuralab compare</code>
      writes them into the served folder.</p>`;
    return;
  }
  view.innerHTML = "<h1>Comparisons</h1>" + comparisons.map(({ name, rows }) => {
    const columns = Object.keys(rows[0] || {});
    return `<h2>${esc(name)} · <a href="#" data-report="${esc(name)}">report</a></h2>
      <table class="leaderboard"><tr>${columns.map((c) => `<th>${esc(c)}</th>`).join("")}</tr>
      ${rows.map((r) => `<tr>${columns.map((c) => `<td>${esc(r[c])}</td>`).join("")}</tr>`).join("")}
      </table>`;
  }).join("") + `<iframe id="report" title="report" sandbox hidden></iframe>`;
  view.querySelectorAll("[data-report]").forEach((link) => {
    link.onclick = async (event) => {
      event.preventDefault();
      const frame = document.getElementById("report");
      frame.srcdoc = await api(`/comparisons/${encodeURIComponent(link.dataset.report)}/report`);
      frame.hidden = false;
    };
  });
}

async function route() {
  const hash = location.hash.slice(1) || "/";
  try {
    if (hash.startsWith("/run/")) await runPage(decodeURIComponent(hash.slice(5)));
    else if (hash === "/compare") await comparePage();
    else await runsPage();
  } catch (error) {
    view.innerHTML = `<p class="error">${esc(error.message)}</p>`;
  }
}

document.getElementById("token-form").onsubmit = (event) => {
  event.preventDefault();
  sessionStorage.setItem("neuralab-token", document.getElementById("token").value);
  document.getElementById("token-form").hidden = true;
  route();
};
window.addEventListener("hashchange", route);
route();
