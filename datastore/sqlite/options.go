package sqlite

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults of the options. They follow SpiceDB's own SQL datastores where
// SpiceDB has a default (quantization, GC window, watch buffer).
const (
	DefaultRevisionQuantization = 5 * time.Second
	DefaultGCWindow             = 24 * time.Hour
	DefaultGCInterval           = 3 * time.Minute
	DefaultWatchBufferLength    = 128
	DefaultWatchBufferTimeout   = 1 * time.Second
	DefaultCheckpointInterval   = 1 * time.Second
	DefaultMaxReadConnections   = 4
	DefaultBusyTimeout          = 5 * time.Second
	DefaultMaxRetries           = 10
	DefaultCacheSize            = 32 << 20
	DefaultMmapSize             = 1 << 30
)

// Synchronous is SQLite's PRAGMA synchronous setting for the database file,
// which decides what a committed write survives.
type Synchronous int

const (
	// SynchronousFull (the default) syncs the write-ahead log to disk at every
	// commit: a write acknowledged by ReadWriteTx survives a process crash, an
	// operating system crash and a power loss.
	SynchronousFull Synchronous = iota
	// SynchronousNormal syncs only at checkpoints: faster writes, and a write
	// acknowledged by ReadWriteTx still survives a process crash (kill -9),
	// but the last transactions may be lost (never half-applied) on an
	// operating system crash or a power loss.
	SynchronousNormal
)

func (s Synchronous) pragma() string {
	if s == SynchronousNormal {
		return "NORMAL"
	}
	return "FULL"
}

// Option configures a Datastore; pass options to New.
type Option func(*config)

type config struct {
	quantization       time.Duration
	gcWindow           time.Duration
	gcInterval         time.Duration
	watchBufferLength  uint16
	watchBufferTimeout time.Duration
	checkpointInterval time.Duration
	maxReadConns       int
	busyTimeout        time.Duration
	maxRetries         int
	synchronous        Synchronous
	cacheSize          int64
	mmapSize           int64
	logger             *slog.Logger
}

func defaultConfig() config {
	return config{
		quantization:       DefaultRevisionQuantization,
		gcWindow:           DefaultGCWindow,
		gcInterval:         DefaultGCInterval,
		watchBufferLength:  DefaultWatchBufferLength,
		watchBufferTimeout: DefaultWatchBufferTimeout,
		checkpointInterval: DefaultCheckpointInterval,
		maxReadConns:       DefaultMaxReadConnections,
		busyTimeout:        DefaultBusyTimeout,
		maxRetries:         DefaultMaxRetries,
		synchronous:        SynchronousFull,
		cacheSize:          DefaultCacheSize,
		mmapSize:           DefaultMmapSize,
		logger:             slog.New(slog.DiscardHandler),
	}
}

func (c config) validate() error {
	var errs []error
	if c.quantization < 0 {
		errs = append(errs, fmt.Errorf("revision quantization %s is negative", c.quantization))
	}
	if c.gcWindow <= 0 {
		errs = append(errs, fmt.Errorf("GC window %s must be positive", c.gcWindow))
	}
	if c.quantization >= c.gcWindow {
		errs = append(errs, fmt.Errorf("revision quantization %s must be shorter than the GC window %s, or quantized revisions would be garbage collected while in use", c.quantization, c.gcWindow))
	}
	if c.gcInterval < 0 {
		errs = append(errs, fmt.Errorf("GC interval %s is negative", c.gcInterval))
	}
	if c.maxReadConns < 1 {
		errs = append(errs, fmt.Errorf("max read connections %d must be at least 1", c.maxReadConns))
	}
	if c.busyTimeout < 0 {
		errs = append(errs, fmt.Errorf("busy timeout %s is negative", c.busyTimeout))
	}
	if c.maxRetries < 0 {
		errs = append(errs, fmt.Errorf("max retries %d is negative", c.maxRetries))
	}
	if c.watchBufferTimeout <= 0 {
		errs = append(errs, fmt.Errorf("watch buffer write timeout %s must be positive", c.watchBufferTimeout))
	}
	if c.checkpointInterval <= 0 {
		errs = append(errs, fmt.Errorf("watch checkpoint interval %s must be positive", c.checkpointInterval))
	}
	if c.cacheSize < 0 || c.mmapSize < 0 {
		errs = append(errs, errors.New("cache and mmap sizes must not be negative"))
	}
	return errors.Join(errs...)
}

