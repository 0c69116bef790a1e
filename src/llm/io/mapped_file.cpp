// Read-only whole-file mappings (see mapped_file.h).
#include "sensecf/llm/io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "sensecf/core/error.h"

namespace sensecf::llm {

std::string MappedFile::system_error(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

MappedFile MappedFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(system_error("cannot open", path), "does the file exist and is it readable?");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const auto message = system_error("cannot stat", path);
    ::close(fd);
    throw Error(message, "does the file exist and is it readable?");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file",
                "pass the weight file itself, or the model directory that holds it");
  }
  MappedFile f;
  f.size_ = static_cast<std::size_t>(st.st_size);
  if (f.size_ > 0) {
    void* map = ::mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    const int map_errno = errno;
    ::close(fd);
    if (map == MAP_FAILED)
      throw Error("cannot mmap " + path + ": " + std::strerror(map_errno),
                  "is the address space limited (ulimit -v)? Or is the file on a file system without mmap?");
    f.map_ = map;
  } else {
    ::close(fd);
  }
  return f;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : map_(std::exchange(other.map_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (map_) ::munmap(map_, size_);
    map_ = std::exchange(other.map_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (map_) ::munmap(map_, size_);
}

}  // namespace sensecf::llm
