#include "notify/settings.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include <fmt/format.h>

#include "base/can_id.h"
#include "base/text.h"

namespace dmsd {
namespace {

bool isBlank(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

} // namespace

std::optional<std::string> busProblem(std::string_view bus) {
    if (bus == "system" || bus == "session") {
        return std::nullopt;
    }
    if (bus.find(':') == std::string_view::npos) {
        std::string hint;
        if (auto near = nearMiss(bus, {"system", "session"})) {
            hint = fmt::format("; did you mean '{}'?", *near);
        }
        return fmt::format("\"{}\" is neither system, session nor a D-Bus address{}", bus, hint);
    }
    // transport:key=value,key=value;transport:...
    std::string_view rest = bus;
    while (!rest.empty()) {
        const std::size_t semicolon = rest.find(';');
        const std::string_view part = rest.substr(0, semicolon);
        rest =
            semicolon == std::string_view::npos ? std::string_view{} : rest.substr(semicolon + 1);
        if (part.empty()) {
            continue;
        }
        const std::size_t colon = part.find(':');
        const std::string_view transport = part.substr(0, colon);
        const bool transportOk =
            colon != std::string_view::npos && !transport.empty() &&
            std::all_of(transport.begin(), transport.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
            });
        if (!transportOk) {
            return fmt::format("\"{}\" is not a D-Bus address: \"{}\" lacks a transport name", bus,
                               part);
        }
        std::string_view pairs = part.substr(colon + 1);
        while (!pairs.empty()) {
            const std::size_t comma = pairs.find(',');
            const std::string_view pair = pairs.substr(0, comma);
            pairs = comma == std::string_view::npos ? std::string_view{} : pairs.substr(comma + 1);
            const std::size_t equals = pair.find('=');
            if (equals == 0 || equals == std::string_view::npos || equals + 1 == pair.size()) {
                return fmt::format("\"{}\" is not a D-Bus address: \"{}\" is not key=value", bus,
                                   pair);
            }
        }
    }
    return std::nullopt;
}

std::optional<std::string> interfaceProblem(std::string_view name) {
    if (name.empty()) {
        return std::string("the interface name is empty");
    }
    if (name.size() > 15) {
        return fmt::format("\"{}\" is longer than 15 characters", name);
    }
    if (name == "." || name == ".." ||
        std::any_of(name.begin(), name.end(), [](char c) { return c == '/' || isBlank(c); })) {
        return fmt::format("\"{}\" is not a network interface name", name);
    }
    return std::nullopt;
}

DbusBusKind dbusBusKind(const DbusSettings& settings) {
    if (settings.bus == "system") {
        return DbusBusKind::System;
    }
    if (settings.bus == "session") {
        return DbusBusKind::Session;
    }
    return DbusBusKind::Address;
}

std::optional<std::string> CanSettings::idsProblem(const CanSettings& settings) {
    if (settings.alertId != settings.heartbeatId) {
        return std::nullopt;
    }
    return fmt::format("alert_id and heartbeat_id are both {}; receivers tell the frames apart "
                       "by id",
                       formatCanId(settings.alertId));
}

} // namespace dmsd
