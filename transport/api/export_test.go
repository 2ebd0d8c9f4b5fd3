package api

import "time"

// OnCreationWait makes h call fn each time a creation starts waiting for
// another one with the same clientId.
func OnCreationWait(h *Conversations, fn func()) { h.creating.OnWait = fn }

// OnSearchWait makes h call fn each time a search starts waiting for
// another one of the same user (searchTurn).
func OnSearchWait(h *Conversations, fn func()) { h.searching.OnWait = fn }

// SetExportSendEvery makes h's exports send what they hold before each
// wait on the store once nothing was sent for d (exportSendEvery).
func SetExportSendEvery(h *Conversations, d time.Duration) { h.sendEvery = d }
