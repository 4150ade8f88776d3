// Package audit is Signet's transparency log: an append-only Merkle tree of
// audit events, served as a C2SP tlog-tiles log with C2SP tlog-checkpoint
// checkpoints signed as C2SP signed notes.
//
// What it holds:
//   - The entry model: Event, one JSON object per event, encoded once by
//     Event.Encode; those bytes are stored, hashed and served as they are.
//   - The tree: RFC 6962 hashing (LeafHash, NodeHash), tiles of height 8
//     (Tile, its C2SP paths, TileWidth), entry bundles (AppendBundle,
//     ParseBundle), node hashes and compact ranges rebuilt from tiles.
//   - Checkpoints: Checkpoint, signed with a crypto.Signer holding an
//     Ed25519 key (NewNoteSigner), opened with a verifier key string.
//   - The sequencer: Log. Appends become durable as pending entries in a
//     Store (on their own, group-committed, or inside the transaction of
//     the change they record, through the store's own API); one
//     integrator at a time, elected by a lease in the Store, moves pending
//     entries into the tree in batches, writes the tiles and signs a new
//     checkpoint.
//   - The self-check: the stored tree is recomputed from the stored entries
//     against the latest signed checkpoint at start and periodically; the
//     tiles on the tree's right edge are checked against it on every batch.
//   - The HTTP read API (Handler) and the append API (AppendHandler).
//
// Invariants:
//   - An entry's bytes never change once stored; its index is assigned
//     once, by the integrator, and indexes have no gaps.
//   - A checkpoint is signed only over a tree whose stored right edge
//     reproduces the latest signed checkpoint; a mismatch stops the
//     integrator (Status reports it) and is never repaired by the log.
//   - Every signed checkpoint is consistent with every earlier one.
//   - This package links no SQL driver: the command line client uses it.
package audit
