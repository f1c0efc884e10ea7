// The streamflow dashboard: one page, drawn from the JSON API under /api (through
// lib.js), read again every few seconds. No build step and no dependency.
"use strict";

let drawing = false;
let settled = null;  // the hash of a workflow page that has ended: nothing left to read
const openDetails = new Set();

// -- pages -----------------------------------------------------------------------------

const pages = {
  workflows: { title: "Workflows", tools: workflowFilters, draw: drawWorkflows },
  workflow: { draw: drawWorkflow },
  "dead-letters": { draw: drawDeadLetters },
  "dead-letter": { draw: drawDeadLetter },
  workers: { title: "Workers", tools: toggle("all", "every worker remembered (a day)"),
    draw: drawWorkers },
  queues: { title: "Queues", tools: toggle("by_shard", "a row per shard"), draw: drawQueues },
};

function route() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, ...rest] = path.split("/");
  const id = rest.length ? decodeURIComponent(rest.join("/")) : null;
  const params = new URLSearchParams(query || "");
  if (name === "workflows" && id) return { page: "workflow", id, params };
  if (name === "dead-letters" && id) return { page: "dead-letter", id, params };
  return { page: pages[name] ? name : "workflows", id, params };
}

function setQuery(params) {
  const { page } = route();
  location.hash = `#/${page}${params.toString() ? `?${params}` : ""}`;
}

function workflowFilters(params) {
  const statuses = ["", ...config.statuses];
  const field = (label, input) => h("label", {}, label, input);
  const form = h("form", { class: "filters", onsubmit: (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) next.set(key, value);
    setQuery(next);
  } },
  field("Status", h("select", { name: "status" }, statuses.map((s) =>
    h("option", { value: s, selected: params.get("status") === s && s !== "" }, s || "any")))),
  field("Actor", h("input", { name: "actor", value: params.get("actor") || "", placeholder: "any" })),
  field("Since (UTC)", h("input", { name: "since", type: "datetime-local", step: 1,
    value: params.get("since") || "" })),
  field("Until (UTC)", h("input", { name: "until", type: "datetime-local", step: 1,
    value: params.get("until") || "" })),
  field("Limit", h("input", { name: "limit", type: "number", min: 1, max: 500,
    value: params.get("limit") || 50 })),
  h("button", { type: "submit" }, "Filter"));
  return form;
}

function toggle(name, label) {
  return (params) => h("label", { class: "filters" }, h("input", {
    type: "checkbox", checked: params.get(name) === "1",
    onchange: (event) => {
      const next = new URLSearchParams();
      if (event.target.checked) next.set(name, "1");
      setQuery(next);
    },
  }), ` ${label}`);
}

async function drawWorkflows(params) {
  const query = new URLSearchParams();
  for (const key of ["status", "actor", "since", "until", "limit"]) {
    if (params.get(key)) query.set(key, params.get(key));
  }
  const data = await api(`/api/workflows?${query}`);
  const rows = data.workflows.map((w) => h("tr", { "data-workflow": w.workflow_id },
    h("td", {}, h("a", { href: `#/workflows/${w.workflow_id}`, class: "mono" }, w.workflow_id)),
    h("td", {}, badge(w.status)),
    h("td", {}, when(w.submitted_ms)),
    h("td", { class: "num" }, w.ended_ms ? duration(w.ended_ms - w.submitted_ms) : ""),
    h("td", { class: "num" }, w.events)));
  const filtered = ["actor", "since", "until"].some((key) => params.get(key));
  return [
    table(["Workflow", "Status", "Submitted", "Duration", "Events"], rows,
      "No workflow matches."),
    h("p", { class: "hint" }, `${data.workflows.length} shown, newest first` +
      (filtered ? `; the filters look at the newest ${data.scan_limit} workflows.` : ".")),
  ];
}

