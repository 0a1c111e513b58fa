"""With ``--redact pii`` no output carries personal data that the unredacted run wrote.

A hand-made call full of awkward cases goes through every writer and the QA result; then the real CLI runs a
synthesized call twice (plain and redacted: every format, word times, QA, redacted audio, verbose log) and every
file in the redacted output folder, hidden ones included, and the log are searched for each piece of personal data
the plain run wrote.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from callscribe.model import CallInfo, Speaker, Transcript, Utterance, Word
from callscribe.outputs.writers import WRITERS
from callscribe.qa import run_qa
from callscribe.text.digit_runs import digit_runs
from callscribe.text.pii import redact_transcript
from callscribe.text.pii_transcript import find_transcript_pii

MIN_DIGITS_SEARCHED = 6  # shorter digit strings turn up in times and counts by chance
MIN_GROUP_SEARCHED = 4


def _secrets(t: Transcript) -> set[str]:
    """Every piece of personal data in ``t`` as written, the plain digits of each number and its longer groups
    (a word-level leak shows a group: ``-8042.``)."""
    out: set[str] = set()
    for matches in find_transcript_pii(t).values():
        for m in matches:
            out.add(m.text)
            runs = digit_runs(m.text)
            digits = "".join(r.digits for r in runs)
            if len(digits) >= MIN_DIGITS_SEARCHED:
                out.add(digits)
            groups = [m.text[a:b] for r in runs for a, b in r.offsets]
            out.update(g for g in groups if len(g) >= MIN_GROUP_SEARCHED)
    return out


def _readable(raw: bytes) -> str:
    """The file's text, plus its JSON (or JSON lines) re-dumped without ASCII escapes."""
    text = raw.decode("utf-8", errors="replace")
    parts = [text]
    for chunk in [text, *text.splitlines()]:
        try:
            parts.append(json.dumps(json.loads(chunk), ensure_ascii=False))
        except ValueError:
            continue
    return "\n".join(parts)


def _leaks(secrets: Iterable[str], files: dict[str, str]) -> list[str]:
    return sorted(f"{name}: {s!r}" for name, text in files.items() for s in secrets if s in text)


def _handmade() -> Transcript:
    info = CallInfo(id="c1", path="c1.wav", sha256="0" * 64, duration=60.0, sample_rate=8000, channels=2)
    u = Utterance
    words = (Word("一三八，", 3.5, 4.0, 0.9), Word("零零一二，", 4.1, 5.0, 0.8))
    return Transcript(
        call=info,
        engine="test",
        language="zh",
        utterances=(
            u(1.0, 3.0, 0, "请提供手机号。", speaker="S0", role="agent"),
            u(3.5, 5.0, 1, "一三八，零零一二，", speaker="S1", role="customer", words=words),
            u(5.2, 5.6, 0, "嗯", speaker="S0", role="agent"),
            u(6.5, 7.5, 1, "九八七六。", speaker="S1", role="customer"),
            u(8.0, 10.0, 1, "my other number is 415 555", speaker="S1", role="customer", language="en"),
            u(10.4, 11.0, 1, "0132", speaker="S1", role="customer", language="en"),
            u(12.0, 14.0, 0, "请说一下身份证号。", speaker="S0", role="agent"),
            u(14.5, 17.0, 1, "身份证 110105 19491231 002X", speaker="S1", role="customer"),
            u(17.5, 21.0, 1, "再说一遍：幺幺零幺零五幺九四九幺二三幺零零二叉", speaker="S1", role="customer"),
            u(22.0, 25.0, 1, "卡号 6222 0212 3456 7894，邮箱 zhang.san@qq.com", speaker="S1", role="customer"),
        ),
        speakers=(
            Speaker("S0", 0, "agent", 0.9, ('agent: "请提供手机号" at 1.0s',)),
            Speaker("S1", 1, "customer", 0.8, ('customer: "卡号 6222 0212 3456 7894" at 22.0s',)),
        ),
    )


