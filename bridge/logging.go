package bridge

import (
	"io"
	"log/slog"
)

// NewLogger returns the service's logger: text or JSON on w, at the
// configured level. Validate checks both settings first.
func NewLogger(cfg *Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
