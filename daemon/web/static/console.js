// Ferry console: posts the pages' action forms to the JSON API, and draws the data-age
// charts. No logic the server does not check: the server refuses what is not allowed,
// and this script only shows its answer.
"use strict";

(function () {
  function csrf() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function show(form, text, kind) {
    const out = form.querySelector("[data-result]");
    if (!out) return;
    out.hidden = false;
    out.className = "message " + (kind || "");
    out.textContent = text; // text, never markup
    out.focus && out.setAttribute("tabindex", "-1");
    out.focus && out.focus();
  }

  function body(form) {
    const data = { action: form.dataset.action };
    for (const [key, value] of new FormData(form)) {
      if (value === "") continue;
      data[key] = key === "keep" ? true : value;
    }
    return data;
  }

  async function submit(form) {
    const svc = form.dataset.service;
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    show(form, "Sending…", "");
    try {
      const resp = await fetch("/api/services/" + encodeURIComponent(svc) + "/actions", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
        body: JSON.stringify(body(form)),
      });
      let answer = {};
      try { answer = await resp.json(); } catch (e) { answer = { error: resp.statusText }; }
      if (resp.status === 202 && answer.action_id) {
        window.location.assign("/actions/" + encodeURIComponent(answer.action_id));
        return;
      }
      if (resp.status === 401) {
        show(form, "Your session ended: log in again.", "bad");
      } else if (resp.status === 403) {
        show(form, "Not allowed: " + (answer.error || "your role may not do this"), "bad");
      } else {
        show(form, "Refused (" + resp.status + "): " + (answer.error || resp.statusText), "bad");
      }
    } catch (e) {
      show(form, "The daemon did not answer: " + e, "bad");
    } finally {
      if (button) button.disabled = false;
    }
  }

  document.addEventListener("submit", function (event) {
    const form = event.target.closest("form[data-action]");
    if (!form) return;
    event.preventDefault();
    submit(form);
  });

  // Charts of data age: one per sync resource and peer, minutes over the window.
  function chart(host, resource, peer, hours) {
    const box = document.createElement("div");
    box.className = "chart";
    const title = document.createElement("h3");
    title.textContent = resource.rid + (peer.direction === "received" ? " from " : " to ") + peer.peer +
      (peer.late ? " · late" : "");
    box.appendChild(title);
    host.appendChild(box);
    const xs = peer.age_series.map((p) => p[0]);
    const ys = peer.age_series.map((p) => p[1] / 60);
    const limit = xs.map(() => resource.max_delay / 60);
    if (!xs.length || typeof uPlot === "undefined") {
      const none = document.createElement("p");
      none.textContent = "No transfer in the window.";
      box.appendChild(none);
      return;
    }
    const width = Math.max(280, Math.min(host.clientWidth || 600, 1000));
    const now = Date.now() / 1000;
    new uPlot({
      width: width, height: 180,
      scales: { x: { time: true, range: [now - hours * 3600, now] } },
      series: [{}, { label: "data age (min)", stroke: "#0b5cad", width: 2 },
               { label: "sync_max_delay (min)", stroke: "#cf222e", dash: [6, 4] }],
      axes: [{}, { label: "min" }],
    }, [xs, ys, limit], box);
  }

  async function charts() {
    for (const host of document.querySelectorAll("[data-age-chart]")) {
      try {
        const resp = await fetch(host.dataset.ageChart, { credentials: "same-origin" });
        if (!resp.ok) continue;
        const report = await resp.json();
        host.textContent = "";
        for (const resource of report.resources) {
          for (const peer of resource.peers) chart(host, resource, peer, report.hours);
        }
        if (!report.resources.length) host.textContent = "No sync resource.";
      } catch (e) { /* the table above says the same in words */ }
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    charts();
    setInterval(charts, 60000);
  });
})();
