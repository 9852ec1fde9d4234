#include "core/parameter_hook.hpp"

#include <charconv>

namespace rproxy {

std::optional<ParameterHook> parse_parameter_hook(std::string_view value) {
    constexpr std::string_view kTag = "PGPROXY,";
    if (value.substr(0, kTag.size()) != kTag) return std::nullopt;
    ParameterHook hook;
    bool has_key = false;
    std::string_view rest = value.substr(kTag.size());
    while (true) {
        std::size_t comma = rest.find(',');
        std::string_view opt = rest.substr(0, comma);
        if (opt.empty()) return std::nullopt;
        std::size_t colon = opt.find(':');
        std::string_view name = opt.substr(0, colon);
        std::string_view arg = colon == std::string_view::npos ? std::string_view() : opt.substr(colon + 1);
        if (name == "NO_CACHE" && colon == std::string_view::npos) {
            hook.no_cache = true;
        } else if (name == "TTL" && colon != std::string_view::npos) {
            int ttl = 0;
            auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), ttl);
            if (arg.empty() || ec != std::errc() || end != arg.data() + arg.size() || ttl < 0 || hook.ttl_seconds)
                return std::nullopt;
            hook.ttl_seconds = ttl;
        } else if (name == "CACHE_KEY" && colon != std::string_view::npos) {
            if (arg.empty() || has_key) return std::nullopt;
            hook.caller_key = std::string(arg);
            has_key = true;
        } else if (name.empty()) {
            return std::nullopt;
        } else {
            hook.unknown_options++;
        }
        if (comma == std::string_view::npos) break;
        rest = rest.substr(comma + 1);
    }
    return hook;
}

}  // namespace rproxy
