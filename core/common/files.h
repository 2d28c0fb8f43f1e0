// File helpers: whole-file reads, atomic writes (temp + rename), read-only memory maps, file locks.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace hone {

std::string read_file(const std::string& path);
// Writes to "<path>.tmp-<pid>", fsyncs, then renames over path: readers never see half a file.
void write_file_atomic(const std::string& path, const std::string& data);
// Streams a file to "<path>.tmp-<pid>" and renames it over path on commit(); if it is destroyed
// before commit() the temporary file is removed and path is untouched.
class AtomicWriter {
 public:
  explicit AtomicWriter(const std::string& path);
  ~AtomicWriter();
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;
  void write(const void* data, size_t n);
  void commit();

 private:
  std::string path_, tmp_;
  int fd_ = -1;
};

bool file_exists(const std::string& path);
bool is_directory(const std::string& path);
// Creates the folder and its parents; throws hone::Error naming it when it is not there after.
void make_dirs(const std::string& path);
std::string join_path(const std::string& a, const std::string& b);
// Directory of the running executable (for finding the SentencePiece shim beside it).
std::string executable_dir();

// Read-only mmap of a whole file. Move-only; unmaps on destruction.
class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Done with these bytes: the whole pages inside [offset, offset + length) leave this process's
  // resident set (a later read maps them again from the page cache). A loader reading a model
  // once would otherwise hold the whole file resident on top of the weights it made from it.
  void drop(size_t offset, size_t length) const;

 private:
  void release();
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// An exclusive flock on a file (created when missing), held for the life of the object. The kernel
// drops it when the process dies, even by SIGKILL, so a free lock means its holder is gone; this is
// how Hone tells a live run or demo build from a dead one, never by a timer. Locks belong to the
// open file, so two objects in one process exclude each other as two processes do.
class FileLock {
 public:
  enum class Mode { Try, Wait };
  // Try: held() is false when another holder has it. Wait: blocks until it is free.
  FileLock(const std::string& path, Mode mode);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  bool held() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }
  // Replaces the file's text (who holds it, for messages); the lock is what counts.
  void note(const std::string& text) const;
  // Whether some holder has the lock on `path` now (false when there is no such file).
  static bool taken(const std::string& path);

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace hone
