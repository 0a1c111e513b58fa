"""``callscribe serve`` takes every ``transcribe`` option that applies to a service, each also from its
``CALLSCRIBE_*`` variable, and they reach the pipeline (checked over HTTP on a real stereo recording)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_fixtures import EN_ITEM, RunningServer, start_server, stop_server, wait_job

from callscribe.cli import transcribe
from callscribe.server import Settings
from callscribe.server.cli import serve_command

STEREO_ITEM = "audio/en_fasterwhisper_stereo_2spk_channels.wav"  # 5 s, a different speaker on each channel
# transcribe's parameters that are about files, outputs or a batch executor, not about how a call is heard
NOT_FOR_A_SERVICE = {
    "paths", "output", "format_spec", "metadata", "name_pattern", "executor", "ray_address", "gpus_per_engine",
    "cpu_workers", "engine_actors", "verbose",
}  # fmt: skip
RENAMED = {"hotwords_file": "hotwords", "channel_roles_spec": "channel_roles", "redact_spec": "redact",
           "no_normalize": "normalize"}  # fmt: skip
# a value for every setting, as its CALLSCRIBE_* variable spells it, and what the setting then holds
FROM_ENV: dict[str, tuple[str, object]] = {
    "host": ("0.0.0.0", "0.0.0.0"),
    "port": ("8123", 8123),
    "data_dir": ("/srv/cs", Path("/srv/cs")),
    "max_upload": ("5MB", 5_000_000),
    "max_queue": ("9", 9),
    "max_streams": ("3", 3),
    "cors_origins": ("http://a.example", ["http://a.example"]),
    "log_level": ("WARNING", "warning"),
    "db": ("sqlite:///x.db", "sqlite:///x.db"),
    "job_concurrency": ("3", 3),
    "webhook_url": ("http://127.0.0.1:9/h", "http://127.0.0.1:9/h"),
    "webhook_allow": ("http://127.0.0.1:9/", ["http://127.0.0.1:9/"]),
    "webhook_attempts": ("4", 4),
    "webhook_backoff": ("0.5", 0.5),
    "engine": ("whisper", "whisper"),
    "model": ("base", "base"),
    "device": ("cpu", "cpu"),
    "compute_type": ("int8", "int8"),
    "threads": ("2", 2),
    "batch_size": ("4", 4),
    "base_url": ("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1"),
    "language": ("zh", "zh"),
    "hotwords": ("terms.txt", Path("terms.txt")),
    "redact": ("pii", "pii"),
    "qa": ("true", True),
    "scorecard": ("card.yaml", "card.yaml"),
    "zh_script": ("traditional", "traditional"),
    "max_duration": ("600", 600.0),
    "glossary_db": ("sqlite:///g.db", "sqlite:///g.db"),
    "max_clip": ("12.5", 12.5),
    "beam_size": ("2", 2),
    "timestamps": ("word", "word"),
    "aligner": ("Qwen/Qwen3-ForcedAligner-0.6B", "Qwen/Qwen3-ForcedAligner-0.6B"),
    "hub": ("modelscope", "modelscope"),
    "concurrency": ("6", 6),
    "channels": ("mix", "mix"),
    "channel_roles": ("customer,agent", "customer,agent"),
    "speakers": ("2", 2),
    "min_speakers": ("1", 1),
    "max_speakers": ("3", 3),
    "roles_config": ("roles.yaml", "roles.yaml"),
    "redact_audio": ("1", True),
    "denoise": ("true", True),
    "normalize": ("false", False),
}


def test_serve_has_every_transcribe_option_and_a_setting_for_each():
    wanted = {RENAMED.get(n, n) for n in inspect.signature(transcribe).parameters} - NOT_FOR_A_SERVICE
    flags = set(inspect.signature(serve_command).parameters) - {"cors_origin"}
    assert wanted - flags == set()
    assert flags - set(Settings.model_fields) == set()


def test_every_setting_reads_its_environment_variable(monkeypatch):
    assert set(FROM_ENV) == set(Settings.model_fields) - {"api_key", "webhook_secret"}
    for name, (text, _) in FROM_ENV.items():
        monkeypatch.setenv(f"CALLSCRIBE_{name.upper()}", text)
    monkeypatch.setenv("CALLSCRIBE_API_KEY", "k")
    monkeypatch.setenv("CALLSCRIBE_WEBHOOK_SECRET", "s")
    s = Settings()
    assert {name: getattr(s, name) for name in FROM_ENV} == {name: want for name, (_, want) in FROM_ENV.items()}
    assert s.api_key_value() == "k" and s.webhook_secret_value() == "s"


def test_the_transcribe_options_reach_the_pipeline_options():
    o = Settings(
        engine="whisper", max_clip=12, beam_size=2, timestamps="word", hub="modelscope", concurrency=6,
        channels="split", channel_roles="customer, agent", speakers=2, min_speakers=1, max_speakers=3,
        roles_config="roles.yaml", denoise=True, normalize=False, aligner="aligner-dir",
    ).options()  # fmt: skip
    assert (o.max_clip_s, o.beam_size, o.timestamps, o.hub, o.concurrency) == (12, 2, "word", "modelscope", 6)
    assert (o.channels, o.channel_roles, o.speakers, o.min_speakers, o.max_speakers) == (
        "split", ("customer", "agent"), 2, 1, 3)  # fmt: skip
    assert (o.roles_config, o.denoise, o.normalize, o.extra) == ("roles.yaml", True, False, {"aligner": "aligner-dir"})
    audio = Settings(engine="whisper", redact_audio=True).options()  # as transcribe: PII redacted, words timed
    assert (audio.redact_audio, audio.redact, audio.timestamps) == (True, ("pii",), "word")
    for bad in ({"channels": "both"}, {"timestamps": "char"}, {"hub": "ftp"}, {"max_clip": 31}):
        with pytest.raises(ValueError):
            Settings(**bad)


def test_the_glossary_store_defaults_to_the_call_store(monkeypatch):
    for name in ("CALLSCRIBE_DB", "CALLSCRIBE_GLOSSARY_DB"):
        monkeypatch.delenv(name, raising=False)
    assert Settings(db="sqlite:///x.db").glossary_db == "sqlite:///x.db"
    assert Settings(db="sqlite:///x.db", glossary_db="sqlite:///g.db").glossary_db == "sqlite:///g.db"
    assert Settings(db="sqlite:///x.db", glossary_db="").glossary_db == ""  # '' turns it off
    assert Settings().glossary_db is None


def test_the_served_glossary_is_read_again_and_merged_as_transcribe_merges_it(tmp_path):
    from callscribe.cli import build_options
    from callscribe.server.glossary import LiveGlossary
    from callscribe.server.worker import RequestOptions
    from callscribe.store import Store

    db = f"sqlite:///{tmp_path / 'g.db'}"
    hotwords = tmp_path / "terms.txt"
    hotwords.write_text("滨海新区\nAcme => ACME\n", encoding="utf-8")
    settings = Settings(engine="whisper", db=db, hotwords=hotwords)
    with Store(db) as store:
        store.add_terms(["zeta", "alpha => Alpha"])
        live = LiveGlossary.from_settings(settings, store)
        assert live is not None and live.url == db
        live.refresh_s = 0.0
        base = settings.options()
        request = RequestOptions(hotwords=("prompted",))
        before = live.apply(request).apply(base)
        store.add_terms(["beta => Beta"])  # as the desk adds an entry: the next request has it
        after = live.apply(request).apply(base)
    cli = build_options(engine="whisper", hotwords_file=hotwords, glossary_db=db)
    assert after.hotwords == (*cli.hotwords, "prompted") and after.corrections == cli.corrections
    assert ("beta", "Beta") in after.corrections and ("beta", "Beta") not in before.corrections
    assert after.result_key() != before.result_key()  # another glossary: the next recordings are heard with it
    assert LiveGlossary.from_settings(Settings(engine="whisper", db=db, glossary_db=""), None) is None


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory, evalset: Path) -> Iterator[RunningServer]:
    """A server told by its environment to mix the channels of a call, with a beam of 1 and 15 s clips."""
    env = {"CALLSCRIBE_CHANNELS": "mix", "CALLSCRIBE_BEAM_SIZE": "1", "CALLSCRIBE_MAX_CLIP": "15"}
    running = start_server(tmp_path_factory.mktemp("mixed-server"), env=env)
    yield running
    stop_server(running)


def _segments(server: RunningServer, path: Path) -> list[dict]:
    with path.open("rb") as fh:
        r = httpx.post(f"{server.api}/audio/transcriptions", headers=server.headers(), files={"file": fh},
                       data={"response_format": "verbose_json"}, timeout=300)  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()["segments"]


@pytest.mark.evalset
@pytest.mark.slow
def test_channels_from_the_environment_take_effect_over_http(mixed, evalset):
    from callscribe.pipeline import Pipeline

    path = evalset / STEREO_ITEM
    split = Pipeline({"engine": "whisper"}).transcribe(path)
    assert {u.channel for u in split.utterances} == {0, 1}  # by default each channel is heard on its own
    expected = Pipeline({"engine": "whisper", "channels": "mix", "beam_size": 1, "max_clip_s": 15}).transcribe(path)
    got = [(s["channel"], s["speaker"], s["text"]) for s in _segments(mixed, path)]
    assert got and got == [(u.channel, u.speaker, u.text) for u in expected.utterances]
    assert got != [(u.channel, u.speaker, u.text) for u in split.utterances]  # the mixed call is heard differently


@pytest.mark.evalset
@pytest.mark.slow
def test_redact_audio_from_the_environment_makes_the_toned_copy_as_a_call_is_stored(tmp_path, evalset):
    root = tmp_path / "redacting"
    root.mkdir()
    env = {"CALLSCRIBE_DB": f"sqlite:///{root / 'calls.db'}", "CALLSCRIBE_REDACT_AUDIO": "true"}
    server = start_server(root, env=env)
    try:
        with (evalset / EN_ITEM).open("rb") as fh:
            sent = httpx.post(f"{server.api}/calls", files={"file": fh}, headers=server.headers(), timeout=60)
        assert sent.status_code == 202, sent.text
        job = wait_job(server, sent.json()["id"], server.key or "")
        assert job["state"] == "done", job
        sha, call_id = job["file"]["sha256"], job["call_id"]
        made = list((server.data_dir / "audio-redacted").glob(f"{sha}-c{call_id}-*.wav"))
        assert len(made) == 1  # before anyone asked for it
        call = httpx.get(f"{server.api}/calls/{call_id}", headers=server.headers()).json()
        assert call["transcript"]["utterances"] and all(u["words"] for u in call["transcript"]["utterances"])
        assert call["transcript"]["options"]["redact"] == ["pii"]
    finally:
        stop_server(server)
