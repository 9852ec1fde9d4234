// BlockSlab: blocks of the first size asked are carved side by side and reused once freed; other
// sizes go to the heap; shared_ptrs made with SlabAllocator live in it.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "proxy/block_slab.hpp"

using rproxy::BlockSlab;
using rproxy::SlabAllocator;

TEST(BlockSlab, BlocksAreAdjacentAndReused) {
    BlockSlab slab;
    std::vector<char*> blocks;
    for (int i = 0; i < 1000; ++i) blocks.push_back(static_cast<char*>(slab.allocate(200)));
    EXPECT_EQ(blocks[1] - blocks[0], 208) << "rounded to the alignment, side by side";
    std::set<char*> distinct(blocks.begin(), blocks.end());
    EXPECT_EQ(distinct.size(), blocks.size());
    for (char* b : blocks) std::memset(b, 0x5a, 200);  // every block is writable (ASan checks the bounds)
    slab.deallocate(blocks[500], 200);
    EXPECT_EQ(slab.allocate(200), blocks[500]) << "a freed block is the next one given";
    void* other = slab.allocate(64);  // another size: from the heap
    slab.deallocate(other, 64);
    for (char* b : blocks) slab.deallocate(b, 200);
}

TEST(BlockSlab, SharedPointersLiveInTheSlab) {
    BlockSlab slab;
    struct Session {
        std::string name;
        int weight[40];
    };
    std::vector<std::shared_ptr<Session>> sessions;
    for (int i = 0; i < 600; ++i) {  // several chunks
        auto s = std::allocate_shared<Session>(SlabAllocator<Session>(&slab));
        s->name = "client " + std::to_string(i);
        sessions.push_back(std::move(s));
    }
    std::weak_ptr<Session> weak = sessions[7];
    sessions.erase(sessions.begin() + 7);
    EXPECT_TRUE(weak.expired());
    for (std::size_t i = 0; i < sessions.size(); ++i) EXPECT_FALSE(sessions[i]->name.empty());
}
