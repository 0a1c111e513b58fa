"""Build folders of realistic call transcripts (Chinese and English) with QA results and known totals.

Each call is planned first (language, agent, greeting, complaint topic, apology, escalation, closing); the totals
the insights must reproduce are counted from the plan, not from the code under test.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from callscribe.model import CallInfo, QAResult, RuleResult, Transcript, Utterance

AGENTS = ("A01", "A02", "A03", "A04", "A05")

LINES = {
    "zh": {
        "greet": "您好，很高兴为您服务，我是客服工号{num}，请问有什么可以帮您？",
        "greet_bad": "喂，什么事？",
        "request": ["我想查一下我的套餐还剩多少流量", "我想改一下收货地址", "帮我开通一下国际漫游"],
        "complaint": {
            "billing": "我这个月话费怎么多扣了五十块，太不合理了",
            "network": "家里信号一直不好，打电话老是掉线，根本没法用",
            "delivery": "快递一个星期了还没收到，到底怎么回事",
            "refund": "退款申请了半个月还没到账，你们什么意思",
            "attitude": "上次那个客服态度很差，直接挂我电话",
        },
        "escalate": "再不解决我就打12315投诉你们",
        "apology": "非常抱歉给您带来不便，我马上帮您处理",
        "answer": "好的，我帮您查询一下，请稍等",
        "done": "已经帮您处理好了，还有什么可以帮您？",
        "thanks": "好的，谢谢",
        "closing": "感谢您的来电，祝您生活愉快，再见",
    },
    "en": {
        "greet": "Thank you for calling, my name is Alex, agent {num}, how can I help you today?",
        "greet_bad": "Yeah, what is it?",
        "request": [
            "I'd like to check how much data I have left on my plan",
            "I want to update my delivery address",
            "Can you turn on international roaming for me",
        ],
        "complaint": {
            "billing": "I was charged twice on my bill this month, this is ridiculous",
            "network": "My signal keeps cutting out every evening, it's unacceptable",
            "delivery": "My package still hasn't arrived, I'm really frustrated",
            "refund": "I sent the item back and still haven't got my refund",
            "attitude": "The last agent was rude and hung up on me",
        },
        "escalate": "If this isn't sorted out I'll report you to the regulator",
        "apology": "I'm very sorry about that, let me sort it out for you right away",
        "answer": "Sure, let me look that up for you",
        "done": "All done. Is there anything else I can help you with?",
        "thanks": "Okay, thank you",
        "closing": "Thank you for calling, have a great day, goodbye",
    },
}
TOPIC_IDS = ("billing", "network", "delivery", "refund", "attitude")


@dataclass
class Expected:
    calls: int = 0
    needs_review: int = 0
    complaints: int = 0
    calls_with_complaints: int = 0
    topics: Counter[str] = field(default_factory=Counter)
    topic_calls: Counter[str] = field(default_factory=Counter)
    rule_passed: Counter[str] = field(default_factory=Counter)
    agent_calls: Counter[str] = field(default_factory=Counter)
    agent_scores: dict[str, list[float]] = field(default_factory=dict)
    scores: list[float] = field(default_factory=list)
    review_calls: set[str] = field(default_factory=set)


def _rule(rule_id: str, desc: str, passed: bool, points: float) -> RuleResult:
    return RuleResult(rule_id, desc, passed, points, points if passed else 0.0)


def make_calls(folder: Path, n: int = 60, seed: int = 7, *, write_qa: bool = True) -> Expected:
    """Write ``n`` transcripts (and QA results) named ``<agent>_<date>_<n>.json``; return the known totals."""
    rng = random.Random(seed)
    exp = Expected()
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        lang = "zh" if k % 2 == 0 else "en"
        agent = AGENTS[k % len(AGENTS)]
        lines = LINES[lang]
        stem = f"{agent}_2024050{1 + k % 7}_{k:03d}"
        greeted = rng.random() < 0.8
        topic = rng.choice(TOPIC_IDS) if rng.random() < 0.55 else None
        apologised = topic is not None and rng.random() < 0.7
        escalated = topic is not None and rng.random() < 0.3
        closed = rng.random() < 0.75
        turns: list[tuple[str, str, float]] = []  # role, text, sentiment
        turns.append(("agent", lines["greet"].format(num=1000 + k) if greeted else lines["greet_bad"], 0.3))
        if topic is None:
            turns.append(("customer", rng.choice(lines["request"]), 0.0))
            turns.append(("agent", lines["answer"], 0.1))
        else:
            turns.append(("customer", lines["complaint"][topic], -0.6))
            if escalated:
                turns.append(("customer", lines["escalate"], -0.7))
            turns.append(("agent", lines["apology"] if apologised else lines["answer"], 0.1))
        turns.append(("agent", lines["done"], 0.2))
        turns.append(("customer", lines["thanks"], 0.5))
        if closed:
            turns.append(("agent", lines["closing"], 0.6))
        utterances, sentiment, t = [], [], 0.5
        for i, (role, text, score) in enumerate(turns):
            length = 1.5 + len(text) * (0.22 if lang == "zh" else 0.06)
            utterances.append(
                Utterance(
                    round(t, 2), round(t + length, 2), 0 if role == "agent" else 1, text, role=role, language=lang
                )
            )
            sentiment.append({"utterance": i, "party": role, "start": round(t, 2), "score": score})
            t += length + 0.6
        info = CallInfo(stem, f"/calls/{stem}.wav", "0" * 64, round(t + 0.5, 2), 8000, 2, "pcm_s16le")
        transcript = Transcript(info, tuple(utterances), "whisper", language=lang)
        (folder / f"{stem}.json").write_text(transcript.to_json(), encoding="utf-8")

        rules = (
            _rule("greeting", "Agent greets and gives a name or number", greeted, 30),
            _rule("apology", "Agent apologises when the customer complains", topic is None or apologised, 40),
            _rule("closing", "Agent closes the call politely", closed, 30),
            _rule("escalation", "Customer threatens to escalate", not escalated, 0),
        )
        score = sum(r.earned for r in rules)
        reasons = ("escalation: customer threatens to complain to an authority",) if escalated else ()
        qa = QAResult(stem, {}, rules, score, 100.0, escalated, reasons, {"utterances": sentiment}, f"{lang}_test")
        if write_qa:
            (folder / f"{stem}.qa.json").write_text(json.dumps(qa.to_dict(), ensure_ascii=False), encoding="utf-8")

        exp.calls += 1
        exp.agent_calls[agent] += 1
        exp.agent_scores.setdefault(agent, []).append(score)
        exp.scores.append(score)
        for r in rules:
            exp.rule_passed[r.id] += int(r.passed)
        if escalated:
            exp.needs_review += 1
            exp.review_calls.add(stem)
        if topic is not None:
            exp.calls_with_complaints += 1
            exp.complaints += 1 + int(escalated)
            exp.topics[topic] += 1
            exp.topic_calls[topic] += 1
            if escalated:
                exp.topics["other"] += 1
                exp.topic_calls["other"] += 1
    return exp
