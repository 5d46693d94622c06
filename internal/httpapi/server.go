// Package httpapi is Spicegate's HTTP/JSON API: checks, lookups and the
// client's writes, for services in any language. It is a thin layer over
// the client package: it authenticates services, decodes and validates
// requests strictly, enforces the acting user's permission, maps errors to
// status codes, and counts everything for Prometheus.
package httpapi

import (
	"context"
	"crypto/rand"
	_ "embed" // for the OpenAPI document
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/procs"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the API.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

// DefaultMaxBodyBytes bounds a request body.
const DefaultMaxBodyBytes = 1 << 20

// Defaults of the limits in Config.
const (
	// DefaultRequestTimeout bounds one request's work, SpiceDB's included.
	DefaultRequestTimeout = 10 * time.Second
	// DefaultMaxInFlight is how many requests are served at once; more
	// are refused at once with 503 and Retry-After.
	DefaultMaxInFlight = 256
	// DefaultMaxStreams is how many audit streams may be open at once.
	DefaultMaxStreams = 16
	// DefaultStreamWriteTimeout bounds each write of an audit stream: a
	// caller that stops reading loses its stream (and frees its place).
	DefaultStreamWriteTimeout = 30 * time.Second
)

// ActorHeader names who a write is made for, e.g. "user:alice" or
// "api_token:ID": the service holding an act (or admin) token vouches that
// it authenticated that user. Every write needs it, except the system
// writes of an admin token.
const ActorHeader = "Spicegate-Actor"

// RevisionHeader carries the revision (ZedToken) of every response that
// read or wrote, and may carry one in a request for read-your-writes.
const RevisionHeader = "Spicegate-Revision"

// Config configures the API.
type Config struct {
	// Client is the facade the API serves.
	Client *client.Client
	// Tokens are the bearer tokens services authenticate with, each with
	// its scope. Empty refuses every authenticated route.
	Tokens []Token
	// Logger logs requests that failed on the server's side.
	Logger *slog.Logger
	// Registry receives the API's metrics; nil makes a new one.
	Registry *prometheus.Registry
	// Gatherer is what /metrics serves; nil serves Registry. The service
	// adds the process's default registry, where the embedded SpiceDB
	// (gRPC, dispatch, datastore) and the Go runtime register.
	Gatherer prometheus.Gatherer
	// MaxBodyBytes bounds request bodies (DefaultMaxBodyBytes when 0).
	MaxBodyBytes int64
	// Ready reports whether the service can answer (for /readyz); nil
	// asks Client.Ready.
	Ready func(context.Context) error
	// RequestTimeout bounds each request's work, the calls to SpiceDB
	// included (their gRPC deadline is the request's): past it the
	// request fails with 504 (DefaultRequestTimeout when 0). Audit streams
	// are exempt.
	RequestTimeout time.Duration
	// MaxInFlight caps the authenticated requests served at once
	// (DefaultMaxInFlight when 0). Beyond it a request is answered 503
	// with Retry-After at once: an overloaded store gets less work, not a
	// queue that makes every answer late.
	MaxInFlight int
	// MaxStreams caps the open audit streams (DefaultMaxStreams when 0).
	MaxStreams int
	// StreamWriteTimeout bounds each write of an audit stream
	// (DefaultStreamWriteTimeout when 0).
	StreamWriteTimeout time.Duration
}

// Route is one operation of the API.
type Route struct {
	Method string
	// Path is a net/http pattern path, e.g. /v1/datasets/{id}.
	Path string
	// Public routes need no bearer token.
	Public bool
	// Scope is the smallest scope a token needs for the route (0 for
	// public routes). A write route of ScopeAct needs ScopeAdmin when it is
	// made without an actor (a system write).
	Scope Scope
}

// Server serves the API.
type Server struct {
	cfg         Config
	mux         *http.ServeMux
	routes      []Route
	metrics     *metrics
	streams     context.Context
	stopStreams context.CancelFunc
	inFlight    chan struct{} // a semaphore of MaxInFlight
	openStreams chan struct{} // a semaphore of MaxStreams
}

// StopStreams ends every open audit stream (their callers resume with the
// last revision they got). http.Server.Shutdown does not end streams by
// itself: register it with RegisterOnShutdown.
func (s *Server) StopStreams() { s.stopStreams() }

// New builds the API's handler.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Gatherer == nil {
		cfg.Gatherer = cfg.Registry
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Ready == nil {
		cfg.Ready = cfg.Client.Ready
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if cfg.StreamWriteTimeout <= 0 {
		cfg.StreamWriteTimeout = DefaultStreamWriteTimeout
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), metrics: newMetrics(cfg.Registry),
		inFlight: make(chan struct{}, cfg.MaxInFlight), openStreams: make(chan struct{}, cfg.MaxStreams)}
	s.streams, s.stopStreams = context.WithCancel(context.Background())
	s.register()
	return s
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Routes lists every registered route.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// handler is an API operation: it returns a status, a body to encode as
// JSON (nil for none), and the revision to put in RevisionHeader.
type handler func(r *http.Request) (int, any, client.Revision, error)

// parallelRoutes run parts of themselves in parallel (many checks, a
// lookup): the processor controller counts them as overlapping requests.
var parallelRoutes = map[string]bool{
	"POST /v1/check/bulk":       true,
	"POST /v1/permissions":      true,
	"POST /v1/lookup/resources": true,
	"POST /v1/lookup/subjects":  true,
}

func (s *Server) handle(method, path string, scope Scope, h handler) {
	s.routes = append(s.routes, Route{Method: method, Path: path, Scope: scope})
	name := method + " " + path
	started := procs.RequestStarted // one at a time or overlapping: how many processors pay
	if parallelRoutes[name] {
		started = procs.ParallelRequestStarted
	}
	s.mux.HandleFunc(name, func(w http.ResponseWriter, r *http.Request) {
		started()
		defer procs.RequestEnded()
		start := time.Now()
		status := s.serve(w, r, scope, h)
		s.metrics.observe(name, status, time.Since(start))
	})
}

func (s *Server) handlePublic(method, path string, h http.HandlerFunc) {
	s.routes = append(s.routes, Route{Method: method, Path: path, Public: true})
	name := method + " " + path
	s.mux.HandleFunc(name, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h(rec, r)
		s.metrics.observe(name, rec.status, time.Since(start))
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, scope Scope, h handler) int {
	release, status := s.acquire(w, s.inFlight, "requests")
	if status != 0 {
		return status
	}
	defer release()
	r, status = s.admit(w, r, scope)
	if status != 0 {
		return status
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	r = r.WithContext(ctx)
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	r = withAudit(w, r)
	status, body, rev, err := h(r)
	if err != nil {
		ae := s.apiError(r.Context(), err)
		if ae.status >= 500 {
			s.cfg.Logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		}
		s.metrics.errors.WithLabelValues(ae.Code).Inc()
		return writeError(w, ae)
	}
	if rev != "" {
		w.Header().Set(RevisionHeader, string(rev))
	}
	if body == nil {
		w.WriteHeader(status)
		return status
	}
	writeJSON(w, status, body)
	return status
}

// acquire takes a place in sem, or answers 503 with Retry-After at once
// (and returns the status) when there is none.
func (s *Server) acquire(w http.ResponseWriter, sem chan struct{}, what string) (func(), int) {
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, 0
	default:
		s.metrics.errors.WithLabelValues("overloaded").Inc()
		w.Header().Set("Retry-After", "1")
		return nil, writeError(w, &apiError{status: http.StatusServiceUnavailable, Code: "overloaded",
			Message: fmt.Sprintf("too many %s at once (%d): retry shortly", what, cap(sem))})
	}
}

// admit authenticates the request and checks that its token's scope
// covers the route. It answers 401 or 403 itself (and returns the status),
// or returns the request carrying its scope.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, need Scope) (*http.Request, int) {
	got := s.authenticate(r)
	if got == 0 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="spicegate"`)
		return r, writeError(w, &apiError{status: http.StatusUnauthorized, Code: "unauthenticated",
			Message: "missing or unknown bearer token"})
	}
	if got < need {
		return r, writeError(w, &apiError{status: http.StatusForbidden, Code: "insufficient_scope",
			Message: "this route needs a token of the " + need.String() + " scope; this one has " + got.String()})
	}
	return withScope(r, got), 0
}

// RequestIDHeader carries the request's ID: given by the caller, or made
// here. Writes record it (and the actor) for the audit stream.
const RequestIDHeader = "X-Request-Id"

// withAudit attaches the request ID to the request's context, so that its
// writes carry it to SpiceDB, and echoes it. The actor is attached by the
// client's Actor once verified, never from the header as sent.
func withAudit(w http.ResponseWriter, r *http.Request) *http.Request {
	id := r.Header.Get(RequestIDHeader)
	if id == "" || len(id) > 128 {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	w.Header().Set(RequestIDHeader, id)
	return r.WithContext(client.WithAudit(r.Context(), client.Audit{RequestID: id}))
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(body)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *Server) register() {
	s.handlePublic(http.MethodGet, "/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.handlePublic(http.MethodGet, "/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			// The cause (which may name hosts and database users) goes to
			// the log only: this route needs no token.
			s.cfg.Logger.WarnContext(r.Context(), "not ready", "error", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	// A metric that fails to gather (a collector of the default registry
	// reporting the same series twice) is logged and left out, not a 500
	// that hides every other.
	s.handlePublic(http.MethodGet, "/metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError, ErrorLog: promLog{s.cfg.Logger},
	}).ServeHTTP)
	s.handlePublic(http.MethodGet, "/v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allowed := s.allowedMethods(r); len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeError(w, &apiError{status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
				Message: r.URL.Path + " takes " + strings.Join(allowed, ", ") + ", not " + r.Method})
			return
		}
		writeError(w, &apiError{status: http.StatusNotFound, Code: "not_found", Message: "no such route: " + r.Method + " " + r.URL.Path})
	})

	s.registerChecks()
	s.registerWrites()
	s.registerAudit()
	s.registerProfiling()
}

// registerProfiling serves Go's profiles (net/http/pprof) under
// /debug/pprof/, to admin tokens only: they show the process's internals,
// and a CPU profile costs CPU. A CPU profile must end within the server's
// write timeout (--http-request-timeout + 5 s): ask for ?seconds=10 or less.
func (s *Server) registerProfiling() {
	admin := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if _, status := s.admit(w, r, ScopeAdmin); status != 0 {
				return
			}
			h(w, r)
		}
	}
	s.mux.HandleFunc("GET /debug/pprof/", admin(pprof.Index))
	s.mux.HandleFunc("GET /debug/pprof/cmdline", admin(pprof.Cmdline))
	s.mux.HandleFunc("GET /debug/pprof/profile", admin(pprof.Profile))
	s.mux.HandleFunc("GET /debug/pprof/symbol", admin(pprof.Symbol))
	s.mux.HandleFunc("GET /debug/pprof/trace", admin(pprof.Trace))
}

// allowedMethods lists the methods some route takes on r's path (none
// when no route has the path): the catch-all answers 405 for those paths.
func (s *Server) allowedMethods(r *http.Request) []string {
	var allowed []string
	for _, rt := range s.routes {
		if rt.Method == r.Method || slices.Contains(allowed, rt.Method) {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = rt.Method
		if _, pattern := s.mux.Handler(probe); pattern != "/" {
			allowed = append(allowed, rt.Method)
		}
	}
	slices.Sort(allowed)
	return allowed
}

// promLog passes promhttp's gathering errors to the API's logger.
type promLog struct{ log *slog.Logger }

func (l promLog) Println(v ...any) { l.log.Warn("metrics: " + fmt.Sprint(v...)) }
