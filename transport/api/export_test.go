package api

// OnCreationWait makes h call fn each time a creation starts waiting for
// another one with the same clientId.
func OnCreationWait(h *Conversations, fn func()) { h.creating.OnWait = fn }
