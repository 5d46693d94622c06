package cmd

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/otel"
)

// After noTraces a span started on the global provider, as SpiceDB and
// gRPC start them (from tracers taken before, at package init), records
// nothing and costs one allocation (its context), not a placeholder span.
func TestServeStartsNoTraces(t *testing.T) {
	tracer := otel.Tracer("spicegate-test") // taken before, as SpiceDB's are
	noTraces()
	ctx := context.Background()
	_, span := tracer.Start(ctx, "check")
	assert.False(t, span.IsRecording())
	assert.False(t, span.SpanContext().IsValid())
	allocs := testing.AllocsPerRun(100, func() {
		_, span := tracer.Start(ctx, "check")
		span.End()
	})
	assert.LessOrEqual(t, allocs, 1.0)
}
