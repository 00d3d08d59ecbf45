package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRun runs the example as the README does and checks what it prints.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out, false); err != nil {
		t.Fatal(err)
	}
	want := `alerts-eu:
  09:00:01  key=c-ada  o-2 (eu-west): order of 1250.00
  09:00:04  key=c-bert  o-5 (eu-central): order of 1000.00
alerts-other:
  09:00:02  key=c-carl  o-3 (us-east): order of 4999.99
skipped records: 1 (logged on stderr)
`
	if got := out.String(); !strings.HasSuffix(got, want) {
		t.Errorf("output:\n%s\nwant it to end with:\n%s", got, want)
	}
	out.Reset()
	if err := run(&out, true); err != nil || !strings.HasPrefix(out.String(), "flowchart TD") {
		t.Errorf("mermaid: %v\n%s", err, out.String())
	}
}