function drawGraph(graph) {
  const pad = 12;
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const edges = graph.edges.map((e) => {
    const a = byId.get(e.from), b = byId.get(e.to);
    const x1 = a.x + a.w, y1 = a.y + a.h / 2, x2 = b.x, y2 = b.y + b.h / 2;
    const mid = (x1 + x2) / 2;
    return svg("path", { class: `edge ${e.kind}`,
      d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}` });
  });
  const nodes = graph.nodes.map((n) => {
    if (n.kind === "barrier") {
      return svg("circle", { class: `barrier ${n.state}`, cx: n.x + n.w / 2, cy: n.y + n.h / 2,
        r: n.w / 2, "data-barrier": n.id }, svg("title", {}, `barrier ${n.id}: ${n.state}`));
    }
    const label = n.actor.length > 18 ? `${n.actor.slice(0, 17)}…` : n.actor;
    return svg("g", { class: `node state-${n.state} ${n.kind}`, "data-node": n.id,
      "data-state": n.state, transform: `translate(${n.x},${n.y})`, tabindex: 0 },
    svg("title", {}, `#${n.id} ${n.actor}: ${n.state}, attempt ${n.attempts}`),
    svg("rect", { width: n.w, height: n.h, rx: 6 }),
    svg("rect", { class: "stripe", width: 5, height: n.h, rx: 2 }),
    svg("text", { x: 12, y: 16, class: "actor" }, label),
    svg("text", { x: 12, y: 30, class: "sub" },
      `#${n.id} · ${n.state}${n.attempts > 1 ? ` · attempt ${n.attempts}` : ""}`));
  });
  const drawing = svg("svg", { class: "dag", width: graph.width + 2 * pad,
    height: graph.height + 2 * pad, viewBox: `${-pad} ${-pad} ${graph.width + 2 * pad} ${graph.height + 2 * pad}` },
  edges, nodes);
  const legend = h("p", { class: "legend" }, graph.states.map((s) => badge(s)),
    h("span", { class: "hint" }, "● a barrier released, ○ one still waiting for its tasks"));
  return h("section", { class: "card" }, h("h2", {}, "DAG"), legend,
    h("div", { class: "scroll" }, drawing),
    graph.truncated ? h("p", { class: "hint" }, "Only the first nodes are drawn.") : null);
}

function taskRows(data) {
  const states = new Map(data.graph.nodes.map((n) => [n.id, n.state]));
  return data.tasks.map((t) => {
    const key = `${data.workflow_id}:${t.node}`;
    const details = h("details", { open: openDetails.has(key),
      ontoggle: (event) => (event.target.open ? openDetails.add(key) : openDetails.delete(key)) },
    h("summary", {}, "arguments, result, error"),
    h("h4", {}, "Arguments"), json(t.arguments),
    t.result !== null ? [h("h4", {}, "Result"), json(t.result)] : null,
    t.error ? [h("h4", {}, "Error"), h("pre", { class: "value error" },
      `${t.error.type}: ${t.error.message}\n\n${t.error.traceback || ""}`)] : null);
    const took = t.started_ms && t.ended_ms ? duration(t.ended_ms - t.started_ms) : "";
    return h("tr", { "data-task": t.node },
      h("td", { class: "num" }, t.node), h("td", {}, t.actor), h("td", {}, t.queue),
      h("td", {}, badge(states.get(t.node))), h("td", { class: "num" }, t.attempts),
      h("td", { class: "num" }, took),
      h("td", { class: "wide" }, t.error ? h("div", { class: "error" },
        `${t.error.type}: ${t.error.message}`) : null, details));
  });
}

