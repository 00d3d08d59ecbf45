package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the example on the embedded broker and checks the maxima it
// prints: every update of a window above 20, the late reading included.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, "", t.TempDir(), &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	want := `window [12:00:00, 12:00:05) temp: max 21
window [12:00:00, 12:00:05) temp: max 21
window [12:00:00, 12:00:05) temp: max 25
window [12:00:10, 12:00:15) temp: max 22
window [12:00:00, 12:00:05) temp: max 30
`
	if got := out.String(); !strings.HasSuffix(got, want) {
		t.Errorf("output:\n%s\nwant it to end with:\n%s", got, want)
	}
}
