package sqlite

// ObserveQueries makes d call f with the SQL and arguments of every read it
// runs (nil stops). For tests only.
func ObserveQueries(d *Datastore, f func(query string, args []any)) {
	if f == nil {
		d.observe.Store(nil)
		return
	}
	d.observe.Store(&f)
}

// WriterCacheUsed returns the bytes of page cache the write connection
// holds (SQLite's SQLITE_DBSTATUS_CACHE_USED). For tests only.
func WriterCacheUsed(d *Datastore) (int, error) { return d.writerCacheUsed() }
