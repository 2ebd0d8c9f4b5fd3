package main

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
)

// printBanner writes a few lines for the person who started chatd in a
// terminal: the URL to open, the store, the model and where data lives.
// It writes nothing when terminal is false: logs read by programs (pm2,
// systemd, files) stay pure JSON lines.
func printBanner(w io.Writer, terminal bool, cfg Config) {
	if !terminal {
		return
	}
	fmt.Fprintf(w, "\nchatd (%s) is starting\n", cfg.Env)
	for _, line := range bannerLines(cfg) {
		fmt.Fprintf(w, "  %-6s %s\n", line[0], line[1])
	}
	fmt.Fprint(w, "Stop it with Ctrl+C. JSON log lines follow.\n\n")
}

// bannerLines are the banner's label/value pairs.
func bannerLines(cfg Config) [][2]string {
	dataDir := cfg.DataDir
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	store := "SQLite, " + filepath.Join(dataDir, "chatd.db")
	data := dataDir
	if cfg.MongoURI != "" {
		store = "MongoDB, " + redactURI(cfg.MongoURI)
		data = "MongoDB"
	}
	if cfg.JWTSecret == "" {
		data += " (development JWT secret in " + filepath.Join(dataDir, "jwt-secret") + ")"
	}
	return [][2]string{
		{"open", bannerURL(cfg.Addr)},
		{"store", store},
		{"model", bannerModel(cfg)},
		{"data", data},
	}
}

// bannerURL is the address to open in a browser: a wildcard or empty host
// becomes localhost.
func bannerURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// bannerModel says whether answers come from the offline demo model or
// from which upstreams and models (CHATD_UPSTREAMS_FILE wins over
// OPENAI_*, as in newModel).
func bannerModel(cfg Config) string {
	if cfg.Upstreams != nil {
		return bannerUpstreams(cfg)
	}
	if !cfg.upstreamConfigured() {
		return "demo (offline, canned answers); set OPENAI_API_KEY and OPENAI_MODELS for a real model"
	}
	models := strings.Join(cfg.OpenAIModels, ", ")
	if cfg.OpenAIModelsFromUpstream {
		if models != "" {
			models += ", "
		}
		models += "and what the upstream lists"
	}
	return fmt.Sprintf("%s at %s", models, redactURI(cfg.OpenAIBaseURL))
}

// bannerUpstreams names the upstreams of CHATD_UPSTREAMS_FILE and their
// URLs (credentials hidden), then the file.
func bannerUpstreams(cfg Config) string {
	var ups []string
	for _, u := range cfg.Upstreams.Upstreams {
		ups = append(ups, fmt.Sprintf("%s at %s", u.Name, redactURI(u.BaseURL)))
	}
	return fmt.Sprintf("%s (from %s)", strings.Join(ups, ", "), cfg.UpstreamsFile)
}
