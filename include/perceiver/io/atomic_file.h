// Atomic whole-file writes and checked whole-file reads. A write goes to `<path>.tmp.<pid>` in
// the same directory, is flushed and fsync'ed, then renamed over `path` and the directory is
// fsync'ed, so readers see either the old file or the complete new one, never a torn write.
// Errors read "[atomic_write] <path>: <what failed>: <errno text>".
#pragma once

#include <cstddef>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace perceiver::io {

// Calls writer(f) on the temporary file, then commits it. If the writer throws, or any write,
// flush, sync or rename fails, the temporary file is removed, `path` is left untouched and an
// Error (or the writer's own exception) propagates.
void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& writer);

// Atomically writes `size` bytes from `data` to `path`.
void write_file_atomic(const std::string& path, const void* data, size_t size);
void write_file_atomic(const std::string& path, const std::string& bytes);

// Removes `<name>.tmp.<pid>` files in `dir` whose writer process no longer runs (left behind by
// a kill -9 during a write); files of live processes are kept. Returns the names removed.
std::vector<std::string> remove_stale_temp_files(const std::string& dir);

// Whole-file read; Error "[read_file] <path>: ..." if missing, a directory or unreadable.
std::string read_file(const std::string& path);

// fwrite that throws "[<component>] <path>: write failed ..." on a short write.
void write_all(std::FILE* f, const void* data, size_t size, const std::string& component,
               const std::string& path);

}  // namespace perceiver::io
