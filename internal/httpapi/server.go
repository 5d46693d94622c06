// Package httpapi is Spicegate's HTTP/JSON API: checks, lookups and the
// client's writes, for services in any language. It is a thin layer over
// the client package: it authenticates services, decodes and validates
// requests strictly, enforces the acting user's permission, maps errors to
// status codes, and counts everything for Prometheus.
package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	_ "embed" // for the OpenAPI document
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spicegate/spicegate/client"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the API.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

// DefaultMaxBodyBytes bounds a request body.
const DefaultMaxBodyBytes = 1 << 20

// ActorHeader names the acting user (or API token) of a mutation, e.g.
// "user:alice". Team and administrative actions require it; on the other
// mutations it is optional and, when given, its permission is enforced.
const ActorHeader = "Spicegate-Actor"

// RevisionHeader carries the revision (ZedToken) of every response that
// read or wrote, and may carry one in a request for read-your-writes.
const RevisionHeader = "Spicegate-Revision"

// Config configures the API.
type Config struct {
	// Client is the facade the API serves.
	Client *client.Client
	// Tokens are the bearer tokens services authenticate with. Empty
	// refuses every authenticated route.
	Tokens []string
	// Logger logs requests that failed on the server's side.
	Logger *slog.Logger
	// Registry receives the API's metrics; nil makes a new one.
	Registry *prometheus.Registry
	// MaxBodyBytes bounds request bodies (DefaultMaxBodyBytes when 0).
	MaxBodyBytes int64
	// Ready reports whether the service can answer (for /readyz); nil
	// asks Client.Ready.
	Ready func(context.Context) error
}

// Route is one operation of the API.
type Route struct {
	Method string
	// Path is a net/http pattern path, e.g. /v1/datasets/{id}.
	Path string
	// Public routes need no bearer token.
	Public bool
}

// Server serves the API.
type Server struct {
	cfg         Config
	mux         *http.ServeMux
	routes      []Route
	metrics     *metrics
	streams     context.Context
	stopStreams context.CancelFunc
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
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Ready == nil {
		cfg.Ready = cfg.Client.Ready
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), metrics: newMetrics(cfg.Registry)}
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

func (s *Server) handle(method, path string, h handler) {
	s.routes = append(s.routes, Route{Method: method, Path: path})
	name := method + " " + path
	s.mux.HandleFunc(name, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		status := s.serve(w, r, h)
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

func (s *Server) serve(w http.ResponseWriter, r *http.Request, h handler) int {
	if !s.authenticated(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="spicegate"`)
		return writeError(w, &apiError{status: http.StatusUnauthorized, Code: "unauthenticated",
			Message: "missing or unknown bearer token"})
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	r = withAudit(w, r)
	status, body, rev, err := h(r)
	if err != nil {
		ae := toAPIError(err)
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

// authenticated compares the bearer token with every configured token in
// constant time.
func (s *Server) authenticated(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || got == "" {
		return false
	}
	match := 0
	for _, t := range s.cfg.Tokens {
		match |= subtle.ConstantTimeCompare([]byte(got), []byte(t))
	}
	return match == 1
}

// RequestIDHeader carries the request's ID: given by the caller, or made
// here. Writes record it (and the actor) for the audit stream.
const RequestIDHeader = "X-Request-Id"

// withAudit attaches the actor and the request ID to the request's
// context, so that its writes carry them to SpiceDB, and echoes the ID.
func withAudit(w http.ResponseWriter, r *http.Request) *http.Request {
	id := r.Header.Get(RequestIDHeader)
	if id == "" || len(id) > 128 {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	w.Header().Set(RequestIDHeader, id)
	return r.WithContext(client.WithAudit(r.Context(), client.Audit{Actor: r.Header.Get(ActorHeader), RequestID: id}))
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
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	s.handlePublic(http.MethodGet, "/metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}).ServeHTTP)
	s.handlePublic(http.MethodGet, "/v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{status: http.StatusNotFound, Code: "not_found", Message: "no such route: " + r.Method + " " + r.URL.Path})
	})

	s.registerChecks()
	s.registerWrites()
	s.registerAudit()
}
