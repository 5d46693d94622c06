package client

import (
	"context"
	"log/slog"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/grpcutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/spicegate/spicegate/schema"
)

// Client is the typed facade over SpiceDB for the platform's permission
// model. It is safe for concurrent use: create one and reuse it.
//
// # Consistency
//
// Every read takes an optional [WithConsistency]. Without it, a read is at
// least as fresh as the newest revision this Client wrote (read-your-writes
// within one Client), and minimizes latency when the Client has written
// nothing. To read another service's writes, pass the [Revision] it
// returned with [AtLeastAsFresh].
//
// # Errors
//
// Every error matches one of the sentinel errors with errors.Is. A check
// that fails is never an allow: its [Decision] is denied.
type Client struct {
	conn    *grpc.ClientConn
	perms   v1.PermissionsServiceClient
	schemas v1.SchemaServiceClient
	watch   v1.WatchServiceClient
	closer  func() error
	cfg     config
	revs    revisionTracker

	// beforeFencedWrite, when set (by tests only), runs before each write
	// a role change makes behind its fence: where a change may stall.
	beforeFencedWrite func(step int)
}

type config struct {
	presharedKey   string
	plaintext      bool
	dialOpts       []grpc.DialOption
	logger         *slog.Logger
	supportUser    string
	pageSize       uint32
	bulkCheckChunk int
	maxWriteSize   int
	retry          retryPolicy
}

// Option configures a Client.
type Option func(*config)

// WithPresharedKey authenticates to SpiceDB with its preshared key.
func WithPresharedKey(key string) Option { return func(c *config) { c.presharedKey = key } }

// WithInsecure connects in plaintext, for SpiceDB on loopback or inside a
// trusted network. The default is TLS with the system's certificates.
func WithInsecure() Option { return func(c *config) { c.plaintext = true } }

// WithDialOptions adds gRPC dial options: the escape hatch for custom TLS,
// interceptors, or an in-memory dialer.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) { c.dialOpts = append(c.dialOpts, opts...) }
}

// WithLogger logs retries and slow paths. The default discards logs.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithSupportUser names the vendor support account (default "support"),
// which CreateOrganization lists in every organization.
func WithSupportUser(id string) Option { return func(c *config) { c.supportUser = id } }

// WithPageSize sets how many results each lookup and read page holds
// (default 1000).
func WithPageSize(n uint32) Option { return func(c *config) { c.pageSize = n } }

// WithBulkCheckChunkSize sets how many checks go into one
// CheckBulkPermissions call (default 1000; SpiceDB accepts at most 10,000).
func WithBulkCheckChunkSize(n int) Option { return func(c *config) { c.bulkCheckChunk = n } }

// WithRetry sets how reads and idempotent writes retry Unavailable and
// DeadlineExceeded: at most attempts tries, backing off exponentially from
// base up to max, with jitter. attempts 1 disables retries.
func WithRetry(attempts int, base, maxDelay time.Duration) Option {
	return func(c *config) { c.retry = retryPolicy{attempts: attempts, base: base, max: maxDelay} }
}

func defaults() config {
	return config{
		logger:         slog.New(slog.DiscardHandler),
		supportUser:    "support",
		pageSize:       1000,
		bulkCheckChunk: 1000,
		maxWriteSize:   1000, // SpiceDB's default maximum updates per write
		retry:          retryPolicy{attempts: 4, base: 50 * time.Millisecond, max: time.Second},
	}
}

func (c *config) validate() error {
	if err := validateID("support user", c.supportUser); err != nil {
		return err
	}
	if c.pageSize == 0 {
		return argErr("page size", "0", "must be positive")
	}
	if c.bulkCheckChunk < 1 || c.bulkCheckChunk > 10_000 {
		return argErr("bulk check chunk size", "", "must be between 1 and 10000")
	}
	if c.retry.attempts < 1 {
		return argErr("retry attempts", "", "must be at least 1")
	}
	return nil
}

