package riffle

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestKafkaLoggerLevels(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  kgo.LogLevel
	}{
		{slog.LevelDebug - 4, kgo.LogLevelDebug},
		{slog.LevelDebug, kgo.LogLevelInfo},
		{slog.LevelInfo, kgo.LogLevelWarn},
		{slog.LevelWarn, kgo.LogLevelWarn},
		{slog.LevelError, kgo.LogLevelError},
		{slog.LevelError + 1, kgo.LogLevelNone},
	} {
		l := kafkaLogger{log: slog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: tc.level}))}
		if got := l.Level(); got != tc.want {
			t.Errorf("slog level %v: kgo level %v, want %v", tc.level, got, tc.want)
		}
	}
	var buf bytes.Buffer
	l := kafkaLogger{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})).With("client", "group")}
	l.Log(kgo.LogLevelInfo, "joined group", "group", "g")
	l.Log(kgo.LogLevelWarn, "data loss detected", "topic", "t", "partition", 3)
	got := buf.String()
	if strings.Contains(got, "joined group") {
		t.Errorf("an info line of franz-go reached an info logger:\n%s", got)
	}
	if !strings.Contains(got, `level=WARN msg="data loss detected" client=group topic=t partition=3`) {
		t.Errorf("the warning is missing or misses its fields:\n%s", got)
	}
}
