package seed

import "time"

// SetBulkStreamTime changes how long one bulk import stream sends, until
// the test ends. For tests only.
func SetBulkStreamTime(t interface{ Cleanup(func()) }, d time.Duration) {
	old := bulkStreamTime
	bulkStreamTime = d
	t.Cleanup(func() { bulkStreamTime = old })
}
