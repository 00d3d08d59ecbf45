package stream_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

type reading struct {
	Sensor string `json:"sensor"`
	At     int64  `json:"at"` // ms
	Temp   int    `json:"temp"`
}

// TestEventTime: the extracted time is the record's timestamp downstream
// and drives stream time; invalid times follow the policy.
func TestEventTime(t *testing.T) {
	cases := []struct {
		name    string
		policy  *topology.InvalidTimestampPolicy
		wantOut []int64 // timestamps reaching the output, ms
		wantErr string
		skipped int64
	}{
		{"fail by default", nil, []int64{1000, 5000, 2000}, "invalid timestamp", 0}, // the failed pipe, not the driver
		{"skip", policyPtr(topology.SkipInvalidTimestamp), []int64{1000, 5000, 2000}, "", 1},
		{"partition time", policyPtr(topology.UsePartitionTime), []int64{1000, 5000, 5000, 2000}, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := topology.NewBuilder()
			opts := []stream.Option{stream.EventTime(func(_ string, r reading) time.Time { return time.UnixMilli(r.At) })}
			if c.policy != nil {
				opts = append(opts, stream.OnInvalidTimestamp(*c.policy))
			}
			var streamTimes []int64
			src := stream.From[string, reading](b, "readings", opts...)
			stream.Process(src, func() topology.Processor[string, reading, string, reading] {
				return &streamTimeProbe{seen: &streamTimes}
			}).To("out")
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			d, err := riffletest.New(topo)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			in := riffletest.Input(d, "readings", serde.String(), serde.JSON[reading]())
			var errs []error
			for _, at := range []int64{1000, 5000, -1, 2000} {
				// The Kafka timestamp is ignored: event time comes from the value.
				errs = append(errs, in.PipeAt("s1", reading{Sensor: "s1", At: at}, time.UnixMilli(99_999)))
			}
			err = errors.Join(errs...)
			if c.wantErr != "" {
				var pe *topology.ProcessorError
				if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.wantErr) || pe.Node != "from-readings" {
					t.Fatalf("err = %v, want a ProcessorError of the source saying %q", err, c.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			recs, _ := riffletest.Output(d, "out", serde.String(), serde.JSON[reading]()).ReadAll()
			var got []int64
			for _, r := range recs {
				got = append(got, r.Timestamp.UnixMilli())
			}
			if !equal(got, c.wantOut) {
				t.Errorf("output timestamps %v, want %v", got, c.wantOut)
			}
			// Stream time never goes back: 2000 after 5000 leaves it at 5000.
			if n := len(streamTimes); n == 0 || streamTimes[n-1] != 5000 {
				t.Errorf("stream times %v, want them to end at 5000", streamTimes)
			}
			if d.SkippedRecords() != c.skipped {
				t.Errorf("skipped %d, want %d", d.SkippedRecords(), c.skipped)
			}
		})
	}
}

func TestEventTimeBuildErrors(t *testing.T) {
	b := topology.NewBuilder()
	stream.From[string, string](b, "in", stream.EventTime(func(int, string) time.Time { return time.Time{} })).To("out")
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), `EventTime takes a func(int, string) time.Time, not a func(string, string) time.Time`) {
		t.Errorf("Build: %v", err)
	}
}

type streamTimeProbe struct {
	ctx  topology.Context[string, reading]
	seen *[]int64
}

func (p *streamTimeProbe) Init(ctx topology.Context[string, reading]) error { p.ctx = ctx; return nil }
func (p *streamTimeProbe) Close() error                                     { return nil }
func (p *streamTimeProbe) Process(r topology.Record[string, reading]) error {
	*p.seen = append(*p.seen, p.ctx.StreamTime().UnixMilli())
	return p.ctx.Forward(r)
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func policyPtr(p topology.InvalidTimestampPolicy) *topology.InvalidTimestampPolicy { return &p }
