// The router console's own script: charts drawn as SVG from /v1/router/overview, the
// playground, the health probe. Text is written with textContent only, never innerHTML,
// so a config name holding markup shows as text.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const W = 300, H = 120, LEFT = 30, BOTTOM = 14, TOP = 6;
  const REFRESH_MS = 3000;

  function el(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function fmtNum(v) {
    if (v === null || v === undefined) return "–";
    if (Math.abs(v) >= 100) return String(Math.round(v));
    return String(Math.round(v * 100) / 100);
  }

  function usd(v) {
    if (v === null || v === undefined) return "price unknown";
    return v > 0 && v < 0.01 ? "$" + v.toFixed(6) : "$" + v.toFixed(2);
  }

  function pct(v) {
    return v === null || v === undefined ? "–" : (v * 100).toFixed(1) + "%";
  }

  function ms(v) {
    return v === null || v === undefined ? "–" : Math.round(v) + " ms";
  }

  function clock(epoch) {
    const d = new Date(epoch * 1000);
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }

  // Axes and the max label; returns a function from value to y.
  function frame(svg, max, unit) {
    clear(svg);
    const top = max > 0 ? max : 1;
    svg.appendChild(el("line", { class: "axis", x1: LEFT, y1: H - BOTTOM, x2: W, y2: H - BOTTOM }));
    svg.appendChild(el("line", { class: "axis", x1: LEFT, y1: TOP, x2: LEFT, y2: H - BOTTOM }));
    svg.appendChild(el("text", { x: 2, y: TOP + 6 }, fmtNum(top) + (unit || "")));
    svg.appendChild(el("text", { x: 2, y: H - BOTTOM }, "0"));
    return (v) => H - BOTTOM - (v / top) * (H - BOTTOM - TOP);
  }

  function timeLabels(svg, buckets) {
    if (!buckets.length) return;
    svg.appendChild(el("text", { x: LEFT, y: H - 2 }, clock(buckets[0].start)));
    svg.appendChild(el("text", { x: W - 24, y: H - 2 }, clock(buckets[buckets.length - 1].start)));
  }

  // series: [{values: [...], cls: "bar"|"bar second"}]; bars side by side per bucket.
  function bars(svg, buckets, series, unit, maxHint) {
    let max = maxHint || 0;
    for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
    const y = frame(svg, max, unit);
    if (!series.some((s) => s.values.some((v) => v !== null && v !== undefined))) {
      svg.appendChild(el("text", { x: LEFT + 10, y: H / 2 }, "no data yet"));
    }
    const slot = (W - LEFT - 2) / Math.max(1, buckets.length);
    const width = Math.max(1, slot / series.length - 1);
    series.forEach((s, si) => {
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) return;
        const top = y(v);
        const rect = el("rect", {
          class: s.cls, x: LEFT + 1 + i * slot + si * width, y: top,
          width: width, height: Math.max(0, H - BOTTOM - top), "data-value": v,
        });
        rect.appendChild(el("title", {}, clock(buckets[i].start) + " " + s.name + ": " + fmtNum(v) + (unit || "")));
        svg.appendChild(rect);
      });
    });
    timeLabels(svg, buckets);
  }

  function lines(svg, buckets, series, unit) {
    let max = 0;
    for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
    const y = frame(svg, max, unit);
    const step = (W - LEFT - 4) / Math.max(1, buckets.length - 1);
    for (const s of series) {
      const pts = [];
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) return;
        pts.push((LEFT + 2 + i * step).toFixed(1) + "," + y(v).toFixed(1));
        const dot = el("circle", { class: "bar " + s.cls, cx: LEFT + 2 + i * step, cy: y(v), r: 1.8, "data-value": v });
        dot.appendChild(el("title", {}, clock(buckets[i].start) + " " + s.name + ": " + fmtNum(v) + (unit || "")));
        svg.appendChild(dot);
      });
      if (pts.length > 1) svg.appendChild(el("polyline", { class: "line " + s.cls, points: pts.join(" ") }));
    }
    timeLabels(svg, buckets);
  }

  // Horizontal bars, one per model: names are text nodes (a model may be named <b>x</b>).
  function hbars(svg, rows) {
    clear(svg);
    if (!rows.length) {
      svg.appendChild(el("text", { x: 10, y: 20 }, "no spend yet"));
      return;
    }
    const shown = rows.slice(0, 6);
    const max = Math.max(...shown.map((r) => r.cost_usd), 0) || 1;
    const rowH = (H - 4) / shown.length;
    shown.forEach((r, i) => {
      const y = 2 + i * rowH;
      const name = r.model.length > 18 ? r.model.slice(0, 17) + "…" : r.model;
      const label = el("text", { class: "label", x: 2, y: y + rowH / 2 + 3 }, name);
      label.appendChild(el("title", {}, r.model));
      svg.appendChild(label);
      const w = Math.max(r.cost_usd > 0 ? 1 : 0, (r.cost_usd / max) * 100);
      const rect = el("rect", { class: "bar", x: 90, y: y + 2, width: w, height: Math.max(2, rowH - 5), "data-value": r.cost_usd, "data-model": r.model });
      rect.appendChild(el("title", {}, r.model + ": " + usd(r.cost_usd) + ", " + r.requests + " requests"));
      svg.appendChild(rect);
      svg.appendChild(el("text", { x: 94 + w, y: y + rowH / 2 + 3 }, usd(r.cost_usd) + " · " + r.requests + " req"));
    });
  }

  function setField(name, text) {
    for (const node of document.querySelectorAll('[data-field="' + name + '"]')) node.textContent = text;
  }

  function drawOverview(o) {
    const t = o.traffic, b = t.buckets;
    const col = (k, scale) => b.map((x) => (x[k] === null ? null : x[k] * (scale || 1)));
    const rate = (num, den) => b.map((x) => (x[den] ? x[num] / x[den] * 100 : null));
    bars(document.getElementById("chart-requests"), b, [{ name: "requests", cls: "bar", values: col("requests", 60 / t.bucket_s) }], "");
    lines(document.getElementById("chart-latency"), b, [
      { name: "p50", cls: "", values: col("p50_ms") },
      { name: "p99", cls: "second", values: col("p99_ms") },
    ], "ms");
    bars(document.getElementById("chart-errors"), b, [
      { name: "errors", cls: "bar", values: rate("errors", "requests") },
      { name: "fallbacks", cls: "bar second", values: rate("fallbacks", "requests") },
    ], "%", 100);
    bars(document.getElementById("chart-cache"), b, [{ name: "cache hits", cls: "bar", values: rate("cache_hits", "cache_lookups") }], "%", 100);
    hbars(document.getElementById("chart-spend-today"), o.spend.today);
    hbars(document.getElementById("chart-spend-month"), o.spend.month);
    setField("requests_per_min", fmtNum(t.requests_per_min));
    setField("p50_ms", ms(t.p50_ms));
    setField("p99_ms", ms(t.p99_ms));
    setField("error_rate", pct(t.error_rate));
    setField("fallback_rate", pct(t.fallback_rate));
    setField("cache_hit_rate", pct(t.cache_hit_rate));
    setField("today_usd", usd(o.spend.today_usd));
    setField("month_usd", usd(o.spend.month_usd));
    const updated = document.getElementById("updated");
    if (updated) updated.textContent = "updated " + new Date().toLocaleTimeString();
  }

  async function getJSON(url) {
    const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const body = await r.json();
    if (!r.ok) throw new Error((body.error && body.error.message) || r.statusText);
    return body;
  }

  async function postJSON(url, payload) {
    const r = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(payload),
    });
    const body = await r.json();
    if (!r.ok) throw new Error((body.error && body.error.message) || r.statusText);
    return body;
  }

  function overviewPage() {
    const tick = async () => {
      try {
        drawOverview(await getJSON("/v1/router/overview"));
      } catch (e) {
        const updated = document.getElementById("updated");
        if (updated) updated.textContent = "could not refresh: " + e.message;
      }
    };
    tick();
    setInterval(tick, REFRESH_MS);
  }

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
  }

  function showTrace(trace) {
    const body = document.querySelector("#pg-trace tbody");
    clear(body);
    for (const r of trace.rows) {
      const tr = document.createElement("tr");
      cell(tr, r.rule, "rule");
      cell(tr, r.result);
      cell(tr, r.model, "model");
      cell(tr, r.verdict, r.verdict.startsWith("dropped") ? "failed" : (r.verdict === "chosen" ? "ok" : ""));
      cell(tr, r.detail);
      body.appendChild(tr);
    }
    document.getElementById("pg-chosen").textContent = trace.model
      ? "chosen: " + trace.model + " via " + trace.provider + " (rule " + trace.rule + "); order: " + trace.order.join(", ")
      : "no rule can serve this request";
    document.getElementById("pg-trace-box").hidden = false;
  }

  function playgroundPage() {
    const form = document.getElementById("playground");
    const status = document.getElementById("pg-status");
    const payload = () => {
      const meta = document.getElementById("pg-metadata").value.trim();
      return {
        prompt: document.getElementById("pg-prompt").value,
        use_case: document.getElementById("pg-use-case").value.trim() || null,
        tags: document.getElementById("pg-tags").value,
        metadata: meta ? JSON.parse(meta) : {},
      };
    };
    const act = async (url, done) => {
      status.textContent = "working…";
      status.className = "note";
      try {
        done(await postJSON(url, payload()));
        status.textContent = "";
      } catch (e) {
        status.textContent = e.message;
        status.className = "error";
      }
    };
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      act("/v1/router/playground/explain", showTrace);
    });
    document.getElementById("pg-run").addEventListener("click", () => {
      act("/v1/router/playground/run", (res) => {
        document.getElementById("pg-answer").textContent = res.text;
        document.getElementById("pg-model").textContent = res.model + " (" + res.provider + ")";
        document.getElementById("pg-rule").textContent = res.rule || "–";
        document.getElementById("pg-cost").textContent = usd(res.cost_usd);
        document.getElementById("pg-latency").textContent = ms(res.latency_ms);
        const attempts = document.getElementById("pg-attempts");
        clear(attempts);
        for (const a of res.attempts) {
          const span = document.createElement("span");
          span.className = "failed";
          span.textContent = a.model + ": " + a.error + " ";
          attempts.appendChild(span);
        }
        const ok = document.createElement("span");
        ok.className = "ok";
        ok.textContent = res.model + (res.cached ? " (cached)" : "");
        attempts.appendChild(ok);
        document.getElementById("pg-result").hidden = false;
        showTrace(res.trace);
      });
    });
  }

  function modelsPage() {
    const button = document.getElementById("probe");
    const status = document.getElementById("probe-status");
    button.addEventListener("click", async () => {
      status.textContent = "probing…";
      try {
        await postJSON("/v1/router/health", {});
        window.location.reload();
      } catch (e) {
        status.textContent = e.message;
      }
    });
  }

  const pages = { overview: overviewPage, playground: playgroundPage, models: modelsPage };
  const start = pages[document.body.dataset.page];
  if (start) start();
})();
