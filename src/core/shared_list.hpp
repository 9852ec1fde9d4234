// A read-mostly vector whose copies share one buffer until one of them is changed. ParsedQuery is
// copied for every statement that reuses an earlier statement's facts (same shape, other
// literals); with this, that copy allocates nothing for the facts.
#pragma once
#include "core/pure_layer.hpp"

#include <memory>
#include <vector>

namespace rproxy {

template <class T>
class SharedList {
public:
    using const_iterator = typename std::vector<T>::const_iterator;

    SharedList() = default;
    explicit SharedList(std::vector<T>&& items) {
        if (!items.empty()) items_ = std::make_shared<std::vector<T>>(std::move(items));
    }
    SharedList(std::initializer_list<T> items) {
        if (items.size()) items_ = std::make_shared<std::vector<T>>(items);
    }

    std::size_t size() const { return items_ ? items_->size() : 0; }
    bool empty() const { return size() == 0; }
    const T& operator[](std::size_t i) const { return (*items_)[i]; }
    const T& front() const { return items_->front(); }
    const T& back() const { return items_->back(); }
    const_iterator begin() const { return items_ ? items_->cbegin() : const_iterator(); }
    const_iterator end() const { return items_ ? items_->cend() : const_iterator(); }

    void push_back(T item) { own().push_back(std::move(item)); }
    template <class... Args>
    T& emplace_back(Args&&... args) {
        return own().emplace_back(std::forward<Args>(args)...);
    }
    T& back() { return own().back(); }

    friend bool operator==(const SharedList& a, const SharedList& b) {
        if (a.items_ == b.items_) return true;
        if (a.size() != b.size()) return false;
        for (std::size_t i = 0; i < a.size(); ++i)
            if (!(a[i] == b[i])) return false;
        return true;
    }

private:
    std::vector<T>& own() {
        if (!items_) items_ = std::make_shared<std::vector<T>>();
        else if (items_.use_count() > 1) items_ = std::make_shared<std::vector<T>>(*items_);
        return *items_;
    }
    std::shared_ptr<std::vector<T>> items_;
};

}  // namespace rproxy
