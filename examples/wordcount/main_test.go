package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestWords(t *testing.T) {
	cases := map[string]string{
		"Hello, World!":            "hello world",
		"  leading and trailing  ": "leading and trailing",
		"snake_case is one word":   "snake_case is one word",
		"ünïcode splits":           "n code splits",
		"":                         "",
		"...":                      "",
	}
	for in, want := range cases {
		if got := strings.Join(Words(in), " "); got != want {
			t.Errorf("Words(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDemo runs the README's command: the embedded broker, the demo lines,
// the final counts.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, options{stateDir: t.TempDir(), commitInterval: 100 * time.Millisecond, logLevel: 8}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"embedded broker", "Final counts:", "  kafka    3\n", "  streams  2\n", "  summit   1\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}
