// MetricsExporter: the file holds the latest content composed on the loop,
// with mode 0644 whatever the umask; a stop leaves the final state in it; a
// failed write is counted each time and logged once per distinct error. The
// io_context is not run: each write is asked for with writeNow and awaited
// with stop (which waits for the writer thread), no timer and no sleep.
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "base/log.h"
#include "daemon/metrics_exporter.h"
#include "test/support/temp_dir.h"

using namespace dmsd;

namespace {

std::string readFile(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

/// Sends this process's stderr to a file while it lives.
class StderrToFile {
public:
    explicit StderrToFile(const std::filesystem::path& path)
        : saved_(::dup(STDERR_FILENO)), path_(path) {
        std::fflush(stderr);
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ::dup2(fd, STDERR_FILENO);
        ::close(fd);
    }
    ~StderrToFile() {
        std::fflush(stderr);
        ::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
    }
    StderrToFile(const StderrToFile&) = delete;
    StderrToFile& operator=(const StderrToFile&) = delete;

    std::string text() const {
        std::fflush(stderr);
        return readFile(path_);
    }

private:
    int saved_;
    std::filesystem::path path_;
};

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
        ++n;
    }
    return n;
}

} // namespace

TEST_CASE("the metrics file holds the latest content, mode 0644, and the stop's final state",
          "[metrics]") {
    test::TempDir dir("dmsd-metrics");
    boost::asio::io_context io;
    int composed = 0;
    MetricsExporter exporter(io, [&] { return "dmsd_test " + std::to_string(++composed) + "\n"; });
    const std::filesystem::path file = dir / "dmsd.prom";
    MetricsSettings settings;
    settings.textfile = file.string();

    const mode_t umask = ::umask(077); // the service's UMask
    exporter.start(settings);          // writes at once
    for (int i = 0; i < 20; ++i) {
        exporter.writeNow();
    }
    exporter.stop();
    ::umask(umask);

    CHECK(composed == 21);
    CHECK(readFile(file) == "dmsd_test 21\n"); // the latest, not a stale one
    struct stat st {};
    REQUIRE(::stat(file.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0644);
    const MetricsWriterStats stats = exporter.stats();
    CHECK(stats.written >= 1); // a write still waiting is replaced by the next
    CHECK(stats.written <= 21);
    CHECK(stats.failed == 0);
    CHECK(stats.bytes == std::string("dmsd_test 21\n").size());
    CHECK(stats.lastError.empty());
    // Nothing left beside it for node_exporter to trip on.
    std::size_t entries = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) {
        ++entries;
    }
    CHECK(entries == 1);
}

TEST_CASE("a failed metrics write is counted each time and logged once per distinct error",
          "[metrics]") {
    test::TempDir dir("dmsd-metrics");
    log::configure(log::Backend::Stderr);
    StderrToFile captured(dir / "stderr.txt");
    boost::asio::io_context io;
    MetricsExporter exporter(io, [] { return std::string("dmsd_test 1\n"); });
    const std::filesystem::path textfileDir = dir / "textfile";
    MetricsSettings settings;
    settings.textfile = (textfileDir / "dmsd.prom").string();

    exporter.start(settings); // the directory does not exist
    exporter.stop();
    for (int i = 0; i < 3; ++i) {
        exporter.writeNow();
        exporter.stop();
    }
    MetricsWriterStats stats = exporter.stats();
    CHECK(stats.failed == 4);
    CHECK(stats.written == 0);
    CHECK_FALSE(stats.lastError.empty());
    std::string logged = captured.text();
    INFO(logged);
    CHECK(count(logged, "Metrics not written to " + settings.textfile) == 1);
    CHECK(count(logged, "DMS_EVENT=metrics_failed") == 1);
    CHECK(count(logged, "DMS_METRICS_FILE=" + settings.textfile) == 1);

    // It works again: counted, the error forgotten; failing again is news.
    std::filesystem::create_directory(textfileDir);
    exporter.writeNow();
    exporter.stop();
    stats = exporter.stats();
    CHECK(stats.written == 1);
    CHECK(stats.lastError.empty());
    std::filesystem::remove_all(textfileDir);
    exporter.writeNow();
    exporter.stop();
    stats = exporter.stats();
    CHECK(stats.failed == 5);
    logged = captured.text();
    CHECK(count(logged, "DMS_EVENT=metrics_failed") == 2);
}
