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
// Without a cluster, MongoDB's single-process lease is taken, as the SQLite
// store locks its directory: see soloLease.
func openStore(ctx context.Context, cfg Config, logger *slog.Logger) (persistence.Store, error) {
	return openStoreWith(ctx, cfg, logger, mongo.LeaseOptions{})
}

// openStoreWith is openStore with the single-process lease's options
// (tests shorten its renewals).
func openStoreWith(ctx context.Context, cfg Config, logger *slog.Logger, lease mongo.LeaseOptions) (persistence.Store, error) {
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
	openCtx, cancel := context.WithTimeout(ctx, cfg.DBConnectTimeout)
	defer cancel()
	s, err := mongo.Open(openCtx, mongo.Options{URI: cfg.MongoURI, Database: cfg.MongoDatabase,
		Logger: logger, ConnectTimeout: cfg.DBConnectTimeout})
	if err != nil {
		msg := scrubPassword(err.Error(), cfg.MongoURI)
		return nil, fmt.Errorf("MONGODB_URI: no MongoDB answered at %s within %s (CHATD_DB_CONNECT_TIMEOUT): check that it runs and that the URI's hosts, credentials and TLS options are right, or unset MONGODB_URI for the embedded SQLite store: %w",
			uriHosts(cfg.MongoURI), durtext.Short(cfg.DBConnectTimeout), errors.New(msg))
	}
	if err := soloLease(ctx, cfg, s, lease); err != nil {
		closeStore(s, logger)
		return nil, err
	}
	return s, nil
}

// soloLease takes MongoDB's single-process lease unless chatd runs as a
// cluster: a process running alone ends, at start, every answer left
// streaming in the database (sweepStreaming), so a second one on the same
// database would end the first one's live answers. A lease held by a
// process that runs is refused; one whose holder crashed is taken over
// once expired (up to its TTL, 20 s, with a log line), so that a restart
// loop (systemd's Restart=) gets through without failing. A start alone
// beside a running cluster is refused. A cluster instance marks its
// presence instead, and is refused while a process alone holds the lease
// (mongo.MarkClusterPresence). ctx is run's, not bounded by
// CHATD_DB_CONNECT_TIMEOUT.
func soloLease(ctx context.Context, cfg Config, s *mongo.Store, lease mongo.LeaseOptions) error {
	var held *mongo.HeldError
	var cluster *mongo.ClusterError
	if cfg.Cluster.Enabled() {
		err := s.MarkClusterPresence(ctx, cfg.Cluster.InstanceID, lease)
		switch {
		case errors.As(err, &held):
			return fmt.Errorf("MONGODB_URI: %w: stop it first, then start this cluster instance (docs/scale.md)", err)
		case err != nil:
			return fmt.Errorf("MONGODB_URI: %w", err)
		}
		return nil
	}
	err := s.TakeSoloLease(ctx, lease)
	switch {
	case errors.As(err, &cluster):
		return fmt.Errorf("MONGODB_URI: %w: set CHATD_NATS_URL (and the cluster's other settings) as the other instances have, to run this one in the cluster (docs/scale.md)", err)
	case errors.As(err, &held):
		return fmt.Errorf("MONGODB_URI: %w: stop that process, or run several instances as a cluster, each with CHATD_NATS_URL (docs/scale.md)", err)
	case err != nil:
		return fmt.Errorf("MONGODB_URI: %w", err)
	}
	return nil
}
