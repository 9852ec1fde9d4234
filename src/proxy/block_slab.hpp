// Blocks of one size carved from mapped 256 KiB chunks, for the objects a worker keeps per client.
// Made from the heap one by one, each session lay between the short-lived allocations of its own
// startup (coroutine frames, the startup packet, the sessions-view record): freed, those left holes
// that the heap could not give back, and an idle client cost a fifth more than its objects. Apart
// from the heap, the sessions leave it free to shrink after a burst of logins.
#pragma once
#include "core/pure_layer.hpp"

#include <sys/mman.h>

#include <cstddef>
#include <new>
#include <vector>

namespace rproxy {

class BlockSlab {
public:
    BlockSlab() = default;
    BlockSlab(const BlockSlab&) = delete;
    BlockSlab& operator=(const BlockSlab&) = delete;
    ~BlockSlab() {
        for (void* c : chunks_) ::munmap(c, kChunk);
    }

    // The first request fixes the block size; requests of any other size go to the heap.
    void* allocate(std::size_t n) {
        if (block_ == 0) block_ = (n + kAlign - 1) / kAlign * kAlign;
        if (n > block_ || n + kAlign <= block_) return ::operator new(n);
        if (free_) {
            Free* f = free_;
            free_ = f->next;
            return f;
        }
        if (carved_ == per_chunk() || chunks_.empty()) {
            // Pages become resident only as blocks are carved from them.
            void* c = ::mmap(nullptr, kChunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (c == MAP_FAILED) throw std::bad_alloc();
            chunks_.push_back(c);
            carved_ = 0;
        }
        return static_cast<char*>(chunks_.back()) + block_ * carved_++;
    }
    void deallocate(void* p, std::size_t n) {
        if (n > block_ || n + kAlign <= block_) {
            ::operator delete(p);
            return;
        }
        free_ = new (p) Free{free_};
    }

private:
    static constexpr std::size_t kAlign = alignof(std::max_align_t);
    static constexpr std::size_t kChunk = 256 * 1024;
    struct Free {
        Free* next;
    };
    std::size_t per_chunk() const { return kChunk / block_; }

    std::size_t block_ = 0;
    std::vector<void*> chunks_;  // the last one is being carved
    std::size_t carved_ = 0;
    Free* free_ = nullptr;
};

// For std::allocate_shared: the object and its control block in one slab block.
template <class T>
struct SlabAllocator {
    using value_type = T;
    BlockSlab* slab;
    explicit SlabAllocator(BlockSlab* s) : slab(s) {}
    template <class U>
    SlabAllocator(const SlabAllocator<U>& o) : slab(o.slab) {}
    T* allocate(std::size_t n) { return static_cast<T*>(slab->allocate(n * sizeof(T))); }
    void deallocate(T* p, std::size_t n) { slab->deallocate(p, n * sizeof(T)); }
    template <class U>
    bool operator==(const SlabAllocator<U>& o) const { return slab == o.slab; }
    template <class U>
    bool operator!=(const SlabAllocator<U>& o) const { return slab != o.slab; }
};

}  // namespace rproxy
