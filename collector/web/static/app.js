/* wardwatch dashboard: the thin layer of script over the server-rendered pages.
 *
 * It keeps a page current without a reload: an EventSource on /api/v1/events (device,
 * ward and alert events) patches tiles and rows in place, and every time the stream
 * (re)opens the page refetches its JSON twin, so that nothing missed while disconnected
 * stays missed. While the stream is down a "stale" banner says so; EventSource reconnects
 * by itself (and this script starts a new one if the browser gave up).
 *
 * Every visible string comes from the strings the server embedded (i18n.STRINGS in the
 * page's language), through t(key). No external request: only this server's own files.
 */
(function () {
  "use strict";

  var bootEl = document.getElementById("ww-boot");
  var boot = bootEl ? JSON.parse(bootEl.textContent) : { page: "login", strings: {}, icons: {} };
  var S = boot.strings || {};
  var ICONS = boot.icons || { ok: "✓", degraded: "▲", down: "✕", unknown: "?" };
  var STATES = ["ok", "degraded", "down", "unknown"];
  var KINDS = ["switch", "ap", "camera"];
  var LANG_COOKIE = "ww_lang";

  function t(key, values) {
    var s = Object.prototype.hasOwnProperty.call(S, key) ? S[key] : key;
    if (values) {
      Object.keys(values).forEach(function (k) {
        s = s.split("{" + k + "}").join(String(values[k]));
      });
    }
    return s;
  }

  function has(key) {
    return Object.prototype.hasOwnProperty.call(S, key);
  }

  function reasonWords(code) {
    if (!code) return "";
    if (has("reason." + code)) return t("reason." + code);
    if (code.indexOf("snmp_") === 0) {
      var d = code.slice(5);
      return t("reason.snmp_only_ping", { detail: has("reason." + d) ? t("reason." + d) : d });
    }
    if (code.indexOf("onvif_") === 0) return t("reason.onvif_error") + " (" + code.slice(6) + ")";
    return t("reason.other", { code: code });
  }

  // Elements --------------------------------------------------------------------------

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "text") e.textContent = v;
        else if (k === "class") e.className = v;
        else e.setAttribute(k, v === true ? "" : v);
      });
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return e;
  }

  function $(sel, root) {
    return (root || document).querySelector(sel);
  }

  function $all(sel, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(sel));
  }

  function setText(node, text) {
    if (node && node.textContent !== String(text)) node.textContent = text;
  }

  function badge(state) {
    var s = STATES.indexOf(state) >= 0 ? state : "unknown";
    return el("span", { class: "badge", "data-f": "state" }, [
      el("span", { class: "icon", "aria-hidden": "true", text: ICONS[s] }),
      " ",
      el("span", { "data-f": "state-text", text: t("state." + s) }),
    ]);
  }

  function applyState(node, state) {
    if (!node) return;
    var s = STATES.indexOf(state) >= 0 ? state : "unknown";
    STATES.forEach(function (x) {
      node.classList.toggle("st-" + x, x === s);
    });
    var b = $('[data-f="state"]', node);
    if (b) {
      setText($(".icon", b), ICONS[s]);
      setText($('[data-f="state-text"]', b), t("state." + s));
    }
  }

  // Time in the deployment's zone -----------------------------------------------------

  var partsFmt = null;
  try {
    partsFmt = new Intl.DateTimeFormat("en-GB", {
      timeZone: boot.tz || "Asia/Ho_Chi_Minh", hour12: false, year: "numeric", month: "2-digit",
      day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
  } catch (e) {
    partsFmt = null;
  }

  function localTime(ms) {
    if (ms === null || ms === undefined || ms === "" || ms === 0) return "";
    var d = new Date(Number(ms));
    if (!partsFmt) return d.toISOString();
    var p = {};
    partsFmt.formatToParts(d).forEach(function (x) { p[x.type] = x.value; });
    var hour = p.hour === "24" ? "00" : p.hour;
    return hour + ":" + p.minute + ":" + p.second + " " + p.day + "/" + p.month + "/" + p.year;
  }

  // An x-axis tick: "14:00", or the day ("02/12") at local midnight.
  function axisTime(sec) {
    var s = localTime(sec * 1000);
    if (!s) return "";
    var hm = s.slice(0, 5), day = s.slice(9, 14);
    return hm === "00:00" ? day : hm;
  }

  function msOf(doc, name) {
    if (!doc) return null;
    var ms = doc[name + "_ms"];
    if (typeof ms === "number") return ms || null; // 0: never
    var iso = doc[name] || doc[name + "_local"] || doc[name + "_at"];
    if (typeof iso === "string" && iso) {
      var v = Date.parse(iso);
      return isNaN(v) ? null : v;
    }
    return null;
  }

  function pct(v) {
    if (typeof v !== "number") return "–";
    return v >= 99.995 ? "100 %" : v.toFixed(2) + " %";
  }

  // Talking to the server -------------------------------------------------------------

  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") || "" : "";
  }

  function toLogin() {
    var next = location.pathname + location.search;
    location.href = "/login?next=" + encodeURIComponent(next);
  }

  function api(method, path, body) {
    var opts = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") {
      opts.headers["X-CSRF-Token"] = csrf();
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body || {});
    }
    return fetch(path, opts).then(function (resp) {
      if (resp.status === 401) {
        toLogin();
        throw new Error("401");
      }
      return resp.text().then(function (text) {
        var doc = null;
        try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = null; }
        if (!resp.ok) {
          var err = new Error((doc && doc.error) || resp.status + " " + resp.statusText);
          err.status = resp.status;
          throw err;
        }
        return doc;
      });
    });
  }

  // Live ------------------------------------------------------------------------------

  var handlers = { device: null, ward: null, alert: null, refresh: null };
  var source = null;
  var retry = null;

  function setLive(state) {
    var live = document.getElementById("live");
    var banner = document.getElementById("stale");
    if (live) {
      live.className = "live live-" + state;
      setText(document.getElementById("live-text"), t("live." + state));
    }
    if (banner) banner.hidden = state !== "stale";
    document.body.classList.toggle("is-stale", state === "stale");
  }

  function stamp() {
    setText(document.getElementById("updated"), t("live.updated", { time: localTime(Date.now()) }));
  }

  function listen(name) {
    source.addEventListener(name, function (ev) {
      var data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      if (handlers[name]) handlers[name](data);
      stamp();
    });
  }

  function connect() {
    if (typeof EventSource === "undefined") return;
    if (retry) { clearTimeout(retry); retry = null; }
    source = new EventSource("/api/v1/events");
    source.onopen = function () {
      setLive("live");
      if (handlers.refresh) handlers.refresh();
      stamp();
    };
    source.onerror = function () {
      setLive("stale");
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error, not a dropped stream): try again ourselves.
        source.close();
        retry = setTimeout(function () {
          api("GET", "/api/v1/wards").then(connect, connect);
        }, 3000);
      }
    };
    ["device", "ward", "alert"].forEach(listen);
  }

  // Language --------------------------------------------------------------------------

  function setLang(lang) {
    document.cookie = LANG_COOKIE + "=" + lang + "; Path=/; Max-Age=31536000; SameSite=Strict";
    try { localStorage.setItem(LANG_COOKIE, lang); } catch (e) { /* private mode */ }
  }

  function cookieLang() {
    var m = document.cookie.match(/(?:^|;\s*)ww_lang=(vi|en)/);
    return m ? m[1] : null;
  }

  function initLang() {
    $all(".lang-btn").forEach(function (b) {
      b.addEventListener("click", function () {
        var lang = b.getAttribute("data-lang");
        setLang(lang);
        if (lang !== document.documentElement.lang) location.reload();
      });
    });
    var stored = null;
    try { stored = localStorage.getItem(LANG_COOKIE); } catch (e) { stored = null; }
    // The cookie went (cleared, expired) but this browser chose a language before.
    if (stored && !cookieLang() && stored !== document.documentElement.lang && (stored === "vi" || stored === "en")) {
      setLang(stored);
      location.reload();
    } else if (cookieLang()) {
      try { localStorage.setItem(LANG_COOKIE, cookieLang()); } catch (e) { /* private mode */ }
    }
  }

  // Overview --------------------------------------------------------------------------

  function countsText(c) {
    c = c || { up: 0, total: 0 };
    return (c.up || 0) + "/" + (c.total || 0);
  }

  function patchCounts(root, counts) {
    KINDS.forEach(function (k) {
      var node = $('[data-f="count-' + k + '"]', root);
      if (!node) return;
      var c = (counts || {})[k] || { up: 0, total: 0 };
      var value = $(".count-value", node) || node;
      setText(value, countsText(c));
      node.classList.toggle("short", (c.up || 0) < (c.total || 0));
      node.classList.toggle("none", !c.total);
    });
  }

  function tile(w) {
    var counts = KINDS.map(function (k) {
      return el("span", { class: "count", "data-f": "count-" + k }, [
        el("span", { class: "count-label", text: t("kinds." + k) }), " ", el("span", { class: "count-value" }),
      ]);
    });
    var a = el("a", { class: "tile", href: "/ward/" + encodeURIComponent(w.id), "data-ward": w.id,
                      "aria-label": t("tile.open", { name: w.name }) }, [
      el("span", { class: "tile-head" }, [el("span", { class: "tile-name", text: w.name }), badge(w.state)]),
      el("span", { class: "tile-counts" }, counts),
      el("span", { class: "tile-foot" }, [
        el("span", { class: "tile-alerts", "data-f": "alerts" }, [
          el("span", { class: "count-label", text: t("tile.alerts") }), " ", el("span", { class: "count-value" })]),
        el("span", { class: "tile-wifi", "data-f": "wifi" }, [
          el("span", { class: "count-label", text: t("tile.wifi") }), " ", el("span", { class: "count-value" })]),
      ]),
    ]);
    patchTile(a, w);
    return a;
  }

  function patchTile(node, w) {
    if (!node) return;
    if (w.state) applyState(node, w.state);
    if (w.counts) patchCounts(node, w.counts);
    if (typeof w.alerts === "number") {
      var al = $('[data-f="alerts"]', node);
      setText($(".count-value", al), w.alerts);
      al.classList.toggle("has", w.alerts > 0);
    }
    if (typeof w.wifi_clients === "number") {
      var peak = typeof w.wifi_peak_today === "number" ? w.wifi_peak_today : node.getAttribute("data-peak") || 0;
      if (typeof w.wifi_peak_today !== "number" && w.wifi_clients > Number(peak)) peak = w.wifi_clients;
      node.setAttribute("data-peak", peak);
      setText($('[data-f="wifi"] .count-value', node), t("tile.wifi_value", { now: w.wifi_clients, peak: peak }));
    }
  }

  function overviewSummary(doc) {
    var up = 0, total = 0, alerts = 0;
    $all(".tile").forEach(function (node) {
      KINDS.forEach(function (k) {
        var v = $('[data-f="count-' + k + '"] .count-value', node);
        var m = v ? v.textContent.match(/(\d+)\/(\d+)/) : null;
        if (m) { up += Number(m[1]); total += Number(m[2]); }
      });
      var a = $('[data-f="alerts"] .count-value', node);
      alerts += a ? Number(a.textContent) || 0 : 0;
    });
    setText(document.getElementById("devices-up"), up + "/" + total);
    setText(document.getElementById("alerts-total"), alerts);
    if (doc && doc.uptime) {
      setText(document.getElementById("uptime-24h"), pct(doc.uptime["24h"]));
      setText(document.getElementById("uptime-30d"), pct(doc.uptime["30d"]));
    }
  }

  function initOverview() {
    var tiles = document.getElementById("tiles");
    function render(doc) {
      var wards = (doc && doc.wards) || [];
      var have = $all(".tile", tiles).map(function (n) { return n.getAttribute("data-ward"); }).join(",");
      var want = wards.map(function (w) { return w.id; }).join(",");
      if (have !== want) {
        tiles.textContent = "";
        wards.forEach(function (w) { tiles.appendChild(tile(w)); });
        if (!wards.length) tiles.appendChild(el("p", { class: "empty", text: t("overview.no_wards") }));
      } else {
        wards.forEach(function (w) { patchTile($('.tile[data-ward="' + cssq(w.id) + '"]', tiles), w); });
      }
      overviewSummary(doc);
    }
    handlers.refresh = function () { api("GET", "/api/v1/wards").then(render, function () {}); };
    handlers.ward = function (w) {
      var node = $('.tile[data-ward="' + cssq(w.id) + '"]', tiles);
      if (node) { patchTile(node, w); overviewSummary(null); } else handlers.refresh();
    };
    if (!boot.doc) handlers.refresh();
    setInterval(handlers.refresh, 60000); // uptime figures move slowly; they are not pushed
  }

  function cssq(s) {
    return String(s).replace(/["\\]/g, "\\$&");
  }

  // Ward ------------------------------------------------------------------------------

  var STATE_RANK = { down: 0, degraded: 1, unknown: 2, ok: 3 };
  var KIND_RANK = { "switch": 0, ap: 1, camera: 2 };

  function deviceOrder(a, b) {
    var x = (STATE_RANK[a.state] !== undefined ? STATE_RANK[a.state] : 9) - (STATE_RANK[b.state] !== undefined ? STATE_RANK[b.state] : 9);
    if (x) return x;
    x = (KIND_RANK[a.kind] !== undefined ? KIND_RANK[a.kind] : 9) - (KIND_RANK[b.kind] !== undefined ? KIND_RANK[b.kind] : 9);
    if (x) return x;
    return String(a.id) < String(b.id) ? -1 : String(a.id) > String(b.id) ? 1 : 0;
  }

  function deviceRow(ward, v) {
    var tr = el("tr", { "data-device": v.id }, [
      el("td", null, [badge(v.state)]),
      el("td", null, [el("a", { href: "/device/" + encodeURIComponent(ward) + "/" + encodeURIComponent(v.id), text: v.id })]),
      el("td", { text: has("kind." + v.kind) ? t("kind." + v.kind) : v.kind || "" }),
      el("td", { "data-f": "reason" }),
      el("td", { "data-f": "since" }),
      el("td", { text: v.feed || "" }),
      el("td", { text: v.vendor || "" }),
    ]);
    patchRow(tr, v);
    return tr;
  }

  function patchRow(tr, v) {
    applyState(tr, v.state);
    var r = $('[data-f="reason"]', tr);
    setText(r, v.state === "ok" ? "" : reasonWords(v.reason));
    if (v.reason) r.setAttribute("title", v.reason); else r.removeAttribute("title");
    setText($('[data-f="since"]', tr), localTime(msOf(v, "since")));
    tr.setAttribute("data-state", v.state);
    filterRows();
  }

  function filterRows() {
    var only = document.getElementById("only-problems");
    var q = document.getElementById("device-filter");
    var needle = q ? q.value.trim().toLowerCase() : "";
    $all("#devices tbody tr").forEach(function (tr) {
      var hide = (only && only.checked && tr.classList.contains("st-ok")) ||
        (needle && tr.textContent.toLowerCase().indexOf(needle) < 0);
      tr.hidden = !!hide;
    });
  }

  function patchWardHead(doc) {
    var head = document.getElementById("ward-head");
    if (!head) return;
    if (doc.state) applyState(head, doc.state);
    if (doc.counts) patchCounts(head, doc.counts);
    if (typeof doc.wifi_clients === "number") setText($('[data-f="wifi-now"]', head), doc.wifi_clients);
    if (typeof doc.wifi_peak_today === "number") setText($('[data-f="wifi-peak"]', head), doc.wifi_peak_today);
    else if (typeof doc.wifi_clients === "number") {
      var peak = $('[data-f="wifi-peak"]', head);
      if (doc.wifi_clients > Number(peak.textContent)) setText(peak, doc.wifi_clients);
    }
    if (typeof doc.alerts === "number") setText($('[data-f="alerts"]', head), doc.alerts);
  }

  function wardAlerts(list) {
    var box = document.getElementById("ward-alerts");
    var ul = document.getElementById("ward-alert-list");
    if (!box || !ul) return;
    ul.textContent = "";
    list.forEach(function (a) {
      ul.appendChild(el("li", { class: "sev-" + a.severity }, [
        el("span", { class: "sev", text: t("severity." + a.severity) }), " ",
        el("span", { text: (a.summary && a.summary[boot.lang]) || a.alertname || a.rule || "" }),
      ]));
    });
    box.hidden = list.length === 0;
    setText($('#ward-head [data-f="alerts"]'), list.length);
  }

  function initWard() {
    var ward = boot.ward;
    var tbody = $("#devices tbody");
    function render(doc) {
      patchWardHead(doc);
      wardAlerts(doc.alerts || []);
      var devices = (doc.devices || []).slice().sort(deviceOrder);
      tbody.textContent = "";
      devices.forEach(function (v) { tbody.appendChild(deviceRow(ward, v)); });
      document.getElementById("devices-empty").hidden = devices.length > 0;
      filterRows();
    }
    handlers.refresh = function () {
      api("GET", "/api/v1/wards/" + encodeURIComponent(ward)).then(render, function () {});
    };
    handlers.device = function (v) {
      if (v.ward !== ward) return;
      var tr = $('tr[data-device="' + cssq(v.id) + '"]', tbody);
      if (tr) patchRow(tr, v); else handlers.refresh();
    };
    handlers.ward = function (w) { if (w.id === ward) patchWardHead(w); };
    handlers.alert = function (a) { if (!a.ward || a.ward === ward) handlers.refresh(); };
    ["only-problems", "device-filter"].forEach(function (id) {
      var n = document.getElementById(id);
      if (n) n.addEventListener("input", filterRows);
    });
    if (!boot.doc) handlers.refresh();
  }

  // Device ----------------------------------------------------------------------------

  var PALETTE = ["#1f77b4", "#d9480f", "#2b8a3e", "#7048e8", "#c2255c", "#0b7285", "#e67700", "#495057"];
  var charts = [];

  // Which chart a series belongs to: api.py names them "column" or "column:tag"
  // (in_bps:Gi1/0/3, clients:wlan0, rtt_ms, clock_skew_s, ...).
  var CHART_OF = { in_bps: "port_rates", out_bps: "port_rates", clients: "clients", util_pct: "util",
                   bitrate_kbps: "bitrate", clock_skew_s: "clock_skew", rtt_ms: "rtt", loss_pct: "loss" };
  var CHART_ORDER = ["port_rates", "clients", "util", "bitrate", "clock_skew", "rtt", "loss"];

  function splitName(name) {
    var i = name.indexOf(":");
    return i < 0 ? [name, ""] : [name.slice(0, i), name.slice(i + 1)];
  }

  function chartOf(name, unit) {
    var col = splitName(name)[0];
    return CHART_OF[col] || "other:" + (unit || col);
  }

  function chartTitle(key) {
    if (key.indexOf("other:") === 0) return t("chart.other", { unit: key.slice(6) || "–" });
    return t("chart." + key);
  }

  function seriesLabel(name) {
    var parts = splitName(name);
    var what = has("series." + parts[0]) ? t("series." + parts[0]) : parts[0];
    if (!parts[1]) return what;
    if (parts[0] === "in_bps" || parts[0] === "out_bps") return parts[1] + " " + what;
    return parts[1];
  }

  function fmtValue(v) {
    if (v === null || v === undefined) return "–";
    var a = Math.abs(v);
    function short(x) { return String(parseFloat(x.toPrecision(3))); }
    if (a >= 1e9) return short(v / 1e9) + " G";
    if (a >= 1e6) return short(v / 1e6) + " M";
    if (a >= 1e4) return short(v / 1e3) + " k";
    if (a >= 100) return v.toFixed(0);
    return short(v);
  }

  function drawChart(box, key, named) {
    // named: [[name, points]]; x in seconds, aligned over the union of timestamps.
    var xs = {};
    named.forEach(function (s) { s[1].forEach(function (p) { xs[p[0]] = true; }); });
    var times = Object.keys(xs).map(Number).sort(function (a, b) { return a - b; });
    var index = {};
    times.forEach(function (tm, i) { index[tm] = i; });
    var data = [times.map(function (tm) { return tm / 1000; })];
    var series = [{ label: t("col.time"), value: function (u, v) { return v === null ? "–" : localTime(v * 1000); } }];
    named.forEach(function (s, i) {
      var col = times.map(function () { return null; });
      s[1].forEach(function (p) { col[index[p[0]]] = p[1] === null ? null : Number(p[1]); });
      data.push(col);
      series.push({ label: seriesLabel(s[0]), stroke: PALETTE[i % PALETTE.length], width: 1.5,
                    value: function (u, v) { return fmtValue(v); }, spanGaps: false, points: { show: false } });
    });
    var wrap = el("figure", { class: "chart", "data-chart": key }, [el("figcaption", { text: chartTitle(key) })]);
    box.appendChild(wrap);
    var width = Math.max(300, wrap.clientWidth - 8);
    var opts = {
      width: width, height: 170, series: series,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), boot.tz); },
      axes: [{ values: function (u, splits) { return splits.map(axisTime); }, space: 60 },
             { values: function (u, vals) { return vals.map(fmtValue); }, size: 60 }],
      legend: { live: true }, cursor: { drag: { x: true, y: false } },
      scales: { x: { time: true } },
    };
    var u = new uPlot(opts, data, wrap);
    charts.push(u);
  }

  function drawTimeline(box, timeline, fromMs, toMs) {
    var wrap = el("figure", { class: "chart timeline", "data-chart": "timeline" }, [
      el("figcaption", { text: t("chart.timeline") })]);
    var band = el("div", { class: "band", role: "img", "aria-label": t("chart.timeline") });
    var span = Math.max(1, toMs - fromMs);
    timeline.forEach(function (row, i) {
      var start = Math.max(fromMs, row[0]);
      var end = i + 1 < timeline.length ? timeline[i + 1][0] : toMs;
      if (end <= start) return;
      var st = STATES.indexOf(row[1]) >= 0 ? row[1] : (row[1] === true || row[1] === 1 ? "ok" : row[1] === false || row[1] === 0 ? "down" : "unknown");
      var seg = el("span", { class: "seg st-" + st, title: localTime(row[0]) + " " + t("state." + st) +
                             (row[2] && row[2] !== "ok" ? " — " + reasonWords(row[2]) : "") });
      seg.style.left = ((start - fromMs) / span * 100) + "%";
      seg.style.width = ((end - start) / span * 100) + "%";
      band.appendChild(seg);
    });
    wrap.appendChild(band);
    var changes = timeline.slice(-12).reverse();
    var list = el("ol", { class: "changes", "aria-label": t("chart.changes") });
    changes.forEach(function (row) {
      var st = STATES.indexOf(row[1]) >= 0 ? row[1] : "unknown";
      list.appendChild(el("li", { class: "st-" + st }, [
        el("span", { class: "when", text: localTime(row[0]) }), " ", badge(st), " ",
        el("span", { text: row[2] && row[2] !== "ok" ? reasonWords(row[2]) : "" }),
      ]));
    });
    wrap.appendChild(el("h3", { text: t("chart.changes") }));
    wrap.appendChild(list);
    box.appendChild(wrap);
  }

  var RANGE_MS = { "24h": 86400000, "7d": 7 * 86400000, "30d": 30 * 86400000 };

  function initDevice() {
    var ward = boot.ward, device = boot.device;
    var range = boot.range || "24h";
    var box = document.getElementById("charts");
    var status = document.getElementById("charts-status");

    function loadCharts() {
      var path = "/api/v1/devices/" + encodeURIComponent(ward) + "/" + encodeURIComponent(device) +
        "/series?range=" + encodeURIComponent(range);
      status.hidden = false;
      setText(status, t("common.loading"));
      return api("GET", path).then(function (doc) {
        charts.forEach(function (u) { u.destroy(); });
        charts = [];
        box.textContent = "";
        var groups = {};
        var series = (doc && doc.series) || {};
        Object.keys(series).sort().forEach(function (name) {
          var s = series[name];
          var pts = (s && s.points) || [];
          if (!pts.length) return;
          var key = chartOf(name, s.unit);
          (groups[key] = groups[key] || []).push([name, pts]);
        });
        var toMs = (doc && doc.to_ms) || Date.now();
        var fromMs = (doc && doc.from_ms) || toMs - (RANGE_MS[range] || RANGE_MS["24h"]);
        toMs = Math.min(toMs, Date.now());
        if (doc && doc.timeline && doc.timeline.length) drawTimeline(box, doc.timeline, fromMs, toMs);
        var keys = Object.keys(groups).sort(function (a, b) {
          var x = CHART_ORDER.indexOf(a), y = CHART_ORDER.indexOf(b);
          return (x < 0 ? 99 : x) - (y < 0 ? 99 : y) || (a < b ? -1 : 1);
        });
        keys.forEach(function (k) { drawChart(box, k, groups[k]); });
        if (!keys.length && !(doc && doc.timeline && doc.timeline.length)) {
          box.appendChild(el("p", { class: "empty", text: t("chart.no_data") }));
        }
        status.hidden = true;
      }, function (err) {
        setText(status, t("common.error", { message: err.message }));
      });
    }

    $all(".range-btn").forEach(function (a) {
      a.addEventListener("click", function (ev) {
        ev.preventDefault();
        range = a.getAttribute("data-range");
        $all(".range-btn").forEach(function (b) {
          if (b === a) b.setAttribute("aria-current", "true"); else b.removeAttribute("aria-current");
        });
        history.replaceState(null, "", "?range=" + range);
        loadCharts();
      });
    });

    function patchHead(v) {
      var head = document.getElementById("device-head");
      applyState(head, v.state);
      setText($('[data-f="reason"]', head), v.state === "ok" ? t("reason.ok") : reasonWords(v.reason));
      setText($('[data-f="since"]', head), localTime(msOf(v, "since")));
    }

    handlers.device = function (v) { if (v.ward === ward && v.id === device) patchHead(v); };
    handlers.refresh = function () {
      api("GET", "/api/v1/devices/" + encodeURIComponent(ward) + "/" + encodeURIComponent(device))
        .then(patchHead, function () {});
    };
    var resizeTimer = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () {
        charts.forEach(function (u) { u.setSize({ width: Math.max(300, u.root.parentNode.clientWidth - 8), height: 170 }); });
      }, 200);
    });
    loadCharts();
    setInterval(loadCharts, 60000);
  }

  // Alerts ----------------------------------------------------------------------------

  function initAlerts() {
    var nameInput = document.getElementById("ack-name");
    var msg = document.getElementById("alerts-msg");
    try { nameInput.value = localStorage.getItem("ww_name") || ""; } catch (e) { /* private mode */ }
    nameInput.addEventListener("change", function () {
      try { localStorage.setItem("ww_name", nameInput.value.trim()); } catch (e) { /* private mode */ }
    });

    function say(text, bad) {
      setText(msg, text);
      msg.className = "msg" + (bad ? " err" : " ok");
    }

    function who() {
      var by = nameInput.value.trim();
      if (!by) { say(t("alerts.name_needed"), true); nameInput.focus(); }
      return by;
    }

    function summary(a) {
      return (a.summary && (a.summary[boot.lang] || a.summary.vi)) || a.alertname || a.rule || "";
    }

    function ack(a, button) {
      var by = who();
      if (!by) return;
      button.disabled = true;
      api("POST", "/api/v1/alerts/" + encodeURIComponent(a.fingerprint) + "/ack", { by: by, comment: "" })
        .then(function () { say(t("alerts.done_ack")); refresh(); },
              function (err) { button.disabled = false; say(t("common.error", { message: err.message }), true); });
    }

    function silence(a, button) {
      var by = who();
      if (!by) return;
      var matchers = { alertname: a.alertname || a.rule };
      if (a.ward) matchers.ward = a.ward;
      if (a.device) matchers.device = a.device;
      button.disabled = true;
      api("POST", "/api/v1/silences", { matchers: matchers, duration: document.getElementById("silence-dur").value,
                                        created_by: by, comment: "" })
        .then(function () { say(t("alerts.done_silence")); refresh(); },
              function (err) { button.disabled = false; say(t("common.error", { message: err.message }), true); });
    }

    function activeRow(a) {
      var ackCell = el("td", { "data-f": "ack" });
      if (a.acked) {
        ackCell.appendChild(el("span", { class: "acked", text: "✓ " + t("alerts.acked_by", {
          by: a.acked_by || "", time: localTime(msOf(a, "acked")) }) }));
      }
      var actions = el("td", { class: "actions" });
      if (!a.acked) {
        var b1 = el("button", { type: "button", class: "btn-ack", text: t("alerts.ack") });
        b1.addEventListener("click", function () { ack(a, b1); });
        actions.appendChild(b1);
      }
      if (!a.silenced_by) {
        var b2 = el("button", { type: "button", class: "btn-silence", text: t("alerts.silence") });
        b2.addEventListener("click", function () { silence(a, b2); });
        actions.appendChild(b2);
      } else {
        actions.appendChild(el("span", { class: "muted", text: t("alerts.muted") }));
      }
      var sev = a.severity || "info";
      var st = a.state || "firing";
      var what = [el("span", { text: summary(a) })];
      if (a.suppressed_count) what.push(el("span", { class: "muted", text: " · " + t("alerts.behind", { n: a.suppressed_count }) }));
      var deviceCell = a.device && a.ward ? el("a", { href: "/device/" + encodeURIComponent(a.ward) + "/" + encodeURIComponent(a.device), text: a.device }) : (a.device || "");
      return el("tr", { class: "sev-" + sev + (a.acked ? " is-acked" : ""), "data-fingerprint": a.fingerprint }, [
        el("td", null, [el("span", { class: "sev", text: has("severity." + sev) ? t("severity." + sev) : sev })]),
        el("td", { text: has("alert_state." + st) ? t("alert_state." + st) : st }),
        el("td", { text: a.ward_name || a.ward || "" }),
        el("td", null, [deviceCell]),
        el("td", null, what),
        el("td", { text: localTime(msOf(a, "started")) }),
        ackCell, actions,
      ]);
    }

    function historyRow(h) {
      var st = h.state || "";
      var sev = h.severity || "info";
      return el("tr", { class: "sev-" + sev }, [
        el("td", { text: localTime(typeof h.time_ms === "number" ? h.time_ms : msOf(h, "time")) }),
        el("td", { text: has("alert_state." + st) ? t("alert_state." + st) : st }),
        el("td", { text: has("severity." + sev) ? t("severity." + sev) : sev }),
        el("td", { text: h.ward_name || h.ward || "" }),
        el("td", { text: h.device || "" }),
        el("td", { text: summary(h) }),
      ]);
    }

    function fill(id, rows, make) {
      var tbody = $("#" + id + " tbody");
      tbody.textContent = "";
      rows.forEach(function (r) { tbody.appendChild(make(r)); });
      document.getElementById(id + "-empty").hidden = rows.length > 0;
    }

    function refresh() {
      api("GET", "/api/v1/alerts").then(function (doc) {
        var list = (doc && doc.alerts) || [];
        fill("active", list, activeRow);
        setText(document.getElementById("active-count"), "(" + list.length + ")");
      }, function () {});
      api("GET", "/api/v1/silences").then(function (doc) {
        var now = Date.now();
        var list = ((doc && doc.silences) || []).filter(function (s) { return s.state !== "expired"; });
        fill("silences", list, function (s) {
          var m = Object.keys(s.matchers || {}).map(function (k) { return k + "=" + s.matchers[k]; }).join(", ");
          return el("tr", null, [el("td", { text: m }), el("td", { text: localTime(msOf(s, "ends")) }),
                                 el("td", { text: s.created_by || "" })]);
        });
        return now;
      }, function () {});
      api("GET", "/api/v1/alerts/history?limit=200").then(function (doc) {
        fill("history", (doc && doc.history) || [], historyRow);
      }, function () {});
    }

    var pending = null;
    handlers.refresh = refresh;
    handlers.alert = function () {
      if (pending) return;
      pending = setTimeout(function () { pending = null; refresh(); }, 300);
    };
    refresh();
  }

  // Start -----------------------------------------------------------------------------

  initLang();
  var init = { overview: initOverview, ward: initWard, device: initDevice, alerts: initAlerts };
  if (init[boot.page]) init[boot.page]();
  if (boot.page !== "login") connect();

  window.wardwatch = { t: t, localTime: localTime, charts: function () { return charts; } };
})();
