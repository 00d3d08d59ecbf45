package riffle

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
)

// clientOpts returns the options every Kafka client of the App starts
// with: the brokers, a logger that passes the client's own warnings (an
// offset reset, a detected data loss, a failed request) to the App's
// logger, and then the user's KafkaOptions, which win. role names the
// client in its log lines.
func (a *App) clientOpts(role string) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(a.cfg.brokers...),
		kgo.WithLogger(kafkaLogger{log: a.log.With("client", role)}),
	}
	return append(opts, a.cfg.kafkaOpts...)
}

// kafkaLogger is a kgo.Logger over slog. franz-go's info lines (every
// join, sync and fetch session) are debug lines here, as a rebalance is
// already logged by the App; its debug lines (every request) are at
// slog.LevelDebug-4.
type kafkaLogger struct{ log *slog.Logger }

// Level returns the most detailed level the App's logger shows.
func (l kafkaLogger) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case l.log.Enabled(ctx, slog.LevelDebug-4):
		return kgo.LogLevelDebug
	case l.log.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelInfo
	case l.log.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	case l.log.Enabled(ctx, slog.LevelError):
		return kgo.LogLevelError
	}
	return kgo.LogLevelNone
}

// Log logs one line of the client's.
func (l kafkaLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var lvl slog.Level
	switch level {
	case kgo.LogLevelError:
		lvl = slog.LevelError
	case kgo.LogLevelWarn:
		lvl = slog.LevelWarn
	case kgo.LogLevelInfo:
		lvl = slog.LevelDebug
	default:
		lvl = slog.LevelDebug - 4
	}
	l.log.Log(context.Background(), lvl, msg, keyvals...)
}
