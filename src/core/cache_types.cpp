#include "core/cache_types.hpp"

namespace rproxy {

const char* uncacheable_name(Uncacheable u) {
    switch (u) {
        case Uncacheable::Disabled: return "disabled";
        case Uncacheable::NotDeterministic: return "not_deterministic";
        case Uncacheable::InTransaction: return "in_transaction";
        case Uncacheable::SessionState: return "session_state";
        case Uncacheable::CatalogQuery: return "catalog_query";
        case Uncacheable::Hint: return "no_cache_hint";
        case Uncacheable::TooLarge: return "too_large";
        case Uncacheable::Error: return "error";
        case Uncacheable::Count: break;
    }
    return "unknown";
}

}  // namespace rproxy
