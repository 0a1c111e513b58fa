/* The review desk's shared helpers: messages, CSRF-protected JSON writes, a toast. No dependencies. */
"use strict";
(function () {
  const textEl = document.getElementById("desk-text");
  const T = textEl ? JSON.parse(textEl.textContent) : {};
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');

  function t(key, values) {
    let s = T[key] || key;
    if (values) for (const k of Object.keys(values)) s = s.split("{" + k + "}").join(String(values[k]));
    return s;
  }

  async function post(url, body) {
    const headers = { "Content-Type": "application/json" };
    if (csrfMeta && csrfMeta.content) headers["X-CSRF-Token"] = csrfMeta.content;
    const r = await fetch(url, { method: "POST", headers, body: JSON.stringify(body), credentials: "same-origin" });
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (!r.ok) {
      const msg = data && data.error ? data.error.message : r.status + " " + r.statusText;
      throw new Error(msg);
    }
    return data;
  }

  let toastTimer = null;
  function toast(message, kind, action) {
    const el = document.getElementById("toast");
    if (!el) return;
    el.textContent = message;
    el.className = "toast show " + (kind || "");
    if (action) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "link";
      b.textContent = action.label;
      b.addEventListener("click", () => { el.className = "toast"; action.run(); });
      el.append(" ", b);
    }
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.className = "toast"; }, action ? 9000 : 3500);
  }

  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(r).padStart(2, "0");
  }

  function localTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString();
  }

  window.Desk = { t, post, toast, clock, localTime };
})();
