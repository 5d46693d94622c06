package sqlite

import (
	"fmt"
	"os"
)

// fileLock keeps other processes from opening the same database: SQLite's
// own locking would let two processes share the file, but this datastore
// keeps the head revision and the write lock in memory, so exactly one
// process may use a file at a time. The lock is an OS advisory lock on a
// sidecar file (PATH.lock), released by the kernel when the process dies.
type fileLock struct {
	f *os.File
}

func acquireLock(dbPath string) (*fileLock, error) {
	lockPath := dbPath + ".lock"
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sqlite datastore: open lock file %s: %w", lockPath, err)
	}
	held, err := lockFile(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("sqlite datastore: lock %s: %w", lockPath, err)
	}
	if held {
		_ = f.Close()
		return nil, fmt.Errorf("sqlite datastore: %s: %w (its lock file %s is held)", dbPath, ErrLocked, lockPath)
	}
	return &fileLock{f: f}, nil
}

func (l *fileLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := unlockFile(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
