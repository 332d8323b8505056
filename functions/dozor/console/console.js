// The Dozor console: one page, five sections, everything from authorized API routes (/v1/console/..., and /v1/lanes for the lane figures).
//
// No framework and no build step. Every value from the API reaches the page as text (textContent,
// never innerHTML), and the page's Content-Security-Policy allows scripts from this origin only.
// Routing is the URL's hash (#/reviews, #/orders/<id>, #/ops, #/parcels/<id>, #/lists, #/model, #/lanes),
// so the browser's back button and bookmarks work and every view has an address.

import { pathOf, queryOf, sign } from "./sigv4.js";

const SESSION_KEY = "dozor-console-credentials";
const main = document.getElementById("main");
const statusLine = document.getElementById("status");
let config = { auth: "AWS_IAM", region: "" };

// --- DOM helpers ------------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function say(message, kind = "info") {
  statusLine.textContent = message;
  statusLine.dataset.kind = kind;
}

function show(title, ...content) {
  main.replaceChildren(h("h1", { text: title }), ...content.flat().filter((c) => c !== null && c !== undefined && c !== false));
  document.title = `${title} · Dozor console`;
}

function when(iso) {
  if (!iso) return "—";
  return new Date(iso).toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

function money(amount, currency) {
  return `${Number(amount).toLocaleString("en-US", { maximumFractionDigits: 2 })} ${currency}`;
}

function percent(value, digits = 1) {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(digits)} %`;
}

function table(caption, headers, rows) {
  return h(
    "table",
    {},
    h("caption", { text: caption }),
    h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col", text: name })))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length, text: "Nothing here." }))),
  );
}

function field(label, control) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id, text: label }), control);
}

function select(name, options, value) {
  return h(
    "select",
    { name },
    options.map(([optionValue, text]) => h("option", { value: optionValue, selected: optionValue === value, text })),
  );
}

// --- the API, signed ----------------------------------------------------------------------------

function credentials() {
  const stored = sessionStorage.getItem(SESSION_KEY);
  return stored ? JSON.parse(stored) : null;
}

class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.error ? body.error : body || {};
    const fields = (detail.fields || []).map((f) => `${f.field}: ${f.message}`).join("; ");
    super(`${status}: ${detail.message || "request failed"}${fields ? ` (${fields})` : ""}`);
    this.status = status;
  }
}

async function api(method, segments, { query = {}, body } = {}) {
  const creds = credentials();
  if (!creds) throw new ApiError(401, { message: "not signed in" });
  const path = pathOf(segments);
  const search = queryOf(query);
  const text = body === undefined ? "" : JSON.stringify(body);
  const headers = text ? { "content-type": "application/json" } : {};
  if (creds.bearer) headers.authorization = `Bearer ${creds.bearer}`;
  else Object.assign(headers, await sign({ method, path, query: search, body: text, host: location.host, region: config.region, credentials: creds }));
  const response = await fetch(search ? `${path}?${search}` : path, { method, headers, body: text || undefined });
  const payload = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401 || response.status === 403) say("The API refused these credentials; sign in again.", "error");
    throw new ApiError(response.status, payload);
  }
  return payload;
}

async function guarded(work) {
  try {
    return await work();
  } catch (error) {
    say(error.message, "error");
    return undefined;
  }
}

// --- sign in --------------------------------------------------------------------------------------

function signIn(next) {
  const iam = config.auth !== "JWT";
  // autocomplete "off": these are short-lived keys and tokens, not a password the browser should
  // offer to save (or fill in later, stale, from its password store).
  const inputs = iam
    ? [
        field("Access key ID", h("input", { name: "accessKeyId", autocomplete: "off", required: true })),
        field("Secret access key", h("input", { name: "secretAccessKey", type: "password", autocomplete: "off", required: true })),
        field("Session token (temporary credentials)", h("input", { name: "sessionToken", type: "password", autocomplete: "off" })),
      ]
    : [field("Bearer token (JWT)", h("input", { name: "bearer", type: "password", autocomplete: "off", required: true }))];
  const form = h(
    "form",
    { class: "panel", autocomplete: "off", onsubmit: async (event) => {
      event.preventDefault();
      const data = Object.fromEntries(new FormData(form).entries());
      if (!data.sessionToken) delete data.sessionToken;
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(data));
      const ok = await guarded(() => api("GET", ["v1", "console", "reviews"], { query: { limit: 1 } }));
      if (ok === undefined) { sessionStorage.removeItem(SESSION_KEY); return; }
      say("Signed in.");
      renderWho();
      location.hash = next || "#/reviews";
      route();
    } },
    h("p", {
      text: iam
        ? `Requests are signed in this page with AWS Signature Version 4 (execute-api, ${config.region}). ` +
          "Use short-lived credentials of a role allowed execute-api:Invoke on /v1/console/*; " +
          "they are kept in this tab's session storage only."
        : "Paste a token from the API's identity provider; it is kept in this tab's session storage only.",
    }),
    inputs,
    h("button", { type: "submit", text: "Sign in" }),
  );
  show("Sign in", form);
  form.querySelector("input").focus();
}

function renderWho() {
  const creds = credentials();
  document.getElementById("who").textContent = creds ? (creds.bearer ? "signed in (token)" : `key ${creds.accessKeyId}`) : "";
  document.getElementById("sign-out").hidden = !creds;
}

// --- reviewers ------------------------------------------------------------------------------------

function historyText(history) {
  if (!history) return "—";
  return `${history.orders_30d} orders 30 d · ${history.lifetime_orders} lifetime · ${history.lifetime_fraud_labels} fraud`;
}

function findOrderForm() {
  const input = h("input", { name: "order_id", required: true, maxlength: 128, placeholder: "o-1234" });
  return h(
    "form",
    { class: "inline", role: "search", onsubmit: (event) => {
      event.preventDefault();
      location.hash = `#/orders/${encodeURIComponent(input.value.trim())}`;
    } },
    field("Find a decision by order id", input),
    h("button", { type: "submit", text: "Find" }),
  );
}

