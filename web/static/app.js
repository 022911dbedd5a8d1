// gpux dashboard: REST snapshots first, then live over /v1/ws.
// No build step, no framework: plain DOM and uPlot (vendor/uplot).
"use strict";
(() => {
  const CLOUDS = [["aws", "AWS"], ["azure", "Azure"], ["gcp", "Google"]];
  const TENOR = { "24h": "24 hours", "7d": "7 days", "30d": "30 days", later: "later" };
  const LENGTH = { le24h: "≤ 24 h", le7d: "≤ 7 days", longer: "> 7 days" };
  const css = getComputedStyle(document.documentElement);
  const COLOR = {
    good: css.getPropertyValue("--good").trim() || "#0a6630",
    bad: css.getPropertyValue("--bad").trim() || "#a3122a",
    accent: css.getPropertyValue("--accent").trim() || "#0b57b7",
  };

  const state = {
    prices: new Map(), // market → price row
    markets: [],
    market: null, // the market page's id, null on the prices page
    book: null,
    trades: [], // newest first
    spot: [[], []], // seconds, price
    candles: [[], [], [], [], [], []], // seconds, open, high, low, close, volume
    interval: "1h",
  };
  // Counters the browser test reads: REST calls per path, feed messages.
  const stats = { rest: {}, ws: 0, snapshots: 0, updates: 0, gaps: 0 };
  const charts = {};
  window.__gpux = { state, stats, charts };

  const $ = (sel) => document.querySelector(sel);
  const el = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k);
    return e;
  };
  const dash = (v) => (v === null || v === undefined || v === "" ? "–" : v);
  const fmtTime = (iso) => (iso ? iso.slice(0, 16).replace("T", " ") : "–");
  const secs = (iso) => Date.parse(iso) / 1000;

  function showError(msg) {
    const e = $("#error");
    e.textContent = msg || "";
    e.hidden = !msg;
  }

  // ---- REST ----

  async function get(path) {
    const key = path.split("?")[0];
    stats.rest[key] = (stats.rest[key] || 0) + 1;
    const r = await fetch(path, { headers: { Accept: "application/json" } });
    if (!r.ok) {
      let p = {};
      try { p = await r.json(); } catch (_) { /* not problem+json */ }
      throw new Error(`${key}: ${r.status} ${p.code || ""} ${p.detail || p.title || ""}`.trim());
    }
    return r.json();
  }

  // ---- feed: resubscribes a channel whose seq skips, reconnects with backoff ----

  const feed = {
    ws: null,
    wanted: new Set(),
    last: new Map(), // channel → last seq shown
    fresh: new Map(), // channel → snapshot seen since (re)subscribing
    backoff: 1000,

    connect() {
      const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/ws";
      const ws = new WebSocket(url);
      this.ws = ws;
      setConn("connecting", "connecting…");
      ws.onopen = () => {
        this.backoff = 1000;
        setConn("live", "live");
        this.fresh.clear();
        if (this.wanted.size) this.send("subscribe", [...this.wanted]);
      };
      ws.onmessage = (ev) => this.receive(ev.data);
      ws.onclose = () => {
        setConn("down", "disconnected, retrying…");
        setTimeout(() => this.connect(), this.backoff);
        this.backoff = Math.min(this.backoff * 2, 15000);
      };
    },
    send(op, channels) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN && channels.length) {
        this.ws.send(JSON.stringify({ op, channels }));
      }
    },
    set(channels) {
      const next = new Set(channels);
      const drop = [...this.wanted].filter((c) => !next.has(c));
      const add = channels.filter((c) => !this.wanted.has(c));
      this.wanted = next;
      for (const c of drop) { this.last.delete(c); this.fresh.delete(c); }
      this.send("unsubscribe", drop);
      for (const c of add) this.fresh.set(c, false);
      this.send("subscribe", add);
    },
    receive(raw) {
      let m;
      try { m = JSON.parse(raw); } catch (_) { return; }
      stats.ws++;
      if (m.type === "error") { showError(`feed: ${m.code}: ${m.detail}`); return; }
      if (m.type !== "snapshot" && m.type !== "update") return; // heartbeat, auth, unknown
      if (!this.wanted.has(m.channel)) return;
      if (m.type === "snapshot") {
        this.fresh.set(m.channel, true);
        this.last.set(m.channel, m.seq);
        stats.snapshots++;
        onFeed(m);
        return;
      }
      if (!this.fresh.get(m.channel)) return; // from a subscription being replaced
      const last = this.last.get(m.channel);
      if (m.seq <= last) return;
      if (m.seq !== last + 1) {
        // A missed message: start the channel over from a fresh snapshot.
        stats.gaps++;
        this.fresh.set(m.channel, false);
        this.send("unsubscribe", [m.channel]);
        this.send("subscribe", [m.channel]);
        return;
      }
      this.last.set(m.channel, m.seq);
      stats.updates++;
      onFeed(m);
    },
  };

  function setConn(st, text) {
    const c = $("#conn");
    c.dataset.state = st;
    c.textContent = text;
  }

  function onFeed(m) {
    const ch = m.channel;
    if (ch === "prices") {
      // A snapshot holds every market; an update may hold only those that
      // changed, as a list or as {"markets": [...]}.
      const rows = Array.isArray(m.data) ? m.data : (m.data && m.data.markets) || [];
      if (m.type === "snapshot" && Array.isArray(m.data)) state.prices.clear();
      for (const r of rows) state.prices.set(r.market, r);
      renderPrices();
      if (state.market) renderMarketPrices();
    } else if (ch === "book:" + state.market) {
      state.book = m.data;
      const p = state.book.spot && state.book.spot.price;
      if (p !== null && p !== undefined) addSpotPoint(secs(m.ts), Number(p));
      renderBook();
    } else if (ch === "trades:" + state.market) {
      if (m.type === "snapshot") {
        state.trades = m.data || [];
      } else {
        state.trades.unshift(m.data);
        state.trades.length = Math.min(state.trades.length, 100);
        addTradeToCandles(m.data, m.ts);
      }
      renderTrades();
    }
  }

  // ---- prices page ----

  // bestCloud is provider's on-demand row behind the discount: the one the
  // server names in discount_basis, else its cheapest on-demand row.
  function bestCloud(row, provider) {
    const basis = (row.discount_basis || {})[provider];
    if (basis && basis.on_demand) return basis.on_demand;
    let best = null;
    for (const r of row.reference || []) {
      if (r.provider !== provider || r.price_type !== "on_demand") continue;
      if (!best || Number(r.usd_per_gpu_hour) < Number(best.usd_per_gpu_hour)) best = r;
    }
    return best;
  }

  // A stale reference row is older than the server's staleness limit
  // (or undated): the provider may charge something else by now, so the
  // rate and the discount against it carry a visible marker.
  const STALE_TIP = "stale: this rate is older than the server's staleness limit, or undated";

  function staleMark() {
    return el("span", { class: "stale", title: STALE_TIP, text: "stale" });
  }

  function refTitle(ref) {
    return `${ref.instance_type}, ${ref.region || ""} (${ref.as_of || "undated"}${ref.stale ? ", stale" : ""})`;
  }

  function discountText(frac) {
    if (frac === null || frac === undefined) return null;
    const pct = (Number(frac) * 100).toFixed(1);
    return Number(frac) >= 0 ? `${pct}% less` : `${(-pct).toFixed(1)}% more`;
  }

  function cell(value, attrs) {
    const td = el("td", attrs, dash(value));
    return td;
  }

  function setCell(td, text) {
    if (td.textContent !== text) {
      td.textContent = text;
      td.classList.remove("flash");
      void td.offsetWidth; // restart the animation
      td.classList.add("flash");
    }
  }

  function renderPrices() {
    const body = $("#prices tbody");
    const filter = $("#filter").value.trim().toLowerCase();
    const pricedOnly = $("#priced-only").checked;
    const rows = [...state.prices.values()].filter((r) =>
      (!filter || r.market.includes(filter)) &&
      (!pricedOnly || r.spot_price !== null || r.last_trade_price !== null || r.best_ask !== null));
    const keep = new Set(rows.map((r) => r.market));
    for (const tr of [...body.rows]) if (!keep.has(tr.dataset.market)) tr.remove();
    let prev = null;
    for (const r of rows) {
      let tr = body.querySelector(`tr[data-market="${CSS.escape(r.market)}"]`);
      if (!tr) {
        tr = el("tr", { "data-market": r.market });
        // GPU over region: the column stays narrow on a phone.
        const link = el("a", { href: "#/market/" + r.market, "aria-label": r.market },
          el("span", { class: "gpu", text: r.gpu }), el("span", { class: "region", text: r.region }));
        tr.append(el("th", { scope: "row" }, link));
        for (const col of ["spot", "last", "vwap", "ask"]) {
          tr.append(cell("", { class: "num" + (col === "vwap" || col === "ask" ? " wide" : ""), "data-col": col }));
        }
        for (const [p] of CLOUDS) tr.append(el("td", { class: "num", "data-col": p }));
        tr.querySelectorAll("td").forEach((td) => { td.textContent = "–"; });
      }
      if (prev ? prev.nextSibling !== tr : body.firstChild !== tr) {
        if (prev) prev.after(tr); else body.prepend(tr);
      }
      prev = tr;
      setCell(tr.querySelector('[data-col="spot"]'), dash(r.spot_price));
      setCell(tr.querySelector('[data-col="last"]'), dash(r.last_trade_price));
      setCell(tr.querySelector('[data-col="vwap"]'), dash(r.vwap_24h));
      setCell(tr.querySelector('[data-col="ask"]'), dash(r.best_ask));
      for (const [p] of CLOUDS) {
        const td = tr.querySelector(`[data-col="${p}"]`);
        const ref = bestCloud(r, p);
        const d = discountText((r.discount_vs_reference || {})[p]);
        const text = ref ? ref.usd_per_gpu_hour + (ref.stale ? " stale" : "") + (d ? " " + d : "") : "–";
        if (td.dataset.text !== text) {
          td.dataset.text = text;
          td.replaceChildren(ref ? ref.usd_per_gpu_hour : "–");
          td.title = ref ? refTitle(ref) : "";
          if (ref && ref.stale) td.append(staleMark());
          if (d) td.append(el("span", { class: "disc" + (d.endsWith("more") ? " neg" : ""), text: d }));
        }
      }
    }
  }

  // ---- market page ----

  function card(k, v, id) {
    return el("div", { class: "card" }, el("div", { class: "k", text: k }), el("div", { class: "v", id, text: dash(v) }));
  }

  function renderMarketPrices() {
    const r = state.prices.get(state.market);
    renderCards();
    const body = $("#curve tbody");
    body.replaceChildren();
    const pts = (r && r.forward_curve) || [];
    if (!pts.length) body.append(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "no resting orders" })));
    for (const p of pts) {
      body.append(el("tr", {},
        el("td", { text: TENOR[p.tenor] || p.tenor }), el("td", { text: LENGTH[p.duration] || p.duration }),
        el("td", { class: "num side-bid", text: p.best_bid ? `${p.best_bid} × ${p.bid_quantity}` : "–" }),
        el("td", { class: "num side-ask", text: p.best_ask ? `${p.best_ask} × ${p.ask_quantity}` : "–" })));
    }
  }

  function renderCards() {
    const r = state.prices.get(state.market) || {};
    const s = (state.book && state.book.spot) || {};
    let cloud = null;
    let best = null;
    for (const [p, name] of CLOUDS) {
      const ref = bestCloud(r, p);
      if (ref && (!best || Number(ref.usd_per_gpu_hour) < Number(best.usd_per_gpu_hour))) { best = ref; cloud = [p, name]; }
    }
    const disc = cloud ? discountText((r.discount_vs_reference || {})[cloud[0]]) : null;
    $("#spot-cards").replaceChildren(
      card("Spot price", s.price, "card-spot"),
      card("Cheapest free spot GPU", s.ask, "card-ask"),
      card("Spot GPUs offered", s.supply, "card-supply"),
      card("Running", s.allocated, "card-allocated"),
      card("Waiting", s.waiting, "card-waiting"),
      card("Last trade", r.last_trade_price, "card-last"),
      card("24 h VWAP", r.vwap_24h, "card-vwap"),
      card(cloud ? `${cloud[1]} on-demand` : "Cloud on-demand", best ? best.usd_per_gpu_hour + (disc ? ` (${disc})` : "") : null, "card-cloud"),
    );
    if (best) {
      const v = $("#card-cloud");
      v.title = refTitle(best);
      if (best.stale) v.append(" ", staleMark());
    }
  }

  function renderBook() {
    renderCards();
    const b = state.book;
    const body = $("#depth tbody");
    body.replaceChildren();
    if (!b) return;
    const levels = [...(b.asks || []).map((l) => ({ ...l, side: "ask" })), ...(b.bids || []).map((l) => ({ ...l, side: "bid" }))];
    levels.sort((x, y) => x.start.localeCompare(y.start) || x.end.localeCompare(y.end) ||
      (x.side === y.side ? (x.side === "ask" ? Number(x.price) - Number(y.price) : Number(y.price) - Number(x.price)) : x.side === "ask" ? -1 : 1));
    if (!levels.length) body.append(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "no resting orders" })));
    for (const l of levels) {
      body.append(el("tr", {},
        el("td", { text: `${fmtTime(l.start)} → ${fmtTime(l.end).slice(5)}` }),
        el("td", { class: "side-" + l.side, text: l.side }),
        el("td", { class: "num", text: l.price }),
        el("td", { class: "num", text: String(l.quantity) })));
    }
  }

  function renderTrades() {
    const body = $("#trades tbody");
    body.replaceChildren();
    if (!state.trades.length) body.append(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "no trades yet" })));
    for (const t of state.trades.slice(0, 50)) {
      body.append(el("tr", {},
        el("td", { text: t.time ? t.time.slice(0, 19).replace("T", " ") : "–" }),
        el("td", { class: "num", text: String(t.quantity) }),
        el("td", { class: "num", text: t.price }),
        el("td", { text: `${fmtTime(t.start)} → ${fmtTime(t.end).slice(5)}` })));
    }
  }

  // ---- charts ----

  const utc = (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC");

  function chartWidth(node) { return Math.max(280, node.clientWidth || 320); }

  function drawChart(name, node, opts, data) {
    if (!data[0].length) {
      if (charts[name]) { charts[name].destroy(); delete charts[name]; }
      node.replaceChildren(el("p", { class: "empty", text: "no data yet" }));
      return;
    }
    if (charts[name] && charts[name].gpuxOpts === opts.key) { charts[name].setData(data); return; }
    if (charts[name]) { charts[name].destroy(); delete charts[name]; }
    node.replaceChildren();
    charts[name] = new uPlot({ width: chartWidth(node), height: 240, tzDate: utc, ...opts }, data, node);
    charts[name].gpuxOpts = opts.key;
  }

  // dataRange is an x range from the data itself, padded by pad seconds
  // and reaching back to at least from: uPlot widens a lone time point to
  // a thousand days.
  function dataRange(u, pad, from) {
    const xs = u.data[0];
    const now = Date.now() / 1000;
    if (!xs.length) return [now - 3600, now];
    return [Math.min(xs[0], from) - pad, xs[xs.length - 1] + pad];
  }

  function drawSpot() {
    drawChart("spot", $("#chart-spot"), {
      // At least the last hour up to now, so a lone point sits in context.
      scales: { x: { time: true, range: (u) => dataRange(u, 60, Date.now() / 1000 - 3600) } },
      series: [{}, { label: "spot $/GPU-h", stroke: COLOR.accent, width: 2, points: { show: true, size: 5 } }],
      axes: [{}, { size: 60 }],
    }, state.spot);
  }

  // candles draws open/high/low/close boxes in uPlot's draw hook (uPlot
  // has no candlestick series of its own).
  function candles(u) {
    const [xs, o, h, l, c] = u.data;
    const ctx = u.ctx;
    const bw = Math.max(3, Math.min(24, (u.bbox.width / Math.max(xs.length, 8)) * 0.6));
    ctx.save();
    for (let i = 0; i < xs.length; i++) {
      const x = u.valToPos(xs[i], "x", true);
      const [yo, yh, yl, yc] = [o[i], h[i], l[i], c[i]].map((v) => u.valToPos(v, "y", true));
      ctx.fillStyle = ctx.strokeStyle = c[i] >= o[i] ? COLOR.good : COLOR.bad;
      ctx.lineWidth = Math.max(1, devicePixelRatio);
      ctx.beginPath();
      ctx.moveTo(x, yh);
      ctx.lineTo(x, yl);
      ctx.stroke();
      ctx.fillRect(x - bw / 2, Math.min(yo, yc), bw, Math.max(2, Math.abs(yc - yo)));
    }
    ctx.restore();
  }

  function drawCandles() {
    const none = { paths: () => null, points: { show: false }, stroke: "transparent" };
    const step = INTERVAL_S[state.interval];
    drawChart("candles", $("#chart-candles"), {
      // One interval either side, so the first and last candles show whole.
      scales: { x: { time: true, range: (u) => dataRange(u, step, Infinity) } },
      series: [{}, { label: "open", ...none }, { label: "high", ...none }, { label: "low", ...none }, { label: "close", ...none }],
      axes: [{}, { size: 60 }],
      hooks: { draw: [candles] },
      key: state.interval, // a new interval builds a new chart
    }, state.candles.slice(0, 5)); // volume stays out of the price chart
  }

  function addSpotPoint(t, p) {
    const [xs, ys] = state.spot;
    if (xs.length && xs[xs.length - 1] >= t) {
      if (xs[xs.length - 1] === t) ys[ys.length - 1] = p;
      return drawSpot();
    }
    if (ys.length && ys[ys.length - 1] === p && xs.length > 1 && ys[ys.length - 2] === p) {
      xs[xs.length - 1] = t; // a flat run: move its end instead of piling points
    } else {
      xs.push(t);
      ys.push(p);
    }
    drawSpot();
  }

  const INTERVAL_S = { "1m": 60, "1h": 3600, "1d": 86400 };

  // addTradeToCandles folds a live trade into the candle of its interval
  // (by the engine time of the message).
  function addTradeToCandles(t, ts) {
    const step = INTERVAL_S[state.interval];
    const start = Math.floor(secs(t.time || ts) / step) * step;
    const p = Number(t.price);
    const vol = t.quantity * (secs(t.end) - secs(t.start)) / 3600;
    const [xs, o, h, l, c, v] = state.candles;
    const i = xs.length - 1;
    if (i >= 0 && xs[i] === start) {
      h[i] = Math.max(h[i], p); l[i] = Math.min(l[i], p); c[i] = p; v[i] += vol;
    } else if (i < 0 || xs[i] < start) {
      xs.push(start); o.push(p); h.push(p); l.push(p); c.push(p); v.push(vol);
    }
    drawCandles();
  }

  async function loadCandles(market) {
    const hist = await get(`/v1/markets/${encodeURIComponent(market)}/history?interval=${state.interval}&kind=trades`);
    if (market !== state.market) return;
    const cs = hist.candles || [];
    state.candles = [cs.map((x) => secs(x.start)), cs.map((x) => Number(x.open)), cs.map((x) => Number(x.high)),
      cs.map((x) => Number(x.low)), cs.map((x) => Number(x.close)), cs.map((x) => x.volume)];
    drawCandles();
  }

  async function loadSpot(market) {
    const from = new Date(Date.now() - 6 * 3600e3).toISOString().slice(0, 19) + "Z";
    const hist = await get(`/v1/markets/${encodeURIComponent(market)}/history?interval=1m&kind=spot&from=${from}`);
    if (market !== state.market) return;
    const cs = hist.candles || [];
    state.spot = [cs.map((x) => secs(x.start)), cs.map((x) => Number(x.close))];
    drawSpot();
  }

  window.addEventListener("resize", () => {
    for (const [name, u] of Object.entries(charts)) {
      const node = name === "spot" ? $("#chart-spot") : $("#chart-candles");
      u.setSize({ width: chartWidth(node), height: 240 });
    }
  });

  // ---- routing ----

  async function route() {
    showError("");
    const m = location.hash.match(/^#\/market\/([a-z0-9.\-]+)$/);
    const market = m ? m[1] : null;
    $("#view-prices").hidden = !!market;
    $("#view-market").hidden = !market;
    $("#market-select").value = market || "";
    for (const name of Object.keys(charts)) { charts[name].destroy(); delete charts[name]; }
    state.market = market;
    if (!market) {
      document.title = "gpux — GPU-hour prices";
      feed.set(["prices"]);
      renderPrices();
      return;
    }
    document.title = `gpux — ${market}`;
    $("#market-title").textContent = market;
    state.book = null; state.trades = []; state.spot = [[], []];
    state.candles = [[], [], [], [], [], []];
    try {
      const [book, trades] = await Promise.all([
        get(`/v1/markets/${encodeURIComponent(market)}/book`),
        get(`/v1/markets/${encodeURIComponent(market)}/trades?limit=50`),
      ]);
      if (market !== state.market) return;
      state.book = book;
      state.trades = trades.items || [];
      renderBook(); renderTrades(); renderMarketPrices();
      await Promise.all([loadSpot(market), loadCandles(market)]);
    } catch (e) {
      showError(String(e.message || e));
    }
    if (market === state.market) feed.set(["prices", "book:" + market, "trades:" + market]);
  }

  async function start() {
    $("#filter").addEventListener("input", renderPrices);
    $("#priced-only").addEventListener("change", renderPrices);
    $("#market-select").addEventListener("change", (e) => {
      location.hash = e.target.value ? "#/market/" + e.target.value : "#/";
    });
    $("#interval").addEventListener("change", (e) => {
      state.interval = e.target.value;
      if (state.market) loadCandles(state.market).catch((err) => showError(String(err.message || err)));
    });
    window.addEventListener("hashchange", route);
    try {
      const [markets, prices] = await Promise.all([get("/v1/markets"), get("/v1/prices")]);
      state.markets = markets;
      for (const mk of markets) $("#market-select").append(el("option", { value: mk.id, text: mk.id }));
      for (const r of prices) state.prices.set(r.market, r);
    } catch (e) {
      showError(String(e.message || e));
    }
    feed.connect();
    await route();
    document.body.dataset.ready = "true";
  }

  window.__gpux.feed = feed;
  start();
})();
