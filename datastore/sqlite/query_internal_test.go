package sqlite

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/authzed/spicedb/pkg/datastore"
	"github.com/authzed/spicedb/pkg/datastore/options"
)

// TestReadLimitIsALiteral keeps a read's LIMIT out of its parameters:
// SQLite recompiles a statement every time a parameter its plan may depend
// on is bound, and a LIMIT parameter is one (see limitBucket). The literal
// is the limit rounded up to a power of two, at least 64.
func TestReadLimitIsALiteral(t *testing.T) {
	filter := datastore.RelationshipsFilter{OptionalResourceType: "doc", OptionalResourceIds: []string{"a"}}
	_, unlimitedArgs, err := buildRelQuery(revision(5), time.Now(), filter, options.ByResource, nil, nil, nil, false)
	require.NoError(t, err)
	for limit, literal := range map[uint64]string{0: "0", 1: "64", 3: "64", 64: "64", 65: "128", 1000: "1024", 1024: "1024", 1 << 63: "4611686018427387904"} {
		query, args, err := buildRelQuery(revision(5), time.Now(), filter, options.ByResource, nil, nil, &limit, false)
		require.NoError(t, err)
		require.True(t, strings.HasSuffix(query, " LIMIT "+literal), "limit %d: %s", limit, query)
		require.Len(t, args, len(unlimitedArgs), "limit %d is a parameter", limit)
	}
}
