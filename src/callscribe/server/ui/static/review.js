/* The call page's writes: verdicts per rule hit, score override, "needs review" resolved, corrections in place and
   "add to glossary". Every write goes through Desk.post (JSON + the session's CSRF token). */
"use strict";
(function () {
  const D = window.Desk;
  const data = JSON.parse(document.getElementById("call-data").textContent);
  const api = "/ui/api/calls/" + data.id;

  // -- verdicts -------------------------------------------------------------------------------------------------------
  async function sendVerdict(box, verdict) {
    const hit = box.dataset.hit === "" ? null : parseInt(box.dataset.hit, 10);
    const comment = box.querySelector(".v-comment").value;
    try {
      const r = await D.post(api + "/verdicts", { rule: box.dataset.rule, hit, verdict, comment });
      box.querySelectorAll("button[data-verdict]").forEach((b) => b.classList.toggle("on", b.dataset.verdict === verdict));
      box.dataset.current = verdict;
      box.querySelector(".v-by").textContent = r.verdict.reviewer + " · " + r.at_local;
      D.toast(D.t("saved"), "ok");
    } catch (err) { D.toast(err.message, "bad"); }
  }
  document.querySelectorAll(".verdict").forEach((box) => {
    const on = box.querySelector("button.on");
    if (on) box.dataset.current = on.dataset.verdict;
    box.querySelectorAll("button[data-verdict]").forEach((b) => b.addEventListener("click", () => sendVerdict(box, b.dataset.verdict)));
    box.querySelector(".v-comment").addEventListener("change", () => { if (box.dataset.current) sendVerdict(box, box.dataset.current); });
  });

  // -- score override and review resolution ------------------------------------------------------------------------------
  const override = document.getElementById("override");
  if (override) override.addEventListener("submit", async (e) => {
    e.preventDefault();
    const score = parseFloat(override.elements.score.value);
    if (isNaN(score)) { D.toast(D.t("need_number"), "bad"); return; }
    try {
      const r = await D.post(api + "/score", { score, comment: override.elements.comment.value });
      document.getElementById("shown-score").textContent = String(Math.round(score * 10) / 10);
      document.getElementById("override-by").textContent = r.verdict.reviewer + " · " + r.at_local;
      D.toast(D.t("saved"), "ok");
    } catch (err) { D.toast(err.message, "bad"); }
  });
  const resolve = document.getElementById("resolve");
  if (resolve) resolve.addEventListener("click", async () => {
    const resolved = resolve.dataset.resolved !== "true";
    try {
      const r = await D.post(api + "/review", { resolved, comment: document.getElementById("review-comment").value });
      resolve.dataset.resolved = String(resolved);
      resolve.textContent = D.t(resolved ? "reopen" : "resolve");
      document.getElementById("review-box").classList.toggle("resolved", resolved);
      const chip = document.getElementById("review-chip");
      if (chip) chip.textContent = D.t(resolved ? "resolved" : "needs_review");
      document.getElementById("review-by").textContent = r.verdict.reviewer + " · " + r.at_local;
      D.toast(D.t("saved"), "ok");
    } catch (err) { D.toast(err.message, "bad"); }
  });

  // -- corrections -------------------------------------------------------------------------------------------------------
  const texts = data.texts;
  function startEdit(turn) {
    if (turn.classList.contains("editing")) return;
    const i = +turn.dataset.i;
    const box = turn.querySelector(".text");
    const area = document.createElement("textarea");
    area.value = texts[i];
    area.rows = Math.max(2, Math.ceil(area.value.length / 40));
    const save = document.createElement("button"); save.type = "button"; save.textContent = D.t("save"); save.className = "save";
    const cancel = document.createElement("button"); cancel.type = "button"; cancel.textContent = D.t("cancel"); cancel.className = "link";
    const old = box.innerHTML;
    box.replaceChildren(area, save, cancel);
    turn.classList.add("editing");
    area.focus();
    const done = () => turn.classList.remove("editing");
    const restore = () => { box.innerHTML = old; setWords(i, null); done(); };  // word spans are made again
    cancel.addEventListener("click", restore);
    area.addEventListener("keydown", (e) => {
      if (e.key === "Escape") restore();
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) save.click();
    });
    save.addEventListener("click", async () => {
      try {
        const r = await D.post(api + "/corrections", { utterance: i, text: area.value });
        texts[i] = r.turn.text;
        box.textContent = r.turn.text;
        box.dataset.edited = "1";
        setWords(i, []);  // its word times timed the old words
        done();
        turn.querySelector(".edited").textContent = D.t("edited_by", { by: r.correction.author, at: r.at_local });
        addHistory(r);
        if (r.proposal) D.toast(D.t("saved"), "ok", { label: D.t("add_glossary"), run: () => openGlossary(r.proposal) });
        else D.toast(D.t("saved"), "ok");
      } catch (err) { D.toast(err.message, "bad"); }
    });
  }
  function setWords(i, words) {
    const u = window.DeskCall && window.DeskCall.turns.find((x) => x.i === i);
    if (u) u.words = words;
  }
  function addHistory(r) {
    const list = document.getElementById("history");
    const empty = list.querySelector(".empty");
    if (empty) empty.remove();
    const li = document.createElement("li");
    const who = document.createElement("span"); who.className = "muted"; who.textContent = r.at_local + " · " + r.correction.author;
    const a = document.createElement("a"); a.className = "seek"; a.href = "#u" + r.correction.utterance;
    a.dataset.utterance = r.correction.utterance; a.textContent = "#" + r.correction.utterance;
    const del = document.createElement("del"); del.textContent = r.correction.before;
    const ins = document.createElement("ins"); ins.textContent = r.correction.after;
    li.append(who, " ", a, " ", del, " → ", ins);
    list.prepend(li);
  }
  document.querySelectorAll("#transcript .turn .edit").forEach((b) => b.addEventListener("click", (e) => {
    e.stopPropagation();
    startEdit(b.closest(".turn"));
  }));

  // -- glossary ----------------------------------------------------------------------------------------------------------
  const dialog = document.getElementById("glossary-dialog");
  const form = document.getElementById("glossary-form");
  function openGlossary(p) {
    form.elements.wrong.value = p.wrong; form.elements.right.value = p.right;
    document.getElementById("glossary-error").textContent = "";
    dialog.showModal();
  }
  document.getElementById("glossary-cancel").addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const r = await D.post(api + "/glossary", { wrong: form.elements.wrong.value, right: form.elements.right.value });
      dialog.close();
      D.toast(D.t(r.added ? "glossary_added" : "glossary_known", { entry: r.entry }), "ok");
    } catch (err) { document.getElementById("glossary-error").textContent = err.message; }
  });
  window.DeskReview = { startEdit, openGlossary };
})();
