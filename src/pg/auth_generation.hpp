// When what client authentication reads from the catalog changes: a counter in shared memory,
// bumped when a transaction that changed roles, role memberships, the rules table or the role
// mapping commits (a utility hook for role DDL, statement triggers for the tables). Workers keep
// their authentication snapshots while it stays the same, so a login reads no catalog.
#pragma once

#include <cstdint>

namespace rproxy::pg {

void request_auth_generation_shmem();
void init_auth_generation_shmem();
// In _PG_init: the ProcessUtility hook and the commit callback, in every backend.
void install_auth_change_hooks();
uint64_t auth_generation();
// This transaction changed what authentication reads (the tables' trigger).
void note_auth_change();

}  // namespace rproxy::pg
