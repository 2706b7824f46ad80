// Apache ECharts, only the parts the page uses (bar charts on a canvas, with grid,
// tooltip, legend and the aria description for screen readers), through echarts/core
// so the bundle carries nothing else. Loaded on demand (its own chunk), so the tree's
// figures paint before the chart library has arrived.

import { BarChart } from "echarts/charts";
import { AriaComponent, GridComponent, LegendComponent, TooltipComponent } from "echarts/components";
import * as echarts from "echarts/core";
import { CanvasRenderer } from "echarts/renderers";

echarts.use([BarChart, GridComponent, TooltipComponent, LegendComponent, AriaComponent, CanvasRenderer]);

export { echarts };