async function reviewsPage() {
  const page = await guarded(() => api("GET", ["v1", "console", "reviews"], { query: { limit: 100 } }));
  if (!page) return;
  const rows = page.cases.map(({ case: c, buyer, seller }) =>
    h(
      "tr",
      {},
      h("td", {}, h("a", { href: `#/orders/${encodeURIComponent(c.order_id)}`, text: c.order_id })),
      h("td", { class: "num", text: c.decision.score.toFixed(3) }),
      h("td", { class: "num", text: money(c.amount, c.currency) }),
      h("td", {}, h("ul", { class: "reasons" }, c.decision.reasons.slice(0, 3).map((r) => h("li", { text: r.text })))),
      h("td", { text: c.decision.rules.join(", ") || "—" }),
      h("td", { text: historyText(buyer) }),
      h("td", { text: historyText(seller) }),
      h("td", { text: when(c.queued_at) }),
    ),
  );
  show(
    "Review queue",
    findOrderForm(),
    table(`${page.cases.length} open cases, oldest first`, ["Order", "Score", "Amount", "Reasons", "Rules", "Buyer", "Seller", "Queued"], rows),
  );
}

function contributionBars(reasons) {
  const widest = Math.max(...reasons.map((r) => Math.abs(r.contribution)), 0.001);
  const svg = s("svg", { class: "bars", viewBox: `0 0 300 ${reasons.length * 22}`, role: "img", "aria-label": "How much each reason moved the score" });
  reasons.forEach((r, i) => {
    const width = (Math.abs(r.contribution) / widest) * 280;
    svg.append(s("rect", { x: 0, y: i * 22 + 4, width: Math.max(width, 1), height: 14, class: r.contribution >= 0 ? "up" : "down" }));
  });
  return svg;
}

