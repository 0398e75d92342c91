// base/redact.h: secrets shown as *** wherever dmsd writes them.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "base/redact.h"

using namespace dmsd;

TEST_CASE("redactUrl hides user info and secret query values", "[redact]") {
    CHECK(redactUrl("http://user:hunter2@127.0.0.1:11434/") == "http://***@127.0.0.1:11434/");
    CHECK(redactUrl("http://token@host") == "http://***@host");
    CHECK(redactUrl("user:hunter2@host:11434") == "***@host:11434");
    CHECK(redactUrl("http://h/api?api_key=abc&x=1") == "http://h/api?api_key=***&x=1");
    CHECK(redactUrl("http://127.0.0.1:11434") == "http://127.0.0.1:11434");
    // An '@' in the path is not user info.
    CHECK(redactUrl("http://h/a@b") == "http://h/a@b");
}

TEST_CASE("redactSecrets finds secrets in free text", "[redact]") {
    CHECK(redactSecrets("llm.url: \"http://me:pa55@10.0.0.1:11434\": user info is not supported") ==
          "llm.url: \"http://***@10.0.0.1:11434\": user info is not supported");
    CHECK(redactSecrets("two http://a:b@x and http://c:d@y/p") ==
          "two http://***@x and http://***@y/p");
    CHECK(redactSecrets("Authorization: Bearer sk-123.abc") == "Authorization: Bearer ***");
    CHECK(redactSecrets("token=abc password=xyz, mode=fast") ==
          "token=*** password=***, mode=fast");
    CHECK(redactSecrets("{\"api_key\": \"k-1\"}") == "{\"api_key\": \"***\"}");
    CHECK(redactSecrets("{\"token\":\"k-1\",\"n\":1}") == "{\"token\":\"***\",\"n\":1}");
    // Compact JSON with ordinary keys is left alone.
    CHECK(redactSecrets("{\"state\":\"running\",\"keep_alive\":\"5m\"}") ==
          "{\"state\":\"running\",\"keep_alive\":\"5m\"}");
    const std::vector<std::string> known{"s3cr3t-file-key", ""};
    CHECK(redactSecrets("sent s3cr3t-file-key twice: s3cr3t-file-key", known) ==
          "sent *** twice: ***");
    // Ordinary messages are left alone.
    const std::string plain =
        "/etc/dmsd/conf.d/50.yaml:3:8: llm.keep_alive: invalid duration \"x\" (accepted: 1..2)";
    CHECK(redactSecrets(plain) == plain);
    CHECK(looksSecretFree("nothing here"));
    // "key" alone is a word of messages, not a secret's name.
    const std::string unknownKey = "main.yaml:2:3: capture.fps: unknown key: byte 0xFF";
    CHECK(redactSecrets(unknownKey) == unknownKey);
    CHECK(redactSecrets("is not key=value") == "is not key=value");
    CHECK(redactSecrets("llm.api_key: sk-1 x-api-key=sk-2") == "llm.api_key: *** x-api-key=***");
}

TEST_CASE("publicText is UTF-8 without control characters or secrets", "[redact]") {
    CHECK(publicText("http://u:p@h\xFF\x1B") == "http://***@h\xEF\xBF\xBD\xEF\xBF\xBD");
}
