"""Synthetic calls for the store benchmark, recombined from real transcript text.

The text pool is every reference text of evalset-dev (``manifest.jsonl``) and every turn of the example calls
(``examples/calls/refs.jsonl``), split into clauses at sentence and clause punctuation (unpunctuated English
references into runs of 5-9 words). A call is ~10 utterances alternating agent and customer (one per channel of a
stereo recording), each 1-3 clauses of the call's language; Mandarin calls are the majority. Clauses are drawn
with Zipf weights (the pool shuffled once by the seed), so some words are in a large share of the utterances and
some in very few, as in real traffic. Calls get agents, queues and call times over a few months; their QA result is
the real :func:`callscribe.qa.run_qa` with the default scorecard of the call's language.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from callscribe.model import CallInfo, QAResult, Speaker, Transcript, Utterance
from callscribe.qa import load_scorecard, run_qa
from callscribe.qa.rules import Scorecard
from callscribe.store import CallMeta

ROOT = Path(__file__).resolve().parents[1]
EVALSET = ROOT.parent / "shared" / "evalset-dev"
EXAMPLES = ROOT / "examples" / "calls" / "refs.jsonl"
ZH_SHARE = 0.8
START = datetime(2026, 1, 5, tzinfo=timezone.utc)
DAYS = 120
QUEUES = ("billing", "network", "sales", "support", "complaints", "retention")
AGENTS = 60
CHUNK = 1000
CODE_VERSION = "1"  # bump when make_call changes, so cached calls are made again

_CLAUSE = re.compile(r"[^，。？！、；：,.?!;:]+[，。？！、；：,.?!;:]?")
_TAG = re.compile(r"\[[a-z]+\]\s*")


@dataclass(frozen=True)
class Pool:
    """Clauses by language (``zh``/``en``) with their Zipf weights."""

    clauses: dict[str, tuple[str, ...]]
    weights: dict[str, tuple[float, ...]]

    def size(self) -> int:
        return sum(len(c) for c in self.clauses.values())

    def key(self) -> str:
        """A short hash of the clauses (a cache made from other texts is not reused)."""
        text = json.dumps(self.clauses, ensure_ascii=False, sort_keys=True) + CODE_VERSION
        return hashlib.sha256(text.encode()).hexdigest()[:10]


def _texts(evalset: Path, examples: Path) -> list[tuple[str, str]]:
    """(language, text) of every reference and example turn."""
    out: list[tuple[str, str]] = []
    manifest = evalset / "manifest.jsonl"
    if manifest.exists():
        for line in manifest.read_text(encoding="utf-8").splitlines():
            d = json.loads(line)
            if d.get("text"):
                out.append((d["lang"], _TAG.sub("", d["text"])))
    if examples.exists():
        for line in examples.read_text(encoding="utf-8").splitlines():
            d = json.loads(line)
            out += [(d["lang"], t["text"]) for t in d.get("turns", ()) if t.get("text")]
    return out


def _clauses(lang: str, text: str) -> list[str]:
    pieces = [p.strip() for p in _CLAUSE.findall(text) if p.strip(" ，。？！、；：,.?!;:")]
    out: list[str] = []
    for p in pieces:
        words = p.split()
        if lang == "en" and len(words) > 10:  # unpunctuated corpus labels: runs of 5-9 words
            i = 0
            while i < len(words):
                n = 5 + (len(out) * 3 + i) % 5
                out.append(" ".join(words[i : i + n]).lower().capitalize())
                i += n
        else:
            out.append(p)
    return out


def load_pool(seed: int, evalset: Path = EVALSET, examples: Path = EXAMPLES) -> Pool:
    rng = random.Random(seed)
    by_lang: dict[str, list[str]] = {"zh": [], "en": []}
    for lang, text in _texts(evalset, examples):
        by_lang.setdefault(lang, []).extend(_clauses(lang, text))
    clauses, weights = {}, {}
    for lang, items in by_lang.items():
        uniq = list(dict.fromkeys(items))
        if not uniq:
            raise SystemExit(f"no {lang} reference texts found under {evalset} or {examples}")
        rng.shuffle(uniq)
        clauses[lang] = tuple(uniq)
        weights[lang] = tuple(1.0 / (rank + 1) ** 1.1 for rank in range(len(uniq)))
    return Pool(clauses, weights)


@dataclass(frozen=True)
class SynthCall:
    transcript: Transcript
    qa: QAResult
    meta: CallMeta


def _utterance_text(rng: random.Random, pool: Pool, lang: str) -> str:
    n = rng.choices((1, 2, 3), (0.5, 0.35, 0.15))[0]
    picked: list[str] = []
    while len(picked) < n:
        (c,) = rng.choices(pool.clauses[lang], pool.weights[lang])
        if not picked or c != picked[-1]:
            picked.append(c)
    marks, comma, stop, sep = ("，。？！、；：", "，", "。", "") if lang == "zh" else (",.?!;:", ",", ".", " ")
    ended = [p if p[-1] in marks else p + (comma if i < n - 1 else stop) for i, p in enumerate(picked)]
    return sep.join(ended)


def make_call(i: int, seed: int, pool: Pool, cards: dict[str, Scorecard]) -> SynthCall:
    rng = random.Random(f"{seed}:{i}")
    lang = "zh" if rng.random() < ZH_SHARE else "en"
    n = max(4, round(rng.gauss(10, 2.5)))
    first = rng.choice(("agent", "customer")) if rng.random() < 0.15 else "agent"
    other = "customer" if first == "agent" else "agent"
    utts, t = [], rng.uniform(0.3, 1.5)
    for k in range(n):
        role = first if k % 2 == 0 else other
        text = _utterance_text(rng, pool, lang)
        per_char = 0.22 if lang == "zh" else 0.065
        dur = max(0.6, len(text) * per_char * rng.uniform(0.8, 1.25))
        channel = 0 if role == "agent" else 1
        conf = round(rng.uniform(0.55, 0.98), 3)
        utts.append(Utterance(round(t, 3), round(t + dur, 3), channel, text, f"S{channel}", role, (), conf, lang))
        t += dur + max(0.05, rng.expovariate(1 / 0.8)) + (rng.uniform(8, 14) if rng.random() < 0.01 else 0.0)
    duration = round(t + rng.uniform(0.2, 1.5), 3)
    name = f"call{i:07d}"
    sha = hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()
    info = CallInfo(name, f"/recordings/{name}.wav", sha, duration, 8000, 2, "pcm_mulaw")
    speakers = tuple(
        Speaker(f"S{c}", c, r, 1.0, ("channel_roles",), round(sum(u.duration for u in utts if u.channel == c), 3))
        for c, r in ((0, "agent"), (1, "customer"))
    )
    options = {"language": lang, "channel_roles": ["agent", "customer"], "result_key": "bench"}
    tr = Transcript(info, tuple(utts), "qwen3", lang, options, {}, speakers)
    qa = run_qa(tr, cards[lang])
    when = START + timedelta(seconds=rng.uniform(0, DAYS * 86400))
    meta = CallMeta(
        agent_id=f"A{rng.randrange(AGENTS):03d}",
        call_time=when.replace(microsecond=0),
        queue=rng.choice(QUEUES),
        extra={"campaign": rng.choice(("spring", "winter", "renewal"))} if rng.random() < 0.3 else {},
    )
    return SynthCall(tr, qa, meta)


def scorecards() -> dict[str, Scorecard]:
    """The built-in default scorecards, as the CLI uses them."""
    return {lang: load_scorecard(None, lang) for lang in ("zh", "en")}


def calls(start: int, stop: int, seed: int, pool: Pool) -> Iterator[SynthCall]:
    cards = scorecards()
    for i in range(start, stop):
        yield make_call(i, seed, pool, cards)


def cached_calls(stop: int, seed: int, pool: Pool, cache: Path | None) -> Iterator[SynthCall]:
    """Calls 0..stop-1, made once and kept in ``cache`` (pickles of CHUNK calls, named by the seed and the text
    pool) so that both databases and later runs get the same calls without paying for QA again."""
    if cache is None:
        yield from calls(0, stop, seed, pool)
        return
    cache.mkdir(parents=True, exist_ok=True)
    for first in range(0, stop, CHUNK):
        path = cache / f"calls-{seed}-{pool.key()}-{first // CHUNK:05d}.pickle"
        if path.exists():
            chunk = pickle.loads(path.read_bytes())
        else:
            chunk = list(calls(first, first + CHUNK, seed, pool))
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL))
            os.replace(tmp, path)
        yield from chunk[: stop - first]