async function drawWorkflow(params, id) {
  const data = await api(`/api/workflows/${encodeURIComponent(id)}`);
  const running = data.status === "running";
  settled = running ? null : location.hash;
  const counts = Object.entries(data.counts).filter(([, n]) => n)
    .map(([k, n]) => `${n} ${k}`).join(", ");
  const facts = [
    ["Submitted", when(data.submitted_ms)],
    ["Ended", data.ended_ms ? `${when(data.ended_ms)} (${duration(data.ended_ms - data.submitted_ms)})` : "—"],
    ["Tasks", counts],
    ["Events", data.events_total],
  ];
  const link = (wf) => h("a", { href: `#/workflows/${encodeURIComponent(wf)}`, class: "mono" }, wf);
  if (data.parent) {
    facts.push(["Parent", h("span", { "data-parent": data.parent.workflow_id }, link(data.parent.workflow_id),
      ` (node ${data.parent.node}, attempt ${data.parent.attempt}${data.parent.detached ? ", detached" : ""})`)]);
  }
  if (data.children.length) {
    facts.push(["Children", h("span", {}, data.children.map((c, i) => h("span", { "data-child": c.workflow_id },
      i ? ", " : "", link(c.workflow_id), ` (node ${c.node}${c.detached ? ", detached" : ""})`)))]);
  }
  if (data.error) facts.push(["Error", `${data.error.type}: ${data.error.message}`]);
  if (data.reason) facts.push(["Reason", data.reason]);
  const events = data.events.map((e) => {
    const { seq, time_ms, type, node, ...rest } = e;
    return h("tr", { class: `event ${type}` }, h("td", { class: "num" }, seq),
      h("td", {}, when(time_ms)), h("td", { class: "num" }, `+${duration(time_ms - data.submitted_ms)}`),
      h("td", {}, type), h("td", { class: "num" }, node ?? ""),
      h("td", { class: "mono small" }, Object.keys(rest).length ? JSON.stringify(rest) : ""));
  });
  return [
    h("div", { class: "title" }, h("h1", { class: "mono" }, data.workflow_id),
      h("span", { id: "workflow-status" }, badge(data.status)),
      running ? action("Cancel", `Cancel workflow ${data.workflow_id}? Its running tasks ` +
        "are told, and nothing more is enqueued.", `/api/workflows/${encodeURIComponent(id)}/cancel`, {},
      () => `Cancelled ${data.workflow_id}.`) : null,
      data.status === "failed" ? action("Resume", `Resume workflow ${data.workflow_id}? Its ` +
        "failed tasks run again; every result is kept.", `/api/workflows/${encodeURIComponent(id)}/resume`, {},
      (r) => `Resumed ${data.workflow_id}: nodes ${r.resumed.join(", ")} run again.`) : null),
    h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    drawGraph(data.graph),
    h("section", { class: "card" }, h("h2", {}, "Tasks"),
      table(["#", "Actor", "Queue", "State", "Attempts", "Took", "Error and details"],
        taskRows(data), "No task.")),
    h("section", { class: "card" }, h("h2", {}, "Events"),
      data.events.length < data.events_total
        ? h("p", { class: "hint" }, `The newest ${data.events.length} of ${data.events_total}.`) : null,
      table(["Seq", "Time", "After", "Type", "Node", "Fields"], events, "No event.")),
  ];
}

async function drawDeadLetters() {
  const data = await api("/api/dead-letters?limit=200");
  const rows = data.dead_letters.map((d) => h("tr", { "data-dead-letter": d.id },
    h("td", {}, h("a", { href: `#/dead-letters/${d.id}`, class: "mono" }, d.id)),
    h("td", {}, d.queue_name), h("td", {}, d.reason), h("td", {}, when(d.first_seen_ms)),
    h("td", {}, when(d.last_seen_ms)), h("td", { class: "num" }, d.size),
    h("td", {}, action("Requeue", `Put dead letter ${d.id} back on queue ${d.queue_name}?`,
      `/api/dead-letters/${d.id}/requeue`, {}, (r) => `Requeued as ${r.message_id}.`))));
  return [
    h("div", { class: "title" }, h("h1", {}, "Dead letters"),
      data.total ? action("Purge", `Delete all ${data.total} dead letters? Their bytes are lost.`,
        "/api/dead-letters/purge", {}, (r) => `Purged ${r.purged} dead letters.`) : null),
    table(["Id", "Queue", "Reason", "First queued", "Dead since", "Bytes", ""], rows,
      "No dead letter: every message was handled."),
    data.total > rows.length ? h("p", { class: "hint" }, `The oldest ${rows.length} of ${data.total}.`) : null,
  ];
}

async function drawDeadLetter(params, id) {
  const d = await api(`/api/dead-letters/${encodeURIComponent(id)}`);
  const facts = [["Queue", d.queue], ["Reason", d.reason], ["Message id", d.msg_id],
    ["First queued", when(d.first_seen_ms)], ["Dead since", when(d.last_seen_ms)], ["Bytes", d.size]];
  return [
    h("div", { class: "title" }, h("h1", { class: "mono" }, `Dead letter ${d.id}`),
      action("Requeue", `Put dead letter ${d.id} back on its queue?`,
        `/api/dead-letters/${d.id}/requeue`, {}, (r) => {
          // No dead letter any more: the redraw that follows shows the list (no hashchange,
          // which would clear this notice).
          history.replaceState(null, "", "#/dead-letters");
          return `Requeued as ${r.message_id}.`;
        })),
    h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    h("section", { class: "card" }, h("h2", {}, "What it says"), json(d.contents)),
    h("section", { class: "card" }, h("h2", {}, "Bytes (hex)"), h("pre", { class: "value" }, d.data_hex)),
  ];
}

