// The streamflow dashboard's toolbox: building DOM (text is always set as text, never
// parsed as HTML), formatting times, calling the API, and asking before an action (and
// for the token, once per browser session). The pages are in app.js.
"use strict";

const TOKEN_KEY = "streamflow-web-token";
let config = { read_only: true, token_required: false, refresh_s: 3, statuses: [] };

// -- small helpers -------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, value);
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined) el.append(child);
  }
  return el;
}

function when(ms) {
  if (!ms) return "";
  const d = new Date(ms);
  const today = new Date().toDateString() === d.toDateString();
  const time = d.toLocaleTimeString([], { hour12: false });
  return today ? time : `${d.toISOString().slice(0, 10)} ${time}`;
}

function duration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  if (s < 172800) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.round((s % 86400) / 3600)} h`;
}

function badge(state) {
  return h("span", { class: `badge state-${state}`, "data-state": state }, state);
}

function json(value) {
  return h("pre", { class: "value" }, JSON.stringify(value, null, 2));
}

function table(head, rows, empty) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("table", {}, h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows));
}

function notice(text, kind) {
  const el = document.getElementById("notice");
  el.textContent = text;
  el.className = kind || "info";
  el.hidden = !text;
}

// -- the API ---------------------------------------------------------------------------

async function api(path, body) {
  const options = { headers: {} };
  if (body !== undefined) {
    options.method = "POST";
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) options.headers.Authorization = `Bearer ${token}`;
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) {
    const error = new Error(data.error || response.statusText);
    error.status = response.status;
    throw error;
  }
  return data;
}

// Ask before acting (and for the token, once per browser session); then act, say how
// it went and draw the page again.
async function act(question, path, body, done) {
  for (let tries = 0; tries < 2; tries++) {
    const needsToken = config.token_required && !sessionStorage.getItem(TOKEN_KEY);
    if (!(await confirmed(question, needsToken))) return;
    try {
      const result = await api(path, body || {});
      const said = done(result); // it may move to another page
      await draw();
      notice(said, "info");
      return;
    } catch (error) {
      if (error.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        question = `That token was refused. ${question}`;
        continue;
      }
      notice(error.message, "error");
      return;
    }
  }
}

function confirmed(question, needsToken) {
  const dialog = document.getElementById("confirm");
  dialog.querySelector(".message").textContent = question;
  const field = dialog.querySelector(".token");
  const input = field.querySelector("input");
  field.hidden = !needsToken;
  input.required = needsToken;
  input.value = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", function closed() {
      dialog.removeEventListener("close", closed);
      const yes = dialog.returnValue === "yes";
      if (yes && needsToken) sessionStorage.setItem(TOKEN_KEY, input.value);
      resolve(yes);
    });
    dialog.returnValue = "";
    dialog.showModal();
    (needsToken ? input : document.getElementById("confirm-yes")).focus();
  });
}

function action(label, question, path, body, done) {
  if (config.read_only) return null;
  return h("button", {
    class: "danger", type: "button", "data-action": label.toLowerCase(),
    onclick: () => act(question, path, body, done),
  }, label);
}

