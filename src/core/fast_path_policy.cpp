#include "core/fast_path_policy.hpp"

#include <charconv>

#include "core/format_codes.hpp"

namespace rproxy {

namespace {

constexpr uint32_t kInt4 = 23, kInt8 = 20, kOid = 26;
constexpr int32_t kInvWrite = 0x00020000;  // libpq-fs.h INV_WRITE

const std::vector<FastPathFunction>& functions() {
    static const std::vector<FastPathFunction> fns = {
        {952, "lo_open", {kOid, kInt4}},
        {953, "lo_close", {kInt4}},
        {954, "loread", {kInt4, kInt4}},
        {956, "lo_lseek", {kInt4, kInt4, kInt4}},
        {958, "lo_tell", {kInt4}},
        {3170, "lo_lseek64", {kInt4, kInt8, kInt4}},
        {3171, "lo_tell64", {kInt4}},
    };
    return fns;
}

// An int4 argument in the format it was sent in; nullopt when it cannot be read.
std::optional<int32_t> int4_argument(const std::optional<std::string>& v, int16_t format) {
    if (!v) return std::nullopt;
    if (format == 1) {
        if (v->size() != 4) return std::nullopt;
        uint32_t u = 0;
        for (char c : *v) u = (u << 8) | static_cast<unsigned char>(c);
        return static_cast<int32_t>(u);
    }
    int32_t n = 0;
    const char* end = v->data() + v->size();
    auto [p, ec] = std::from_chars(v->data(), end, n);
    if (ec != std::errc() || p != end) return std::nullopt;
    return n;
}

FastPathVerdict refuse(std::string sqlstate, std::string message) {
    FastPathVerdict v;
    v.sqlstate = std::move(sqlstate);
    v.message = std::move(message);
    return v;
}

}  // namespace

const FastPathFunction* fast_path_function(uint32_t oid) {
    for (const auto& f : functions())
        if (f.oid == oid) return &f;
    return nullptr;
}

constexpr uint32_t kSetConfigOid = 2078;  // pg_proc.dat: set_config(text, text, bool)

FastPathVerdict judge_fast_path(uint32_t oid, const std::vector<int16_t>& formats,
                                const std::vector<std::optional<std::string>>& args, int16_t result_format,
                                const FirewallConfig& cfg, Access access) {
    const FastPathFunction* f = fast_path_function(oid);
    if (access == Access::ReadWrite) {
        if (f && (cfg.denied_functions.count(f->name) || cfg.denied_functions.count(std::string("pg_catalog.") + f->name)))
            return refuse("25006", std::string("function ") + f->name + "() is not allowed: it is listed in pg_rproxy.denied_functions");
        if (oid == kSetConfigOid)  // set_config('role' | 'session_authorization', ...) by OID
            return refuse("25006", "fast-path calls of set_config() are not allowed through pg_rproxy");
        if (!f && !cfg.denied_functions.empty())
            return refuse("25006", "fast-path call of function " + std::to_string(oid) +
                                       " refused: only large-object functions can be checked against pg_rproxy.denied_functions");
        FastPathVerdict v;
        v.allowed = true;
        v.function = f;
        return v;
    }
    if (!f) {
        return refuse("25006", "fast-path function calls are not allowed through pg_rproxy, except to read large "
                               "objects (function " + std::to_string(oid) + ")");
    }
    if (cfg.denied_functions.count(f->name) || cfg.denied_functions.count(std::string("pg_catalog.") + f->name)) {
        return refuse("25006", std::string("function ") + f->name + "() is not allowed: it is listed in pg_rproxy.denied_functions");
    }
    if (args.size() != f->arg_types.size()) {
        return refuse("08P01", "function call message contains " + std::to_string(args.size()) +
                                   " arguments but function requires " + std::to_string(f->arg_types.size()));
    }
    for (int16_t fmt : formats)
        if (fmt != 0 && fmt != 1) return refuse("22023", "unsupported format code: " + std::to_string(fmt));
    if (result_format != 0 && result_format != 1)
        return refuse("22023", "unsupported format code: " + std::to_string(result_format));
    if (oid == 952) {  // lo_open(oid, mode): reading only
        std::optional<int32_t> mode = int4_argument(args[1], format_for(formats, 1));
        if (!mode || (*mode & kInvWrite))
            return refuse("25006", "lo_open() is allowed through pg_rproxy for reading only (mode INV_READ)");
    }
    FastPathVerdict v;
    v.allowed = true;
    v.function = f;
    return v;
}

}  // namespace rproxy
