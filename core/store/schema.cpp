// Migrations. Never edit a released step: add a new one, so that every older workspace upgrades
// along the same path. Version 1 was the first store (datasets, rows, revisions, runs, metrics);
// version 2 added preference labels, checkpoints/artifacts, run notes and the run lock path;
// version 3 added candidate datasets (unlabelled pairs: a prompt and responses to choose between),
// their labels (a, b, tie, both_bad) and a note per label; version 4 added multiple-choice
// evaluation suites (dataset kind `choice`) and evaluation results with their per-example outputs;
// version 5 added prompts datasets (kind `prompts`) and verdicts per annotator (labels keyed by row
// and author, with `drop` for a reviewed pair left out and `ranked` with the order of n responses).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "store/schema.h"

#include "common/error.h"

namespace hone {
namespace {

const char* kV1 = R"SQL(
CREATE TABLE datasets (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  kind        TEXT NOT NULL CHECK (kind IN ('chat', 'preference', 'text')),
  format      TEXT NOT NULL,
  source      TEXT NOT NULL,
  created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE rows (
  id          INTEGER PRIMARY KEY,
  dataset_id  INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
  position    INTEGER NOT NULL,
  data        TEXT NOT NULL,
  source      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX rows_by_position ON rows(dataset_id, position);
CREATE TABLE revisions (
  id          INTEGER PRIMARY KEY,
  dataset_id  INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
  row_id      INTEGER NOT NULL,
  op          TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
  position    INTEGER NOT NULL,
  before      TEXT,
  after       TEXT,
  author      TEXT NOT NULL DEFAULT '',
  at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX revisions_by_dataset ON revisions(dataset_id, id);
CREATE TABLE runs (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL,
  method      TEXT NOT NULL,
  recipe      TEXT NOT NULL DEFAULT '',
  base_model  TEXT NOT NULL,
  datasets    TEXT NOT NULL DEFAULT '[]',
  config      TEXT NOT NULL,
  run_dir     TEXT NOT NULL,
  status      TEXT NOT NULL CHECK (status IN ('queued', 'running', 'paused', 'completed', 'failed', 'cancelled', 'interrupted')),
  error       TEXT NOT NULL DEFAULT '',
  started_at  TEXT,
  ended_at    TEXT,
  final       TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE metrics (
  run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step        INTEGER NOT NULL,
  name        TEXT NOT NULL,
  value       REAL,
  wall        REAL NOT NULL,
  PRIMARY KEY (run_id, name, step)
) WITHOUT ROWID;
)SQL";

const char* kV2 = R"SQL(
CREATE TABLE labels (
  row_id      INTEGER PRIMARY KEY REFERENCES rows(id) ON DELETE CASCADE,
  label       TEXT NOT NULL CHECK (label IN ('chosen', 'rejected', 'tie', 'skip')),
  author      TEXT NOT NULL DEFAULT '',
  at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE artifacts (
  id          INTEGER PRIMARY KEY,
  run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  kind        TEXT NOT NULL CHECK (kind IN ('checkpoint', 'adapter', 'model', 'export')),
  step        INTEGER,
  path        TEXT NOT NULL,
  bytes       INTEGER NOT NULL DEFAULT 0,
  created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX artifacts_by_run ON artifacts(run_id, id);
ALTER TABLE runs ADD COLUMN notes TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN lock_path TEXT NOT NULL DEFAULT '';
)SQL";

// SQLite cannot alter a CHECK constraint: the two tables are rebuilt as its documentation
// prescribes (foreign keys off around the transaction, so that dropping `datasets` cascades nothing;
// migrate() does that), and checked with foreign_key_check before the commit.
const char* kV3 = R"SQL(
CREATE TABLE datasets_v3 (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  kind        TEXT NOT NULL CHECK (kind IN ('chat', 'preference', 'text', 'candidates')),
  format      TEXT NOT NULL,
  source      TEXT NOT NULL,
  created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO datasets_v3 (id, name, kind, format, source, created_at) SELECT id, name, kind, format, source, created_at FROM datasets;
DROP TABLE datasets;
ALTER TABLE datasets_v3 RENAME TO datasets;
CREATE TABLE labels_v3 (
  row_id      INTEGER PRIMARY KEY REFERENCES rows(id) ON DELETE CASCADE,
  label       TEXT NOT NULL CHECK (label IN ('chosen', 'rejected', 'tie', 'skip', 'a', 'b', 'both_bad')),
  author      TEXT NOT NULL DEFAULT '',
  at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  note        TEXT NOT NULL DEFAULT ''
);
INSERT INTO labels_v3 (row_id, label, author, at) SELECT row_id, label, author, at FROM labels;
DROP TABLE labels;
ALTER TABLE labels_v3 RENAME TO labels;
)SQL";

// Rebuilt like version 3 (the kind CHECK gains 'choice'); then the evaluation tables.
const char* kV4 = R"SQL(
CREATE TABLE datasets_v4 (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  kind        TEXT NOT NULL CHECK (kind IN ('chat', 'preference', 'text', 'candidates', 'choice')),
  format      TEXT NOT NULL,
  source      TEXT NOT NULL,
  created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO datasets_v4 (id, name, kind, format, source, created_at) SELECT id, name, kind, format, source, created_at FROM datasets;
DROP TABLE datasets;
ALTER TABLE datasets_v4 RENAME TO datasets;
CREATE TABLE evals (
  id          INTEGER PRIMARY KEY,
  kind        TEXT NOT NULL CHECK (kind IN ('choice', 'generate', 'loss', 'pairwise')),
  suite       TEXT NOT NULL,
  suite_id    INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
  suite_hash  TEXT NOT NULL,
  target      TEXT NOT NULL,
  target_label TEXT NOT NULL,
  run_id      INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  settings    TEXT NOT NULL DEFAULT '{}',
  metrics     TEXT NOT NULL DEFAULT '{}',
  status      TEXT NOT NULL CHECK (status IN ('completed', 'awaiting_labels')),
  labels_id   INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
  seconds     REAL NOT NULL DEFAULT 0,
  created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX evals_by_run ON evals(run_id, id);
CREATE TABLE eval_examples (
  eval_id     INTEGER NOT NULL REFERENCES evals(id) ON DELETE CASCADE,
  position    INTEGER NOT NULL,
  data        TEXT NOT NULL,
  PRIMARY KEY (eval_id, position)
) WITHOUT ROWID;
)SQL";

// Rebuilt like version 3: the kind CHECK gains 'prompts'; labels become one verdict per row and
// annotator (the existing verdicts keep their author), with a ranking for n-way candidates.
const char* kV5 = R"SQL(
CREATE TABLE datasets_v5 (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  kind        TEXT NOT NULL CHECK (kind IN ('chat', 'preference', 'text', 'candidates', 'choice', 'prompts')),
  format      TEXT NOT NULL,
  source      TEXT NOT NULL,
  created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO datasets_v5 (id, name, kind, format, source, created_at) SELECT id, name, kind, format, source, created_at FROM datasets;
DROP TABLE datasets;
ALTER TABLE datasets_v5 RENAME TO datasets;
CREATE TABLE labels_v5 (
  row_id      INTEGER NOT NULL REFERENCES rows(id) ON DELETE CASCADE,
  author      TEXT NOT NULL DEFAULT '',
  label       TEXT NOT NULL CHECK (label IN ('chosen', 'rejected', 'tie', 'skip', 'drop', 'a', 'b', 'both_bad', 'ranked')),
  ranking     TEXT NOT NULL DEFAULT '',
  note        TEXT NOT NULL DEFAULT '',
  at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  PRIMARY KEY (row_id, author)
);
INSERT INTO labels_v5 (row_id, author, label, note, at) SELECT row_id, author, label, note, at FROM labels;
DROP TABLE labels;
ALTER TABLE labels_v5 RENAME TO labels;
)SQL";

const char* const kMigrations[] = {kV1, kV2, kV3, kV4, kV5};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion, "one migration per schema version");

}  // namespace

void migrate(Db& db, int target) {
  int v = db.user_version();
  if (v > kSchemaVersion)
    throw Error(db.path() + ": made by a newer Hone (schema version " + std::to_string(v) + ", this build knows up to " +
                std::to_string(kSchemaVersion) + ")");
  for (; v < target; ++v) {
    const bool rebuild = v + 1 == 3 || v + 1 == 4 || v + 1 == 5;  // table rebuilds: foreign keys off (outside the transaction)
    if (rebuild) db.exec("PRAGMA foreign_keys = OFF");
    try {
      Transaction t(db);
      // Another process opening the workspace at the same moment may have done this step while
      // this one waited for the write lock: the version is read again under the lock.
      if (const int now = db.user_version(); now > v) {
        t.commit();
        if (rebuild) db.exec("PRAGMA foreign_keys = ON");
        v = now - 1;
        continue;
      }
      db.exec(kMigrations[v]);
      if (rebuild) {
        Stmt fk = db.prepare("PRAGMA foreign_key_check");
        if (fk.step()) throw Error(db.path() + ": schema upgrade to version " + std::to_string(v + 1) + " found a dangling reference in " + fk.text(0));
      }
      db.set_user_version(v + 1);
      t.commit();
    } catch (...) {
      if (rebuild) db.exec("PRAGMA foreign_keys = ON");
      throw;
    }
    if (rebuild) db.exec("PRAGMA foreign_keys = ON");
  }
}

}  // namespace hone
