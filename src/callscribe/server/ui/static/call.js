/* The call page: waveform player with channel lanes and markers, transcript follow-along, keyboard, QA verdicts,
   score override, review resolution and in-place corrections (with "add to glossary"). */
"use strict";
(function () {
  const D = window.Desk;
  const data = JSON.parse(document.getElementById("call-data").textContent);
  const api = "/ui/api/calls/" + data.id;
  const duration = data.duration || 0;
  const turnEls = Array.from(document.querySelectorAll("#transcript .turn"));
  const turns = turnEls.map((el) => ({
    el, i: +el.dataset.i, start: +el.dataset.start, end: +el.dataset.end,
    words: null,  // spans made when the turn first plays (a long call's page stays light)
  }));
  function wordsOf(u, k) {
    if (u.words) return u.words;
    const times = (data.words[k] || []);
    u.words = [];
    if (!times.length || u.el.classList.contains("editing") || u.el.querySelector(".text").dataset.edited) return u.words;
    const box = u.el.querySelector(".text");
    box.replaceChildren(...times.map(([text, s, e, low]) => {
      const w = document.createElement("span");
      w.className = low ? "w lw" : "w";
      w.textContent = text;
      u.words.push({ el: w, s, e });
      return w;
    }));
    return u.words;
  }
  const ROLE_COLOURS = { agent: ["#93c5fd", "#2563eb"], customer: ["#fca5a5", "#dc2626"] };
  const MARKER_COLOURS = {
    "hit-fail": "rgba(220,38,38,0.14)", "hit-pass": "rgba(22,163,74,0.12)", redaction: "rgba(17,24,39,0.45)",
    uncovered: "rgba(234,88,12,0.25)", lowconf: "rgba(234,179,8,0.22)",
  };

  // -- audio and waveform ------------------------------------------------------------------------------------------
  const media = document.createElement("audio");
  media.id = "audio";
  media.preload = "metadata";
  media.hidden = true;
  document.getElementById("player").append(media);
  let ws = null;

  function seek(t) {
    const x = Math.max(0, Math.min(t, duration || t));
    if (ws) ws.setTime(x); else media.currentTime = x;
    follow(x, true);
  }
  function now() { return ws ? ws.getCurrentTime() : media.currentTime; }
  // The recording is attached once the page has loaded: the waveform comes from the peaks, and an audio element
  // with a source holds back the page's load event until its first data arrives.
  function attachAudio() { if (data.has_audio && !media.getAttribute("src")) media.src = data.audio; }
  if (document.readyState === "complete") attachAudio(); else window.addEventListener("load", attachAudio, { once: true });
  function playPause() {
    if (!data.has_audio) return;
    attachAudio();
    if (ws) ws.playPause(); else if (media.paused) media.play(); else media.pause();
  }

  function markerClass(m) { return m.kind === "hit" ? (m.passed ? "hit-pass" : "hit-fail") : m.kind; }

  function laneColours(channel) {
    const lane = data.lanes.find((l) => l.channel === channel);
    return ROLE_COLOURS[lane ? lane.key : ""] || ["#cbd5e1", "#475569"];
  }

  async function startPlayer() {
    if (!data.has_audio || !window.WaveSurfer) return;
    let peaks = null;
    try {
      const r = await fetch(data.peaks, { credentials: "same-origin" });
      if (r.ok) peaks = await r.json();
    } catch (e) { peaks = null; }
    const channels = peaks ? peaks.data.map((ch) => ch.map((v) => v / peaks.scale)) : undefined;
    if (!channels) attachAudio();  // no peaks: wavesurfer decodes the recording itself
    const regions = WaveSurfer.Regions.create();
    const n = channels ? channels.length : 1;
    const height = n > 1 ? 56 : 90;
    const opts = {
      container: "#wave", media, url: channels ? undefined : data.audio, height, normalize: true, interact: true, dragToSeek: true, cursorColor: "#111827",
      barWidth: 0, peaks: channels, duration: duration || undefined, plugins: [regions, WaveSurfer.Timeline.create({ height: 18, style: { fontSize: "11px", color: "#4b5563" } })],
    };
    if (n > 1) {
      opts.splitChannels = channels.map((_, c) => ({ waveColor: laneColours(c)[0], progressColor: laneColours(c)[1], height }));
    } else {
      opts.waveColor = "#94a3b8"; opts.progressColor = "#334155";
    }
    ws = WaveSurfer.create(opts);
    ws.on("ready", () => {
      for (const m of data.markers) {
        if (m.end <= m.start) continue;
        regions.addRegion({ start: m.start, end: m.end, color: MARKER_COLOURS[markerClass(m)], drag: false, resize: false });
      }
      document.body.dataset.waveReady = "1";
      performance.mark("desk-wave-ready");
    });
    ws.on("timeupdate", (t) => follow(t, false));
    ws.on("play", () => setPlaying(true));
    ws.on("pause", () => setPlaying(false));
    ws.on("finish", () => setPlaying(false));
  }
  media.addEventListener("timeupdate", () => { if (!ws) follow(media.currentTime, false); });

  const playBtn = document.getElementById("play");
  function setPlaying(on) { playBtn.textContent = on ? "❚❚" : "▶"; playBtn.setAttribute("aria-label", D.t(on ? "pause" : "play")); }
  playBtn.addEventListener("click", playPause);
  document.getElementById("speed").addEventListener("change", (e) => {
    const rate = parseFloat(e.target.value) || 1;
    if (ws) ws.setPlaybackRate(rate, true); else media.playbackRate = rate;
  });

  // -- lanes: each party's turns and the markers, positioned by time -------------------------------------------------
  function block(track, start, end, cls, title, at) {
    const b = document.createElement("span");
    b.className = "blk " + cls;
    b.style.left = (100 * start / (duration || 1)) + "%";
    b.style.width = Math.max(0.15, 100 * (end - start) / (duration || 1)) + "%";
    b.title = title;
    b.dataset.seek = at.toFixed(3);
    track.append(b);
  }
  document.querySelectorAll("#lanes .lane[data-lane]").forEach((lane) => {
    const key = lane.dataset.lane, track = lane.querySelector(".lane-track");
    if (key === "markers") {
      for (const m of data.markers) block(track, m.start, m.end, markerClass(m), D.t("marker." + markerClass(m)) + (m.rule ? " " + m.rule : "") + " " + D.clock(m.start), m.start);
      return;
    }
    turns.forEach((u, k) => { if (data.turns[k] === key) block(track, u.start, u.end, "turn-blk", D.clock(u.start), u.start); });
  });

  // -- follow along: the playing turn and word -------------------------------------------------------------------------
  let active = [];
  let activeWord = null;
  const clockEl = document.getElementById("clock");
  function follow(t, jumped) {
    clockEl.textContent = D.clock(t) + " / " + D.clock(duration);
    const on = turns.filter((u) => u.start <= t && t < u.end);
    if (!on.length && jumped) { const next = turns.find((u) => u.start >= t); if (next && next.start - t < 0.05) on.push(next); }
    const same = on.length === active.length && on.every((u, k) => u === active[k]);
    if (!same) {
      active.forEach((u) => u.el.classList.remove("playing"));
      on.forEach((u) => u.el.classList.add("playing"));
      active = on;
      if (on.length && !document.querySelector(".turn.editing")) on[0].el.scrollIntoView({ block: "nearest", behavior: jumped ? "auto" : "smooth" });
    }
    let word = null;
    for (const u of on) for (const w of wordsOf(u, turns.indexOf(u))) if (w.s <= t && t < w.e) word = w.el;
    if (word !== activeWord) {
      if (activeWord) activeWord.classList.remove("on");
      if (word) word.classList.add("on");
      activeWord = word;
    }
  }

  function currentIndex() {
    const t = now();
    let k = turns.findIndex((u) => u.start > t + 0.01) - 1;
    if (k < -1) k = turns.length - 1;
    return k;
  }

  // -- clicks and keys ---------------------------------------------------------------------------------------------------
  document.addEventListener("click", (e) => {
    const target = e.target;
    if (target.closest("textarea, input, button, select, .verdict, dialog")) return;
    const s = target.closest("[data-seek]");
    if (s) { e.preventDefault(); seek(parseFloat(s.dataset.seek)); return; }
    const u = target.closest("[data-utterance]");
    if (u) { e.preventDefault(); const el = document.getElementById("u" + u.dataset.utterance); if (el) seek(+el.dataset.start); return; }
    const turn = target.closest(".turn");
    if (turn && !turn.classList.contains("editing")) seek(+turn.dataset.start);
  });
  document.addEventListener("keydown", (e) => {
    if (e.target.closest && e.target.closest("input, textarea, select, [contenteditable], dialog")) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const step = e.shiftKey ? 1 : 5;
    if (e.key === " " || e.code === "Space") { e.preventDefault(); playPause(); }
    else if (e.key === "ArrowLeft") { e.preventDefault(); seek(now() - step); }
    else if (e.key === "ArrowRight") { e.preventDefault(); seek(now() + step); }
    else if (e.key === "j" || e.key === "k") {
      e.preventDefault();
      const k = currentIndex();
      const to = e.key === "j" ? Math.min(turns.length - 1, k + 1) : Math.max(0, (turns[k] && now() - turns[k].start > 1 ? k : k - 1));
      if (turns[to]) seek(turns[to].start);
    }
  });

  window.DeskCall = { seek, now, playPause, turns, follow, wordsOf };
  startPlayer();
  follow(0, false);
})();
