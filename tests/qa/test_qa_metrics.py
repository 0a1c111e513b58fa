"""Call metrics against values worked out by hand from the fixture timings (see the comments)."""

from __future__ import annotations

import dataclasses

import pytest
from helpers_qa import load

from callscribe.model import Utterance
from callscribe.qa.metrics import Gap, Interruption, compute_metrics


@pytest.fixture(scope="module")
def zh():
    return compute_metrics(load("zh_metrics"))


def test_duration_talk_and_silence(zh) -> None:
    assert zh.duration == 60.0
    # speech union: [1,4] [4.5,12] [18,35] [36,40] [52,53] [53.5,56] = 3 + 7.5 + 17 + 4 + 1 + 2.5
    assert zh.talk_time == pytest.approx(35.0)
    assert zh.non_talk_time == pytest.approx(25.0)
    assert zh.leading_silence == pytest.approx(1.0)
    assert zh.trailing_silence == pytest.approx(4.0)


def test_gaps_over_threshold_with_positions(zh) -> None:
    assert zh.gap_threshold_s == 5.0
    assert zh.gaps == (Gap(12.0, 18.0, 6.0, 2, 4), Gap(40.0, 52.0, 12.0, 7, 8))
    assert zh.longest_gap == pytest.approx(12.0)
    wider = compute_metrics(load("zh_metrics"), gap_threshold_s=10.0)
    assert [g.duration for g in wider.gaps] == [12.0]


def test_overlaps(zh) -> None:
    # agent 8.6 vs customer ..9.0; backchannel 10-10.5; 22-24 talk-over; 29.5-30 customer cuts in
    assert [(o.start, o.end) for o in zh.overlaps] == [(8.6, 9.0), (10.0, 10.5), (22.0, 24.0), (29.5, 30.0)]
    assert zh.overlap_count == 4
    assert zh.overlap_time == pytest.approx(3.4)
    assert zh.overlaps[0].parties == ("agent", "customer")


def test_interruptions_who_cut_in_on_whom(zh) -> None:
    # 8.6: agent starts with 0.4 s of the customer left and talks on after -> interruption.
    # 22.0: agent starts with 2.0 s of the customer left (> 1 s) -> talk-over, not an interruption.
    # 29.5: customer starts with 0.5 s of the agent left -> interruption.  10.0: "嗯" inside the agent -> backchannel.
    assert zh.interruptions == (
        Interruption(8.6, "agent", "customer", 2, 1, 0.4),
        Interruption(29.5, "customer", "agent", 6, 5, 0.5),
    )
    assert zh.interruption_count == 2
    assert zh.interruption_time == pytest.approx(0.9)
    assert zh.interruptions_by == {"agent": 1, "customer": 1}


def test_talk_share_turns_and_rate(zh) -> None:
    agent, customer = zh.parties["agent"], zh.parties["customer"]
    # agent 3 + 3.4 + 8 + 4 + 2.5 = 20.9 s; customer 4.5 + 0.5 + 6 + 5.5 + 1 = 17.5 s
    assert agent.talk_time == pytest.approx(20.9)
    assert customer.talk_time == pytest.approx(17.5)
    assert agent.talk_share == pytest.approx(0.5443)
    assert customer.talk_share == pytest.approx(0.4557)
    assert (agent.turns, customer.turns, zh.turns) == (5, 4, 9)
    assert (agent.utterances, customer.utterances) == (5, 5)
    assert (agent.backchannels, customer.backchannels) == (0, 1)
    # Han characters: agent 14 + 10 + 12 + 11 + 8 = 55; customer 10 + 1 + 7 + 5 + 3 = 26
    assert (agent.cjk_chars, customer.cjk_chars) == (55, 26)
    assert agent.chars_per_minute == pytest.approx(157.9)  # 55 / (20.9 / 60)
    assert customer.chars_per_minute == pytest.approx(89.1)  # 26 / (17.5 / 60)
    assert agent.words == 0


def test_response_latency(zh) -> None:
    # customer turns end 9.0, 24.0, 35.0, 53.0; agent answers at 8.6 (early -> 0), 22.0 (0), 36.0, 53.5
    assert zh.response_latencies == (0.0, 0.0, 1.0, 0.5)
    assert zh.response_latency_mean == pytest.approx(0.375)
    assert zh.response_latency_max == pytest.approx(1.0)


def test_english_words_per_minute_without_roles() -> None:
    m = compute_metrics(load("en_metrics"))
    assert m.duration == 10.0  # the call has no duration: the last utterance end
    assert set(m.parties) == {"S1", "S2"}
    assert m.parties["S1"].words == 8 and m.parties["S1"].words_per_minute == pytest.approx(80.0)
    assert m.parties["S2"].words == 6 and m.parties["S2"].words_per_minute == pytest.approx(120.0)
    assert m.response_latencies == () and m.response_latency_mean is None
    assert m.gaps == () and m.longest_gap == pytest.approx(1.0)


def test_empty_call() -> None:
    t = load("en_metrics")
    m = compute_metrics(dataclasses.replace(t, utterances=()))
    assert (m.duration, m.talk_time, m.turns, m.overlap_count, m.parties) == (0.0, 0.0, 0, 0, {})


def test_metrics_follow_the_data_not_the_order() -> None:
    t = load("zh_metrics")
    shuffled = dataclasses.replace(t, utterances=tuple(reversed(t.utterances)))
    a, b = compute_metrics(t), compute_metrics(shuffled)
    assert (a.talk_time, a.overlap_time, a.turns) == (b.talk_time, b.overlap_time, b.turns)
    assert a.response_latencies == b.response_latencies
    extra = Utterance(start=56.5, end=59.0, channel=1, text="再见", role="customer")
    assert compute_metrics(dataclasses.replace(t, utterances=(*t.utterances, extra))).parties["customer"].turns == 5
