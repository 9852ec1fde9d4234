#include "protocol/binary_from_text.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

namespace rproxy::protocol {

namespace {

enum : uint32_t {
    BOOL = 16, BYTEA = 17, NAME = 19, INT8 = 20, INT2 = 21, INT4 = 23, TEXT = 25, OID = 26, JSON = 114,
    FLOAT4 = 700, FLOAT8 = 701, BPCHAR = 1042, VARCHAR = 1043, DATE = 1082, TIME = 1083, TIMESTAMP = 1114,
    TIMESTAMPTZ = 1184, NUMERIC = 1700, UUID = 2950, JSONB = 3802,
};

struct ArrayType {
    uint32_t array, element;
};
constexpr ArrayType kArrays[] = {{1000, BOOL}, {1005, INT2}, {1007, INT4}, {1016, INT8}, {1021, FLOAT4},
                                 {1022, FLOAT8}, {1009, TEXT}, {1015, VARCHAR}, {1231, NUMERIC}, {2951, UUID}};

uint32_t element_of(uint32_t oid) {
    for (const auto& a : kArrays)
        if (a.array == oid) return a.element;
    return 0;
}

void put(std::string& out, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::optional<int64_t> parse_int(std::string_view t, int64_t lo, int64_t hi) {
    std::string s(t);
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (errno || end == s.c_str() || *end || v < lo || v > hi) return std::nullopt;
    return v;
}

std::optional<std::string> encode_float(std::string_view t, bool single) {
    std::string s(t);
    double v;
    if (s == "NaN") v = std::numeric_limits<double>::quiet_NaN();
    else if (s == "Infinity") v = std::numeric_limits<double>::infinity();
    else if (s == "-Infinity") v = -std::numeric_limits<double>::infinity();
    else {
        char* end = nullptr;
        v = std::strtod(s.c_str(), &end);
        if (end == s.c_str() || *end) return std::nullopt;
    }
    std::string out;
    if (single) {
        float f = s == "NaN" || s.find("Inf") != std::string::npos ? static_cast<float>(v) : std::strtof(s.c_str(), nullptr);
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        put(out, bits, 4);
    } else {
        uint64_t bits;
        std::memcpy(&bits, &v, 8);
        put(out, bits, 8);
    }
    return out;
}

int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::optional<std::string> encode_bytea(std::string_view t) {
    std::string out;
    if (t.substr(0, 2) == "\\x") {
        t.remove_prefix(2);
        if (t.size() % 2) return std::nullopt;
        for (std::size_t i = 0; i < t.size(); i += 2) {
            int h = hexval(t[i]), l = hexval(t[i + 1]);
            if (h < 0 || l < 0) return std::nullopt;
            out.push_back(static_cast<char>(h * 16 + l));
        }
        return out;
    }
    for (std::size_t i = 0; i < t.size(); ++i) {  // escape format
        if (t[i] != '\\') {
            out.push_back(t[i]);
        } else if (i + 1 < t.size() && t[i + 1] == '\\') {
            out.push_back('\\');
            ++i;
        } else if (i + 3 < t.size()) {
            out.push_back(static_cast<char>((t[i + 1] - '0') * 64 + (t[i + 2] - '0') * 8 + (t[i + 3] - '0')));
            i += 3;
        } else {
            return std::nullopt;
        }
    }
    return out;
}

std::optional<std::string> encode_uuid(std::string_view t) {
    std::string out;
    std::string hex;
    for (char c : t)
        if (c != '-') hex.push_back(c);
    if (hex.size() != 32) return std::nullopt;
    for (std::size_t i = 0; i < 32; i += 2) {
        int h = hexval(hex[i]), l = hexval(hex[i + 1]);
        if (h < 0 || l < 0) return std::nullopt;
        out.push_back(static_cast<char>(h * 16 + l));
    }
    return out;
}

// Days from 2000-01-01 (PostgreSQL's epoch) to a proleptic Gregorian date.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<int64_t>(doe) - 719468 - 10957;
}

// ISO "YYYY-MM-DD[ BC]" prefix: days since 2000-01-01; advances t.
std::optional<int64_t> parse_iso_date(std::string_view& t) {
    int y, m, d, n = 0;
    std::string s(t);
    if (std::sscanf(s.c_str(), "%d-%d-%d%n", &y, &m, &d, &n) != 3 || m < 1 || m > 12 || d < 1 || d > 31) return std::nullopt;
    t.remove_prefix(static_cast<std::size_t>(n));
    bool bc = false;
    std::size_t bcpos = t.find(" BC");
    if (bcpos != std::string_view::npos && bcpos + 3 == t.size()) {
        bc = true;
        t.remove_suffix(3);
    }
    return days_from_civil(bc ? 1 - y : y, static_cast<unsigned>(m), static_cast<unsigned>(d));
}

// "HH:MM:SS[.ffffff]" in microseconds; advances t.
std::optional<int64_t> parse_time(std::string_view& t) {
    int h, mi, n = 0;
    double sec;
    std::string s(t);
    if (std::sscanf(s.c_str(), "%d:%d:%lf%n", &h, &mi, &sec, &n) != 3) return std::nullopt;
    t.remove_prefix(static_cast<std::size_t>(n));
    return (int64_t(h) * 3600 + mi * 60) * 1000000 + std::llround(sec * 1000000);
}

std::optional<std::string> encode_timestamp(std::string_view t, bool with_zone) {
    std::string out;
    if (t == "infinity" || t == "-infinity") {
        put(out, static_cast<uint64_t>(t[0] == '-' ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max()), 8);
        return out;
    }
    if (t.size() > 3 && t.substr(t.size() - 3) == " BC") return std::nullopt;  // not encoded: left to the error
    auto days = parse_iso_date(t);
    if (!days || t.empty() || t[0] != ' ') return std::nullopt;
    t.remove_prefix(1);
    auto us = parse_time(t);
    if (!us) return std::nullopt;
    int64_t offset_s = 0;
    if (with_zone) {
        if (t.empty() || (t[0] != '+' && t[0] != '-')) return std::nullopt;
        int sign = t[0] == '-' ? -1 : 1;
        int oh = 0, om = 0, os = 0;
        std::string z(t.substr(1));
        if (std::sscanf(z.c_str(), "%d:%d:%d", &oh, &om, &os) < 1) return std::nullopt;
        offset_s = sign * (int64_t(oh) * 3600 + om * 60 + os);
    } else if (!t.empty()) {
        return std::nullopt;
    }
    int64_t v = *days * 86400000000LL + *us - offset_s * 1000000;
    put(out, static_cast<uint64_t>(v), 8);
    return out;
}

std::optional<std::string> encode_numeric(std::string_view t) {
    std::string out;
    auto header = [&](int16_t nd, int16_t weight, uint16_t sign, int16_t dscale) {
        put(out, static_cast<uint16_t>(nd), 2);
        put(out, static_cast<uint16_t>(weight), 2);
        put(out, sign, 2);
        put(out, static_cast<uint16_t>(dscale), 2);
    };
    if (t == "NaN") return header(0, 0, 0xC000, 0), out;
    if (t == "Infinity") return header(0, 0, 0xD000, 0), out;
    if (t == "-Infinity") return header(0, 0, 0xF000, 0), out;
    bool neg = !t.empty() && t[0] == '-';
    if (neg || (!t.empty() && t[0] == '+')) t.remove_prefix(1);
    std::size_t dot = t.find('.');
    std::string ip(t.substr(0, dot)), fp(dot == std::string_view::npos ? "" : t.substr(dot + 1));
    if (ip.empty() && fp.empty()) return std::nullopt;
    for (char c : ip + fp)
        if (c < '0' || c > '9') return std::nullopt;
    int16_t dscale = static_cast<int16_t>(fp.size());
    while (ip.size() % 4) ip.insert(ip.begin(), '0');
    while (fp.size() % 4) fp.push_back('0');
    std::vector<int16_t> digits;
    for (std::size_t i = 0; i < ip.size(); i += 4) digits.push_back(static_cast<int16_t>(std::stoi(ip.substr(i, 4))));
    int weight = static_cast<int>(digits.size()) - 1;
    for (std::size_t i = 0; i < fp.size(); i += 4) digits.push_back(static_cast<int16_t>(std::stoi(fp.substr(i, 4))));
    std::size_t first = 0;
    while (first < digits.size() && digits[first] == 0) {
        ++first;
        --weight;
    }
    std::size_t last = digits.size();
    while (last > first && digits[last - 1] == 0) --last;
    if (first == last) return header(0, 0, 0, dscale), out;
    header(static_cast<int16_t>(last - first), static_cast<int16_t>(weight), neg ? 0x4000 : 0, dscale);
    for (std::size_t i = first; i < last; ++i) put(out, static_cast<uint16_t>(digits[i]), 2);
    return out;
}

// One-dimensional array text ("{1,2,NULL}", quoted elements) to the binary array format.
std::optional<std::string> encode_array(uint32_t element, std::string_view t) {
    if (t.size() < 2 || t.front() != '{' || t.back() != '}') return std::nullopt;  // bounds or several dims
    t = t.substr(1, t.size() - 2);
    std::vector<std::optional<std::string>> items;
    std::size_t i = 0;
    while (i < t.size()) {
        std::string item;
        bool quoted = t[i] == '"';
        if (quoted) {
            ++i;
            while (i < t.size() && t[i] != '"') {
                if (t[i] == '\\' && i + 1 < t.size()) ++i;
                item.push_back(t[i++]);
            }
            if (i >= t.size()) return std::nullopt;
            ++i;
        } else {
            while (i < t.size() && t[i] != ',') {
                if (t[i] == '{') return std::nullopt;
                item.push_back(t[i++]);
            }
        }
        if (!quoted && item == "NULL") items.emplace_back(std::nullopt);
        else items.emplace_back(item);
        if (i < t.size()) {
            if (t[i] != ',') return std::nullopt;
            ++i;
        }
    }
    std::string out;
    bool has_null = false;
    for (const auto& it : items) has_null = has_null || !it;
    put(out, items.empty() ? 0 : 1, 4);
    put(out, has_null ? 1 : 0, 4);
    put(out, element, 4);
    if (!items.empty()) {
        put(out, items.size(), 4);
        put(out, 1, 4);
    }
    for (const auto& it : items) {
        if (!it) {
            put(out, 0xffffffffu, 4);
            continue;
        }
        auto v = binary_from_text(element, *it);
        if (!v) return std::nullopt;
        put(out, v->size(), 4);
        out += *v;
    }
    return out;
}

}  // namespace

bool binary_encodable(uint32_t oid) {
    switch (oid) {
        case BOOL: case BYTEA: case NAME: case INT8: case INT2: case INT4: case TEXT: case OID: case JSON:
        case FLOAT4: case FLOAT8: case BPCHAR: case VARCHAR: case DATE: case TIME: case TIMESTAMP:
        case TIMESTAMPTZ: case NUMERIC: case UUID: case JSONB:
            return true;
        default:
            return element_of(oid) != 0;
    }
}

std::optional<std::string> binary_from_text(uint32_t oid, std::string_view t) {
    std::string out;
    switch (oid) {
        case BOOL:
            if (t != "t" && t != "f") return std::nullopt;
            return std::string(1, t == "t" ? '\1' : '\0');
        case INT2:
            if (auto v = parse_int(t, INT16_MIN, INT16_MAX)) return put(out, static_cast<uint16_t>(*v), 2), out;
            return std::nullopt;
        case INT4:
            if (auto v = parse_int(t, INT32_MIN, INT32_MAX)) return put(out, static_cast<uint32_t>(*v), 4), out;
            return std::nullopt;
        case OID:
            if (auto v = parse_int(t, 0, UINT32_MAX)) return put(out, static_cast<uint32_t>(*v), 4), out;
            return std::nullopt;
        case INT8:
            if (auto v = parse_int(t, INT64_MIN, INT64_MAX)) return put(out, static_cast<uint64_t>(*v), 8), out;
            return std::nullopt;
        case FLOAT4: return encode_float(t, true);
        case FLOAT8: return encode_float(t, false);
        case TEXT: case VARCHAR: case BPCHAR: case NAME: case JSON:
            return std::string(t);  // binary text is the text itself, in the client encoding
        case JSONB: return std::string(1, '\1') + std::string(t);
        case BYTEA: return encode_bytea(t);
        case UUID: return encode_uuid(t);
        case DATE: {
            if (t == "infinity" || t == "-infinity")
                return put(out, t[0] == '-' ? 0x80000000u : 0x7fffffffu, 4), out;
            auto days = parse_iso_date(t);
            if (!days || !t.empty()) return std::nullopt;
            return put(out, static_cast<uint32_t>(*days), 4), out;
        }
        case TIME: {
            auto us = parse_time(t);
            if (!us || !t.empty()) return std::nullopt;
            return put(out, static_cast<uint64_t>(*us), 8), out;
        }
        case TIMESTAMP: return encode_timestamp(t, false);
        case TIMESTAMPTZ: return encode_timestamp(t, true);
        case NUMERIC: return encode_numeric(t);
        default:
            if (uint32_t el = element_of(oid)) return encode_array(el, t);
            return std::nullopt;
    }
}

}  // namespace rproxy::protocol
