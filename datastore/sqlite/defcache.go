package sqlite

import (
	"fmt"
	"sync"

	core "github.com/authzed/spicedb/pkg/proto/core/v1"
)

// defCache keeps the live namespace and caveat definitions, decoded, for
// the reads that can use them: those at or after gen, the revision of the
// last write to either table. No definition changed between gen and the
// head, so what was live at gen is exactly what is live at any revision
// from gen on.
//
// Why: SpiceDB's own definition cache is per revision, and a fully
// consistent read (every write the facade makes checks and reads that
// way) or a write transaction asks at a revision no one asked before, so
// each write made SpiceDB read the schema's definitions from the file
// again: about 20% of the CPU of a write-heavy load went to reading and
// decoding the same rows.
//
// The decoded definitions are shared by every caller, as SpiceDB's own
// cache shares them: callers treat them as read-only.
type defCache struct {
	mu     sync.Mutex
	gen    revision
	tables map[string][]defRow // table -> every live row, by name, decoded
}

func newDefCache(gen revision) *defCache {
	return &defCache{gen: gen, tables: map[string][]defRow{}}
}

// get returns the rows of table named in names (every row for nil) for a
// read at rev, and whether the cache could answer. The rows are in name
// order, as the SQL read returns them.
func (c *defCache) get(table string, rev revision, names []string) ([]defRow, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev < c.gen {
		return nil, false
	}
	rows, ok := c.tables[table]
	if !ok {
		return nil, false
	}
	return pickDefinitions(rows, names), true
}

// generation returns the revision from which the cache may answer.
func (c *defCache) generation() revision {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put stores every live row of table, read at a revision at or after gen,
// unless the definitions changed since.
func (c *defCache) put(table string, gen revision, rows []defRow) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		c.tables[table] = rows
	}
}

// changed records a committed write to the definitions at txn: nothing
// cached before it answers a read again.
func (c *defCache) changed(txn revision) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen = txn
	clear(c.tables)
}

// decodeDefinitions decodes the rows of table (namespaces or caveats) in
// place; rows already decoded (the cache's) are left as they are.
func decodeDefinitions(table string, rows []defRow) error {
	for i := range rows {
		row := &rows[i]
		switch {
		case row.ns != nil || row.caveat != nil:
		case table == "namespaces":
			def := &core.NamespaceDefinition{}
			if err := def.UnmarshalVT(row.data); err != nil {
				return fmt.Errorf("decode namespace %s: %w", row.name, err)
			}
			row.ns = def
		case table == "caveats":
			def := &core.CaveatDefinition{}
			if err := def.UnmarshalVT(row.data); err != nil {
				return fmt.Errorf("decode caveat %s: %w", row.name, err)
			}
			row.caveat = def
		}
	}
	return nil
}
