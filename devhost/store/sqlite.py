"""All SQL of the host. One transaction per state change, so a crash loses nothing half-done.

Committed history rows are stored with IsPlayed already true: an episode hands them to the
orchestrator verbatim, without parsing them.

The store holds every job's input and results, so its folder is 0700 and its files 0600. It is
checked when it opens: a damaged file, or a missing or empty one where a store used to be (the
marker file says so), is refused with one line rather than served or silently recreated.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from devhost.durable import events as ev
from devhost.durable.entities import is_entity, split_entity_id
from devhost.durable.model import (
    CONTROL_EVENTS,
    FINISHED,
    Episode,
    Instance,
    Message,
    RuntimeStatus,
    Task,
    TimerStatus,
    WorkItem,
)
from devhost.errors import StoreError

MARKER_SUFFIX = ".created"  # beside the database: "a store lived here"

MIGRATIONS = [
    """
    CREATE TABLE instances (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        input TEXT,
        output TEXT,
        custom_status TEXT,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        parent_id TEXT,
        parent_task INTEGER,
        next_seq INTEGER NOT NULL DEFAULT 0,
        actions_seen INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX instances_created ON instances(created);
    CREATE TABLE history (
        instance_id TEXT NOT NULL,
        pos INTEGER NOT NULL,
        event TEXT NOT NULL,
        PRIMARY KEY (instance_id, pos)
    ) WITHOUT ROWID;
    CREATE TABLE inbox (
        id INTEGER PRIMARY KEY,
        instance_id TEXT NOT NULL,
        event TEXT NOT NULL,
        visible_at REAL NOT NULL
    );
    CREATE INDEX inbox_instance ON inbox(instance_id, id);
    CREATE INDEX inbox_due ON inbox(visible_at);
    CREATE TABLE tasks (
        instance_id TEXT NOT NULL,
        task_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        name TEXT,
        input TEXT,
        retry TEXT,
        attempt INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (instance_id, task_id)
    ) WITHOUT ROWID;
    CREATE TABLE work (
        id INTEGER PRIMARY KEY,
        instance_id TEXT NOT NULL,
        task_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        input TEXT
    );
    """,
    # instance control (terminate, suspend, ...) reaches even a suspended instance
    "ALTER TABLE inbox ADD COLUMN control INTEGER NOT NULL DEFAULT 0",
    # what each instance scheduled, to detect a replay that no longer matches it
    "ALTER TABLE instances ADD COLUMN scheduled TEXT",
    # timer triggers' schedule status (the extension keeps it in a blob per timer)
    "CREATE TABLE timers (name TEXT PRIMARY KEY, last REAL, next REAL, updated REAL)",
]
# what an execution's own tasks send back: dropped when it continues as new
EXECUTION_RESULTS = {
    ev.TASK_COMPLETED,
    ev.TASK_FAILED,
    ev.SUB_ORCHESTRATION_COMPLETED,
    ev.SUB_ORCHESTRATION_FAILED,
    ev.TIMER_FIRED,
}
_FINISHED_SQL = ",".join(f"'{status}'" for status in sorted(FINISHED))


def _private_file(path: Path, marker: Path) -> None:
    """Create the folder 0700 (a folder that exists is left as it is: it may be the user's
    home) and the database 0600; refuse a vanished or emptied store."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if marker.exists() and (not path.exists() or path.stat().st_size == 0):
        raise StoreError(
            f"{path} is missing or empty, but a store lived in {path.parent} ({marker.name}): "
            "restore the file from a copy, or delete the folder to start with no jobs"
        )
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    path.chmod(0o600)


def _check_integrity(db: sqlite3.Connection, path: Path) -> None:
    """PRAGMA quick_check: a damaged file is refused before anything is served from it."""
    rows = db.execute("PRAGMA quick_check").fetchall()
    problems = [next(iter(r.values())) for r in rows]
    if problems != ["ok"]:
        first = str(problems[0]).splitlines()[0] if problems else "no answer"
        raise StoreError(_unusable(path, first))


def _unusable(path: Path, problem: object) -> str:
    problem = str(problem).splitlines()[0]
    if "full" in problem:
        return f"cannot write the store {path}: the disk is full; free space and start again"
    return (
        f"{path} is damaged ({problem}): restore it from a copy, or move it away to start "
        "with no jobs"
    )


def _row(cursor: sqlite3.Cursor, values: tuple) -> dict:
    return {column[0]: value for column, value in zip(cursor.description, values, strict=True)}


def _dump(event: dict) -> str:
    return json.dumps(event, separators=(",", ":"))


class Store:
    """The SQLite database; used from one thread (the host's event loop)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        marker = path.with_name(path.name + MARKER_SUFFIX)
        try:
            _private_file(path, marker)
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.db.row_factory = _row
            self.db.execute("PRAGMA busy_timeout=5000")
            _check_integrity(self.db, path)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
            if not marker.exists():
                marker.write_text("devhost store\n")
                marker.chmod(0o600)
        except sqlite3.DatabaseError as error:
            raise StoreError(_unusable(path, error)) from None
        except OSError as error:
            raise StoreError(f"cannot write the store {path}: {error.strerror}") from None

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()["user_version"]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            self.db.executescript(
                f"BEGIN IMMEDIATE; {script}; PRAGMA user_version={number}; COMMIT;"
            )

    def close(self) -> None:
        self.db.close()

    def _tx(self):
        return _Transaction(self.db)

    # ---- instances
    def create_instance(self, instance: Instance, start_event: dict) -> bool:
        """Insert a Pending instance and its ExecutionStarted message; False if the id is live."""
        with self._tx():
            existing = self.get_instance(instance.id)
            if existing and not existing.finished:
                return False
            if existing:
                self._delete_instance(instance.id)
            self.db.execute(
                "INSERT INTO instances (id, name, status, input, created, updated, parent_id,"
                " parent_task) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    instance.id,
                    instance.name,
                    RuntimeStatus.PENDING,
                    instance.input,
                    instance.created,
                    instance.created,
                    instance.parent_id,
                    instance.parent_task,
                ),
            )
            self._send(Message(instance.id, start_event, instance.created))
        return True

    def get_instance(self, instance_id: str) -> Instance | None:
        row = self.db.execute("SELECT * FROM instances WHERE id = ?", (instance_id,)).fetchone()
        return None if row is None else Instance(**row)

    def list_instances(
        self,
        created_from: float | None = None,
        created_to: float | None = None,
        statuses: Iterable[str] = (),
        prefix: str | None = None,
        limit: int = 1000,
        after: tuple[float, str] | None = None,
        entities: bool = False,
        updated_from: float | None = None,
        updated_to: float | None = None,
    ) -> list[Instance]:
        """Orchestrations (or entities) by creation time, then id; `after` is the last
        (created, id) of the previous page."""
        clauses, args = [f"substr(id, 1, 1) {'=' if entities else '!='} '@'"], []
        bounds = (
            ("created >= ?", created_from),
            ("created <= ?", created_to),
            ("updated >= ?", updated_from),
            ("updated <= ?", updated_to),
        )
        for clause, value in bounds:
            if value is not None:
                clauses.append(clause)
                args.append(value)
        statuses = list(statuses)
        if statuses:
            clauses.append(f"status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        if prefix:
            clauses.append("substr(id, 1, ?) = ?")
            args.extend([len(prefix), prefix])
        if after is not None:
            clauses.append("(created > ? OR (created = ? AND id > ?))")
            args.extend([after[0], after[0], after[1]])
        rows = self.db.execute(
            f"SELECT * FROM instances WHERE {' AND '.join(clauses)} ORDER BY created, id LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [Instance(**row) for row in rows]

    def history(self, instance_id: str) -> list[str]:
        rows = self.db.execute(
            "SELECT event FROM history WHERE instance_id = ? ORDER BY pos", (instance_id,)
        ).fetchall()
        return [r["event"] for r in rows]

    def purge(self, instance_id: str) -> int:
        with self._tx():
            if not self.get_instance(instance_id):
                return 0
            self._delete_instance(instance_id)
        return 1

    def _delete_instance(self, instance_id: str) -> None:
        for table, column in (
            ("instances", "id"),
            ("history", "instance_id"),
            ("inbox", "instance_id"),
            ("tasks", "instance_id"),
            ("work", "instance_id"),
        ):
            self.db.execute(f"DELETE FROM {table} WHERE {column} = ?", (instance_id,))

    # ---- messages
    def send(self, message: Message) -> None:
        with self._tx():
            self._send(message)

    def _send(self, message: Message) -> None:
        if is_entity(message.instance_id):  # an entity exists from its first message
            self.db.execute(
                "INSERT OR IGNORE INTO instances (id, name, status, created, updated)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    message.instance_id,
                    split_entity_id(message.instance_id)[0],
                    RuntimeStatus.PENDING,
                    message.visible_at,
                    message.visible_at,
                ),
            )
        self.db.execute(
            "INSERT INTO inbox (instance_id, event, visible_at, control) VALUES (?, ?, ?, ?)",
            (
                message.instance_id,
                _dump(message.event),
                message.visible_at,
                message.event["EventType"] in CONTROL_EVENTS,
            ),
        )

    def ready_instances(self, now: float, skip: set[str], limit: int) -> list[str]:
        """Instances with a visible message they may take now, in arrival order: a suspended
        instance only takes control messages."""
        rows = self.db.execute(
            "SELECT inbox.instance_id AS id, min(inbox.id) AS first FROM inbox JOIN instances"
            " ON instances.id = inbox.instance_id WHERE inbox.visible_at <= ?"
            f" AND instances.status NOT IN ({_FINISHED_SQL})"
            " AND (instances.status != ? OR inbox.control)"
            " GROUP BY inbox.instance_id ORDER BY first LIMIT ?",
            (now, RuntimeStatus.SUSPENDED, limit + len(skip)),
        ).fetchall()
        return [r["id"] for r in rows if r["id"] not in skip][:limit]

    def messages(self, instance_id: str, now: float) -> list[Message]:
        rows = self.db.execute(
            "SELECT id, event, visible_at FROM inbox WHERE instance_id = ? AND visible_at <= ?"
            " ORDER BY id",
            (instance_id, now),
        ).fetchall()
        return [
            Message(instance_id, json.loads(r["event"]), r["visible_at"], r["id"]) for r in rows
        ]

    def next_due(self, now: float) -> float | None:
        """When the next future message (a timer) becomes visible; visible ones wait for a
        wake-up instead, since their instance is busy or suspended."""
        row = self.db.execute(
            "SELECT min(visible_at) AS due FROM inbox WHERE visible_at > ?", (now,)
        ).fetchone()
        return row["due"]

    # ---- tasks and work
    def tasks(self, instance_id: str, task_ids: Iterable[int]) -> dict[int, Task]:
        ids = list(task_ids)
        if not ids:
            return {}
        rows = self.db.execute(
            "SELECT * FROM tasks WHERE instance_id = ? AND task_id IN"
            f" ({','.join('?' * len(ids))})",
            (instance_id, *ids),
        ).fetchall()
        return {
            r["task_id"]: Task(
                r["task_id"],
                r["kind"],
                r["name"],
                r["input"],
                json.loads(r["retry"]) if r["retry"] else None,
                r["attempt"],
            )
            for r in rows
        }

    def pending_work(self, skip: set[int], limit: int) -> list[WorkItem]:
        rows = self.db.execute(
            "SELECT * FROM work ORDER BY id LIMIT ?", (limit + len(skip),)
        ).fetchall()
        return [WorkItem(**r) for r in rows if r["id"] not in skip][:limit]

    def finish_work(self, item: WorkItem, event: dict, now: float) -> bool:
        """Swap a work item for its completion message; False if the work was cancelled."""
        with self._tx():
            gone = self.db.execute("DELETE FROM work WHERE id = ?", (item.id,)).rowcount == 0
            if gone:
                return False
            self._send(Message(item.instance_id, event, now))
        return True

    # ---- episodes
    def commit_episode(self, episode: Episode, now: float) -> None:
        e = episode
        with self._tx():
            current = self.get_instance(e.instance_id)
            if current is None or current.finished or e.created not in (None, current.created):
                return  # purged (and perhaps started again) while the episode ran: drop it
            if e.reset_history:  # continue-as-new: nothing of the old execution reaches the new
                for table in ("history", "tasks", "work"):
                    self.db.execute(f"DELETE FROM {table} WHERE instance_id = ?", (e.instance_id,))
                self.db.execute(
                    "DELETE FROM inbox WHERE instance_id = ? AND json_extract(event, '$.EventType')"
                    f" IN ({','.join(str(k) for k in sorted(EXECUTION_RESULTS))})",
                    (e.instance_id,),
                )
                self.db.execute(
                    "UPDATE instances SET input = ? WHERE id = ?", (e.input, e.instance_id)
                )
            self._append(e.instance_id, e.events)
            if e.consumed:
                self.db.execute(
                    f"DELETE FROM inbox WHERE id IN ({','.join('?' * len(e.consumed))})",
                    e.consumed,
                )
            self.db.executemany(
                "INSERT OR REPLACE INTO tasks (instance_id, task_id, kind, name, input, retry,"
                " attempt) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        e.instance_id,
                        t.task_id,
                        t.kind,
                        t.name,
                        t.input,
                        json.dumps(t.retry) if t.retry else None,
                        t.attempt,
                    )
                    for t in e.tasks
                ],
            )
            self.db.executemany(
                "INSERT INTO work (instance_id, task_id, name, input) VALUES (?, ?, ?, ?)",
                [(w.instance_id, w.task_id, w.name, w.input) for w in e.work],
            )
            for message in e.messages:
                self._send(message)
            if e.status in FINISHED:  # late results of abandoned tasks have nowhere to go
                self.db.execute("DELETE FROM inbox WHERE instance_id = ?", (e.instance_id,))
                self.db.execute("DELETE FROM work WHERE instance_id = ?", (e.instance_id,))
            for child in e.children:
                created = self.create_instance(
                    Instance(
                        child.instance_id,
                        child.name,
                        RuntimeStatus.PENDING,
                        child.input,
                        created=now,
                        parent_id=e.instance_id,
                        parent_task=child.parent_task,
                    ),
                    child.start_event,
                )
                if not created:  # its id is taken by a live instance: the parent hears so
                    reason = f"An instance with ID '{child.instance_id}' is already running."
                    notice = ev.sub_orchestration_failed(now, child.parent_task, reason, "")
                    self._send(Message(e.instance_id, notice, now))
            self.db.execute(
                "UPDATE instances SET status = ?, output = ?, custom_status = ?, updated = ?,"
                " next_seq = ?, actions_seen = ?, scheduled = ? WHERE id = ?",
                (
                    e.status,
                    e.output,
                    e.custom_status,
                    now,
                    e.next_seq,
                    e.actions_seen,
                    e.scheduled,
                    e.instance_id,
                ),
            )

    def rewind(
        self, instance_id: str, events: list[dict], work: list[WorkItem], wake: Message, now: float
    ) -> None:
        """Replace the history with its rewound form and make the instance Pending again."""
        with self._tx():
            self.db.execute("DELETE FROM history WHERE instance_id = ?", (instance_id,))
            self._append(instance_id, events)
            self.db.executemany(
                "INSERT INTO work (instance_id, task_id, name, input) VALUES (?, ?, ?, ?)",
                [(w.instance_id, w.task_id, w.name, w.input) for w in work],
            )
            self._send(wake)
            self.db.execute(
                "UPDATE instances SET status = ?, output = NULL, updated = ? WHERE id = ?",
                (RuntimeStatus.PENDING, now, instance_id),
            )

    # ---- timer triggers
    def timer_status(self, name: str) -> TimerStatus | None:
        row = self.db.execute("SELECT * FROM timers WHERE name = ?", (name,)).fetchone()
        return None if row is None else TimerStatus(row["last"], row["next"], row["updated"])

    def save_timer_status(self, name: str, status: TimerStatus) -> None:
        with self._tx():
            self.db.execute(
                "INSERT OR REPLACE INTO timers (name, last, next, updated) VALUES (?, ?, ?, ?)",
                (name, status.last, status.next, status.updated),
            )

    def count(self, ids: list[str] | None = None, finished: bool | None = None) -> int:
        """How many orchestrations there are (of `ids`, finished or not): for the benchmark."""
        clauses, args = ["substr(id, 1, 1) != '@'"], []
        if ids is not None:
            clauses.append(f"id IN ({','.join('?' * len(ids))})")
            args.extend(ids)
        if finished is not None:
            clauses.append(f"status {'IN' if finished else 'NOT IN'} ({_FINISHED_SQL})")
        row = self.db.execute(
            f"SELECT count(*) AS n FROM instances WHERE {' AND '.join(clauses)}", args
        ).fetchone()
        return row["n"]

    def completion_times(self, ids: list[str]) -> list[tuple[float, float]]:
        """(created, last updated) of those of `ids` that completed: for the benchmark."""
        rows = self.db.execute(
            "SELECT created, updated FROM instances WHERE status = ? AND id IN"
            f" ({','.join('?' * len(ids))})",
            [RuntimeStatus.COMPLETED, *ids],
        ).fetchall()
        return [(r["created"], r["updated"]) for r in rows]

    def _append(self, instance_id: str, events: list[dict]) -> None:
        row = self.db.execute(
            "SELECT coalesce(max(pos), -1) AS last FROM history WHERE instance_id = ?",
            (instance_id,),
        ).fetchone()
        start = row["last"] + 1
        self.db.executemany(
            "INSERT INTO history (instance_id, pos, event) VALUES (?, ?, ?)",
            [
                (instance_id, start + i, _dump({**event, "IsPlayed": True}))
                for i, event in enumerate(events)
            ],
        )


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, re-entrant so helpers can be called inside a transaction."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.outer = False

    def __enter__(self) -> None:
        if not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
            self.outer = True

    def __exit__(self, kind: Any, *_: Any) -> None:
        if not self.outer:
            return
        self.db.execute("ROLLBACK" if kind else "COMMIT")
