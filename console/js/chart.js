// Stacked bar charts in SVG, drawn with DOM calls (no library, nothing the CSP would refuse).

import { formatCompact, formatInteger, h, svg } from "./dom.js";

const WIDTH = 720;
const HEIGHT = 200;
const PAD = { top: 12, right: 8, bottom: 24, left: 44 };

/**
 * `points`: [{ label, title, values: [n, ...] }] with one value per series; `series`: [{ name, className }].
 */
export function stackedBars(points, series, ariaLabel) {
  const max = Math.max(1, ...points.map((point) => point.values.reduce((sum, value) => sum + value, 0)));
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const slot = plotWidth / Math.max(points.length, 1);
  const barWidth = Math.max(1, slot * 0.8);
  const y = (value) => PAD.top + plotHeight - (value / max) * plotHeight;
  const labelEvery = Math.ceil(points.length / 8);

  const bars = points.map((point, index) => {
    let base = 0;
    const x = PAD.left + index * slot + (slot - barWidth) / 2;
    const pieces = point.values.map((value, seriesIndex) => {
      const top = y(base + value);
      const rect = svg("rect", {
        x: x.toFixed(1),
        y: top.toFixed(1),
        width: barWidth.toFixed(1),
        height: (y(base) - top).toFixed(1),
        class: series[seriesIndex].className,
      });
      base += value;
      return rect;
    });
    const tooltip = `${point.title}\n${series.map((item, seriesIndex) => `${item.name}: ${formatInteger(point.values[seriesIndex])}`).join("\n")}`;
    return svg("g", { class: "bar" }, svg("title", {}, tooltip), pieces);
  });
  const labels = points.map((point, index) =>
    index % labelEvery === 0
      ? svg(
          "text",
          {
            x: (PAD.left + index * slot + slot / 2).toFixed(1),
            y: HEIGHT - 6,
            class: "axis-label",
            "text-anchor": "middle",
          },
          point.label,
        )
      : null,
  );
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": ariaLabel, class: "chart" },
    svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(0), y2: y(0), class: "axis" }),
    svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(max), y2: y(max), class: "grid" }),
    svg("text", { x: PAD.left - 6, y: y(max) + 4, class: "axis-label", "text-anchor": "end" }, formatCompact(max)),
    svg("text", { x: PAD.left - 6, y: y(0), class: "axis-label", "text-anchor": "end" }, "0"),
    bars,
    labels,
  );
  const legend = h(
    "ul",
    { class: "legend" },
    series.map((item) => h("li", {}, h("span", { class: `swatch ${item.className}` }), item.name)),
  );
  return h("figure", { class: "chart-figure" }, chart, legend);
}
