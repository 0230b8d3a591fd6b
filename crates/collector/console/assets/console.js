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

function wpDraw(el) {
  if (!window.echarts || el.dataset.drawn) return;
  el.dataset.drawn = "1";
  var queries = el.dataset.query.split("|");
  var range = "&since=" + encodeURIComponent(el.dataset.since) +
    (el.dataset.until ? "&until=" + encodeURIComponent(el.dataset.until) : "");
  var label = el.dataset.label, unit = el.dataset.unit;
  Promise.all(queries.map(function (q) {
    return fetch("/data/query?" + q + range, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : []; });
  })).then(function (answers) {
    var series = [];
    answers.forEach(function (list) {
      list.forEach(function (s) {
        var name = (label && s.labels[label]) ? s.labels[label] : s.metric.replace(/^host_/, "");
        if (queries.length > 1 && label && s.labels[label]) name = s.metric.replace(/^host_/, "") + " " + name;
        var data = s.points.length ? s.points : s.rollup.map(function (p) { return [p.t, p.mean]; });
        series.push({ name: name, type: "line", showSymbol: false, data: data });
      });
    });
    var chart = echarts.init(el, null, { renderer: "canvas" });
    chart.setOption({
      animation: false,
      grid: { left: 56, right: 16, top: 32, bottom: 28 },
      tooltip: { trigger: "axis", valueFormatter: function (v) { return wpFormat(v, unit); } },
      legend: { type: "scroll", top: 0 },
      xAxis: { type: "time" },
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
