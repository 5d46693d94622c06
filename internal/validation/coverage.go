package validation

import (
	"fmt"
	"sort"

	"github.com/authzed/spicedb/pkg/development"
	"github.com/authzed/spicedb/pkg/validationfile/blocks"
)

// Coverage records, for every permission of the schemas seen, how many
// assertTrue and assertFalse assertions exercised it. A permission is
// covered when it was asserted at least once each way: a permission only
// ever asserted true would still pass if it were granted to everyone.
type Coverage struct {
	counts map[string]*PermissionCoverage
}

// PermissionCoverage is the coverage of one permission.
type PermissionCoverage struct {
	// Permission is "definition#permission".
	Permission string
	// True and False count the assertTrue and assertFalse assertions on it.
	True, False int
}

// Covered reports whether the permission was asserted both true and false.
func (p PermissionCoverage) Covered() bool { return p.True > 0 && p.False > 0 }

// NewCoverage returns an empty coverage record.
func NewCoverage() *Coverage {
	return &Coverage{counts: map[string]*PermissionCoverage{}}
}

func (c *Coverage) entry(key string) *PermissionCoverage {
	e, ok := c.counts[key]
	if !ok {
		e = &PermissionCoverage{Permission: key}
		c.counts[key] = e
	}
	return e
}

// addSchema registers every permission of the context's schema, so that a
// permission no assertion mentions shows up as uncovered.
func (c *Coverage) addSchema(dc *development.DevContext) {
	for _, def := range dc.CompiledSchema.ObjectDefinitions {
		for _, rel := range def.GetRelation() {
			if rel.GetUsersetRewrite() != nil {
				c.entry(def.GetName() + "#" + rel.GetName())
			}
		}
	}
}

// addAssertions counts the assertions on permissions (assertions on plain
// relations are not counted: services check permissions, never relations).
func (c *Coverage) addAssertions(a *blocks.Assertions) {
	count := func(list []blocks.Assertion, isTrue bool) {
		for _, as := range list {
			key := as.Relationship.Resource.ObjectType + "#" + as.Relationship.Resource.Relation
			e, ok := c.counts[key]
			if !ok {
				continue
			}
			if isTrue {
				e.True++
			} else {
				e.False++
			}
		}
	}
	count(a.AssertTrue, true)
	count(a.AssertFalse, false)
}

// Permissions lists every permission with its counts, sorted by name.
func (c *Coverage) Permissions() []PermissionCoverage {
	out := make([]PermissionCoverage, 0, len(c.counts))
	for _, e := range c.counts {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Permission < out[j].Permission })
	return out
}

// Uncovered lists, for each permission not asserted both ways, what is missing.
func (c *Coverage) Uncovered() []string {
	var out []string
	for _, p := range c.Permissions() {
		switch {
		case p.True == 0 && p.False == 0:
			out = append(out, p.Permission+": never asserted")
		case p.True == 0:
			out = append(out, p.Permission+": no assertTrue")
		case p.False == 0:
			out = append(out, p.Permission+": no assertFalse")
		}
	}
	return out
}

// Percent is the share of permissions covered both ways (100 when there are none).
func (c *Coverage) Percent() float64 {
	if len(c.counts) == 0 {
		return 100
	}
	covered := 0
	for _, e := range c.counts {
		if e.Covered() {
			covered++
		}
	}
	return 100 * float64(covered) / float64(len(c.counts))
}

// String summarises the coverage in one line.
func (c *Coverage) String() string {
	covered := len(c.counts) - len(c.Uncovered())
	return fmt.Sprintf("%d of %d permissions asserted both true and false (%.0f%%)", covered, len(c.counts), c.Percent())
}
