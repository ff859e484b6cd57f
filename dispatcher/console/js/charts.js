// Charts drawn with the vendored Chart.js (window.Chart, /console/vendor/); no animation, so that
// they print and update at once. Each canvas has a text caption for screen readers.

const INK = "#1d3557";
const ACCENT = "#2a9d8f";

function ChartJs() {
  if (!window.Chart) throw new Error("Chart.js did not load");
  return window.Chart;
}

/** The share of members who acknowledged, in %, against minutes after the alert was sent. */
export function shareChart(canvas, yLabel) {
  const Chart = ChartJs();
  const chart = new Chart(canvas, {
    type: "line",
    data: { datasets: [{ data: [], stepped: true, borderColor: ACCENT, backgroundColor: "rgba(42,157,143,0.15)", fill: true, pointRadius: 0 }] },
    options: {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      plugins: { legend: { display: false }, tooltip: { enabled: true } },
      scales: {
        x: { type: "linear", min: 0, title: { display: true, text: "", color: INK }, ticks: { precision: 0 } },
        y: { min: 0, max: 100, title: { display: true, text: yLabel, color: INK }, ticks: { callback: (v) => `${v} %` } },
      },
    },
  });
  return {
    show(points, xLabel) {
      chart.data.datasets[0].data = points;
      chart.options.scales.x.title.text = xLabel;
      chart.update("none");
    },
    destroy() {
      chart.destroy();
    },
  };
}

/** Bars: one dataset per series, {label, values}; `horizontal` for long labels; whole numbers unless `precision`. */
export function barChart(canvas, labels, series, { horizontal = false, stacked = false, format = (v) => v, precision = 0 } = {}) {
  const Chart = ChartJs();
  const palette = [ACCENT, "#e76f51", "#457b9d", "#e9c46a", "#8d6e63", "#6c757d"];
  return new Chart(canvas, {
    type: "bar",
    data: {
      labels,
      datasets: series.map((s, i) => ({ label: s.label, data: s.values, backgroundColor: palette[i % palette.length] })),
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      indexAxis: horizontal ? "y" : "x",
      plugins: { legend: { display: series.length > 1 }, tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${format(c.raw)}` } } },
      scales: {
        x: { stacked, beginAtZero: true, ticks: horizontal ? { callback: (v) => format(v), precision } : {} },
        y: { stacked, beginAtZero: true, ticks: horizontal ? {} : { callback: (v) => format(v), precision } },
      },
    },
  });
}
