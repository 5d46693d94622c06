package embedded

import (
	"runtime/debug"
	"sync"

	"github.com/jzelinskie/cobrautil/v2"
)

// SpiceDBModule is the module path of SpiceDB.
const SpiceDBModule = "github.com/authzed/spicedb"

// pinnedSpiceDB is the SpiceDB version go.mod requires (a test keeps the
// two equal). Binaries read the version from their build information;
// test binaries carry none, and fall back to this.
const pinnedSpiceDB = "v1.56.2"

// SpiceDBVersion returns the version of SpiceDB compiled into this binary,
// e.g. "v1.56.2".
func SpiceDBVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path != SpiceDBModule {
				continue
			}
			if dep.Replace != nil && dep.Replace.Version != "" {
				return dep.Replace.Version
			}
			return dep.Version
		}
	}
	return pinnedSpiceDB
}

var reportVersion sync.Once

// reportSpiceDBVersion makes the embedded server answer version requests
// (zed's check of the server it calls) with the SpiceDB version compiled
// in. SpiceDB reads it from cobrautil.Version, which its own binary sets at
// link time; left unset, SpiceDB would report Spicegate's commit or
// "(devel)", and zed would warn that it is not calling a released SpiceDB.
func reportSpiceDBVersion() {
	reportVersion.Do(func() {
		if v := SpiceDBVersion(); v != "" && cobrautil.Version == "" {
			cobrautil.Version = v
		}
	})
}