async function verdict(orderId, value, note) {
  const body = { verdict: value };
  if (note) body.note = note;
  const settled = await guarded(() => api("POST", ["v1", "console", "reviews", orderId, "verdict"], { body }));
  if (settled) {
    say(`Order ${orderId} marked ${settled.state} by ${settled.verdict_by}; the label is on its way.`);
    await orderPage(orderId);
  }
}

function entityActions(detail) {
  const rows = detail.entities.map((e) => {
    const list = select("list", [["block", "block"], ["review", "review"], ["allow", "allow"]], "block");
    const reason = h("input", { name: "reason", required: true, maxlength: 500, placeholder: "why" });
    const form = h(
      "form",
      { class: "inline", onsubmit: async (event) => {
        event.preventDefault();
        const done = await guarded(() =>
          api("POST", ["v1", "console", "lists", "changes"], {
            body: { kind: e.kind, entity: e.entity, order_id: detail.decision.order_id, list: list.value, reason: reason.value },
          }),
        );
        if (done) say(`${done.shown_as} is on the ${done.list} list.`);
      } },
      field(`List for ${e.shown_as}`, list),
      field("Reason", reason),
      h("button", { type: "submit", text: "Put on list" }),
    );
    return h("tr", {}, h("td", { text: e.kind }), h("td", { text: e.shown_as }), h("td", {}, form));
  });
  return table("This order's card, device, email, address and buyer", ["Kind", "Entity", "Put on a list"], rows);
}

async function orderPage(orderId) {
  const detail = await guarded(() => api("GET", ["v1", "console", "orders", orderId]));
  if (!detail) { show(`Order ${orderId}`, findOrderForm()); return; }
  const d = detail.decision;
  const c = detail.case;
  const note = h("textarea", { name: "note", maxlength: 500, rows: 2 });
  const open = c && c.state === "open";
  const verdictPanel = c
    ? h(
        "section",
        { class: "panel", "aria-labelledby": "verdict-h" },
        h("h2", { id: "verdict-h", text: open ? "Verdict" : `Settled: ${c.state}` }),
        open
          ? [
              field("Note (optional)", note),
              h("div", { class: "buttons" },
                h("button", { type: "button", class: "danger", onclick: () => verdict(orderId, "fraud", note.value), text: "Mark fraud" }),
                h("button", { type: "button", class: "ok", onclick: () => verdict(orderId, "legit", note.value), text: "Mark legit" })),
            ]
          : h("p", { text: `by ${c.verdict_by} at ${when(c.verdict_at)}${c.note ? ` — ${c.note}` : ""}` }),
      )
    : h("p", { class: "panel", text: "This order was not sent to review." });
  show(
    `Order ${d.order_id}`,
    findOrderForm(),
    h("dl", { class: "facts" },
      h("dt", { text: "Decision" }), h("dd", { class: `kind-${d.decision}`, text: `${d.decision} (${d.risk_level} risk)` }),
      h("dt", { text: "Score" }), h("dd", { text: d.score.toFixed(4) }),
      c ? [h("dt", { text: "Amount" }), h("dd", { text: money(c.amount, c.currency) })] : null,
      h("dt", { text: "Rules" }), h("dd", { text: d.rules.join(", ") || "none" }),
      h("dt", { text: "Model" }), h("dd", { text: `${d.model_version}${d.degraded ? " (degraded: no history read)" : ""}` }),
      h("dt", { text: "Decided" }), h("dd", { text: when(d.decided_at) }),
      h("dt", { text: "Buyer" }), h("dd", { text: historyText(detail.buyer) }),
      h("dt", { text: "Seller" }), h("dd", { text: historyText(detail.seller) })),
    h("section", { "aria-labelledby": "why-h" },
      h("h2", { id: "why-h", text: "Why: the reasons that moved the score" }),
      h("div", { class: "explain" },
        contributionBars(d.reasons),
        h("ol", {}, d.reasons.map((r) => h("li", { text: `${r.text} (${r.contribution >= 0 ? "+" : ""}${r.contribution.toFixed(2)})` }))))),
    verdictPanel,
    entityActions(detail),
  );
}

