// The gan-server playground: plain browser JavaScript, no build step, nothing
// loaded from elsewhere. It calls the same HTTP endpoints a user would curl:
// /v1 and /v1/models for what is served, /v1/models/NAME/sample.png and
// interpolate.png for the images. The token lives in a variable of this page
// only (never in storage); every request carries it as Authorization.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const KINDS = {
    CONDITIONING_KIND_NONE: "none",
    CONDITIONING_KIND_CLASS: "class",
    CONDITIONING_KIND_INFOGAN: "infogan",
  };
  const state = { token: "", about: null, models: [], seq: { sample: 0, strip: 0 }, timer: 0 };

  // -- talking to the server ---------------------------------------------------

  async function request(path) {
    const headers = state.token ? { Authorization: "Bearer " + state.token } : {};
    let response;
    try {
      response = await fetch(path, { headers, cache: "no-store" });
    } catch (err) {
      throw new Error("the server did not answer (" + err.message + ")");
    }
    if (!response.ok) {
      let message = response.status + " " + response.statusText;
      try {
        const body = await response.json();
        if (body && typeof body.error === "string") message = body.error;
      } catch (_) {
        // not JSON: keep the status line
      }
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return response;
  }

  function explain(err) {
    if (err.status === 401) return err.message + ". Enter the server's token at the top.";
    if (err.status === 503) return err.message + " (the server is starting or stopping).";
    if (err.status >= 500) return "Server error " + err.status + ": " + err.message;
    return err.message;
  }

  function showError(box, err) {
    box.textContent = explain(err);
    box.hidden = false;
  }

  // -- the chosen model and its controls ------------------------------------------

  function model() {
    return state.models.find((m) => m.name === $("model").value);
  }

  function kind(m) {
    return KINDS[m.conditioning.kind] || "none";
  }

  function digits(m) {
    const c = m.conditioning;
    if (kind(m) === "class") {
      return c.class_names.length && c.class_names.every((n) => /^[0-9]$/.test(n)) ? c.class_names.map(Number) : [];
    }
    if (kind(m) === "infogan") return [...new Set(c.category_to_digit)].sort((a, b) => a - b);
    return [];
  }

  function fill(select, values, chosen) {
    select.replaceChildren();
    const any = new Option("any", "");
    select.add(any);
    for (const v of values) select.add(new Option(String(v), String(v)));
    select.value = values.map(String).includes(String(chosen)) ? String(chosen) : String(values[0] ?? "");
  }

  function setupModel() {
    const m = model();
    if (!m) return;
    const c = m.conditioning;
    const ds = digits(m);
    $("digit-field").hidden = ds.length === 0;
    if (ds.length) fill($("digit"), ds, $("digit").value || 7);
    const labels = kind(m) === "class" && !ds.length;
    $("label-field").hidden = !labels;
    if (labels) fill($("label"), c.class_names, $("label").value);
    const categories = kind(m) === "infogan" && !ds.length;
    $("category-field").hidden = !categories;
    if (categories) fill($("category"), [...Array(c.num_categories).keys()], 0);

    const codes = $("codes");
    codes.replaceChildren();
    const count = kind(m) === "infogan" ? c.num_continuous : 0;
    codes.hidden = count === 0;
    const low = c.continuous_min;
    const high = c.continuous_max;
    for (let i = 0; i < count; i++) {
      const label = document.createElement("label");
      const slider = document.createElement("input");
      slider.type = "range";
      slider.min = String(low);
      slider.max = String(high);
      slider.step = String((high - low) / 40);
      slider.value = String((low + high) / 2);
      slider.id = "code-" + i;
      slider.className = "code";
      const shown = document.createElement("output");
      shown.textContent = slider.value;
      slider.addEventListener("input", () => {
        shown.textContent = slider.value;
        schedule();
      });
      label.append("code " + (i + 1), slider, shown);
      codes.append(label);
    }
  }

  // -- URLs and the equivalent commands ---------------------------------------------

  function conditioning() {
    const pairs = [];
    for (const name of ["digit", "label", "category"]) {
      if (!$(name + "-field").hidden && $(name).value !== "") pairs.push([name, $(name).value]);
    }
    const codes = [...document.querySelectorAll("#codes input.code")].map((s) => s.value);
    if (codes.length) pairs.push(["code", codes.join(",")]);
    return pairs;
  }

  function query(pairs) {
    // Commas stay readable in code=0.5,-1; everything else is escaped.
    return pairs.map(([k, v]) => k + "=" + encodeURIComponent(v).replace(/%2C/g, ",")).join("&");
  }

  function quote(text) {
    return /^[A-Za-z0-9_.,:/=+-]+$/.test(text) ? text : "'" + text.replace(/'/g, "'\\''") + "'";
  }

  function suffix(pairs) {
    const get = (name) => (pairs.find(([k]) => k === name) || [])[1];
    if (get("digit") !== undefined) return "-d" + get("digit");
    if (get("label") !== undefined) return "-" + get("label");
    if (get("category") !== undefined) return "-c" + get("category");
    return "";
  }

  function flags(pairs) {
    return pairs.map(([k, v]) => " --" + k + " " + quote(v)).join("");
  }

  function curl(path, out) {
    const auth = state.token ? ' -H "Authorization: Bearer $GAN_TOKEN"' : "";
    return "curl -o " + quote(out) + auth + " '" + location.origin + path + "'";
  }

  function cli() {
    const about = state.about || {};
    let cmd = "gan-client --server " + location.hostname + ":" + about.grpc_port;
    if (about.tls) cmd += " --tls";
    if (state.token) cmd += ' --token "$GAN_TOKEN"';
    return cmd;
  }

  // -- images ----------------------------------------------------------------------

  async function show(which, path) {
    const seq = ++state.seq[which];
    const img = $(which);
    const box = $(which + "-error");
    img.closest("figure").dataset.state = "loading";
    try {
      const blob = await (await request(path)).blob();
      if (seq !== state.seq[which]) return; // a newer request replaced this one
      const old = img.src;
      img.dataset.path = path;
      img.src = URL.createObjectURL(blob);
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
      box.hidden = true;
      img.closest("figure").dataset.state = "ready";
    } catch (err) {
      if (seq !== state.seq[which]) return;
      showError(box, err);
      img.closest("figure").dataset.state = "error";
    }
  }

  function zoom(img) {
    // Small grids drawn larger, pixels kept square (image-rendering: pixelated).
    const factor = Math.max(1, Math.min(4, Math.floor(640 / Math.max(1, img.naturalWidth))));
    img.style.width = img.naturalWidth * factor + "px";
  }

  function renderSample() {
    const m = model();
    if (!m) return;
    const seed = $("seed").value.trim();
    const n = $("n").value;
    const cond = conditioning();
    const path = "/v1/models/" + encodeURIComponent(m.name) + "/sample.png?" + query([["n", n], ["seed", seed], ...cond]);
    const out = m.name + suffix(cond) + "-s" + seed + ".png";
    $("sample-curl").textContent = curl(path, out);
    $("sample-cli").textContent =
      cli() + " sample --model " + m.name + " -n " + n + " --seed " + quote(seed) + flags(cond) + " --out " + quote(out);
    const h = m.image.height;
    const w = m.image.width;
    $("sample-note").textContent =
      n + " images of " + m.name + " version " + m.version + ", seed " + seed +
      (cond.length ? ", " + cond.map(([k, v]) => k + " " + v).join(", ") : "") +
      "; each cell is " + w + "\u00d7" + h + " with 2 pixels between.";
    show("sample", path);
  }

  function renderStrip() {
    const m = model();
    if (!m) return;
    const a = $("seed-a").value.trim();
    const b = $("seed-b").value.trim();
    const steps = $("steps").value.trim();
    const method = $("method").value;
    const cond = conditioning();
    const path =
      "/v1/models/" + encodeURIComponent(m.name) + "/interpolate.png?" +
      query([["seed_a", a], ["seed_b", b], ["steps", steps], ["method", method], ...cond]);
    const out = m.name + suffix(cond) + "-" + method + "-s" + a + "-s" + b + ".png";
    $("strip-curl").textContent = curl(path, out);
    $("strip-cli").textContent =
      cli() + " interpolate --model " + m.name + " --from " + quote(a) + " --to " + quote(b) +
      " --steps " + quote(steps) + " --method " + method + flags(cond) + " --out " + quote(out);
    show("strip", path);
  }

  function render() {
    clearTimeout(state.timer);
    renderSample();
    renderStrip();
  }

  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(render, 150);
  }

  // -- start -------------------------------------------------------------------------

  async function load() {
    const box = $("error");
    try {
      const [about, list] = await Promise.all([
        request("/v1").then((r) => r.json()),
        request("/v1/models").then((r) => r.json()),
      ]);
      state.about = about;
      state.models = list.models || [];
      box.hidden = true;
    } catch (err) {
      showError(box, err);
      return;
    }
    const select = $("model");
    const previous = select.value;
    select.replaceChildren(...state.models.map((m) => new Option(m.name + " (" + m.variant + ")", m.name)));
    const names = state.models.map((m) => m.name);
    select.value = names.includes(previous) ? previous : names.includes("infogan") ? "infogan" : names[0] || "";
    document.body.dataset.models = String(state.models.length);
    setupModel();
    render();
  }

  for (const id of ["sample", "strip"]) $(id).addEventListener("load", (e) => zoom(e.target));
  $("model").addEventListener("change", () => {
    setupModel();
    render();
  });
  for (const id of ["digit", "label", "category", "n", "method"]) $(id).addEventListener("change", render);
  for (const id of ["seed", "seed-a", "seed-b", "steps"]) $(id).addEventListener("input", schedule);
  $("reseed").addEventListener("click", () => {
    $("seed").value = String(Math.floor(Math.random() * 1e9));
    render();
  });
  $("token").addEventListener("change", () => {
    state.token = $("token").value;
    load();
  });
  load();
})();
