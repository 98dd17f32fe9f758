/**
 * The dashboard's browser script (served as `/dashboard/app.js`).
 *
 * Rules it keeps: the key lives in `sessionStorage` and travels only as
 * `Authorization: Bearer`; server values are set with `textContent` (never parsed
 * as HTML); amounts are decimal strings turned into BigInt micro-USDC for display,
 * never floats (a float is used only for a bar's pixel height). Every amount keeps
 * its exact 6-place value in `data-usdc` and its `title`; the "exact" toggle shows it.
 *
 * Written without template literals so it can sit in this TypeScript string as is.
 */
export const script = String.raw`(function () {
  "use strict";

  var KEY_STORAGE = "ringmaster.dashboard.key";
  var EXACT_STORAGE = "ringmaster.dashboard.exact";
  var SVG_NS = "http://www.w3.org/2000/svg";
  var PALETTE = ["#3f6df5", "#1f9d6b", "#f0962e", "#d64b62", "#8a63d2", "#17a9c2", "#c4a21b", "#7d8597"];
  var PAGE_SIZE = 20;
  var METRICS = {
    revenue: { title: "Revenue by region", field: "revenue_usdc" },
    spent: { title: "Spending by region", field: "spent_usdc" },
    referral: { title: "Referral income by region", field: "referral_income_usdc" }
  };

  var state = freshState();

  function freshState() {
    return {
      key: null, session: null, overview: null, network: null, audit: null,
      watermark: null, loading: null, refreshing: false, again: false,
      metric: "revenue", exact: localStorage.getItem(EXACT_STORAGE) === "1",
      filters: { status: "", region: "", counterparty: "" }, cursors: [null], page: 0,
      detailId: null, seen: {}, liveAbort: null, pollTimer: null, reconnectTimer: null, recheckTimer: null, backoffMs: 1000, regionColors: {}
    };
  }

  // ---------------------------------------------------------------- DOM helpers

  function $(id) { return document.getElementById(id); }

  function el(tag, props, children) {
    var node = document.createElement(tag);
    applyProps(node, props);
    appendAll(node, children);
    return node;
  }

  function svg(tag, attrs, children) {
    var node = document.createElementNS(SVG_NS, tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    appendAll(node, children);
    return node;
  }

  function applyProps(node, props) {
    if (!props) return;
    Object.keys(props).forEach(function (k) {
      var v = props[k];
      if (v === undefined || v === null) return;
      if (k === "text") node.textContent = String(v);
      else if (k === "className") node.className = v;
      else if (k === "on") Object.keys(v).forEach(function (e) { node.addEventListener(e, v[e]); });
      else if (k === "dataset") Object.keys(v).forEach(function (d) { node.dataset[d] = String(v[d]); });
      else node.setAttribute(k, String(v));
    });
  }

  function appendAll(node, children) {
    if (children === undefined || children === null) return;
    if (!Array.isArray(children)) children = [children];
    children.forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    });
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  // ---------------------------------------------------------------- money and time

  /** "1234.500000" -> 1234500000n. */
  function micros(text) {
    var s = String(text);
    var negative = s.charAt(0) === "-";
    if (negative) s = s.slice(1);
    var parts = s.split(".");
    var frac = (parts[1] || "").slice(0, 6);
    while (frac.length < 6) frac += "0";
    var value = BigInt(parts[0] || "0") * 1000000n + BigInt(frac);
    return negative ? -value : value;
  }

  function group(digits) { return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ","); }

  /** Micro-USDC as "1,234.50" (or all 6 places when exact). */
  function formatMicros(value, exact) {
    var negative = value < 0n;
    var v = negative ? -value : value;
    var out;
    if (exact) {
      var frac6 = (v % 1000000n).toString();
      while (frac6.length < 6) frac6 = "0" + frac6;
      out = group((v / 1000000n).toString()) + "." + frac6;
    } else {
      if (v > 0n && v < 5000n) return (negative ? "-" : "") + "<0.01";
      var cents = (v + 5000n) / 10000n;
      var c = (cents % 100n).toString();
      if (c.length < 2) c = "0" + c;
      out = group((cents / 100n).toString()) + "." + c;
    }
    return (negative ? "-" : "") + out;
  }

  function exactText(value) {
    var negative = value < 0n;
    var v = negative ? -value : value;
    var frac = (v % 1000000n).toString();
    while (frac.length < 6) frac = "0" + frac;
    return (negative ? "-" : "") + (v / 1000000n).toString() + "." + frac;
  }

  /** An amount element: formatted text, the exact value in data-usdc and the tooltip. */
  function money(text, className) {
    var value = micros(text);
    var exact = exactText(value);
    return el("span", {
      className: "money" + (className ? " " + className : ""),
      title: exact + " USDC",
      dataset: { usdc: exact },
      text: formatMicros(value, state.exact)
    });
  }

  function moneyFromMicros(value, className) { return money(exactText(value), className); }

  function refreshMoney() {
    Array.prototype.forEach.call(document.querySelectorAll(".money"), function (node) {
      node.textContent = formatMicros(micros(node.dataset.usdc), state.exact);
    });
  }

  function pad2(n) { return (n < 10 ? "0" : "") + n; }

  /** UTC, minute precision: operators compare regions across time zones. */
  function when(iso) {
    var d = new Date(iso);
    return d.getUTCFullYear() + "-" + pad2(d.getUTCMonth() + 1) + "-" + pad2(d.getUTCDate()) + " " +
      pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes()) + ":" + pad2(d.getUTCSeconds());
  }

  function timeEl(iso) {
    if (!iso) return el("span", { className: "muted", text: "—" });
    var text = when(iso);
    // The date part hides at phone width (the title keeps the full time).
    return el("time", { datetime: iso, title: iso }, [el("span", { className: "date-part", text: text.slice(0, 11) }), text.slice(11)]);
  }

  function shortWallet(wallet) { return wallet.slice(0, 6) + "…" + wallet.slice(-4); }

  function walletEl(wallet, name) {
    var own = state.session && state.session.agent && state.session.agent.wallet_address === wallet;
    return el("span", { className: "party", dataset: { wallet: wallet } }, [
      name ? el("span", { className: "name", text: name }) : null,
      name ? " " : null,
      el("span", { className: "wallet", title: wallet, text: shortWallet(wallet) }),
      own ? el("span", { className: "you", text: "you" }) : null
    ]);
  }

  function statusEl(status) {
    return el("span", { className: "status", dataset: { status: status } }, [el("span", { className: "dot s-" + status }), status]);
  }

  function colorOf(region) {
    if (!state.regionColors[region]) {
      var n = Object.keys(state.regionColors).length;
      state.regionColors[region] = PALETTE[n % PALETTE.length];
    }
    return state.regionColors[region];
  }

  // ---------------------------------------------------------------- talking to the server

  function AuthError(message) { this.message = message; }

  function request(path, key) {
    return fetch(path, { headers: { authorization: "Bearer " + (key || state.key) }, cache: "no-store" }).then(function (res) {
      if (res.status === 401) throw new AuthError("The key was not accepted.");
      return res.json().catch(function () { return null; }).then(function (body) {
        if (!res.ok) throw new Error((body && body.message) || ("HTTP " + res.status));
        return body;
      });
    });
  }

  function api(path) {
    return request(path).catch(function (error) {
      if (error instanceof AuthError) signOut("Your key is no longer accepted; sign in again.");
      throw error;
    });
  }

  function showBanner(text) {
    var b = $("banner");
    b.textContent = text || "";
    b.hidden = !text;
  }

  // ---------------------------------------------------------------- sign-in

  function showSignIn(message) {
    $("app").hidden = true;
    $("who").hidden = true;
    $("controls").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = message || "";
    $("key").value = "";
    $("key").focus();
  }

  function signIn(event) {
    event.preventDefault();
    var key = $("key").value.trim();
    if (!key) { $("signin-error").textContent = "Paste an API key."; return; }
    $("signin-button").disabled = true;
    $("signin-error").textContent = "";
    request("/api/dashboard/session", key).then(function (session) {
      sessionStorage.setItem(KEY_STORAGE, key);
      start(key, session);
    }, function (error) {
      $("signin-error").textContent = error instanceof AuthError ? "That key was not accepted." : ("Could not sign in: " + error.message);
    }).then(function () { $("signin-button").disabled = false; });
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY_STORAGE);
    stopLive();
    if ($("detail").open) $("detail").close();
    // Nothing of the previous viewer's data stays in the page.
    ["kpis", "statuses", "chart", "legend", "network", "network-earned", "audit-range", "page-label", "detail-body", "who"].forEach(function (id) { clear($(id)); });
    clear($("regions").tBodies[0]); clear($("regions").tFoot); clear($("audit").tBodies[0]);
    var exact = state.exact;
    state = freshState();
    state.exact = exact;
    showSignIn(message);
  }

  function start(key, session) {
    state.key = key;
    state.session = session;
    $("signin").hidden = true;
    $("app").hidden = false;
    $("controls").hidden = false;
    renderWho();
    refresh();
    connectLive();
  }

  function renderWho() {
    var who = $("who");
    clear(who);
    var s = state.session;
    if (s.scope === "operator") {
      appendAll(who, [el("span", { className: "badge operator", text: "Operator" }), el("span", { className: "muted", text: "all agents · region " + s.region })]);
    } else {
      appendAll(who, [
        el("span", { className: "badge", text: "Agent" }),
        el("span", { className: "name", text: s.agent.agent_name }),
        el("span", { className: "wallet", title: s.agent.wallet_address, text: shortWallet(s.agent.wallet_address) })
      ]);
    }
    who.hidden = false;
  }

  // ---------------------------------------------------------------- loading

  function auditPath() {
    var q = ["limit=" + PAGE_SIZE];
    var f = state.filters;
    if (f.status) q.push("status=" + encodeURIComponent(f.status));
    if (f.region) q.push("region=" + encodeURIComponent(f.region));
    if (f.counterparty) q.push("counterparty=" + encodeURIComponent(f.counterparty));
    var cursor = state.cursors[state.page];
    if (cursor) q.push("cursor=" + encodeURIComponent(cursor));
    return "/api/dashboard/escrows?" + q.join("&");
  }

  /**
   * Reloads everything. The watermark is read first: anything that changes after it
   * moves the server's watermark past it, so a later event triggers another refresh.
   */
  function refresh() {
    if (!state.key) return Promise.resolve();
    if (state.refreshing) { state.again = true; return Promise.resolve(); }
    state.refreshing = true;
    var key = state.key;
    return api("/api/dashboard/watermark").then(function (w) {
      state.loading = w.watermark;
      return Promise.all([
        api("/api/dashboard/overview"), api("/api/dashboard/network"), api(auditPath()),
        state.detailId ? api("/api/dashboard/escrows/" + encodeURIComponent(state.detailId)).catch(function () { return null; }) : null
      ]).then(function (results) {
        if (state.key !== key) return;
        state.watermark = w.watermark;
        renderOverview(results[0]);
        renderNetwork(results[1]);
        renderAudit(results[2]);
        if (results[3] && state.detailId === results[3].escrow.escrow_id) renderDetail(results[3]);
        refreshMoney();
        // The operator's figures may lag the watermark a little (the server recomputes
        // them at most every recheck_ms): ask again once they may have caught up.
        if (results[0].watermark !== w.watermark) scheduleRecheck();
        showBanner("");
        document.body.dataset.loaded = "1";
      });
    }).catch(function (error) {
      if (state.key === key && !(error instanceof AuthError)) showBanner("Could not load the dashboard: " + error.message);
    }).then(function () {
      if (state.key !== key) return;
      state.refreshing = false;
      state.loading = null;
      if (state.again) { state.again = false; refresh(); }
    });
  }

  function scheduleRecheck() {
    if (state.recheckTimer || !state.session) return;
    state.recheckTimer = setTimeout(function () { state.recheckTimer = null; refresh(); }, state.session.live.recheck_ms);
  }

  function onWatermark(watermark) {
    if (watermark === state.watermark || watermark === state.loading) return;
    if (state.refreshing) state.again = true; else refresh();
  }

  // ---------------------------------------------------------------- live updates

  function setLive(mode) {
    var node = $("live");
    node.dataset.state = mode;
    node.textContent = mode;
  }

  function stopLive() {
    if (state.liveAbort) state.liveAbort.abort();
    state.liveAbort = null;
    stopPolling();
    if (state.reconnectTimer) clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    if (state.recheckTimer) clearTimeout(state.recheckTimer);
    state.recheckTimer = null;
  }

  function startPolling() {
    if (state.pollTimer || !state.session) return;
    setLive("polling");
    state.pollTimer = setInterval(function () {
      api("/api/dashboard/watermark").then(function (w) { onWatermark(w.watermark); }, function () {});
    }, state.session.live.poll_interval_ms);
  }

  function stopPolling() {
    if (state.pollTimer) clearInterval(state.pollTimer);
    state.pollTimer = null;
  }

  function scheduleReconnect(delayMs) {
    if (state.reconnectTimer || !state.key) return;
    state.reconnectTimer = setTimeout(function () { state.reconnectTimer = null; connectLive(); }, delayMs);
  }

  function onEvent(block) {
    var event = "message", data = "";
    block.split("\n").forEach(function (line) {
      if (line.indexOf("event:") === 0) event = line.slice(6).trim();
      else if (line.indexOf("data:") === 0) data += line.slice(5).trim();
    });
    if (event === "change") {
      try { onWatermark(JSON.parse(data).watermark); } catch (e) { /* a malformed event is ignored */ }
    }
  }

  /** Server-sent events over fetch: EventSource cannot send the Authorization header. */
  function connectLive() {
    if (!state.key) return;
    if (state.liveAbort) state.liveAbort.abort();
    var abort = new AbortController();
    state.liveAbort = abort;
    var key = state.key;
    fetch("/api/dashboard/live", { headers: { authorization: "Bearer " + key, accept: "text/event-stream" }, cache: "no-store", signal: abort.signal })
      .then(function (res) {
        if (res.status === 401) { signOut("Your key is no longer accepted; sign in again."); return; }
        if (!res.ok || !res.body) throw new Error("live stream refused: HTTP " + res.status);
        stopPolling();
        setLive("live");
        state.backoffMs = 1000;
        var reader = res.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        var pump = function () {
          return reader.read().then(function (chunk) {
            if (chunk.done) return;
            buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n");
            var at;
            while ((at = buffer.indexOf("\n\n")) >= 0) {
              onEvent(buffer.slice(0, at));
              buffer = buffer.slice(at + 2);
            }
            return pump();
          });
        };
        return pump().then(function () {
          // The server ends streams after a while: reconnect at once.
          if (state.key === key && state.liveAbort === abort) scheduleReconnect(100);
        });
      })
      .catch(function () {
        if (abort.signal.aborted || state.key !== key) return;
        startPolling();
        if (state.pollTimer) setLive("polling"); else setLive("reconnecting");
        var delay = state.backoffMs;
        state.backoffMs = Math.min(state.backoffMs * 2, 30000);
        scheduleReconnect(delay);
      });
  }

  // ---------------------------------------------------------------- overview

  function kpi(label, amountText, sub, id) {
    return el("div", { className: "card kpi", id: id }, [
      el("div", { className: "label", text: label }),
      el("div", { className: "value" }, [money(amountText), el("span", { className: "unit", text: "USDC" })]),
      sub ? el("div", { className: "sub", text: sub }) : null
    ]);
  }

  function renderOverview(o) {
    state.overview = o;
    var operator = o.scope === "operator";
    var kpis = $("kpis");
    clear(kpis);
    appendAll(kpis, [
      kpi("Revenue", o.totals.revenue_usdc, operator ? "net paid to payees" : "net received as payee", "kpi-revenue"),
      kpi("Spending", o.totals.spent_usdc, operator ? "gross released by payers" : "gross released as payer", "kpi-spent"),
      kpi("Fees paid", o.totals.fees_paid_usdc, "borne by payees", "kpi-fees"),
      kpi("Referral income", o.totals.referral_income_usdc, operator ? "paid to referrers" : "from agents you referred", "kpi-referral"),
      kpi("Locked", o.locked_usdc, "in pending escrows", "kpi-locked"),
      operator
        ? kpi("Platform fees", o.platform_fees_usdc, "kept after referral shares", "kpi-platform")
        : kpi("Available", o.available_usdc, "spendable balance", "kpi-available")
    ]);

    var statuses = $("statuses");
    clear(statuses);
    ["pending", "released", "cancelled", "expired"].forEach(function (s) {
      statuses.appendChild(el("button", {
        type: "button", className: "pill", "aria-pressed": state.filters.status === s ? "true" : "false",
        dataset: { status: s }, title: "Show " + s + " escrows",
        on: { click: function () { setFilters({ status: state.filters.status === s ? "" : s, region: state.filters.region, counterparty: state.filters.counterparty }); } }
      }, [el("span", { className: "dot s-" + s }), s, el("span", { className: "count", text: String(o.status_counts[s]) })]));
    });

    o.by_region.forEach(function (r) { colorOf(r.region); });
    renderRegions(o);
    renderChart();
    renderRegionOptions(o);
  }

  function renderRegions(o) {
    var table = $("regions");
    var body = table.tBodies[0];
    clear(body);
    clear(table.tFoot);
    if (o.by_region.length === 0) {
      body.appendChild(el("tr", null, el("td", { colspan: 6, className: "empty", text: "No escrows yet." })));
      return;
    }
    var total = { escrows: 0, revenue: 0n, spent: 0n, fees: 0n, referral: 0n };
    o.by_region.forEach(function (r) {
      total.escrows += r.escrows;
      total.revenue += micros(r.revenue_usdc); total.spent += micros(r.spent_usdc);
      total.fees += micros(r.fees_paid_usdc); total.referral += micros(r.referral_income_usdc);
      body.appendChild(el("tr", { dataset: { region: r.region } }, [
        el("td", null, [el("span", { className: "swatch" }), " ", r.region]),
        el("td", { className: "n", text: String(r.escrows) }),
        el("td", { className: "n", dataset: { metric: "revenue" } }, money(r.revenue_usdc)),
        el("td", { className: "n", dataset: { metric: "spent" } }, money(r.spent_usdc)),
        el("td", { className: "n opt", dataset: { metric: "fees" } }, money(r.fees_paid_usdc)),
        el("td", { className: "n opt", dataset: { metric: "referral" } }, money(r.referral_income_usdc))
      ]));
    });
    Array.prototype.forEach.call(body.querySelectorAll(".swatch"), function (sw, i) { sw.style.background = colorOf(o.by_region[i].region); });
    table.tFoot.appendChild(el("tr", null, [
      el("td", { text: "All regions" }),
      el("td", { className: "n", text: String(total.escrows) }),
      el("td", { className: "n" }, moneyFromMicros(total.revenue)),
      el("td", { className: "n" }, moneyFromMicros(total.spent)),
      el("td", { className: "n opt" }, moneyFromMicros(total.fees)),
      el("td", { className: "n opt" }, moneyFromMicros(total.referral))
    ]));
  }

  function renderRegionOptions(o) {
    var select = $("f-region");
    var current = state.filters.region;
    clear(select);
    select.appendChild(el("option", { value: "", text: "any" }));
    var names = o.by_region.map(function (r) { return r.region; });
    if (current && names.indexOf(current) < 0) names.push(current);
    names.forEach(function (name) { select.appendChild(el("option", { value: name, text: name })); });
    select.value = current;
  }

  // ---------------------------------------------------------------- chart

  function niceStep(maxMicros) {
    // A round step (1, 2 or 5 × 10^k micro-USDC) giving about four grid lines.
    var raw = maxMicros / 4n;
    if (raw < 1n) raw = 1n;
    var pow = 1n;
    while (pow * 10n <= raw) pow *= 10n;
    var steps = [1n, 2n, 5n, 10n];
    for (var i = 0; i < steps.length; i++) if (pow * steps[i] >= raw) return pow * steps[i];
    return pow * 10n;
  }

  function shortAmount(value) {
    if (value === 0n) return "0";
    var whole = value / 1000000n;
    if (whole >= 1000000n) return (whole / 1000000n).toString() + "M";
    if (whole >= 10000n) return (whole / 1000n).toString() + "k";
    if (whole >= 1n) return group(whole.toString());
    return formatMicros(value, false);
  }

  function bucketLabel(ms, bucketMs) {
    var d = new Date(ms);
    if (bucketMs >= 86400000) return (d.getUTCMonth() + 1) + "/" + d.getUTCDate();
    return pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes());
  }

  function renderChart() {
    var o = state.overview;
    if (!o) return;
    var metric = METRICS[state.metric];
    $("chart-title").textContent = metric.title + " over time";
    Array.prototype.forEach.call($("metric").querySelectorAll("button"), function (b) {
      b.setAttribute("aria-pressed", b.dataset.metric === state.metric ? "true" : "false");
    });
    var chart = $("chart");
    var legend = $("legend");
    clear(chart);
    clear(legend);

    // Drawn at the container's own width so labels keep their size on a phone.
    var W = Math.max(280, Math.min(1400, Math.round(chart.clientWidth || 720)));
    var H = W < 520 ? 190 : 250, left = 48, right = 8, top = 12, bottom = 28;
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": metric.title + " over time" });
    chart.appendChild(root);

    var step = o.series.bucket_ms;
    var byStart = {};
    o.series.buckets.forEach(function (b) { byStart[new Date(b.start).getTime()] = b; });
    var starts = Object.keys(byStart).map(Number).sort(function (a, b) { return a - b; });
    var regions = o.by_region.map(function (r) { return r.region; });
    var totals = {};
    regions.forEach(function (r) { totals[r] = 0n; });

    if (starts.length === 0) {
      root.appendChild(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", "class": "empty" }, "No money has moved yet."));
    } else {
      var first = starts[0], last = starts[starts.length - 1];
      var columns = [];
      for (var t = first; t <= last && columns.length < 120; t += step) columns.push(t);
      var stacks = columns.map(function (t) {
        var b = byStart[t];
        var parts = [];
        var sum = 0n;
        if (b) b.regions.forEach(function (p) {
          var v = micros(p[metric.field]);
          if (v > 0n) { parts.push({ region: p.region, value: v }); sum += v; }
          if (totals[p.region] === undefined) totals[p.region] = 0n;
          totals[p.region] += v;
        });
        return { t: t, parts: parts, sum: sum };
      });
      var max = 0n;
      stacks.forEach(function (s) { if (s.sum > max) max = s.sum; });
      var unit = niceStep(max > 0n ? max : 1000000n);
      var lines = Number((max + unit - 1n) / unit);
      if (lines < 1) lines = 1;
      var top2 = unit * BigInt(lines);
      var plotH = H - top - bottom, plotW = W - left - right;
      var y = function (v) { return top + plotH - plotH * Number(v * 10000n / top2) / 10000; };
      for (var i = 0; i <= lines; i++) {
        var v = unit * BigInt(i);
        root.appendChild(svg("line", { x1: left, x2: W - right, y1: y(v), y2: y(v), "class": "grid-line" }));
        root.appendChild(svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", "class": "axis" }, shortAmount(v)));
      }
      var slot = plotW / columns.length;
      var barW = Math.max(2, Math.min(44, slot * 0.7));
      var labelEvery = Math.max(1, Math.ceil(columns.length / Math.max(2, Math.floor(plotW / 70))));
      stacks.forEach(function (s, i) {
        var x = left + slot * i + (slot - barW) / 2;
        var base = 0n;
        s.parts.forEach(function (p) {
          var y1 = y(base + p.value), y0 = y(base);
          var rect = svg("rect", {
            x: x, y: y1, width: barW, height: Math.max(1, y0 - y1), rx: 2, fill: colorOf(p.region),
            "data-region": p.region, "data-usdc": exactText(p.value)
          }, svg("title", null, p.region + " · " + when(new Date(s.t).toISOString()) + " UTC · " + exactText(p.value) + " USDC"));
          root.appendChild(rect);
          base += p.value;
        });
        if (i % labelEvery === 0) {
          root.appendChild(svg("text", { x: left + slot * i + slot / 2, y: H - 8, "text-anchor": "middle", "class": "axis" }, bucketLabel(s.t, step)));
        }
      });
    }
    regions.forEach(function (r) {
      var swatch = el("span", { className: "swatch" });
      swatch.style.background = colorOf(r);
      legend.appendChild(el("span", { className: "legend-item", dataset: { region: r } }, [swatch, r, " ", moneyFromMicros(totals[r] || 0n)]));
    });
  }

  // ---------------------------------------------------------------- referral network

  function renderNetwork(n) {
    state.network = n;
    var root = $("network");
    clear(root);
    clear($("network-earned"));
    appendAll($("network-earned"), ["earned ", money(n.earned_usdc), " USDC"]);
    var byWallet = {};
    var children = {};
    n.agents.forEach(function (a) { byWallet[a.wallet_address] = a; });
    n.agents.forEach(function (a) {
      var parent = a.referrer_wallet && byWallet[a.referrer_wallet] ? a.referrer_wallet : "";
      (children[parent] = children[parent] || []).push(a);
    });
    var operator = n.scope === "operator";
    var earnedOf = function (a) { return a.referral_income_usdc === null ? 0n : micros(a.referral_income_usdc); };

    function node(a, depth) {
      var kids = (children[a.wallet_address] || []).slice().sort(function (x, y) { return x.agent_name < y.agent_name ? -1 : 1; });
      var isRoot = !operator && a.wallet_address === n.root_wallet;
      var row = el("div", { className: "node" }, [
        el("span", { className: "name", text: a.agent_name }),
        el("span", { className: "wallet", title: a.wallet_address, text: shortWallet(a.wallet_address) }),
        a.referral_income_usdc !== null
          ? el("span", { className: "earned", title: "referral income" }, ["earned ", money(a.referral_income_usdc, "income")])
          : null,
        a.earned_for_referrer_usdc !== null && a.referrer_wallet
          ? el("span", { className: "for-referrer" }, [
            isRoot ? "" : (operator ? "its referrer earned " : "you earned "),
            money(a.earned_for_referrer_usdc, "for-referrer-amount"), " USDC from this agent"
          ])
          : null
      ]);
      var li = el("li", { dataset: { wallet: a.wallet_address, depth: depth } }, row);
      if (kids.length > 0 && depth < 12) li.appendChild(el("ul", null, kids.map(function (k) { return node(k, depth + 1); })));
      return li;
    }

    var roots = (children[""] || []).slice();
    if (!operator) {
      var me = byWallet[n.root_wallet];
      if (me && me.referrer_wallet) root.appendChild(el("p", { className: "tree-note" }, ["referred by ", el("span", { className: "wallet", title: me.referrer_wallet, text: shortWallet(me.referrer_wallet) })]));
      root.appendChild(el("ul", null, me ? node(me, 0) : null));
      if (me && (children[me.wallet_address] || []).length === 0) root.appendChild(el("p", { className: "tree-note", text: "No referred agents yet: share your referral code " + state.session.agent.referral_code + "." }));
    } else {
      var inNetwork = roots.filter(function (a) { return (children[a.wallet_address] || []).length > 0; });
      var alone = roots.filter(function (a) { return (children[a.wallet_address] || []).length === 0; });
      inNetwork.sort(function (x, y) { var d = earnedOf(y) - earnedOf(x); return d > 0n ? 1 : d < 0n ? -1 : 0; });
      root.appendChild(el("ul", null, inNetwork.slice(0, 100).map(function (a) { return node(a, 0); })));
      if (inNetwork.length === 0) root.appendChild(el("p", { className: "tree-note", text: "No agent has referred another yet." }));
      if (alone.length > 0) {
        root.appendChild(el("details", null, [
          el("summary", { text: alone.length + " agent" + (alone.length === 1 ? "" : "s") + " outside any referral chain" }),
          el("ul", null, alone.slice(0, 200).map(function (a) { return node(a, 0); }))
        ]));
      }
    }
    if (n.truncated) root.appendChild(el("p", { className: "tree-note", text: "Showing " + n.agents.length + " of " + n.total_agents + " agents." }));
  }

  // ---------------------------------------------------------------- audit trail

  function setFilters(filters) {
    state.filters = filters;
    state.cursors = [null];
    state.page = 0;
    $("f-status").value = filters.status;
    $("f-region").value = filters.region;
    $("f-counterparty").value = filters.counterparty;
    Array.prototype.forEach.call(document.querySelectorAll(".pill"), function (p) {
      p.setAttribute("aria-pressed", p.dataset.status === filters.status ? "true" : "false");
    });
    loadAudit();
  }

  function loadAudit() {
    var key = state.key;
    return api(auditPath()).then(function (page) {
      if (state.key !== key) return;
      renderAudit(page);
      refreshMoney();
    }, function (error) {
      if (!(error instanceof AuthError)) $("filter-error").textContent = error.message;
    });
  }

  function applyFilters(event) {
    event.preventDefault();
    var counterparty = $("f-counterparty").value.trim().toLowerCase();
    if (counterparty && !/^0x[0-9a-f]{40}$/.test(counterparty)) {
      $("filter-error").textContent = "Counterparty: expected a wallet address, 0x followed by 40 hex digits.";
      return;
    }
    $("filter-error").textContent = "";
    setFilters({ status: $("f-status").value, region: $("f-region").value, counterparty: counterparty });
  }

  function renderAudit(page) {
    var previous = state.seen;
    var first = state.audit === null;
    state.audit = page;
    state.seen = {};
    var body = $("audit").tBodies[0];
    clear(body);
    page.escrows.forEach(function (e) {
      state.seen[e.escrow_id] = e.version;
      var row = el("tr", {
        tabindex: 0, dataset: { escrowId: e.escrow_id, status: e.status, region: e.region },
        className: !first && previous[e.escrow_id] !== e.version ? "fresh" : "",
        on: {
          click: function () { openDetail(e.escrow_id); },
          keydown: function (ev) { if (ev.key === "Enter") openDetail(e.escrow_id); }
        }
      }, [
        el("td", null, timeEl(e.created_at)),
        el("td", null, el("code", { title: e.escrow_id, text: "esc_…" + e.escrow_id.slice(-8) })),
        el("td", null, statusEl(e.status)),
        el("td", { className: "opt", text: e.region }),
        el("td", { className: "opt" }, walletEl(e.payer_wallet, e.payer_name)),
        el("td", { className: "opt" }, walletEl(e.payee_wallet, e.payee_name)),
        el("td", { className: "n" }, money(e.amount_usdc))
      ]);
      body.appendChild(row);
    });
    $("audit-empty").hidden = page.escrows.length > 0;
    var from = state.page * PAGE_SIZE + (page.escrows.length > 0 ? 1 : 0);
    var to = state.page * PAGE_SIZE + page.escrows.length;
    $("audit-range").textContent = page.total + " escrow" + (page.total === 1 ? "" : "s");
    $("page-label").textContent = page.escrows.length > 0 ? from + "–" + to + " of " + page.total : "";
    $("newer").disabled = state.page === 0;
    $("older").disabled = page.next_cursor === null;
  }

  function older() {
    if (!state.audit || state.audit.next_cursor === null) return;
    state.cursors[state.page + 1] = state.audit.next_cursor;
    state.page += 1;
    loadAudit();
  }

  function newer() {
    if (state.page === 0) return;
    state.page -= 1;
    loadAudit();
  }

  // ---------------------------------------------------------------- one escrow

  function openDetail(id) {
    state.detailId = id;
    var dialog = $("detail");
    $("detail-title").textContent = "Escrow " + id;
    clear($("detail-body"));
    $("detail-body").appendChild(el("p", { className: "muted", text: "Loading…" }));
    if (!dialog.open) dialog.showModal();
    api("/api/dashboard/escrows/" + encodeURIComponent(id)).then(function (detail) {
      if (state.detailId === id) { renderDetail(detail); refreshMoney(); }
    }, function (error) {
      if (state.detailId !== id) return;
      clear($("detail-body"));
      $("detail-body").appendChild(el("p", { className: "error", text: error.message }));
    });
  }

  function renderDetail(d) {
    var e = d.escrow;
    var body = $("detail-body");
    clear(body);
    body.dataset.escrowId = e.escrow_id;
    var facts = [
      ["Status", statusEl(e.status)],
      ["Payer", walletEl(e.payer_wallet, d.payer_name)],
      ["Payee", walletEl(e.payee_wallet, d.payee_name)],
      ["Amount", money(e.amount_usdc)],
      ["Released", money(e.released_usdc)],
      ["Fee paid", money(e.fee_paid_usdc)],
      ["Refunded", money(e.refunded_usdc)],
      ["Still locked", money(e.remaining_usdc)],
      ["Net to payee", money(e.net_usdc)],
      ["Region", e.region],
      ["Created", timeEl(e.created_at)],
      ["Expires", timeEl(e.expires_at)],
      ["Settled", timeEl(e.settled_at)],
      ["Mandate", e.mandate_id || "—"],
      ["Idempotency key", e.idempotency_key || "—"],
      ["Description", e.description || "—"]
    ];
    var dl = el("dl", { className: "facts" });
    facts.forEach(function (f) { dl.appendChild(el("dt", { text: f[0] })); dl.appendChild(el("dd", null, f[1])); });
    body.appendChild(dl);
    body.appendChild(el("h3", { text: "History" }));
    body.appendChild(el("ol", { className: "timeline", id: "history" }, d.history.map(function (h) {
      return el("li", { dataset: { seq: h.seq, kind: h.kind } }, [
        el("span", { className: "seq", text: "#" + h.seq }),
        el("span", null, [el("strong", { text: h.kind.replace("_", " ") }), " ", el("span", { className: "muted", text: (h.from_status || "new") + " → " + h.to_status })]),
        el("span", { className: "n" }, money(h.amount_usdc)),
        el("span", { className: "when" }, [timeEl(h.at), " · " + h.region])
      ]);
    })));
    if (Object.keys(e.metadata).length > 0) {
      body.appendChild(el("h3", { text: "Metadata" }));
      body.appendChild(el("pre", { className: "meta", text: JSON.stringify(e.metadata, null, 2) }));
    }
  }

  function closeDetail() {
    state.detailId = null;
    if ($("detail").open) $("detail").close();
  }

  // ---------------------------------------------------------------- wiring

  function boot() {
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", function () { signOut(""); });
    $("exact").checked = state.exact;
    $("exact").addEventListener("change", function () {
      state.exact = $("exact").checked;
      localStorage.setItem(EXACT_STORAGE, state.exact ? "1" : "0");
      refreshMoney();
    });
    Array.prototype.forEach.call($("metric").querySelectorAll("button"), function (b) {
      b.addEventListener("click", function () { state.metric = b.dataset.metric; renderChart(); refreshMoney(); });
    });
    $("filters").addEventListener("submit", applyFilters);
    $("f-reset").addEventListener("click", function () { $("filter-error").textContent = ""; setFilters({ status: "", region: "", counterparty: "" }); });
    $("older").addEventListener("click", older);
    $("newer").addEventListener("click", newer);
    $("detail-close").addEventListener("click", closeDetail);
    $("detail").addEventListener("close", function () { state.detailId = null; });
    var resizeTimer = null;
    var lastWidth = window.innerWidth;
    window.addEventListener("resize", function () {
      if (window.innerWidth === lastWidth) return;
      lastWidth = window.innerWidth;
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () { renderChart(); refreshMoney(); }, 150);
    });

    var key = sessionStorage.getItem(KEY_STORAGE);
    if (!key) { showSignIn(""); return; }
    request("/api/dashboard/session", key).then(function (session) { start(key, session); }, function (error) {
      if (error instanceof AuthError) { sessionStorage.removeItem(KEY_STORAGE); showSignIn("Your key is no longer accepted; sign in again."); }
      else showSignIn("Could not reach the service: " + error.message);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot); else boot();
})();
`
