// ComfyUI-FlowSearch frontend extension (plain JS, no build step; served from WEB_DIRECTORY = "./web").
//
// The server sends each FlowSearch / Score Images run's summary as `ui.text` (and FlowSearch its full report as
// `ui.flowsearch_report`), but the ComfyUI frontend shows `ui.text` for no custom node. This extension shows it on
// the node after a run: the run summary (method, NFE spent / budget, best reward, time, what counting rewards
// counted) and every final candidate's score, the chosen one marked. The text lives in a read-only DOM widget
// that is never saved into the workflow nor sent with the prompt.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const NODE_TYPES = new Set(["FlowSearch", "FlowSearchScoreImages"]);
const WIDGET_NAME = "flowsearch_summary";
const LINE_PX = 15;
const CHAR_PX = 6.7; // 11 px monospace
const MAX_LINES = 30;

function first(value) {
  return Array.isArray(value) ? value[0] : value;
}

// Every candidate of each search, one line each: "#3  -0.0213  ← chosen". From the JSON report; [] when absent.
export function candidateLines(reportJson) {
  let report;
  try {
    report = JSON.parse(reportJson);
  } catch (e) {
    return [];
  }
  const lines = [];
  for (const [s, run] of (report?.searches ?? []).entries()) {
    const rewards = run.candidate_rewards ?? [];
    if (!rewards.length) continue;
    lines.push(report.searches.length > 1 ? `candidates of search ${s}:` : "candidates:");
    rewards.forEach((r, i) => {
      const score = r === null || r === undefined ? "—" : Number(r).toPrecision(4);
      lines.push(`  #${i}  ${score}${i === run.chosen ? "  ← chosen" : ""}`);
    });
  }
  return lines;
}

// The text to show for one `executed` message, or "" when the message carries none.
export function summaryText(message) {
  const text = first(message?.text);
  const report = first(message?.flowsearch_report);
  const lines = typeof text === "string" && text.trim() ? text.split("\n") : [];
  if (typeof report !== "string") return lines.join("\n");
  // FlowSearch: the summary line, every candidate's score (one per line, instead of the server's one-line
  // "search i: chosen #k of [...]"), then what the reward explained (e.g. counts by both counters)
  const details = lines.slice(1).filter((l) => !/^search \d+: chosen #/.test(l));
  return [...lines.slice(0, 1), ...candidateLines(report), ...details].join("\n");
}

// Lines the text takes in a node `width` px wide (long lines wrap).
function wrappedLines(text, width) {
  const perLine = Math.max(20, Math.floor((width - 36) / CHAR_PX));
  return text.split("\n").reduce((n, line) => n + Math.max(1, Math.ceil(line.length / perLine)), 0);
}

function ensureWidget(node) {
  const existing = node.widgets?.find((w) => w.name === WIDGET_NAME);
  if (existing) return existing;
  const el = document.createElement("pre");
  el.className = "flowsearch-summary";
  Object.assign(el.style, {
    margin: "0", padding: "4px 6px", overflow: "auto", whiteSpace: "pre-wrap", boxSizing: "border-box",
    font: `11px/${LINE_PX}px ui-monospace, Menlo, Consolas, monospace`, color: "var(--input-text, #ddd)",
    background: "var(--comfy-input-bg, #222)", borderRadius: "4px", userSelect: "text",
  });
  const widget = node.addDOMWidget(WIDGET_NAME, "flowsearch_summary", el, {
    serialize: false,
    hideOnZoom: false,
    getValue: () => el.textContent,
    setValue: (v) => { el.textContent = v ?? ""; },
    getMinHeight: () => Math.min(MAX_LINES * LINE_PX,
      Math.max(2 * LINE_PX, wrappedLines(el.textContent, node.size[0]) * LINE_PX, el.scrollHeight) + 12),
  });
  widget.serialize = false; // never in widgets_values: saved workflows keep their layout
  return widget;
}

function showSummary(node, text) {
  const widget = ensureWidget(node);
  widget.element.textContent = text;
  const min = node.computeSize();
  node.setSize([Math.max(node.size[0], min[0]), Math.max(node.size[1], min[1])]);
  node.setDirtyCanvas?.(true, true);
}

app.registerExtension({
  name: "FlowSearch.ScoresOnNode",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!NODE_TYPES.has(nodeData.name)) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      const result = onExecuted?.apply(this, arguments);
      const text = summaryText(message);
      if (text) showSummary(this, text);
      return result;
    };
  },
});

// The template browser lists a pack's example_workflows/ in the server's directory order, which is arbitrary.
// Our file names are numbered (01 Start here …, 03 Playground …): list ours in that order.
const FIRST_TEMPLATE = "01 Start here - ";
if (typeof api?.getWorkflowTemplates === "function") {
  const listTemplates = api.getWorkflowTemplates.bind(api);
  api.getWorkflowTemplates = async function () {
    const all = await listTemplates();
    for (const names of Object.values(all ?? {})) {
      if (Array.isArray(names) && names.some((n) => String(n).startsWith(FIRST_TEMPLATE))) names.sort();
    }
    return all;
  };
}
