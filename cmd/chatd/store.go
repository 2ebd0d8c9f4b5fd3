package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"chatd/internal/durtext"
	"chatd/persistence"
	"chatd/persistence/mongo"
	"chatd/persistence/sqlite"
)

// openStore opens MongoDB when MONGODB_URI is set, else the embedded SQLite
// file <dataDir>/chatd.db. Errors name the MongoDB hosts, never the password.
func openStore(ctx context.Context, cfg Config, logger *slog.Logger) (persistence.Store, error) {
	if cfg.MongoURI == "" {
		path := filepath.Join(cfg.DataDir, "chatd.db")
		logger.Info("opening store", slog.String("store", "sqlite"), slog.String("path", path))
		quiet := cfg.SearchIndexQuiet
		if quiet == 0 {
			quiet = -1 // sqlite.Options: no wait (its zero means the default)
		}
		s, err := sqlite.Open(ctx, sqlite.Options{Path: path, Logger: logger,
			IndexQuiet: quiet, IndexMaxLag: cfg.SearchIndexMaxLag})
		if err != nil {
			return nil, fmt.Errorf("open the SQLite store: %w", err)
		}
		return s, nil
	}
	logger.Info("opening store", slog.String("store", "mongodb"), slog.String("uri", redactURI(cfg.MongoURI)))
	ctx, cancel := context.WithTimeout(ctx, cfg.DBConnectTimeout)
	defer cancel()
	s, err := mongo.Open(ctx, mongo.Options{URI: cfg.MongoURI, Database: cfg.MongoDatabase,
		Logger: logger, ConnectTimeout: cfg.DBConnectTimeout})
	if err != nil {
		msg := scrubPassword(err.Error(), cfg.MongoURI)
		return nil, fmt.Errorf("MONGODB_URI: no MongoDB answered at %s within %s (CHATD_DB_CONNECT_TIMEOUT): check that it runs and that the URI's hosts, credentials and TLS options are right, or unset MONGODB_URI for the embedded SQLite store: %w",
			uriHosts(cfg.MongoURI), durtext.Short(cfg.DBConnectTimeout), errors.New(msg))
	}
	return s, nil
}
