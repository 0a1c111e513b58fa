"""A glossary entry a reviewer made in the store (``wrong => right``) is used by later runs: ``--glossary-db``."""

from __future__ import annotations

from pathlib import Path

import pytest
from speakers_calls import ReferenceEngine, example_turns

import callscribe
from callscribe.cli import build_options
from callscribe.store import Store
from callscribe.text.glossary import GlossaryError

EXAMPLE = "zh_billing_stereo_8k.wav"


def test_entries_in_the_store_correct_later_runs(tmp_path: Path, examples_dir: Path) -> None:
    url = f"sqlite:///{tmp_path / 'calls.db'}"
    with Store(url) as store:
        store.add_terms(["报修 => 保修", "光猫"])  # as the review desk stores a correction turned into an entry
    options = build_options(glossary_db=url, language="zh", channel_roles_spec="agent,customer")
    assert ("报修", "保修") in options.corrections and "光猫" in options.hotwords

    turns = example_turns(examples_dir, EXAMPLE)  # the agent says 网络已报修
    plain = callscribe.Pipeline(build_options(language="zh"), engine=ReferenceEngine(turns))
    fixed = callscribe.Pipeline(options, engine=ReferenceEngine(turns))
    before = " ".join(u.text for u in plain.transcribe(examples_dir / EXAMPLE).utterances)
    after = " ".join(u.text for u in fixed.transcribe(examples_dir / EXAMPLE).utterances)
    assert "报修" in before and "保修" not in before
    assert "保修" in after and "报修" not in after


def test_a_bad_glossary_database_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(GlossaryError) as caught:
        build_options(glossary_db="mysql://nowhere/db")
    message = str(caught.value)
    assert message.startswith("--glossary-db:") and "\n" not in message