// --- ops ------------------------------------------------------------------------------------------

const ALERT_TYPES = [["", "any type"], ["STALLED", "stalled"], ["LIKELY_LOST", "likely lost"], ["CARRIER_EXCEPTION", "carrier exception"]];
const SEVERITIES = [["", "any severity"], ["HIGH", "high"], ["MEDIUM", "medium"], ["LOW", "low"]];

async function opsPage(params) {
  const page = await guarded(() => api("GET", ["v1", "console", "alerts"], { query: params }));
  if (!page) return;
  const type = select("type", ALERT_TYPES, params.type || "");
  const carrier = select("carrier", [["", "any carrier"], ...page.carriers.map((c) => [c, c])], params.carrier || "");
  const region = select("region", [["", "any region"], ...page.regions.map((r) => [r, r])], params.region || "");
  const severity = select("severity", SEVERITIES, params.severity || "");
  const filters = h(
    "form",
    { class: "inline", role: "search", "aria-label": "Filter alerts", onsubmit: (event) => {
      event.preventDefault();
      const chosen = queryOf({ type: type.value, carrier: carrier.value, region: region.value, severity: severity.value });
      location.hash = `#/ops${chosen ? `?${chosen}` : ""}`;
    } },
    field("Type", type), field("Carrier", carrier), field("Region", region), field("Severity", severity),
    h("button", { type: "submit", text: "Filter" }),
  );
  const rows = page.alerts.map(({ alert: a, handling }) =>
    h(
      "tr",
      {},
      h("td", { text: a.type }),
      h("td", {}, h("span", { class: `sev sev-${a.severity}`, text: a.severity })),
      h("td", {}, h("a", { href: `#/parcels/${encodeURIComponent(a.parcel_id)}`, text: a.parcel_id })),
      h("td", { text: a.carrier }),
      h("td", { text: a.destination_region || "—" }),
      h("td", { text: a.status }),
      h("td", { text: a.message }),
      h("td", { text: when(a.raised_at) }),
      h("td", { text: handling.acknowledged_by ? `${handling.acknowledged_by}` : "—" }),
    ),
  );
  show("Open parcel alerts", filters, table(page.truncated ? `Showing the first ${page.alerts.length} open alerts found, newest first: there are more, narrow the filters to see them` : `${page.alerts.length} open alerts, newest first`, ["Type", "Severity", "Parcel", "Carrier", "Region", "Status", "What", "Raised", "Acknowledged by"], rows));
}

