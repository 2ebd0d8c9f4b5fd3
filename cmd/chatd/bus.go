package main

import (
	"log/slog"

	"chatd/cmd/chatd/app"
	"chatd/hub/natsbus"
	"chatd/transport/limits"
)

// openBus joins the NATS cluster when CHATD_NATS_URL is set; it returns
// nils for a single process. The bus connects in the background: a NATS
// cluster that is not up yet makes /readyz answer 503, not the start fail.
func openBus(cfg Config, logger *slog.Logger) (app.Bus, limits.Shared, error) {
	c := cfg.Cluster
	if !c.Enabled() {
		return nil, nil, nil
	}
	bus, err := natsbus.New(natsbus.Options{
		URLs:       c.URLs,
		InstanceID: c.InstanceID,
		User:       c.User,
		Password:   c.Password,
		Token:      c.Token,
		CredsFile:  c.CredsFile,
		TLSCAFile:  c.TLSCA,
		LeaseTTL:   c.LeaseTTL,
		Logger:     logger,
	})
	if err != nil {
		return nil, nil, err
	}
	logger.Info("joining the cluster", slog.String("instance", bus.InstanceID()), slog.Int("nats_urls", len(c.URLs)))
	return bus, bus.Limits(), nil
}