// New connects to SpiceDB at endpoint ("host:port"). The connection is
// made lazily; call [Client.Ready] at start-up to find out whether SpiceDB
// answers.
func New(endpoint string, opts ...Option) (*Client, error) {
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if endpoint == "" {
		return nil, argErr("endpoint", endpoint, "must be host:port")
	}
	// Reconnect soon after SpiceDB comes back: gRPC's default backoff
	// grows to two minutes, which a restarted SpiceDB would wait out.
	dial := []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second},
		MinConnectTimeout: 5 * time.Second,
	})}
	if cfg.plaintext {
		dial = append(dial, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if cfg.presharedKey != "" {
			dial = append(dial, grpcutil.WithInsecureBearerToken(cfg.presharedKey))
		}
	} else {
		tls, err := grpcutil.WithSystemCerts(grpcutil.VerifyCA)
		if err != nil {
			return nil, &Error{Op: "New", Kind: ErrInternal, Err: err}
		}
		dial = append(dial, tls)
		if cfg.presharedKey != "" {
			dial = append(dial, grpcutil.WithBearerToken(cfg.presharedKey))
		}
	}
	dial = append(dial, cfg.dialOpts...)
	conn, err := grpc.NewClient(endpoint, dial...)
	if err != nil {
		return nil, &Error{Op: "New", Kind: ErrInvalidArgument, Err: err}
	}
	c := newClient(conn, cfg)
	c.closer = conn.Close
	return c, nil
}

func newClient(conn *grpc.ClientConn, cfg config) *Client {
	return &Client{
		conn:    conn,
		perms:   v1.NewPermissionsServiceClient(conn),
		schemas: v1.NewSchemaServiceClient(conn),
		watch:   v1.NewWatchServiceClient(conn),
		closer:  func() error { return nil },
		cfg:     cfg,
	}
}

// Conn returns the client's connection, for SpiceDB APIs the facade does
// not wrap (bulk import, Watch). Do not close it: Close does.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// NewFromConn builds a Client over an existing connection (an in-process
// server, a test). The connection must carry its own credentials; the
// caller keeps ownership and closes it, and Close does not.
func NewFromConn(conn *grpc.ClientConn, opts ...Option) (*Client, error) {
	if conn == nil {
		return nil, argErr("conn", "nil", "must be a connection")
	}
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return newClient(conn, cfg), nil
}

// Close closes the connection New opened.
func (c *Client) Close() error { return c.closer() }

// Ready reports whether SpiceDB answers, accepts the credentials, and holds
// a schema. It returns nil, or an error matching ErrUnavailable,
// ErrUnauthenticated, or ErrNotFound (no schema written yet).
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.schemas.ReadSchema(ctx, &v1.ReadSchemaRequest{})
	return translate("Ready", err)
}

// WriteSchema writes Spicegate's schema (package schema) to SpiceDB and
// returns the revision it was written at. SpiceDB refuses a schema change
// that would orphan existing relationships.
func (c *Client) WriteSchema(ctx context.Context) (Revision, error) {
	done := c.revs.begin()
	resp, err := c.schemas.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: schema.Text()})
	if err != nil {
		done("")
		return "", translate("WriteSchema", err)
	}
	rev := revisionOf(resp.GetWrittenAt())
	done(rev)
	return rev, nil
}

// Observe tells the Client about a write made outside it (a bulk import, a
// seed, another process): its default reads become at least as fresh as
// rev, as if it had written it.
func (c *Client) Observe(rev Revision) {
	if rev != "" {
		c.revs.begin()(rev)
	}
}

// Empty reports whether SpiceDB holds no relationship of any definition of
// Spicegate's schema (fully consistent): a store nobody has written to.
func (c *Client) Empty(ctx context.Context) (bool, error) {
	for typ := range permissionsByType {
		found, err := c.exists(ctx, filter(typ, "", "", nil), FullyConsistent())
		if err != nil {
			return false, translate("Empty", err)
		}
		if found {
			return false, nil
		}
	}
	return true, nil
}

// SupportUser is the ID of the vendor support account (WithSupportUser).
func (c *Client) SupportUser() string { return c.cfg.supportUser }

// LastWritten returns the newest revision this Client wrote, or "" if none.
func (c *Client) LastWritten() Revision { return c.revs.Newest() }

// CallOption adjusts one read.
type CallOption func(*callConfig)

type callConfig struct {
	consistency Consistency
}

// WithConsistency sets how fresh the read must be (see [Consistency]).
func WithConsistency(cons Consistency) CallOption {
	return func(cc *callConfig) { cc.consistency = cons }
}

func (c *Client) callConfig(opts []CallOption) (callConfig, error) {
	var cc callConfig
	for _, o := range opts {
		o(&cc)
	}
	if err := cc.consistency.validate(); err != nil {
		return cc, err
	}
	return cc, nil
}

func (c *Client) consistency(cc callConfig) *v1.Consistency {
	return cc.consistency.proto(&c.revs)
}