function timelineSvg(t) {
  const times = t.stages.flatMap((st) => [st.at, st.ended_at, st.stalled_by]).filter(Boolean).map((x) => Date.parse(x));
  times.push(Date.parse(t.now));
  const start = Math.min(...times);
  const end = Math.max(...times);
  const span = Math.max(end - start, 3600e3);
  const width = 760;
  const left = 150;
  const x = (iso) => left + ((Date.parse(iso) - start) / span) * (width - left - 20);
  const rowHeight = 28;
  const height = t.stages.length * rowHeight + 50;
  const label = `Scans of parcel ${t.parcel_id}: ${t.stages.length} stages` + (t.deadline ? `, lane deadline ${when(t.deadline)}` : ", finished");
  const svg = s("svg", { class: "timeline", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
  svg.append(s("title", {}, label));
  t.stages.forEach((st, i) => {
    const y = 20 + i * rowHeight;
    const until = st.ended_at || t.now;
    svg.append(s("text", { x: 0, y: y + 12, class: "stage" }, st.status));
    svg.append(s("rect", { x: x(st.at), y, width: Math.max(x(until) - x(st.at), 2), height: 16, class: st.late ? "late" : "ok" }));
    if (st.stalled_by) svg.append(s("line", { x1: x(st.stalled_by), x2: x(st.stalled_by), y1: y - 2, y2: y + 18, class: "limit" }));
    svg.append(s("circle", { cx: x(st.at), cy: y + 8, r: 4, class: "scan" }));
  });
  if (t.deadline) {
    const dx = x(t.deadline);
    svg.append(s("line", { x1: dx, x2: dx, y1: 8, y2: height - 24, class: "deadline" }));
    svg.append(s("text", { x: Math.min(dx + 4, width - 150), y: height - 8, class: "deadline-label" }, `lane deadline ${when(t.deadline)}`));
  }
  const nx = x(t.now);
  svg.append(s("line", { x1: nx, x2: nx, y1: 8, y2: height - 24, class: "now" }));
  svg.append(s("text", { x: Math.max(nx - 40, left), y: 12, class: "now-label" }, "now"));
  return svg;
}

async function handleAlert(parcelId, type, action, note) {
  const body = note ? { note } : {};
  const done = await guarded(() => api("POST", ["v1", "console", "parcels", parcelId, "alerts", type, action], { body }));
  if (done) {
    say(`${type} alert of ${parcelId} ${action === "resolve" ? "resolved" : "acknowledged"} by ${action === "resolve" ? done.handling.resolved_by : done.handling.acknowledged_by}.`);
    await parcelPage(parcelId);
  }
}

async function parcelPage(parcelId) {
  const view = await guarded(() => api("GET", ["v1", "console", "parcels", parcelId]));
  if (!view) return;
  const t = view.timeline;
  const stageRows = t.stages.map((st) =>
    h("tr", { class: st.late ? "late" : "" },
      h("td", { text: st.status }), h("td", { text: when(st.at) }),
      h("td", { text: [st.facility, st.region, st.country].filter(Boolean).join(", ") || "—" }),
      h("td", { text: when(st.due_by) }), h("td", { text: when(st.stalled_by) }),
      h("td", { text: st.late ? "late" : "in time" })),
  );
  const alertRows = view.alerts.map(({ alert: a, handling }) => {
    const note = h("input", { name: "note", maxlength: 500, placeholder: "note" });
    const open = handling.state === "OPEN";
    return h("tr", {},
      h("td", { text: a.type }), h("td", {}, h("span", { class: `sev sev-${a.severity}`, text: a.severity })),
      h("td", { text: a.message }),
      h("td", { text: open ? (handling.acknowledged_by ? `open, acknowledged by ${handling.acknowledged_by}` : "open") : `resolved ${when(handling.resolved_at)}${handling.resolved_by ? ` by ${handling.resolved_by}` : ""}` }),
      h("td", {}, open ? h("div", { class: "buttons" }, field(`Note on ${a.type}`, note),
        h("button", { type: "button", onclick: () => handleAlert(parcelId, a.type, "acknowledge", note.value), text: "Acknowledge" }),
        h("button", { type: "button", onclick: () => handleAlert(parcelId, a.type, "resolve", note.value), text: "Resolve" })) : "—"));
  });
  show(
    `Parcel ${t.parcel_id}`,
    h("dl", { class: "facts" },
      h("dt", { text: "Order" }), h("dd", {}, h("a", { href: `#/orders/${encodeURIComponent(t.order_id)}`, text: t.order_id })),
      h("dt", { text: "Carrier / lane" }), h("dd", { text: `${t.carrier} · ${t.lane}` }),
      h("dt", { text: "Status" }), h("dd", { text: t.status }),
      h("dt", { text: "Lane deadline" }), h("dd", { text: t.deadline ? when(t.deadline) : "none (finished)" })),
    h("section", { "aria-labelledby": "tl-h" }, h("h2", { id: "tl-h", text: "Scan timeline against the lane's deadlines" }),
      timelineSvg(t),
      h("p", { class: "legend", text: "Bars: time in each stage (red: past the lane's stalled limit). Ticks: each stage's limit. Dashed: the current deadline." })),
    table("Scans", ["Stage", "Scanned", "Where", "Next due by", "Stalled after", ""], stageRows),
    table("Alerts", ["Type", "Severity", "What", "State", "Act"], alertRows),
  );
}

// --- lists ----------------------------------------------------------------------------------------

const KINDS = [["card", "card fingerprint"], ["device", "device id"], ["email", "email"], ["address", "address (country|region|city|postal code|street)"], ["buyer", "buyer id"]];

async function listChange(body) {
  const done = await guarded(() => api("POST", ["v1", "console", "lists", "changes"], { body }));
  if (done) {
    say(done.list ? `${done.shown_as} is on the ${done.list} list.` : `${done.shown_as} is off every list.`);
    await listsPage();
  }
}

async function showHistory(entity, where) {
  const found = await guarded(() => api("GET", ["v1", "console", "lists", "history"], { query: { entity } }));
  if (!found) return;
  where.replaceChildren(table(`Changes of ${entity}`, ["When", "List", "Before", "By", "Why"],
    found.changes.map((c) => h("tr", {}, h("td", { text: when(c.at) }), h("td", { text: c.list || "off" }), h("td", { text: c.previous || "—" }), h("td", { text: c.by }), h("td", { text: c.reason })))));
}

async function listsPage() {
  const page = await guarded(() => api("GET", ["v1", "console", "lists"]));
  if (!page) return;
  const list = select("list", [["block", "block"], ["review", "review"], ["allow", "allow"], ["", "take off every list"]], "block");
  const kind = select("kind", KINDS, "card");
  const value = h("input", { name: "value", required: true, maxlength: 320, autocomplete: "off" });
  const reason = h("input", { name: "reason", required: true, maxlength: 500 });
  const form = h(
    "form",
    { class: "panel", onsubmit: (event) => {
      event.preventDefault();
      listChange({ kind: kind.value, value: value.value, list: list.value || null, reason: reason.value });
    } },
    h("h2", { text: "Change an entity's list" }),
    h("div", { class: "inline" }, field("List", list), field("Kind", kind), field("Value", value), field("Reason", reason),
      h("button", { type: "submit", text: "Save" })),
    h("p", { class: "legend", text: "The value is keyed as orders key it (personal values by keyed hash) and never stored." }),
  );
  const history = h("div", {});
  const rows = page.entries.map((e) => {
    const why = h("input", { name: "reason", required: true, maxlength: 500, placeholder: "why" });
    return h("tr", {},
      h("td", { text: e.list }), h("td", { text: e.shown_as }), h("td", { text: e.by }), h("td", { text: e.reason }),
      h("td", { text: when(e.at) }), h("td", { text: e.applied ? "yes" : "pending" }),
      h("td", {}, h("form", { class: "inline", onsubmit: (event) => {
        event.preventDefault();
        listChange({ kind: e.kind, entity: e.entity, list: null, reason: why.value });
      } }, field(`Reason to remove ${e.shown_as}`, why), h("button", { type: "submit", text: "Remove" }),
        h("button", { type: "button", onclick: () => showHistory(e.entity, history), text: "History" }))));
  });
  show("Allow, block and review lists", form, table(`${page.entries.length} entries`, ["List", "Entity", "By", "Why", "When", "Applied", ""], rows), history);
}

// --- model ----------------------------------------------------------------------------------------

function modelCard(card) {
  const report = card.report || {};
  const models = ["model", "rules_only", "logistic"].filter((name) => report[name]);
  const rows = models.map((name) => {
    const m = report[name];
    const d = m.decisions || {};
    return h("tr", {}, h("th", { scope: "row", text: name.replace("_", " ") }),
      h("td", { class: "num", text: m.average_precision?.toFixed(3) }), h("td", { class: "num", text: m.roc_auc?.toFixed(3) }),
      h("td", { class: "num", text: percent(m.recall_at_1pct_fpr) }), h("td", { class: "num", text: percent(d.recall) }),
      h("td", { class: "num", text: d.reviewed_per_day?.toFixed(1) }), h("td", { class: "num", text: d.declined_per_day?.toFixed(1) }),
      h("td", { class: "num", text: percent(d.cost?.saving_share) }));
  });
  const data = card.data || {};
  return h("section", { class: "panel", "aria-labelledby": `m-${card.role}` },
    h("h2", { id: `m-${card.role}`, text: `${card.role === "active" ? "Active" : "Shadow"}: ${card.version}` }),
    h("dl", { class: "facts" },
      h("dt", { text: "Registry names" }), h("dd", { text: card.pointer }),
      h("dt", { text: "Trained" }), h("dd", { text: when(card.trained_at) }),
      h("dt", { text: "Thresholds" }), h("dd", { text: Object.entries(card.thresholds).map(([k, v]) => `${k} ≥ ${v.toFixed(3)}`).join(", ") }),
      h("dt", { text: "Trained on" }), h("dd", { text: `${data.orders ?? "?"} orders, ${data.labelled_fraud ?? "?"} fraud labels` }),
      h("dt", { text: "Test rows" }), h("dd", { text: `${report.rows ?? "?"} (fraud rate ${percent(report.positive_rate, 2)})` })),
    table("Evaluation on the held-out test period", ["", "Avg precision", "ROC AUC", "Recall @1% FPR", "Recall", "Reviews/day", "Declines/day", "Saving"], rows));
}

async function modelPage(params) {
  const hours = params.hours || "24";
  const page = await guarded(() => api("GET", ["v1", "console", "model"], { query: { hours } }));
  if (!page) return;
  const window = select("hours", [["24", "last 24 hours"], ["168", "last 7 days"], ["720", "last 30 days"]], hours);
  window.addEventListener("change", () => { location.hash = `#/model?hours=${window.value}`; });
  const d = page.disagreement;
  show(
    "Model",
    h("section", { class: "panel", "aria-labelledby": "dis-h" },
      h("h2", { id: "dis-h", text: "Shadow disagreement" }),
      page.shadow
        ? [field("Window", window),
           h("p", { class: "big", text: d && d.compared ? percent(d.rate) : "no orders compared yet" }),
           h("p", { text: d ? `${d.differing} of ${d.compared} orders scored by both would have been decided otherwise since ${when(d.since)}.` : "" })]
        : h("p", { text: "No shadow model: `dozor publish <dir> --shadow` puts one beside the active model." })),
    modelCard(page.active),
    page.shadow ? modelCard(page.shadow) : null,
  );
}

// --- lanes ----------------------------------------------------------------------------------------

function days(value) {
  return value === null || value === undefined ? "—" : value.toFixed(1);
}

// A figure over fewer parcels than the report's small-sample bound is shown, and marked as such.
function sample(figures, below) {
  return figures.small_sample ? `${figures.parcels} (small sample, under ${below})` : String(figures.parcels);
}

function laneName(row) {
  return [row.carrier, row.region, row.area_name].filter(Boolean).join(" · ");
}

function laneFigures(caption, rows, below) {
  return table(caption, ["Lane", "Parcels", "Days p50", "p90", "p99", "Lost", "Returned", "Fraud", "Chargebacks by value", "True alerts"],
    rows.map((r) => h("tr", { class: r.small_sample ? "small" : undefined },
      h("th", { scope: "row", text: laneName(r) }), h("td", { class: "num", text: sample(r, below) }),
      h("td", { class: "num", text: days(r.delivery_days_p50) }), h("td", { class: "num", text: days(r.delivery_days_p90) }),
      h("td", { class: "num", text: days(r.delivery_days_p99) }), h("td", { class: "num", text: percent(r.lost_share) }),
      h("td", { class: "num", text: percent(r.returned_share) }), h("td", { class: "num", text: percent(r.fraud_rate) }),
      h("td", { class: "num", text: percent(r.chargeback_rate_by_value) }),
      h("td", { class: "num", text: r.alerts ? `${percent(r.true_alert_share, 0)} of ${r.alerts}` : "—" }))));
}

function sellerLanes(view) {
  const below = view.small_sample_below;
  return table(`Seller ${view.seller_id}'s lanes beside the marketplace's`,
    ["Lane", "Parcels", "Days p50", "Marketplace p50", "Lost", "Marketplace lost", "Fraud", "Marketplace fraud"],
    view.by_lane.map((r) => {
      const m = r.marketplace;
      const withheld = r.marketplace_withheld || "withheld";
      return h("tr", {}, h("th", { scope: "row", text: laneName(r) }),
        h("td", { class: "num", text: sample(r.seller, below) }),
        h("td", { class: "num", text: days(r.seller.delivery_days_p50) }), h("td", { class: "num", text: m ? days(m.delivery_days_p50) : withheld }),
        h("td", { class: "num", text: percent(r.seller.lost_share) }), h("td", { class: "num", text: m ? percent(m.lost_share) : withheld }),
        h("td", { class: "num", text: percent(r.seller.fraud_rate) }), h("td", { class: "num", text: m ? percent(m.fraud_rate) : withheld }));
    }));
}

async function lanesPage(params) {
  const seller = params.seller || "";
  const view = await guarded(() => seller ? api("GET", ["v1", "lanes", "sellers", seller]) : api("GET", ["v1", "lanes"]));
  const input = h("input", { name: "seller", value: seller, maxlength: 128, autocomplete: "off" });
  const form = h("form", { class: "inline", onsubmit: (event) => {
    event.preventDefault();
    location.hash = input.value ? `#/lanes?seller=${encodeURIComponent(input.value)}` : "#/lanes";
  } }, field("Seller id", input), h("button", { type: "submit", text: "Show this seller's lanes" }));
  if (!view) { show("Lane reliability", form); return; }
  const facts = h("p", { class: "legend", text: `Report of ${when(view.generated_at)}; true alerts judged by ${view.alerts_from === "sweeper" ? "the sweeper's alerts" : "a silence rule"}: ${view.alerts_rule}` });
  if (view.view === "seller") {
    show(`Lanes of seller ${view.seller_id}`, form, facts, sellerLanes(view));
    return;
  }
  const below = view.small_sample_below;
  show("Lane reliability", form, facts,
    laneFigures("Moscow and St Petersburg against the rest of Russia, by remoteness", view.by_area, below),
    laneFigures("Each carrier and destination region", view.by_lane, below));
}

// --- routing --------------------------------------------------------------------------------------

function parseHash() {
  const [path, search] = (location.hash.slice(1) || "/reviews").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: Object.fromEntries(new URLSearchParams(search || "")) };
}

async function route() {
  const { parts, params } = parseHash();
  const section = parts[0] === "orders" ? "reviews" : parts[0] === "parcels" ? "ops" : parts[0];
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!credentials()) { signIn(location.hash); return; }
  main.setAttribute("aria-busy", "true");
  if (parts[0] === "orders" && parts[1]) await orderPage(parts[1]);
  else if (parts[0] === "ops") await opsPage(params);
  else if (parts[0] === "parcels" && parts[1]) await parcelPage(parts[1]);
  else if (parts[0] === "lists") await listsPage();
  else if (parts[0] === "model") await modelPage(params);
  else if (parts[0] === "lanes") await lanesPage(params);
  else await reviewsPage();
  main.removeAttribute("aria-busy");
  main.focus({ preventScroll: true });
}

async function start() {
  config = await fetch("/console/config.json").then((r) => r.json());
  document.getElementById("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(SESSION_KEY);
    renderWho();
    say("Signed out.");
    route();
  });
  window.addEventListener("hashchange", () => { say(""); route(); });
  renderWho();
  await route();
}

start();
