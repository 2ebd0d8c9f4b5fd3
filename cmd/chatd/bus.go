package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"chatd/hub/natsbus"
)

// openBus joins the NATS cluster when CHATD_NATS_URL is set; without it,
// it returns nil and the hub keeps to this process. It does not wait for
// NATS: the bus connects and sets itself up in the background, and
// /readyz answers 503 until it is usable.
func openBus(cfg Config, logger *slog.Logger) (*natsbus.Bus, error) {
	c := cfg.Cluster
	if !c.Enabled() {
		return nil, nil
	}
	logger.Info("joining the cluster", slog.Any("nats", c.URLs), slog.String("instance", c.InstanceID),
		slog.Duration("lease_ttl", c.LeaseTTL), slog.String("nats_auth", c.authMethod()),
		slog.Bool("nats_tls_ca", c.TLSCA != ""), slog.Bool("nats_tls_client_cert", c.TLSCert != ""))
	b, err := natsbus.New(busOptions(c, logger))
	if err != nil {
		return nil, fmt.Errorf("join the cluster over NATS: %w", err)
	}
	return b, nil
}

// busOptions are the bus's options from the configuration; the stream
// limits and intervals keep natsbus's defaults (docs/scale.md, "Sizing").
func busOptions(c ClusterConfig, logger *slog.Logger) natsbus.Options {
	return natsbus.Options{
		URLs:         c.URLs,
		InstanceID:   c.InstanceID,
		User:         c.User,
		Password:     c.Password,
		Token:        c.Token,
		CredsFile:    c.CredsFile,
		NKeySeedFile: c.NKeyFile,
		TLSCAFile:    c.TLSCA,
		TLSCertFile:  c.TLSCert,
		TLSKeyFile:   c.TLSKey,
		LeaseTTL:     c.LeaseTTL,
		Logger:       logger,
	}
}

// authMethod names how the instance authenticates to NATS, for the log
// (never the secret itself).
func (c ClusterConfig) authMethod() string {
	switch {
	case c.CredsFile != "":
		return "creds file"
	case c.NKeyFile != "":
		return "nkey"
	case c.User != "":
		return "user " + c.User
	case c.Token != "":
		return "token"
	default:
		return "none"
	}
}

// closeBus ends the bus when the app never took it over (a failed start).
func closeBus(b *natsbus.Bus, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		logger.Warn("leave the cluster", slog.String("err", err.Error()))
	}
}
