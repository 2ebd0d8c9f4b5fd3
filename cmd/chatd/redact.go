package main

import "chatd/internal/uriredact"

// How a URI is shown in configuration errors, logs and the banner: its
// credentials hidden (see package uriredact, which the upstreams file's
// errors use too).
var (
	redactURI     = uriredact.URI
	scrubPassword = uriredact.Scrub
	uriHosts      = uriredact.Hosts
)
