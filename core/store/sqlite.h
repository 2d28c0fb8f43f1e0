// A thin RAII layer over the SQLite C API: a connection, prepared statements with typed binds, and
// a transaction guard that rolls back unless committed. Every SQL value goes through a bind.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "common/error.h"

struct sqlite3;
struct sqlite3_stmt;

namespace hone {

class Stmt;

// Another connection held the write lock for longer than the busy timeout (10 s). Callers that can
// try again later (the metrics writer) catch it; everywhere else it is an Error like any other.
struct DbBusy : Error {
  using Error::Error;
};

class Db {
 public:
  // Opens (creating if needed) with WAL, a busy timeout and foreign keys on.
  explicit Db(const std::string& path, bool read_only = false);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  void exec(const std::string& sql);  // statements without parameters (DDL, pragmas)
  Stmt prepare(const std::string& sql);
  int64_t last_insert_id() const;
  int changes() const;
  int user_version();
  void set_user_version(int v);
  // How long a statement waits for another connection's write lock before DbBusy (10 s by default).
  void set_busy_timeout(int ms);
  const std::string& path() const { return path_; }
  sqlite3* raw() { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
};

class Stmt {
 public:
  Stmt(Db& db, const std::string& sql);
  ~Stmt();
  Stmt(Stmt&& o) noexcept;
  Stmt(const Stmt&) = delete;

  // Binds are 1-based like SQLite's; each returns *this so a call can chain them.
  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  Stmt& bind(int i, double v);
  Stmt& bind(int i, const std::string& v);  // bound as TEXT with its exact length (NUL bytes kept)
  Stmt& bind(int i, const char* v) { return bind(i, std::string(v)); }
  Stmt& bind_blob(int i, const void* p, size_t n);
  Stmt& bind_null(int i);

  bool step();  // true while a row is available
  void run();   // steps to completion, for statements without results
  void reset();  // ready to run again with new binds

  bool is_null(int col) const;
  int64_t i64(int col) const;
  double f64(int col) const;
  std::string text(int col) const;  // exact bytes, NUL included

 private:
  Db* db_;
  sqlite3_stmt* st_ = nullptr;
};

// BEGIN IMMEDIATE on construction, ROLLBACK on destruction unless commit() ran.
class Transaction {
 public:
  explicit Transaction(Db& db);
  ~Transaction();
  void commit();

 private:
  Db& db_;
  bool done_ = false;
};

}  // namespace hone
