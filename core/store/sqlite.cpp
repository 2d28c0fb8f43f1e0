// SQLite wrapper. Errors become hone::Error naming the database file and SQLite's message.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "store/sqlite.h"

#include <chrono>
#include <thread>

#include <sqlite3.h>

#include "common/error.h"

namespace hone {
namespace {

bool is_busy(int rc) { return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED; }

[[noreturn]] void fail(sqlite3* db, const std::string& path, const std::string& what) {
  throw Error(path + ": " + what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

}  // namespace

Db::Db(const std::string& path, bool read_only) : path_(path) {
  const int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error(path + ": cannot open database: " + msg);
  }
  // A training process writes while the GUI reads: WAL lets readers proceed, and the busy timeout
  // makes a writer wait for another writer's short transaction instead of failing.
  sqlite3_busy_timeout(db_, 10000);
  try {
    exec("PRAGMA foreign_keys = ON");
    if (!read_only) {
      // Turning a new database to WAL takes an exclusive lock, and SQLite answers BUSY at once
      // (its busy handler is not consulted) while another process has the file open: two
      // processes creating one workspace (two demos at once) failed here. Retried for as long as
      // the busy timeout.
      for (int attempt = 0;; ++attempt) {
        try {
          exec("PRAGMA journal_mode = WAL");
          break;
        } catch (const DbBusy&) {
          if (attempt >= 500) throw;
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
      exec("PRAGMA synchronous = NORMAL");  // WAL + NORMAL: durable across process crashes
    }
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

Db::~Db() { sqlite3_close_v2(db_); }

void Db::exec(const std::string& sql) {
  char* err = nullptr;
  if (const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err); rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    if (is_busy(rc))
      throw DbBusy(path_ + ": " + msg + " (another process held the workspace's write lock past the busy timeout; code " +
                   std::to_string(sqlite3_extended_errcode(db_)) + " in: " + sql.substr(0, 120) + ")");
    throw Error(path_ + ": " + msg);
  }
}

Stmt Db::prepare(const std::string& sql) { return Stmt(*this, sql); }
int64_t Db::last_insert_id() const { return sqlite3_last_insert_rowid(db_); }
int Db::changes() const { return sqlite3_changes(db_); }

int Db::user_version() {
  Stmt s(*this, "PRAGMA user_version");
  return s.step() ? static_cast<int>(s.i64(0)) : 0;
}

void Db::set_busy_timeout(int ms) { sqlite3_busy_timeout(db_, ms); }

void Db::set_user_version(int v) { exec("PRAGMA user_version = " + std::to_string(v)); }

Stmt::Stmt(Db& db, const std::string& sql) : db_(&db) {
  if (sqlite3_prepare_v2(db.raw(), sql.c_str(), static_cast<int>(sql.size()), &st_, nullptr) != SQLITE_OK)
    fail(db.raw(), db.path(), "cannot prepare \"" + sql.substr(0, 60) + "\"");
}

Stmt::~Stmt() { sqlite3_finalize(st_); }
Stmt::Stmt(Stmt&& o) noexcept : db_(o.db_), st_(o.st_) { o.st_ = nullptr; }

Stmt& Stmt::bind(int i, int64_t v) {
  if (sqlite3_bind_int64(st_, i, v) != SQLITE_OK) fail(db_->raw(), db_->path(), "bind");
  return *this;
}
Stmt& Stmt::bind(int i, double v) {
  if (sqlite3_bind_double(st_, i, v) != SQLITE_OK) fail(db_->raw(), db_->path(), "bind");
  return *this;
}
Stmt& Stmt::bind(int i, const std::string& v) {
  if (sqlite3_bind_text64(st_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8) != SQLITE_OK)
    fail(db_->raw(), db_->path(), "bind");
  return *this;
}
Stmt& Stmt::bind_blob(int i, const void* p, size_t n) {
  if (sqlite3_bind_blob64(st_, i, p, n, SQLITE_TRANSIENT) != SQLITE_OK) fail(db_->raw(), db_->path(), "bind");
  return *this;
}
Stmt& Stmt::bind_null(int i) {
  if (sqlite3_bind_null(st_, i) != SQLITE_OK) fail(db_->raw(), db_->path(), "bind");
  return *this;
}

bool Stmt::step() {
  int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  std::string msg = sqlite3_errmsg(db_->raw());
  const int ext = sqlite3_extended_errcode(db_->raw());
  const char* sql = sqlite3_sql(st_);
  sqlite3_reset(st_);
  // The statement and SQLite's extended code say which wait it was: a write lock held past the
  // timeout (5), or a read snapshot gone stale under a pending statement (517, no waiting at all).
  if (is_busy(rc))
    throw DbBusy(db_->path() + ": " + msg + " (another process held the workspace's write lock past the busy timeout; code " +
                 std::to_string(ext) + " in: " + (sql ? std::string(sql).substr(0, 120) : std::string("?")) + ")");
  throw Error(db_->path() + ": " + msg);
}

void Stmt::run() {
  while (step()) {
  }
  sqlite3_reset(st_);
}

void Stmt::reset() {
  sqlite3_reset(st_);
  sqlite3_clear_bindings(st_);
}

bool Stmt::is_null(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }
int64_t Stmt::i64(int col) const { return sqlite3_column_int64(st_, col); }
double Stmt::f64(int col) const { return sqlite3_column_double(st_, col); }
std::string Stmt::text(int col) const {
  const void* p = sqlite3_column_blob(st_, col);  // blob access keeps embedded NULs
  const int n = sqlite3_column_bytes(st_, col);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

Transaction::Transaction(Db& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }
Transaction::~Transaction() {
  if (!done_) {
    try {
      db_.exec("ROLLBACK");
    } catch (...) {
    }
  }
}
void Transaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace hone
