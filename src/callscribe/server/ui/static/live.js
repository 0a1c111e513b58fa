/* The live page: calls in progress (partial and final lines, alerts) and recordings being transcribed, polled. */
"use strict";
(function () {
  const D = window.Desk;
  const box = document.getElementById("live-calls");
  const jobs = document.getElementById("live-jobs");
  function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; }
  function render(d) {
    box.replaceChildren();
    if (!d.calls.length) box.append(el("p", "empty", D.t("no_live")));
    for (const c of d.calls) {
      const card = el("article", "live-call"); card.id = c.id;
      card.append(el("h3", null, c.id + " · " + (c.agent_id || "-") + " · " + (c.queue || "-")));
      card.append(el("p", "muted small", D.localTime(c.started_at)));
      for (const a of c.alerts) card.append(el("p", "alert", "⚠ " + a));
      for (const l of c.lines) {
        const p = el("p", "line role-" + (l.role || "other") + (l.final ? "" : " partial"));
        p.append(el("span", "who", D.t("role_" + (l.role || "other"))), " ", el("span", "text", l.text));
        card.append(p);
      }
      box.append(card);
    }
    jobs.replaceChildren();
    const head = el("tr");
    for (const k of ["job_state", "job_name", "job_agent", "job_queue", "job_created"]) head.append(el("th", null, D.t(k)));
    jobs.append(head);
    if (!d.jobs.length) { const tr = el("tr"); const td = el("td", "empty", D.t("no_jobs")); td.colSpan = 5; tr.append(td); jobs.append(tr); }
    for (const j of d.jobs) {
      const tr = el("tr");
      for (const v of [D.t("state_" + j.state), j.name, j.agent_id || "-", j.queue || "-", D.localTime(j.created_at)]) tr.append(el("td", null, v));
      jobs.append(tr);
    }
  }
  async function poll() {
    try {
      const r = await fetch("/ui/api/live", { credentials: "same-origin" });
      if (r.ok) render(await r.json());
    } catch (e) { /* the next poll tries again */ }
    setTimeout(poll, 2000);
  }
  poll();
})();
