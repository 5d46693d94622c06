package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/spicegate/spicegate/client"
)

// registerAudit serves GET /v1/audit: the audit stream as newline-delimited
// JSON (one client.Change a line), following SpiceDB's Watch API until the
// client disconnects. ?after=REVISION resumes after a revision.
func (s *Server) registerAudit() {
	const path = "/v1/audit"
	s.routes = append(s.routes, Route{Method: http.MethodGet, Path: path, Scope: ScopeAdmin})
	name := http.MethodGet + " " + path
	s.mux.HandleFunc(name, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		status := s.streamAudit(w, r)
		s.metrics.observe(name, status, time.Since(start))
	})
}

func (s *Server) streamAudit(w http.ResponseWriter, r *http.Request) int {
	r, status := s.admit(w, r, ScopeAdmin)
	if status != 0 {
		return status
	}
	release, status := s.acquire(w, s.openStreams, "audit streams")
	if status != 0 {
		return status
	}
	defer release()
	// A stream lives as long as its caller reads: the server's write
	// deadline (for ordinary requests) does not apply, but each write has
	// one of its own, so that a caller who stops reading (its buffers full)
	// loses the stream and frees its place.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	writing := func() { _ = rc.SetWriteDeadline(time.Now().Add(s.cfg.StreamWriteTimeout)) }
	flusher, ok := w.(http.Flusher)
	if !ok {
		return writeError(w, &apiError{status: http.StatusInternalServerError, Code: "internal", Message: "streaming is not supported"})
	}
	after := client.Revision(r.URL.Query().Get("after"))
	// The headers go out at once, so the caller knows it is connected; an
	// error after that is the stream's last line, {"error":{...}}.
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	writing()
	flusher.Flush()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.streams, cancel)()
	enc := json.NewEncoder(w)
	for change, err := range s.cfg.Client.Watch(ctx, after) {
		if err != nil {
			e := s.apiError(r.Context(), err)
			s.metrics.errors.WithLabelValues(e.Code).Inc()
			writing()
			_ = enc.Encode(map[string]*apiError{"error": e})
			return http.StatusOK
		}
		writing()
		if err := enc.Encode(change); err != nil {
			return http.StatusOK // the caller went away, or stopped reading
		}
		if err := rc.Flush(); err != nil {
			return http.StatusOK
		}
	}
	return http.StatusOK
}
