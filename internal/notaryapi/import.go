package notaryapi

// Signet's own addition beside the Notary v1 API: the import of a
// repository's trust history copied from another Notary server (`signet
// mirror`), POSTed to ImportPath. Listed in docs/notary-compat.md; no
// Notary client ever calls it.

// ImportPrefix is the path under which signet-server takes imports; the
// GUN follows it (ImportPath).
const ImportPrefix = "/_signet/import/"

// ImportPath is the path of the import of gun.
func ImportPath(gun string) string { return ImportPrefix + gun }

// ImportRequest is the body of an import (JSON): the metadata files of a
// repository as its source server served them, byte for byte. It holds
// every version of root (the whole chain, oldest first or in any order)
// and one version — the current one — of timestamp, snapshot, targets and
// every delegation the snapshot lists.
type ImportRequest struct {
	Files []ImportFile `json:"files"`
}

// ImportFile is one metadata file: its role and its bytes (base64 in
// JSON). Its version is the one its signed object carries.
type ImportFile struct {
	Role string `json:"role"`
	Data []byte `json:"data"`
}

// Outcomes of an import.
const (
	// ImportAdded: the files newer than the server's were stored.
	ImportAdded = "imported"
	// ImportUpToDate: the server already holds exactly the source's state.
	ImportUpToDate = "up-to-date"
	// ImportNewerHere: the server holds newer metadata than the source
	// (the owner has moved on here); nothing was stored.
	ImportNewerHere = "newer-here"
)

// ImportResult is the answer to an accepted import (JSON).
type ImportResult struct {
	GUN string `json:"gun"`
	// Outcome is ImportAdded, ImportUpToDate or ImportNewerHere.
	Outcome string `json:"outcome"`
	// Added lists the files stored, in the order (role, version).
	Added []ImportedFile `json:"added"`
	// Current are the versions now current on the server of the roles the
	// import carried.
	Current map[string]int `json:"current"`
	// TimestampExpires is when the current timestamp expires (RFC 3339):
	// the server does not hold the source's timestamp key, so the owner
	// must move it (notary key rotate GUN timestamp -r) before then.
	TimestampExpires string `json:"timestampExpires"`
	// Warnings are sentences for people (expired metadata, keys to move).
	Warnings []string `json:"warnings,omitempty"`
}

// ImportedFile names one stored file.
type ImportedFile struct {
	Role    string `json:"role"`
	Version int    `json:"version"`
}