// WithRevisionQuantization sets the interval to which OptimizedRevision
// rounds revisions, as SpiceDB's --datastore-revision-quantization-interval
// does for its SQL datastores: requests that do not ask for full consistency
// share one revision per interval (and so share SpiceDB's caches), seeing data
// up to that old. Zero disables quantization (OptimizedRevision returns the
// head revision). It must be shorter than the GC window. Default 5s.
func WithRevisionQuantization(d time.Duration) Option {
	return func(c *config) { c.quantization = d }
}

// WithGCWindow sets how long old revisions stay readable (SpiceDB's
// --datastore-gc-window): a revision older than the window is rejected as
// stale, and the garbage collector deletes the rows that only such revisions
// could see, expired relationships past the window, and the watch history.
// Default 24h.
func WithGCWindow(d time.Duration) Option {
	return func(c *config) { c.gcWindow = d }
}

// WithGCInterval sets how often the background garbage collector runs.
// Zero disables the background collector (RunGarbageCollection still works).
// Default 3m.
func WithGCInterval(d time.Duration) Option {
	return func(c *config) { c.gcInterval = d }
}

// WithWatchBufferLength sets the default number of changes buffered per
// Watch call before the watcher must keep up (when the caller does not set
// WatchOptions.WatchBufferLength). Default 128.
func WithWatchBufferLength(n uint16) Option {
	return func(c *config) { c.watchBufferLength = n }
}

// WithWatchBufferWriteTimeout sets how long a Watch waits for a slow
// consumer, once its buffer is full, before disconnecting it with
// datastore.WatchDisconnectedError (when WatchOptions does not set one).
// Default 1s.
func WithWatchBufferWriteTimeout(d time.Duration) Option {
	return func(c *config) { c.watchBufferTimeout = d }
}

// WithWatchCheckpointInterval sets the default interval of the checkpoints a
// Watch emits while nothing is written, when the caller asks for checkpoints
// without an interval. Default 1s.
func WithWatchCheckpointInterval(d time.Duration) Option {
	return func(c *config) { c.checkpointInterval = d }
}

// WithMaxReadConnections sets the size of the read connection pool. Reads
// never wait for the writer (WAL mode); a handful of connections serves a
// machine with a few cores. Default 4.
func WithMaxReadConnections(n int) Option {
	return func(c *config) { c.maxReadConns = n }
}

// WithBusyTimeout sets how long a write transaction waits for the single
// write lock (and SQLite for a busy file) before failing with ErrBusy, which
// ReadWriteTx retries. Default 5s.
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) { c.busyTimeout = d }
}

// WithMaxRetries sets how many times ReadWriteTx retries a transaction that
// failed with ErrBusy. Default 10.
func WithMaxRetries(n int) Option {
	return func(c *config) { c.maxRetries = n }
}

// WithSynchronous sets the durability of commits; see Synchronous. Default
// SynchronousFull.
func WithSynchronous(s Synchronous) Option {
	return func(c *config) { c.synchronous = s }
}

// WithCacheSize sets SQLite's page cache size, in bytes, of each connection.
// Default 32 MiB.
func WithCacheSize(bytes int64) Option {
	return func(c *config) { c.cacheSize = bytes }
}

// WithMmapSize sets how much of the file SQLite reads through memory
// mapping, in bytes; 0 disables memory mapping. Default 1 GiB.
func WithMmapSize(bytes int64) Option {
	return func(c *config) { c.mmapSize = bytes }
}

// WithLogger sets the logger for background work (garbage collection). The
// default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}
