// Watchpost console: what htmx does not do by itself.
// A session that expired while a page polls: go to the sign-in page, then back.
document.addEventListener("htmx:responseError", function (e) {
  var x = e.detail.xhr;
  if (x && x.status === 401) {
    var next = encodeURIComponent(location.pathname + location.search);
    location.assign("/login?expired=1&next=" + next);
  }
});

// Charts: each .chart names its series (data-query, several joined by "|")
// and is drawn with ECharts from the console's own query endpoint.
function wpFormat(v, unit) {
  if (v === null || v === undefined) return "";
  if (unit === "bytes/s") {
    var u = ["B/s", "KiB/s", "MiB/s", "GiB/s"], i = 0;
    while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return v.toFixed(1) + " " + u[i];
  }
  return (Math.round(v * 100) / 100) + (unit ? " " + unit : "");
}

// Times in the calendar's zone (the page's data-tz), not the browser's.
// full: date and time to the second; otherwise the time of day for spans
// within a day and a half, the date for longer ones.
function wpTime(ms, full, span) {
  var tz = document.body.dataset.tz || "UTC";
  var o = { timeZone: tz, hour12: false };
  if (full) {
    o.month = "2-digit"; o.day = "2-digit"; o.hour = "2-digit"; o.minute = "2-digit"; o.second = "2-digit";
  } else if (span > 36 * 3600e3) {
    o.month = "2-digit"; o.day = "2-digit";
  } else {
    o.hour = "2-digit"; o.minute = "2-digit";
  }
  try {
    return new Intl.DateTimeFormat(document.body.dataset.lang === "en" ? "en-GB" : "zh-CN", o).format(new Date(ms));
  } catch (e) {
    return new Date(ms).toISOString();
  }
}

function wpDraw(el) {
  if (!window.echarts || el.dataset.drawn) return;
  el.dataset.drawn = "1";
  var queries = el.dataset.query.split("|");
  var range = "&since=" + encodeURIComponent(el.dataset.since) +
    (el.dataset.until ? "&until=" + encodeURIComponent(el.dataset.until) : "") +
    (el.dataset.step ? "&step=" + el.dataset.step : "");
  var label = el.dataset.label, unit = el.dataset.unit;
  var names = (el.dataset.names || "").split("|");
  Promise.all(queries.map(function (q) {
    return fetch("/data/query?" + q + range, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : []; });
  })).then(function (answers) {
    var series = [];
    answers.forEach(function (list, i) {
      list.forEach(function (s) {
        var parts = [];
        if (names[i]) parts.push(names[i]);
        if (label && s.labels[label]) parts.push(s.labels[label]);
        var name = parts.length ? parts.join(" ") : s.metric.replace(/^(host|snmp)_/, "");
        var data = s.points.length ? s.points : s.rollup.map(function (p) { return [p.t, p.mean]; });
        series.push({ name: name, type: "line", showSymbol: false, data: data });
      });
    });
    var lo = Infinity, hi = -Infinity;
    series.forEach(function (s) {
      if (s.data.length) { lo = Math.min(lo, s.data[0][0]); hi = Math.max(hi, s.data[s.data.length - 1][0]); }
    });
    var span = hi > lo ? hi - lo : 0;
    var chart = echarts.init(el, null, { renderer: "canvas" });
    chart.setOption({
      animation: false,
      grid: { left: 56, right: 16, top: 32, bottom: 28 },
      tooltip: {
        trigger: "axis",
        valueFormatter: function (v) { return wpFormat(v, unit); },
        axisPointer: { label: { formatter: function (p) { return wpTime(p.value, true); } } },
      },
      legend: { type: "scroll", top: 0 },
      xAxis: { type: "time", axisLabel: { hideOverlap: true, formatter: function (v) { return wpTime(v, false, span); } } },
      yAxis: { type: "value", axisLabel: { formatter: function (v) { return wpFormat(v, unit); } } },
      series: series,
    });
    el.dataset.series = String(series.length);
    window.addEventListener("resize", function () { chart.resize(); });
  });
}

function wpCharts() {
  document.querySelectorAll(".chart").forEach(wpDraw);
}
window.addEventListener("load", wpCharts);
