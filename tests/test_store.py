"""The store's transactions alone: what a continue-as-new leaves behind, what an episode
computed for an instance that was purged and started again may not touch."""

from __future__ import annotations

import sqlite3

from devhost.durable import events as ev
from devhost.durable.model import Child, Episode, Instance, Message, RuntimeStatus, WorkItem
from devhost.store.sqlite import MIGRATIONS, Store

NOW = 1_700_000_000.0


def started(store: Store, created: float = NOW) -> Instance:
    instance = Instance("i", "Orch", RuntimeStatus.PENDING, None, created=created)
    store.create_instance(instance, ev.execution_started(created, "i", "Orch", None, None))
    return store.get_instance("i")


def episode(instance: Instance, **fields) -> Episode:
    values = {
        "instance_id": "i",
        "consumed": [],
        "events": [ev.orchestrator_started(NOW)],
        "status": RuntimeStatus.RUNNING,
        "output": None,
        "custom_status": None,
        "next_seq": 2,
        "actions_seen": 2,
        "created": instance.created,
    }
    return Episode(**{**values, **fields})


def test_continue_as_new_drops_what_the_old_execution_was_waiting_for(tmp_path):
    store = Store(tmp_path / "hub.sqlite")
    instance = started(store)
    store.commit_episode(
        episode(instance, work=[WorkItem("i", 0, "A", None)]),
        NOW,
    )
    for event in (
        ev.timer_fired(NOW, 1, ev.timestamp(NOW)),
        ev.task_completed(NOW, 0, "1"),
        ev.event_raised(NOW, "Approval", '"yes"'),
    ):
        store.send(Message("i", event, NOW + 60))
    consumed = [m.id for m in store.messages("i", NOW)]
    restart = ev.execution_started(NOW, "i", "Orch", "2", None)
    store.commit_episode(
        episode(
            instance,
            consumed=consumed,
            events=[],
            status=RuntimeStatus.CONTINUED_AS_NEW,
            reset_history=True,
            next_seq=0,
            actions_seen=0,
            messages=[Message("i", restart, NOW)],
        ),
        NOW,
    )
    kinds = [m.event["EventType"] for m in store.messages("i", NOW + 120)]
    assert kinds == [ev.EVENT_RAISED, ev.EXECUTION_STARTED]  # an event raised to it stays
    assert store.pending_work(set(), 10) == []
    assert store.history("i") == []


def test_an_episode_of_a_purged_instance_does_not_touch_its_successor(tmp_path):
    store = Store(tmp_path / "hub.sqlite")
    old = started(store)
    store.purge("i")
    started(store, created=NOW + 5)
    store.commit_episode(episode(old, status=RuntimeStatus.COMPLETED, output='"old"'), NOW + 6)
    current = store.get_instance("i")
    assert (current.status, current.output, current.next_seq) == ("Pending", None, 0)


def test_a_sub_orchestration_whose_id_is_taken_fails_its_parent_task(tmp_path):

    store = Store(tmp_path / "hub.sqlite")
    parent = started(store)
    taken = Instance("busy", "Orch", RuntimeStatus.PENDING, None, created=NOW)
    store.create_instance(taken, ev.execution_started(NOW, "busy", "Orch", None, None))
    start = ev.execution_started(NOW, "busy", "Child", None, "i")
    store.commit_episode(episode(parent, children=[Child("busy", "Child", None, 3, start)]), NOW)
    (notice,) = [m.event for m in store.messages("i", NOW) if m.event["EventType"] != 0]
    assert notice["EventType"] == ev.SUB_ORCHESTRATION_FAILED and notice["TaskScheduledId"] == 3
    assert store.get_instance("busy").name == "Orch"


def test_a_store_of_the_first_schema_opens_and_keeps_its_instances(tmp_path):
    """A data folder from before the control, scheduled and timers columns: migrated in place,
    its running instance intact and (having no record of what it scheduled) not checked."""
    path = tmp_path / "hub.sqlite"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0] + "; PRAGMA user_version=1;")
    db.execute(
        "INSERT INTO instances (id, name, status, created, updated, next_seq, actions_seen)"
        " VALUES ('old', 'Orch', 'Running', 1.0, 1.0, 1, 1)"
    )
    db.commit()
    db.close()
    store = Store(path)
    instance = store.get_instance("old")
    assert (instance.status, instance.actions_seen, instance.scheduled) == ("Running", 1, None)
    store.send(Message("old", ev.event_raised(NOW, "Go", "1"), NOW))
    assert store.ready_instances(NOW, set(), 10) == ["old"]
    assert store.timer_status("any") is None
