"""WSGI entry point for upstream Placement in scripts/bench-placement.sh (uWSGI loads it
with --wsgi-file): placement.wsgi.api:application, the app devstack serves, with its
SQLite database run the way ferrostack runs its own, so the disk does not decide the
comparison:

- every connection is set to synchronous=NORMAL (ferrostack's setting): with the
  database in WAL mode (the script switches it), a commit then does not wait for an
  fsync; both keep the same durability (a process crash loses nothing, a power cut may
  lose the last commits);
- each process keeps one connection of its own open to the file (PLACEMENT_BENCH_DB).
  oslo.db gives SQLite file databases no connection pool (NullPool): every request
  opens and closes its own connection, and when the last one closes SQLite checkpoints
  the WAL into the database and deletes it, with fsyncs (about 23 fdatasync calls per
  provider filled, measured with strace). The idle connection held here stops that;
  checkpoints then happen as ferrostack's do, every 1000 pages. Opening a connection per
  request is still upstream's own cost and is left in.
"""

import os
import sqlite3

from sqlalchemy import engine, event


@event.listens_for(engine.Engine, "connect")
def _synchronous_normal(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


if os.environ.get("PLACEMENT_BENCH_DB"):
    _keeper = sqlite3.connect(os.environ["PLACEMENT_BENCH_DB"])
    _keeper.execute("PRAGMA journal_mode").fetchall()  # a read: only then is it in the WAL

from placement.wsgi.api import application  # noqa: E402,F401  (loads the app)
