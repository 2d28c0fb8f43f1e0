// The workspace database schema as an ordered list of migrations; PRAGMA user_version records how
// many have run. docs/store.md describes the tables.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include "store/sqlite.h"

namespace hone {

constexpr int kSchemaVersion = 5;

// Brings the database up to `target` (default: the newest version), each migration in its own
// transaction. A database from a newer Hone is refused rather than guessed at.
void migrate(Db& db, int target = kSchemaVersion);

}  // namespace hone
