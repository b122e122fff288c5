// One Apache ECharts chart (canvas), sized to its container, for the overview page and the detail page's metrics. Only
// the parts every chart here uses are registered here; each page registers its own chart types, so ECharts loads only
// with the pages that draw charts. Tooltips are drawn on the canvas (richText), kept inside it: ECharts' HTML tooltips
// are markup with style attributes, which the page's Content-Security-Policy refuses.
import { GridComponent, LegendComponent, TooltipComponent } from "echarts/components";
import * as echarts from "echarts/core";
import { CanvasRenderer } from "echarts/renderers";
import { useEffect, useRef } from "react";

echarts.use([GridComponent, LegendComponent, TooltipComponent, CanvasRenderer]);

export { echarts };
export type ChartOption = echarts.EChartsCoreOption;

/** The container hides what overflows it: the canvas keeps its last size until the resize observer sees the new
 * one, and must not hold a shrinking layout open meanwhile.
 * `label`: the chart's accessible name (the chart is an image to assistive technology; give a text summary beside
 * it). The container's `data-points` counts the data points the chart holds, for the tests. */
export function EChart({ option, label, height, testId }: { option: ChartOption; label: string; height: number; testId?: string }) {
  const container = useRef<HTMLDivElement>(null);
  const chart = useRef<echarts.EChartsType | null>(null);

  useEffect(() => {
    const element = container.current;
    if (!element) return;
    const made = echarts.init(element, undefined, { renderer: "canvas" });
    chart.current = made;
    const resized = new ResizeObserver(() => made.resize());
    resized.observe(element);
    return () => {
      resized.disconnect();
      made.dispose();
      chart.current = null;
    };
  }, []);

  useEffect(() => {
    const made = chart.current;
    if (!made || !container.current) return;
    const tooltip = { ...(option.tooltip as object | undefined), renderMode: "richText", confine: true };
    made.setOption({ animation: false, ...option, tooltip }, { replaceMerge: ["series"] });
    container.current.dataset.points = String(pointsOf(made.getOption()));
  }, [option]);

  useEffect(() => {
    chart.current?.resize();
  }, [height]);

  return <div ref={container} role="img" aria-label={label} style={{ width: "100%", minWidth: 0, overflow: "hidden", height }} data-testid={testId} />;
}

/** The data points the chart holds (a gap, null, is none). */
function pointsOf(option: ChartOption): number {
  const series = (option.series ?? []) as { data?: unknown[] }[];
  return series.reduce((sum, one) => sum + (one.data ?? []).filter(isPoint).length, 0);
}

function isPoint(item: unknown): boolean {
  const value = Array.isArray(item) ? item[1] : item !== null && typeof item === "object" ? (item as { value?: unknown }).value : item;
  return typeof value === "number" && Number.isFinite(value);
}
