package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/internal/loadtest"
)

func pngDecode(b []byte) (image.Image, error) { return png.Decode(bytes.NewReader(b)) }

func result(ops ...loadtest.OpResult) loadtest.Result {
	return loadtest.Result{Rate: 100, Ops: ops}
}

// The chart is well-formed SVG naming every operation and every run.
func TestRenderNamesEveryOperationAndRun(t *testing.T) {
	runs := []labelled{
		{"sqlite", result(loadtest.OpResult{Op: loadtest.OpCheck, P50ms: 1, P95ms: 3, P99ms: 5}, loadtest.OpResult{Op: loadtest.OpAll, P50ms: 1, P95ms: 4, P99ms: 6})},
		{"postgres", result(loadtest.OpResult{Op: loadtest.OpLookup, P50ms: 2, P95ms: 8, P99ms: 20}, loadtest.OpResult{Op: loadtest.OpAll, P50ms: 2, P95ms: 9, P99ms: 21})},
	}
	runs[1].result.Sent, runs[1].result.Errors = 100, 7
	assert.Equal(t, []string{"check", "lookup", "all"}, operations(runs))

	var svg bytes.Buffer
	require.NoError(t, render(&svg, "svg", "mixed load", runs))
	dec := xml.NewDecoder(bytes.NewReader(svg.Bytes()))
	var texts []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "not well-formed XML")
		if cd, ok := tok.(xml.CharData); ok {
			texts = append(texts, string(cd))
		}
	}
	for _, want := range []string{"sqlite", "check", "lookup", "all", "p50", "p95", "p99", "mixed load", "postgres (7 of 100 requests failed)"} {
		assert.Contains(t, texts, want, "the chart does not show %q", want)
	}

	var png bytes.Buffer
	require.NoError(t, render(&png, "png", "mixed load", runs))
	img, err := pngDecode(png.Bytes())
	require.NoError(t, err)
	assert.Greater(t, img.Bounds().Dx(), 500)
}

func TestReadRunsRefusesWhatIsNotALoadtestResult(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	data, err := json.Marshal(result(loadtest.OpResult{Op: loadtest.OpAll, P50ms: 1}))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(good, data, 0o600))
	empty := filepath.Join(dir, "empty.json")
	require.NoError(t, os.WriteFile(empty, []byte(`{"rate": 1}`), 0o600))
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`steps: []`), 0o600))

	runs, err := readRuns([]string{"a=" + good})
	require.NoError(t, err)
	assert.Equal(t, "a", runs[0].label)
	for _, args := range [][]string{nil, {good}, {"=" + good}, {"a=" + empty}, {"a=" + bad}, {"a=" + filepath.Join(dir, "none.json")}} {
		_, err := readRuns(args)
		assert.Error(t, err, "%v", args)
	}
}
