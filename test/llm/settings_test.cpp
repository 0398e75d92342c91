#include <catch2/catch.hpp>

#include "llm/server_url.h"
#include "llm/settings.h"

using namespace dmsd;
using namespace std::chrono_literals;

TEST_CASE("model server URLs: http[s]://host[:port][/prefix]", "[llm][url]") {
    for (const char* url : {"http://127.0.0.1:11434", "http://localhost", "http://[::1]:11434",
                            "http://ollama:11434/", "HTTP://host:1", "https://host",
                            "http://host/api", "https://proxy:8443/ollama/a/"}) {
        INFO(url);
        CHECK_FALSE(serverUrlProblem(url));
    }
    CHECK(serverUrlProblem("127.0.0.1:11434") ==
          "\"127.0.0.1:11434\" has no scheme; write it as http://127.0.0.1:11434");
    CHECK(serverUrlProblem("ftp://host") ==
          "\"ftp://host\": scheme \"ftp\" is not supported, use http or https");
    CHECK(serverUrlProblem("http://host:0") ==
          "\"http://host:0\": port \"0\" is not a number in 1..65535");
    CHECK(serverUrlProblem("http://host:70000")->find("port \"70000\"") != std::string::npos);
    CHECK(serverUrlProblem("http://host:")->find("port \"\"") != std::string::npos);
    CHECK(serverUrlProblem("http://host/a/../b") ==
          "\"http://host/a/../b\": the path prefix \"/a/../b\" must be plain segments "
          "(/some/prefix), no empty, . or .. segment");
    CHECK(serverUrlProblem("http://host//a"));
    CHECK(serverUrlProblem("http://host/a/."));
    // The message never repeats the password (it reaches the journal and D-Bus).
    CHECK(serverUrlProblem("http://user:pw@host") ==
          "\"http://***@host\": user info is not supported");
    CHECK(serverUrlProblem("user:s3cret@host:11434") ==
          "\"***@host:11434\" has no scheme; write it as http://***@host:11434");
    CHECK(serverUrlProblem("https://u:s3cret@host")->find("s3cret") == std::string::npos);
    CHECK(serverUrlProblem("http://u:s3cret@host/api")->find("s3cret") == std::string::npos);
    CHECK(serverUrlProblem("http://host?token=s3cret")->find("s3cret") == std::string::npos);
    CHECK(serverUrlProblem("http://host?x=1") ==
          "\"http://host?x=1\": a query or fragment is not allowed");
    CHECK(serverUrlProblem("http://host#f"));
    CHECK(serverUrlProblem("http:///x"));
    CHECK(serverUrlProblem("http://ho st"));
}

TEST_CASE("https and a path prefix reach the endpoint the client connects to", "[llm][url]") {
    const auto tls = parseServerUrl("https://models.internal/", nullptr);
    REQUIRE(tls);
    CHECK(tls->tls);
    CHECK(tls->port == "443");
    CHECK(tls->pathPrefix.empty());
    const auto prefixed = parseServerUrl("http://127.0.0.1:8080/some/prefix/", nullptr);
    REQUIRE(prefixed);
    CHECK_FALSE(prefixed->tls);
    CHECK(prefixed->port == "8080");
    CHECK(prefixed->pathPrefix == "/some/prefix");
    CHECK(prefixed->hostHeader == "127.0.0.1:8080");
}

TEST_CASE("the endpoint is what the client connects to", "[llm][url]") {
    const auto endpoint = parseServerUrl("http://[::1]:11434/", nullptr);
    REQUIRE(endpoint);
    CHECK(endpoint->host == "::1");
    CHECK(endpoint->port == "11434");
    CHECK(endpoint->hostHeader == "[::1]:11434");
    const auto plain = parseServerUrl("http://ollama", nullptr);
    REQUIRE(plain);
    CHECK(plain->port == "80");
    CHECK(plain->hostHeader == "ollama");
}

TEST_CASE("a change of llm: restarts the least that depends on it", "[llm][settings]") {
    const LlmSettings before;
    LlmSettings after = before;
    CHECK(llmRestart(before, after) == LlmRestart::None);
    after.scheduler.mode = LlmMode::Combined;
    CHECK(llmRestart(before, after) == LlmRestart::Scheduler);
    after.scheduler.cache.entries = 0;
    CHECK(llmRestart(before, after) == LlmRestart::Scheduler);
    after.model.options.numCtx = 4096;
    CHECK(llmRestart(before, after) == LlmRestart::Client);
    after.model.name = "qwen2.5vl:3b";
    CHECK(llmRestart(before, after) == LlmRestart::Client);
    after.server.maxInFlight = 2;
    CHECK(llmRestart(before, after) == LlmRestart::Transport);
    LlmSettings urlOnly = before;
    urlOnly.server.url = "http://10.0.0.2:11434";
    CHECK(llmRestart(before, urlOnly) == LlmRestart::Transport);
}