def _render_all(t: Transcript) -> dict[str, str]:
    files = {name: _readable(w.render(t).encode()) for name, w in WRITERS.items()}
    files["qa.json"] = _readable(json.dumps(run_qa(t).to_dict(), ensure_ascii=False).encode())
    return files


def test_no_writer_and_no_qa_result_carries_what_was_redacted() -> None:
    t = _handmade()
    secrets = _secrets(t)
    # the hard cases are all there: both halves of the split numbers, the grouped and the spoken ID, card, e-mail
    for piece in ("一三八，零零一二", "九八七六", "415 555", "0132", "110105 19491231 002X", "6222 0212 3456 7894"):
        assert any(piece in s for s in secrets), piece
    assert "幺幺零幺零五幺九四九幺二三幺零零二叉" in secrets and "zhang.san@qq.com" in secrets
    plain = _render_all(t)
    as_written = {m.text for ms in find_transcript_pii(t).values() for m in ms}
    assert all(any(s in text for text in plain.values()) for s in as_written)
    red, spans = redact_transcript(t)
    assert {s.kind for s in spans} == {"PHONE", "ID", "CARD", "EMAIL"}
    assert _leaks(secrets, _render_all(red)) == []
    assert _leaks(secrets, {"speakers": json.dumps([s.evidence for s in red.speakers], ensure_ascii=False)}) == []


# --- the CLI, end to end ------------------------------------------------------------------------------------


def _call_with_numbers(path: Path) -> None:
    """Stereo call: the customer reads two phone numbers, the second with a long pause in it."""
    from synth import AGENT_VOICE_EN, Turn, build_dialogue, to_stereo, write_wav

    agent, customer = AGENT_VOICE_EN, "en+m3"
    turns = [
        Turn("agent", "Thank you for calling. What number can we reach you on?", agent),
        Turn("customer", "You can reach me at 2 1 3, 4 6 7, 8 0 4 2.", customer, rate=150),
        Turn("agent", "Thank you. And a second number?", agent),
        Turn("customer", "Yes, 2 1 3,", customer, rate=150),
        Turn("customer", "4 6 7, 8 0 9 3.", customer, rate=150, gap=1.5),
        Turn("agent", "Thank you, goodbye.", agent),
    ]
    d = build_dialogue(turns)
    write_wav(path, to_stereo(d, "agent", "customer"), d.sample_rate)


def _transcribe(audio: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "callscribe", "transcribe", str(audio), "-o", str(out), "-f", "all", "--qa"]
    args += ["--language", "en", "--timestamps", "word", "-v", *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_cli_redacted_folder_holds_nothing_the_plain_run_wrote(tmp_path: Path) -> None:
    audio = tmp_path / "call.wav"
    _call_with_numbers(audio)
    plain = _transcribe(audio, tmp_path / "plain")
    assert plain.returncode == 0, plain.stderr
    t = Transcript.from_json((tmp_path / "plain" / "call.json").read_text(encoding="utf-8"))
    secrets = _secrets(t)
    if not secrets:  # what an engine hears in espeak digits is not ours to assert; the writer tests above are
        pytest.skip("the plain run heard no number in the synthetic call: nothing to check redaction against")

    red = _transcribe(audio, tmp_path / "red", "--redact", "pii", "--redact-audio")
    assert red.returncode == 0, red.stderr
    written = {p.name: _readable(p.read_bytes()) for p in (tmp_path / "red").rglob("*") if p.is_file()}
    expected = {"call.json", "call.txt", "call.srt", "call.vtt", "call.tsv", "call.rttm", "call.qa.json"}
    assert expected | {"call.redacted.wav"} <= set(written)
    written["stderr"], written["stdout"] = red.stderr, red.stdout
    assert _leaks(secrets, written) == []
    redacted = Transcript.from_json((tmp_path / "red" / "call.json").read_text(encoding="utf-8"))
    assert redacted.redactions
    # the same call, the same words elsewhere: only the numbers changed
    assert len(redacted.utterances) == len(t.utterances)
