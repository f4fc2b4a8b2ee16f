#include "harness/sqlite_db.h"

#include <sqlite3.h>

#include <fmt/format.h>

#include "harness/error.h"

namespace embeval {

SqliteDb::SqliteDb(const std::filesystem::path& file, bool create) : path_(file) {
  int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
  std::error_code ec;
  if (!create && !std::filesystem::is_regular_file(file, ec))
    fail("database not found");
  if (sqlite3_open_v2(file.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw UserError(fmt::format("{}: cannot open database: {}", file.string(), msg));
  }
  // Another run may be writing: wait for its lock rather than failing.
  sqlite3_busy_timeout(db_, 120000);
  sqlite3_extended_result_codes(db_, 1);
}

SqliteDb::~SqliteDb() { sqlite3_close_v2(db_); }

namespace {

// What a failed statement tells the user: the cases a user can fix first
// (a read-only file, a full disk), SQLite's own words in brackets; other
// errors as SQLite gives them, with the statement.
std::string statement_error(sqlite3* db, const std::string& sql) {
  const int code = sqlite3_extended_errcode(db) & 0xff;
  const std::string msg = sqlite3_errmsg(db);
  if (code == SQLITE_READONLY)
    return fmt::format("cannot write: the database is read-only ({}); check the file's and its folder's "
                       "permissions, or pass another --db",
                       msg);
  if (code == SQLITE_FULL) return fmt::format("cannot write: the disk is full ({})", msg);
  if (code == SQLITE_IOERR) return fmt::format("cannot write: input/output error, e.g. a full disk ({})", msg);
  return fmt::format("SQL error: {} in: {}", msg, sql);
}

}  // namespace

void SqliteDb::fail(const std::string& what) const {
  std::string msg = what;
  if (db_ && sqlite3_errcode(db_) == SQLITE_NOTADB) msg = "not an SQLite database (or it is encrypted or corrupt)";
  else if (db_ && sqlite3_errcode(db_) != SQLITE_OK && what.find(':') == std::string::npos)
    msg += std::string(": ") + sqlite3_errmsg(db_);
  throw UserError(fmt::format("{}: {}", path_.string(), msg));
}

void SqliteDb::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    sqlite3_free(err);  // sqlite3_errmsg still has it
    if (sqlite3_errcode(db_) == SQLITE_NOTADB) fail("not an SQLite database");
    fail(statement_error(db_, sql));
  }
}

int64_t SqliteDb::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

SqliteStatement::SqliteStatement(SqliteDb& db, const std::string& sql) : db_(db), sql_(sql) {
  if (sqlite3_prepare_v2(db.handle(), sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) {
    if (sqlite3_errcode(db.handle()) == SQLITE_NOTADB) db.fail("not an SQLite database");
    db.fail(statement_error(db.handle(), sql));
  }
}

SqliteStatement::~SqliteStatement() { sqlite3_finalize(stmt_); }

SqliteStatement& SqliteStatement::bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); return *this; }
SqliteStatement& SqliteStatement::bind(int i, double v) { sqlite3_bind_double(stmt_, i, v); return *this; }
SqliteStatement& SqliteStatement::bind(int i, const std::string& v) {
  sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
SqliteStatement& SqliteStatement::bind(int i, const char* v) { return bind(i, std::string(v)); }
SqliteStatement& SqliteStatement::bind(int i, std::optional<double> v) {
  return v ? bind(i, *v) : bind_null(i);
}
SqliteStatement& SqliteStatement::bind_null(int i) { sqlite3_bind_null(stmt_, i); return *this; }

bool SqliteStatement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  db_.fail(statement_error(db_.handle(), sql_));
}

void SqliteStatement::run() {
  while (step()) {
  }
}

void SqliteStatement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

bool SqliteStatement::is_null(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
int64_t SqliteStatement::column_int(int c) const { return sqlite3_column_int64(stmt_, c); }
double SqliteStatement::column_double(int c) const { return sqlite3_column_double(stmt_, c); }
std::optional<double> SqliteStatement::column_optional_double(int c) const {
  if (is_null(c)) return std::nullopt;
  return column_double(c);
}
std::string SqliteStatement::column_text(int c) const {
  const unsigned char* t = sqlite3_column_text(stmt_, c);
  return t ? std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(sqlite3_column_bytes(stmt_, c)))
           : std::string();
}

SqliteTransaction::SqliteTransaction(SqliteDb& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }

SqliteTransaction::~SqliteTransaction() {
  if (!done_) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void SqliteTransaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace embeval