async function drawWorkers(params) {
  const data = await api(`/api/workers?all=${params.get("all") === "1" ? 1 : 0}`);
  const rows = data.workers.map((w) => h("tr", { "data-worker": w.consumer },
    h("td", { class: "mono" }, w.consumer), h("td", {}, badge(w.state)),
    h("td", {}, w.queues.join(", ")),
    h("td", {}, h("meter", { min: 0, max: w.concurrency, value: w.in_flight }),
      ` ${w.in_flight}/${w.concurrency}`),
    h("td", { class: "num" }, w.shards), h("td", {}, w.version),
    h("td", {}, duration((w.stopped_ms || data.now_ms) - w.started_ms)),
    h("td", {}, `${duration(data.now_ms - w.last_beat_ms)} ago`)));
  return [table(["Consumer", "State", "Queues", "Busy", "Shards", "Version", "Up", "Last beat"], rows,
      "No worker beat within the last hour.")];
}

async function drawQueues(params) {
  const data = await api(`/api/queues?by_shard=${params.get("by_shard") === "1" ? 1 : 0}`);
  const rows = data.queues.map((q) => h("tr", { "data-queue": q.queue },
    h("td", {}, q.queue), h("td", {}, q.shard === null ? "all" : q.shard),
    h("td", { class: "num" }, q.length), h("td", { class: "num" }, q.waiting), h("td", { class: "num" }, q.in_flight),
    h("td", { class: "num" }, q.oldest_in_flight_ms === null ? "" : duration(q.oldest_in_flight_ms)),
    h("td", { class: "num" }, q.delayed), h("td", { class: "num" }, q.parked),
    h("td", { class: "num" }, q.dead)));
  const paused = [...data.paused.queues.map((n) => ["queue", n]),
    ...data.paused.actors.map((n) => ["actor", n])].map(([kind, name]) =>
    h("tr", { "data-paused": `${kind}:${name}` }, h("td", {}, kind), h("td", {}, name),
      h("td", {}, action("Resume", `Resume ${kind} ${name} for every worker?`, "/api/resume",
        { [kind]: name }, () => `Resumed ${kind} ${name}.`))));
  return [table(["Queue", "Shard", "Length", "Waiting (lag)", "In flight", "Oldest in flight", "Delayed", "Parked", "Dead"],
      rows, "No queue holds anything."),
    h("h2", {}, "Paused"),
    table(["Kind", "Name", ""], paused, "Nothing is paused.")];
}

// -- drawing and refreshing ------------------------------------------------------------

let shown = "";

async function draw() {
  if (drawing || document.getElementById("confirm").open) return;
  drawing = true;
  const { page, id, params } = route();
  const here = location.hash;
  if (here === shown && here === settled) {
    drawing = false;
    return;
  }
  try {
    if (here !== shown) {
      const { title, tools } = pages[page];
      document.getElementById("tools").replaceChildren(
        ...[title && h("h1", {}, title), tools && tools(params)].filter(Boolean));
      document.getElementById("view").replaceChildren(h("p", { class: "empty" }, "Loading…"));
      notice("");
    }
    const parts = await pages[page].draw(params, id);
    if (location.hash !== here) return;  // the user moved on meanwhile
    document.getElementById("view").replaceChildren(...parts.flat(Infinity).filter(Boolean));
    document.getElementById("updated").textContent = `updated ${when(Date.now())}`;
    shown = here;
  } catch (error) {
    document.getElementById("view").replaceChildren(
      h("p", { class: "failure" }, `Could not load this page: ${error.message}`));
    shown = here;
  } finally {
    drawing = false;
    for (const link of document.querySelectorAll("nav a")) {
      const current = page.startsWith(link.dataset.page.replace(/s$/, ""));
      link.classList.toggle("current", current);
    }
  }
}

async function start() {
  config = await api("/api/config");
  document.getElementById("mode").textContent = config.read_only ? "read-only" : "";
  window.addEventListener("hashchange", () => { notice(""); draw(); });
  if (!location.hash) location.hash = "#/workflows";
  await draw();
  setInterval(draw, config.refresh_s * 1000);
}

start().catch((error) => notice(`The dashboard could not start: ${error.message}`, "error"));
