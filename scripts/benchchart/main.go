// Command benchchart draws the latency percentiles of `spicegate loadtest
// -o json` runs as an SVG (or a PNG, for an -o ending in .png): one panel per percentile (p50, p95, p99), the
// operations along the horizontal axis, one line per run (a datastore, say).
//
//	go run ./scripts/benchchart -o docs/latency.svg -title "mixed load, 500/s" \
//		sqlite=/tmp/lt/sqlite.json postgres=/tmp/lt/postgres.json
//
// scripts/bench-load.sh runs the loads and then this.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/spicegate/spicegate/internal/loadtest"
)

func main() {
	out := flag.String("o", "latency.svg", "the SVG file to write")
	title := flag.String("title", "", "what the runs were (printed above the chart)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: benchchart [-o FILE] [-title TEXT] LABEL=RESULT.json ...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(*out, *title, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "benchchart:", err)
		os.Exit(1)
	}
}

func run(out, title string, args []string) error {
	runs, err := readRuns(args)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	format := "svg"
	if strings.HasSuffix(strings.ToLower(out), ".png") {
		format = "png"
	}
	if err := render(f, format, title, runs); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// labelled is one loadtest result and what it is called on the chart.
type labelled struct {
	label  string
	result loadtest.Result
}

func readRuns(args []string) ([]labelled, error) {
	if len(args) == 0 {
		return nil, errors.New("no run given (LABEL=RESULT.json)")
	}
	var runs []labelled
	for _, arg := range args {
		label, path, ok := strings.Cut(arg, "=")
		if !ok || label == "" || path == "" {
			return nil, fmt.Errorf("%q: want LABEL=RESULT.json", arg)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		var res loadtest.Result
		if err := json.Unmarshal(data, &res); err != nil {
			return nil, fmt.Errorf("%s: not the JSON of `spicegate loadtest -o json`: %w", path, err)
		}
		if len(res.Ops) == 0 {
			return nil, fmt.Errorf("%s: no operation in it", path)
		}
		runs = append(runs, labelled{label, res})
	}
	return runs, nil
}

// percentiles are the panels, top to bottom.
var percentiles = []struct {
	name string
	of   func(loadtest.OpResult) float64
}{
	{"p50", func(o loadtest.OpResult) float64 { return o.P50ms }},
	{"p95", func(o loadtest.OpResult) float64 { return o.P95ms }},
	{"p99", func(o loadtest.OpResult) float64 { return o.P99ms }},
}

// render writes the chart of runs to w, as SVG or PNG (format "png"). The latency axis is
// logarithmic: an overloaded run (seconds) and a healthy one (milliseconds)
// stay readable on one chart.
func render(w io.Writer, format, title string, runs []labelled) error {
	ops := operations(runs)
	var plots [][]*plot.Plot
	for i, pc := range percentiles {
		p := plot.New()
		p.Title.Text = pc.name
		if i == 0 && title != "" {
			p.Title.Text = title + "\n" + pc.name
		}
		p.Y.Label.Text = "ms (log scale)"
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Add(plotter.NewGrid())
		for r, run := range runs {
			var pts plotter.XYs
			for j, op := range ops {
				// A log scale has no zero: an operation the run did not send,
				// or one faster than the histogram's microsecond, is left out.
				if o, ok := find(run.result, op); ok && pc.of(o) > 0 {
					pts = append(pts, plotter.XY{X: float64(j), Y: pc.of(o)})
				}
			}
			if len(pts) == 0 {
				continue
			}
			line, points, err := plotter.NewLinePoints(pts)
			if err != nil {
				return err
			}
			line.Color = plotutil.Color(r)
			line.Width = vg.Points(1.5)
			points.Color = plotutil.Color(r)
			points.Shape = plotutil.Shape(r)
			points.Radius = vg.Points(3.5)
			p.Add(line, points)
			if i == 0 {
				label := run.label
				if n := run.result.Errors; n > 0 {
					// Failed requests have latencies too; the reader must know.
					label = fmt.Sprintf("%s (%d of %d requests failed)", label, n, run.result.Sent)
				}
				p.Legend.Add(label, line, points)
			}
		}
		p.Legend.Top = true
		p.Legend.Left = true
		p.NominalX(ops...)
		p.X.Min, p.X.Max = -0.5, float64(len(ops))-0.5
		plots = append(plots, []*plot.Plot{p})
	}
	const width, height = 36 * vg.Centimeter, 36 * vg.Centimeter
	var img vg.CanvasWriterTo = vgsvg.New(width, height)
	if format == "png" {
		img = vgimg.PngCanvas{Canvas: vgimg.New(width, height)}
	}
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadTop: vg.Millimeter * 4, PadBottom: vg.Millimeter * 4,
		PadLeft: vg.Millimeter * 4, PadRight: vg.Millimeter * 4, PadY: vg.Millimeter * 6}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	_, err := img.WriteTo(w)
	return err
}

// operations lists every operation of the runs, in the first run's report
// order, then the others' new ones; "all" comes last.
func operations(runs []labelled) []string {
	var ops []string
	for _, run := range runs {
		for _, o := range run.result.Ops {
			if o.Op != loadtest.OpAll && !slices.Contains(ops, string(o.Op)) {
				ops = append(ops, string(o.Op))
			}
		}
	}
	return append(ops, string(loadtest.OpAll))
}

func find(res loadtest.Result, op string) (loadtest.OpResult, bool) {
	for _, o := range res.Ops {
		if string(o.Op) == op {
			return o, true
		}
	}
	return loadtest.OpResult{}, false
}
