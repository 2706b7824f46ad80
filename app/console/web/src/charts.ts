// Bar charts for the tree, the directives and the assessment views, drawn with Apache
// ECharts (echarts-setup.ts, loaded on first use).

import type { ECharts } from "echarts/core";
import { getLang } from "./i18n";

type EchartsModule = typeof import("./echarts-setup");
let loading: Promise<EchartsModule> | null = null;
function loadEcharts(): Promise<EchartsModule> {
  loading ??= import("./echarts-setup");
  return loading;
}

export interface Series {
  name: string;
  values: (number | null)[];
  stack?: string;
  color?: string;
}

export interface BarSpec {
  categories: string[];
  series: Series[];
  horizontal?: boolean;
  percent?: boolean; // values are 0..1, shown as %
  big?: boolean; // big-screen type sizes
}

const TEXT = "#dbe7f5";
// Canvas text needs a real font list ("inherit" is not valid there).
const FONT = '"PingFang SC", "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif';
const AXIS = "#5b7290";
const SPLIT = "rgba(120,150,190,0.18)";

// Colours of the case states, shared with the tree (styles.css uses the same ones).
export const STATE_COLORS: Record<string, string> = {
  CASE_STATE_REPORTED: "#f2b134",
  CASE_STATE_ACCEPTED: "#4fb3ff",
  CASE_STATE_DISPATCHED: "#7c8cff",
  CASE_STATE_IN_PROGRESS: "#37d4c4",
  CASE_STATE_RESOLVED: "#8fd36a",
  CASE_STATE_VERIFIED: "#c79bff",
};

export class BarPanel {
  private chart: ECharts | null = null;
  private observer: ResizeObserver | null = null;
  private disposed = false;
  private latest: BarSpec | null = null;

  constructor(private readonly el: HTMLElement) {}

  set(spec: BarSpec): void {
    this.latest = spec;
    if (this.chart) {
      this.draw(spec);
      return;
    }
    void loadEcharts().then(({ echarts }) => {
      if (this.disposed || !this.latest) return;
      if (!this.chart) {
        this.chart = echarts.init(this.el, undefined, { renderer: "canvas", locale: getLang() === "zh" ? "ZH" : "EN" });
        this.observer = new ResizeObserver(() => this.chart?.resize());
        this.observer.observe(this.el);
      }
      this.draw(this.latest);
    });
  }

  private draw(spec: BarSpec): void {
    if (!this.chart) return;
    const fs = spec.big ? 18 : 12;
    const valueAxis = {
      type: "value" as const,
      axisLabel: {
        color: TEXT,
        fontSize: fs,
        formatter: spec.percent ? (v: number) => `${Math.round(v * 100)}%` : undefined,
      },
      splitLine: { lineStyle: { color: SPLIT } },
      max: spec.percent ? 1 : undefined,
      minInterval: spec.percent ? undefined : 1,
    };
    const categoryAxis = {
      type: "category" as const,
      data: spec.categories,
      axisLabel: { color: TEXT, fontSize: fs, interval: 0, hideOverlap: true },
      axisLine: { lineStyle: { color: AXIS } },
      inverse: spec.horizontal ? true : undefined,
    };
    this.chart.setOption(
      {
        animationDuration: 300,
        aria: { enabled: true, decal: { show: false } },
        textStyle: { fontFamily: FONT },
        grid: {
          left: spec.horizontal ? 8 : 8,
          right: 16,
          // Room for the legend (two lines in desk mode when it is long).
          top: spec.series.length > 1 ? (spec.big ? 48 : spec.series.length > 4 ? 50 : 32) : 12,
          bottom: 8,
          containLabel: true,
        },
        legend:
          spec.series.length > 1
            ? { top: 0, textStyle: { color: TEXT, fontSize: fs }, itemWidth: 12, itemHeight: 10, itemGap: 8 }
            : { show: false },
        tooltip: {
          trigger: "axis",
          axisPointer: { type: "shadow" },
          valueFormatter: spec.percent
            ? (v: unknown) => (typeof v === "number" ? `${(v * 100).toFixed(1)}%` : "—")
            : undefined,
        },
        xAxis: spec.horizontal ? valueAxis : categoryAxis,
        yAxis: spec.horizontal ? categoryAxis : valueAxis,
        series: spec.series.map((s) => ({
          type: "bar" as const,
          name: s.name,
          data: s.values,
          stack: s.stack,
          itemStyle: s.color ? { color: s.color } : undefined,
          barMaxWidth: spec.big ? 36 : 22,
          emphasis: { focus: "series" as const },
        })),
      },
      { notMerge: true, lazyUpdate: true },
    );
  }

  dispose(): void {
    this.disposed = true;
    this.observer?.disconnect();
    this.chart?.dispose();
    this.chart = null;
  }
}
