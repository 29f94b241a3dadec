"""States are StrEnums: their values are the strings of the JSON output, lock and journal files, and
every value produced is one of them (mypy checks the dispatches; these check the sets)."""

from __future__ import annotations

import json

from assetgen.cli.reporters import ACTION_LABEL
from assetgen.engine.events import _LINE_KINDS, EventKind
from assetgen.engine.plan import Action, Reason, ReasonKind
from assetgen.engine.scheduler import FAILED_STATES, SUCCEEDED_STATES, Status
from assetgen.state.journal import STATES, SubmissionState


def test_values_are_the_strings_written_to_files_and_json() -> None:
    assert json.dumps({"action": Action.GENERATE, "status": Status.SUPERSEDED}) == \
        '{"action": "generate", "status": "superseded"}'
    assert Action.NONE == "none" and f"{Action.RESTORE}" == "restore" and str(ReasonKind.HAND) == "hand"
    assert [s.value for s in SubmissionState] == ["intent", "submitted", "completed", "failed", "uncertain"]
    assert STATES == tuple(SubmissionState)


def test_result_statuses_are_the_ones_produced() -> None:
    assert {s.value for s in Status} == {"built", "restored", "shared", "failed", "blocked", "skipped",
                                         "superseded", "uncertain", "pending"}   # "lost" was never produced
    assert not set(FAILED_STATES) & set(SUCCEEDED_STATES)
    assert Status.SUPERSEDED not in FAILED_STATES          # a watch's newer build replaces it: not a failure
    assert Status.PENDING not in FAILED_STATES             # --no-wait: the next build collects it


def test_every_status_is_an_event_kind_shown_as_a_line() -> None:
    assert {s.value for s in Status} <= {k.value for k in EventKind}
    assert {EventKind(s) for s in Status} <= _LINE_KINDS
    assert EventKind.PROGRESS not in _LINE_KINDS


def test_every_action_and_reason_kind_is_rendered() -> None:
    assert set(ACTION_LABEL) == set(Action) and ACTION_LABEL[Action.NONE] == "up to date"
    texts = {kind: str(Reason(kind, "x")) for kind in ReasonKind}
    assert texts[ReasonKind.STYLE] == "style x changed" and texts[ReasonKind.NEW] == "new target"
    assert all(texts.values())
