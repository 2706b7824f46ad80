// A stand-in for libFuzzer's main() when the compiler has none (g++): runs
// LLVMFuzzerTestOneInput over every file of a corpus directory, if one is
// given, then over pseudo-random inputs from a fixed seed. Deterministic, so
// the fuzz target doubles as a regression test in CI.
//
//   case_machine_fuzz [--runs N] [--seed S] [CORPUS_DIR_OR_FILE...]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

constexpr size_t kMaxRandomSize = 512;

void RunOne(const std::vector<uint8_t>& input) {
  // A copy in a buffer of its exact size, so ASan sees reads past the end.
  std::unique_ptr<uint8_t[]> copy(new uint8_t[input.size()]);
  if (!input.empty()) std::memcpy(copy.get(), input.data(), input.size());
  LLVMFuzzerTestOneInput(copy.get(), input.size());
}

// Runs every regular file under `path` (or `path` itself); returns how many.
long RunCorpus(const std::filesystem::path& path) {
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_directory(path)) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(path)) {
      if (e.is_regular_file()) files.push_back(e.path());
    }
  } else {
    files.push_back(path);
  }
  std::sort(files.begin(), files.end());  // stable order across file systems
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "fuzz_driver: cannot read %s\n", f.c_str());
      std::exit(2);
    }
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
    RunOne(bytes);
  }
  return static_cast<long>(files.size());
}

bool ParseCount(const char* text, long long* out) {
  char* end = nullptr;
  long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < 0) return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  long long runs = 20000;
  long long seed = 20240601;
  std::vector<std::string> corpora;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--runs" || arg == "--seed") && i + 1 < argc) {
      if (!ParseCount(argv[++i], arg == "--runs" ? &runs : &seed)) {
        std::fprintf(stderr, "fuzz_driver: %s needs a non-negative integer\n", arg.c_str());
        return 2;
      }
    } else if (arg.rfind("--", 0) == 0) {
      std::fprintf(stderr, "usage: %s [--runs N] [--seed S] [CORPUS_DIR_OR_FILE...]\n", argv[0]);
      return 2;
    } else {
      corpora.push_back(arg);
    }
  }

  const auto start = std::chrono::steady_clock::now();
  long corpus_files = 0;
  for (const auto& c : corpora) corpus_files += RunCorpus(c);

  std::mt19937_64 rng(static_cast<uint64_t>(seed));
  std::uniform_int_distribution<size_t> size_dist(0, kMaxRandomSize);
  std::uniform_int_distribution<int> byte_dist(0, 255);
  std::vector<uint8_t> input;
  for (long long r = 0; r < runs; ++r) {
    input.resize(size_dist(rng));
    for (auto& b : input) b = static_cast<uint8_t>(byte_dist(rng));
    RunOne(input);
  }

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double total = static_cast<double>(corpus_files + runs);
  std::printf("fuzz_driver: %ld corpus files + %lld random inputs in %.2f s (%.0f execs/s)\n",
              corpus_files, runs, seconds, seconds > 0 ? total / seconds : 0.0);
  return 0;
}
